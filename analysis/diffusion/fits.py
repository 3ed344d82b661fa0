"""The laws d(t) may follow, fitted by least squares: a + b·log t, c·t^p, a + c·√t."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["fit_log", "fit_sqrt", "fit_power", "compare_fits", "predict"]


def _as_curve(t, d, t_min: float = 1, t_max: float = math.inf) -> tuple[np.ndarray, np.ndarray]:
    t, d = np.asarray(t, dtype=float), np.asarray(d, dtype=float)
    if t.shape != d.shape or t.ndim != 1:
        raise ValueError(f"t and d must be 1-D and of equal length, got shapes {t.shape} and {d.shape}")
    if not np.all(np.isfinite(t)):  # a NaN t would silently leave the window below
        raise ValueError("t must be finite, got NaN or infinity")
    keep = (t >= t_min) & (t <= t_max)
    t, d = t[keep], d[keep]
    if len(t) < 3:
        raise ValueError(f"need at least 3 points with {t_min} <= t <= {t_max} to fit, got {len(t)}")
    if np.any(t <= 0) or not np.all(np.isfinite(d)):
        raise ValueError("t must be positive and d finite")
    if np.all(t == t[0]):
        raise ValueError(f"t must take at least 2 distinct values to fit a law of t, got only t = {t[0]:g}")
    return t, d


def _r2(d: np.ndarray, pred: np.ndarray) -> float:
    ss_tot = float(np.sum((d - d.mean()) ** 2))
    return 1.0 - float(np.sum((d - pred) ** 2)) / ss_tot if ss_tot > 0 else float("nan")


def _linear_fit(x: np.ndarray, d: np.ndarray) -> tuple[float, float, float]:
    b, a = np.polyfit(x, d, 1)
    return float(a), float(b), _r2(d, a + b * x)


def fit_log(t: Sequence[float], d: Sequence[float], t_min: float = 1,
            t_max: float = math.inf) -> tuple[float, float, float]:
    """Least squares d ≈ a + b·log t (natural log) over points with t_min ≤ t ≤ t_max → (a, b, R²)."""
    t, d = _as_curve(t, d, t_min, t_max)
    return _linear_fit(np.log(t), d)


def fit_sqrt(t: Sequence[float], d: Sequence[float], t_min: float = 1,
             t_max: float = math.inf) -> tuple[float, float, float]:
    """Least squares d ≈ a + c·√t (a random walk on a flat landscape) → (a, c, R²)."""
    t, d = _as_curve(t, d, t_min, t_max)
    return _linear_fit(np.sqrt(t), d)


def fit_power(t: Sequence[float], d: Sequence[float], t_min: float = 1,
              t_max: float = math.inf) -> tuple[float, float, float]:
    """Least squares d ≈ c·t^p → (c, p, R²); R² is measured on d itself, like the other fits.

    p over a window [t_min, t_max] is the local growth exponent: ½ for a random walk, and
    shrinking with t for logarithmic growth.
    """
    from scipy.optimize import curve_fit

    t, d = _as_curve(t, d, t_min, t_max)
    if np.any(d <= 0):
        raise ValueError("fit_power needs d > 0")
    p0, logc0 = np.polyfit(np.log(t), np.log(d), 1)  # log-log start, then least squares on d
    try:
        (c, p), _ = curve_fit(lambda t, c, p: c * t ** p, t, d, p0=(math.exp(logc0), p0), maxfev=5000)
    except RuntimeError:
        c, p = math.exp(logc0), p0
    return float(c), float(p), _r2(d, c * t ** p)


FITS = {"log": fit_log, "power": fit_power, "sqrt": fit_sqrt}


def compare_fits(t: Sequence[float], d: Sequence[float], t_min: float = 1,
                 t_max: float = math.inf) -> dict:
    """The three laws on the same points: {"log": {...}, "power": {...}, "sqrt": {...}, "best": name}.

    log: a + b·log t;  power: c·t^p;  sqrt: a + c·√t. Each entry holds its parameters and R².
    """
    out: dict = {}
    for name, names, fn in [("log", ("a", "b"), fit_log), ("power", ("c", "p"), fit_power),
                            ("sqrt", ("a", "c"), fit_sqrt)]:
        x, y, r2 = fn(t, d, t_min, t_max)
        out[name] = {names[0]: x, names[1]: y, "r2": r2}
    out["best"] = max(FITS, key=lambda n: out[n]["r2"])
    t = np.asarray(t, dtype=float)
    out["points"] = int(np.sum((t >= t_min) & (t <= t_max)))
    return out


def predict(law: str, params: dict, t) -> np.ndarray:
    """The fitted curve of `law` ("log", "power" or "sqrt") with `params` from compare_fits at t."""
    t = np.asarray(t, dtype=float)
    if law == "log":
        return params["a"] + params["b"] * np.log(t)
    if law == "power":
        return params["c"] * t ** params["p"]
    if law == "sqrt":
        return params["a"] + params["c"] * np.sqrt(t)
    raise ValueError(f"unknown law {law!r}: use 'log', 'power' or 'sqrt'")


