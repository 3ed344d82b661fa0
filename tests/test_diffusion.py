"""Weight diffusion (callback, fits, random walks), Ghost Batch-Norm, large-batch recipes,
the large-batch experiment and its dashboard (Hoffer, Hubara, Soudry 2017)."""

import copy
import json
import math

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from torch import nn

from analysis import diffusion as D
from analysis import models
from analysis.diffusion import large_batch
from analysis.diffusion.record import W0_FILE
from analysis.layers import GhostBatchNorm1d, GhostBatchNorm2d
from analysis.training import CHECKPOINT, fit, large_batch_recipe

matplotlib.use("Agg")


def _toy(n=64, d=12, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g)
    y = torch.randint(0, classes, (n,), generator=g)
    return X, y


def _model(d=12, classes=3, ghost=None):
    torch.manual_seed(0)
    return models.build("mlp", in_shape=(d,), num_classes=classes, width=16, depth=2, ghost_size=ghost)


class _Direct:
    """Reference: the distance computed the slow way (a full copy of w_0, a loop) after every update."""

    def __init__(self):
        self.d, self.layers = [], []

    def on_train_begin(self, state):
        self.w0 = {n: p.detach().clone() for n, p in state.model.named_parameters()}

    def on_step_end(self, state):
        self.d.append(D.weight_distance(state.model, self.w0))
        per = {}
        for n, p in state.model.named_parameters():
            layer = n.rpartition(".")[0]
            per[layer] = per.get(layer, 0.0) + float((p.detach().double() - self.w0[n].double()).pow(2).sum())
        self.layers.append({k: math.sqrt(v) for k, v in per.items()})


# --- the callback ------------------------------------------------------------------------------

def test_callback_matches_direct_computation_at_every_update():
    rec, direct = D.WeightDiffusion(every=1), _Direct()
    fit(_model(), _toy(), epochs=3, batch_size=16, optimizer="sgd", lr=0.1, callbacks=[rec, direct])
    r = rec.record
    assert r.steps == list(range(1, 13))
    np.testing.assert_allclose(r.distance, direct.d, rtol=1e-5)
    assert set(r.layers) == set(direct.layers[0])
    for name, values in r.layers.items():
        np.testing.assert_allclose(values, [row[name] for row in direct.layers], rtol=1e-5, atol=1e-7)
    # layers partition the parameters: Σ_l d_l² = d²
    total = np.sqrt(sum(np.square(v) for v in r.layers.values()))
    np.testing.assert_allclose(total, r.distance, rtol=1e-6)
    assert r.distance[-1] > r.distance[0] > 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_callback_on_a_gpu_model():
    rec, direct = D.WeightDiffusion(every=1), _Direct()
    fit(_model(), _toy(), epochs=1, batch_size=16, optimizer="sgd", lr=0.1, callbacks=[rec, direct],
        device="cuda")
    np.testing.assert_allclose(rec.record.distance, direct.d, rtol=1e-5)


def test_callback_every_k_and_the_last_update():
    rec = D.WeightDiffusion(every=5, layers=False)
    fit(_model(), _toy(), epochs=3, batch_size=16, lr=0.01, callbacks=[rec])
    assert rec.record.steps == [5, 10, 12]  # multiples of k, then the final update
    assert rec.record.layers == {}


def test_auto_record_points_are_log_spaced_and_few():
    pts = D.record_points(10**6)
    assert pts[:10] == list(range(1, 11))          # every update at first
    assert len(pts) < 160 and pts[-1] <= 10**6
    ratios = np.diff(np.log10(pts[30:]))
    assert np.all(ratios > 0) and ratios.max() < 0.08
    assert D.record_points(30, every=10) == [10, 20, 30]


def test_record_save_load_and_run_folder(tmp_path):
    rec = D.WeightDiffusion()
    fit(_model(), _toy(), epochs=2, batch_size=16, lr=0.01, callbacks=[rec], run_dir=tmp_path / "run")
    saved = json.loads((tmp_path / "run" / "diffusion.json").read_text())
    assert saved["steps"] == rec.record.steps
    back = D.DiffusionRecord.load(tmp_path / "run")
    assert back == rec.record
    path = rec.record.save(tmp_path / "other.json")
    assert D.DiffusionRecord.load(path).distance == rec.record.distance
    with pytest.raises(FileNotFoundError, match="no diffusion record"):
        D.DiffusionRecord.load(tmp_path / "missing.json")


@pytest.mark.parametrize("every", ["auto", 5])
def test_resumed_run_goes_on_with_the_record(tmp_path, every):
    """Stop after 2 of 4 epochs and resume: distances still from the first w_0, same record."""
    kw = dict(batch_size=16, optimizer="sgd", lr=0.1, seed=3)
    torch.manual_seed(0)
    whole = D.WeightDiffusion(every=every)
    fit(_model(), _toy(), epochs=4, callbacks=[whole], **kw)
    torch.manual_seed(0)
    first = D.WeightDiffusion(every=every)
    fit(_model(), _toy(), epochs=2, callbacks=[first], run_dir=tmp_path, **kw)
    assert (tmp_path / W0_FILE).exists()
    second = D.WeightDiffusion(every=every)
    fit(_model(), _toy(), epochs=4, callbacks=[second], run_dir=tmp_path, resume=True, **kw)
    r, w = second.record, whole.record
    assert r.steps[: len(first.record.steps)] == first.record.steps  # the first part kept
    extra = set(r.steps) - set(w.steps)
    assert extra <= {8}  # at most the last update of the first run (update 8), recorded then
    keep = [i for i, t in enumerate(r.steps) if t not in extra]
    assert [r.steps[i] for i in keep] == w.steps
    np.testing.assert_allclose([r.distance[i] for i in keep], w.distance, rtol=1e-5)
    assert "restarted_at_update" not in r.meta
    assert D.DiffusionRecord.load(tmp_path) == r


def test_resume_after_a_crash_between_record_and_checkpoint_keeps_one_record(tmp_path):
    """The record is saved before the checkpoint at an epoch's end; a run killed in between
    resumes from an older checkpoint with a longer record. The points past the checkpoint are
    recorded again, not twice (they were duplicated: t went 9 … 12, then 9 … 12 again)."""
    import shutil

    kw = dict(batch_size=16, optimizer="sgd", lr=0.1, seed=3)
    torch.manual_seed(0)
    whole = D.WeightDiffusion(every=1)
    fit(_model(), _toy(), epochs=4, callbacks=[whole], **kw)
    torch.manual_seed(0)
    fit(_model(), _toy(), epochs=2, callbacks=[D.WeightDiffusion(every=1)], run_dir=tmp_path, **kw)
    shutil.copy(tmp_path / CHECKPOINT, tmp_path / "epoch2.pt")
    fit(_model(), _toy(), epochs=3, callbacks=[D.WeightDiffusion(every=1)], run_dir=tmp_path,
        resume=True, **kw)
    shutil.copy(tmp_path / "epoch2.pt", tmp_path / CHECKPOINT)  # the crash: record of epoch 3 kept
    again = D.WeightDiffusion(every=1)
    fit(_model(), _toy(), epochs=4, callbacks=[again], run_dir=tmp_path, resume=True, **kw)
    assert again.record.steps == whole.record.steps == list(range(1, 17))
    np.testing.assert_allclose(again.record.distance, whole.record.distance, rtol=1e-5)


def test_resume_without_w0_starts_a_new_record(tmp_path):
    kw = dict(batch_size=16, lr=0.1)
    fit(_model(), _toy(), epochs=1, run_dir=tmp_path, **kw)  # no diffusion callback: no w_0 saved
    rec = D.WeightDiffusion(every=1)
    fit(_model(), _toy(), epochs=2, callbacks=[rec], run_dir=tmp_path, resume=True, **kw)
    assert rec.record.meta["restarted_at_update"] == 4 and rec.record.steps == [1, 2, 3, 4]


@pytest.mark.parametrize("every", [0, -3, 1.5, "often", True])
def test_bad_every_is_refused(every):
    with pytest.raises(ValueError, match="every must be a positive number of updates or 'auto'"):
        D.WeightDiffusion(every=every)


# --- fits --------------------------------------------------------------------------------------

T = np.unique(np.round(np.logspace(0, 4, 60)))


def test_fit_log_recovers_a_and_b():
    rng = np.random.default_rng(0)
    d = 0.7 + 2.5 * np.log(T) + rng.normal(0, 0.01, T.shape)
    a, b, r2 = D.fit_log(T, d)
    assert a == pytest.approx(0.7, abs=0.02) and b == pytest.approx(2.5, abs=0.005) and r2 > 0.9999
    a, b, _ = D.fit_log(T, 3.0 - 0.5 * np.log(T), t_min=10)
    assert (a, b) == (pytest.approx(3.0), pytest.approx(-0.5))


def test_fit_power_and_sqrt_recover_their_laws():
    c, p, r2 = D.fit_power(T, 1.5 * T ** 0.3)
    assert c == pytest.approx(1.5, rel=1e-3) and p == pytest.approx(0.3, rel=1e-3) and r2 > 0.9999
    a, c, r2 = D.fit_sqrt(T, 2.0 + 0.1 * np.sqrt(T))
    assert a == pytest.approx(2.0) and c == pytest.approx(0.1) and r2 == pytest.approx(1.0)


def test_compare_fits_names_the_true_law():
    assert D.compare_fits(T, 1 + 2 * np.log(T))["best"] == "log"
    assert D.compare_fits(T, 0.5 * np.sqrt(T))["best"] in ("sqrt", "power")
    assert D.compare_fits(T, 0.5 * T ** 0.8)["best"] == "power"
    out = D.compare_fits(T, 1 + 2 * np.log(T))
    assert out["log"]["r2"] > out["sqrt"]["r2"] and out["points"] == len(T)


def test_fits_refuse_bad_curves():
    with pytest.raises(ValueError, match="at least 3 points"):
        D.fit_log([1, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="at least 3 points"):
        D.fit_log([1, 2, 3, 4], [0.1, 0.2, 0.3, 0.4], t_min=2, t_max=3)
    with pytest.raises(ValueError, match="equal length"):
        D.fit_log([1, 2, 3], [0.1, 0.2])
    with pytest.raises(ValueError, match="d > 0"):
        D.fit_power([1, 2, 3], [0.0, 0.2, 0.3])


def test_random_walk_keeps_its_environment_in_one_byte_a_site():
    """walkers × (2·steps + 1) sites: 400 × 10,001 took 32 MB as float64, 4 MB as int8."""
    import tracemalloc
    tracemalloc.start()
    try:
        D.random_walk(5_000, "random", walkers=400)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert 4_000_000 < peak < 8_000_000


def test_random_walks_flat_is_sqrt_and_random_potential_is_slower():
    t, d_flat = D.random_walk(20_000, "flat", walkers=200)
    _, d_rand = D.random_walk(20_000, "random", walkers=200, bias=0.35)
    _, p_flat, _ = D.fit_power(t, d_flat)
    _, p_rand, _ = D.fit_power(t, d_rand)
    assert p_flat == pytest.approx(0.5, abs=0.07)
    assert p_rand < 0.35 and d_rand[-1] < 0.5 * d_flat[-1]
    # logarithmic growth: the local exponent shrinks with t; the random walk's stays at ½
    early, late = D.fit_power(t, d_rand, 10, 100)[1], D.fit_power(t, d_rand, 2000, 20_000)[1]
    assert late < 0.8 * early
    assert D.fit_power(t, d_flat, 2000, 20_000)[1] == pytest.approx(0.5, abs=0.07)
    with pytest.raises(ValueError, match="unknown potential"):
        D.random_walk(10, "rough")


# --- Ghost Batch-Norm --------------------------------------------------------------------------

@pytest.mark.parametrize("cls,ref_cls,shape", [(GhostBatchNorm1d, nn.BatchNorm1d, (32, 5)),
                                                (GhostBatchNorm2d, nn.BatchNorm2d, (8, 3, 4, 4))])
def test_ghost_bn_equals_batch_norm_when_ghost_is_the_batch(cls, ref_cls, shape):
    torch.manual_seed(0)
    gbn, bn = cls(shape[1], ghost_size=shape[0]), ref_cls(shape[1])
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.copy_(torch.linspace(-1, 1, shape[1]))
        gbn.weight.copy_(bn.weight)
        gbn.bias.copy_(bn.bias)
    for _ in range(3):  # train mode: outputs and running statistics
        x = 2 * torch.randn(shape) + 1
        torch.testing.assert_close(gbn(x), bn(x), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gbn.running_mean, bn.running_mean)
    torch.testing.assert_close(gbn.running_var, bn.running_var)
    gbn.eval(), bn.eval()
    x = torch.randn(shape)
    torch.testing.assert_close(gbn(x), bn(x), rtol=1e-5, atol=1e-5)


def test_ghost_bn_normalizes_each_ghost_batch_and_steps_running_stats_per_ghost_batch():
    torch.manual_seed(1)
    x = torch.randn(12, 4) * torch.tensor([1.0, 2.0, 3.0, 4.0]) + 5
    gbn = GhostBatchNorm1d(4, ghost_size=4)
    out = gbn(x)
    chunks = x.split(4)
    for o, c in zip(out.split(4), chunks):
        bn = nn.BatchNorm1d(4)
        torch.testing.assert_close(o, bn(c), rtol=1e-5, atol=1e-5)
    ref = nn.BatchNorm1d(4)  # the paper's running statistics: batch-norm on each ghost batch in turn
    for c in chunks:
        ref(c)
    torch.testing.assert_close(gbn.running_mean, ref.running_mean)
    torch.testing.assert_close(gbn.running_var, ref.running_var)
    assert int(gbn.num_batches_tracked) == 3


def test_ghost_bn_gradients_flow_and_model_trains():
    X, y = _toy(n=64)
    h = fit(_model(ghost=8), (X, y), epochs=5, batch_size=32, lr=0.01)
    assert h["train_loss"][-1] < h["train_loss"][0]


def test_ghost_size_must_divide_the_batch():
    gbn = GhostBatchNorm1d(3, ghost_size=5)
    with pytest.raises(ValueError, match="ghost_size 5 must divide the batch size 12"):
        gbn(torch.randn(12, 3))
    with pytest.raises(ValueError, match="ghost_size must be a positive integer"):
        GhostBatchNorm2d(3, ghost_size=0)


# --- regime arithmetic ---------------------------------------------------------------------------

def test_large_batch_recipe_arithmetic():
    lr, epochs, ms = large_batch_recipe(1024, 64, 0.1, 10, [3, 7], "sqrt", True)
    assert lr == pytest.approx(0.4) and epochs == 160 and ms == [48, 112]
    assert large_batch_recipe(1024, 64, 0.1, 10, [3], "linear") == (pytest.approx(1.6), 10, [3])
    assert large_batch_recipe(64, 64, 0.1, 10, [3], "sqrt", True) == (pytest.approx(0.1), 10, [3])
    with pytest.raises(ValueError, match="unknown lr_scaling"):
        large_batch_recipe(128, 64, 0.1, 10, lr_scaling="cube")
    with pytest.raises(ValueError, match="batch sizes must be positive"):
        large_batch_recipe(0, 64, 0.1, 10)


def test_regime_adaptation_matches_the_small_batch_updates():
    data = _toy(n=64)
    small = fit(_model(), data, epochs=2, batch_size=8, lr=0.01)
    large = fit(_model(), data, epochs=2, batch_size=32, lr=0.01, base_batch_size=8,
                lr_scaling="sqrt", regime_adaptation=True)
    assert small.final["updates"] == large.final["updates"] == 16
    assert len(large) == 8 and large.final["lr"] == pytest.approx(0.02)
    with pytest.raises(ValueError, match="need base_batch_size"):
        fit(_model(), data, epochs=1, batch_size=32, regime_adaptation=True)


# --- the experiment and its dashboard -------------------------------------------------------------

TINY = {"dataset": "digits", "width": 16, "depth": 1, "epochs": 1, "small": 20, "large": 80,
        "lr": 0.05, "momentum": 0.9, "grad_clip": 5.0}


def test_experiment_cli_writes_table_records_and_figures(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(D.SETTINGS, "fast", TINY)
    assert D.experiment_cli(["--fast", "--out", str(tmp_path)]) == 0
    res = D.load_results(tmp_path)
    rows = {r["name"]: r for r in res["rows"]}
    assert [r["name"] for r in res["rows"]] == [c.name for c in D.large_batch_configs(20, 80)]
    n = 1438  # digits train split
    assert rows["small batch (20)"]["updates"] == n // 20
    assert rows["large batch (80)"]["updates"] == n // 80
    ra = rows["+ regime adaptation"]
    assert ra["updates"] == 4 * (n // 80) and ra["epochs"] == 4
    assert rows["+ sqrt LR"]["lr"] == pytest.approx(0.1)
    for name, rec in res["records"].items():
        assert rec["steps"][-1] == rows[name]["updates"]
        assert rec["distance"][-1] == pytest.approx(rows[name]["final_distance"])
    for f in ("table.md", "distance.png", "errors.png"):
        assert (tmp_path / f).stat().st_size > 0
    assert "| + Ghost BN | 80 |" in (tmp_path / "table.md").read_text()
    assert "share of the large-batch gap" in capsys.readouterr().out


def test_experiment_cli_out_that_is_a_file_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    with pytest.raises(SystemExit) as exit_:
        D.experiment_cli(["--fast", "--out", str(tmp_path / "file")])
    assert exit_.value.code == 2
    assert f"argument --out: {tmp_path / 'file'} is a file, not a folder" in capsys.readouterr().err


@pytest.mark.parametrize("epochs", ["0", "-3", "2.5"])
def test_experiment_cli_bad_epochs_is_an_argparse_error(tmp_path, capsys, epochs):
    with pytest.raises(SystemExit) as exit_:
        D.experiment_cli(["--fast", "--epochs", epochs, "--out", str(tmp_path / "out")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert (f"argument --epochs: must be >= 1, got {epochs}" in err if epochs != "2.5"
            else "argument --epochs: not an integer: '2.5'" in err)
    assert not (tmp_path / "out").exists()


def _interrupt_at(n, unit, ran):
    """`unit` that appends its first argument's name to `ran` and raises KeyboardInterrupt
    (Ctrl-C) on its n-th call (n=None: never)."""
    def wrapped(config, *args, **kwargs):
        ran.append(config.name)
        if len(ran) == n:
            raise KeyboardInterrupt
        return unit(config, *args, **kwargs)
    return wrapped


def _without_seconds(results):
    return dict(results, seconds=None, rows=[dict(r, seconds=None) for r in results["rows"]])


def test_experiment_cli_resumes_from_the_configs_an_interrupted_run_finished(tmp_path, monkeypatch,
                                                                             capsys, exit_code_after_ctrl_c):
    """Ctrl-C during the 2nd config: exit 130, one line, the partial file holds the 1st config;
    the same command runs only the other 4, and its outputs are those of an uninterrupted run.
    (The old code kept nothing: results.json was written only at the very end.)"""
    monkeypatch.setitem(D.SETTINGS, "fast", TINY)
    names = [c.name for c in D.large_batch_configs(20, 80)]
    run_config, ran = D.run_config, []
    a, b = tmp_path / "a", tmp_path / "b"

    monkeypatch.setattr(large_batch, "run_config", _interrupt_at(2, run_config, ran))
    assert exit_code_after_ctrl_c(D.experiment_cli, ["--fast", "--out", str(a)]) == 130
    partial = a / "results.partial.json"
    assert capsys.readouterr().err == (f"\ninterrupted: 1 of 5 configs done, kept in {partial}; "
                                       "run the same command to go on\n")
    kept = json.loads(partial.read_text())
    assert [r["name"] for r in kept["rows"]] == names[:1] and list(kept["records"]) == names[:1]
    assert not (a / "results.json").exists()

    ran.clear()
    monkeypatch.setattr(large_batch, "run_config", _interrupt_at(None, run_config, ran))
    assert D.experiment_cli(["--fast", "--out", str(a)]) == 0
    assert ran == names[1:]
    assert f"resuming: 1 of 5 configs done in {a}\n" in capsys.readouterr().out
    assert not partial.exists()

    ran.clear()
    assert D.experiment_cli(["--fast", "--out", str(b)]) == 0
    assert ran == names
    resumed, whole = D.load_results(a), D.load_results(b)
    assert _without_seconds(resumed) == _without_seconds(whole)
    assert resumed["rows"][0]["seconds"] == kept["rows"][0]["seconds"]
    for f in ("table.md", "distance.png", "errors.png"):
        assert (a / f).read_bytes() == (b / f).read_bytes(), f


def test_experiment_cli_refuses_a_partial_run_of_other_settings(tmp_path, monkeypatch, capsys,
                                                                exit_code_after_ctrl_c):
    monkeypatch.setitem(D.SETTINGS, "fast", TINY)
    ran = []
    monkeypatch.setattr(large_batch, "run_config", _interrupt_at(2, D.run_config, ran))
    assert exit_code_after_ctrl_c(D.experiment_cli, ["--fast", "--out", str(tmp_path)]) == 130
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        D.experiment_cli(["--fast", "--epochs", "2", "--out", str(tmp_path)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert (f"error: {tmp_path / 'results.partial.json'} holds an unfinished run with epochs = 1, "
            "not 2: run with its settings to resume it, or choose another --out") in err
    assert len(ran) == 2  # nothing ran


def test_gap_recovered():
    rows = [{"test_error": e} for e in (0.05, 0.15, 0.12, 0.08)]
    assert D.gap_recovered(rows) == pytest.approx(0.7)
    with pytest.raises(ValueError, match="need the small, large"):
        D.gap_recovered(rows[:2])


def test_ghost_bn_config_needs_a_dividing_batch():
    cfg = D.LargeBatchConfig("bad", 45, ghost=True)
    with pytest.raises(ValueError, match="ghost size 20 must divide the batch size 45"):
        D.run_config(cfg, TINY, None, None)


@pytest.fixture(scope="module")
def tiny_grid():
    settings = dict(TINY)
    configs = D.grid_configs(20, (80,))
    keep = {"B20-nolr", "B80-nolr", "B80-sqrt", "B80-sqrt-gbn", "B80-sqrt-gbn-ra"}
    res = D.run_large_batch([c for c in configs if c.name in keep], settings, log=lambda s: None)
    return res


def test_diffusion_callback_and_dashboard(tiny_grid):
    from analysis.widgets.diffusion import diffusion_callback, diffusion_dashboard

    fig, nums = diffusion_callback(80, "sqrt", True, False, grid=tiny_grid)
    row = {r["name"]: r for r in tiny_grid["rows"]}["B80-sqrt-gbn"]
    assert nums["run"] == "B80-sqrt-gbn" and nums["updates"] == row["updates"]
    assert nums["test_error"] == row["test_error"] and 0 <= nums["r2"] <= 1
    fig, nums = diffusion_callback(20, "sqrt", True, True, grid=tiny_grid)  # B_small: recipes are no-ops
    assert nums["run"] == "B20-nolr" and nums["gap"] == 0
    # one run, so one bar and one curve (were two identical bars, 'batch 20' and 'B20-nolr')
    assert [t.get_text() for t in fig.axes[1].get_xticklabels()] == ["batch 20"]
    assert len(fig.axes[1].patches) == 1
    with pytest.raises(ValueError, match="no precomputed run 'B80-nolr-ra'"):
        diffusion_callback(80, "none", False, True, grid=tiny_grid)
    with pytest.raises(ValueError, match="lr_scaling must be"):
        diffusion_callback(80, "cube", grid=tiny_grid)
    box = diffusion_dashboard(tiny_grid)
    assert box.last_result[1]["run"] == "B80-nolr"
    box.controls["lr_scaling"].value = "sqrt"
    box.controls["ghost_bn"].value = True
    box.controls["regime_adaptation"].value = True
    assert box.last_result[1]["run"] == "B80-sqrt-gbn-ra"
    assert box.last_result[1]["updates"] == 4 * row["updates"]


def test_shipped_grid_has_every_widget_combination():
    from analysis.widgets.diffusion import diffusion_callback, load_grid

    grid = load_grid()
    small = grid["settings"]["small"]
    for B in large_batch.GRID_BATCH_SIZES:
        for scaling in ("none", "sqrt"):
            for ghost in (False, True):
                for ra in (False, True):
                    fig, nums = diffusion_callback(B, scaling, ghost, ra, grid=grid)
                    plt.close(fig)
                    assert nums["updates"] > 0
    _, nums = diffusion_callback(small, grid=grid)
    assert nums["gap"] == 0
    assert all(rec["layers"] == {} for rec in grid["records"].values())  # shipped compact


def test_model_copy_is_not_needed_for_records():
    """The callback keeps one flat copy of w_0: its memory is one model's parameters."""
    model = _model()
    rec = D.WeightDiffusion()
    fit(model, _toy(), epochs=1, batch_size=16, lr=0.01, callbacks=[rec])
    n = sum(p.numel() for p in model.parameters())
    assert rec._w0.numel() == n == rec.record.meta["parameters"]
    assert D.weight_distance(model, copy.deepcopy(model)) == 0.0


def test_record_points_rejects_a_bad_density():
    """per_decade=0 was a ZeroDivisionError, a negative one silently recorded every update."""
    for bad in (0, -1):
        with pytest.raises(ValueError, match="per_decade must be positive"):
            D.record_points(100, per_decade=bad)
    assert len(D.record_points(10**6, per_decade=24)) < 200


def test_lesson04_exercise_uses_the_printed_log_fit():
    """Exercise 1 asks for b "from section 2": the fit cell must print it, and the solution's b
    and distances must be the notebook's own (committed, normal-mode) numbers."""
    import re
    from pathlib import Path

    import nbformat

    nb = nbformat.read(Path(__file__).parents[1] / "lessons" / "04_train_longer.ipynb", 4)
    text = lambda c: "".join(o.get("text", "") for o in c.get("outputs", []))  # noqa: E731
    fit = next(text(c) for c in nb.cells if "compare_fits" in c.source and c.cell_type == "code")
    b = float(re.search(r"log fit: d ≈ -?[\d.]+ \+ ([\d.]+)·log t", fit).group(1))
    table = next(o["data"]["text/markdown"] for c in nb.cells if c.cell_type == "code"
                 for o in c.get("outputs", []) if "text/markdown" in o.get("data", {}))
    dist = [float(row.split("|")[8]) for row in table.splitlines()[2:4]]  # small, large batch
    solution = nb.cells[-1].source
    stated_b = float(re.search(r"b ≈ ([\d.]+) of section 2", solution).group(1))
    assert stated_b == pytest.approx(b, abs=0.05)
    assert f"{b * math.log(20):.1f}" in solution
    assert f"{dist[0]:.2f} − {dist[1]:.2f} = {dist[0] - dist[1]:.1f}" in solution



@pytest.mark.parametrize("steps, walkers, name", [(2.5, 10, "steps"), (True, 10, "steps"),
                                                  (10, 2.5, "walkers"), (10, 0, "walkers")])
def test_random_walk_sizes_must_be_counts(steps, walkers, name):
    """steps=2.5 or walkers=2.5 were TypeErrors from inside numpy; steps=True walked one step."""
    with pytest.raises(ValueError, match=f"{name} must be a positive integer"):
        D.random_walk(steps, walkers=walkers)


# --- figures ---------------------------------------------------------------------------------------

def test_distance_vs_updates_fits_a_run_with_a_zero_distance():
    """Only the log law is drawn, but the figure fitted all three: c·t^p needs d > 0, so a run
    whose weights had not moved at a record (d = 0, e.g. a warm-up from lr 0) got no fit line."""
    from analysis.plots.diffusion import distance_vs_updates

    steps = list(range(1, 21))
    distance = [0.0] + [0.1 + math.log(t) for t in steps[1:]]
    fig = distance_vs_updates({"records": {"run": {"steps": steps, "distance": distance}}})
    a, b, r2 = D.fit_log(steps, distance)
    fit_line = [ln for ln in fig.axes[0].get_lines() if ln.get_label().startswith("fit to run")]
    assert len(fit_line) == 1 and f"{a:.2f} + {b:.2f}·log t (R² {r2:.3f})" in fit_line[0].get_label()
    np.testing.assert_allclose(fit_line[0].get_ydata(), a + b * np.log(steps))
    plt.close(fig)


def test_layer_distances_of_a_record_without_layers_is_a_value_error():
    """A record kept without layers (layers=False, or the shipped compact grid) drew an empty
    figure and a 'No artists with labels' warning; now a ValueError that says why."""
    from analysis.plots.diffusion import layer_distances
    from analysis.widgets.diffusion import load_grid

    before = plt.get_fignums()
    for record in (load_grid()["records"]["B50-nolr"], {"steps": [], "distance": [], "layers": {"0": []}}):
        with pytest.raises(ValueError, match="no per-layer distances"):
            layer_distances(record)
    assert plt.get_fignums() == before


@pytest.mark.parametrize("per_decade", [float("nan"), "24", 0, -2])
def test_bad_per_decade_is_refused_when_the_callback_is_made(per_decade):
    """WeightDiffusion checked per_decade <= 0 only: NaN passed and training stopped at its first
    update with 'cannot convert float NaN to integer', "24" with a TypeError from a comparison."""
    with pytest.raises(ValueError, match="per_decade must be positive"):
        D.WeightDiffusion(per_decade=per_decade)
    with pytest.raises(ValueError, match="per_decade must be positive"):
        D.record_points(100, per_decade=per_decade)


@pytest.mark.parametrize("fit_fn", [D.fit_log, D.fit_power, D.fit_sqrt, D.compare_fits])
def test_fits_refuse_a_nan_or_single_valued_t(fit_fn):
    """A NaN t fell out of the t_min..t_max window without a word (4 points given, 3 fitted);
    a single t value ended in numpy's LinAlgError 'SVD did not converge', with LAPACK noise."""
    with pytest.raises(ValueError, match="t must be finite"):
        fit_fn([1, 2, float("nan"), 4, 5], [1.0, 2.0, 3.0, 4.0, 5.0])
    with pytest.raises(ValueError, match="at least 2 distinct values"):
        fit_fn([3, 3, 3], [1.0, 2.0, 3.0])


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_callback_distance_of_a_half_precision_model(dtype):
    """The differences and their norms were taken in the weights' own dtype: a bfloat16 model's
    d(t) was off by ~1e-3 relative (8 mantissa bits) from ‖w_t − w_0‖ computed exactly."""
    from analysis.training import TrainState

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 3)).to(dtype)
    rec = D.WeightDiffusion(every=1)
    rec.on_train_begin(TrainState(model, torch.optim.SGD(model.parameters(), lr=0.1), batch_size=8))
    w0 = {n: p.detach().clone() for n, p in model.named_parameters()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1e-3 * torch.randn_like(p))
    total, per_layer = rec.distances()
    assert total == pytest.approx(D.weight_distance(model, w0), rel=1e-5)
    for name, d in zip(["0", "2"], per_layer):
        sub = {k: v for k, v in w0.items() if k.startswith(name + ".")}
        exact = math.sqrt(sum(float((p.detach().double() - sub[n].double()).pow(2).sum())
                              for n, p in model.named_parameters() if n in sub))
        assert d == pytest.approx(exact, rel=1e-5)


def test_distance_vs_updates_names_an_unknown_run():
    """A name or fit_of that is not a run of the results was a bare KeyError (after a figure was
    opened); now a ValueError that lists the runs."""
    from analysis.plots.diffusion import distance_vs_updates

    results = {"records": {"small": {"steps": [1, 2, 3, 4], "distance": [0.1, 0.5, 0.7, 0.8]}}}
    before = plt.get_fignums()
    for kwargs in ({"names": ["large"]}, {"fit_of": "large"}):
        with pytest.raises(ValueError, match="no record named 'large'; records: small"):
            distance_vs_updates(results, **kwargs)
    assert plt.get_fignums() == before


# --------------------------------------------------------------------------- mutation audit

def test_fit_r2_is_the_coefficient_of_determination():
    """fit_log/fit_sqrt R² is 1 − SS_res/SS_tot with SS_tot about the mean (= corr(x, d)²)."""
    rng = np.random.default_rng(1)
    d = 5.0 + 0.3 * np.log(T) + rng.normal(0, 0.2, T.shape)  # noisy, so R² is well below 1
    r2 = D.fit_log(T, d)[2]
    assert r2 == pytest.approx(np.corrcoef(np.log(T), d)[0, 1] ** 2, rel=1e-9)
    assert r2 < 0.99
    assert D.fit_sqrt(T, d)[2] == pytest.approx(np.corrcoef(np.sqrt(T), d)[0, 1] ** 2, rel=1e-9)


def test_flat_random_walk_distance_is_the_rms_sqrt_t():
    """random_walk's d(t) is the RMS distance, √E[x_t²] = √t for the flat walk (mean |x| is √(2t/π))."""
    t, d = D.random_walk(400, "flat", walkers=4000, seed=1)
    late = t >= 50
    ratio = float(np.mean(d[late] ** 2 / t[late]))
    assert ratio == pytest.approx(1.0, abs=0.08)  # E[x²] = t; 4000 walkers: ~2% noise


def test_callback_measures_the_trainable_parameters_only():
    """WeightDiffusion, like weight_distance, leaves frozen (requires_grad=False) parameters out."""
    model = _model()
    frozen = [n for n, p in model.named_parameters() if n.startswith("1.")]
    for n, p in model.named_parameters():
        p.requires_grad_(n not in frozen)
    rec = D.WeightDiffusion(every=1)
    fit(model, _toy(), epochs=1, batch_size=16, optimizer="sgd", lr=0.1, callbacks=[rec])
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert frozen and rec.record.meta["parameters"] == trainable
    assert "1" not in rec.record.layers and len(rec.record.layers) > 0


def test_diffusion_callback_gap_is_in_points_of_percent(tiny_grid):
    """numbers["gap"] = 100·(test error − the small batch's test error): points of %, as labelled."""
    from analysis.widgets.diffusion import diffusion_callback

    _, nums = diffusion_callback(80, "sqrt", True, False, grid=tiny_grid)
    rows = {r["name"]: r for r in tiny_grid["rows"]}
    expected = 100 * (rows["B80-sqrt-gbn"]["test_error"] - rows["B20-nolr"]["test_error"])
    assert nums["gap"] == pytest.approx(expected)
    assert nums["final_distance"] == rows["B80-sqrt-gbn"]["final_distance"]


def test_grid_rows_scale_lr_and_epochs_by_the_batch_ratio(tiny_grid):
    """B = 80 against B_small = 20: sqrt scaling gives lr 0.05·sqrt(80/20) = 0.1; regime
    adaptation trains 1 × 80/20 = 4 epochs: 4 times the updates of one epoch at B = 80 (the
    small batch's one epoch, but for the incomplete batches each epoch leaves out)."""
    rows = {r["name"]: r for r in tiny_grid["rows"]}
    small, plain, ra = rows["B20-nolr"], rows["B80-nolr"], rows["B80-sqrt-gbn-ra"]
    assert plain["lr"] == pytest.approx(0.05) and plain["epochs"] == 1
    assert rows["B80-sqrt"]["lr"] == pytest.approx(0.1) and rows["B80-sqrt"]["epochs"] == 1
    assert ra["lr"] == pytest.approx(0.1) and ra["epochs"] == 4 and ra["ghost_bn"] is True
    assert ra["updates"] == 4 * plain["updates"]
    assert abs(ra["updates"] - small["updates"]) <= 4  # digits: 1438 images, 71 or 72 small batches


def test_ghost_batches_are_the_small_batch(monkeypatch):
    """Ghost BN runs ghost batches of B_small (the settings' "small"), not of the batch."""
    built = {}

    def build(name, **kwargs):
        built.update(kwargs)
        raise KeyboardInterrupt  # stop before training

    monkeypatch.setattr(models, "build", build)
    X = torch.zeros(4, 1, 8, 8)
    data = (X, torch.tensor([0, 1, 2, 1]))
    for cfg, ghost in ((D.LargeBatchConfig("g", 80, "sqrt", ghost=True), 20),
                       (D.LargeBatchConfig("p", 80, "sqrt"), None)):
        with pytest.raises(KeyboardInterrupt):
            D.run_config(cfg, TINY, data, data)
        assert built["ghost_size"] == ghost and built["num_classes"] == 3


def test_grid_configs_are_every_combination_once():
    """The small batch once (no fixes), then 2 × 2 × 2 combinations for each other batch size;
    a batch size equal to the small one adds nothing."""
    configs = D.grid_configs(20, (20, 80, 160))
    assert len(configs) == 1 + 2 * 8 and len({c.name for c in configs}) == len(configs)
    assert [c.batch_size for c in configs].count(20) == 1
    assert {(c.lr_scaling, c.ghost, c.regime_adaptation) for c in configs if c.batch_size == 160} \
        == {(s, g, r) for s in (None, "sqrt") for g in (False, True) for r in (False, True)}


def test_gap_recovered_is_nan_when_the_large_batch_is_no_worse():
    assert math.isnan(D.gap_recovered([{"test_error": e} for e in (0.10, 0.10, 0.08)]))
    assert math.isnan(D.gap_recovered([{"test_error": e} for e in (0.12, 0.10, 0.08)]))
    assert D.gap_recovered([{"test_error": e} for e in (0.10, 0.20, 0.5, 0.10)]) == pytest.approx(1.0)


def test_large_batch_markdown_table_row():
    """Errors in percent with 2 decimals, lr to 3 significant digits, distance 2 decimals, R² of
    the log, power and sqrt fits in that order."""
    row = {"name": "+ sqrt LR", "batch_size": 1000, "lr": 0.0894427, "epochs": 5, "updates": 25,
           "train_error": 0.0312, "test_error": 0.05678, "final_distance": 3.14159,
           "fits": {"log": {"r2": 0.9871}, "power": {"r2": 0.5}, "sqrt": {"r2": 0.25}}}
    lines = D.markdown_table([row]).splitlines()
    assert len(lines) == 3 and lines[1].count("|") == lines[0].count("|")
    assert lines[2] == "| + sqrt LR | 1000 | 0.0894 | 5 | 25 | 3.12% | 5.68% | 3.14 | 0.987 / 0.500 / 0.250 |"


def test_large_batch_configs_add_the_fixes_one_by_one():
    configs = D.large_batch_configs(50, 1000)
    assert [(c.batch_size, c.lr_scaling, c.ghost, c.regime_adaptation) for c in configs] == [
        (50, None, False, False), (1000, None, False, False), (1000, "sqrt", False, False),
        (1000, "sqrt", True, False), (1000, "sqrt", True, True)]
