"""Figures of lesson 02 (the XNOR kernel): one dot product through the bits, and benchmarks."""

from __future__ import annotations

import matplotlib.colors as mcolors
import matplotlib.ticker as mticker
import numpy as np
from matplotlib.figure import Figure

from analysis.plots import PALETTE, new_figure

__all__ = ["xnor_dot_figure", "benchmark_figure", "inference_figure"]

_COLORS = {"xnor": PALETTE["binary"], "xnor-popc": "#e8919c", "baseline": PALETTE["accent"],
           "fp32": PALETTE["float"], "bf16": "#30638e", "torch float": PALETTE["float"]}


def xnor_dot_figure(a: np.ndarray, b: np.ndarray, steps: dict) -> Figure:
    """Rows a, b (±1), their bits, XOR and the products a_i·b_i; the sum in the title.

    `steps` is `analysis.xnor.dot_by_xnor(a, b)`.
    """
    k = steps["k"]
    rows = [("a", a), ("b", b), ("bits of a", steps["bits_a"]), ("bits of b", steps["bits_b"]),
            ("a XOR b", steps["xor"]), ("a_i · b_i", a * b)]
    # one color per meaning: +1 / bit 1 red, −1 / bit 0 light; XOR 1 (a mismatch) dark
    fig, ax = new_figure(width=max(4.0, 0.42 * k + 1.8), height=3.0)
    shade = np.array([[1.0 if v > 0 else 0.0 for v in values] for _, values in rows])
    shade[4] = 2 * steps["xor"]
    cmap = mcolors.ListedColormap(["#e9eef2", PALETTE["binary"], "#3d3d3d"])
    ax.imshow(shade, cmap=cmap, vmin=0, vmax=2, aspect="auto")
    for r, (_, values) in enumerate(rows):
        for c, v in enumerate(values):
            text = f"{int(v):+d}" if r in (0, 1, 5) else f"{int(v)}"
            # inside its cell, so it cannot move the layout: leaving it out of the layout
            # passes saves ~0.05 s of drawing at K = 32 (192 labels), the image is the same
            ax.text(c, r, text, ha="center", va="center", fontsize=8,
                    color="white" if shade[r, c] > 0 else "black", in_layout=False)
    ax.set_yticks(range(len(rows)), [name for name, _ in rows])
    ax.set_xticks(range(k), [str(i) for i in range(k)], fontsize=7)
    ax.set_xlabel("position i")
    ax.set_title(f"a·b = K − 2·popcount(a XOR b) = {k} − 2·{steps['popcount']} = {steps['dot']}",
                 fontsize=10)
    return fig


def benchmark_figure(result: dict, paper: dict | None = None) -> Figure:
    """Square sizes of a `bench xnor` result: time per product, and the XNOR kernel's speed
    relative to the others (their time over its time; below the 1x line it is slower).

    paper: `analysis.xnor.PAPER`, drawn as grey reference lines labelled as the paper's.
    """
    rows = [r for r in result["rows"] if r["shape"] == "square"]
    sizes = [r["m"] for r in rows]
    names = list(rows[0]["seconds"])
    fig, (ax_t, ax_s) = new_figure(2, width=4.6)
    for name in names:
        ax_t.plot(sizes, [1e3 * r["seconds"][name] for r in rows], "o-", label=name,
                  color=_COLORS.get(name))
        if name != "xnor":
            ax_s.plot(sizes, [r["xnor_speedup"][name] for r in rows], "o-",
                      label=f"xnor vs {name}", color=_COLORS.get(name))
    if paper:
        for key, label in (("xnor_vs_baseline_8192", "paper: vs unoptimized"),
                           ("xnor_vs_cublas_8192", "paper: vs cuBLAS")):
            ax_s.axhline(paper[key], color=PALETTE["paper"], ls="--", lw=1)
            ax_s.text(sizes[0], paper[key], f"{label} {paper[key]:g}x (GTX 750)",
                      fontsize=7, va="bottom", color=PALETTE["paper"])
    for ax in (ax_t, ax_s):
        ax.set_xscale("log", base=2)
        ax.set_xticks(sizes, [str(s) for s in sizes])
        ax.grid(alpha=0.3)
    ax_t.set_yscale("log")
    ax_t.set(xlabel="M = N = K", ylabel="ms per product", title="time (median)")
    # the reference: above it xnor is faster, below it slower (on a CPU it is often below)
    ax_s.axhline(1.0, color="black", lw=0.7, label="1x: as fast", zorder=1)
    ax_s.set_yscale("log")
    others = [n for n in names if n != "xnor"]
    ax_s.set(xlabel="M = N = K", ylabel="their time / xnor time (x)",
             title=f"XNOR speed relative to {others[0] if len(others) == 1 else 'the others'}")
    _plain_log_ticks(ax_s)
    ax_t.legend(fontsize=8)
    ax_s.legend(fontsize=8)
    gpu = result.get("gpu") or {}
    where = gpu.get("name") or f"CPU, {result.get('machine', {}).get('threads', '?')} threads"
    kernel = f"; xnor = the '{result['xnor_kernel']}' kernel" if gpu and "xnor_kernel" in result else ""
    fig.suptitle(f"measured: {where}, {result.get('machine', {}).get('date', '')}{kernel}", fontsize=9)
    return fig


def _plain_log_ticks(ax) -> None:
    """Label a log y axis in plain multiples ("0.5x", "1x", "2x"), not "9×10⁻¹".

    Ticks at 1-2-5 × 10^k; an axis spanning too little for three of them gets every 1..9 × 10^k.
    The limits are the plotted data's, so call this after everything is drawn.
    """
    lo, hi = ax.get_ylim()
    for mantissas in ((1, 2, 5), (1, 2, 3, 4, 5, 6, 7, 8, 9)):
        ticks = [m * 10.0**e for e in range(-4, 5) for m in mantissas if lo <= m * 10.0**e <= hi]
        if len(ticks) >= 3:
            break
    ax.set_yticks(ticks, [f"{t:g}x" for t in ticks])
    ax.yaxis.set_minor_formatter(mticker.NullFormatter())
    ax.set_ylim(lo, hi)


def inference_figure(result: dict, paper: dict | None = None) -> Figure:
    """Milliseconds per batch of a `bench bnn-inference` result, with the paper's 7x beside."""
    names = list(result["seconds"])
    fig, ax = new_figure(width=5.0)
    ms = [1e3 * result["seconds"][n] for n in names]
    ax.bar(names, ms, color=[_COLORS[n] for n in names])  # grey is kept for the paper
    for i, n in enumerate(names):
        ax.text(i, ms[i], f"{result['xnor_speedup'][n]:.1f}x", ha="center", va="bottom", fontsize=8)
    title = (f"MLP {result['depth']}x{result['width']}, batch {result['batch']}\n"
             "number on a bar: its time / xnor time")
    if paper:
        title += f"\npaper: {paper['mlp_xnor_vs_baseline']:g}x xnor vs baseline (GTX 750)"
    gpu = result.get("gpu") or {}
    ax.set(ylabel="ms per batch (median)", title=title)
    kernel = f"; xnor = the '{result['xnor_kernel']}' kernel" if gpu and "xnor_kernel" in result else ""
    ax.set_xlabel(f"measured: {gpu.get('name', 'CPU')}, {result.get('machine', {}).get('date', '')}"
                  f"{kernel}", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return fig
