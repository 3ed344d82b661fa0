"""Dashboard of lesson 04 (train longer, generalize better).

    diffusion_callback(batch_size=1000, lr_scaling="sqrt", ghost_bn=True, regime_adaptation=False)
    diffusion_dashboard()            # the same, with controls, over the precomputed grid

The runs come from `python -m analysis experiment large-batch --grid` (every combination of
batch size, learning-rate scaling, Ghost BN and regime adaptation), committed as
analysis/results/large_batch_grid.json, so that moving a control costs no training.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np

from analysis.diffusion import default_grid_path, fit_log, grid_key, load_results
from analysis.plots import new_figure
from analysis.plots.diffusion import COLORS
from analysis.widgets import Dashboard, dashboard

__all__ = ["load_grid", "diffusion_callback", "diffusion_dashboard"]


def load_grid(path: str | Path | None = None) -> dict:
    """The precomputed grid of runs (default: the one shipped with the package)."""
    return load_results(path or default_grid_path())


def _lookup(grid: dict, key: str) -> tuple[dict, dict]:
    rows = {r["name"]: r for r in grid["rows"]}
    if key not in rows:
        raise ValueError(f"no precomputed run {key!r}; runs: {', '.join(rows)}")
    return rows[key], grid["records"][key]


def diffusion_callback(batch_size: int = 1000, lr_scaling: str = "none", ghost_bn: bool = False,
                       regime_adaptation: bool = False, *, grid: dict | None = None) -> tuple:
    """Diffusion curve and test error of one configuration next to the small-batch run.

    Left: ‖w_t − w_0‖ against updates (log axis) with the fitted a + b·log t; right: test
    error of both. Numbers: test_error, updates, final_distance, log-fit a, b, r2, gap (error
    minus the small batch's, in points of %).
    """
    grid = grid if grid is not None else load_grid()
    small = grid["settings"]["small"]
    if lr_scaling not in ("none", "sqrt"):
        raise ValueError(f"lr_scaling must be 'none' or 'sqrt', got {lr_scaling!r}")
    if batch_size == small:  # the recipes change nothing at B = B_small
        key = grid_key(small, None, False, False)
    else:
        key = grid_key(batch_size, None if lr_scaling == "none" else lr_scaling, ghost_bn, regime_adaptation)
    row, rec = _lookup(grid, key)
    ref_row, ref = _lookup(grid, grid_key(small, None, False, False))
    a, b, r2 = fit_log(rec["steps"], rec["distance"])

    fig, (ax_d, ax_e) = new_figure(2, width=4.4, height=3.3)
    ax_d.plot(ref["steps"], ref["distance"], color=COLORS[0], label=f"batch {small}")
    if key != ref_row["name"]:
        ax_d.plot(rec["steps"], rec["distance"], color=COLORS[1], label=f"batch {batch_size}")
    t = np.asarray(rec["steps"], dtype=float)
    ax_d.plot(t, a + b * np.log(t), "k--", lw=1, label=f"{a:.2f} + {b:.2f}·log t, R² {r2:.3f}")
    ax_d.set(xscale="log", xlabel="updates t", ylabel="‖w_t − w_0‖", title="weight diffusion")
    ax_d.legend(fontsize=7)
    runs = [ref_row] if key == ref_row["name"] else [ref_row, row]  # B_small: one run, one bar
    names = [f"batch {small}", key][:len(runs)]
    errors = [100 * r["test_error"] for r in runs]
    bars = ax_e.bar(names, errors, color=COLORS[:len(runs)])
    for bar, r in zip(bars, runs):
        ax_e.text(bar.get_x() + bar.get_width() / 2, bar.get_height(), f"{r['updates']} updates",
                  ha="center", va="bottom", fontsize=8)
    ax_e.set(ylabel="test error (%)", title="test error", ylim=(0, max(errors) * 1.3))
    ax_e.tick_params(axis="x", labelsize=7)
    plt.show()
    numbers = {"run": key, "test_error": row["test_error"], "updates": row["updates"],
               "final_distance": row["final_distance"], "a": a, "b": b, "r2": r2,
               "gap": 100 * (row["test_error"] - ref_row["test_error"])}
    return fig, numbers


def diffusion_dashboard(grid: dict | None = None) -> Dashboard:
    """Choose batch size, LR scaling, Ghost BN and regime adaptation; see diffusion and error."""
    grid = grid if grid is not None else load_grid()
    sizes = sorted({r["batch_size"] for r in grid["rows"]})
    controls = {
        "batch_size": W.Dropdown(options=sizes, value=sizes[-1], description="batch size"),
        "lr_scaling": W.Dropdown(options=["none", "sqrt"], value="none", description="LR scaling"),
        "ghost_bn": W.Checkbox(value=False, description="Ghost BN"),
        "regime_adaptation": W.Checkbox(value=False, description="regime adaptation"),
    }
    return dashboard(partial(diffusion_callback, grid=grid), controls,
                     title="Large batch: updates, weight diffusion and the generalization gap", columns=4)
