"""Figures of the clipping / ACIQ lesson: histogram with the quantizer's levels, MSE vs α
(analytic and measured), the α* table, the post-training accuracy table.

Every function takes numbers computed by `analysis.clipping` and only draws.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from analysis.plots import PALETTE, new_figure

__all__ = ["noise_terms", "quantizer_panel", "mse_curves", "alpha_table_figure", "ptq_figure"]

CURVE_STYLE = {
    "measured": dict(ls="none", marker="o", ms=3, color=PALETTE["binary"], label="measured"),
    "exact": dict(ls="-", color=PALETTE["float"], label="exact (this quantizer)"),
    "paper": dict(ls="--", color=PALETTE["paper"], label="paper's approximation"),
}


def noise_terms(grid: np.ndarray, terms: dict[str, np.ndarray], bits: int, unit: str = "b",
                title: str = "") -> Figure:
    """Clipping noise, rounding noise and their sum vs α (the paper's approximation)."""
    fig, ax = new_figure(1, width=5.0, height=3.4)
    ax.plot(grid, terms["clipping"], color=PALETTE["binary"], label="clipping noise")
    ax.plot(grid, terms["rounding"], color=PALETTE["accent"], label=f"rounding noise α²/(3·4^{bits})")
    total = terms["clipping"] + terms["rounding"]
    ax.plot(grid, total, "k-", lw=2, label="sum")
    i = int(np.argmin(total))
    ax.plot(grid[i], total[i], "k*", ms=12, label=f"minimum near α = {grid[i]:.2f}{unit}")
    ax.set_yscale("log")
    ax.set(xlabel=f"clipping α / {unit}", ylabel=f"MSE / {unit}²", title=title or f"{bits} bits",
           ylim=(total.min() / 20, total.max() * 2))
    ax.legend(fontsize=7)
    return fig


def quantizer_panel(edges: np.ndarray, counts: np.ndarray, levels: np.ndarray, lo: float, hi: float,
                    grid: np.ndarray, curves: dict[str, np.ndarray], alpha_units: float,
                    optima: dict[str, float], unit: str = "b", title: str = "") -> Figure:
    """Left: histogram (log counts) with the quantization levels (thin lines) and the clipping
    bounds [lo, hi]; right: MSE/scale² vs α/scale for each curve in `curves` (keys of
    CURVE_STYLE), the chosen α (vertical line) and the optima α* (markers on the x axis)."""
    fig, (ax_h, ax_m) = new_figure(2, width=4.6, height=3.3)
    ax_h.stairs(counts, edges, fill=True, color=PALETTE["float"], alpha=0.45)
    ax_h.set_yscale("log")
    ax_h.yaxis.set_minor_locator(NullLocator())  # minor log ticks cost more drawing time than they say
    top = max(counts.max(), 1)
    shown = levels[(levels >= edges[0]) & (levels <= edges[-1])]
    ax_h.vlines(shown, 0.5, top, colors=PALETTE["accent"], lw=0.6, label=f"{len(levels)} levels")
    ax_h.axvline(lo, color=PALETTE["binary"], lw=1.5, label="clipping bounds")
    ax_h.axvline(hi, color=PALETTE["binary"], lw=1.5)
    pad = 0.03 * (max(edges[-1], hi) - min(edges[0], lo))  # wide clipping bounds stay in view
    ax_h.set(xlim=(min(edges[0], lo - pad), max(edges[-1], hi + pad)), ylim=(0.5, top * 2),
             xlabel="value", ylabel="count", title=title)
    ax_h.legend(fontsize=7, loc="upper right")
    for name, values in curves.items():
        ax_m.plot(grid, values, **CURVE_STYLE[name])
    ax_m.axvline(alpha_units, color="k", lw=0.8, ls=":")
    for name, a in optima.items():
        ax_m.plot([a], [np.interp(a, grid, curves.get(name, curves["exact"]))], marker="*", ms=11,
                  color=CURVE_STYLE[name]["color"], ls="none", label=f"α* {name} = {a:.2f}{unit}")
    ax_m.set_yscale("log")
    ax_m.yaxis.set_minor_locator(NullLocator())
    ax_m.set(xlabel=f"clipping α / {unit}", ylabel=f"MSE / {unit}²", title="clipping + rounding noise")
    ax_m.legend(fontsize=7, loc="upper right")  # a fixed place: "best" costs a search per draw
    return fig


def mse_curves(grid: np.ndarray, rows: Sequence[dict], unit: str = "b", title: str = "") -> Figure:
    """MSE/scale² vs α/scale for several bit widths: rows of {"bits", "exact", "paper", "measured"?}."""
    fig, ax = new_figure(1, width=5.5, height=3.8)
    colors = [PALETTE["binary"], PALETTE["float"], PALETTE["accent"], "#30638e", "#5c946e", "#6a4c93"]
    for i, row in enumerate(rows):
        c = colors[i % len(colors)]
        ax.plot(grid, row["exact"], "-", color=c, label=f"M={row['bits']} exact")
        ax.plot(grid, row["paper"], "--", color=c, lw=1)
        if "measured" in row:
            ax.plot(grid[::3], np.asarray(row["measured"])[::3], "o", ms=3, color=c)
    ax.plot([], [], "k--", lw=1, label="paper's approximation")
    ax.plot([], [], "ko", ms=3, label="measured")
    ax.set_yscale("log")
    ax.set(xlabel=f"clipping α / {unit}", ylabel=f"MSE / {unit}²", title=title)
    ax.legend(fontsize=7, ncol=2)
    return fig


def alpha_table_figure(rows: Sequence[dict]) -> Figure:
    """α*(M) per prior: the paper's table (grey bars), the approximation's and the exact optimum."""
    fig, axes = new_figure(2, width=4.2, height=3.2)
    bits = [r["bits"] for r in rows]
    for ax, prior, unit in zip(axes, ("laplace", "gaussian"), ("b", "σ")):
        ax.bar(bits, [r[f"{prior}_paper"] for r in rows], color=PALETTE["paper"], alpha=0.5, label="paper")
        ax.plot(bits, [r[f"{prior}_approx"] for r in rows], "o", color=PALETTE["binary"],
                label="approximation")
        ax.plot(bits, [r[f"{prior}_exact"] for r in rows], "s-", ms=4, color=PALETTE["float"], label="exact")
        ax.set(xlabel="bits M", ylabel=f"α* / {unit}", title=prior.capitalize())
        ax.legend(fontsize=7)
    return fig


def ptq_figure(rows: Sequence[dict], title: str = "") -> Figure:
    """Horizontal bars: test accuracy (%) of each post-training method."""
    fig, ax = new_figure(1, width=5.5, height=0.45 * len(rows) + 1.0)
    names = [r["method"] for r in rows][::-1]
    acc = [100 * r["accuracy"] for r in rows][::-1]
    ax.barh(names, acc, color=[PALETTE["float"] if n == "float" else PALETTE["binary"] for n in names])
    for y, a in enumerate(acc):
        ax.text(a, y, f" {a:.1f}", va="center", fontsize=8)
    ax.set(xlabel="test accuracy (%)", xlim=(0, 105), title=title)
    return fig
