"""Dashboard of lesson 06 (local minima). The callback is a plain function of the control
values that trains a quick batch of networks and returns `(figure, numbers)`:

    minima_callback(n=32, d0=6, d1=4, activation="leaky_relu", data="random")

and `minima_dashboard()` builds the widget around it.
"""

from __future__ import annotations

import functools

import ipywidgets as W
import matplotlib.pyplot as plt

from analysis.checks import check_choice
from analysis.landscape import ACTIVATIONS, DATASETS, train_many
from analysis.landscape import make_data as _make_data
from analysis.plots.landscape import endpoint_summary
from analysis.widgets import Dashboard, check_start, dashboard

__all__ = ["minima_callback", "minima_dashboard"]


@functools.lru_cache(maxsize=16)
def _data(data: str, n: int, d0: int, seed: int):
    """The data set for one (data, N, d0), kept: moving d1 or the activation reuses it (for
    mnist5k it is a principal-component projection, tens of ms to seconds on a busy CPU)."""
    return _make_data(data, n, d0, seed)


@functools.lru_cache(maxsize=64)
def _endpoints(n: int, d0: int, d1: int, activation: str, data: str, runs: int, max_steps: int,
               seed: int):
    """The trained batch for one setting, kept: a slider moved back redraws at once."""
    X, y = _data(data, n, d0, seed)
    return train_many(X, y, d1, runs, activation=activation, max_steps=max_steps, seed=seed,
                      spectra="needed")  # the classes only: Hessians where they decide one


def minima_callback(n: int = 32, d0: int = 6, d1: int = 4, activation: str = "leaky_relu",
                    data: str = "random", runs: int = 40, max_steps: int = 3000,
                    seed: int = 0) -> tuple:
    """Train `runs` nets of width d1 on N = n samples of dimension d0 at once (each setting's
    batch is kept, so returning to it is instant); figure: the endpoint classes and the
    histogram of training errors; numbers: P/N, class fractions, fraction with nonzero
    error, mean training error."""
    e = _endpoints(n, d0, d1, activation, data, runs, max_steps, seed)
    fractions = e.fractions()
    numbers = {"P/N": e.params / n, **fractions,
               "nonzero_error": float((e.error > 0).double().mean()),
               "mean_error": float(e.error.mean())}
    title = (f"{data}, N={n}, d0={d0}, d1={d1}, {activation}: P/N = {numbers['P/N']:.2f}, "
             f"{100 * numbers['nonzero_error']:.0f}% of {runs} runs end with errors")
    fig = endpoint_summary(fractions, e.error.tolist(), title=title)
    plt.show()
    return fig, numbers


def minima_dashboard(n: int = 32, d0: int = 6, d1: int = 4, activation: str = "leaky_relu",
                     data: str = "random") -> Dashboard:
    """Choose N, d0, d1, the activation and the data; see how many of a quick batch of runs
    end at sub-optimal points, and their training errors."""
    check_choice("activation", activation, ACTIVATIONS)  # a Dropdown would raise a TraitError
    check_choice("data", data, DATASETS)
    controls = {
        "n": W.IntSlider(value=n, min=8, max=128, step=4, description="samples N"),
        "d0": W.IntSlider(value=d0, min=1, max=16, description="inputs d0"),
        "d1": W.IntSlider(value=d1, min=1, max=32, description="hidden units d1"),
        "activation": W.Dropdown(options=list(ACTIVATIONS), value=activation,
                                 description="activation"),
        "data": W.Dropdown(options=list(DATASETS), value=data, description="data"),
    }
    check_start(controls, n=n, d0=d0, d1=d1)
    return dashboard(minima_callback, controls,
                     title="Where do 40 trainings end? (one batched computation)")
