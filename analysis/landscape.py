"""Local minima of one-hidden-layer networks: many trainings at once, Hessians, loss slices.

The network of Soudry & Carmon (2016, arXiv 1605.08361) and Soudry & Hoffer (arXiv
1702.05777): one hidden layer of d1 piecewise-linear units, a single output, no biases,

    f(x) = Σ_j z_j σ(w_j·x),   σ(u) = u for u > 0, ρ·u otherwise  (ρ = `slope`; ReLU: ρ = 0),

trained on N samples (x_n, y_n), x_n ∈ R^d0, y_n = ±1, with the quadratic loss
L = (1/2N) Σ_n (f(x_n) − y_n)² or the logistic loss L = (1/N) Σ_n log(1 + exp(−y_n f(x_n))).
The parameter count is P = d1·(d0 + 1).

Their result: with standard normal inputs, d0 = Ω̃(√N) and P = Ω̃(N), the volume of the
differentiable regions (fixed activation pattern a_nj = σ'(w_j·x_n)) that hold sub-optimal
differentiable local minima vanishes exponentially next to that of global minima. Within a
region f is linear in v_j = z_j w_j, so a differentiable local minimum (DLM) solves a least
squares problem with the N × d1·d0 design matrix G_n = (a_nj x_n)_j: when rank G = N (which
needs d1·d0 ≥ N) its loss is zero.

Here R networks are trained together as one batched computation (weights W of shape
(R, d1, d0), z of shape (R, d1)); each endpoint is classified as a global minimum, a
sub-optimal DLM, a saddle, a point at a kink, or not converged, with its Hessian spectrum
(exact through `torch.func` for small nets, Lanczos for large ones). Loss slices: 1-D
interpolation from an initialization to its endpoint, 2-D slices along filter-normalized
random directions (Li et al., "Visualizing the loss landscape of neural nets", NeurIPS 2018).
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "LABELS",
    "Endpoints",
    "make_data",
    "random_labels",
    "init_params",
    "forward",
    "loss_and_grad",
    "train_many",
    "flatten",
    "unflatten",
    "hessians",
    "hessian_reference",
    "hessian_extremes",
    "kink_margin",
    "pattern_rank",
    "classify",
    "interpolate_1d",
    "filter_normalized_direction",
    "slice_2d",
    "v_shape_example",
    "SETTINGS",
    "lesson_settings",
    "SWEEPS",
    "sweep",
    "markdown_table",
    "shipped_sweep",
    "experiment_cli",
]

LABELS = ("global", "suboptimal", "saddle", "kink", "not_converged")
"""Endpoint classes: global minimum (zero training error, or loss at the floor); sub-optimal
differentiable local minimum (small gradient, PSD Hessian, nonzero training error, no sample
at a kink); saddle (small gradient, a negative Hessian eigenvalue); kink (nonzero error,
stalled next to a non-differentiable point, where the gradient need not vanish); not
converged (everything else)."""

ACTIVATIONS = ("leaky_relu", "relu")
LOSSES = ("quadratic", "logistic")
OPTIMIZERS = ("adam", "gd")
DATASETS = ("random", "teacher", "mnist5k")
DTYPE = torch.float64


# --------------------------------------------------------------------------- data

def random_labels(n: int, d0: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """x_n ~ N(0, I_d0), y_n uniform in {−1, +1}, independent of x: (X (n, d0), y (n,)), float64."""
    _check_sizes(n=n, d0=d0)
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d0, generator=g, dtype=DTYPE)
    y = torch.randint(0, 2, (n,), generator=g).to(DTYPE) * 2 - 1
    return X, y


def make_data(name: str, n: int, d0: int, seed: int = 0, **options) -> tuple[Tensor, Tensor]:
    """A binary task with labels ±1 as float64 tensors (X (n, d0), y (n,)).

    "random": standard normal inputs, random labels (`random_labels`);
    "teacher": standard normal inputs labelled by a one-hidden-layer leaky-ReLU teacher
    (`analysis.data`'s "teacher", option hidden=4);
    "mnist5k": the first n training digits, labelled odd (+1) vs even (−1) (or option
    classes=(a, b): the first n digits of classes a (−1) and b (+1)), projected on their top-d0
    principal components and scaled to unit variance per component.
    """
    from analysis import data

    _check_sizes(n=n, d0=d0)
    if name == "random":
        return random_labels(n, d0, seed)
    if name == "teacher":
        hidden = int(options.get("hidden", 4))
        X, y = data.load("teacher", n=n, d=d0, hidden=hidden, activation="leaky_relu", seed=seed)
        return X.to(DTYPE), data.to_pm1(y).to(DTYPE)
    if name == "mnist5k":
        classes = options.get("classes", "parity")
        X, y = data.load("mnist5k", "train")
        if classes == "parity":  # odd digits +1, even −1: not linearly separable
            label = (y % 2).to(DTYPE) * 2 - 1
            X = X.flatten(1).to(DTYPE)
        else:
            a, b = classes
            keep = (y == a) | (y == b)
            X, label = X[keep].flatten(1).to(DTYPE), torch.where(y[keep] == a, -1.0, 1.0)
        if n > len(X):
            raise ValueError(f"mnist5k has only {len(X)} training digits for classes "
                             f"{classes}; asked for n={n}")
        X, label = X[:n], label[:n].to(DTYPE)
        Xc = X - X.mean(0)
        _, _, Vh = torch.linalg.svd(Xc, full_matrices=False)
        if d0 > Vh.shape[0]:
            raise ValueError(f"d0={d0} is more than the {Vh.shape[0]} components of {n} digits")
        Z = Xc @ Vh[:d0].T
        return Z / Z.std(0), label
    raise ValueError(f"data must be one of {', '.join(DATASETS)}, got {name!r}")


def _check_sizes(**sizes: int) -> None:
    for name, value in sizes.items():
        if isinstance(value, bool) or int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _check_data(X: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    X, y = torch.as_tensor(X, dtype=DTYPE), torch.as_tensor(y, dtype=DTYPE)
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"X must be a non-empty (N, d0) matrix, got shape {tuple(X.shape)}")
    if y.shape != (X.shape[0],):
        raise ValueError(f"y must have shape ({X.shape[0]},) to match X, got {tuple(y.shape)}")
    if not torch.all((y == 1) | (y == -1)):
        raise ValueError("labels y must be ±1 (use analysis.data.to_pm1 on {0, 1} labels)")
    return X, y


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")


# --------------------------------------------------------------------------- the network

def init_params(runs: int, d0: int, width: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """R initializations, run r drawn from its own generator seeded seed + r (so run r of a
    batch equals a single run with seed + r): w_j ~ N(0, I/d0), z_j ~ N(0, 1/d1).
    Returns W (R, d1, d0), z (R, d1), float64."""
    _check_sizes(runs=runs, d0=d0, width=width)
    W = torch.empty(runs, width, d0, dtype=DTYPE)
    z = torch.empty(runs, width, dtype=DTYPE)
    for r in range(runs):
        g = torch.Generator().manual_seed(seed + r)
        W[r] = torch.randn(width, d0, generator=g, dtype=DTYPE) / math.sqrt(d0)
        z[r] = torch.randn(width, generator=g, dtype=DTYPE) / math.sqrt(width)
    return W, z


def _slope(activation: str, slope: float) -> float:
    _check_choice("activation", activation, ACTIVATIONS)
    return 0.0 if activation == "relu" else float(slope)


def _sigma(U: Tensor, slope: float) -> Tensor:
    """σ(u) = u for u > 0, ρu otherwise (one fused kernel: torch.where is slow on CPU here)."""
    return torch.nn.functional.leaky_relu(U, slope)


def _sigma_backward(G: Tensor, U: Tensor, slope: float) -> Tensor:
    """G·σ'(U), σ'(u) = 1 for u > 0, ρ otherwise (σ'(0) = ρ), in one fused kernel."""
    return torch.ops.aten.leaky_relu_backward(G, U, slope, False)


def forward(W: Tensor, z: Tensor, X: Tensor, slope: float = 0.1) -> tuple[Tensor, Tensor]:
    """Pre-activations U_rnj = w_rj·x_n (R, N, d1) and outputs f_rn = Σ_j z_rj σ(U_rnj) (R, N)."""
    U = torch.matmul(W, X.T)  # (R, d1, N), contiguous: elementwise kernels are fast on it
    return U.transpose(1, 2), (z.unsqueeze(1) @ _sigma(U, slope)).squeeze(1)


def training_error(f: Tensor, y: Tensor) -> Tensor:
    """Fraction of samples with y_n f(x_n) ≤ 0, per run: (R, N) -> (R,)."""
    return (y * f <= 0).to(DTYPE).mean(-1)


def _loss_terms(f: Tensor, y: Tensor, loss: str) -> tuple[Tensor, Tensor]:
    """Per-run loss L_r (R,) and its derivative dL_r/df_rn (R, N)."""
    N = y.shape[-1]
    if loss == "quadratic":
        r = f - y
        return 0.5 * (r * r).mean(-1), r / N
    m = -y * f
    return torch.nn.functional.softplus(m).mean(-1), -y * torch.sigmoid(m) / N


def _grads(W: Tensor, z: Tensor, X: Tensor, y: Tensor, slope: float,
           loss: str) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Loss (R,), gradients (R, d1, d0), (R, d1) and outputs f (R, N)."""
    U = torch.matmul(W, X.T)  # (R, d1, N)
    A = _sigma(U, slope)
    f = (z.unsqueeze(1) @ A).squeeze(1)
    L, g = _loss_terms(f, y, loss)
    gz = (A * g.unsqueeze(1)).sum(-1)
    gU = _sigma_backward(z.unsqueeze(-1) * g.unsqueeze(1), U, slope)
    return L, gU @ X, gz, f


def loss_and_grad(W: Tensor, z: Tensor, X: Tensor, y: Tensor, slope: float = 0.1,
                  loss: str = "quadratic") -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Per-run loss (R,), training error (R,) and the exact gradients (R, d1, d0), (R, d1):

        ∂L/∂z_j = Σ_n g_n σ(w_j·x_n),   ∂L/∂w_j = Σ_n g_n z_j σ'(w_j·x_n) x_n,   g_n = ∂L/∂f_n.
    """
    L, gW, gz, f = _grads(W, z, X, y, slope, loss)
    return L, training_error(f, y), gW, gz


# --------------------------------------------------------------------------- endpoints

@dataclass
class Endpoints:
    """Endpoints of R trainings on one data set; tensors indexed by run first.

    W, z: final weights (R, d1, d0), (R, d1); W0, z0: initial weights; loss, error,
    grad_norm: (R,); steps: updates made (R,); reason: why each run stopped ("gradient",
    "floor", "plateau", "cap"); pattern: activation pattern 1[w_j·x_n > 0] (R, N, d1) bool;
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
                "mean_error": float(err.mean()), "median_loss": float(self.loss.median()),
                "mean_steps": float(self.steps.double().mean())}


def flatten(W: Tensor, z: Tensor) -> Tensor:
    """θ = (vec W, z): (R, P) from W (R, d1, d0) and z (R, d1)."""
    return torch.cat([W.flatten(1), z], dim=1)


def unflatten(theta: Tensor, d0: int, width: int) -> tuple[Tensor, Tensor]:
    """Inverse of `flatten`: θ (R, P) -> W (R, d1, d0), z (R, d1)."""
    k = width * d0
    return theta[:, :k].reshape(-1, width, d0), theta[:, k:]


def kink_margin(W: Tensor, X: Tensor) -> Tensor:
    """min_{n,j} |w_j·x_n| / (‖w_j‖‖x_n‖) per run (R,): 0 when some sample sits on a kink.
    Units with w_j = 0 count as at a kink."""
    U = torch.einsum("rjd,nd->rnj", W, X).abs()
    scale = W.norm(dim=2).unsqueeze(1) * X.norm(dim=1).view(1, -1, 1)
    rel = torch.where(scale > 0, U / scale.clamp_min(1e-300), torch.zeros_like(U))
    return rel.flatten(1).min(dim=1).values


def pattern_rank(W: Tensor, X: Tensor, slope: float = 0.1) -> Tensor:
    """rank of G_r = [a_nj x_n]_(n, (j, d)) (N × d1·d0) per run: rank N makes every DLM of
    that region global for the quadratic loss (Soudry & Hoffer)."""
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
    One batched product for all R runs; tests check it against torch.func.hessian and
    finite differences. `hessian_reference` is the torch.func version."""
    X, y = _check_data(X, y)
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
    """The same Hessians by automatic differentiation (torch.func: vmap of hessian)."""
    X, y = _check_data(X, y)
    s = _slope(activation, slope)
    d0, width = W.shape[2], W.shape[1]

    def one(theta: Tensor) -> Tensor:
        return _single_loss(theta, X, y, d0, width, s, loss)

    return torch.func.vmap(torch.func.hessian(one))(flatten(W, z).to(DTYPE))


def _lanczos_extremes(theta: Tensor, X: Tensor, y: Tensor, d0: int, width: int, slope: float,
                      loss: str, tol: float = 1e-8) -> tuple[float, float]:
    from scipy.sparse.linalg import LinearOperator, eigsh

    grad = torch.func.grad(lambda t: _single_loss(t, X, y, d0, width, slope, loss))

    def hvp(v: np.ndarray) -> np.ndarray:
        t = torch.as_tensor(np.asarray(v).reshape(-1), dtype=DTYPE)
        return torch.func.jvp(grad, (theta,), (t,))[1].numpy()

    P = theta.numel()
    op = LinearOperator((P, P), matvec=hvp, dtype=np.float64)
    v0 = np.ones(P) / math.sqrt(P)
    lo = eigsh(op, k=1, which="SA", tol=tol, v0=v0, return_eigenvectors=False)[0]
    hi = eigsh(op, k=1, which="LA", tol=tol, v0=v0, return_eigenvectors=False)[0]
    return float(lo), float(hi)


def hessian_extremes(W: Tensor, z: Tensor, X: Tensor, y: Tensor, activation: str = "leaky_relu",
                     slope: float = 0.1, loss: str = "quadratic",
                     exact_max: int = 600) -> tuple[Tensor, Tensor]:
    """λ_min and λ_max of ∇²L per run (R,), (R,): exact eigenvalues when P ≤ exact_max,
    otherwise Lanczos (scipy eigsh on Hessian-vector products)."""
    X, y = _check_data(X, y)
    P = W.shape[1] * (W.shape[2] + 1)
    if P <= exact_max:
        lam = torch.linalg.eigvalsh(hessians(W, z, X, y, activation, slope, loss))
        return lam[:, 0], lam[:, -1]
    s = _slope(activation, slope)
    theta = flatten(W, z).to(DTYPE)
    pairs = [_lanczos_extremes(t, X, y, W.shape[2], W.shape[1], s, loss) for t in theta]
    lam = torch.tensor(pairs, dtype=DTYPE).reshape(-1, 2)
    return lam[:, 0], lam[:, 1]


def classify(error: Tensor, loss: Tensor, grad_norm: Tensor, kink: Tensor, lam_min: Tensor,
             lam_max: Tensor, *, grad_tol: float = 1e-6, loss_floor: float = 1e-10,
             kink_tol: float = 1e-6, stall_kink_tol: float = 1e-3,
             psd_tol: float = 1e-6) -> list[str]:
    """The class (one of LABELS) of each endpoint, from its measured quantities (all (R,)):

    global: zero training error, or loss ≤ loss_floor;
    otherwise, if ‖∇L‖ ≤ grad_tol: kink if some sample is within kink_tol of a kink
    (relative, see `kink_margin`), saddle if λ_min < −psd_tol·max(1, λ_max), else a
    sub-optimal differentiable local minimum;
    if ‖∇L‖ > grad_tol: kink if within stall_kink_tol of a kink (gradient descent stalls on
    the edge of a region, the gradient jumps there), else not converged.
    """
    labels = []
    for e, L, g, k, lo, hi in zip(error.tolist(), loss.tolist(), grad_norm.tolist(),
                                  kink.tolist(), lam_min.tolist(), lam_max.tolist()):
        if e == 0 or L <= loss_floor:
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


# --------------------------------------------------------------------------- training

def train_many(X: Tensor, y: Tensor, width: int, runs: int, *, activation: str = "leaky_relu",
               slope: float = 0.1, loss: str = "quadratic", optimizer: str = "adam",
               lr: float | None = None, max_steps: int = 20000, grad_tol: float = 1e-6,
               loss_floor: float = 1e-10, window: int = 250, plateau_tol: float = 1e-3,
               lr_decay: float = 0.3, min_lr: float | None = None, seed: int = 0,
               init: tuple[Tensor, Tensor] | None = None, classify_endpoints: bool = True,
               hessian_max: int = 600, threads: int | None = 1,
               progress: bool = False) -> Endpoints:
    """Train R one-hidden-layer nets f = Σ_j z_j σ(w_j·x) from R initializations on (X, y),
    as one batched full-batch computation, and classify their endpoints.

    X: (N, d0) inputs; y: (N,) labels ±1; width: d1 ≥ 1; runs: R ≥ 1.
    optimizer "adam" (default lr 0.01) or "gd" (default lr 0.5), each run with its own
    learning rate, multiplied by lr_decay when its loss fell by less than a fraction
    plateau_tol over `window` steps. A run stops (and is frozen) when ‖∇L‖ ≤ grad_tol
    ("gradient"), L ≤ loss_floor ("floor"), its learning rate fell below min_lr (default
    lr·1e-4; "plateau"), or after max_steps updates ("cap"). Runs never interact, so run r
    equals a single training with seed + r (or with init (W0[r:r+1], z0[r:r+1])).
    threads: torch intra-op threads while training and classifying (default 1: these tensors are small and
    thread hand-offs cost more than they save, badly so on a busy machine; None: unchanged).
    """
    X, y = _check_data(X, y)
    _check_sizes(width=width, runs=runs, max_steps=max_steps, window=window)
    _check_choice("loss", loss, LOSSES)
    _check_choice("optimizer", optimizer, OPTIMIZERS)
    s = _slope(activation, slope)
    lr = float(lr if lr is not None else (0.01 if optimizer == "adam" else 0.5))
    if lr <= 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    min_lr = lr * 1e-4 if min_lr is None else float(min_lr)
    N, d0 = X.shape
    if init is None:
        W0, z0 = init_params(runs, d0, width, seed)
    else:
        W0, z0 = (torch.as_tensor(t, dtype=DTYPE) for t in init)
        if W0.shape != (runs, width, d0) or z0.shape != (runs, width):
            raise ValueError(f"init must be W (runs, width, d0) = {(runs, width, d0)} and "
                             f"z (runs, width); got {tuple(W0.shape)} and {tuple(z0.shape)}")

    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        W, z, steps, reason = _optimize(W0.clone(), z0.clone(), X, y, s, loss, optimizer, lr,
                                        max_steps, grad_tol, loss_floor, window, plateau_tol,
                                        lr_decay, min_lr, progress)
        L, error, gW, gz = loss_and_grad(W, z, X, y, s, loss)
        grad_norm = torch.sqrt(gW.pow(2).sum((1, 2)) + gz.pow(2).sum(1))
        kink = kink_margin(W, X)
        nan = torch.full((runs,), math.nan, dtype=DTYPE)
        lam_min, lam_max, labels = nan.clone(), nan.clone(), ["not_converged"] * runs
        if classify_endpoints:
            lam_min, lam_max = hessian_extremes(W, z, X, y, activation, slope, loss,
                                                hessian_max)
            labels = classify(error, L, grad_norm, kink, lam_min, lam_max, grad_tol=grad_tol,
                              loss_floor=loss_floor)
        rank = pattern_rank(W, X, s)
    finally:
        torch.set_num_threads(before)
    settings = dict(activation=activation, slope=s, loss=loss, optimizer=optimizer, lr=lr,
                    max_steps=max_steps, grad_tol=grad_tol, loss_floor=loss_floor, seed=seed)
    pattern = torch.einsum("rjd,nd->rnj", W, X) > 0
    return Endpoints(W, z, W0, z0, L, error, grad_norm, steps, reason, pattern, kink, rank,
                     lam_min, lam_max, labels, settings)


def _optimize(W: Tensor, z: Tensor, X: Tensor, y: Tensor, slope: float, loss: str,
              optimizer: str, lr: float, max_steps: int, grad_tol: float, loss_floor: float,
              window: int, plateau_tol: float, lr_decay: float, min_lr: float,
              progress: bool) -> tuple[Tensor, Tensor, Tensor, list[str]]:
    """Batched full-batch descent on θ = (vec W, z) (R, P). Only the runs still going are
    computed: a run that stops is written back and dropped from the working set at once, so
    every active run has made the same number of updates (one Adam step count t for all)."""
    from tqdm.auto import tqdm

    R, d1, d0 = W.shape
    k = d1 * d0
    final = flatten(W, z)
    steps = torch.zeros(R, dtype=torch.long)
    reason = ["cap"] * R
    ids = torch.arange(R)
    theta = final.clone()
    rate = torch.full((R,), lr, dtype=DTYPE)
    ref = torch.full((R,), math.inf, dtype=DTYPE)  # loss at the start of the window
    m, v = torch.zeros_like(theta), torch.zeros_like(theta)
    b1, b2, eps = 0.9, 0.999, 1e-12
    bar = tqdm(total=max_steps, disable=not progress, desc=f"{R} runs", leave=False)
    for t in range(1, max_steps + 1):
        L, gW, gz, _ = _grads(theta[:, :k].view(-1, d1, d0), theta[:, k:], X, y, slope, loss)
        grad = torch.cat([gW.flatten(1), gz], dim=1)
        gnorm = grad.norm(dim=1)
        done_grad, done_floor = gnorm <= grad_tol, L <= loss_floor
        stop = done_grad | done_floor
        if t % window == 0:
            rate = torch.where(L > ref * (1 - plateau_tol), rate * lr_decay, rate)
            ref = L
            stop = stop | (rate < min_lr)
        elif t == 1:
            ref = L
        if stop.any():
            for j in torch.nonzero(stop).flatten().tolist():
                reason[int(ids[j])] = ("floor" if done_floor[j] else "gradient" if done_grad[j]
                                       else "plateau")
            final[ids[stop]] = theta[stop]
            keep = ~stop
            ids, theta, grad, rate, ref, m, v = (a[keep] for a in (ids, theta, grad, rate, ref,
                                                                   m, v))
            if len(ids) == 0:
                break
        steps[ids] += 1
        if optimizer == "adam":
            m.mul_(b1).add_(grad, alpha=1 - b1)
            v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
            denom = (v / (1 - b2 ** t)).sqrt_().add_(eps)
            update = (m / denom).mul_(rate.view(-1, 1) / (1 - b1 ** t))
        else:
            update = grad.mul_(rate.view(-1, 1))
        theta = theta - update
        bar.update(1)
    bar.close()
    final[ids] = theta
    W, z = unflatten(final, d0, d1)
    return W.contiguous(), z.contiguous(), steps, reason


# --------------------------------------------------------------------------- loss slices

def _losses_at(W: Tensor, z: Tensor, X: Tensor, y: Tensor, slope: float, loss: str,
               chunk: int = 4096) -> tuple[Tensor, Tensor]:
    """Loss and training error of a batch of parameter sets (R, d1, d0), (R, d1), in chunks."""
    Ls, errs = [], []
    for i in range(0, W.shape[0], chunk):
        f = forward(W[i:i + chunk], z[i:i + chunk], X, slope)[1]
        Ls.append(_loss_terms(f, y, loss)[0])
        errs.append(training_error(f, y))
    return torch.cat(Ls), torch.cat(errs)


def interpolate_1d(X: Tensor, y: Tensor, start: tuple[Tensor, Tensor], end: tuple[Tensor, Tensor],
                   alphas: Tensor | None = None, activation: str = "leaky_relu",
                   slope: float = 0.1, loss: str = "quadratic") -> dict[str, Tensor]:
    """L((1 − α)θ_0 + αθ_1) along the segment from `start` = (W0 (d1, d0), z0 (d1,)) to
    `end` = (W1, z1); default α from −0.25 to 1.25 in 121 steps. Returns alpha, loss, error."""
    X, y = _check_data(X, y)
    s = _slope(activation, slope)
    a = torch.linspace(-0.25, 1.25, 121, dtype=DTYPE) if alphas is None else \
        torch.as_tensor(alphas, dtype=DTYPE)
    (W0, z0), (W1, z1) = ((torch.as_tensor(t, dtype=DTYPE) for t in p) for p in (start, end))
    W = (1 - a).view(-1, 1, 1) * W0 + a.view(-1, 1, 1) * W1
    z = (1 - a).view(-1, 1) * z0 + a.view(-1, 1) * z1
    L, err = _losses_at(W, z, X, y, s, loss)
    return {"alpha": a, "loss": L, "error": err}


def filter_normalized_direction(W: Tensor, z: Tensor, seed: int = 0) -> tuple[Tensor, Tensor]:
    """A Gaussian direction (dW (d1, d0), dz (d1,)) with each filter rescaled to the norm of the
    same filter of θ (Li et al. 2018): ‖dw_j‖ = ‖w_j‖ for every hidden unit j and ‖dz‖ = ‖z‖
    for the output unit."""
    g = torch.Generator().manual_seed(seed)
    dW = torch.randn(W.shape, generator=g, dtype=DTYPE)
    dz = torch.randn(z.shape, generator=g, dtype=DTYPE)
    dW = dW * (W.norm(dim=-1, keepdim=True) / dW.norm(dim=-1, keepdim=True))
    dz = dz * (z.norm() / dz.norm())
    return dW, dz


def slice_2d(X: Tensor, y: Tensor, W: Tensor, z: Tensor, span: float = 1.0, points: int = 41,
             seed: int = 0, activation: str = "leaky_relu", slope: float = 0.1,
             loss: str = "quadratic") -> dict[str, Tensor]:
    """L(θ + α δ + β η) on a points × points grid of (α, β) ∈ [−span, span]², δ, η two
    filter-normalized random directions (seeds seed, seed + 1) around θ = (W (d1, d0), z (d1,)).
    Returns alpha (points,), beta (points,), loss and error grids (points, points) [β, α]."""
    X, y = _check_data(X, y)
    _check_sizes(points=points)
    s = _slope(activation, slope)
    W, z = torch.as_tensor(W, dtype=DTYPE), torch.as_tensor(z, dtype=DTYPE)
    (dW1, dz1), (dW2, dz2) = (filter_normalized_direction(W, z, seed + i) for i in (0, 1))
    a = torch.linspace(-span, span, points, dtype=DTYPE)
    B, A = torch.meshgrid(a, a, indexing="ij")
    A, B = A.reshape(-1), B.reshape(-1)
    Wg = W + A.view(-1, 1, 1) * dW1 + B.view(-1, 1, 1) * dW2
    zg = z + A.view(-1, 1) * dz1 + B.view(-1, 1) * dz2
    L, err = _losses_at(Wg, zg, X, y, s, loss)
    return {"alpha": a, "beta": a, "loss": L.view(points, points),
            "error": err.view(points, points)}


# --------------------------------------------------------------------------- a bad minimum

def v_shape_example() -> dict[str, Tensor]:
    """A sub-optimal differentiable local minimum of a two-unit leaky-ReLU net, built by hand.

    Inputs x_n = (1, t_n), t = −1, 0, 1, labels +1, −1, +1 (a V). At w_1 = (1, ½),
    w_2 = (1, −½), z = (⅙, ⅙) both units are active on every sample, so nearby
    f_n = (z_1 w_1 + z_2 w_2)·x_n is linear in v = z_1 w_1 + z_2 w_2, and v = (⅓, 0) is the
    least-squares fit: every nearby point has a loss ≥ 4/9, f ≡ ⅓ and the middle sample is
    misclassified. The same net at w = (−½, ±1), z = (0.8/0.255)(1, 1) has zero training
    error and loss ≈ 0.08. Returns X, y, W_bad, z_bad, W_good, z_good (run axis first)."""
    X = torch.tensor([[1.0, -1.0], [1.0, 0.0], [1.0, 1.0]], dtype=DTYPE)
    y = torch.tensor([1.0, -1.0, 1.0], dtype=DTYPE)
    return {"X": X, "y": y,
            "W_bad": torch.tensor([[[1.0, 0.5], [1.0, -0.5]]], dtype=DTYPE),
            "z_bad": torch.tensor([[1 / 6, 1 / 6]], dtype=DTYPE),
            "W_good": torch.tensor([[[-0.5, 1.0], [-0.5, -1.0]]], dtype=DTYPE),
            "z_good": torch.full((1, 2), 0.8 / 0.255, dtype=DTYPE)}


# --------------------------------------------------------------------------- the sweep

SETTINGS = {
    "normal": dict(n=32, d0=6, widths=(1, 2, 3, 4, 6, 8, 12), runs=100, max_steps=4000,
                   data=("random", "teacher"), quick_runs=100, slice_widths=(2, 8)),
    "fast": dict(n=24, d0=5, widths=(1, 2, 4, 8), runs=30, max_steps=1500,
                 data=("random", "teacher"), quick_runs=30, slice_widths=(2, 8)),
}
"""Sizes of lesson 06 per mode (the command line's sweep is `SWEEPS`)."""


def lesson_settings(fast: bool) -> dict:
    """The lesson's sizes: SETTINGS["fast"] when fast, else SETTINGS["normal"] (a copy)."""
    return dict(SETTINGS["fast" if fast else "normal"])


SWEEPS = {
    "normal": dict(n=64, d0=8, widths=(1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 16, 24), runs=100,
                   max_steps=20000, data=("random", "teacher", "mnist5k")),
    "fast": dict(n=32, d0=6, widths=(1, 2, 3, 4, 6, 8, 12), runs=100, max_steps=4000,
                 data=("random", "teacher")),
}
"""The experiment's sizes: N samples, d0 = √N inputs (the papers' d0 = Ω̃(√N)), widths d1
spanning P/N = d1(d0 + 1)/N from about 0.1 to 3."""

TABLE_COLUMNS = ("data", "d1", "P/N", "runs", "frac_global", "frac_suboptimal", "frac_kink",
                 "frac_saddle", "frac_not_converged", "frac_nonzero_error", "mean_error",
                 "median_loss", "mean_steps", "seconds")


def sweep(data: str, widths: tuple[int, ...], runs: int, n: int, d0: int, seed: int = 0,
          log=None, **train_options) -> list[dict]:
    """train_many on one data set for each width d1; one row per width: `Endpoints.summary()`
    plus data, seconds and the per-run training errors ("errors") and labels ("labels")."""
    X, y = make_data(data, n, d0, seed)
    rows = []
    for width in widths:
        t0 = time.perf_counter()
        e = train_many(X, y, width, runs, seed=seed, **train_options)
        row = {"data": data, **e.summary(), "seconds": time.perf_counter() - t0,
               "errors": e.error.tolist(), "labels": list(e.label)}
        rows.append(row)
        if log:
            log(f"{data:8s} d1={width:3d} P/N={row['P/N']:.2f}: nonzero error "
                f"{row['frac_nonzero_error']:.2f}, sub-optimal DLM {row['frac_suboptimal']:.2f}, "
                f"kink {row['frac_kink']:.2f}, mean error {row['mean_error']:.3f} "
                f"({row['seconds']:.0f} s)")
    return rows


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e-3 and value != 0 else f"{value:.3f}".rstrip("0") \
            .rstrip(".") if value != int(value) or abs(value) >= 1e6 else str(int(value))
    return str(value)


def markdown_table(rows: list[dict], columns: tuple[str, ...] = TABLE_COLUMNS) -> str:
    """The sweep rows as a markdown table of `columns`."""
    head = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns)
    body = ["| " + " | ".join(_cell(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join([head, *body])


def _write_csv(path: Path, rows: list[dict], columns: tuple[str, ...] = TABLE_COLUMNS) -> None:
    import csv

    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def example_slices(n: int, d0: int, widths: tuple[int, int], seed: int = 0,
                   max_steps: int = 4000) -> dict:
    """For one narrow and one wide net on random labels: the run with the highest final
    training error, its 1-D interpolation from its initialization and a 2-D slice around it."""
    X, y = make_data("random", n, d0, seed)
    out = {}
    for width in widths:
        e = train_many(X, y, width, 8, seed=seed, max_steps=max_steps, classify_endpoints=False)
        r = int(torch.argmax(e.error))
        out[f"d1={width}"] = {
            "error": float(e.error[r]), "P/N": e.params / n,
            "line": interpolate_1d(X, y, (e.W0[r], e.z0[r]), (e.W[r], e.z[r])),
            "slice": slice_2d(X, y, e.W[r], e.z[r], span=1.0, points=31, seed=seed)}
    return out


def shipped_sweep() -> dict:
    """The normal-mode sweep of `python -m analysis experiment minima` shipped with the package
    (analysis/results/minima.json): {"settings": ..., "rows": [...]}."""
    import json

    path = Path(__file__).resolve().parent / "results" / "minima.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run `python -m analysis experiment minima "
                                f"--out runs/minima` and copy runs/minima/minima.json there")
    return json.loads(path.read_text())


def experiment_cli(argv: list[str]) -> int:
    """python -m analysis experiment minima [--fast] [--out DIR] [--runs R] [--data a,b]."""
    import argparse
    import json

    p = argparse.ArgumentParser(
        prog="python -m analysis experiment minima",
        description="Soudry & Hoffer: the fraction of R trainings of a one-hidden-layer "
                    "leaky-ReLU net (quadratic loss) that end at sub-optimal minima, against "
                    "#parameters/N, on random-label, teacher-student and mnist5k data. Writes "
                    "minima.json, minima.csv, minima.md and figures to --out.")
    p.add_argument("--fast", action="store_true", help="N=32, two data sets (under 2 minutes)")
    p.add_argument("--out", default="runs/minima", help="output folder")
    p.add_argument("--runs", type=int, default=None, help="runs per width (default 100)")
    p.add_argument("--data", default=None, help="comma-separated: random,teacher,mnist5k")
    p.add_argument("--activation", default="leaky_relu", choices=ACTIVATIONS)
    p.add_argument("--loss", default="quadratic", choices=LOSSES)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    cfg = dict(SWEEPS["fast" if a.fast else "normal"])
    if a.runs is not None:
        if a.runs < 1:
            p.error(f"--runs must be >= 1, got {a.runs}")
        cfg["runs"] = a.runs
    if a.data:
        cfg["data"] = tuple(a.data.split(","))
        bad = [d for d in cfg["data"] if d not in DATASETS]
        if bad:
            p.error(f"unknown data {', '.join(bad)}; choose from {', '.join(DATASETS)}")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"minima sweep ({'fast' if a.fast else 'normal'}): N={cfg['n']}, d0={cfg['d0']}, "
          f"d1 in {cfg['widths']}, {cfg['runs']} runs each, {a.activation}, {a.loss} loss, "
          f"data {', '.join(cfg['data'])}", flush=True)
    t0 = time.perf_counter()
    rows = []
    for name in cfg["data"]:
        rows += sweep(name, cfg["widths"], cfg["runs"], cfg["n"], cfg["d0"], seed=a.seed,
                      log=lambda s: print(s, flush=True), activation=a.activation,
                      loss=a.loss, max_steps=cfg["max_steps"], progress=sys.stderr.isatty())
    widths = (cfg["widths"][1], cfg["widths"][-2])
    slices = example_slices(cfg["n"], cfg["d0"], widths, a.seed)
    seconds = time.perf_counter() - t0
    settings = {**cfg, "activation": a.activation, "loss": a.loss, "seed": a.seed,
                "seconds": seconds}
    (out / "minima.json").write_text(json.dumps({"settings": settings, "rows": rows}))
    _write_csv(out / "minima.csv", rows)
    table = markdown_table(rows)
    (out / "minima.md").write_text(table + "\n")
    print("\n" + table + f"\n\n{seconds:.0f} s")

    from analysis.plots.landscape import error_histograms, fraction_vs_params, slices_figure

    figs = {"fractions.png": fraction_vs_params(rows), "errors.png": error_histograms(rows),
            "slices.png": slices_figure(slices)}
    for fname, fig in figs.items():
        fig.savefig(out / fname, dpi=110, bbox_inches="tight")
    print(f"wrote {out / 'minima.json'}, minima.csv, minima.md, " + ", ".join(figs))
    return 0
