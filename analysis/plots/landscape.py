"""Figures of the local-minima lesson: class fractions against #parameters/N, training-error
distributions, endpoint summaries, Hessian spectra, 1-D and 2-D loss slices.

Every function takes results computed by `analysis.landscape` (sweep rows, `Endpoints`,
slice dicts) and returns the Figure.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from analysis.plots import PALETTE, new_figure

__all__ = ["fraction_vs_params", "error_histograms", "endpoint_summary", "hessian_spectrum",
           "interpolation_figure", "slices_figure", "CLASS_COLORS"]

CLASS_COLORS = {"global": "#00798c", "suboptimal": "#d1495b", "saddle": "#edae49",
                "kink": "#6a4c93", "not_converged": "#8d8d8d"}
DATA_COLORS = ["#00798c", "#d1495b", "#edae49", "#66a182", "#2e4057"]


def _by_data(rows: Sequence[dict]) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(r["data"], []).append(r)
    return groups


def fraction_vs_params(rows: Sequence[dict]) -> Figure:
    """Left: fraction of runs that end with nonzero training error (solid) and at sub-optimal
    differentiable local minima (dashed) against P/N, one color per data set; right: the mean
    training error. The dotted line marks P = N."""
    fig, (ax, ax_err) = new_figure(2, width=4.6, height=3.4)
    for i, (name, rs) in enumerate(_by_data(rows).items()):
        c = DATA_COLORS[i % len(DATA_COLORS)]
        x = [r["P/N"] for r in rs]
        ax.plot(x, [r["frac_nonzero_error"] for r in rs], "o-", color=c,
                label=f"{name}: error > 0")
        ax.plot(x, [r["frac_suboptimal"] for r in rs], "s--", color=c, ms=4, alpha=0.8,
                label=f"{name}: sub-optimal DLM")
        ax_err.plot(x, [100 * r["mean_error"] for r in rs], "o-", color=c, label=name)
    runs = rows[0]["runs"] if rows else 0
    ticks = [t for t in (0.1, 0.2, 0.5, 1, 2, 5, 10)
             if rows and min(r["P/N"] for r in rows) / 1.5 <= t <= max(r["P/N"] for r in rows) * 1.5]
    for a in (ax, ax_err):
        a.axvline(1.0, color=PALETTE["paper"], ls=":", lw=1)
        a.set_xscale("log")
        a.set_xticks(ticks, [f"{t:g}" for t in ticks])
        a.minorticks_off()
        a.set_xlabel("#parameters / N = d1(d0+1)/N")
    ax.set(ylabel=f"fraction of {runs} runs", ylim=(-0.03, 1.03),
           title="runs ending at sub-optimal points")
    ax_err.set(ylabel="mean training error (%)", title="training error")
    ax.legend(fontsize=7)
    ax_err.legend(fontsize=8)
    return fig


def error_histograms(rows: Sequence[dict]) -> Figure:
    """Training error of every run (dots, jittered) for each width, one panel per data set,
    colored by endpoint class."""
    groups = _by_data(rows)
    fig, axes = new_figure(len(groups), width=4.6, height=3.4, squeeze=False)
    rng = np.random.default_rng(0)
    for ax, (name, rs) in zip(axes[0], groups.items()):
        for k, r in enumerate(rs):
            err = 100 * np.asarray(r["errors"])
            colors = [CLASS_COLORS[lab] for lab in r["labels"]]
            ax.scatter(k + rng.uniform(-0.3, 0.3, len(err)), err, s=6, c=colors, alpha=0.7,
                       linewidths=0)
        ax.set_xticks(range(len(rs)), [f"{r['P/N']:.2f}" for r in rs], rotation=60,
                      fontsize=7)
        ax.set(xlabel="#parameters / N", ylabel="training error (%)", title=name)
    for lab, c in CLASS_COLORS.items():
        axes[0][-1].scatter([], [], s=12, c=c, label=lab)
    axes[0][-1].legend(fontsize=7, loc="upper right")
    return fig


def endpoint_summary(fractions: dict[str, float], errors: Sequence[float],
                     title: str | None = None) -> Figure:
    """Bar chart of the endpoint classes and histogram of the runs' training errors (%)."""
    fig, (ax_c, ax_h) = new_figure(2, width=4.0, height=3.0)
    names = list(fractions)
    ax_c.bar(range(len(names)), [fractions[n] for n in names],
             color=[CLASS_COLORS.get(n, PALETTE["paper"]) for n in names])
    ax_c.set_xticks(range(len(names)), [n.replace("_", "\n") for n in names], fontsize=8)
    ax_c.set(ylim=(0, 1), ylabel="fraction of runs", title="endpoints")
    err = 100 * np.asarray(errors, dtype=float)
    hi = max(5.0, float(err.max()) if err.size else 5.0)
    ax_h.hist(err, bins=np.linspace(0, hi, 26), color=PALETTE["binary"])
    ax_h.set(xlabel="training error (%)", ylabel="runs", title="training error")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def hessian_spectrum(spectra: dict[str, np.ndarray], bins: int = 40) -> Figure:
    """Histograms of Hessian eigenvalues, one per labelled endpoint (symlog x axis)."""
    fig, ax = new_figure(width=5.0, height=3.2)
    spectra = {name: np.asarray(lam, dtype=float) for name, lam in spectra.items()}
    # bins out to ±10^2, or further where an eigenvalue is (beyond the last edge it was dropped)
    top = max([2.0] + [np.ceil(np.log10(np.abs(lam).max())) for lam in spectra.values()
                       if lam.size and np.abs(lam).max() > 0])
    for i, (name, lam) in enumerate(spectra.items()):
        edges = np.concatenate([-np.logspace(top, -8, bins // 2), [0], np.logspace(-8, top, bins // 2)])
        ax.hist(lam, bins=edges, histtype="step", lw=1.6,
                color=DATA_COLORS[i % len(DATA_COLORS)], label=f"{name} (λmin {lam.min():.1e})")
    ax.set_xscale("symlog", linthresh=1e-8)
    ticks = [-1e2, -1, -1e-4, 0, 1e-4, 1, 1e2]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks], fontsize=8)
    ax.minorticks_off()
    ax.set(xlabel="Hessian eigenvalue (symmetric log scale, linear inside ±1e-8)", ylabel="count",
           title="Hessian spectrum at the endpoint")
    ax.legend(fontsize=8)
    return fig


def interpolation_figure(line: dict, start: str = "θ_0", end: str = "θ_1",
                         title: str | None = None) -> Figure:
    """Loss and training error along θ(α) = (1−α)θ_0 + αθ_1 (a dict from `interpolate_1d`)."""
    fig, (ax, ax_e) = new_figure(2, width=4.0, height=3.0)
    a = np.asarray(line["alpha"])
    ax.plot(a, np.asarray(line["loss"]), color=PALETTE["float"])
    ax_e.plot(a, 100 * np.asarray(line["error"]), color=PALETTE["binary"])
    for axis, ylabel in ((ax, "loss"), (ax_e, "training error (%)")):
        axis.axvline(0, color=PALETTE["paper"], ls=":", lw=1)
        axis.axvline(1, color=PALETTE["paper"], ls=":", lw=1)
        axis.set(xlabel=f"α: {start} at 0, {end} at 1", ylabel=ylabel)
    ax.set_title("loss along the segment")
    ax_e.set_title("training error along the segment")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def slices_figure(slices: dict[str, dict]) -> Figure:
    """For each example: the loss along the segment from the initialization (α=0) to the
    endpoint (α=1), and the loss on a 2-D filter-normalized slice around the endpoint."""
    fig, axes = new_figure(2, nrows=len(slices), width=4.2, height=3.2, squeeze=False)
    for (ax_l, ax_s), (name, s) in zip(axes, slices.items()):
        line = s["line"]
        ax_l.plot(line["alpha"], line["loss"], color=PALETTE["float"])
        ax_l.axvline(0, color=PALETTE["paper"], ls=":", lw=1)
        ax_l.axvline(1, color=PALETTE["binary"], ls=":", lw=1)
        ax_l.set(xlabel="α  (θ = (1−α)θ_init + α θ_end)", ylabel="loss", yscale="log",
                 title=f"{name} (P/N {s['P/N']:.2f}), error {100 * s['error']:.0f}%")
        sl = s["slice"]
        cs = ax_s.contourf(sl["alpha"], sl["beta"], np.log10(np.asarray(sl["loss"]) + 1e-12),
                           levels=20, cmap="viridis")
        ax_s.plot([0], [0], "r*", ms=9)
        fig.colorbar(cs, ax=ax_s, label="log10 loss")
        ax_s.set(xlabel="direction δ", ylabel="direction η", title="2-D slice around the endpoint")
    return fig
