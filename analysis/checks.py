"""The checks of arguments that every module shares: counts (steps, units, runs…) and choices,
and the argparse types of the command line's numbers and paths.

    width = check_count("width", width)            # 16 → 16; 2.5, True, 0, "16" → ValueError
    depth = check_count("depth", depth, minimum=0)
    check_choice("loss", loss, ("logistic", "exp"))  # anything else → ValueError naming both
    x = check_is_tensor("x", x)                    # a numpy array, a list → TypeError naming x

    p.add_argument("--runs", type=count_arg(), default=100)   # "0" → argument --runs: must be >= 1, got 0
    p.add_argument("--lr", type=positive_arg, default=None)   # "-0.1", "0", "nan", "inf" → refused
    p.add_argument("--out", type=out_folder_arg, default="runs")  # an existing file → refused
    p.add_argument("--json", type=json_path_arg, default=None)    # a file in an existing folder

A count is an integer (Python or numpy), never a bool (True is not one layer) and never a
float, not even 2.0: a fractional size is a mistake worth hearing about, not rounding.
The argparse types refuse a bad value while the command line is read, before any work, with
argparse's one line "error: argument --runs: must be >= 1, got 0" and exit status 2.
"""

from __future__ import annotations

import argparse
import math
import numbers
from collections.abc import Callable
from pathlib import Path

import torch

__all__ = ["check_count", "check_choice", "check_is_tensor", "count_arg", "positive_arg", "out_folder_arg",
           "json_path_arg"]


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


def check_is_tensor(name: str, value):
    """`value` when it is a torch.Tensor; else a TypeError that names it (a numpy array would
    fail deep inside torch, on a missing attribute)."""
    if not torch.is_tensor(value):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    return value


def count_arg(minimum: int = 1) -> Callable[[str], int]:
    """argparse type: an integer >= `minimum` (a size, a repeat count, a number of steps)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value
    return parse


def positive_arg(text: str) -> float:
    """argparse type: a finite number > 0 (a learning rate)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def out_folder_arg(text: str) -> str:
    """argparse type of --out: a folder, existing or to be made, not a file (nor inside one)."""
    path = Path(text)
    existing = next(q for q in (path, *path.parents) if q.exists())
    if not existing.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file, not a folder" if existing == path else
                                         f"{existing} is a file: no folder {text} can be made in it")
    return text


def json_path_arg(text: str) -> str:
    """argparse type of --json: a file in an existing folder, checked before the run, not after."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder; give a file name, "
                                         f"e.g. {path / 'results.json'}")
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"no folder {path.parent} to write {path.name} into")
    return text
