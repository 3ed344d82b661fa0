import importlib.metadata as metadata
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import psutil
import pytest
import torch
from packaging.requirements import Requirement

from analysis import env
from analysis.lessons import fast_mode, find_lessons, run_notebook


def make_notebook(path, *sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nbformat.write(nb, path)
    return path


def test_run_notebook_writes_outputs_in_fast_mode(tmp_path):
    path = make_notebook(tmp_path / "01_demo.ipynb", "import os\nprint(os.environ['LESSONS_FAST'])",
                         "x = list(range(10**6))\nlen(x)")
    row = run_notebook(path, fast=True, timeout=120)
    assert row["error"] is None
    assert row["peak_mb"] > 20  # the kernel process was measured
    nb = nbformat.read(path, as_version=4)
    assert nb.cells[0].outputs[0]["text"].strip() == "1"
    assert nb.cells[1].outputs[0]["data"]["text/plain"] == "1000000"
    assert [c.execution_count for c in nb.cells] == [1, 2]


def test_run_notebook_reports_a_failing_cell(tmp_path):
    path = make_notebook(tmp_path / "02_bad.ipynb", "raise ValueError('broken lesson')")
    row = run_notebook(path, timeout=60, write=False)
    assert row["error"] == "ValueError: broken lesson"  # one plain line, no terminal colours


def test_failed_run_keeps_the_committed_outputs(tmp_path):
    path = make_notebook(tmp_path / "03_slow.ipynb", "print('committed')", "import time\ntime.sleep(30)")
    nb = nbformat.read(path, as_version=4)
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text="committed\n")]
    nbformat.write(nb, path)
    before = path.read_text()
    row = run_notebook(path, timeout=3)
    assert row["error"] == "a cell ran longer than the timeout (3 s)"
    assert row["seconds"] < 25
    assert path.read_text() == before  # not overwritten by the half-run notebook


def test_dead_kernel_is_reported(tmp_path):
    path = make_notebook(tmp_path / "04_dies.ipynb", "import os\nos._exit(1)")
    row = run_notebook(path, timeout=60, write=False)
    assert row["error"] is not None and row["error"].startswith("the kernel died")


def test_find_lessons_by_number_and_unknown_name(tmp_path):
    for name in ("00_start_here", "01_binarized_networks"):
        make_notebook(tmp_path / f"{name}.ipynb", "1")
    assert [p.stem for p in find_lessons(["01"], tmp_path)] == ["01_binarized_networks"]
    assert len(find_lessons(None, tmp_path)) == 2
    with pytest.raises(ValueError, match="no lesson matches '07'"):
        find_lessons(["07"], tmp_path)


def test_no_lessons_found_is_an_error_not_an_empty_success(tmp_path, monkeypatch, capsys):
    """Where lessons_dir() finds none (the package installed without -e, run outside the
    checkout: ./lessons then), `lessons run` ran nothing, printed an empty table and exited 0."""
    from analysis import lessons

    with pytest.raises(ValueError, match="no lessons"):
        find_lessons(None, tmp_path)
    monkeypatch.setattr(lessons, "lessons_dir", lambda: tmp_path / "lessons")
    for action in ("run", "list"):
        with pytest.raises(SystemExit) as exit_:
            lessons.cli([action, "--fast"] if action == "run" else [action])
        assert exit_.value.code == 2
        assert f"no lessons (NN_topic.ipynb) in {tmp_path / 'lessons'}" in capsys.readouterr().err


def test_a_lesson_number_means_that_lesson_only(tmp_path):
    """'0' is lesson 00 (it ran every lesson 0x), '1' is lesson 01 (it matched none), once each."""
    for name in ("00_start_here", "01_binarized_networks", "02_xnor_kernel"):
        make_notebook(tmp_path / f"{name}.ipynb", "1")
    stems = lambda names: [p.stem for p in find_lessons(names, tmp_path)]  # noqa: E731
    assert stems(["0"]) == ["00_start_here"]
    assert stems(["1"]) == ["01_binarized_networks"]
    assert stems(["2", "00", "02_xnor"]) == ["02_xnor_kernel", "00_start_here"]
    assert stems(["01_bin"]) == ["01_binarized_networks"]


def test_a_notebook_without_kernel_spec_is_written_with_one(tmp_path):
    """Else JupyterLab asks the student which kernel to start when the lesson opens."""
    path = make_notebook(tmp_path / "01_new.ipynb", "1 + 1")
    assert "kernelspec" not in nbformat.read(path, as_version=4).metadata
    assert run_notebook(path, timeout=60)["error"] is None
    assert nbformat.read(path, as_version=4).metadata["kernelspec"]["name"] == "python3"


def test_ctrl_c_stops_the_kernel_and_keeps_the_notebook(tmp_path):
    """Ctrl-C: exit code 130, one line instead of nbclient's AssertionError traceback, the lessons
    finished so far in the table, no kernel left running, the interrupted notebook unchanged."""
    quick = make_notebook(tmp_path / "01_quick.ipynb", "1 + 1")
    slow = make_notebook(tmp_path / "02_slow.ipynb",
                         "open('started', 'w').close()\nimport time\ntime.sleep(120)")
    before = slow.read_text()
    cli = subprocess.Popen([sys.executable, "-m", "analysis", "lessons", "run", str(quick), str(slow),
                            "--no-write"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (tmp_path / "started").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    kernels = psutil.Process(cli.pid).children(recursive=True)
    assert kernels, "the slow lesson's kernel did not start"
    cli.send_signal(signal.SIGINT)
    out, err = cli.communicate(timeout=60)
    assert cli.returncode == 130
    assert "interrupted: 02_slow.ipynb stopped" in err and "Traceback" not in err
    assert "01_quick" in out.split("status")[-1]
    gone, alive = psutil.wait_procs(kernels, timeout=10)
    assert not alive
    assert slow.read_text() == before


@pytest.mark.parametrize("value, fast", [
    ("1", True), ("true", True), ("Yes", True), ("ON", True), (" 1 ", True),
    ("", False), ("0", False), ("false", False), ("FALSE", False), ("no", False), ("off", False),
    (" 0", False),
])
def test_fast_mode_reads_the_environment(monkeypatch, value, fast):
    monkeypatch.setenv("LESSONS_FAST", value)
    assert fast_mode() is fast


def test_fast_mode_unset_is_normal_mode_and_odd_values_are_refused(monkeypatch):
    monkeypatch.delenv("LESSONS_FAST", raising=False)
    assert fast_mode() is False
    monkeypatch.setenv("LESSONS_FAST", "maybe")
    with pytest.raises(ValueError, match="LESSONS_FAST='maybe' is not understood: set it to 1 for fast"):
        fast_mode()


# lesson 00's environment check (analysis.env)

def test_packages_are_the_dependencies_of_pyproject():
    """Every dependency is checked (nbclient, ipykernel, psutil... were not), and pycuda (gpu)."""
    core, gpu = set(), set()
    for line in metadata.requires("bits-and-bias"):
        requirement = Requirement(line)
        if requirement.marker is None:
            core.add(requirement.name)
        elif requirement.marker.evaluate({"extra": "gpu"}):
            gpu.add(requirement.name)
    assert set(env.PACKAGES) == core | gpu
    assert env.missing_packages() == []


def test_a_missing_package_is_reported_not_raised(monkeypatch):
    installed = env._version
    monkeypatch.setattr(env, "_version", lambda d: None if d in ("seaborn", "pycuda") else installed(d))
    assert env.missing_packages() == ["seaborn"]  # pycuda is optional
    report = env.environment_report()
    assert report["seaborn"] == "not installed"
    assert report["pycuda"].startswith("not installed (optional: pip install -e '.[gpu]'")


@pytest.fixture
def half_installed_pycuda(tmp_path, monkeypatch):
    """pycuda 2024.1 as pip leaves it on a machine without the CUDA driver: it is installed, and
    `import pycuda.driver` fails to load libcuda."""
    (tmp_path / "pycuda").mkdir()
    (tmp_path / "pycuda" / "__init__.py").write_text("")
    (tmp_path / "pycuda" / "driver.py").write_text(
        "raise ImportError('libcuda.so.1: cannot open shared object file: No such file or directory')")
    (tmp_path / "pycuda-2024.1.dist-info").mkdir()
    (tmp_path / "pycuda-2024.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: pycuda\nVersion: 2024.1\n")
    real = {name: module for name, module in sys.modules.items() if name.split(".")[0] == "pycuda"}
    for name in real:
        del sys.modules[name]
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    for name in [name for name in sys.modules if name.split(".")[0] == "pycuda"]:
        del sys.modules[name]
    sys.modules.update(real)


def test_a_half_installed_pycuda_is_reported_with_its_error(half_installed_pycuda):
    """It said 'importable' (the package was found) and dropped the version."""
    assert env.environment_report()["pycuda"] == (
        "2024.1, but import pycuda.driver fails: ImportError: libcuda.so.1: cannot open shared object "
        "file: No such file or directory")


def test_a_torch_that_does_not_import_is_reported_not_raised(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # what `import torch` then raises, a broken install does
    report = env.environment_report()
    assert report["torch"].startswith(f"{metadata.version('torch')}, but import torch fails: ")
    assert report["gpu"] == "unknown (torch does not import)"
    assert report["cpus"] == str(os.cpu_count())


@pytest.mark.parametrize("cuda_built, shown", [
    (False, f"not usable: torch {torch.__version__} is a CPU-only build (the README's GPU section "
            "says which to install): GPU cells use committed results"),
    (True, "none (torch.cuda.is_available() is False): GPU cells use committed results"),
])
def test_the_gpu_line_tells_a_cpu_only_torch_from_no_gpu(monkeypatch, cuda_built, shown):
    """With a CPU-only build of torch (what the README's first command installs on the course
    machines) it said 'none', also on a machine with a GPU and nvcc: the fix is another torch."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.cuda, "is_built", lambda: cuda_built)
    assert env.environment_report()["gpu"] == shown


@pytest.mark.parametrize("value, shown", [
    ("1", "on (LESSONS_FAST=1)"), ("yes", "on (LESSONS_FAST=yes)"), ("0", "off"), ("false", "off"),
    ("maybe", "LESSONS_FAST='maybe' is not understood: set it to 1 for fast mode or 0 for normal mode"),
])
def test_the_report_says_what_fast_mode_is(monkeypatch, value, shown):
    monkeypatch.setenv("LESSONS_FAST", value)
    assert env.environment_report()["fast mode"] == shown


def test_binder_pins_every_dependency_within_pyproject():
    """binder/requirements.txt pins each of pyproject's dependencies (platformdirs was not) to a
    version that pyproject allows."""
    pins = {}
    for line in (Path(__file__).parents[1] / "binder" / "requirements.txt").read_text().splitlines():
        if line and not line.startswith(("#", "-")):
            requirement = Requirement(line)
            assert str(requirement.specifier).startswith("=="), line
            pins[requirement.name] = str(requirement.specifier)[2:]
    for line in metadata.requires("bits-and-bias"):
        requirement = Requirement(line)
        if requirement.marker is None:
            assert requirement.name in pins, f"{requirement.name} is not pinned for Binder"
            assert requirement.specifier.contains(pins[requirement.name], prereleases=True), line


def test_a_failed_write_keeps_the_notebook_whole_and_is_reported(tmp_path, monkeypatch):
    """A full disk while the outputs are written back: nbformat.write truncated the committed
    notebook in place (10 characters were left of it) and the OSError was a traceback that
    ended `lessons run`; now the notebook is replaced only once written, and the row says why not."""
    from test_partial import fill_the_disk

    from analysis import lessons

    path = make_notebook(tmp_path / "01_demo.ipynb", "1 + 1")
    before = path.read_text()
    execute = lessons._execute

    def execute_then_fill_the_disk(client, timeout):
        error = execute(client, timeout)
        fill_the_disk(monkeypatch)
        return error

    monkeypatch.setattr(lessons, "_execute", execute_then_fill_the_disk)
    row = run_notebook(path, timeout=60)
    assert row["error"] == f"cannot write {path}: [Errno 28] No space left on device"
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["01_demo.ipynb"]


def test_written_notebook_is_what_nbformat_writes(tmp_path):
    path = make_notebook(tmp_path / "01_demo.ipynb", "print('ε ‖w‖')")
    assert run_notebook(path, timeout=60)["error"] is None
    nb = nbformat.read(path, as_version=4)
    assert nb.cells[0].outputs[0]["text"] == "ε ‖w‖\n"
    assert path.read_text(encoding="utf-8") == nbformat.writes(nb) + "\n"


def test_an_unreadable_notebook_is_a_failed_row_and_the_others_still_run(tmp_path):
    """A lesson left with merge-conflict markers (not JSON): `lessons run` stopped at it with
    nbformat's NotJSONError traceback and ran none of the lessons after it."""
    broken = tmp_path / "01_conflict.ipynb"
    broken.write_text('{\n<<<<<<< HEAD\n "cells": []\n=======\n')
    good = make_notebook(tmp_path / "02_good.ipynb", "1 + 1")
    r = subprocess.run([sys.executable, "-m", "analysis", "lessons", "run", str(broken), str(good),
                        "--no-write"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    table = r.stdout.split("status")[-1].split("\n")
    assert [line.split()[0] + " " + line.split()[-1] for line in table if line.strip()] == [
        "01_conflict error", "02_good ok"]
    assert f"ERROR: cannot read {broken}: Notebook does not appear to be JSON:" in r.stdout


@pytest.mark.parametrize("source, error", [
    ("raise ValueError('width must be >= 1, got 0\\nsee lesson 01')",
     "ValueError: width must be >= 1, got 0 see lesson 01"),
    ("raise KeyboardInterrupt", "KeyboardInterrupt"),
])
def test_the_error_names_the_exception_with_all_its_message(tmp_path, source, error):
    """The error was the traceback's last line: for a message of several lines (torch's often
    are) only its last line, without the exception's name ('see lesson 01')."""
    path = make_notebook(tmp_path / "02_bad.ipynb", source)
    assert run_notebook(path, timeout=60, write=False)["error"] == error


def test_lessons_without_an_action_says_which_are_possible(capsys):
    """It said 'the following arguments are required: action', the name of a variable."""
    from analysis import lessons

    with pytest.raises(SystemExit) as exit_:
        lessons.cli([])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == ("python -m analysis lessons: error: the following arguments are "
                                    "required: {list,run}")


def test_kernel_channels_are_polled_in_short_slices():
    """A zmq wake-up that never comes (the message is there, the poll not told) cost the whole
    cell timeout: lesson 05 ran 935 s instead of 40. Reads now poll ≤ 1 s at a time, so a
    message a poll missed is found by the next; the timeout still raises Empty."""
    import asyncio
    from queue import Empty

    from analysis.lessons import _sliced_get_msg

    asked = []

    async def missed_twice(timeout=None):  # the reply arrives, but two polls miss it
        asked.append(timeout)
        if len(asked) <= 2:
            raise Empty
        return {"msg": "execute_reply"}

    get = _sliced_get_msg(missed_twice, slice_s=0.01)
    assert asyncio.run(get(timeout=900)) == {"msg": "execute_reply"}
    assert len(asked) == 3 and all(0 < t <= 0.01 for t in asked)
    asked.clear()
    assert asyncio.run(get()) == {"msg": "execute_reply"}  # no timeout: slices until it comes
    assert asked == [0.01, 0.01, 0.01]

    async def never(timeout=None):
        await asyncio.sleep(timeout)
        raise Empty

    t0 = time.monotonic()
    with pytest.raises(Empty):
        asyncio.run(_sliced_get_msg(never, slice_s=0.01)(timeout=0.05))
    assert 0.05 <= time.monotonic() - t0 < 1.0


@pytest.mark.parametrize("module", ["analysis.binarized", "analysis.clipping.ptq",
                                    "analysis.diffusion.large_batch", "analysis.margin.common",
                                    "analysis.landscape.experiment"])
def test_lesson_settings_give_a_copy_of_each_modes_sizes(module):
    """lesson_settings(fast) is SETTINGS["fast"] or SETTINGS["normal"], two different size sets,
    as a copy: a lesson that changes its dict leaves the next call's sizes alone."""
    import importlib

    m = importlib.import_module(module)
    fast, normal = m.lesson_settings(True), m.lesson_settings(False)
    assert fast == m.SETTINGS["fast"] and normal == m.SETTINGS["normal"] and fast != normal
    fast["changed"] = True
    assert "changed" not in m.lesson_settings(True)
