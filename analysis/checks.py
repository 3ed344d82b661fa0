"""The checks of arguments that every module shares: counts (steps, units, runs…) and choices.

    width = check_count("width", width)            # 16 → 16; 2.5, True, 0, "16" → ValueError
    depth = check_count("depth", depth, minimum=0)
    check_choice("loss", loss, ("logistic", "exp"))  # anything else → ValueError naming both

A count is an integer (Python or numpy), never a bool (True is not one layer) and never a
float, not even 2.0: a fractional size is a mistake worth hearing about, not rounding.
"""

from __future__ import annotations

import numbers

__all__ = ["check_count", "check_choice"]


def check_count(name: str, value, minimum: int = 1) -> int:
    """`value` as an int when it is an integer ≥ `minimum`; else a ValueError that names it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return int(value)


def check_choice(name: str, value, choices) -> None:
    """A ValueError that lists `choices` unless `value` is one of them."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
