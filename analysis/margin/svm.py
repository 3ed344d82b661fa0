"""The max-margin reference: the hard-margin SVM through the origin,
ŵ = argmin ‖w‖ s.t. y_n x_nᵀw ≥ 1 (exact, by least-distance programming, or by sklearn as a
check), its KKT residuals, and the multi-class (Crammer–Singer) SVM without bias.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize

from analysis.margin.common import NotSeparableError, _binary_data, _finite

__all__ = ["MaxMargin", "hard_margin_svm", "max_margin_direction", "kkt_residuals", "multiclass_svm",
           "multiclass_labels"]


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
    Since ‖r‖² = 1/(1 + ‖w‖²), G is first divided by c = max|G_ij| (then w = w'/c, λ = λ'/c²):
    on data of small scale (‖w‖ ≥ 10⁶) ‖r‖ lost its digits and looked like 0.
    Returns (w, λ); raises NotSeparableError when infeasible.
    """
    m, d = G.shape
    c = float(np.max(np.abs(G))) or 1.0
    E = np.vstack([G.T / c, h[None, :]])
    f = np.zeros(d + 1)
    f[-1] = 1.0
    u, _ = optimize.nnls(E, f, maxiter=50 * (m + d + 1))
    r = E @ u - f
    rr = float(r @ r)
    if rr < 1e-12 or r[-1] >= 0:
        raise NotSeparableError("no w satisfies the constraints")
    w = -r[:d] / (r[-1] * c)
    if np.min(G @ w - h) < -1e-6 * max(1.0, float(np.max(np.abs(h)))):
        raise NotSeparableError("no w satisfies the constraints")
    return w, u / (rr * c * c)


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


def multiclass_labels(y) -> np.ndarray:
    """Class labels 0..K−1 (K ≥ 2) as an int array; a ValueError for anything else (the
    old `astype(int)` truncated 0.5 to 0 without a word)."""
    y = np.asarray(y).reshape(-1)
    if y.size == 0:
        raise ValueError("no labels")
    if not np.all(np.isfinite(y.astype(np.float64))) or np.any(y != np.round(y)):
        raise ValueError(f"multi-class labels must be integers 0..K-1, got values "
                         f"{np.unique(y)[:5].tolist()}")
    y = y.astype(int)
    if y.min() < 0:
        raise ValueError(f"multi-class labels must be 0..K-1, got {y.min()}")
    if y.max() < 1:
        raise ValueError("multi-class labels need at least two classes, got only class 0")
    return y


def _multiclass_constraints(X, y) -> tuple[np.ndarray, np.ndarray, int]:
    """Rows of G with G vec(W) = (w_{y_n} − w_k)ᵀ x_n for every n and k ≠ y_n."""
    X = _finite(X).reshape(len(X), -1)
    y = multiclass_labels(y)
    if len(X) != len(y):
        raise ValueError(f"X and y must have the same length, got {len(X)} and {len(y)}")
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
