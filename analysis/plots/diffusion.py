"""Figures of "Train longer, generalize better": weight distance vs updates, errors per configuration.

Every function takes results computed by `analysis.diffusion` (records, rows, fits) and
returns the Figure.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from analysis.diffusion import compare_fits, fit_log, predict
from analysis.plots import PALETTE, new_figure

__all__ = ["distance_vs_updates", "error_per_config", "fit_comparison", "random_walks", "layer_distances"]

COLORS = ["#00798c", "#d1495b", "#edae49", "#66a182", "#2e4057", "#8d8d8d"]


def distance_vs_updates(results: dict, names: Sequence[str] | None = None, fit_of: str | None = None,
                        ax=None) -> Figure:
    """‖w_t − w_0‖ against updates t (log axis) for each run, with the fitted log law of `fit_of`.

    results: {"records": {name: record dict}} as written by the experiment. fit_of defaults
    to the first run with the most updates (the small batch in the experiment's table).
    """
    records = results["records"]
    names = list(names or records)
    unknown = [n for n in [*names, *([fit_of] if fit_of else [])] if n not in records]
    if unknown:
        raise ValueError(f"no record named {unknown[0]!r}; records: {', '.join(records)}")
    if ax is None:
        fig, ax = new_figure(width=5.2, height=3.6)
    else:
        fig = ax.figure
    styles = ["-", "-", "--", ":", "-."]
    for i, name in enumerate(names):
        r = records[name]
        ax.plot(r["steps"], r["distance"], styles[i % len(styles)], color=COLORS[i % len(COLORS)],
                lw=1.8, label=name)
    fit_of = fit_of or max(names, key=lambda n: records[n]["steps"][-1])
    r = records[fit_of]
    try:
        fit = fit_log(r["steps"], r["distance"])
    except ValueError:  # a diverged run (NaN distances) or under 3 points: drawn, not fitted
        fit = None
    if fit:
        a, b, r2 = fit
        t = np.asarray(r["steps"], dtype=float)
        ax.plot(t, predict("log", {"a": a, "b": b}, t), "k--", lw=1,
                label=f"fit to {fit_of}: {a:.2f} + {b:.2f}·log t (R² {r2:.3f})")
    ax.set(xscale="log", xlabel="updates t", ylabel="‖w_t − w_0‖", title="weight diffusion (measured)")
    ax.legend(fontsize=7)
    return fig


def fit_comparison(steps: Sequence[float], distance: Sequence[float], title: str = "which law?") -> Figure:
    """One record against the three fitted laws (log, power, sqrt), on log and linear t axes."""
    fits = compare_fits(steps, distance)
    t = np.asarray(steps, dtype=float)
    fig, axes = new_figure(2, width=4.2, height=3.2)
    for ax, scale in zip(axes, ("log", "linear")):
        ax.plot(t, distance, "o", ms=3, color=PALETTE["float"], label="measured")
        for law, style, desc in [("log", "k--", "a + b·log t"), ("power", ":", "c·t^p"),
                                 ("sqrt", "-.", "a + c·√t")]:
            ax.plot(t, predict(law, fits[law], t), style, lw=1.2,
                    label=f"{desc}  R² {fits[law]['r2']:.3f}")
        ax.set(xscale=scale, xlabel="updates t", ylabel="‖w_t − w_0‖")
    axes[0].legend(fontsize=7)
    fig.suptitle(title)
    return fig


def error_per_config(rows: Sequence[dict]) -> Figure:
    """Test error per configuration (bars), annotated with the number of updates."""
    fig, ax = new_figure(width=6.0, height=3.2)
    names = [r["name"] for r in rows]
    err = [100 * r["test_error"] for r in rows]
    bars = ax.barh(names[::-1], err[::-1], color=[COLORS[i % len(COLORS)] for i in range(len(rows))][::-1])
    for bar, r in zip(bars, rows[::-1]):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2,
                f" {100 * r['test_error']:.2f}%  ({r['updates']} updates)", va="center", fontsize=8)
    ax.set(xlabel="test error (%)", title="generalization gap (measured)", xlim=(0, max(err) * 1.6))
    return fig


def random_walks(walks: dict[str, tuple[Sequence[float], Sequence[float]]]) -> Figure:
    """RMS distance of simulated walks (name → (t, d)) against t on a log axis."""
    fig, axes = new_figure(2, width=4.2, height=3.2)
    for i, (name, (t, d)) in enumerate(walks.items()):
        for ax in axes:
            ax.plot(t, d, "-", color=COLORS[i % len(COLORS)], label=name)
    axes[0].set(xscale="log", yscale="log", xlabel="steps t", ylabel="RMS distance", title="log-log")
    axes[1].set(xscale="log", xlabel="steps t", ylabel="RMS distance", title="log t axis")
    axes[0].legend(fontsize=8)
    return fig


def layer_distances(record: dict, top: int = 8) -> Figure:
    """Per-layer ‖w_t − w_0‖ of one record (the `top` layers that move most)."""
    if not record.get("layers") or not all(record["layers"].values()):
        raise ValueError("the record has no per-layer distances (recorded with "
                         "WeightDiffusion(layers=False), or compacted like the shipped grid)")
    fig, ax = new_figure(width=5.2, height=3.4)
    layers = sorted(record["layers"].items(), key=lambda kv: -kv[1][-1])[:top]
    colors = [c for c in COLORS if c != PALETTE["paper"]]  # grey is the paper's
    styles = ["-", "--", ":", "-."]  # a new style each time the colours come round again
    for i, (name, d) in enumerate(layers):
        ax.plot(record["steps"], d, styles[i // len(colors) % len(styles)],
                color=colors[i % len(colors)], label=f"layer {name}")
    ax.set(xscale="log", xlabel="updates t", ylabel="‖w_t − w_0‖ of the layer", title="per layer")
    ax.legend(fontsize=7)
    return fig
