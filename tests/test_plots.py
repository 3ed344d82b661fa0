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


# --- what each figure must show: the data given, labelled, on the stated scales --------------
# (written from a mutation audit of analysis/plots: each test fails if a figure draws another
# series, drops its scale, or mislabels measured numbers as the paper's or the reverse)

def _legend(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


def _lines(ax) -> dict:
    return {ln.get_label(): ln for ln in ax.get_lines()}


def _xy(line) -> np.ndarray:
    return np.asarray(line.get_xydata(), dtype=float)


def test_training_curves_draw_each_history_in_its_panel_and_unit():
    from analysis.plots import training_curves
    h = _history(4)
    fig = training_curves(h, labels=["bnn"], kinds=["binary"], title="two runs")
    loss, err = fig.axes
    ep = [1, 2, 3, 4]
    lines = _lines(loss)
    np.testing.assert_allclose(_xy(lines["bnn train"]), np.c_[ep, h["train_loss"]])
    np.testing.assert_allclose(_xy(lines["bnn test"]), np.c_[ep, h["test_loss"]])
    lines = _lines(err)
    np.testing.assert_allclose(_xy(lines["bnn train"])[:, 1], 100 * np.array(h["train_error"]))
    np.testing.assert_allclose(_xy(lines["bnn test"])[:, 1], 100 * np.array(h["test_error"]))
    assert lines["bnn train"].get_linestyle() == "--" and lines["bnn test"].get_linestyle() == "-"
    assert err.get_ylabel() == "error (%)" and _legend(err) == ["bnn train", "bnn test"]
    assert fig._suptitle.get_text() == "two runs"


# binarized (lesson 01)

def _memory_rows(float_bytes, run_time_bytes):
    rows = [{"layer": str(i), "kind": kind, "float_bytes": f, "run_time_bytes": r, "ratio": f / r}
            for i, (kind, f, r) in enumerate(zip(("BinaryLinear", "BatchNorm1d"), float_bytes,
                                                 run_time_bytes))]
    f, r = sum(float_bytes), sum(run_time_bytes)
    return rows + [{"layer": "total", "kind": "", "float_bytes": f, "run_time_bytes": r, "ratio": f / r}]


def test_memory_figure_bars_are_the_bytes_and_title_says_measured_vs_paper():
    from analysis.plots.binarized import memory_figure
    rows = {"bnn": _memory_rows([4 * 2**20, 2**12], [2**17, 2**12]),
            "float": _memory_rows([4 * 2**20, 2**12], [4 * 2**20, 2**12])}
    ax_l, ax_t = memory_figure(rows).axes
    heights = [p.get_height() for p in ax_l.patches]
    assert heights == [4 * 2**20, 2**12, 2**17, 2**12]  # float32 bars, then run-time bars
    assert ax_l.get_yscale() == "log" and _legend(ax_l) == ["float32", "run time"]
    assert [mcolors.to_hex(p.get_facecolor()) for p in ax_l.patches] == [PALETTE["float"]] * 2 + [
        PALETTE["binary"]] * 2
    assert [t.get_text() for t in ax_l.get_xticklabels()] == ["0\nBinaryLinear", "1\nBN"]
    totals = [(2**17 + 2**12) / 2**20, (4 * 2**20 + 2**12) / 2**20]
    np.testing.assert_allclose([p.get_height() for p in ax_t.patches], totals)
    assert [mcolors.to_hex(p.get_facecolor()) for p in ax_t.patches] == [PALETTE["binary"], PALETTE["float"]]
    assert ax_t.get_ylabel() == "MiB"
    assert [t.get_text() for t in ax_t.texts] == [f"{t:.2f} MiB" for t in totals]
    ratio = totals[1] / totals[0]
    assert ax_t.get_title() == (f"total at run time: {ratio:.1f}x smaller (measured)\n"
                                "paper: 32x for the binarized layers")
    assert "paper" not in memory_figure(rows, paper_ratio=None).axes[1].get_title()


def test_width_figure_plots_error_in_percent_against_bytes_on_a_log_axis():
    from analysis.plots.binarized import width_figure
    rows = [{"name": n, "width": w, "run_time_bytes": b, "test_error": e}
            for n, w, b, e in (("bnn-mlp", 64, 2000, 0.10), ("bnn-mlp", 16, 500, 0.20),
                               ("mlp", 16, 16000, 0.08), ("mlp", 64, 64000, 0.05))]
    ax = width_figure(rows, width=16).axes[0]
    lines = _lines(ax)
    np.testing.assert_allclose(_xy(lines["binarized MLP"]), [[500, 20], [2000, 10]])  # by width
    np.testing.assert_allclose(_xy(lines["float MLP"]), [[16000, 8], [64000, 5]])
    assert mcolors.to_hex(lines["binarized MLP"].get_color()) == PALETTE["binary"]
    assert mcolors.to_hex(lines["float MLP"].get_color()) == PALETTE["float"]
    assert _legend(ax) == ["binarized MLP", "float MLP"]
    assert ax.get_xscale() == "log" and ax.get_ylabel() == "test error (%)"
    assert ax.get_title() == "hidden width 16: accuracy vs model size (measured)"
    rings = [_xy(ln)[0].tolist() for ln in ax.get_lines() if ln.get_markersize() == 14]
    assert rings == [[500, 20], [16000, 8]]  # the runs at width 16 are the ones marked
    assert [t.get_text() for t in ax.texts] == ["20.0%\n0 KiB", "8.0%\n16 KiB"]


def test_sign_ste_figure_draws_sign_and_hardtanh_and_the_point():
    from analysis.plots.binarized import sign_ste_figure
    x = np.linspace(-2, 2, 9)
    curves = {"x": x, "sign": np.where(x >= 0, 1.0, -1.0), "hardtanh": np.clip(x, -1, 1),
              "ste_gradient": (np.abs(x) <= 1).astype(float)}
    point = {"x": 0.5, "sign": 1.0, "hardtanh": 0.5, "ste_gradient": 1.0}
    ax_f, ax_b = sign_ste_figure(curves, point).axes
    lines = _lines(ax_f)
    np.testing.assert_allclose(_xy(lines["sign(x)  (forward)"]), np.c_[x, curves["sign"]])
    np.testing.assert_allclose(_xy(lines["hard-tanh(x)"]), np.c_[x, curves["hardtanh"]])
    assert ax_f.get_title() == "sign(+0.50) = +1"
    assert ax_b.get_title() == "gradient passed at x: 1"
    assert "true derivative of sign (0)" in _legend(ax_b)


# start (lesson 00)

def test_staircase_figure_plots_q_against_x_with_its_level_count():
    import torch

    from analysis.plots.start import staircase_figure
    x = torch.linspace(-2, 2, 11)
    q = torch.round(x.clamp(-1, 1) * 2) / 2
    ax = staircase_figure(x, q, bits=3, clip=1.0).axes[0]
    lines = _lines(ax)
    np.testing.assert_allclose(_xy(lines["Q(x), 3 bits = 8 levels"]), np.c_[x, q])
    np.testing.assert_allclose(_xy(lines["x (no quantization)"]), np.c_[x, x])
    assert ax.get_title() == "uniform quantizer on [−1, 1]"


# clipping / ACIQ

def test_noise_terms_sum_and_minimum_on_a_log_axis():
    from analysis.plots.clipping import noise_terms
    grid = np.linspace(1, 5, 9)
    terms = {"clipping": np.exp(-grid), "rounding": grid**2 / 100}
    ax = noise_terms(grid, terms, bits=4).axes[0]
    lines = _lines(ax)
    total = terms["clipping"] + terms["rounding"]
    np.testing.assert_allclose(_xy(lines["clipping noise"])[:, 1], terms["clipping"])
    np.testing.assert_allclose(_xy(lines["rounding noise α²/(3·4^4)"])[:, 1], terms["rounding"])
    np.testing.assert_allclose(_xy(lines["sum"])[:, 1], total)
    i = int(np.argmin(total))
    star = lines[f"minimum near α = {grid[i]:.2f}b"]
    np.testing.assert_allclose(_xy(star), [[grid[i], total[i]]])
    assert ax.get_yscale() == "log" and ax.get_title() == "4 bits"


def test_quantizer_panel_marks_bounds_levels_and_each_optimum_on_its_curve():
    from analysis.plots.clipping import quantizer_panel
    edges = np.linspace(-3, 3, 7)
    counts = np.array([1, 5, 20, 20, 5, 1])
    levels = np.linspace(-3.5, 3.5, 8)  # ±3.5 lie beyond the histogram's range
    grid = np.linspace(0.5, 4, 8)
    curves = {"exact": 1 / grid + grid / 10, "paper": 2 / grid + grid / 5, "measured": 1 / grid + grid / 8}
    optima = {"exact": 3.0, "paper": 3.2}
    ax_h, ax_m = quantizer_panel(edges, counts, levels, -2.0, 2.5, grid, curves, 1.5, optima).axes
    assert ax_h.get_yscale() == "log" and ax_m.get_yscale() == "log"
    bounds = [ln.get_xdata()[0] for ln in ax_h.get_lines()]
    assert bounds == [-2.0, 2.5]
    assert _legend(ax_h) == ["8 levels", "clipping bounds"]  # the quantizer's levels, not those in view
    (level_lines,) = ax_h.collections
    drawn = [seg[0, 0] for seg in level_lines.get_segments()]
    np.testing.assert_allclose(drawn, levels[1:-1])  # a line at every level inside the histogram
    lines = _lines(ax_m)
    for name, label in (("measured", "measured"), ("exact", "exact (this quantizer)"),
                        ("paper", "paper's approximation")):
        np.testing.assert_allclose(_xy(lines[label]), np.c_[grid, curves[name]])
    # measured: red dots; this quantizer's exact MSE: a solid line; the paper's: grey, dashed
    styles = {label: (ln.get_linestyle(), ln.get_marker(), mcolors.to_hex(ln.get_color()))
              for label, ln in lines.items() if label[0] not in "α_"}  # not the stars, the α line
    assert styles == {"measured": ("None", "o", PALETTE["binary"]),
                      "exact (this quantizer)": ("-", "None", PALETTE["float"]),
                      "paper's approximation": ("--", "None", PALETTE["paper"])}
    for name, a in optima.items():
        star = _xy(lines[f"α* {name} = {a:.2f}b"])[0]
        assert star[1] == pytest.approx(np.interp(a, grid, curves[name]))


def test_mse_curves_one_colour_per_bit_width_exact_solid_paper_dashed():
    from analysis.plots.clipping import mse_curves
    grid = np.linspace(1, 4, 6)
    rows = [{"bits": b, "exact": grid / b, "paper": grid / b + 1, "measured": grid / b + 0.1} for b in (2, 4)]
    ax = mse_curves(grid, rows).axes[0]
    lines = ax.get_lines()
    for k, row in enumerate(rows):
        exact, paper, measured = lines[3 * k: 3 * k + 3]
        assert exact.get_label() == f"M={row['bits']} exact" and exact.get_linestyle() == "-"
        np.testing.assert_allclose(exact.get_ydata(), row["exact"])
        assert paper.get_linestyle() == "--"
        np.testing.assert_allclose(paper.get_ydata(), row["paper"])
        np.testing.assert_allclose(_xy(measured), np.c_[grid[::3], row["measured"][::3]])
        assert exact.get_color() == paper.get_color() == measured.get_color()
    assert _legend(ax) == ["M=2 exact", "M=4 exact", "paper's approximation", "measured"]
    assert ax.get_yscale() == "log"


def test_alpha_table_paper_values_are_the_grey_bars():
    from analysis.plots.clipping import alpha_table_figure
    rows = [{"bits": b, "laplace_paper": 2.8 * b, "laplace_approx": 2.7 * b, "laplace_exact": 2.6 * b,
             "gaussian_paper": 1.7 * b, "gaussian_approx": 1.6 * b, "gaussian_exact": 1.5 * b}
            for b in (2, 3, 4)]
    for ax, prior, unit in zip(alpha_table_figure(rows).axes, ("laplace", "gaussian"), ("b", "σ")):
        assert ax.get_title() == prior.capitalize() and ax.get_ylabel() == f"α* / {unit}"
        assert [p.get_height() for p in ax.patches] == [r[f"{prior}_paper"] for r in rows]
        assert {mcolors.to_hex(p.get_facecolor()[:3]) for p in ax.patches} == {PALETTE["paper"]}
        lines = _lines(ax)
        np.testing.assert_allclose(_xy(lines["approximation"]),
                                   [[r["bits"], r[f"{prior}_approx"]] for r in rows])
        np.testing.assert_allclose(_xy(lines["exact"]), [[r["bits"], r[f"{prior}_exact"]] for r in rows])
        assert _legend(ax) == ["approximation", "exact", "paper"]


def test_ptq_figure_bar_of_each_method_is_its_accuracy():
    from analysis.plots.clipping import ptq_figure
    rows = [{"method": "float", "accuracy": 0.98}, {"method": "4-bit naive", "accuracy": 0.60},
            {"method": "4-bit ACIQ", "accuracy": 0.90}]
    ax = ptq_figure(rows).axes[0]
    names = [t.get_text() for t in ax.get_yticklabels()]
    widths = dict(zip(names, (p.get_width() for p in ax.patches)))
    assert widths == pytest.approx({"float": 98.0, "4-bit naive": 60.0, "4-bit ACIQ": 90.0})
    assert names[-1] == "float"  # the first row on top
    colors = dict(zip(names, (mcolors.to_hex(p.get_facecolor()) for p in ax.patches)))
    assert colors == {"float": PALETTE["float"], "4-bit naive": PALETTE["binary"],
                      "4-bit ACIQ": PALETTE["binary"]}


# diffusion ("train longer")

def test_distance_vs_updates_plots_each_record_on_a_log_t_axis_as_measured():
    records = {"a": _record(20), "b": _record(5, [1.0, 2.0, 3.0, 4.0, 5.0])}
    ax = D.distance_vs_updates({"records": records}).axes[0]
    lines = _lines(ax)
    for name, r in records.items():
        np.testing.assert_allclose(_xy(lines[name]), np.c_[r["steps"], r["distance"]])
    assert ax.get_xscale() == "log" and ax.get_title() == "weight diffusion (measured)"


def test_error_per_config_bar_of_each_configuration_is_its_error():
    rows = [{"name": "small", "test_error": 0.10, "updates": 500},
            {"name": "large", "test_error": 0.15, "updates": 100}]
    ax = D.error_per_config(rows).axes[0]
    names = [t.get_text() for t in ax.get_yticklabels()]
    widths = dict(zip(names, (p.get_width() for p in ax.patches)))
    assert widths == pytest.approx({"small": 10.0, "large": 15.0})
    assert names == ["large", "small"]  # the first row on top
    assert sorted(t.get_text() for t in ax.texts) == [" 10.00%  (500 updates)", " 15.00%  (100 updates)"]
    assert ax.get_title() == "generalization gap (measured)"


def test_random_walks_left_panel_is_log_log_right_is_log_t():
    t = np.arange(1, 11)
    loglog, logt = D.random_walks({"walk": (t, np.sqrt(t))}).axes
    assert (loglog.get_xscale(), loglog.get_yscale()) == ("log", "log")
    assert (logt.get_xscale(), logt.get_yscale()) == ("log", "linear")
    for ax in (loglog, logt):
        np.testing.assert_allclose(_xy(_lines(ax)["walk"]), np.c_[t, np.sqrt(t)])


def test_fit_comparison_draws_the_record_as_measured_beside_three_laws():
    t = np.arange(1, 21)
    d = 0.1 + np.log(t) + 0.05 * np.sin(t)  # off every fitted law: the dots must be the record
    fig = D.fit_comparison(t, d)
    for ax, scale in zip(fig.axes, ("log", "linear")):
        assert ax.get_xscale() == scale
        np.testing.assert_allclose(_xy(_lines(ax)["measured"]), np.c_[t, d])
    assert [label.split("  ")[0] for label in _legend(fig.axes[0])] == ["measured", "a + b·log t", "c·t^p",
                                                                        "a + c·√t"]


def test_layer_distances_keeps_the_layers_that_move_most():
    steps = [1, 2, 3]
    record = {"steps": steps, "layers": {str(i): [i * 0.1 * t for t in steps] for i in range(1, 6)}}
    ax = D.layer_distances(record, top=2).axes[0]
    lines = _lines(ax)
    assert list(lines) == ["layer 5", "layer 4"]
    np.testing.assert_allclose(_xy(lines["layer 5"]), np.c_[steps, record["layers"]["5"]])
    assert ax.get_xscale() == "log"


# landscape (local minima)

def test_fraction_vs_params_series_are_the_sweep_columns():
    rows = [{"data": "random", "P/N": pn, "runs": 10, "frac_nonzero_error": fe, "frac_suboptimal": fs,
             "mean_error": me} for pn, fe, fs, me in ((0.5, 0.9, 0.4, 0.2), (2.0, 0.1, 0.0, 0.01))]
    ax, ax_err = LS.fraction_vs_params(rows).axes
    lines = _lines(ax)
    np.testing.assert_allclose(_xy(lines["random: error > 0"]), [[0.5, 0.9], [2.0, 0.1]])
    np.testing.assert_allclose(_xy(lines["random: sub-optimal DLM"]), [[0.5, 0.4], [2.0, 0.0]])
    np.testing.assert_allclose(_xy(_lines(ax_err)["random"]), [[0.5, 20.0], [2.0, 1.0]])
    assert ax_err.get_ylabel() == "mean training error (%)" and ax.get_ylabel() == "fraction of 10 runs"
    for a in (ax, ax_err):
        assert a.get_xscale() == "log"
        assert [ln.get_xdata()[0] for ln in a.get_lines() if ln.get_linestyle() == ":"] == [1.0]  # P = N


def test_error_histograms_colour_each_run_by_its_class():
    rows = [{"data": "random", "P/N": 0.5, "errors": [0.0, 0.1, 0.2],
             "labels": ["global", "suboptimal", "saddle"]},
            {"data": "random", "P/N": 2.0, "errors": [0.3, 0.0], "labels": ["not_converged", "global"]}]
    ax = LS.error_histograms(rows).axes[0]
    for coll, r in zip(ax.collections, rows):
        np.testing.assert_allclose(coll.get_offsets()[:, 1], 100 * np.array(r["errors"]))
        colors = [mcolors.to_hex(c) for c in coll.get_facecolors()]
        assert colors == [LS.CLASS_COLORS[lab] for lab in r["labels"]]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.50", "2.00"]
    assert _legend(ax) == list(LS.CLASS_COLORS)
    handles = ax.get_legend().legend_handles
    assert [mcolors.to_hex(h.get_facecolor()[0]) for h in handles] == list(LS.CLASS_COLORS.values())
    assert len(set(LS.CLASS_COLORS.values())) == len(LS.CLASS_COLORS)  # every class told apart


def test_endpoint_summary_bars_are_the_fractions_in_their_class_colours():
    fractions = {"global": 0.5, "saddle": 0.3, "suboptimal": 0.2}
    ax_c, ax_h = LS.endpoint_summary(fractions, [0.0, 0.02, 0.04, 0.10]).axes
    assert [p.get_height() for p in ax_c.patches] == [0.5, 0.3, 0.2]
    colors = [mcolors.to_hex(p.get_facecolor()) for p in ax_c.patches]
    assert colors == [LS.CLASS_COLORS[n] for n in fractions]
    assert sum(p.get_height() for p in ax_h.patches) == 4
    assert max(p.get_x() + p.get_width() for p in ax_h.patches) == pytest.approx(10.0)  # in percent


def test_interpolation_and_slices_draw_the_loss_and_error_given():
    a = np.linspace(0, 1, 5)
    line = {"alpha": a, "loss": 1 + a**2, "error": a / 10}
    ax, ax_e = LS.interpolation_figure(line).axes
    np.testing.assert_allclose(_xy(ax.get_lines()[0]), np.c_[a, line["loss"]])
    np.testing.assert_allclose(_xy(ax_e.get_lines()[0]), np.c_[a, 100 * line["error"]])
    g = np.linspace(-1, 1, 4)
    sl = {"alpha": g, "beta": g, "loss": 1 + np.add.outer(g**2, g**2)}
    fig = LS.slices_figure({"run": {"line": line, "slice": sl, "P/N": 0.5, "error": 0.25}})
    ax_l = fig.axes[0]
    np.testing.assert_allclose(_xy(ax_l.get_lines()[0]), np.c_[a, line["loss"]])
    assert ax_l.get_yscale() == "log" and ax_l.get_title() == "run (P/N 0.50), error 25%"


# margin (implicit bias of GD)

@pytest.fixture(scope="module")
def gd_run():
    X, y = data.load("separable", n=30, d=2, margin=0.5, seed=0)
    return X, y, M.gradient_descent(X, y, steps=300)


def test_gap_curves_panels_are_angle_margin_gap_and_loss(gd_run):
    _, _, r = gd_run
    a1, a2, a3 = P.gap_curves([r], ["gd"]).axes
    np.testing.assert_allclose(_xy(_lines(a1)["gd"]), np.c_[r.t, np.degrees(r.angle)])
    np.testing.assert_allclose(_xy(_lines(a2)["gd"]), np.c_[r.t, np.maximum(r.svm.margin - r.margin, 1e-12)])
    np.testing.assert_allclose(_xy(_lines(a3)["gd"]), np.c_[r.t, r.loss])
    for a in (a1, a2, a3):
        assert (a.get_xscale(), a.get_yscale()) == ("log", "log")


def test_data_and_trajectory_labels_the_ray_as_theory(gd_run):
    X, y, r = gd_run
    ax, aw = P.data_and_trajectory(X, y, r, times=(10, 100)).axes
    lines = _lines(aw)
    np.testing.assert_allclose(_xy(lines["w(t), GD"]), r.w)
    np.testing.assert_allclose(_xy(lines["ŵ log t (theory)"]), np.log(r.t)[:, None] * r.svm.w[None, :])
    assert mcolors.to_hex(lines["ŵ log t (theory)"].get_color()) == PALETTE["paper"]
    assert ax.get_title() == f"data and hyperplanes (γ = {r.svm.margin:.3f})"
    # the two margin lines lie at distance ±γ from the SVM hyperplane
    u = r.svm.direction
    offsets = sorted(float(_xy(ln)[0] @ u) for ln in ax.get_lines() if ln.get_linestyle() == ":")
    assert offsets == pytest.approx([-r.svm.margin, r.svm.margin])
    assert _legend(ax)[-2:] == [f"GD, t = {r.t[r.at(t)]:,}" for t in (10, 100)]  # the recorded t nearest


def test_train_past_zero_error_draws_train_and_test_and_when_error_hits_zero(gd_run):
    _, _, r = gd_run
    test = {"t": r.t, "loss": 2 * r.loss, "error": np.full(len(r.t), 0.25)}
    al, ae = P.train_past_zero_error(r, test).axes
    np.testing.assert_allclose(_xy(_lines(al)["test"]), np.c_[r.t, test["loss"]])
    np.testing.assert_allclose(_xy(_lines(ae)["test"]), np.c_[r.t, 100 * test["error"]])
    np.testing.assert_allclose(_xy(_lines(ae)["train"]), np.c_[r.t, 100 * r.error])
    first_zero = r.t[np.flatnonzero(r.error == 0)[0]]
    assert _lines(ae)["train error hits 0"].get_xdata()[0] == first_zero
    assert al.get_xscale() == "log"


def test_fourier_spectra_show_frequencies_0_to_d_over_2_scaled_to_1():
    beta = np.cos(2 * np.pi * 2 * np.arange(8) / 8) + 0.5
    (ax,) = P.fourier_spectra({"β": beta}).axes
    heights = [p.get_height() for p in ax.patches]
    expected = np.abs(M.fourier_coefficients(beta))[:5]
    np.testing.assert_allclose(heights, expected / expected.max())
    assert len(heights) == 5 and ax.get_title() == "β"


def test_sparsity_vs_depth_plots_the_mean_over_data_sets():
    depths = (1, 2)
    scale = {"conv": 1.0, "fc": 0.5, "bridge": 0.25}
    # three data sets whose mean (0.2·d) is neither their median (0.1·d) nor their max
    sparsity = {(kind, d): [0.1 * d * c, 0.1 * d * c, 0.4 * d * c]
                for kind, c in scale.items() for d in depths}
    fb = M.FourierBias(depths=depths, sparsity=sparsity, angle_svm={}, angle_bridge={}, settings={})
    ax = P.sparsity_vs_depth(fb).axes[0]
    lines = _lines(ax)
    for kind, label in (("conv", "linear conv net (GD)"), ("fc", "fully connected (GD)"),
                        ("bridge", r"$\ell_{2/L}$ stationary point")):
        np.testing.assert_allclose(_xy(lines[label]), [[d, 0.2 * d * scale[kind]] for d in depths])
    # the dots are the individual data sets, beside their depth
    dots = [(kind, d) for kind in scale for d in depths]
    for coll, key in zip(ax.collections, dots):
        np.testing.assert_allclose(coll.get_offsets()[:, 1], sparsity[key])
        np.testing.assert_allclose(coll.get_offsets()[:, 0], key[1], atol=0.1)


# xnor (lesson 02)

def test_xnor_dot_figure_title_and_cells_follow_the_bits():
    from analysis.plots.xnor import xnor_dot_figure
    from analysis.xnor import dot_by_xnor
    a, b = np.array([1, -1, 1, 1]), np.array([1, 1, -1, 1])
    steps = dot_by_xnor(a, b)
    ax = xnor_dot_figure(a, b, steps).axes[0]
    assert ax.get_title() == "a·b = K − 2·popcount(a XOR b) = 4 − 2·2 = 0"
    shade = ax.images[0].get_array()
    np.testing.assert_array_equal(shade[0], a > 0)
    np.testing.assert_array_equal(shade[4], 2 * steps["xor"])  # a mismatch is the dark colour
    np.testing.assert_array_equal(shade[5], a * b > 0)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "bits of a", "bits of b", "a XOR b",
                                                           "a_i · b_i"]


def _bench_result():
    rows = [{"shape": "square", "m": s, "n": s, "k": s,
             "seconds": {"xnor": s * 1e-6, "fp32": s * 3e-6},
             "xnor_speedup": {"fp32": 3.0 + i}} for i, s in enumerate((256, 512))]
    return {"rows": rows, "machine": {"threads": 4, "date": "2025-01-01"}}


def test_benchmark_figure_times_in_ms_speedups_measured_and_paper_labelled():
    from analysis.plots.xnor import benchmark_figure
    from analysis.xnor import PAPER
    fig = benchmark_figure(_bench_result(), PAPER)
    ax_t, ax_s = fig.axes
    np.testing.assert_allclose(_xy(_lines(ax_t)["xnor"]), [[256, 0.256], [512, 0.512]])
    np.testing.assert_allclose(_xy(_lines(ax_t)["fp32"]), [[256, 0.768], [512, 1.536]])
    np.testing.assert_allclose(_xy(_lines(ax_s)["xnor vs fp32"]), [[256, 3.0], [512, 4.0]])
    for ax in (ax_t, ax_s):
        assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
    texts = [t.get_text() for t in ax_s.texts]
    assert texts == [f"paper: vs unoptimized {PAPER['xnor_vs_baseline_8192']:g}x (GTX 750)",
                     f"paper: vs cuBLAS {PAPER['xnor_vs_cublas_8192']:g}x (GTX 750)"]
    assert fig._suptitle.get_text() == "measured: CPU, 4 threads, 2025-01-01"


def test_inference_figure_bars_are_ms_each_with_its_own_speedup():
    from analysis.plots.xnor import inference_figure
    from analysis.xnor import PAPER
    names = ["xnor", "torch float", "baseline"]
    result = {"depth": 3, "width": 64, "batch": 100, "seconds": dict(zip(names, [0.001, 0.003, 0.007])),
              "xnor_speedup": dict(zip(names, [1.0, 3.0, 7.0]))}
    ax = inference_figure(result, PAPER).axes[0]
    assert [p.get_height() for p in ax.patches] == pytest.approx([1.0, 3.0, 7.0])
    assert [t.get_text() for t in ax.texts] == ["1.0x", "3.0x", "7.0x"]
    assert ax.get_title().endswith(f"\npaper: {PAPER['mlp_xnor_vs_baseline']:g}x xnor vs baseline (GTX 750)")
    assert ax.get_xlabel().startswith("measured: CPU")
