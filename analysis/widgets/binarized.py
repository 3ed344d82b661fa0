"""Dashboards of lesson 01 (binarized networks). Callbacks are plain functions of the control
values (data bound with keyword arguments) that return `(figure, numbers)`:

    sign_callback(x=0.5)                       # sign, hard-tanh and STE gradient at x
    histogram_callback(layer="3", weights=..., inputs=...)
    width_callback(width=128, rows=width_sweep(...))

and `sign_dashboard()`, `histogram_dashboard(model, X)`, `width_dashboard(rows)` build the widgets.
"""

from __future__ import annotations

from functools import partial

import ipywidgets as W
import matplotlib.pyplot as plt
import torch
from torch import Tensor, nn

from analysis.binarized import (
    binarization_stats,
    binarized_layer_inputs,
    latent_weights,
    sign_ste_at,
    sign_ste_curves,
)
from analysis.plots.binarized import histograms_figure, sign_ste_figure, width_figure
from analysis.widgets import Dashboard, check_start, dashboard

__all__ = [
    "sign_callback",
    "sign_dashboard",
    "histogram_callback",
    "histogram_dashboard",
    "width_callback",
    "width_dashboard",
]

_GRID = torch.linspace(-2.5, 2.5, 501)


def sign_callback(x: float = 0.5) -> tuple:
    """Figure of sign / hard-tanh (forward) and the STE gradient (backward), x marked; numbers at x."""
    numbers = sign_ste_at(x)
    fig = sign_ste_figure(sign_ste_curves(_GRID), numbers)
    plt.show()
    return fig, numbers


def sign_dashboard(x: float = 0.5) -> Dashboard:
    """Slide the input x of sign: its value, hard-tanh's, and the gradient the STE passes back."""
    slider = W.FloatSlider(value=x, min=-2.0, max=2.0, step=0.05, description="input x",
                           readout_format=".2f")
    return dashboard(sign_callback, check_start({"x": slider}, x=x),
                     title="sign(x) and its straight-through gradient")


def histogram_callback(layer: str, *, weights: dict[str, Tensor], inputs: dict[str, Tensor]) -> tuple:
    """Histograms of `layer`'s latent weights and binarized inputs; numbers from `binarization_stats`."""
    if layer not in weights:
        raise ValueError(f"no binarized layer {layer!r}; layers: {', '.join(weights)}")
    fig = histograms_figure(weights[layer], inputs.get(layer), layer=layer)
    plt.show()
    return fig, {"layer": layer, **binarization_stats(weights[layer], inputs.get(layer))}


def histogram_dashboard(model: nn.Module, X: Tensor) -> Dashboard:
    """Pick a binarized layer of `model`: histograms of its latent weights and of its inputs on X."""
    weights = latent_weights(model)
    if not weights:
        raise ValueError("the model has no layer with a kernel quantizer: nothing binarized to show")
    inputs = binarized_layer_inputs(model, X)
    names = list(weights)
    layer = W.Dropdown(options=names, value=names[min(1, len(names) - 1)], description="layer")
    return dashboard(partial(histogram_callback, weights=weights, inputs=inputs), {"layer": layer},
                     title="latent weights and activations of the binarized MLP")


def width_callback(width: int, *, rows: list[dict]) -> tuple:
    """Test error vs run-time size of every run, those at `width` marked; their numbers by model name."""
    at = [r for r in rows if r["width"] == width]
    if not at:
        raise ValueError(f"no run at width {width}; widths: {sorted({r['width'] for r in rows})}")
    fig = width_figure(rows, width)
    plt.show()
    numbers: dict = {"width": width}
    for r in at:
        numbers[r["name"]] = {k: r[k] for k in ("test_error", "run_time_bytes", "float_bytes",
                                                 "parameters")}
    return fig, numbers


def width_dashboard(rows: list[dict]) -> Dashboard:
    """Slide the hidden width over the runs of `width_sweep`: accuracy against model size."""
    if not rows:
        raise ValueError("width_dashboard needs the rows of at least one run (see width_sweep)")
    widths = sorted({r["width"] for r in rows})
    slider = W.SelectionSlider(options=widths, value=widths[len(widths) // 2], description="hidden width")
    return dashboard(partial(width_callback, rows=rows), {"width": slider},
                     title="hidden width: accuracy vs model size")
