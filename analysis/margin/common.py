"""What the implicit-bias modules share: the losses and optimizers they know, their errors,
the data checks (labels ±1, z_n = y_n x_n), the angle between directions, and the sizes of
lesson 05.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "LOSSES", "OPTIMIZERS", "NotSeparableError", "DivergenceError", "signed_labels",
    "angle_between", "SETTINGS", "lesson_settings",
]

LOSSES = ("logistic", "exponential")
OPTIMIZERS = ("gd", "sgd", "momentum")


class NotSeparableError(ValueError):
    """The data have no separating hyperplane through the origin."""


class DivergenceError(ValueError):
    """Gradient descent blew up (non-finite or exploding loss): the step size is too large."""


# --------------------------------------------------------------------------- data checks

def signed_labels(y) -> np.ndarray:
    """Labels {0, 1} or {−1, +1} (numpy or torch) -> float64 array of ±1."""
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    values = set(np.unique(y).tolist())
    if values <= {-1.0, 1.0}:
        return y
    if values <= {0.0, 1.0}:
        return 2.0 * y - 1.0
    raise ValueError(f"binary labels must be in {{0, 1}} or {{-1, +1}}, got values "
                     f"{sorted(values)[:5]}; for more classes use the multiclass functions")


def _finite(X) -> np.ndarray:
    """X as float64, or a ValueError naming X when it holds NaN or ±inf (which otherwise
    surface as scipy's "array must not contain infs or NaNs", or as a false divergence)."""
    X = np.asarray(X, dtype=np.float64)
    bad = X.size - int(np.count_nonzero(np.isfinite(X)))
    if bad:
        raise ValueError(f"X has {bad} NaN or infinite value(s) (first at index "
                         f"{tuple(int(i) for i in np.argwhere(~np.isfinite(X))[0])}); "
                         "remove or impute them")
    return X


def _binary_data(X, y) -> tuple[np.ndarray, np.ndarray]:
    """(X, y) -> (Z, y) with Z = y_n x_n as float64 rows."""
    X = _finite(X)
    if X.ndim != 2:
        X = X.reshape(len(X), -1)
    y = signed_labels(y)
    if len(X) != len(y) or len(X) == 0:
        raise ValueError(f"X and y must have the same non-zero length, got {len(X)} and {len(y)}")
    return y[:, None] * X, y


def angle_between(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Angle in radians between u and v (along the last axis; broadcasts)."""
    u, v = np.asarray(u, float), np.asarray(v, float)
    cos = np.sum(u * v, axis=-1) / (np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1))
    return np.arccos(np.clip(cos, -1.0, 1.0))


SETTINGS = {
    "fast": {"steps": 100_000, "multiclass_steps": 10_000, "fourier_seeds": 3,
             "fourier_steps": 1000},
    "normal": {"steps": 1_000_000, "multiclass_steps": 100_000, "fourier_seeds": 8,
               "fourier_steps": 4000},
}


def lesson_settings(fast: bool) -> dict:
    """Sizes of lesson 05 (GD iterations, multi-class iterations, Fourier-bias seeds and steps)."""
    return dict(SETTINGS["fast" if fast else "normal"])
