"""Where a training ends: its Hessian spectrum and its class (global minimum, sub-optimal
differentiable local minimum, saddle, kink, not converged), and a sub-optimal minimum built
by hand.

Within a differentiable region (fixed activation pattern a_nj = σ'(w_j·x_n)) f is linear in
v_j = z_j w_j, so a differentiable local minimum (DLM) solves a least squares problem with
the N × d1·d0 design matrix G_n = (a_nj x_n)_j: when rank G = N (which needs d1·d0 ≥ N) its
loss is zero (Soudry & Hoffer). Hessians: exact in closed form (checked against `torch.func`)
for small nets, Lanczos on Hessian-vector products for large ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from analysis.landscape.net import (
    DTYPE,
    _check_data,
    _check_params,
    _loss_terms,
    _sigma,
    _sigma_backward,
    _slope,
    flatten,
    forward,
    unflatten,
)

__all__ = [
    "LABELS",
    "Endpoints",
    "hessians",
    "hessian_reference",
    "hessian_extremes",
    "kink_margin",
    "pattern_rank",
    "classify",
    "needs_curvature",
    "v_shape_example",
]

LABELS = ("global", "suboptimal", "saddle", "kink", "not_converged")
"""Endpoint classes: global minimum (zero training error, or loss at the floor); sub-optimal
differentiable local minimum (small gradient, PSD Hessian, nonzero training error, no sample
at a kink); saddle (small gradient, a negative Hessian eigenvalue); kink (nonzero error,
stalled next to a non-differentiable point, where the gradient need not vanish); not
converged (everything else, diverged runs among them)."""


# --------------------------------------------------------------------------- endpoints

@dataclass
class Endpoints:
    """Endpoints of R trainings on one data set; tensors indexed by run first.

    W, z: final weights (R, d1, d0), (R, d1); W0, z0: initial weights; loss, error,
    grad_norm: (R,); steps: updates made (R,); reason: why each run stopped ("gradient",
    "floor", "plateau", "cap", or "diverged": weights not finite); pattern: activation pattern
    1[w_j·x_n > 0] (R, N, d1) bool;
    kink: min over n, j of |w_j·x_n| / (‖w_j‖‖x_n‖) (R,); rank: rank of the pattern's design
    matrix G (R,); lam_min, lam_max: extreme Hessian eigenvalues (R,) (NaN if not computed);
    label: one of LABELS per run.
    """

    W: Tensor
    z: Tensor
    W0: Tensor
    z0: Tensor
    loss: Tensor
    error: Tensor
    grad_norm: Tensor
    steps: Tensor
    reason: list[str]
    pattern: Tensor
    kink: Tensor
    rank: Tensor
    lam_min: Tensor
    lam_max: Tensor
    label: list[str]
    settings: dict = field(default_factory=dict)

    @property
    def runs(self) -> int:
        return self.W.shape[0]

    @property
    def params(self) -> int:
        """P = d1·(d0 + 1)."""
        return self.W.shape[1] * (self.W.shape[2] + 1)

    def fractions(self) -> dict[str, float]:
        """Fraction of runs in each class of LABELS."""
        return {k: self.label.count(k) / self.runs for k in LABELS}

    def summary(self) -> dict[str, float]:
        """One row of the sweep table: sizes, class fractions, training-error statistics."""
        N = self.pattern.shape[1]
        err = self.error.numpy()
        return {"N": N, "d0": self.W.shape[2], "d1": self.W.shape[1], "P": self.params,
                "P/N": self.params / N, "runs": self.runs,
                **{f"frac_{k}": v for k, v in self.fractions().items()},
                "frac_nonzero_error": float((err > 0).mean()),
                "mean_error": float(err.mean()), "median_loss": _median(self.loss),
                "mean_steps": float(self.steps.double().mean())}


def _median(x: Tensor) -> float:
    """The median of x (R,): the mean of the two middle values when R is even (torch.median
    gives the lower one), inf if one of them is; NaN if any value is NaN (a diverged run)."""
    v = x.double().flatten().sort().values
    if v.isnan().any():
        return math.nan
    a, b = float(v[(len(v) - 1) // 2]), float(v[len(v) // 2])
    return a if a == b else (a + b) / 2


def _check_weights(W: Tensor, X: Tensor) -> tuple[Tensor, Tensor]:
    """W (R, d1, d0) and X (N, d0) as float64, or a ValueError naming the shapes."""
    W, X = torch.as_tensor(W, dtype=DTYPE), torch.as_tensor(X, dtype=DTYPE)
    if X.ndim != 2 or W.ndim != 3 or W.shape[2] != X.shape[1]:
        raise ValueError(f"W must have shape (R, d1, d0) and X (N, d0) with the same d0, got "
                         f"{tuple(W.shape)} and {tuple(X.shape)}; for one net use W[None]")
    return W, X


def kink_margin(W: Tensor, X: Tensor) -> Tensor:
    """min_{n,j} |w_j·x_n| / (‖w_j‖‖x_n‖) per run (R,): 0 when some sample sits on a kink.
    Units with w_j = 0 count as at a kink."""
    W, X = _check_weights(W, X)
    U = torch.einsum("rjd,nd->rnj", W, X).abs()
    scale = W.norm(dim=2).unsqueeze(1) * X.norm(dim=1).view(1, -1, 1)
    rel = torch.where(scale > 0, U / scale.clamp_min(1e-300), torch.zeros_like(U))
    return rel.flatten(1).min(dim=1).values


def pattern_rank(W: Tensor, X: Tensor, slope: float = 0.1) -> Tensor:
    """rank of G_r = [a_nj x_n]_(n, (j, d)) (N × d1·d0) per run: rank N makes every DLM of
    that region global for the quadratic loss (Soudry & Hoffer)."""
    W, X = _check_weights(W, X)
    U = torch.einsum("rjd,nd->rnj", W, X)
    a = _sigma_backward(torch.ones_like(U), U, slope)
    G = (a.unsqueeze(-1) * X.view(1, X.shape[0], 1, -1)).flatten(2)
    return torch.linalg.matrix_rank(G)


def _single_loss(theta: Tensor, X: Tensor, y: Tensor, d0: int, width: int, slope: float,
                 loss: str) -> Tensor:
    W, z = unflatten(theta.unsqueeze(0), d0, width)
    return _loss_terms(forward(W, z, X, slope)[1], y, loss)[0][0]


def _loss_curvature(f: Tensor, y: Tensor, loss: str) -> Tensor:
    """d²L/df_n² (R, N)."""
    N = y.shape[-1]
    if loss == "quadratic":
        return torch.full_like(f, 1.0 / N)
    p = torch.sigmoid(-y * f)
    return p * (1 - p) / N


def hessians(W: Tensor, z: Tensor, X: Tensor, y: Tensor, activation: str = "leaky_relu",
             slope: float = 0.1, loss: str = "quadratic") -> Tensor:
    """Exact Hessians ∇²L(θ_r) (R, P, P) in the order of `flatten`, in closed form:

        ∇²L = Σ_n h_n ∇f_n ∇f_nᵀ + Σ_n g_n ∇²f_n,   g_n = ∂L/∂f_n, h_n = ∂²L/∂f_n²,

    with ∂f_n/∂w_j = z_j σ'(u_nj) x_n, ∂f_n/∂z_j = σ(u_nj), and, inside a differentiable
    region (σ'' = 0), the only nonzero second derivatives ∂²f_n/∂w_j∂z_j = σ'(u_nj) x_n.
    One batched product for all R runs; tests check it against `hessian_reference` (torch.func)
    and finite differences."""
    X, y = _check_data(X, y)
    W, z = _check_params(W, z, X.shape[1])
    s = _slope(activation, slope)
    R, d1, d0 = W.shape
    U = torch.matmul(W, X.T)  # (R, d1, N)
    A = _sigma(U, s)
    dA = _sigma_backward(torch.ones_like(U), U, s)
    f = (z.unsqueeze(1) @ A).squeeze(1)
    g = _loss_terms(f, y, loss)[1]
    h = _loss_curvature(f, y, loss)
    Jw = (z.unsqueeze(-1) * dA).transpose(1, 2).unsqueeze(-1) * X.view(1, -1, 1, d0)
    J = torch.cat([Jw.flatten(2), A.transpose(1, 2)], dim=2)  # (R, N, P)
    H = J.transpose(1, 2) @ (h.unsqueeze(-1) * J)
    C = (dA * g.unsqueeze(1)) @ X  # (R, d1, d0): Σ_n g_n σ'(u_nj) x_n
    k = d1 * d0
    for j in range(d1):
        H[:, j * d0:(j + 1) * d0, k + j] += C[:, j]
        H[:, k + j, j * d0:(j + 1) * d0] += C[:, j]
    return H


def hessian_reference(W: Tensor, z: Tensor, X: Tensor, y: Tensor,
                      activation: str = "leaky_relu", slope: float = 0.1,
                      loss: str = "quadratic") -> Tensor:
    """The same Hessians by automatic differentiation: vmap of jacrev(jacrev(L)).

    Reverse over reverse, like `_hessian_vector_product`: torch.func.hessian (forward over
    reverse) gives the same numbers but, on first use, loads torch's forward-mode
    decompositions, which warn that `torch.jit.script` is deprecated."""
    X, y = _check_data(X, y)
    W, z = _check_params(W, z, X.shape[1])
    s = _slope(activation, slope)
    d0, width = W.shape[2], W.shape[1]

    def one(theta: Tensor) -> Tensor:
        return _single_loss(theta, X, y, d0, width, s, loss)

    return torch.func.vmap(torch.func.jacrev(torch.func.jacrev(one)))(flatten(W, z).to(DTYPE))


def _hessian_vector_product(theta: Tensor, X: Tensor, y: Tensor, d0: int, width: int,
                            slope: float = 0.1, loss: str = "quadratic"):
    """v ↦ ∇²L(θ) v at one point θ (P,) in the order of `flatten`, for Lanczos.

    Reverse over reverse: the gradient is linearized once at θ (torch.func.vjp of grad), and
    since ∇²L is symmetric its vector-Jacobian product is the Hessian-vector product; each
    product then costs one backward pass (about 10x less than torch.func.jvp of grad, which
    also warns that `torch.jit.script` is deprecated on first use)."""
    grad = torch.func.grad(lambda t: _single_loss(t, X, y, d0, width, slope, loss))
    _, vjp = torch.func.vjp(grad, theta.to(DTYPE))

    def hvp(v: Tensor) -> Tensor:
        return vjp(v)[0]

    return hvp


def _lanczos_extremes(theta: Tensor, X: Tensor, y: Tensor, d0: int, width: int, slope: float,
                      loss: str, tol: float = 1e-8) -> tuple[float, float]:
    from scipy.sparse.linalg import LinearOperator, eigsh

    product = _hessian_vector_product(theta, X, y, d0, width, slope, loss)

    def hvp(v: np.ndarray) -> np.ndarray:
        return product(torch.as_tensor(np.asarray(v).reshape(-1), dtype=DTYPE)).numpy()

    P = theta.numel()
    op = LinearOperator((P, P), matvec=hvp, dtype=np.float64)
    v0 = np.ones(P) / math.sqrt(P)
    hi = eigsh(op, k=1, which="LA", tol=tol, v0=v0, return_eigenvectors=False)[0]
    # λ_min as λ_max − (the largest eigenvalue of λ_max·I − ∇²L, which is PSD): ARPACK's test
    # is relative to the Ritz value, and λ_min ≈ 0 (flat directions, e.g. w_j → c·w_j,
    # z_j → z_j/c at a critical point) never met it with which="SA" (ArpackNoConvergence)
    shifted = LinearOperator((P, P), matvec=lambda v: hi * np.asarray(v).reshape(-1) - hvp(v),
                             dtype=np.float64)
    gap = eigsh(shifted, k=1, which="LA", tol=tol, v0=v0, return_eigenvectors=False)[0]
    return float(hi - gap), float(hi)


def hessian_extremes(W: Tensor, z: Tensor, X: Tensor, y: Tensor, activation: str = "leaky_relu",
                     slope: float = 0.1, loss: str = "quadratic", exact_max: int = 600,
                     only: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """λ_min and λ_max of ∇²L per run (R,), (R,): exact eigenvalues when P ≤ exact_max,
    otherwise Lanczos (scipy eigsh on Hessian-vector products). only: a bool mask (R,) of
    the runs to compute, NaN for the others (default: all runs) and for diverged runs
    (non-finite weights or Hessian)."""
    X, y = _check_data(X, y)
    W, z = _check_params(W, z, X.shape[1])
    R, P = W.shape[0], W.shape[1] * (W.shape[2] + 1)
    only = torch.ones(R, dtype=torch.bool) if only is None else torch.as_tensor(only)
    if only.dtype != torch.bool or only.shape != (R,):  # run indices would pass as a mask
        raise ValueError(f"only must be a bool mask of shape ({R},) (one per run), got "
                         f"{only.dtype} of shape {tuple(only.shape)}")
    lam_min = torch.full((R,), math.nan, dtype=DTYPE)
    lam_max = lam_min.clone()
    if not only.any():
        return lam_min, lam_max
    if P <= exact_max:
        H = hessians(W, z, X, y, activation, slope, loss)  # all R: a subset rounds differently
        # a diverged run has no spectrum (NaN), and one non-finite matrix fails eigvalsh's batch
        diverged = ~H.isfinite().flatten(1).all(1)
        H[diverged] = 0.0
        only = only & ~diverged
        if not only.any():
            return lam_min, lam_max
        # eigvalsh, the costly part, from the first run asked for to the last only. MKL's
        # rounding depends on where a matrix lies in memory (its offset r·P²·8 bytes, modulo
        # 64), so the slice starts at a multiple of 8 runs: bit for bit eigvalsh(H)[only]
        asked = torch.nonzero(only).flatten()
        first, last = int(asked[0]) // 8 * 8, int(asked[-1]) + 1
        lam = torch.linalg.eigvalsh(H[first:last])[only[first:last]]
        lam_min[only], lam_max[only] = lam[:, 0], lam[:, -1]
        return lam_min, lam_max
    only = only & flatten(W, z).isfinite().all(1)  # a diverged run has no spectrum (NaN)
    if not only.any():
        return lam_min, lam_max
    s = _slope(activation, slope)
    theta = flatten(W, z).to(DTYPE)[only]
    pairs = [_lanczos_extremes(t, X, y, W.shape[2], W.shape[1], s, loss) for t in theta]
    lam = torch.tensor(pairs, dtype=DTYPE).reshape(-1, 2)
    lam_min[only], lam_max[only] = lam[:, 0], lam[:, 1]
    return lam_min, lam_max


def _check_lengths(**values: Tensor) -> None:
    """One value per run in each: zip would drop the runs past the shortest in silence."""
    shapes = {name: tuple(torch.as_tensor(v).shape) for name, v in values.items()}
    if len(set(shapes.values())) > 1 or any(len(s) != 1 for s in shapes.values()):
        raise ValueError("the measured quantities must all have shape (R,), got "
                         + ", ".join(f"{name} {s}" for name, s in shapes.items()))


def needs_curvature(error: Tensor, loss: Tensor, grad_norm: Tensor, kink: Tensor, *,
                    grad_tol: float = 1e-6, loss_floor: float = 1e-10,
                    kink_tol: float = 1e-6) -> Tensor:
    """The runs (R,) bool whose class depends on λ_min, λ_max: critical points
    (‖∇L‖ ≤ grad_tol) that are not global (nonzero training error, loss above loss_floor)
    and not at a kink (margin ≥ kink_tol). `classify` reads λ of these runs only."""
    _check_lengths(error=error, loss=loss, grad_norm=grad_norm, kink=kink)
    decided = (error == 0) | (loss <= loss_floor) | (kink < kink_tol)
    return ~decided & (grad_norm <= grad_tol)


def classify(error: Tensor, loss: Tensor, grad_norm: Tensor, kink: Tensor, lam_min: Tensor,
             lam_max: Tensor, *, grad_tol: float = 1e-6, loss_floor: float = 1e-10,
             kink_tol: float = 1e-6, stall_kink_tol: float = 1e-3,
             psd_tol: float = 1e-6) -> list[str]:
    """The class (one of LABELS) of each endpoint, from its measured quantities (all (R,)):

    not converged: a non-finite loss (the run diverged);
    global: zero training error, or loss ≤ loss_floor;
    otherwise, if ‖∇L‖ ≤ grad_tol: kink if some sample is within kink_tol of a kink
    (relative, see `kink_margin`), saddle if λ_min < −psd_tol·max(1, λ_max), else a
    sub-optimal differentiable local minimum;
    if ‖∇L‖ > grad_tol: kink if within stall_kink_tol of a kink (gradient descent stalls on
    the edge of a region, the gradient jumps there), else not converged.
    λ_min, λ_max are read only for the runs of `needs_curvature` (elsewhere they may be NaN;
    a NaN λ_min there, a spectrum not computed, gives not converged).
    """
    _check_lengths(error=error, loss=loss, grad_norm=grad_norm, kink=kink, lam_min=lam_min,
                   lam_max=lam_max)
    labels = []
    for e, L, g, k, lo, hi in zip(error.tolist(), loss.tolist(), grad_norm.tolist(),
                                  kink.tolist(), lam_min.tolist(), lam_max.tolist()):
        if not math.isfinite(L):  # diverged (NaN or infinite loss): no class but this one
            labels.append("not_converged")
        elif e == 0 or L <= loss_floor:
            labels.append("global")
        elif g <= grad_tol:
            if k < kink_tol:
                labels.append("kink")
            elif math.isnan(lo) or lo < -psd_tol * max(1.0, abs(hi)):
                labels.append("saddle" if not math.isnan(lo) else "not_converged")
            else:
                labels.append("suboptimal")
        else:
            labels.append("kink" if k < stall_kink_tol else "not_converged")
    return labels


# --------------------------------------------------------------------------- a bad minimum

def v_shape_example() -> dict[str, Tensor]:
    """A sub-optimal differentiable local minimum of a two-unit leaky-ReLU net, built by hand.

    Inputs x_n = (1, t_n), t = −1, 0, 1, labels +1, −1, +1 (a V). At w_1 = (1, ½),
    w_2 = (1, −½), z = (⅙, ⅙) both units are active on every sample, so nearby
    f_n = (z_1 w_1 + z_2 w_2)·x_n is linear in v = z_1 w_1 + z_2 w_2, and v = (⅓, 0) is the
    least-squares fit: every nearby point has a loss ≥ 4/9, f ≡ ⅓ and the middle sample is
    misclassified (for every slope ρ: no unit is inactive). The same net at w = (−½, ±1),
    z = (0.8/0.255)(1, 1) has, with the default ρ = 0.1 it is tuned to, zero training error
    and loss ≈ 0.08 (with ReLU, ρ = 0, its middle output is 0, an error). Returns X, y,
    W_bad, z_bad, W_good, z_good (run axis first)."""
    X = torch.tensor([[1.0, -1.0], [1.0, 0.0], [1.0, 1.0]], dtype=DTYPE)
    y = torch.tensor([1.0, -1.0, 1.0], dtype=DTYPE)
    return {"X": X, "y": y,
            "W_bad": torch.tensor([[[1.0, 0.5], [1.0, -0.5]]], dtype=DTYPE),
            "z_bad": torch.tensor([[1 / 6, 1 / 6]], dtype=DTYPE),
            "W_good": torch.tensor([[[-0.5, 1.0], [-0.5, -1.0]]], dtype=DTYPE),
            "z_good": torch.full((1, 2), 0.8 / 0.255, dtype=DTYPE)}
