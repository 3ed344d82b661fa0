"""Figures of the implicit-bias lesson: GD's direction approaching the max-margin SVM, the
1/log t and 1/t laws, training past zero error, and the Fourier bias of linear conv nets.

Each function takes results from `analysis.margin` and returns the Figure.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from analysis.margin import FourierBias, GDRecord, RateFit, fourier_coefficients, signed_labels, theory_loss
from analysis.plots import PALETTE, new_figure

__all__ = ["data_and_trajectory", "gap_curves", "train_past_zero_error", "fourier_spectra",
           "sparsity_vs_depth"]

_COLORS = [PALETTE["float"], PALETTE["binary"], PALETTE["accent"], "#30638e", "#7a5195"]


def _separator(ax, w: np.ndarray, lim: float, offset: float = 0.0, **style) -> None:
    """The line {x: wᵀx/‖w‖ = offset} in 2-D."""
    normal = w / np.linalg.norm(w)
    along = np.array([-normal[1], normal[0]])
    ends = np.outer([-2 * lim, 2 * lim], along) + offset * normal
    ax.plot(ends[:, 0], ends[:, 1], **style)


def data_and_trajectory(X, y, record: GDRecord, times: Sequence[int] = (10, 100, 1000)) -> Figure:
    """Left: 2-D data, the SVM hyperplane and its margin, support vectors ringed, and GD's
    hyperplane at a few times. Right: w(t) in weight space beside the ray ŵ·log t."""
    X = np.asarray(X, dtype=np.float64)
    y = signed_labels(y)
    if X.shape[1] != 2:
        raise ValueError(f"the trajectory figure needs 2-D data, got d={X.shape[1]}")
    fig, (ax, aw) = new_figure(2, width=4.4, height=4.0)
    lim = 1.1 * float(np.abs(X).max())
    for label, color in ((1, PALETTE["float"]), (-1, PALETTE["binary"])):
        pts = X[y == label]
        ax.scatter(pts[:, 0], pts[:, 1], s=18, color=color, label=f"y = {label:+d}", zorder=3)
    sv = X[record.svm.support]
    ax.scatter(sv[:, 0], sv[:, 1], s=110, facecolors="none", edgecolors="k", lw=1.2,
               label="support vectors", zorder=4)
    u, gamma = record.svm.direction, record.svm.margin
    _separator(ax, u, lim, color="k", lw=1.6, label="SVM")
    for sgn in (1, -1):
        _separator(ax, u, lim, sgn * gamma, color="k", lw=0.8, ls=":")
    greys = np.linspace(0.75, 0.35, len(times))
    for t, g in zip(times, greys):
        if t <= record.t[-1]:
            i = record.at(t)
            _separator(ax, record.w[i], lim, color=str(g), lw=1.0, ls="--",
                       label=f"GD, t = {record.t[i]:,}")
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", xlabel="$x_1$", ylabel="$x_2$",
           title=f"data and hyperplanes (γ = {gamma:.3f})")
    ax.legend(fontsize=7, loc="lower right")
    aw.plot(record.w[:, 0], record.w[:, 1], ".-", color=PALETTE["float"], ms=4, label="w(t), GD")
    ray = np.log(record.t)[:, None] * record.svm.w[None, :]
    aw.plot(ray[:, 0], ray[:, 1], "--", color=PALETTE["paper"], label="ŵ log t (theory)")
    aw.scatter(*record.w[-1], color=PALETTE["binary"], zorder=3,
               label=f"t = {record.t[-1]:,}")
    aw.set(xlabel="$w_1$", ylabel="$w_2$", title="weights: ‖w‖ grows like log t")
    aw.legend(fontsize=7)
    return fig


def gap_curves(records: Sequence[GDRecord], labels: Sequence[str] | None = None,
               fits: Sequence[RateFit | None] | None = None, theory: bool = True) -> Figure:
    """Log-log curves vs t: the angle to the SVM direction (with the fitted a + b/log t),
    the margin gap γ − min_n y_n x_nᵀw/‖w‖, and the loss with the theory ‖ŵ‖²/(η t).

    fits: `fit_rate(r.t, r.angle, "1/log t")` per record (radians, as `GDRecord.angle`), drawn
    and labelled in degrees like the axis."""
    labels = labels or [f"{r.optimizer}, {r.loss_name}" for r in records]
    fig, (a1, a2, a3) = new_figure(3, width=3.9, height=3.3)
    theory_label = "theory ‖ŵ‖²/(ηt)"  # once in the legend, on the first theory line drawn
    for k, (r, label) in enumerate(zip(records, labels)):
        c = _COLORS[k % len(_COLORS)]
        a1.loglog(r.t, np.degrees(r.angle), color=c, label=label)
        a2.loglog(r.t, np.maximum(r.svm.margin - r.margin, 1e-12), color=c, label=label)
        a3.loglog(r.t, r.loss, color=c, label=label)
        fit = fits[k] if fits else None
        if fit is not None:
            tt = r.t[(r.t >= fit.t_min) & (r.t <= fit.t_max)]
            a, b = np.degrees(fit.intercept), np.degrees(fit.slope)  # the axis is in degrees
            a1.loglog(tt, np.degrees(fit.predict(tt)), ":", color="k", lw=1.2,
                      label=f"{a:+.2f}° {b:+.1f}°/log t (R²={fit.r2:.3f})")
        if theory and r.optimizer == "gd":
            a3.loglog(r.t, theory_loss(r.svm, r.lr, r.t), "--", color=PALETTE["paper"], lw=1,
                      label=theory_label)
            theory_label = None
    a1.set(xlabel="iteration t", ylabel="angle to SVM (degrees)", title="direction: ~ 1/log t")
    a2.set(xlabel="iteration t", ylabel="γ − margin(t)", title="margin gap")
    a3.set(xlabel="iteration t", ylabel="training loss", title="loss: ~ 1/t")
    for a in (a1, a2, a3):
        a.legend(fontsize=7)
    return fig


def train_past_zero_error(record: GDRecord, test: dict) -> Figure:
    """Training and test loss and error vs t after the data are separated: the test loss can
    rise while the direction (and with it the margin) keeps improving."""
    fig, (al, ae) = new_figure(2, width=4.2, height=3.2)
    al.semilogx(record.t, record.loss, color=PALETTE["float"], ls="--", label="train")
    al.semilogx(test["t"], test["loss"], color=PALETTE["float"], label="test")
    ae.semilogx(record.t, 100 * record.error, color=PALETTE["binary"], ls="--", label="train")
    ae.semilogx(test["t"], 100 * test["error"], color=PALETTE["binary"], label="test")
    zero = record.t[np.argmax(record.error == 0)] if np.any(record.error == 0) else None
    for a in (al, ae):
        if zero is not None:
            a.axvline(zero, color=PALETTE["paper"], lw=0.8, ls=":", label="train error hits 0")
        a.legend(fontsize=7)
    al.set(xlabel="iteration t", ylabel="logistic loss", title="loss")
    ae.set(xlabel="iteration t", ylabel="error (%)", title="error")
    return fig


def fourier_spectra(predictors: dict[str, np.ndarray]) -> Figure:
    """|β̂_k| (scaled to max 1, frequencies 0 … d/2) of several predictors, one panel each."""
    fig, axes = new_figure(len(predictors), width=2.6, height=2.4, sharey=True)
    axes = np.atleast_1d(axes)
    for k, (ax, (name, beta)) in enumerate(zip(axes, predictors.items())):
        a = np.abs(fourier_coefficients(beta))[: len(beta) // 2 + 1]
        ax.bar(np.arange(len(a)), a / a.max(), color=_COLORS[k % len(_COLORS)])
        ax.set(title=name, xlabel="frequency k")
    axes[0].set_ylabel("|β̂_k| / max")
    return fig


def sparsity_vs_depth(result: FourierBias) -> Figure:
    """Mean Fourier sparsity (Hoyer) of GD's predictor vs depth L, conv vs fully connected,
    beside the ℓ_{2/L} stationary points; the dots are the individual data sets."""
    fig, ax = new_figure(1, width=4.4, height=3.3)
    L = np.array(result.depths)
    for k, (kind, label) in enumerate((("conv", "linear conv net (GD)"),
                                       ("fc", "fully connected (GD)"),
                                       ("bridge", r"$\ell_{2/L}$ stationary point"))):
        vals = [result.sparsity[(kind, d)] for d in L]
        c = _COLORS[k]
        ax.plot(L, [np.mean(v) for v in vals], "o-" if kind != "bridge" else "s--", color=c,
                label=label)
        for d, v in zip(L, vals):
            ax.scatter(np.full(len(v), d) + 0.05 * (k - 1), v, s=8, color=c, alpha=0.4)
    ax.set(xlabel="depth L", ylabel="Fourier sparsity (Hoyer, 0 flat … 1 one frequency)",
           xticks=L, ylim=(0, 1), title="implicit bias vs depth")
    ax.legend(fontsize=7)
    return fig
