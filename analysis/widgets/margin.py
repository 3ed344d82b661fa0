"""Dashboard of the implicit-bias lesson: change the data, the loss and the optimizer, and
watch gradient descent's direction creep towards the max-margin SVM (Soudry et al. 2018).

    from analysis.widgets.margin import implicit_bias_widget
    implicit_bias_widget()          # in a notebook
    fig, numbers = implicit_bias_callback(n=40, move=1.0)   # in a test
"""

from __future__ import annotations

import functools

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from analysis import data
from analysis import margin as M
from analysis.plots import new_figure
from analysis.plots.margin import _COLORS, _separator
from analysis.widgets import Dashboard, dashboard

__all__ = ["implicit_bias_callback", "implicit_bias_widget", "widget_data"]


def widget_data(n: int = 40, margin: float = 0.5, move: float = 0.0,
                seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """2-D `separable` data (labels ±1) with point 0 slid towards the SVM hyperplane by
    `move` ∈ [0, 1] (at 1 it sits at half the old margin: a new support vector)."""
    if not 0 <= move <= 1:  # < 0 was ignored, > 1 pushed the point past the SVM hyperplane
        raise ValueError(f"move must be in [0, 1] (0: point 0 stays, 1: it sits at half the "
                         f"margin), got {move!r}")
    X, y = data.load("separable", n=n, d=2, margin=margin, seed=seed)
    X, y = X.double().numpy(), M.signed_labels(y)
    return (M.move_point(X, y, 0, move) if move > 0 else X), y


@functools.lru_cache(maxsize=32)
def _run(n: int, margin: float, move: float, loss: str, optimizer: str, steps: int,
         seed: int) -> tuple[np.ndarray, np.ndarray, M.GDRecord]:
    """The data and GD's record for one setting, kept: a control moved back redraws without
    running GD again (100,000 steps on 200 points take 0.3–0.5 s here)."""
    X, y = widget_data(n, margin, move, seed)
    r = M.gradient_descent(X, y, loss=loss, optimizer=optimizer, steps=steps, record=10,
                           progress=False)
    X.setflags(write=False)  # shared by every redraw of this setting
    return X, y, r


def implicit_bias_callback(n: int = 40, margin: float = 0.5, move: float = 0.0,
                           loss: str = "logistic", optimizer: str = "gd", steps: int = 10_000,
                           seed: int = 3) -> tuple[Figure, dict]:
    """Run GD on the data and draw (left) the data, the SVM and GD's hyperplane over time,
    (right) the angle to the SVM direction and the margin gap vs t on log-log axes. Each
    setting's run is kept (`_run`), so returning to it only redraws."""
    X, y, r = _run(n, margin, move, loss, optimizer, int(steps), seed)
    fig, (ax, ag) = new_figure(2, width=4.3, height=3.8)
    lim = 1.1 * float(np.abs(X).max())
    ax.scatter(*X[y > 0].T, s=16, color=_COLORS[0], label="y = +1")
    ax.scatter(*X[y < 0].T, s=16, color=_COLORS[1], label="y = −1")
    ax.scatter(*X[r.svm.support].T, s=100, facecolors="none", edgecolors="k", label="support")
    if move > 0:
        ax.scatter(*X[0], marker="*", s=160, color=_COLORS[2], zorder=5, label="moved point")
    _separator(ax, r.svm.direction, lim, color="k", lw=1.6, label="SVM")
    for i, g in zip(np.unique([r.at(t) for t in (10, 100, 1000, 10_000, 100_000)]),
                    np.linspace(0.8, 0.3, 5)):
        _separator(ax, r.w[i], lim, color=str(g), lw=1, ls="--", label=f"t = {r.t[i]:,}")
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal",
           title=f"{optimizer}, {loss}: γ = {r.svm.margin:.3f}")
    ax.legend(fontsize=6, loc="lower right")
    ag.loglog(r.t, np.degrees(r.angle), color=_COLORS[0], label="angle to SVM (deg)")
    ag.loglog(r.t, np.maximum(r.svm.margin - r.margin, 1e-12), color=_COLORS[1],
              label="margin gap γ − margin(t)")
    numbers = {"svm_margin": r.svm.margin, "support_vectors": len(r.svm.support),
               "final_angle_deg": float(np.degrees(r.angle[-1])),
               "final_margin_gap": float(r.svm.margin - r.margin[-1]),
               "final_loss": float(r.loss[-1]), "lr": r.lr, "seconds": r.seconds}
    i = r.at(100)
    if i < len(r.t) - 1:  # a run that ends by t = 100 has no stretch for the reference to cover
        ref = np.degrees(r.angle[i]) * np.log(r.t[i]) / np.log(r.t[i:])
        ag.loglog(r.t[i:], ref, ":", color="k", label=f"∝ 1/log t from t = {r.t[i]:,}")
    ag.set(xlabel="iteration t", title="gaps vs t (log-log)")
    ag.legend(fontsize=7)
    plt.show()
    return fig, numbers


def implicit_bias_widget(steps: int = 10_000) -> Dashboard:
    """The dashboard: points, margin, a point moved onto the margin, loss, optimizer, steps,
    and the seed of the data."""
    controls = {
        "n": W.IntSlider(value=40, min=6, max=200, step=2, description="points"),
        "margin": W.FloatSlider(value=0.5, min=0.05, max=2.0, step=0.05, description="margin"),
        "move": W.FloatSlider(value=0.0, min=0.0, max=1.0, step=0.1,
                              description="move point 0 onto the margin"),
        "loss": W.Dropdown(options=list(M.LOSSES), value="logistic", description="loss"),
        "optimizer": W.Dropdown(options=list(M.OPTIMIZERS), value="gd", description="optimizer"),
        # the steps asked for are among the choices (a Dropdown refuses a value it does not list)
        "steps": W.Dropdown(options=sorted({1_000, 10_000, 100_000, steps}), value=steps,
                            description="steps"),
        "seed": W.IntSlider(value=3, min=0, max=9, description="data seed"),
    }
    return dashboard(implicit_bias_callback, controls,
                     title="Gradient descent on separable data → the max-margin direction")
