"""Figures shared by lessons, widgets and the command line (matplotlib + seaborn).

One function per figure; each takes results computed elsewhere (it computes nothing an
analysis module could) and returns the `Figure`. Per-topic figures live in
`analysis/plots/<topic>.py`; this file holds the shared style and the training curves.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

__all__ = ["new_figure", "training_curves", "PALETTE"]

PALETTE = {"binary": "#d1495b", "float": "#00798c", "paper": "#8d8d8d", "accent": "#edae49"}


def new_figure(ncols: int = 1, nrows: int = 1, width: float = 4.2, height: float = 3.2,
               **kwargs) -> tuple[Figure, object]:
    """A figure of `nrows` × `ncols` panels with the course's style (constrained layout)."""
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows),
                             layout="constrained", **kwargs)
    return fig, axes


def training_curves(*histories, labels: list[str] | None = None, title: str | None = None) -> Figure:
    """Loss and error per epoch (train dashed, test solid) for one or more runs' histories."""
    fig, (ax_loss, ax_err) = new_figure(2)
    labels = labels or [f"run {i + 1}" for i in range(len(histories))]
    colors = list(PALETTE.values())
    for i, (h, label) in enumerate(zip(histories, labels)):
        c = colors[i % len(colors)]
        ep = h["epoch"]
        ax_loss.plot(ep, h["train_loss"], "--", color=c, label=f"{label} train")
        ax_err.plot(ep, [100 * e for e in h["train_error"]], "--", color=c, label=f"{label} train")
        if h.epochs and "test_error" in h.epochs[0]:
            ax_loss.plot(ep, h["test_loss"], "-", color=c, label=f"{label} test")
            ax_err.plot(ep, [100 * e for e in h["test_error"]], "-", color=c, label=f"{label} test")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_err.set(xlabel="epoch", ylabel="error (%)", title="error")
    ax_err.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return fig
