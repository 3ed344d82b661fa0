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


def training_curves(*histories, labels: list[str] | None = None, kinds: list[str] | None = None,
                    title: str | None = None) -> Figure:
    """Loss and error per epoch (train dashed, test solid) for one or more runs' histories.

    The colour says what a run is, as everywhere in the course: `kinds` gives each run's
    "binary" (red: binarized or quantized) or "float" (teal) model, float for all when not
    given. The paper's grey is never used for a measured run; runs of the same kind differ by
    marker.
    """
    fig, (ax_loss, ax_err) = new_figure(2)
    labels = labels or [f"run {i + 1}" for i in range(len(histories))]
    kinds = kinds or ["float"] * len(histories)
    if len(kinds) != len(histories) or set(kinds) - {"binary", "float"}:
        raise ValueError(f"kinds must give 'binary' or 'float' for each of the {len(histories)} "
                         f"runs, got {kinds}")
    seen: dict[str, int] = {}
    for h, label, kind in zip(histories, labels, kinds):
        c = PALETTE[kind]
        marker = _MARKERS[seen.get(kind, 0) % len(_MARKERS)]
        seen[kind] = seen.get(kind, 0) + 1
        style = {"color": c, "marker": marker, "markersize": 4}
        ep = h["epoch"]
        ax_loss.plot(ep, h["train_loss"], "--", label=f"{label} train", **style)
        ax_err.plot(ep, [100 * e for e in h["train_error"]], "--", label=f"{label} train", **style)
        if h.epochs and "test_error" in h.epochs[0]:
            ax_loss.plot(ep, h["test_loss"], "-", label=f"{label} test", **style)
            ax_err.plot(ep, [100 * e for e in h["test_error"]], "-", label=f"{label} test", **style)
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_err.set(xlabel="epoch", ylabel="error (%)", title="error")
    ax_err.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


_MARKERS = ("", "o", "s", "^")  # the first run of a kind keeps a plain line (lesson 01's look)
