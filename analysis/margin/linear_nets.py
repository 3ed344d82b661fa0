"""Deep linear nets (Gunasekar, Lee, Soudry, Srebro 2018): the end-to-end predictor β of
full-width circular conv nets and fully connected nets, their gradients, GD on the layers,
the Fourier coefficients and sparsity of β, the ℓ_{2/L} bridge solution, and the Fourier
bias experiment over depths and seeds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize

from analysis.checks import check_choice, check_count
from analysis.margin.common import LOSSES, DivergenceError, _binary_data, angle_between
from analysis.margin.gd import (
    _log_loss,
    _log_psi,
    _logsumexp,
    _loss,
    _psi,
    record_times,
)
from analysis.margin.svm import hard_margin_svm

__all__ = [
    "circulant", "conv_net_predictor", "conv_net_predictor_by_layers", "fc_net_predictor",
    "fourier_coefficients", "fourier_sparsity", "NetRecord", "train_linear_net",
    "bridge_solution", "FourierBias", "fourier_bias",
]


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
    if filters.ndim != 2:
        raise ValueError(f"filters must be (L, d), one row per layer, got shape {filters.shape}")
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
    single DFT coefficient (a constant β, or the alternating one); independent of the scale
    of β. A real β puts frequency k and d − k together: a pure cosine at 0 < k < d/2 has two
    coefficients, (√d − √2)/(√d − 1) (0.86 at d = 16)."""
    a = np.abs(fourier_coefficients(beta))
    d = len(a)
    if a.ndim != 1 or d < 2 or not np.all(np.isfinite(a)) or not a.any():
        raise ValueError(f"beta must be a finite, nonzero vector of length >= 2, got shape "
                         f"{np.shape(beta)}" + (" of zeros" if a.size and not a.any() else ""))
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
                     lr: float = 0.25, init_scale: float = 0.3, normalized: bool = True,
                     loss: str = "exponential", record: int | Sequence[int] = 10,
                     seed: int = 0) -> NetRecord:
    """Gradient descent on the layers of a depth-L linear net f(x) = ⟨x, β(θ)⟩ (no biases).

    kind "conv": L − 1 full-width circular conv layers and a linear output, θ = (w_1 … w_L)
    ∈ R^{L×d}; "fc": d×d matrices W_1 … W_{L−1} and w_L ∈ R^d. Init N(0, init_scale²).
    normalized: step η/(L(θ)·max(1, ‖β‖)^{2−2/L}) (normalized GD, Nacson et al. 2019: the same limit
    direction after far fewer steps; the ‖β‖ factor keeps the step stable as the degree-L
    homogeneous net grows); otherwise the fixed step η.

    DivergenceError (a ValueError) as soon as the loss exceeds 1000 times its start (or 1):
    at η = 0.5 deep nets often jump to losses of 10^4 to 10^34 in their first steps, and some
    never come back (d = 16, n = 6: 9 of 48 runs of depth ≤ 3; none at the default η = 0.25).
    """
    check_choice("kind", kind, ("conv", "fc"))
    check_choice("loss", loss, LOSSES)
    check_count("depth", depth)
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
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
    times = record_times(steps, record)
    betas = np.empty((len(times), d))
    log_start = _logsumexp(_log_loss(Z @ predictor(params), loss))  # log Σ_n ℓ(m_n) at t = 0
    log_limit = math.log(1e3) + max(log_start, math.log(n))  # mean loss 1000 x max(start, 1)
    t = 0
    with np.errstate(over="ignore", invalid="ignore"):
        for k, stop in enumerate(times):
            for step in range(t, int(stop)):
                beta = predictor(params)
                m = Z @ beta
                log_total = _logsumexp(_log_loss(m, loss))
                if not log_total <= log_limit:  # also NaN
                    raise DivergenceError(
                        f"{kind} net of depth {depth} diverged at t={step}: loss "
                        f"{math.exp(min(log_total, 700.0)) / n:.3g} (started at "
                        f"{math.exp(log_start) / n:.3g}) with lr={lr:g}; lower lr")
                if normalized:  # ∇_β L / L with logs: e^{−m} underflows once the margin is large
                    log_w = _log_psi(m, loss) - log_total
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
    A start that does not separate the data (min_n y_n x_nᵀβ0 ≤ 0, e.g. GD's predictor before
    zero training error) is used as it is, not rescaled; SLSQP moves it to the feasible set.
    Returns β scaled to margin 1: min_n y_n x_nᵀβ = 1; a ValueError when SLSQP ends without
    a feasible point (try another start, or beta0=None).
    """
    Z, _ = _binary_data(X, y)
    check_count("depth", depth)
    if depth == 1:
        return hard_margin_svm(X, y).w
    beta = hard_margin_svm(X, y).w if beta0 is None else np.asarray(beta0, dtype=np.float64)
    if beta.shape != (Z.shape[1],) or not np.all(np.isfinite(beta)) or not beta.any():
        got = (f"shape {beta.shape}" if beta.shape != (Z.shape[1],) else
               "zeros" if not beta.any() else "NaN or infinite values")
        raise ValueError(f"beta0 must be a finite, nonzero vector of length d={Z.shape[1]}, got {got}")
    m0 = float(np.min(Z @ beta))
    if m0 > 0:  # feasible start on the margin; dividing by m0 ≤ 0 would flip or blow up β0
        beta = beta / m0
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
    m = float(np.min(Z @ beta))
    if not (res.success and np.all(np.isfinite(beta)) and m > 0):
        raise ValueError(f"SLSQP found no feasible point from this start ({res.message}; "
                         f"min_n y_n x_nᵀβ = {m:.3g}): try another beta0, or beta0=None (the SVM)")
    return beta / m


def bridge_objective(X, y, beta: np.ndarray, depth: int) -> float:
    """‖β̂‖_{2/L}^{2/L} = Σ_k |β̂_k|^{2/L} of β scaled to margin 1 (min_n y_n x_nᵀβ = 1): the
    objective that `bridge_solution` minimizes, so two separators compare by it (L = 1: ‖β‖²,
    the SVM's). A ValueError for a β that does not separate the data."""
    Z, _ = _binary_data(X, y)
    check_count("depth", depth)
    beta = np.asarray(beta, dtype=np.float64)
    m = float(np.min(Z @ beta)) if beta.shape == (Z.shape[1],) else math.nan
    if not m > 0:
        raise ValueError(f"beta must be a vector of length d={Z.shape[1]} that separates the data, "
                         f"got shape {beta.shape}, min_n y_n x_nᵀβ = {m:.3g}")
    return float(np.sum(np.abs(fourier_coefficients(beta / m)) ** (2.0 / depth)))


@dataclass
class FourierBias:
    """Sparsity of the spectrum of GD's predictor vs depth, over several data sets (seeds).

    sparsity[(kind, L)]: Hoyer sparsity of |β̂| per seed for "conv", "fc" and "bridge" (the
    ℓ_{2/L} stationary point found from the conv net's predictor); angle_svm[(kind, L)] and
    angle_bridge[L]: angles in degrees between GD's predictor and the SVM / that point;
    excess[L]: how far the conv net's ℓ_{2/L} objective (`bridge_objective`) is above that
    point's, as a fraction: objective(GD) / objective(point) − 1.
    """

    depths: tuple[int, ...]
    sparsity: dict
    angle_svm: dict
    angle_bridge: dict
    settings: dict
    excess: dict = field(default_factory=dict)

    def table(self) -> list[dict]:
        """One row per depth: mean sparsity of conv, fc and bridge; the angle conv → point,
        median and largest over the data sets (degrees), and the median objective excess; the
        mean angle fc → SVM (degrees)."""
        return [{"depth": L,
                 "conv": float(np.mean(self.sparsity[("conv", L)])),
                 "fc": float(np.mean(self.sparsity[("fc", L)])),
                 "bridge": float(np.mean(self.sparsity[("bridge", L)])),
                 "conv_to_bridge_deg": float(np.median(self.angle_bridge[L])),
                 "conv_to_bridge_max_deg": float(np.max(self.angle_bridge[L])),
                 "excess": float(np.median(self.excess[L])) if self.excess.get(L) else math.nan,
                 "fc_to_svm_deg": float(np.mean(self.angle_svm[("fc", L)]))}
                for L in self.depths]


def fourier_bias(depths: Sequence[int] = (1, 2, 3), d: int = 16, n: int = 6,
                 seeds: Sequence[int] = range(5), steps: int = 2000, lr: float = 0.25,
                 init_scale: float = 0.3) -> FourierBias:
    """Train conv and fully connected linear nets of each depth on random data x_n ~ N(0, I_d),
    y_n = ±1 alternating (n < d: many separators), one data set per seed; measure the Fourier
    sparsity of the predictors (Gunasekar et al. 2018, Fig. 1 in spirit)."""
    sparsity: dict = {}
    angle_svm: dict = {}
    angle_bridge: dict = {}
    excess: dict = {}
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
                    try:
                        gap = bridge_objective(X, y, beta, L) / bridge_objective(X, y, bridge, L) - 1
                    except ValueError:  # GD's β does not separate: its objective is not defined
                        gap = math.inf
                    excess.setdefault(L, []).append(gap)
    return FourierBias(tuple(depths), sparsity, angle_svm, angle_bridge,
                       {"d": d, "n": n, "seeds": list(seeds), "steps": steps, "lr": lr,
                        "init_scale": init_scale}, excess)
