import json
import math
import subprocess
import sys

import pytest
import torch

from analysis.cli import main


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "analysis", *args], capture_output=True, text=True,
                          timeout=300)


def test_help_lists_commands(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    for cmd in ("train", "data", "lessons", "bench", "experiment"):
        assert cmd in out


def test_unknown_command_is_a_clear_error(capsys):
    assert main(["fly"]) == 2
    assert "unknown command 'fly'" in capsys.readouterr().err
    assert main(["bench", "warp"]) == 2
    assert "unknown bench 'warp'" in capsys.readouterr().err


@pytest.mark.parametrize("group", ["bench", "experiment"])
def test_a_group_without_subcommand_is_an_error_and_help_is_not(group, capsys):
    assert main([group]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and f"error: {group} needs one of: " in captured.err
    assert main([group, "--help"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out.startswith(f"usage: python -m analysis {group} {{")


def test_unknown_lesson_is_an_argparse_error_on_stderr(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["lessons", "run", "99"])
    assert exit_.value.code == 2
    captured = capsys.readouterr()
    assert "error: no lesson matches '99'; lessons: 00_start_here" in captured.err
    assert captured.out == ""


def test_train_help_lists_models_and_datasets():
    r = run_cli("train", "--help")
    assert r.returncode == 0
    assert "bnn-mlp" in r.stdout and "mnist5k" in r.stdout and "digits" in r.stdout


def test_train_writes_run_folder_and_resumes(tmp_path):
    r = run_cli("train", "--model", "bnn-mlp", "--dataset", "digits", "--epochs", "2", "--width", "32",
                "--depth", "1", "--out", str(tmp_path), "--name", "run")
    assert r.returncode == 0, r.stderr
    run = tmp_path / "run"
    for f in ("config.json", "metrics.json", "metrics.csv", "checkpoint.pt", "curves.png"):
        assert (run / f).exists(), f
    assert len(json.loads((run / "metrics.json").read_text())) == 2
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    assert ckpt["epoch"] == 2
    r = run_cli("train", "--resume", str(run), "--epochs", "3")
    assert r.returncode == 0, r.stderr
    rows = json.loads((run / "metrics.json").read_text())
    assert [row["epoch"] for row in rows] == [1, 2, 3]
    assert rows[2]["updates"] == 3 * rows[0]["updates"]


def test_train_bad_model_or_dataset_is_a_clear_error(tmp_path):
    r = run_cli("train", "--model", "resnet", "--dataset", "digits", "--out", str(tmp_path))
    assert r.returncode == 2 and "unknown model 'resnet'" in r.stderr
    r = run_cli("train", "--dataset", "imagenet", "--out", str(tmp_path))
    assert r.returncode == 2 and "imagenet" in r.stderr
    r = run_cli("train", "--resume", str(tmp_path / "nope"))
    assert r.returncode == 2 and "no run at" in r.stderr


@pytest.mark.parametrize("args, message", [
    (["train", "--width", "0"], "argument --width: must be >= 1, got 0"),
    (["train", "--repeat", "x"], "argument --repeat: not an integer: 'x'"),
    (["train", "--batch-size", "5000"], "--batch-size 5000 is more than the 4000 mnist5k"),
    (["diffusion", "--updates", "0"], "argument --updates: must be >= 1, got 0"),
    (["diffusion", "--repeat", "0"], "argument --repeat: must be >= 1, got 0"),
    (["xnor", "--sizes", "64", "-5"], "argument --sizes: must be >= 1, got -5"),
    (["xnor", "--threads", "0"], "argument --threads: must be >= 1, got 0"),
    (["xnor", "--sizes"], "argument --sizes: expected at least one argument"),
    (["bnn-inference", "--depth", "0"], "argument --depth: must be >= 1, got 0"),
    (["margin", "--steps", "10"], "argument --steps: must be >= 100, got 10"),
    (["minima", "--runs", "0"], "argument --runs: must be >= 1, got 0"),
    (["widgets", "--n", "0"], "argument --n: must be >= 2, got 0"),
])
def test_bench_bad_sizes_are_clear_errors(args, message, capsys):
    """Zero, negative or too large sizes: one argparse error line, not a traceback from inside."""
    with pytest.raises(SystemExit) as exit_:
        main(["bench", *args])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("where", ["missing/out.json", "."])
def test_bench_json_path_is_checked_before_the_run(tmp_path, monkeypatch, capsys, where):
    """--json in a missing folder (or a folder): an error at once, not a traceback after the run."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main(["bench", "minima", "--runs", "1", "--n", "4", "--d0", "2", "--width", "1",
              "--max-steps", "5", "--json", where])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "argument --json" in err and ("no folder missing" in err or "is a folder" in err)


@pytest.mark.parametrize("bench, sizes", [
    ("xnor", ["--sizes", "8", "--batch", "4", "--width", "8"]),
    ("bnn-inference", ["--width", "8", "--depth", "1", "--train-epochs", "0", "--batch", "4"]),
])
def test_bench_on_the_cpu_says_what_it_skips_and_why(bench, sizes, capsys):
    assert main(["bench", bench, "--device", "cpu", "--repeat", "1", *sizes]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("CPU run (--device cpu): ") and "skipped: the CUDA kernels" in first


def _bench_json(tmp_path, name: str, *args: str) -> dict:
    out = tmp_path / f"{name}.json"
    assert main(["bench", name, *args, "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["benchmark"] == name and result["machine"]["threads"] >= 1
    return result


def test_bench_train_ratio_is_binarized_over_float(tmp_path, capsys):
    r = _bench_json(tmp_path, "train", "--width", "16", "--depth", "1", "--batch-size", "8",
                    "--repeat", "2")
    assert (r["width"], r["depth"], r["batch_size"]) == (16, 1, 8)
    assert set(r["seconds"]) == {"bnn-mlp", "mlp"} and min(r["seconds"].values()) > 0
    assert r["ratio"] == pytest.approx(r["seconds"]["bnn-mlp"] / r["seconds"]["mlp"])
    assert f"ratio binarized / float: {r['ratio']:.2f}x" in capsys.readouterr().out


def test_bench_margin_reports_the_angle_falling_and_its_fit(tmp_path):
    r = _bench_json(tmp_path, "margin", "--n", "20", "--d", "5", "--steps", "20000", "--short", "50",
                    "--repeat", "1")
    per = r["seconds_per_iteration"]
    assert r["ratio_naive_over_vectorized"] == pytest.approx(per["naive loop"] / per["vectorized"])
    times = sorted(r["angle_deg"], key=int)  # the log-grid records nearest t = 100 and 10^4
    assert [round(math.log10(int(t)), 1) for t in times] == [2.0, 4.0]
    angles = [r["angle_deg"][t] for t in times]
    assert 0 < angles[1] < angles[0] < 90  # GD turns toward the SVM direction
    fit = r["fit"]
    assert fit["slope"] > 0 and 0 < fit["r2"] <= 1 and fit["t_max"] == 20000


def test_bench_diffusion_overheads_follow_from_its_times(tmp_path):
    from analysis.diffusion import record_points

    r = _bench_json(tmp_path, "diffusion", "--width", "16", "--depth", "1", "--batch-size", "8",
                    "--repeat", "5", "--updates", "1000")
    s = r["seconds"]
    assert r["parameters"] == 784 * 16 + 2 * 16 + 16 * 10 + 2 * 10  # weights (no bias), BN γ and β
    assert r["overhead_every_update"] == pytest.approx(s["step+record"] / s["step"] - 1)
    assert r["overhead_per_record"] == pytest.approx(s["record"] / s["step"])
    assert r["auto_records"] == len(record_points(1000)) < 1000
    assert r["overhead_auto"] == pytest.approx(r["overhead_per_record"] * r["auto_records"] / 1000)


def test_bench_widgets_times_the_clipping_callback_and_the_draw(tmp_path):
    r = _bench_json(tmp_path, "widgets", "--n", "2000", "--repeat", "2")
    s = r["seconds"]
    assert r["widget"] == "clipping" and r["n"] == 2000 and r["setup_seconds"] > 0
    assert set(s) == {"callback_bits", "callback_clip", "draw"} and min(s.values()) > 0
    assert r["ratio"] == pytest.approx(s["callback_bits"] / s["draw"])


@pytest.mark.parametrize("args, message", [
    (["--batch-size", "0"], "argument --batch-size: must be >= 1, got 0"),
    (["--epochs", "0"], "argument --epochs: must be >= 1, got 0"),  # was: 20 epochs, silently
    (["--epochs", "-1"], "argument --epochs: must be >= 1, got -1"),
    (["--lr", "-0.1"], "argument --lr: must be a positive number, got -0.1"),
    (["--lr-final", "0"], "argument --lr-final: must be a positive number, got 0"),
    (["--lr", "nan"], "argument --lr: must be a positive number, got nan"),
])
def test_train_bad_numbers_are_argparse_errors_before_the_run_folder(tmp_path, args, message, capsys):
    """Was a traceback from fit after config.json was written: the next try with good values
    then refused the folder ('already holds a run') and --resume reused the bad values."""
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--model", "mlp", "--dataset", "digits", "--width", "8", "--depth", "1",
              "--out", str(tmp_path), "--name", "run", *args])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("inside", [False, True])
def test_train_out_that_is_a_file_is_an_argparse_error(tmp_path, capsys, inside):
    """--out naming a file (or a folder inside one): one argparse line, exit 2, before the data
    are loaded; was a NotADirectoryError traceback from mkdir."""
    (tmp_path / "file").write_text("")
    out = tmp_path / "file" / "sub" if inside else tmp_path / "file"
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--model", "mlp", "--dataset", "digits", "--width", "8", "--depth", "1",
              "--epochs", "1", "--out", str(out)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --out: {tmp_path / 'file'} is a file" in err
    assert (tmp_path / "file").read_text() == ""


def test_experiment_ctrl_c_keeps_the_finished_rows_and_exits_130(tmp_path):
    """A real Ctrl-C (SIGINT) once the sweep's first row is done: exit code 130, one line on
    stderr saying what was kept and how to go on, no traceback; the partial file keeps the rows."""
    import signal
    import time

    out = tmp_path / "minima"
    partial = out / "minima.partial.json"
    proc = subprocess.Popen([sys.executable, "-m", "analysis", "experiment", "minima", "--fast",
                             "--runs", "20", "--data", "random", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not partial.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    kept = len(json.loads(partial.read_text())["rows"])
    assert proc.returncode == 130, err
    assert err == (f"\ninterrupted: {kept} of 7 rows done, kept in {partial}; "
                   "run the same command to go on\n")


def test_a_file_system_error_is_one_line_not_a_traceback(tmp_path, capsys):
    """A run folder (--out/--name) that is a file: train raised FileExistsError from mkdir, a
    traceback (exit 1); now one line on stderr that names the command and the path, exit 1.
    (--out itself naming a file is refused by argparse, see the test above.)"""
    not_a_folder = tmp_path / "run"
    not_a_folder.write_text("")
    code = main(["train", "--model", "mlp", "--dataset", "digits", "--width", "8", "--depth", "1",
                 "--epochs", "1", "--out", str(tmp_path), "--name", "run"])
    err = capsys.readouterr().err
    assert code == 1
    assert err == f"python -m analysis train: error: [Errno 17] File exists: '{not_a_folder}'\n"


def test_train_draws_progress_bars_on_a_terminal_only(tmp_path):
    """train forced its progress bars on: piped into a log file, stderr filled with tqdm's
    redraws (carriage returns, cursor-up codes). Now, as the experiments, only on a terminal."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}  # as a user's shell
    done = subprocess.run([sys.executable, "-m", "analysis", "train", "--model", "mlp", "--dataset",
                           "digits", "--width", "8", "--depth", "1", "--epochs", "2",
                           "--out", str(tmp_path)], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert "epochs 2" in done.stdout
    assert "epoch/s" not in done.stderr and "batch/s" not in done.stderr and "\x1b[A" not in done.stderr


def test_ctrl_c_in_any_command_exits_130_with_one_line(tmp_path):
    """A real Ctrl-C (SIGINT) during `train`: it was a KeyboardInterrupt traceback from inside
    torch and exit status -2; now exit 130 and one line, as `lessons run` and the experiments."""
    import signal
    import time

    proc = subprocess.Popen([sys.executable, "-m", "analysis", "train", "--model", "mlp",
                             "--dataset", "digits", "--width", "8", "--depth", "1", "--epochs", "500",
                             "--out", str(tmp_path), "--name", "run"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # after the first epoch's checkpoint: inside the training loop. Earlier, torch is still
    # importing lazily (torch._dynamo, sympy: seconds on a busy machine), and a Ctrl-C landing in
    # an import ended the process by signal (-2) about 1 time in 3, or was swallowed by it
    deadline = time.monotonic() + 120
    while not (tmp_path / "run" / "checkpoint.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert err.rstrip().splitlines()[-1] == "interrupted (Ctrl-C): python -m analysis train stopped"


def test_ctrl_c_in_a_group_command_names_it(monkeypatch, capsys):
    from analysis import bench

    def interrupted(argv):
        raise KeyboardInterrupt

    monkeypatch.setattr(bench, "margin", interrupted)
    try:
        code = main(["bench", "margin"])
    except KeyboardInterrupt:
        pytest.fail("the KeyboardInterrupt went through main")
    assert code == 130
    assert capsys.readouterr().err == "\ninterrupted (Ctrl-C): python -m analysis bench margin stopped\n"


def _commands() -> list[list[str]]:
    from analysis.cli import COMMANDS, GROUPS

    subcommands = {"data": [["list"], ["fetch"]], "lessons": [["list"], ["run"]]}
    found = [[c] + s for c in COMMANDS for s in subcommands.get(c, [[]])]
    return found + [[g, s] for g, commands in GROUPS.items() for s in commands]


def _options_without_help(help_text: str) -> list[str]:
    """The options of an argparse --help text whose entry has no help string: the option line
    ends at the name (or its metavar) and the next line is another option or the end."""
    lines = help_text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("options:"))
    missing = []
    for i in range(start + 1, len(lines)):
        line = lines[i]
        if not line.startswith("  -"):
            continue
        has_text = "  " in line.strip()  # help after two spaces on the same line
        follows = i + 1 < len(lines) and lines[i + 1].startswith(" " * 8) and lines[i + 1].strip()
        if not (has_text or follows):
            missing.append(line.split()[0].rstrip(","))
    return missing


@pytest.mark.parametrize("command", _commands(), ids=" ".join)
def test_every_option_of_every_command_says_what_it_is(command, capsys):
    """`python -m analysis <command> --help`: no option without a help text."""
    with pytest.raises(SystemExit) as stop:
        main([*command, "--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m analysis")
    assert _options_without_help(out) == []


def test_options_without_help_are_found():
    text = ("usage: x\n\noptions:\n  -h, --help     show this help message and exit\n"
            "  --width WIDTH\n  --depth DEPTH  hidden layers\n  --batch-size BATCH_SIZE\n"
            "                 examples per update\n  --seed SEED\n")
    assert _options_without_help(text) == ["--width", "--seed"]
