"""The demonstration dashboard of lesson 00: how a course widget behaves.

    quantizer_callback(bits=2, clip=1.0)   # -> (figure, numbers): the k-bit staircase
    quantizer_dashboard()                  # two sliders above the figure
"""

from __future__ import annotations

import math

import ipywidgets as W
import matplotlib.pyplot as plt
import torch

from analysis.plots.start import staircase_figure
from analysis.quant import check_bits, quantize_uniform
from analysis.widgets import Dashboard, check_start, dashboard

__all__ = ["quantizer_callback", "quantizer_dashboard"]

_GRID = torch.linspace(-2.0, 2.0, 801)


def quantizer_callback(bits: int = 2, clip: float = 1.0) -> tuple:
    """Staircase Q(x) of `quantize_uniform(x, bits, −α, α)`; numbers: levels 2^k, step Δ = 2α/2^k,
    and the largest rounding error inside [−α, α] (Δ/2)."""
    # bits=3.0 gave 8.0 levels and the legend '3.0 bits = 8.0 levels'; clip=0 an error about lo, hi
    bits = check_bits(bits)
    if not 0 < clip < math.inf:
        raise ValueError(f"clip α must be > 0 and finite, got {clip}")
    clip = float(clip)
    q = quantize_uniform(_GRID, bits, -clip, clip)
    inside = _GRID.abs() <= clip
    fig = staircase_figure(_GRID, q, bits, clip)
    plt.show()
    return fig, {"levels": 2**bits, "step": 2 * clip / 2**bits,
                 "max_error_inside": float((q - _GRID)[inside].abs().max())}


def quantizer_dashboard(bits: int = 2, clip: float = 1.0) -> Dashboard:
    """Sliders for the bit width k (1–6) and the clipping value α (0.25–2) of the uniform quantizer."""
    controls = check_start({
        "bits": W.IntSlider(value=bits, min=1, max=6, description="bits k"),
        "clip": W.FloatSlider(value=clip, min=0.25, max=2.0, step=0.25, description="clip α"),
    }, bits=bits, clip=clip)
    return dashboard(quantizer_callback, controls, title="a uniform k-bit quantizer")
