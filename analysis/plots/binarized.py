"""Figures of lesson 01 (binarized networks): sign and its straight-through gradient, latent-weight
and activation histograms, run-time memory, accuracy against model size.

Each function takes numbers computed by `analysis.binarized` and returns the Figure.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from analysis.plots import PALETTE, new_figure

__all__ = ["sign_ste_figure", "histograms_figure", "memory_figure", "width_figure"]

_NAMES = {"bnn-mlp": ("binarized MLP", PALETTE["binary"]), "mlp": ("float MLP", PALETTE["float"])}


def _array(t) -> np.ndarray:
    return t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t)


def sign_ste_figure(curves: dict, point: dict) -> Figure:
    """Forward (sign and hard-tanh) and backward (STE gradient 1{|x| ≤ 1}) with the point x marked.

    curves: `sign_ste_curves(grid)`; point: `sign_ste_at(x)`.
    """
    fig, (ax_f, ax_b) = new_figure(2)
    x = _array(curves["x"])
    ax_f.plot(x, _array(curves["sign"]), color=PALETTE["binary"], lw=2, drawstyle="steps-post",
              label="sign(x)  (forward)")
    ax_f.plot(x, _array(curves["hardtanh"]), "--", color=PALETTE["float"], label="hard-tanh(x)")
    ax_f.plot([point["x"]], [point["sign"]], "o", color=PALETTE["binary"], ms=9)
    ax_f.plot([point["x"]], [point["hardtanh"]], "s", color=PALETTE["float"], ms=7)
    ax_f.set(xlabel="x", ylabel="value", ylim=(-1.5, 1.5),
             title=f"sign({point['x']:+.2f}) = {point['sign']:+.0f}")
    ax_f.legend(fontsize=8, loc="upper left")

    g = _array(curves["ste_gradient"])
    ax_b.fill_between(x, 0, g, color=PALETTE["accent"], alpha=0.35, step="mid",
                      label="STE: 1{|x| ≤ 1}  (backward)")
    ax_b.axhline(0, color=PALETTE["paper"], ls=":", label="true derivative of sign (0)")
    ax_b.plot([point["x"]], [point["ste_gradient"]], "o", color="black", ms=9)
    ax_b.set(xlabel="x", ylabel="∂q/∂x used by backward", ylim=(-0.25, 1.35),
             title=f"gradient passed at x: {point['ste_gradient']:.0f}")
    ax_b.legend(fontsize=8, loc="upper left")
    for ax in (ax_f, ax_b):
        ax.axvline(point["x"], color="black", lw=0.8, alpha=0.5)
        ax.grid(alpha=0.3)
    return fig


def _density_steps(ax, values, bins: int, color: str) -> None:
    """Histogram as a density, drawn as filled steps. numpy + `stairs`, not seaborn's histplot:
    for the 10^5–10^6 values of a layer, histplot (pandas underneath) took ~0.1 s per panel,
    most of the widget's callback."""
    density, edges = np.histogram(_array(values), bins=bins, density=True)
    ax.stairs(density, edges, fill=True, color=color, alpha=0.25)
    ax.stairs(density, edges, color=color, lw=1.2)
    ax.set_ylabel("density")


def histograms_figure(weights, inputs=None, layer: str = "", bins: int = 80) -> Figure:
    """Histograms of a layer's latent weights W and of the real inputs a it binarizes to sign(a).

    The clip bound ±1 of W and the STE window |a| ≤ 1 are marked; without inputs (a first layer
    on real pixels) the second panel says so.
    """
    fig, (ax_w, ax_a) = new_figure(2)
    _density_steps(ax_w, weights, bins, PALETTE["binary"])
    for b in (-1, 1):
        ax_w.axvline(b, color="black", ls="--", lw=0.8)
    ax_w.set(xlabel="latent weight W (run time uses sign(W))", title=f"layer {layer}: latent weights")
    if inputs is None:
        ax_a.text(0.5, 0.5, "first layer: real input (pixels),\nnot binarized", ha="center",
                  va="center", transform=ax_a.transAxes)
        ax_a.set_axis_off()
    else:
        _density_steps(ax_a, inputs, bins, PALETTE["float"])
        ax_a.axvspan(-1, 1, color=PALETTE["accent"], alpha=0.2, label="|a| ≤ 1: gradient passes")
        ax_a.axvline(0, color="black", lw=0.8)
        ax_a.set(xlabel="input a before sign (batch-norm output)", title=f"layer {layer}: activations")
        ax_a.legend(fontsize=8, loc="upper right", framealpha=0.9)
    return fig


def memory_figure(rows_by_model: dict[str, list[dict]], paper_ratio: float | None = 32.0) -> Figure:
    """Bytes stored at run time: per layer (left, log scale) and in total (right), float vs binary.

    rows_by_model: {label: `run_time_memory(model)`}; the per-layer panel shows the first model
    (float32 vs its run-time bytes). paper_ratio: the paper's compression of binarized layers,
    drawn as a labelled reference ("paper").
    """
    if not rows_by_model:  # was a bare StopIteration, with the empty figure left open in pyplot
        raise ValueError("memory_figure needs {label: run_time_memory(model)} for at least one model")
    fig, (ax_l, ax_t) = new_figure(2, width=4.6)
    label0, rows0 = next(iter(rows_by_model.items()))
    layers = [r for r in rows0 if r["layer"] != "total"]
    pos = np.arange(len(layers))
    ax_l.bar(pos - 0.2, [r["float_bytes"] for r in layers], 0.4, color=PALETTE["float"], label="float32")
    ax_l.bar(pos + 0.2, [r["run_time_bytes"] for r in layers], 0.4, color=PALETTE["binary"],
             label="run time")
    ax_l.set_xticks(pos, [f"{r['layer']}\n{r['kind'].replace('BatchNorm1d', 'BN')}" for r in layers],
                    fontsize=7)
    ax_l.set(yscale="log", ylabel="bytes", title=f"{label0}: per layer")
    ax_l.legend(fontsize=8)

    labels = list(rows_by_model)
    totals = [rows_by_model[k][-1]["run_time_bytes"] for k in labels]
    colors = [PALETTE["binary"] if r[-1]["ratio"] > 1 else PALETTE["float"] for r in rows_by_model.values()]
    bars = ax_t.bar(labels, [t / 2**20 for t in totals], color=colors)
    for bar, total in zip(bars, totals):
        ax_t.annotate(f"{total / 2**20:.2f} MiB", (bar.get_x() + bar.get_width() / 2, total / 2**20),
                      ha="center", va="bottom", fontsize=8)
    ratio = max(totals) / min(totals)
    title = f"total at run time: {ratio:.1f}x smaller (measured)"
    if paper_ratio:
        title += f"\npaper: {paper_ratio:.0f}x for the binarized layers"
    ax_t.set(ylabel="MiB", title=title)
    ax_t.margins(y=0.12)
    ax_t.tick_params(axis="x", labelsize=8)
    return fig


def width_figure(rows: list[dict], width: int | None = None) -> Figure:
    """Test error against run-time model size, one curve per model, the runs at `width` marked."""
    fig, ax = new_figure(width=6.0, height=3.6)
    for name in dict.fromkeys(r["name"] for r in rows):
        label, color = _NAMES.get(name, (name, PALETTE["paper"]))
        runs = sorted((r for r in rows if r["name"] == name), key=lambda r: r["width"])
        size = [r["run_time_bytes"] for r in runs]
        err = [100 * r["test_error"] for r in runs]
        ax.plot(size, err, "o-", color=color, label=label)
        for r in runs:
            if r["width"] == width:
                ax.plot(r["run_time_bytes"], 100 * r["test_error"], "o", ms=14, mfc="none",
                        mec="black", mew=2)
                ax.annotate(f"{100 * r['test_error']:.1f}%\n{r['run_time_bytes'] / 1024:.0f} KiB",
                            (r["run_time_bytes"], 100 * r["test_error"]), textcoords="offset points",
                            xytext=(10, 6), fontsize=8)
    ax.set(xscale="log", xlabel="model size at run time (bytes, log scale)", ylabel="test error (%)",
           title=f"hidden width {width}: accuracy vs model size (measured)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return fig
