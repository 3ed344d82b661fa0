"""The clipping widget of lesson 03: bits, clipping value and tensor; the histogram with the
quantizer's levels and clipping bounds, and the MSE vs α curves (paper's approximation,
exact, measured) with the optimum marked.

Everything that depends only on the tensor (sorted values, prefix sums, fit, histogram) is
computed once per tensor in `TensorView`; the MSE curve per bit width is cached, so a move of
the clipping slider costs a few binary searches and the drawing of the figure.

    box = clipping_widget({"conv3 weights": model[7].weight})
    fig, numbers = clipping_callback(bits=4, clip=5.0, tensor="Laplace samples")
"""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import Tensor

from analysis import clipping as C
from analysis.plots.clipping import quantizer_panel
from analysis.quant import check_bits
from analysis.widgets import Dashboard, dashboard

__all__ = ["TensorView", "sample_tensors", "make_callback", "clipping_callback", "clipping_widget"]

GRID_POINTS = 90
CLIP_MIN, CLIP_MAX = 0.25, 16.0  # the α slider's range, in units of b or σ


class TensorView:
    """One tensor as the widget sees it: fit (prior, centre μ, scale b or σ), sorted values,
    a 160-bin histogram over μ ± 14·scale (or the data's range), and cached MSE curves."""

    def __init__(self, x: Tensor, prior: str | None = None):
        x = C.check_tensor(x).detach().cpu().flatten()  # one copy for the fit and the sort
        self.fit = C.fit_tensor(x, prior)
        self.sorted = C.SortedTensor(x)
        v = self.sorted.values
        span = 14 * self.fit.scale
        lo = max(v[0], self.fit.center - span) if not self.fit.relu else v[0]
        hi = min(v[-1], self.fit.center + span)
        hi = hi if hi > lo else lo + self.fit.scale
        self.counts, self.edges = np.histogram(v, bins=160, range=(lo, hi))
        top = max(1.5 * C.optimal_alpha(8, self.fit.prior, exact=True, relu=self.fit.relu), CLIP_MAX)
        self.grid = np.linspace(CLIP_MIN, top, GRID_POINTS)  # α in units of the scale: the slider's range
        self._curves: dict[int, dict[str, np.ndarray]] = {}

    @property
    def unit(self) -> str:
        return "b" if self.fit.prior == "laplace" else "σ"

    def alpha(self, units: float) -> float:
        return units * self.fit.scale

    def curves(self, bits: int) -> dict[str, np.ndarray]:
        """MSE/scale² over the α grid: the paper's approximation, the exact one, the measured."""
        if bits not in self._curves:
            f, s = self.fit, self.fit.scale
            a = self.grid * s
            self._curves[bits] = {
                "paper": C.mse(a, s, bits, f.prior, relu=f.relu) / s**2,
                "exact": C.mse(a, s, bits, f.prior, exact=True, relu=f.relu) / s**2,
                "measured": self.sorted.mse(a, bits, f.relu, f.center) / s**2,
            }
        return self._curves[bits]

    def numbers(self, bits: int, units: float) -> dict:
        """The widget's numbers at (M, α = units·scale)."""
        f = self.fit
        a = self.alpha(units)
        lo, hi = C.quant_range(a, bits, f.relu, f.center)
        v = self.sorted.values
        clipped = (np.searchsorted(v, lo, "left") + v.size - np.searchsorted(v, hi, "left")) / v.size
        return {
            "bits": bits, "prior": f.prior, "scale": f.scale, "center": f.center, "relu": f.relu,
            "alpha": a, "alpha_units": units, "lo": lo, "hi": hi,
            "mse_measured": self.sorted.mse(a, bits, f.relu, f.center),
            "mse_exact": C.mse(a, f.scale, bits, f.prior, exact=True, relu=f.relu),
            "mse_paper": C.mse(a, f.scale, bits, f.prior, relu=f.relu),
            "alpha_star_paper": C.optimal_alpha(bits, f.prior, False, f.relu),
            "alpha_star_exact": C.optimal_alpha(bits, f.prior, True, f.relu),
            "clipped_fraction": float(clipped),
        }


def sample_tensors(n: int = 10**6, seed: int = 0) -> dict[str, Tensor]:
    """Laplace(0, 1) and N(0, 1) samples of size n."""
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(n, generator=g, dtype=torch.float64) - 0.5
    return {"Laplace samples": -torch.sign(u) * torch.log1p(-2 * u.abs()),
            "Gaussian samples": torch.randn(n, generator=g, dtype=torch.float64)}


def make_callback(tensors: dict[str, Tensor]) -> Callable[..., tuple]:
    """The widget's callback over these tensors (views built once, here)."""
    if not tensors:
        raise ValueError("give at least one tensor")
    priors = {"Laplace samples": "laplace", "Gaussian samples": "gaussian"}
    views = {name: TensorView(x, priors.get(name)) for name, x in tensors.items()}

    def callback(bits: int = 4, clip: float = 5.0, tensor: str = next(iter(views))) -> tuple:
        """Figure and numbers for M = bits, α = clip·scale, on `tensor`."""
        if tensor not in views:
            raise ValueError(f"unknown tensor {tensor!r}; known: {', '.join(views)}")
        view = views[tensor]
        check_bits(bits)
        if not clip > 0:
            raise ValueError(f"the clipping value must be > 0, got {clip}")
        numbers = view.numbers(bits, clip)
        lo, hi = numbers["lo"], numbers["hi"]
        levels = lo + (hi - lo) / 2**bits * (np.arange(2**bits) + 0.5)
        fig = quantizer_panel(
            view.edges, view.counts, levels, lo, hi, view.grid, view.curves(bits), clip,
            {"paper": numbers["alpha_star_paper"], "exact": numbers["alpha_star_exact"]},
            unit=view.unit, title=f"{tensor}: {bits} bits, α = {clip:.2f}{view.unit}")
        plt.show()
        return fig, numbers

    callback.views = views
    return callback


_DEFAULT: Callable | None = None


def clipping_callback(bits: int = 4, clip: float = 5.0, tensor: str = "Laplace samples") -> tuple:
    """The callback over the default tensors (10^6 Laplace and Gaussian samples, built on first use)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = make_callback(sample_tensors())
    return _DEFAULT(bits, clip, tensor)


def clipping_widget(layers: dict[str, Tensor] | None = None, n: int = 10**6, seed: int = 0) -> Dashboard:
    """Dashboard: bits (1–8), clipping α in units of b or σ, and the tensor (Laplace samples,
    Gaussian samples, or any tensor in `layers`, e.g. a trained layer's weights)."""
    tensors = {**sample_tensors(n, seed), **(layers or {})}
    callback = make_callback(tensors)
    controls = {
        "bits": W.IntSlider(value=4, min=1, max=8, description="bits M"),
        "clip": W.FloatSlider(value=5.0, min=CLIP_MIN, max=CLIP_MAX, step=0.05,
                              description="α (units of b or σ)"),
        "tensor": W.Dropdown(options=list(tensors), value="Laplace samples", description="tensor"),
    }
    return dashboard(callback, controls, title="Clipping and rounding noise (ACIQ)")
