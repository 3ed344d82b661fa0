"""Implicit bias of gradient descent on separable data, and of deep linear conv nets.

Soudry, Hoffer, Nacson, Gunasekar, Srebro, "The implicit bias of gradient descent on
separable data" (ICLR 2018 / JMLR 2018, arXiv 1710.10345): on linearly separable data
{(x_n, y_n)}, y_n ∈ {−1, +1}, gradient descent on the logistic or exponential loss gives

    w(t) = ŵ·log t + ρ(t),   ρ(t) bounded,   ŵ = argmin ‖w‖ s.t. y_n x_nᵀw ≥ 1,

so ‖w(t)/‖w(t)‖ − ŵ/‖ŵ‖‖ = O(1/log t) while the loss falls like 1/t.

Gunasekar, Lee, Soudry, Srebro, "Implicit bias of gradient descent on linear convolutional
networks" (NeurIPS 2018, arXiv 1806.00468): the end-to-end predictor β of a depth-L
full-width circular convolutional linear net converges in direction to a stationary point
of min ‖DFT(β)‖_{2/L} s.t. y_n⟨x_n, β⟩ ≥ 1 (sparse in frequency), while fully connected
linear nets of any depth go to the ℓ2 hard-margin SVM.

Conventions: z_n = y_n x_n (rows of Z); losses are means over the n samples,
L(w) = (1/n) Σ_n ℓ(z_nᵀw); arrays are numpy float64.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, special

__all__ = [
    "MaxMargin", "NotSeparableError", "DivergenceError", "signed_labels", "hard_margin_svm",
    "max_margin_direction", "kkt_residuals", "multiclass_svm", "log_grid", "smoothness",
    "GDRecord", "gradient_descent", "gradient_descent_naive", "RateFit", "fit_rate",
    "theory_loss", "theory_residual", "gradient_descent_multiclass", "circulant",
    "conv_net_predictor", "conv_net_predictor_by_layers", "fc_net_predictor",
    "fourier_coefficients", "fourier_sparsity", "NetRecord", "train_linear_net",
    "bridge_solution", "angle_between", "FourierBias", "fourier_bias", "evaluate", "move_point",
    "lesson_settings",
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


def _binary_data(X, y) -> tuple[np.ndarray, np.ndarray]:
    """(X, y) -> (Z, y) with Z = y_n x_n as float64 rows."""
    X = np.asarray(X, dtype=np.float64)
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


# --------------------------------------------------------------------------- 1. max margin

@dataclass(frozen=True)
class MaxMargin:
    """The hard-margin SVM through the origin: ŵ = argmin ‖w‖ s.t. y_n x_nᵀw ≥ 1.

    w: ŵ itself (min_n y_n x_nᵀŵ = 1); direction: ŵ/‖ŵ‖; margin: γ = 1/‖ŵ‖, the distance of
    the closest point to the hyperplane; alpha: dual variables, ŵ = Σ_n α_n y_n x_n, α ≥ 0;
    support: indices n with α_n > 0 (the support vectors, on the margin).
    For the multi-class SVM, w and direction are (K, d) and alpha is indexed by (n, k).
    """

    w: np.ndarray
    direction: np.ndarray
    margin: float
    alpha: np.ndarray
    support: np.ndarray


def _least_distance(G: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """min ‖w‖ s.t. G w ≥ h, by Lawson & Hanson's least-distance programming (1974, ch. 23).

    Solve the NNLS problem min_{u ≥ 0} ‖E u − f‖, E = [Gᵀ; hᵀ], f = (0, …, 0, 1); with the
    residual r = E u − f, the solution is w = −r_{1:d}/r_{d+1} and the multipliers are
    λ = u/‖r‖² (w = Gᵀλ). ‖r‖ = 0 means the constraints are incompatible.
    Returns (w, λ); raises NotSeparableError when infeasible.
    """
    m, d = G.shape
    E = np.vstack([G.T, h[None, :]])
    f = np.zeros(d + 1)
    f[-1] = 1.0
    u, _ = optimize.nnls(E, f, maxiter=50 * (m + d + 1))
    r = E @ u - f
    rr = float(r @ r)
    if rr < 1e-12 or r[-1] >= 0:
        raise NotSeparableError("no w satisfies the constraints")
    w = -r[:d] / r[-1]
    if np.min(G @ w - h) < -1e-6 * max(1.0, float(np.max(np.abs(h)))):
        raise NotSeparableError("no w satisfies the constraints")
    return w, u / rr


def _support(alpha: np.ndarray) -> np.ndarray:
    return np.flatnonzero(alpha > 1e-9 * max(float(alpha.max(initial=0.0)), 1e-300))


def hard_margin_svm(X, y, method: str = "nnls") -> MaxMargin:
    """The hard-margin SVM through the origin, ŵ = argmin ‖w‖ s.t. y_n x_nᵀw ≥ 1.

    X: (n, d); y: (n,) labels in {−1, +1} or {0, 1}. method "nnls" solves the quadratic
    program exactly (active set, scipy.optimize.nnls); "sklearn" uses SVC(kernel="linear",
    C=1e8) on the data mirrored through the origin, {(x_n, y_n)} ∪ {(−x_n, −y_n)}, whose
    intercept is 0 by symmetry: an independent check of the first.
    Raises NotSeparableError (a ValueError) when no hyperplane through 0 separates the data.
    """
    Z, yy = _binary_data(X, y)
    n = len(Z)
    if method == "nnls":
        try:
            w, alpha = _least_distance(Z, np.ones(n))
        except NotSeparableError:
            raise NotSeparableError(
                f"the {n} points are not linearly separable by a hyperplane through the origin "
                "(no w with y_n x_nᵀw > 0 for all n), so the hard-margin SVM does not exist; "
                "remove overlapping points, use a larger margin, or a soft-margin SVM") from None
    elif method == "sklearn":
        from sklearn.svm import SVC
        Xn = np.asarray(X, dtype=np.float64).reshape(n, -1)
        svc = SVC(kernel="linear", C=1e8, tol=1e-8, max_iter=10**7)
        svc.fit(np.vstack([Xn, -Xn]), np.concatenate([yy, -yy]))
        w = svc.coef_.ravel().copy()
        if np.min(Z @ w) < 1 - 1e-3:
            raise NotSeparableError(f"the {n} points are not linearly separable through the "
                                    f"origin (SVC with C=1e8 leaves margin {np.min(Z @ w):.3g} < 1)")
        dual = np.zeros(2 * n)
        dual[svc.support_] = np.abs(svc.dual_coef_.ravel())
        alpha = dual[:n] + dual[n:]  # a point and its mirror image carry the same constraint
    else:
        raise ValueError(f"method must be 'nnls' or 'sklearn', got {method!r}")
    norm = float(np.linalg.norm(w))
    return MaxMargin(w=w, direction=w / norm, margin=1.0 / norm, alpha=alpha,
                     support=_support(alpha))


def max_margin_direction(X, y) -> np.ndarray:
    """Unit vector ŵ/‖ŵ‖ of the hard-margin SVM through the origin (labels ±1 or 0/1)."""
    return hard_margin_svm(X, y).direction


def kkt_residuals(X, y, svm: MaxMargin) -> dict[str, float]:
    """How far `svm` is from the KKT conditions of min ½‖w‖² s.t. y_n x_nᵀw ≥ 1.

    stationarity ‖ŵ − Σ α_n y_n x_n‖, primal violation max(0, 1 − min_n y_n x_nᵀŵ),
    dual violation max(0, −min α), complementary slackness max_n α_n |y_n x_nᵀŵ − 1|.
    All are 0 at the exact solution (and suffice for optimality: the problem is convex).
    """
    Z, _ = _binary_data(X, y)
    m = Z @ svm.w
    return {"stationarity": float(np.linalg.norm(svm.w - Z.T @ svm.alpha)),
            "primal": float(max(0.0, 1.0 - m.min())),
            "dual": float(max(0.0, -svm.alpha.min())),
            "slackness": float(np.max(svm.alpha * np.abs(m - 1.0)))}


def _multiclass_constraints(X, y) -> tuple[np.ndarray, np.ndarray, int]:
    """Rows of G with G vec(W) = (w_{y_n} − w_k)ᵀ x_n for every n and k ≠ y_n."""
    X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
    y = np.asarray(y).astype(int).reshape(-1)
    if len(X) != len(y):
        raise ValueError(f"X and y must have the same length, got {len(X)} and {len(y)}")
    if y.min() < 0:
        raise ValueError(f"multi-class labels must be 0..K-1, got {y.min()}")
    K, (n, d) = int(y.max()) + 1, X.shape
    rows, pairs = [], []
    for i in range(n):
        for k in range(K):
            if k != y[i]:
                g = np.zeros((K, d))
                g[y[i]], g[k] = X[i], -X[i]
                rows.append(g.ravel())
                pairs.append((i, k))
    return np.array(rows), np.array(pairs), K


def multiclass_svm(X, y) -> MaxMargin:
    """The multi-class hard-margin SVM (Crammer–Singer, no bias):

        Ŵ = argmin ‖W‖_F s.t. (w_{y_n} − w_k)ᵀ x_n ≥ 1 for all n, k ≠ y_n,

    the limit direction of gradient descent on the cross-entropy (Soudry et al., Sec. 4.2).
    y: (n,) ints in 0..K−1. Returns MaxMargin with w, direction of shape (K, d) and alpha of
    shape (n, K) (zero where k = y_n).
    """
    G, pairs, K = _multiclass_constraints(X, y)
    try:
        w, lam = _least_distance(G, np.ones(len(G)))
    except NotSeparableError:
        raise NotSeparableError("the classes are not linearly separable by a linear classifier "
                                "without bias (some x_n cannot get its class score highest)") from None
    n = len(np.asarray(y))
    alpha = np.zeros((n, K))
    alpha[pairs[:, 0], pairs[:, 1]] = lam
    W = w.reshape(K, -1)
    norm = float(np.linalg.norm(W))
    return MaxMargin(w=W, direction=W / norm, margin=1.0 / norm, alpha=alpha,
                     support=np.flatnonzero(alpha.sum(1) > 1e-9 * max(alpha.max(), 1e-300)))


# --------------------------------------------------------------------------- 2. GD runs

def log_grid(steps: int, per_decade: int = 20) -> np.ndarray:
    """Iteration numbers 1 … steps spaced evenly in log t (`per_decade` per factor 10)."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    num = int(math.ceil(per_decade * math.log10(steps))) + 1
    return np.unique(np.round(np.logspace(0, math.log10(steps), max(num, 2))).astype(np.int64))


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


def _check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")


def smoothness(X, y, loss: str = "logistic", w0: np.ndarray | None = None,
               optimizer: str = "gd") -> float:
    """β, a bound on the Hessian of the mean loss L(w) = (1/n) Σ ℓ(z_nᵀw), z_n = y_n x_n.

    logistic: ℓ'' ≤ 1/4, so β = σ_max(Z)²/(4n) (gd) or max_n ‖z_n‖²/4 (sgd: any mini-batch).
    exponential: not globally smooth, but GD with η < 2/β stays in {L ≤ L(w₀)}, where
    ∇²L = (1/n) Σ e^{−z_nᵀw} z_n z_nᵀ ⪯ L(w₀)·max_n ‖z_n‖² (the same bound for sgd).
    """
    _check_choice("loss", loss, LOSSES)
    _check_choice("optimizer", optimizer, OPTIMIZERS)
    Z, _ = _binary_data(X, y)
    n, d = Z.shape
    max_row = float(np.max(np.sum(Z * Z, axis=1)))
    if loss == "logistic":
        if optimizer == "sgd":
            return max_row / 4.0
        return float(np.linalg.norm(Z, 2)) ** 2 / (4.0 * n)
    w0 = np.zeros(d) if w0 is None else np.asarray(w0, dtype=np.float64)
    return float(_loss(Z @ w0, "exponential")) * max_row


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
        raise ValueError(f"lr={lr:.4g} is not below the stability limit {limit:.4g} "
                         f"(2/β with smoothness β={beta:.4g}); the theory needs η < 2/β. Use a "
                         "smaller lr, or check_lr=False to watch it diverge")
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
    _check_choice("loss", loss, LOSSES)
    _check_choice("optimizer", optimizer, OPTIMIZERS)
    Z, yy = _binary_data(X, y)
    n, d = Z.shape
    svm = hard_margin_svm(X, yy) if svm is None else svm
    times = log_grid(steps, record) if isinstance(record, int) else np.unique(np.asarray(record))
    if times[0] < 1 or times[-1] > steps:
        raise ValueError(f"record times must lie in 1..steps={steps}")
    if optimizer == "sgd" and not 1 <= batch_size <= n:
        raise ValueError(f"batch_size must be in 1..n={n}, got {batch_size}")
    if optimizer == "momentum" and not 0 <= momentum < 1:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")
    w = np.zeros(d) if w0 is None else np.array(w0, dtype=np.float64).reshape(d)
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
    _check_choice("loss", loss, LOSSES)
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
    _check_choice("law", law, ("1/log t", "1/t"))
    t = np.asarray(t, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    keep = t > 1
    if decades is not None:
        keep &= t >= t.max() / 10.0 ** decades
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
    X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
    y = np.asarray(y).astype(int).reshape(-1)
    svm = multiclass_svm(X, y) if svm is None else svm
    n, d = X.shape
    K = svm.w.shape[0]
    beta = float(np.linalg.norm(X, 2)) ** 2 / (2.0 * n)
    lr = 1.0 / beta if lr is None else lr
    _check_lr(lr, beta, "gd", 0.0)
    times = log_grid(steps, record) if isinstance(record, int) else np.unique(np.asarray(record))
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


# --------------------------------------------------------------------------- 4. linear nets

def circulant(w: np.ndarray) -> np.ndarray:
    """C(w) with C(w) h = w ∗ h, the circular convolution (w ∗ h)_i = Σ_k w_k h_{(i−k) mod d}."""
    w = np.asarray(w, dtype=np.float64)
    d = len(w)
    return w[(np.arange(d)[:, None] - np.arange(d)[None, :]) % d]


def conv_net_predictor_by_layers(filters: np.ndarray) -> np.ndarray:
    """β of f(x) = w_Lᵀ C(w_{L−1}) ⋯ C(w_1) x = ⟨x, β⟩, by multiplying the layer matrices:
    β = C(w_1)ᵀ ⋯ C(w_{L−1})ᵀ w_L. filters: (L, d), the first L − 1 are the conv layers."""
    filters = np.asarray(filters, dtype=np.float64)
    beta = filters[-1]
    for w in filters[-2::-1]:
        beta = circulant(w).T @ beta
    return beta


def _conv_factors(filters: np.ndarray) -> np.ndarray:
    """Fourier factors of β: conj(ŵ_l) for the conv layers, ŵ_L for the output layer (rfft)."""
    F = np.fft.rfft(filters, axis=1)
    F[:-1] = np.conj(F[:-1])
    return F


def conv_net_predictor(filters: np.ndarray) -> np.ndarray:
    """β of the depth-L full-width circular linear conv net, in Fourier: β̂ = ∏_l F_l with
    F_l = conj(ŵ_l) (l < L) and F_L = ŵ_L, so |β̂| = ∏_l |ŵ_l|. filters: (L, d)."""
    filters = np.asarray(filters, dtype=np.float64)
    return np.fft.irfft(np.prod(_conv_factors(filters), axis=0), n=filters.shape[1])


def _conv_grads(filters: np.ndarray, g: np.ndarray) -> np.ndarray:
    """∂⟨g, β⟩/∂w_l for every layer (L, d): irfft of Q̂_l conj(ĝ) for the conv layers and of
    conj(Q̂_L) ĝ for the output, with Q̂_l = ∏_{m≠l} F_m (prefix × suffix products)."""
    L, d = filters.shape
    F = _conv_factors(filters)
    ones = np.ones((1, F.shape[1]), dtype=complex)
    prefix = np.cumprod(np.vstack([ones, F[:-1]]), axis=0)
    suffix = np.cumprod(np.vstack([ones, F[:0:-1]]), axis=0)[::-1]
    Q = prefix * suffix
    G = np.fft.rfft(g)
    A = Q * np.conj(G)
    A[-1] = np.conj(Q[-1]) * G
    return np.fft.irfft(A, n=d, axis=1)


def fc_net_predictor(weights: Sequence[np.ndarray]) -> np.ndarray:
    """β of the fully connected linear net f(x) = w_Lᵀ W_{L−1} ⋯ W_1 x: β = W_1ᵀ ⋯ W_{L−1}ᵀ w_L."""
    beta = np.asarray(weights[-1], dtype=np.float64)
    for W in weights[-2::-1]:
        beta = W.T @ beta
    return beta


def _fc_grads(weights: list[np.ndarray], g: np.ndarray) -> list[np.ndarray]:
    """∂⟨g, β⟩/∂W_l = u_l (M_l g)ᵀ with M_l = W_{l−1} ⋯ W_1 and u_l = W_{l+1}ᵀ ⋯ w_L."""
    L = len(weights)
    Mg = [g]
    for W in weights[:-1]:
        Mg.append(W @ Mg[-1])
    grads: list[np.ndarray] = [None] * L  # type: ignore[list-item]
    grads[-1] = Mg[-1]
    u = weights[-1]
    for i in range(L - 2, -1, -1):
        grads[i] = np.outer(u, Mg[i])
        u = weights[i].T @ u
    return grads


def fourier_coefficients(beta: np.ndarray) -> np.ndarray:
    """The unitary DFT β̂_k = (1/√d) Σ_j β_j e^{−2πi jk/d} (complex, length d)."""
    return np.fft.fft(np.asarray(beta, dtype=np.float64), norm="ortho")


def fourier_sparsity(beta: np.ndarray) -> float:
    """Hoyer's sparsity of |β̂|: (√d − ‖β̂‖₁/‖β̂‖₂)/(√d − 1), 0 for a flat spectrum, 1 for a
    single frequency; independent of the scale of β."""
    a = np.abs(fourier_coefficients(beta))
    d = len(a)
    return float((math.sqrt(d) - a.sum() / np.linalg.norm(a)) / (math.sqrt(d) - 1))


@dataclass
class NetRecord:
    """A depth-L linear net trained by GD: predictors beta (K, d) at iterations t, the loss,
    the normalized margin min_n y_n x_nᵀβ/‖β‖ and the Fourier sparsity of β."""

    t: np.ndarray
    beta: np.ndarray
    loss: np.ndarray
    margin: np.ndarray
    sparsity: np.ndarray
    kind: str
    depth: int
    params: list = field(default_factory=list)

    @property
    def direction(self) -> np.ndarray:
        return self.beta[-1] / np.linalg.norm(self.beta[-1])


def train_linear_net(X, y, depth: int, kind: str = "conv", steps: int = 5000,
                     lr: float = 0.5, init_scale: float = 0.3, normalized: bool = True,
                     loss: str = "exponential", record: int | Sequence[int] = 10,
                     seed: int = 0) -> NetRecord:
    """Gradient descent on the layers of a depth-L linear net f(x) = ⟨x, β(θ)⟩ (no biases).

    kind "conv": L − 1 full-width circular conv layers and a linear output, θ = (w_1 … w_L)
    ∈ R^{L×d}; "fc": d×d matrices W_1 … W_{L−1} and w_L ∈ R^d. Init N(0, init_scale²).
    normalized: step η/(L(θ)·‖β‖^{2−2/L}) (normalized GD, Nacson et al. 2019: the same limit
    direction after far fewer steps; the ‖β‖ factor keeps the step stable as the degree-L
    homogeneous net grows); otherwise the fixed step η.
    """
    _check_choice("kind", kind, ("conv", "fc"))
    _check_choice("loss", loss, LOSSES)
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    Z, _ = _binary_data(X, y)
    n, d = Z.shape
    rng = np.random.default_rng(seed)
    if kind == "conv":
        params = [init_scale * rng.standard_normal((depth, d))]
        predictor = lambda p: conv_net_predictor(p[0])  # noqa: E731
        grads = lambda p, g: [_conv_grads(p[0], g)]  # noqa: E731
    else:
        params = [init_scale * rng.standard_normal((d, d)) for _ in range(depth - 1)]
        params.append(init_scale * rng.standard_normal(d))
        predictor, grads = fc_net_predictor, _fc_grads
    times = log_grid(steps, record) if isinstance(record, int) else np.unique(np.asarray(record))
    betas = np.empty((len(times), d))
    t = 0
    with np.errstate(over="ignore", invalid="ignore"):
        for k, stop in enumerate(times):
            for _ in range(int(stop) - t):
                beta = predictor(params)
                m = Z @ beta
                if normalized:  # ∇_β L / L with logs: e^{−m} underflows once the margin is large
                    log_w = _log_psi(m, loss) - _logsumexp(_log_loss(m, loss))
                    g = -(np.exp(log_w) @ Z) / max(1.0, float(beta @ beta)) ** (1 - 1 / depth)
                else:
                    g = -(_psi(m, loss) @ Z) / n  # ∇_β L
                for p, gp in zip(params, grads(params, g)):
                    p -= lr * gp
            t = int(stop)
            betas[k] = predictor(params)
            if not np.all(np.isfinite(betas[k])):
                raise DivergenceError(f"{kind} net of depth {depth} diverged by t={t}; lower lr")
    norm = np.linalg.norm(betas, axis=1)
    M = betas @ Z.T
    return NetRecord(t=times, beta=betas, loss=_loss(M, loss), margin=M.min(axis=1) / norm,
                     sparsity=np.array([fourier_sparsity(b) for b in betas]), kind=kind,
                     depth=depth, params=params)


def bridge_solution(X, y, depth: int, beta0: np.ndarray | None = None,
                    eps: Sequence[float] = (1e-6, 1e-8)) -> np.ndarray:
    """A stationary point of min ‖β̂‖_{2/L} s.t. y_n x_nᵀβ ≥ 1 (β̂ the unitary DFT).

    L = 1 is the hard-margin SVM (Parseval), L = 2 the ℓ1 norm of the spectrum (convex);
    L ≥ 3 is a non-convex quasi-norm, so the point found depends on the start `beta0`
    (default: the SVM solution; give GD's predictor to find the stationary point it approaches).
    Solved by SLSQP on the smoothed penalty Σ_k (|β̂_k|² + ε)^{1/L}, with ε decreased along
    `eps` (a large first ε smooths the landscape and can jump to another stationary point).
    Returns β scaled to margin 1: min_n y_n x_nᵀβ = 1.
    """
    Z, _ = _binary_data(X, y)
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    beta = hard_margin_svm(X, y).w if beta0 is None else np.asarray(beta0, dtype=np.float64)
    beta = beta / float(np.min(Z @ beta))  # feasible start
    if depth == 1:
        return hard_margin_svm(X, y).w
    p = 1.0 / depth
    cons = {"type": "ineq", "fun": lambda b: Z @ b - 1.0, "jac": lambda b: Z}
    for e in eps:
        def penalty(b, e=e):
            c = fourier_coefficients(b)
            a2 = np.abs(c) ** 2 + e
            grad = 2 * p * np.real(np.fft.ifft(a2 ** (p - 1) * c, norm="ortho"))
            return float(np.sum(a2 ** p)), grad
        res = optimize.minimize(penalty, beta, jac=True, method="SLSQP", constraints=[cons],
                                options={"maxiter": 2000, "ftol": 1e-12})
        beta = res.x
    return beta / float(np.min(Z @ beta))


@dataclass
class FourierBias:
    """Sparsity of the spectrum of GD's predictor vs depth, over several data sets (seeds).

    sparsity[(kind, L)]: Hoyer sparsity of |β̂| per seed for "conv", "fc" and "bridge" (the
    ℓ_{2/L} stationary point found from the conv net's predictor); angle_svm[(kind, L)] and
    angle_bridge[L]: angles in degrees between GD's predictor and the SVM / that point.
    """

    depths: tuple[int, ...]
    sparsity: dict
    angle_svm: dict
    angle_bridge: dict
    settings: dict

    def table(self) -> list[dict]:
        """One row per depth: mean sparsity of conv, fc and bridge, mean angles (degrees)."""
        return [{"depth": L,
                 "conv": float(np.mean(self.sparsity[("conv", L)])),
                 "fc": float(np.mean(self.sparsity[("fc", L)])),
                 "bridge": float(np.mean(self.sparsity[("bridge", L)])),
                 "conv_to_bridge_deg": float(np.mean(self.angle_bridge[L])),
                 "fc_to_svm_deg": float(np.mean(self.angle_svm[("fc", L)]))}
                for L in self.depths]


def fourier_bias(depths: Sequence[int] = (1, 2, 3), d: int = 16, n: int = 6,
                 seeds: Sequence[int] = range(5), steps: int = 2000, lr: float = 0.5,
                 init_scale: float = 0.3) -> FourierBias:
    """Train conv and fully connected linear nets of each depth on random data x_n ~ N(0, I_d),
    y_n = ±1 alternating (n < d: many separators), one data set per seed; measure the Fourier
    sparsity of the predictors (Gunasekar et al. 2018, Fig. 1 in spirit)."""
    sparsity: dict = {}
    angle_svm: dict = {}
    angle_bridge: dict = {}
    for seed in seeds:
        rng = np.random.default_rng(seed)
        X = rng.standard_normal((n, d))
        y = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
        svm = hard_margin_svm(X, y)
        for L in depths:
            for kind in ("conv", "fc"):
                beta = train_linear_net(X, y, L, kind, steps=steps, lr=lr, init_scale=init_scale,
                                        seed=seed).beta[-1]
                sparsity.setdefault((kind, L), []).append(fourier_sparsity(beta))
                angle_svm.setdefault((kind, L), []).append(
                    float(np.degrees(angle_between(beta, svm.w))))
                if kind == "conv":
                    bridge = bridge_solution(X, y, L, beta0=beta)
                    sparsity.setdefault(("bridge", L), []).append(fourier_sparsity(bridge))
                    angle_bridge.setdefault(L, []).append(
                        float(np.degrees(angle_between(beta, bridge))))
    return FourierBias(tuple(depths), sparsity, angle_svm, angle_bridge,
                       {"d": d, "n": n, "seeds": list(seeds), "steps": steps, "lr": lr,
                        "init_scale": init_scale})
