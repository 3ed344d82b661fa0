"""Dashboards of lessons 00 and 01, without a browser: call the callbacks, move the controls."""

import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from analysis import binarized as b  # noqa: E402
from analysis import models  # noqa: E402
from analysis.env import environment_report, format_report, missing_packages  # noqa: E402
from analysis.plots.binarized import memory_figure  # noqa: E402
from analysis.widgets import binarized as wb  # noqa: E402
from analysis.widgets.start import quantizer_callback, quantizer_dashboard  # noqa: E402


def pixels(fig: Figure) -> np.ndarray:
    """The figure rendered to an RGBA array (works after the dashboard closed it in pyplot)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=50)
    buf.seek(0)
    return plt.imread(buf)


def changed(before: Figure, after: Figure) -> bool:
    a, b_ = pixels(before), pixels(after)
    return a.shape != b_.shape or not np.array_equal(a, b_)


def titles(fig: Figure) -> str:
    return " | ".join(ax.get_title() for ax in fig.axes)


@pytest.fixture(scope="module")
def small_bnn():
    torch.manual_seed(0)
    model = models.build("bnn-mlp", width=16, depth=2)
    return model, torch.randn(64, 1, 28, 28)


@pytest.fixture(scope="module")
def sweep_rows():
    return b.width_sweep([8, 16, 32], depth=1, epochs=1, n_train=200)


def test_sign_callback_numbers_and_figure():
    fig, n = wb.sign_callback(x=-0.4)
    assert n == pytest.approx({"x": -0.4, "sign": -1.0, "hardtanh": -0.4, "ste_gradient": 1.0})
    assert "sign(-0.40) = -1" in titles(fig)
    fig, n = wb.sign_callback(x=1.6)
    assert (n["sign"], n["ste_gradient"]) == (1.0, 0.0)
    assert "gradient passed at x: 0" in titles(fig)


def test_sign_dashboard_slider_redraws():
    box = wb.sign_dashboard(x=0.5)
    fig0, n0 = box.last_result
    assert n0["ste_gradient"] == 1.0
    box.controls["x"].value = -1.5
    fig1, n1 = box.last_result
    assert n1 == pytest.approx({"x": -1.5, "sign": -1.0, "hardtanh": -1.0, "ste_gradient": 0.0})
    assert fig1 is not fig0 and changed(fig0, fig1)
    assert not changed(fig1, fig1)  # the comparison itself can say "unchanged"
    assert box.controls["x"].continuous_update is False


def test_histogram_dashboard_layers(small_bnn):
    model, X = small_bnn
    box = wb.histogram_dashboard(model, X)
    fig0, n0 = box.last_result
    assert n0["layer"] == "3" and 0.0 <= n0["ste_pass"] <= 1.0
    box.controls["layer"].value = "1"  # the first layer: real pixels, no activation histogram
    fig1, n1 = box.last_result
    assert n1["layer"] == "1" and "ste_pass" not in n1
    assert changed(fig0, fig1)
    w = b.latent_weights(model)["1"]
    assert n1["positive_weights"] == pytest.approx(float((w >= 0).float().mean()))
    with pytest.raises(ValueError, match="nothing binarized"):
        wb.histogram_dashboard(models.build("mlp", width=8, depth=1), X)
    with pytest.raises(ValueError, match="no binarized layer"):
        wb.histogram_callback("9", weights=b.latent_weights(model), inputs={})


def test_histograms_are_the_densities_of_the_values():
    """The panels draw np.histogram(density=True) of the values as steps (computed with numpy,
    not seaborn's histplot, whose pandas machinery cost ~0.1 s per panel for a layer's 10^5–10^6
    values, most of the callback)."""
    from matplotlib.patches import StepPatch

    g = torch.Generator().manual_seed(0)
    w, a = torch.rand(5000, generator=g) * 2 - 1, torch.randn(20000, generator=g)
    fig, _ = wb.histogram_callback("3", weights={"3": w}, inputs={"3": a})
    for ax, values in zip(fig.axes, (w, a)):
        steps = [p for p in ax.patches if isinstance(p, StepPatch)]
        assert steps, "no histogram steps drawn"
        heights, edges = steps[0].get_data()[:2]
        expected, expected_edges = np.histogram(values.numpy(), bins=80, density=True)
        assert np.allclose(heights, expected) and np.allclose(edges, expected_edges)
        assert (heights * np.diff(edges)).sum() == pytest.approx(1.0)
    plt.close(fig)


def test_width_dashboard_slider(sweep_rows):
    box = wb.width_dashboard(sweep_rows)
    assert list(box.controls["width"].options) == [8, 16, 32]
    fig0, n0 = box.last_result
    assert n0["width"] == 16
    box.controls["width"].value = 32
    fig1, n1 = box.last_result
    assert n1["width"] == 32 and changed(fig0, fig1)
    row = next(r for r in sweep_rows if r["name"] == "bnn-mlp" and r["width"] == 32)
    assert n1["bnn-mlp"]["test_error"] == row["test_error"]
    assert n1["mlp"]["run_time_bytes"] / n1["bnn-mlp"]["run_time_bytes"] > 5
    with pytest.raises(ValueError, match="no run at width 7"):
        wb.width_callback(7, rows=sweep_rows)
    with pytest.raises(ValueError, match="at least one run"):
        wb.width_dashboard([])


def test_memory_figure_paper_label():
    with torch.device("meta"):
        rows = {"binarized MLP": b.run_time_memory(models.build("bnn-mlp", width=4096)),
                "float MLP": b.run_time_memory(models.build("mlp", width=4096))}
    fig = memory_figure(rows)
    t = titles(fig)
    assert "30.7x smaller (measured)" in t and "paper: 32x" in t


def test_quantizer_dashboard():
    fig, n = quantizer_callback(bits=3, clip=1.0)
    assert n == pytest.approx({"levels": 8, "step": 0.25, "max_error_inside": 0.125}, abs=1e-6)
    box = quantizer_dashboard()
    fig0 = box.last_result[0]
    box.controls["bits"].value = 1
    assert box.last_result[1]["levels"] == 2 and changed(fig0, box.last_result[0])


def test_dashboards_refuse_a_start_outside_their_sliders():
    """A slider clamps a starting value outside its range silently: quantizer_dashboard(bits=8)
    drew 6 bits and sign_dashboard(x=3) drew x = 2. Now a ValueError names the range."""
    with pytest.raises(ValueError, match=r"bits=8 is outside the slider's range 1\.\.6"):
        quantizer_dashboard(bits=8)
    with pytest.raises(ValueError, match=r"clip=3\.0 is outside the slider's range 0\.25\.\.2\.0"):
        quantizer_dashboard(clip=3.0)
    with pytest.raises(ValueError, match=r"x=3\.0 is outside the slider's range -2\.0\.\.2\.0"):
        wb.sign_dashboard(x=3.0)
    box = quantizer_dashboard(bits=6, clip=0.25)  # the ends of the ranges are fine
    assert box.last_result[1]["levels"] == 64
    assert wb.sign_dashboard(x=-2.0).last_result[1]["x"] == -2.0


def test_environment_report():
    r = environment_report()
    assert {"python", "torch", "gpu", "pycuda", "fast mode"} <= set(r)
    assert r["torch"] == torch.__version__
    assert missing_packages() == []
    assert format_report({"a": "1", "long key": "2"}) == "a         1\nlong key  2"


@pytest.mark.parametrize("X, match", [
    (torch.zeros(0, 1, 28, 28), r"X must hold at least one input, got shape \(0, 1, 28, 28\)"),
    (np.zeros((4, 1, 28, 28), np.float32), "X must be a torch.Tensor of inputs, got ndarray"),
    (torch.zeros(4, 1, 28, 28, dtype=torch.float64), r"X is torch.float64 but the model's "
                                                      r"parameters are torch.float32; convert"),
    (torch.zeros(4, 1, 28, 28, dtype=torch.uint8), "X is torch.uint8 but"),
])
def test_histogram_dashboard_says_what_is_wrong_with_X(small_bnn, X, match):
    """An empty X was torch.cat's 'expected a non-empty list of Tensors', a numpy X a TypeError
    from flatten(), float64 or uint8 pixels 'expected m1 and m2 to have the same dtype'."""
    model, _ = small_bnn
    with pytest.raises(ValueError, match=match):
        wb.histogram_dashboard(model, X)
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        b.binarized_layer_inputs(model, torch.zeros(4, 1, 28, 28), batch_size=0)


@pytest.mark.parametrize("bits", [3.0, np.int64(3)])
def test_quantizer_callback_counts_levels_in_integers(bits):
    """bits=3.0 returned levels=8.0 and drew the legend '3.0 bits = 8.0 levels'; np.int64(3)
    returned numpy scalars."""
    fig, n = quantizer_callback(bits=bits, clip=1.0)
    assert type(n["levels"]) is int and n["levels"] == 8
    assert type(n["step"]) is float and n["step"] == 0.25
    assert "Q(x), 3 bits = 8 levels" in [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    plt.close(fig)


@pytest.mark.parametrize("clip", [0, -1.0, float("inf"), float("nan")])
def test_quantizer_callback_names_a_bad_clip(clip):
    """clip=0 was quantize_uniform's 'needs finite lo < hi, got lo=0, hi=0': a lo and hi the
    caller never gave."""
    with pytest.raises(ValueError, match=f"clip α must be > 0 and finite, got {clip}"):
        quantizer_callback(bits=2, clip=clip)


def test_lesson_dashboards_say_their_callback_in_text(small_bnn, sweep_rows):
    """What a saved lesson shows where the widget does not render (it was 'Dashboard(callback:
    layer)' for the two dashboards whose data is bound with functools.partial)."""
    model, X = small_bnn
    assert repr(wb.histogram_dashboard(model, X)) == "Dashboard(histogram_callback: layer)"
    assert repr(wb.width_dashboard(sweep_rows)) == "Dashboard(width_callback: width)"
    assert repr(wb.sign_dashboard()) == "Dashboard(sign_callback: x)"


def test_memory_figure_without_models_says_so():
    """memory_figure({}) was a bare StopIteration and left its empty figure open in pyplot."""
    before = plt.get_fignums()
    with pytest.raises(ValueError, match="at least one model"):
        memory_figure({})
    assert plt.get_fignums() == before
