"""The dashboard pattern of every lesson: one block of controls, one figure.

A widget is built by a function that returns an ipywidgets object. Its callback is a plain
function of the control values that draws a matplotlib figure, calls `plt.show()` and
returns `(figure, numbers)`; so tests call the callbacks directly, without a browser:

    def sign_callback(x: float = 0.5):
        fig, ax = new_figure(); ...; plt.show()
        return fig, {"value": ..., "gradient": ...}

    box = dashboard(sign_callback, {"x": FloatSlider(value=0.5, min=-2, max=2)})
    box.controls["x"].value = 1.5        # moves the slider, re-runs the callback
    fig, numbers = box.last_result

Per-topic dashboards live in `analysis/widgets/<topic>.py`.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

import ipywidgets as W
import matplotlib.pyplot as plt

__all__ = ["dashboard", "Dashboard", "check_start"]


class Dashboard(W.VBox):
    """Controls above an output area; every change re-runs the callback in the output. A
    status line between them says "computing…" while it runs, then how long it took."""

    def __init__(self, callback: Callable, controls: dict[str, W.ValueWidget],
                 title: str | None = None, columns: int = 3):
        self.callback, self.controls = callback, dict(controls)
        self.output = W.Output()
        self.status = W.HTML()  # "computing…" while the callback runs, then how long it took
        self.last_result: tuple | None = None
        for c in self.controls.values():
            c.style = {"description_width": "initial"}
            c.continuous_update = False  # redraw when the slider is released: stays responsive
        boxes = list(self.controls.values())
        rows = [W.HBox(boxes[i:i + columns]) for i in range(0, len(boxes), columns)]
        header = [W.HTML(f"<b>{title}</b>")] if title else []
        super().__init__(header + rows + [self.status, self.output])
        for c in self.controls.values():
            c.observe(self._on_change, names="value")
        self.update()

    def __repr__(self) -> str:  # what a saved notebook shows as text where widgets don't render
        callback = self.callback
        while isinstance(callback, functools.partial):  # data bound by keyword: name the function
            callback = callback.func
        return f"Dashboard({getattr(callback, '__name__', 'callback')}: {', '.join(self.controls)})"

    def values(self) -> dict:
        return {name: c.value for name, c in self.controls.items()}

    def update(self) -> tuple | None:
        """Run the callback with the current control values and show its figure; its result, or
        None (also in last_result) when it failed."""
        self.status.value = "<i>computing…</i>"
        start, ok = time.perf_counter(), False
        before, self.last_result = set(plt.get_fignums()), None
        try:
            with self.output:  # in a notebook the Output widget shows a callback's error itself
                self.output.clear_output(wait=True)
                self.last_result = self.callback(**self.values())
                ok = True
        finally:
            self.status.value = (f"<small>drawn in {time.perf_counter() - start:.2f} s</small>" if ok
                                 else "<i>the callback failed: its error is below</i>")
            # shown already, or half drawn by a failed callback (which the inline backend would
            # then draw outside the dashboard): pyplot keeps none of the callback's figures
            for number in set(plt.get_fignums()) - before:
                plt.close(number)
        return self.last_result

    def _on_change(self, _change) -> None:
        self.update()


def dashboard(callback: Callable, controls: dict[str, W.ValueWidget], title: str | None = None,
              columns: int = 3) -> Dashboard:
    """Build the dashboard of `callback` with `controls` (name → widget, names = callback's arguments)."""
    return Dashboard(callback, controls, title, columns)


def check_start(controls: dict[str, W.ValueWidget], **asked) -> dict[str, W.ValueWidget]:
    """`controls`, after checking that each slider starts at the value asked for (name=value).

    A slider clamps a starting value outside its range without a word, so the dashboard would
    draw a setting nobody asked for; this makes it a ValueError that names the range instead.
    """
    for name, value in asked.items():
        c = controls[name]
        if c.value != value:
            raise ValueError(f"{name}={value!r} is outside the slider's range {c.min}..{c.max}; "
                             f"call the callback itself for {name}={value!r}")
    return controls
