"""Dashboard of lesson 02 (the XNOR kernel): a ±1 dot product as XOR and popcount.

    xnor_callback(a="+-++-+--", b="++-+--+-")   # -> (figure, numbers)
    xnor_dashboard()                             # two text boxes above the figure
"""

from __future__ import annotations

import ipywidgets as W
import matplotlib.pyplot as plt

from analysis.plots.xnor import xnor_dot_figure
from analysis.widgets import Dashboard, dashboard
from analysis.xnor import dot_by_xnor, parse_pm1

__all__ = ["xnor_callback", "xnor_dashboard"]

MAX_LENGTH = 32


def xnor_callback(a: str = "+-++-+--", b: str = "++-+--+-") -> tuple:
    """Bits of a and b, their XOR and popcount; numbers: K, popcount, K − 2·popcount (computed by
    `analysis.xnor.xnor_matmul` on the packed words) and the float dot product a·b."""
    va, vb = parse_pm1(a), parse_pm1(b)
    if len(va) != len(vb):
        raise ValueError(f"a has {len(va)} signs and b has {len(vb)}: give both the same length")
    if len(va) > MAX_LENGTH:
        raise ValueError(f"at most {MAX_LENGTH} signs fit the figure, got {len(va)}")
    steps = dot_by_xnor(va, vb)
    fig = xnor_dot_figure(va, vb, steps)
    plt.show()
    numbers = {"k": steps["k"], "popcount": steps["popcount"], "dot": steps["dot"],
               "dot_float": steps["dot_float"],
               "bits_a": "".join(map(str, steps["bits_a"])),
               "bits_b": "".join(map(str, steps["bits_b"])),
               "xor": "".join(map(str, steps["xor"]))}
    return fig, numbers


def xnor_dashboard(a: str = "+-++-+--", b: str = "++-+--+-") -> Dashboard:
    """Type two ±1 vectors ('+' and '-'): see their bits, the XOR, the popcount and a·b."""
    return dashboard(xnor_callback, {
        "a": W.Text(value=a, description="a (+/-)"),
        "b": W.Text(value=b, description="b (+/-)"),
    }, title="a ±1 dot product as XOR and popcount", columns=2)
