"""Figure of lesson 00 (start here): the k-bit staircase of `analysis.quant.quantize_uniform`."""

from __future__ import annotations

from matplotlib.figure import Figure

from analysis.plots import PALETTE, new_figure

__all__ = ["staircase_figure"]


def staircase_figure(x, q, bits: int, clip: float) -> Figure:
    """Q(x) against x (the staircase) and the identity, with the clipping range [−α, α] marked."""
    fig, ax = new_figure(width=5.0, height=3.4)
    x, q = x.detach().numpy(), q.detach().numpy()
    ax.plot(x, x, ":", color=PALETTE["paper"], label="x (no quantization)")
    ax.plot(x, q, color=PALETTE["binary"], lw=2, label=f"Q(x), {bits} bits = {2**bits} levels")
    for b in (-clip, clip):
        ax.axvline(b, color="black", ls="--", lw=0.8)
    ax.set(xlabel="x", ylabel="Q(x)", title=f"uniform quantizer on [−{clip:g}, {clip:g}]")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    return fig
