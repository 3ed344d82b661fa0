"""Dashboard and figures of lesson 06 (local minima), without a browser."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from analysis import landscape as L  # noqa: E402
from analysis.plots import landscape as P  # noqa: E402
from analysis.widgets import landscape as WL  # noqa: E402

QUICK = dict(runs=12, max_steps=1500)


def test_callback_under_and_over_parameterized():
    fig, narrow = WL.minima_callback(n=16, d0=3, d1=1, **QUICK)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert narrow["P/N"] == pytest.approx(4 / 16)
    assert narrow["nonzero_error"] == 1.0 and narrow["global"] == 0.0
    assert sum(narrow[k] for k in L.LABELS) == pytest.approx(1.0)
    _, wide = WL.minima_callback(n=16, d0=3, d1=12, **QUICK)
    assert wide["P/N"] == pytest.approx(48 / 16)
    assert wide["nonzero_error"] <= 0.25 and wide["global"] >= 0.75  # 1500 steps: most converge
    assert wide["mean_error"] < narrow["mean_error"] / 5


def test_callback_relu_and_teacher_data():
    _, numbers = WL.minima_callback(n=24, d0=4, d1=3, activation="relu", data="teacher", **QUICK)
    assert 0.0 <= numbers["mean_error"] < 0.5


def test_callback_classes_equal_a_full_classification():
    """The callback computes Hessian spectra only where they decide a class
    (spectra="needed"): its numbers are those of train_many with every spectrum."""
    WL._endpoints.cache_clear()
    _, numbers = WL.minima_callback(n=8, d0=1, d1=1, runs=12, max_steps=1500)
    X, y = L.make_data("random", 8, 1, 0)
    e = L.train_many(X, y, 1, 12, max_steps=1500)
    assert "suboptimal" in e.label  # a setting where spectra decide classes
    assert {k: numbers[k] for k in L.LABELS} == e.fractions()
    assert numbers["mean_error"] == float(e.error.mean())


def test_callback_rejects_bad_controls():
    with pytest.raises(ValueError, match="width must be a positive integer"):
        WL.minima_callback(d1=0, **QUICK)
    with pytest.raises(ValueError, match="data must be one of"):
        WL.minima_callback(data="cifar", **QUICK)
    # starting values outside the dropdowns were a TraitError from ipywidgets
    with pytest.raises(ValueError, match="activation must be one of 'leaky_relu', 'relu', got 'tanh'"):
        WL.minima_dashboard(activation="tanh")
    with pytest.raises(ValueError, match="data must be one of 'random'"):
        WL.minima_dashboard(data="cifar")


def test_callback_keeps_each_settings_batch():
    """Returning to a setting reuses its trained batch (the widget answers at once); another
    setting trains anew."""
    WL._endpoints.cache_clear()
    _, first = WL.minima_callback(n=16, d0=3, d1=2, **QUICK)
    _, again = WL.minima_callback(n=16, d0=3, d1=2, **QUICK)
    assert again == first and WL._endpoints.cache_info().hits == 1
    _, other = WL.minima_callback(n=16, d0=3, d1=2, seed=1, **QUICK)
    assert WL._endpoints.cache_info().misses == 2


def test_dashboard_reruns_on_control_change(monkeypatch):
    calls, real = [], WL.minima_callback

    def fake(**values):  # the real callback, with a quick batch
        calls.append(values)
        return real(**values, runs=6, max_steps=300)

    monkeypatch.setattr(WL, "minima_callback", fake)
    box = WL.minima_dashboard(n=16, d0=3, d1=2)
    assert set(box.controls) == {"n", "d0", "d1", "activation", "data"}
    first = box.last_result[1]
    box.controls["d1"].value = 12
    assert calls[-1]["d1"] == 12
    assert box.last_result[1]["P/N"] == pytest.approx(12 * 4 / 16) != first["P/N"]
    box.controls["activation"].value = "relu"
    assert calls[-1]["activation"] == "relu" and len(calls) == 3


def test_dashboard_refuses_a_start_outside_its_sliders():
    """minima_dashboard(d1=40) used to train and show d1 = 32 (the slider clamped it)."""
    with pytest.raises(ValueError, match=r"d1=40 is outside the slider's range 1\.\.32"):
        WL.minima_dashboard(d1=40)
    with pytest.raises(ValueError, match=r"n=200 is outside the slider's range 8\.\.128"):
        WL.minima_dashboard(n=200)


def test_sweep_figures_and_table():
    rows = L.sweep("random", (1, 6), runs=6, n=16, d0=3, max_steps=800)
    assert [r["d1"] for r in rows] == [1, 6] and len(rows[0]["errors"]) == 6
    assert rows[0]["frac_nonzero_error"] >= rows[1]["frac_nonzero_error"]
    table = L.markdown_table(rows)
    assert table.count("\n") == 3 and "| random | 1 | 0.25 |" in table
    for fig in (P.fraction_vs_params(rows), P.error_histograms(rows)):
        assert isinstance(fig, Figure) and fig.axes
    sl = L.example_slices(16, 3, (1, 6), max_steps=300)
    fig = P.slices_figure(sl)
    assert len(fig.axes) == 6  # two rows of (line, slice, colorbar)
    fig = P.hessian_spectrum({"a": np.array([-1e-3, 0.0, 2.0])})
    assert "λmin" in fig.axes[0].get_legend().get_texts()[0].get_text()
