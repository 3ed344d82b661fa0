"""The random-walk picture of Hoffer et al. §3: a walk on a flat landscape spreads like √t,
one on a random potential (Sinai's walk) like (log t)², an "ultra-slow diffusion". The paper's
claim for the weights, ‖w_t − w_0‖ ~ log t, is the same kind of slowness, not this exponent."""

from __future__ import annotations

import numpy as np

from analysis.checks import check_count
from analysis.diffusion.record import record_points

__all__ = ["random_walk"]


def _environment(rng: np.random.Generator, walkers: int, steps: int) -> np.ndarray:
    """ξ = ±1 (int8) of the 2·steps + 1 sites each walker can reach, drawn a block of rows at a
    time (the same draws as one call; float64 in one call took 3 GB at 10⁶ steps)."""
    sites = 2 * steps + 1
    rows = max(1, 2**18 // sites)
    signs = np.array([-1, 1], dtype=np.int8)
    xi = np.empty((walkers, sites), dtype=np.int8)
    for i in range(0, walkers, rows):
        xi[i : i + rows] = rng.choice(signs, size=(min(rows, walkers - i), sites))
    return xi


def random_walk(steps: int, potential: str = "flat", walkers: int = 200, bias: float = 0.35,
                seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """RMS distance from the start of 1-D lattice walks, at log-spaced times → (t, d).

    potential="flat": each step ±1 with probability ½, d(t) = √t. potential="random": Sinai's
    walk in a random environment: at site x the walker steps right with probability
    ½ + bias·ξ_x, ξ_x = ±1 frozen at random; it gets trapped in ever deeper valleys of the
    random potential and d(t) grows like (log t)² (Sinai's law: the "ultra-slow diffusion" picture
    of Hoffer et al. §3, whose claim for the weights is ~ log t).
    """
    steps, walkers = check_count("steps", steps), check_count("walkers", walkers)
    if potential not in ("flat", "random"):
        raise ValueError(f"unknown potential {potential!r}: use 'flat' or 'random'")
    if not 0 <= bias < 0.5:
        raise ValueError(f"bias must be in [0, 0.5), got {bias}")
    rng = np.random.default_rng(seed)
    xi = np.zeros((walkers, 1), dtype=np.int8) if potential == "flat" else _environment(rng, walkers, steps)
    points = np.asarray(record_points(steps, "auto", per_decade=12))
    x = np.zeros(walkers, dtype=np.int64)
    rows = np.arange(walkers)
    d, k = [], 0
    for t in range(1, steps + 1):
        col = 0 if potential == "flat" else x + steps
        x += np.where(rng.random(walkers) < 0.5 + bias * xi[rows, col], 1, -1)
        if k < len(points) and t == points[k]:
            d.append(float(np.sqrt(np.mean(x.astype(float) ** 2))))
            k += 1
    return points.astype(float), np.asarray(d)


