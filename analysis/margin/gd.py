"""Gradient descent on separable data and its approach to the max-margin direction
(Soudry, Hoffer, Nacson, Gunasekar, Srebro 2018): full-batch GD, SGD and heavy-ball runs
recorded on a log grid of iterations, the naive reference loop, the rate fits (1/log t for
the direction, 1/t for the loss), the asymptotic theory, and multi-class GD.
"""

from __future__ import annotations

import math
import numbers
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import special

from analysis.checks import check_choice, check_count
from analysis.margin.common import (
    LOSSES,
    OPTIMIZERS,
    DivergenceError,
    _binary_data,
    _finite,
    angle_between,
    signed_labels,
)
from analysis.margin.svm import MaxMargin, hard_margin_svm, multiclass_labels, multiclass_svm

__all__ = [
    "log_grid", "smoothness", "GDRecord", "gradient_descent", "gradient_descent_naive", "evaluate",
    "move_point", "RateFit", "fit_rate", "theory_loss", "theory_residual",
    "gradient_descent_multiclass",
]


# --------------------------------------------------------------------------- 2. GD runs

def log_grid(steps: int, per_decade: int = 20) -> np.ndarray:
    """Iteration numbers 1 … steps spaced evenly in log t (`per_decade` per factor 10)."""
    check_count("steps", steps)
    num = int(math.ceil(per_decade * math.log10(steps))) + 1
    return np.unique(np.round(np.logspace(0, math.log10(steps), max(num, 2))).astype(np.int64))


def record_times(steps: int, record: int | Sequence[int]) -> np.ndarray:
    """The iterations to record: `record` points per decade of a log grid, or the iterations
    themselves (each in 1 … steps)."""
    check_count("steps", steps)
    if isinstance(record, numbers.Integral) and not isinstance(record, bool) and record >= 1:
        return log_grid(steps, record)
    times = np.unique(np.asarray(record))
    if times.size == 0 or not np.issubdtype(times.dtype, np.integer) or times[0] < 1 or times[-1] > steps:
        raise ValueError(f"record must be points per decade (an int) or iterations in 1..steps={steps}, "
                         f"got {record!r}")
    return times


def _psi(m: np.ndarray, loss: str, out: np.ndarray | None = None) -> np.ndarray:
    """ψ(m) = −ℓ'(m): σ(−m) for the logistic loss, e^{−m} for the exponential loss."""
    if loss == "logistic":
        return special.expit(np.negative(m, out=out), out=out)
    return np.exp(np.negative(m, out=out), out=out)


def _loss(M: np.ndarray, loss: str) -> np.ndarray:
    """Mean loss over the last axis of the margins M: log(1 + e^{−m}) or e^{−m}."""
    with np.errstate(over="ignore"):
        return np.mean(np.logaddexp(0.0, -M) if loss == "logistic" else np.exp(-M), axis=-1)


def _log_psi(m: np.ndarray, loss: str) -> np.ndarray:
    """log ψ(m): −log(1 + e^{m}) or −m."""
    return -np.logaddexp(0.0, m) if loss == "logistic" else -m


def _log_loss(m: np.ndarray, loss: str) -> np.ndarray:
    """log ℓ(m) without underflow: log log(1 + e^{−m}) (≈ −m for m > 30) or −m."""
    if loss == "exponential":
        return -m
    with np.errstate(divide="ignore"):
        return np.where(m > 30, -m, np.log(np.logaddexp(0.0, -np.minimum(m, 30))))


def _logsumexp(a: np.ndarray) -> float:
    """log Σ e^{a} (scipy's version costs ~100 µs a call in array-API checks)."""
    top = float(a.max())
    return top + math.log(float(np.sum(np.exp(a - top))))


def _start(w0, d: int) -> np.ndarray:
    """w₀ as a float64 vector of length d (zeros when None); a ValueError naming w0 when its
    shape is wrong or it holds NaN/inf (numpy said "cannot reshape array of size 3 into
    shape (2,)", and a NaN start read as "lr must be > 0, got nan" or a divergence)."""
    if w0 is None:
        return np.zeros(d)
    w = np.array(w0, dtype=np.float64)
    if w.size != d:
        raise ValueError(f"w0 must be a vector of length d={d} (one weight per feature), got "
                         f"shape {w.shape}")
    if not np.all(np.isfinite(w)):
        raise ValueError("w0 has NaN or infinite values")
    return w.reshape(d)


def smoothness(X, y, loss: str = "logistic", w0: np.ndarray | None = None,
               optimizer: str = "gd") -> float:
    """β, a bound on the Hessian of the mean loss L(w) = (1/n) Σ ℓ(z_nᵀw), z_n = y_n x_n.

    logistic: ℓ'' ≤ 1/4, so β = σ_max(Z)²/(4n) (gd) or max_n ‖z_n‖²/4 (sgd: any mini-batch).
    exponential: not globally smooth, but GD with η < 2/β stays in {L ≤ L(w₀)}, where
    ∇²L = (1/n) Σ e^{−z_nᵀw} z_n z_nᵀ ⪯ L(w₀)·max_n ‖z_n‖² (the same bound for sgd).
    """
    check_choice("loss", loss, LOSSES)
    check_choice("optimizer", optimizer, OPTIMIZERS)
    Z, _ = _binary_data(X, y)
    n, d = Z.shape
    max_row = float(np.max(np.sum(Z * Z, axis=1)))
    if loss == "logistic":
        if optimizer == "sgd":
            return max_row / 4.0
        return float(np.linalg.norm(Z, 2)) ** 2 / (4.0 * n)
    w0 = _start(w0, d)
    m = Z @ w0
    beta = float(_loss(m, "exponential")) * max_row
    if not 0 < beta < math.inf:  # e^{−m} under- or overflows for margins beyond about ±709
        raise ValueError(
            f"the exponential loss at w0 is {'0' if beta == 0 else 'infinite'} in float64 "
            f"(margins y_n x_nᵀw0 from {m.min():.4g} to {m.max():.4g}), so the bound "
            "β = L(w0)·max_n ‖z_n‖² and the step limit 2/β cannot be computed; start from a "
            "smaller w0 (scale it down)")
    return beta


@dataclass
class GDRecord:
    """A gradient-descent run on separable data, recorded at the iterations `t` (log grid).

    Arrays of length K = len(t): loss L(w(t)); norm ‖w(t)‖; margin min_n y_n x_nᵀw/‖w‖;
    angle (radians) and distance ‖w/‖w‖ − ŵ/‖ŵ‖‖ to the SVM direction; residual
    ‖w(t) − ŵ·log t‖ (bounded by the theory); error, the training error rate. w: (K, d).
    """

    t: np.ndarray
    w: np.ndarray
    loss: np.ndarray
    norm: np.ndarray
    margin: np.ndarray
    angle: np.ndarray
    distance: np.ndarray
    residual: np.ndarray
    error: np.ndarray
    svm: MaxMargin
    loss_name: str
    optimizer: str
    lr: float
    beta: float
    seconds: float
    settings: dict = field(default_factory=dict)

    def at(self, t: int) -> int:
        """Index of the recorded iteration closest to t (in log t)."""
        return int(np.argmin(np.abs(np.log(self.t) - math.log(t))))

    def summary(self, times: Sequence[int] = (100, 10_000, 1_000_000)) -> dict:
        """Angle (degrees), distance and margin gap γ − margin(t) at the recorded times ≤ last."""
        out = {}
        for t in times:
            if t <= self.t[-1]:
                i = self.at(t)
                out[int(self.t[i])] = {"angle_deg": float(np.degrees(self.angle[i])),
                                       "distance": float(self.distance[i]),
                                       "margin_gap": float(self.svm.margin - self.margin[i])}
        return out


def _progress(total: int, progress: bool | None, desc: str):
    from tqdm.auto import tqdm
    disable = (not sys.stderr.isatty()) if progress is None else not progress
    return tqdm(total=total, desc=desc, disable=disable, unit="it", mininterval=0.5)


def _check_lr(lr: float, beta: float, optimizer: str, momentum: float) -> float:
    """The largest stable step: 2/β for (S)GD, 2(1 + μ)/β for heavy-ball momentum."""
    limit = 2.0 * (1.0 + momentum) / beta if optimizer == "momentum" else 2.0 / beta
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    if lr >= limit:
        rule = "2(1 + μ)/β" if optimizer == "momentum" else "2/β"
        raise ValueError(f"lr={lr:.4g} is not below the stability limit {limit:.4g} "
                         f"({rule} with smoothness β={beta:.4g}); the theory needs η < {rule}. Use "
                         "a smaller lr, or check_lr=False to watch it diverge")
    return limit


def gradient_descent(X, y, loss: str = "logistic", steps: int = 100_000, lr: float | None = None,
                     optimizer: str = "gd", momentum: float = 0.9, batch_size: int = 1,
                     record: int | Sequence[int] = 20, w0: np.ndarray | None = None,
                     seed: int = 0, check_lr: bool = True, svm: MaxMargin | None = None,
                     progress: bool | None = None) -> GDRecord:
    """Minimize L(w) = (1/n) Σ ℓ(y_n x_nᵀw) from w₀ (default 0) and record the approach to ŵ.

    loss: "logistic" ℓ(m) = log(1 + e^{−m}) or "exponential" ℓ(m) = e^{−m}.
    optimizer: "gd" w ← w − η∇L; "sgd" the same on mini-batches of `batch_size` drawn
    without replacement each epoch; "momentum" heavy ball v ← μv − η∇L, w ← w + v.
    lr: η; default 1/β ((1 − μ)/β for momentum), β from `smoothness`; η must be below 2/β
    (2(1 + μ)/β for momentum) unless check_lr=False. record: points per decade of the log
    grid, or the iterations themselves. Raises NotSeparableError for non-separable data,
    DivergenceError (a ValueError) if the loss becomes non-finite or explodes.
    """
    check_choice("loss", loss, LOSSES)
    check_choice("optimizer", optimizer, OPTIMIZERS)
    times = record_times(steps, record)
    Z, yy = _binary_data(X, y)
    n, d = Z.shape
    svm = hard_margin_svm(X, yy) if svm is None else svm
    if np.shape(svm.w) != (d,):
        raise ValueError(f"svm is not the SVM of these data: its ŵ has shape {np.shape(svm.w)}, the "
                         f"data have d={d} features; pass hard_margin_svm(X, y) or svm=None")
    if optimizer == "sgd" and not 1 <= batch_size <= n:
        raise ValueError(f"batch_size must be in 1..n={n}, got {batch_size}")
    if optimizer == "momentum" and not 0 <= momentum < 1:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")
    w = _start(w0, d)
    beta = smoothness(X, yy, loss, w, optimizer)
    if lr is None:
        lr = (1.0 - momentum) / beta if optimizer == "momentum" else 1.0 / beta
    if check_lr:
        _check_lr(lr, beta, optimizer, momentum)
    start_loss = float(_loss(Z @ w, loss))

    # q = −Zw and ψ(m) = ψ̃(q) (σ(q) or e^q), with η/n folded into the matrix: four numpy
    # calls per step, ~5 µs at n=100, d=50.
    Zneg, ZT_scaled = -Z, np.ascontiguousarray(Z.T) * (lr / n)
    psi = special.expit if loss == "logistic" else np.exp
    q, s, g = np.empty(n), np.empty(n), np.empty(d)
    v = np.zeros(d)
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    batch_starts = range(0, n - batch_size + 1, batch_size)

    def gd_step() -> None:  # w ← w + (η/n) Zᵀψ(Zw)
        np.dot(Zneg, w, out=q)
        psi(q, out=s)
        np.dot(ZT_scaled, s, out=g)
        np.add(w, g, out=w)

    def momentum_step() -> None:  # v ← μv + (η/n) Zᵀψ(Zw), w ← w + v
        np.dot(Zneg, w, out=q)
        psi(q, out=s)
        np.dot(ZT_scaled, s, out=g)
        np.multiply(v, momentum, out=v)
        np.add(v, g, out=v)
        np.add(w, v, out=w)

    sgd_state = {"k": len(batch_starts)}

    def sgd_step() -> None:
        nonlocal order
        if sgd_state["k"] == len(batch_starts):
            order, sgd_state["k"] = rng.permutation(n), 0
        idx = order[batch_starts[sgd_state["k"]]:batch_starts[sgd_state["k"]] + batch_size]
        sgd_state["k"] += 1
        zb = Z[idx]
        np.add(w, (lr / batch_size) * (_psi(zb @ w, loss) @ zb), out=w)

    step = {"gd": gd_step, "momentum": momentum_step, "sgd": sgd_step}[optimizer]
    snapshots = np.empty((len(times), d))
    t, t0 = 0, time.perf_counter()
    with np.errstate(over="ignore", invalid="ignore"), _progress(int(times[-1]), progress,
                                                                 f"{optimizer} {loss}") as bar:
        for k, stop in enumerate(times):
            for _ in range(int(stop) - t):
                step()
            bar.update(int(stop) - t)
            t = int(stop)
            snapshots[k] = w
            current = float(_loss(Z @ w, loss))
            if not (np.all(np.isfinite(w)) and np.isfinite(current)) or current > 1e3 * max(
                    start_loss, 1.0):
                raise DivergenceError(
                    f"{optimizer} on the {loss} loss diverged by t={t}: loss {current:.3g} "
                    f"(started at {start_loss:.3g}) with lr={lr:.4g} while 2/β={2 / beta:.4g}; "
                    "lower lr below 2/β")
    seconds = time.perf_counter() - t0
    return _make_record(Z, times, snapshots, svm, loss, optimizer, lr, beta, seconds,
                        {"n": n, "d": d, "momentum": momentum, "batch_size": batch_size,
                         "seed": seed, "steps": steps})


def _make_record(Z, times, W, svm, loss, optimizer, lr, beta, seconds, settings) -> GDRecord:
    """The record's curves from the snapshots W (K, d), all at once."""
    norm = np.linalg.norm(W, axis=1)
    safe = np.where(norm > 0, norm, 1.0)
    M = W @ Z.T  # (K, n) unnormalized margins z_nᵀw(t)
    direction = W / safe[:, None]
    return GDRecord(
        t=times, w=W, loss=_loss(M, loss), norm=norm, margin=M.min(axis=1) / safe,
        angle=angle_between(direction, svm.direction[None, :]),
        distance=np.linalg.norm(direction - svm.direction[None, :], axis=1),
        residual=np.linalg.norm(W - np.log(times)[:, None] * svm.w[None, :], axis=1),
        error=np.mean(M <= 0, axis=1), svm=svm, loss_name=loss, optimizer=optimizer,
        lr=float(lr), beta=float(beta), seconds=seconds, settings=settings)


def gradient_descent_naive(X, y, loss: str = "logistic", steps: int = 100,
                           lr: float = 0.1) -> np.ndarray:
    """The same full-batch GD as `gradient_descent`, written with Python loops over samples
    and coordinates (the reference it is tested and benchmarked against). Returns w(steps)."""
    check_choice("loss", loss, LOSSES)
    Z, _ = _binary_data(X, y)
    rows = Z.tolist()
    n, d = len(rows), len(rows[0])
    w = [0.0] * d
    for _ in range(steps):
        grad = [0.0] * d
        for z in rows:
            m = sum(zi * wi for zi, wi in zip(z, w))
            psi = 1.0 / (1.0 + math.exp(m)) if loss == "logistic" else math.exp(-m)
            for j in range(d):
                grad[j] += psi * z[j]
        w = [wj + lr / n * gj for wj, gj in zip(w, grad)]
    return np.array(w)


def evaluate(record: GDRecord, X, y) -> dict[str, np.ndarray]:
    """Loss and error rate of every recorded w(t) on other data (e.g. a test split):
    after zero training error the test loss can grow (‖w‖ ~ log t scales up the loss of the
    few misclassified points) while the test error keeps falling (the direction improves)."""
    Z, _ = _binary_data(X, y)
    if record.w.shape[1:] != (Z.shape[1],):
        raise ValueError(f"X has d={Z.shape[1]} features but the record's w(t) has shape "
                         f"{record.w.shape[1:]}: evaluate a binary run on data of its dimension")
    M = record.w @ Z.T
    return {"t": record.t, "loss": _loss(M, record.loss_name), "error": np.mean(M <= 0, axis=1)}


def move_point(X, y, index: int, amount: float, target: float = 0.5) -> np.ndarray:
    """A copy of X where point `index` slides along ŵ/‖ŵ‖ (the current SVM direction) so its
    margin goes from its own value (amount = 0) to `target`·γ (amount = 1): inside the old
    margin, so it becomes a support vector of the new SVM and turns ŵ."""
    X = np.array(X, dtype=np.float64)
    yy = signed_labels(y)
    if not 0 <= index < len(X):
        raise ValueError(f"index must be in 0..{len(X) - 1}, got {index}")
    if not 0 < target <= 1:
        raise ValueError(f"target must be in (0, 1], got {target}")
    svm = hard_margin_svm(X, yy)
    u = svm.direction
    a = yy[index] * X[index] @ u
    X[index] += yy[index] * amount * (target * svm.margin - a) * u
    return X


# --------------------------------------------------------------------------- 3. rates

@dataclass(frozen=True)
class RateFit:
    """A least-squares fit over t in [t_min, t_max].

    law "1/log t": value ≈ intercept + slope/log t (the direction gap; intercept ≈ 0).
    law "1/t": log value ≈ intercept + slope·log t (the loss; slope ≈ −1, C = e^intercept).
    r2: coefficient of determination of that linear fit.
    """

    law: str
    slope: float
    intercept: float
    r2: float
    t_min: float
    t_max: float

    def predict(self, t) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64)
        if self.law == "1/log t":
            return self.intercept + self.slope / np.log(t)
        return np.exp(self.intercept) * t ** self.slope


def fit_rate(t, values, law: str = "1/log t", decades: float | None = 4.0) -> RateFit:
    """Fit `values(t)` to the law over the last `decades` decades of t (None: all t > 1)."""
    check_choice("law", law, ("1/log t", "1/t"))
    t = np.asarray(t, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    if t.ndim != 1 or t.shape != values.shape:
        raise ValueError(f"t and values must be 1-D and of equal length, got shapes {t.shape} "
                         f"and {values.shape}")
    keep = t > 1
    if decades is not None:
        keep &= t >= t.max() / 10.0 ** decades
    if not np.all(np.isfinite(values[keep])):  # polyfit gave slope NaN, and r2 read 1.0
        bad = t[keep & ~np.isfinite(values)]
        raise ValueError(f"values has NaN or infinite entries in the fitted range (at t = "
                         f"{bad[:3].tolist()}); fit a run that did not diverge, or a range without them")
    if law == "1/log t":
        x, v = 1.0 / np.log(t[keep]), values[keep]
    else:
        keep &= values > 0
        x, v = np.log(t[keep]), np.log(values[keep])
    if len(x) < 3:
        raise ValueError(f"need at least 3 recorded points to fit, got {len(x)}; record more "
                         "points per decade or run longer")
    slope, intercept = np.polyfit(x, v, 1)
    pred = intercept + slope * x
    ss_tot = float(np.sum((v - v.mean()) ** 2))
    r2 = 1.0 - float(np.sum((v - pred) ** 2)) / ss_tot if ss_tot > 0 else 1.0
    return RateFit(law, float(slope), float(intercept), r2, float(t[keep].min()),
                   float(t[keep].max()))


def theory_loss(svm: MaxMargin, lr: float, t) -> np.ndarray:
    """The asymptotic loss of GD, L(w(t)) ≈ ‖ŵ‖²/(η t) = 1/(η γ² t).

    From w(t) = ŵ log t + w̃ with η e^{−z_nᵀw̃}/n = α_n on the support vectors (Soudry et al.,
    Theorem 3, for the mean loss): L ≈ Σ_n α_n/(η t) and Σ_n α_n = ‖ŵ‖².
    """
    return float(svm.w @ svm.w) / (lr * np.asarray(t, dtype=np.float64))


def theory_residual(X, y, svm: MaxMargin, lr: float) -> np.ndarray:
    """w̃, the limit of ρ(t) = w(t) − ŵ log t within the span of the support vectors:
    the least-norm solution of z_nᵀw̃ = log(η/(n α_n)) for every support vector n."""
    Z, _ = _binary_data(X, y)
    S = svm.support
    rhs = np.log(lr / (len(Z) * svm.alpha[S]))
    return np.linalg.lstsq(Z[S], rhs, rcond=None)[0]


def gradient_descent_multiclass(X, y, steps: int = 10_000, lr: float | None = None,
                                record: int | Sequence[int] = 20,
                                svm: MaxMargin | None = None) -> GDRecord:
    """Full-batch GD on the mean cross-entropy of scores W x_n (W: (K, d), no bias), from 0.

    The softmax Hessian is ⪯ ½I, so β = σ_max(X)²/(2n); lr defaults to 1/β and must be
    below 2/β. The record compares W(t)/‖W‖_F with the multi-class SVM direction; its
    margin is min_n min_{k≠y_n} (w_{y_n} − w_k)ᵀx_n/‖W‖_F and residual ‖W(t) − Ŵ log t‖.
    """
    X = _finite(X).reshape(len(X), -1)
    y = multiclass_labels(y)
    svm = multiclass_svm(X, y) if svm is None else svm
    n, d = X.shape
    if np.ndim(svm.w) != 2 or svm.w.shape[1] != d or svm.w.shape[0] <= y.max():
        raise ValueError(f"svm is not the multi-class SVM of these data: its Ŵ has shape "
                         f"{np.shape(svm.w)}, the data have {y.max() + 1} classes and d={d} features; "
                         "pass multiclass_svm(X, y) or svm=None")
    K = svm.w.shape[0]
    beta = float(np.linalg.norm(X, 2)) ** 2 / (2.0 * n)
    lr = 1.0 / beta if lr is None else lr
    _check_lr(lr, beta, "gd", 0.0)
    times = record_times(steps, record)
    onehot = np.eye(K)[y]
    W = np.zeros((K, d))
    snapshots = np.empty((len(times), K, d))
    t, t0 = 0, time.perf_counter()
    for k, stop in enumerate(times):
        for _ in range(int(stop) - t):
            P = special.softmax(X @ W.T, axis=1)
            W -= (lr / n) * ((P - onehot).T @ X)
        t = int(stop)
        snapshots[k] = W
    S = snapshots @ X.T  # (T, K, n) scores
    correct = np.take_along_axis(S, y[None, None, :], axis=1)[:, 0, :]
    others = np.where(onehot.T[None] > 0, np.inf, correct[:, None, :] - S).min(axis=1)
    norm = np.linalg.norm(snapshots.reshape(len(times), -1), axis=1)
    flat = snapshots.reshape(len(times), -1) / norm[:, None]
    target = svm.direction.ravel()
    loss = np.mean(special.logsumexp(S, axis=1) - correct, axis=1)
    return GDRecord(
        t=times, w=snapshots, loss=loss, norm=norm, margin=others.min(axis=1) / norm,
        angle=angle_between(flat, target[None]), distance=np.linalg.norm(flat - target, axis=1),
        residual=np.linalg.norm((snapshots - np.log(times)[:, None, None] * svm.w[None])
                                .reshape(len(times), -1), axis=1),
        error=np.mean(others <= 0, axis=1), svm=svm, loss_name="cross_entropy", optimizer="gd",
        lr=float(lr), beta=beta, seconds=time.perf_counter() - t0,
        settings={"n": n, "d": d, "classes": K, "steps": steps})
