"""Figure functions of analysis/plots read as a reader of the papers would: labels in the units of
their axes, series that can be told apart, and no crash on results the library can produce."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.colors as mcolors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from analysis import data  # noqa: E402
from analysis import margin as M  # noqa: E402
from analysis.plots import PALETTE  # noqa: E402
from analysis.plots import diffusion as D  # noqa: E402
from analysis.plots import landscape as LS  # noqa: E402
from analysis.plots import margin as P  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_gap_curves_fit_label_is_in_the_degrees_of_its_axis():
    """The angle is drawn in degrees and the fit (of `record.angle`, radians) drawn converted,
    but its legend gave the radian coefficients: '+0.011 + 0.43/log t' beside a curve at ~25°."""
    X, y = data.load("separable", n=40, d=2, margin=0.5, seed=0)
    r = M.gradient_descent(X, y, steps=2000)
    fit = M.fit_rate(r.t, r.angle, "1/log t", decades=1.3)
    ax = P.gap_curves([r], ["run"], fits=[fit]).axes[0]
    assert "degrees" in ax.get_ylabel()
    line = next(ln for ln in ax.get_lines() if "/log t" in ln.get_label())
    label = line.get_label()
    assert f"{np.degrees(fit.slope):+.1f}°/log t" in label
    assert f"{np.degrees(fit.intercept):+.2f}°" in label
    # the label's law is the drawn curve
    t = np.asarray(line.get_xdata(), dtype=float)
    deg = np.degrees(fit.intercept) + np.degrees(fit.slope) / np.log(t)
    np.testing.assert_allclose(line.get_ydata(), deg)


def _record(n: int, distance=None) -> dict:
    steps = list(range(1, n + 1))
    return {"steps": steps, "distance": distance or [0.1 + np.log(t) for t in steps]}


@pytest.mark.parametrize("fit_run", [
    _record(6, [0.1, 0.5, 0.8, float("nan"), float("nan"), float("nan")]),  # diverged
    _record(2),                                                            # too short to fit
])
def test_distance_vs_updates_draws_a_run_it_cannot_fit(fit_run):
    """The large-batch experiment draws this figure after its runs: a fitted run that diverged
    (NaN distances) or has under 3 points raised ValueError there, and no figure was written."""
    fig = D.distance_vs_updates({"records": {"small batch": fit_run}})
    labels = [ln.get_label() for ln in fig.axes[0].get_lines()]
    assert labels == ["small batch"]  # the curve, and no fit line
    fig.savefig(__import__("io").BytesIO(), format="png")


def test_distance_vs_updates_still_fits_a_good_run():
    fig = D.distance_vs_updates({"records": {"a": _record(20), "b": _record(5)}})
    labels = [ln.get_label() for ln in fig.axes[0].get_lines()]
    assert labels[:2] == ["a", "b"] and labels[2].startswith("fit to a: 0.10 + 1.00·log t")


def test_layer_distances_tells_every_layer_apart_and_keeps_grey_for_the_paper():
    """8 layers in 6 colours drew layers 1 and 7, 2 and 8 with the same colour and line style
    (the legend could not say which curve is which), and layer 6 in the paper's grey."""
    steps = list(range(1, 11))
    record = {"steps": steps, "layers": {str(i): [i * 0.1 * t for t in steps] for i in range(8, 0, -1)}}
    lines = D.layer_distances(record).axes[0].get_lines()
    assert len(lines) == 8
    styles = [(mcolors.to_hex(ln.get_color()), ln.get_linestyle()) for ln in lines]
    assert len(set(styles)) == 8
    assert mcolors.to_hex(PALETTE["paper"]) not in {c for c, _ in styles}



def _step_counts(patch) -> np.ndarray:
    """Bin heights of a histtype="step" histogram: vertices (x0, 0), (x0, h0), (x1, h0), (x1, h1), ..."""
    return patch.get_xy()[1:-1:2, 1]


def test_hessian_spectrum_counts_every_eigenvalue():
    """The bins ended at ±100: an eigenvalue beyond (a sharper minimum, a larger d0) was left out
    of the histogram without a word."""
    lam = np.array([-1e-3, 0.0, 2.0, 500.0, -3000.0])
    ax = LS.hessian_spectrum({"a": lam, "b": np.array([1.0, 2.0])}).axes[0]
    assert [_step_counts(p).sum() for p in ax.patches] == [5, 2]
    lo, hi = ax.get_xlim()
    assert lo <= -3000 and hi >= 500


def test_hessian_spectrum_keeps_its_bins_for_small_eigenvalues():
    (patch,) = LS.hessian_spectrum({"a": np.array([-1e-3, 0.0, 2.0])}).axes[0].patches
    assert _step_counts(patch).sum() == 3
    assert patch.get_xy()[:, 0].min() == -100 and patch.get_xy()[:, 0].max() == 100


def _history(n: int = 3):
    from analysis.training import History
    return History([{"epoch": e, "train_loss": 1.0 / e, "train_error": 0.5 / e,
                     "test_loss": 1.2 / e, "test_error": 0.6 / e} for e in range(1, n + 1)])


def _line_colors(ax) -> dict[str, str]:
    return {ln.get_label(): mcolors.to_hex(ln.get_color()) for ln in ax.get_lines()}


def test_training_curves_colour_follows_the_kind_of_run_not_its_position():
    """Colours were given by position through PALETTE: the train CLI's one float run (`train
    --model mlp`) was drawn binary red, and a third run got the paper's grey."""
    from analysis.plots import training_curves
    # the train CLI: one float run
    err = training_curves(_history(), kinds=["float"]).axes[1]
    assert set(_line_colors(err).values()) == {PALETTE["float"]}
    # lesson 01's call: binarized red, float teal
    err = training_curves(_history(), _history(), labels=["binarized", "float"],
                          kinds=["binary", "float"]).axes[1]
    colors = _line_colors(err)
    assert colors["binarized test"] == PALETTE["binary"] and colors["float test"] == PALETTE["float"]
    # three measured runs: no grey, and two of a kind still told apart
    err = training_curves(_history(), _history(), _history(), labels=["bnn-mlp", "mlp", "mlp wide"],
                          kinds=["binary", "float", "float"]).axes[1]
    lines = {ln.get_label(): ln for ln in err.get_lines()}
    assert PALETTE["paper"] not in _line_colors(err).values()
    assert mcolors.to_hex(lines["mlp wide test"].get_color()) == PALETTE["float"]
    assert lines["mlp test"].get_marker() != lines["mlp wide test"].get_marker()
    with pytest.raises(ValueError, match="kinds"):
        training_curves(_history(), kinds=["paper"])


def test_train_cli_draws_a_float_run_in_teal(tmp_path, monkeypatch):
    """`train --model mlp` wrote curves.png with its float run in binary red."""
    import analysis.plots
    from analysis import training

    drawn = []

    def spy(*args, **kwargs):
        fig = training_curves(*args, **kwargs)
        drawn.append(fig)
        return fig

    training_curves = analysis.plots.training_curves
    monkeypatch.setattr(analysis.plots, "training_curves", spy)
    for model, kind in (("mlp", "float"), ("bnn-mlp", "binary")):
        assert training.cli(["--model", model, "--dataset", "digits", "--epochs", "1", "--width", "8",
                             "--depth", "1", "--out", str(tmp_path), "--name", model]) == 0
        assert set(_line_colors(drawn[-1].axes[1]).values()) == {PALETTE[kind]}, model


def test_gap_curves_theory_line_is_the_analysis_function_and_always_in_the_legend(monkeypatch):
    """The loss panel recomputed ‖ŵ‖²/(ηt) itself instead of calling `margin.theory_loss`, and
    its legend entry was given only when the first run was GD: after an SGD run it was unlabelled."""
    X, y = data.load("separable", n=30, d=2, margin=0.5, seed=0)
    sgd = M.gradient_descent(X, y, steps=300, optimizer="sgd", batch_size=5)
    gd = M.gradient_descent(X, y, steps=300)
    calls = []

    def spy(svm, lr, t):
        calls.append(lr)
        return M.theory_loss(svm, lr, t)

    monkeypatch.setattr(P, "theory_loss", spy)
    ax = P.gap_curves([sgd, gd], ["sgd", "gd"]).axes[2]
    assert calls == [gd.lr]
    theory = [ln for ln in ax.get_lines() if ln.get_label().startswith("theory")]
    assert len(theory) == 1
    np.testing.assert_allclose(theory[0].get_ydata(), M.theory_loss(gd.svm, gd.lr, gd.t))
    assert theory[0].get_label() in [t.get_text() for t in ax.get_legend().get_texts()]


def test_sparsity_vs_depth_writes_l_2_over_l_in_mathtext():
    """The legend read 'ℓ_{2/L} stationary point', braces and all."""
    depths = (1, 2)
    sparsity = {(kind, d): [0.5, 0.6] for kind in ("conv", "fc", "bridge") for d in depths}
    fb = M.FourierBias(depths=depths, sparsity=sparsity, angle_svm={}, angle_bridge={}, settings={})
    labels = [t.get_text() for t in P.sparsity_vs_depth(fb).axes[0].get_legend().get_texts()]
    bridge = next(label for label in labels if "stationary" in label)
    assert bridge.startswith("$") and r"\ell_{2/L}" in bridge and "ℓ" not in bridge


# --- the command-line writers close what they save -------------------------------------------

def test_large_batch_writer_closes_its_figures(tmp_path):
    """`experiment large-batch` saved distance.png and errors.png and kept both figures open: a
    researcher running the writer in a loop grew memory (and pyplot warns past 20 figures)."""
    from analysis.diffusion import large_batch

    fit = {"log": {"r2": 0.9}, "power": {"r2": 0.8}, "sqrt": {"r2": 0.7}}
    names = ["small batch (20)", "large batch (80)", "+ all fixes"]
    rows = [{"name": n, "batch_size": 20, "lr": 0.1, "epochs": 1, "updates": 10 * (i + 1),
             "train_error": 0.1, "test_error": 0.2 - 0.05 * (i % 2), "final_distance": 1.0,
             "fits": fit} for i, n in enumerate(names)]
    results = {"rows": rows, "records": {n: _record(6) for n in names}}
    before = plt.get_fignums()
    large_batch._write_table_and_figures(results, tmp_path)
    assert (tmp_path / "distance.png").stat().st_size > 0
    assert plt.get_fignums() == before


def test_minima_cli_closes_its_figures(tmp_path, monkeypatch):
    from analysis import landscape

    monkeypatch.setitem(landscape.SWEEPS, "fast", dict(n=12, d0=3, widths=(1, 2, 8), runs=2,
                                                       max_steps=50, data=("random",)))
    before = plt.get_fignums()
    assert landscape.experiment_cli(["--fast", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "slices.png").stat().st_size > 0
    assert plt.get_fignums() == before


def test_train_cli_closes_its_figure(tmp_path):
    from analysis import training

    before = plt.get_fignums()
    assert training.cli(["--model", "mlp", "--dataset", "digits", "--epochs", "1", "--width", "8",
                         "--depth", "1", "--out", str(tmp_path), "--name", "run"]) == 0
    assert (tmp_path / "run" / "curves.png").stat().st_size > 0
    assert plt.get_fignums() == before
