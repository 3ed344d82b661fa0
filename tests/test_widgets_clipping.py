"""The clipping dashboard of lesson 03, without a browser: call the callback, move the controls."""

import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402

from analysis import clipping as C  # noqa: E402
from analysis.quant import quantize_uniform  # noqa: E402
from analysis.widgets import clipping as wc  # noqa: E402


def pixels(fig) -> np.ndarray:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=40)
    buf.seek(0)
    return plt.imread(buf)


@pytest.fixture(scope="module")
def tensors():
    t = wc.sample_tensors(n=50_000, seed=1)
    g = torch.Generator().manual_seed(2)
    t["relu layer"] = torch.relu(torch.randn(40, 500, generator=g) * 0.3 + 0.05)
    return t


@pytest.fixture(scope="module")
def callback(tensors):
    return wc.make_callback(tensors)


def test_numbers_match_the_quantizer(callback, tensors):
    for name in tensors:
        for bits in (1, 3, 8):
            fig, n = callback(bits=bits, clip=3.0, tensor=name)
            plt.close(fig)
            x = tensors[name].double().flatten()
            lo, hi = n["lo"], n["hi"]
            measured = ((x - quantize_uniform(x, bits, lo, hi)) ** 2).mean().item()
            assert n["mse_measured"] == pytest.approx(measured, rel=1e-9)
            assert n["alpha"] == pytest.approx(3.0 * n["scale"])
            assert n["alpha_star_paper"] == pytest.approx(C.optimal_alpha(bits, n["prior"], relu=n["relu"]))
            assert n["alpha_star_exact"] == pytest.approx(
                C.optimal_alpha(bits, n["prior"], exact=True, relu=n["relu"]))
            clipped = ((x < lo) | (x >= hi)).double().mean().item()
            assert n["clipped_fraction"] == pytest.approx(clipped, abs=1e-12)


def test_samples_follow_their_prior(callback):
    fig, lap = callback(bits=4, clip=5.0, tensor="Laplace samples")
    plt.close(fig)
    assert lap["prior"] == "laplace" and lap["scale"] == pytest.approx(1.0, rel=0.02)
    assert lap["mse_exact"] == pytest.approx(lap["mse_measured"], rel=0.15)  # 50k samples: tail noise
    assert lap["mse_paper"] < lap["mse_exact"]
    fig, relu = callback(bits=4, clip=3.0, tensor="relu layer")
    plt.close(fig)
    assert relu["relu"] and relu["lo"] < 0 < relu["hi"]


def test_figure_changes_with_bits_and_clip(callback):
    fig2, n2 = callback(bits=2, clip=4.0, tensor="Gaussian samples")
    fig5, n5 = callback(bits=5, clip=4.0, tensor="Gaussian samples")
    levels = [sum(len(c.get_segments()) for c in f.axes[0].collections if isinstance(c, LineCollection))
              for f in (fig2, fig5)]
    assert levels == [4, 32]
    assert n5["mse_measured"] < n2["mse_measured"]
    assert not np.array_equal(pixels(fig2), pixels(fig5))
    fig_c, _ = callback(bits=5, clip=2.0, tensor="Gaussian samples")
    assert not np.array_equal(pixels(fig5), pixels(fig_c))
    for f in (fig2, fig5, fig_c):
        plt.close(f)


def test_bad_controls(callback):
    with pytest.raises(ValueError, match="bits"):
        callback(bits=0, clip=3.0, tensor="Laplace samples")
    with pytest.raises(ValueError, match="> 0"):
        callback(bits=4, clip=0.0, tensor="Laplace samples")
    with pytest.raises(ValueError, match="unknown tensor"):
        callback(bits=4, clip=3.0, tensor="nope")


def test_dashboard_reruns_on_control_change(tensors):
    box = wc.clipping_widget({"relu layer": tensors["relu layer"]}, n=20_000)
    assert box.last_result[1]["bits"] == 4
    box.controls["bits"].value = 2
    assert box.last_result[1]["bits"] == 2
    box.controls["tensor"].value = "relu layer"
    assert box.last_result[1]["relu"]
    box.controls["clip"].value = 2.5
    assert box.last_result[1]["alpha_units"] == pytest.approx(2.5)
    plt.close("all")


def test_whole_slider_range_is_drawn(callback, tensors):
    """At the slider's largest α the MSE curves still reach the chosen α, and the clipping
    bounds are inside the histogram's view, for every tensor (Gaussian data ends near 5σ)."""
    box = wc.clipping_widget(n=1000)
    slider = box.controls["clip"]
    assert (slider.min, slider.max) == (wc.CLIP_MIN, wc.CLIP_MAX)
    plt.close("all")
    for name in tensors:
        fig, n = callback(bits=4, clip=slider.max, tensor=name)
        grid = callback.views[name].grid
        assert grid[0] <= slider.min and grid[-1] >= slider.max
        lo_view, hi_view = fig.axes[0].get_xlim()
        assert lo_view < n["lo"] < n["hi"] < hi_view
        curve = fig.axes[1].lines[0].get_xdata()
        assert curve.max() >= slider.max
        plt.close(fig)
