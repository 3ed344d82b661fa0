"""The one-hidden-layer network, batched over R runs, and its data.

    f(x) = Σ_j z_j σ(w_j·x),   σ(u) = u for u > 0, ρ·u otherwise  (ρ = `slope`; ReLU: ρ = 0),

with R networks held as W (R, d1, d0), z (R, d1) (θ = (vec W, z), (R, P), P = d1·(d0 + 1)),
float64 throughout. Data: N samples x_n ∈ R^d0 with labels y_n = ±1 (random labels, a
teacher net, mnist5k). The quadratic loss L = (1/2N) Σ_n (f(x_n) − y_n)² or the logistic
loss L = (1/N) Σ_n log(1 + exp(−y_n f(x_n))), the training error and the exact gradients.
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import Tensor

from analysis.checks import check_choice, check_count

__all__ = [
    "ACTIVATIONS",
    "LOSSES",
    "OPTIMIZERS",
    "DATASETS",
    "DTYPE",
    "make_data",
    "random_labels",
    "init_params",
    "forward",
    "training_error",
    "loss_and_grad",
    "flatten",
    "unflatten",
]

ACTIVATIONS = ("leaky_relu", "relu")
LOSSES = ("quadratic", "logistic")
OPTIMIZERS = ("adam", "gd")
DATASETS = ("random", "teacher", "mnist5k")
DTYPE = torch.float64


# --------------------------------------------------------------------------- data

def random_labels(n: int, d0: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """x_n ~ N(0, I_d0), y_n uniform in {−1, +1}, independent of x: (X (n, d0), y (n,)), float64."""
    check_count("n", n)
    check_count("d0", d0)
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

    check_choice("data", name, DATASETS)
    check_count("n", n)
    check_count("d0", d0)
    known = {"random": (), "teacher": ("hidden",), "mnist5k": ("classes",)}[name]
    unknown = sorted(set(options) - set(known))
    if unknown:  # a misspelt option would otherwise be dropped in silence
        raise ValueError(f"make_data({name!r}) takes no option {', '.join(map(repr, unknown))}; "
                         f"its options: {', '.join(known) or 'none'}")
    if name == "random":
        return random_labels(n, d0, seed)
    if name == "teacher":
        hidden = options.get("hidden", 4)  # data.load checks it is a positive integer
        X, y = data.load("teacher", n=n, d=d0, hidden=hidden, activation="leaky_relu", seed=seed)
        return X.to(DTYPE), data.to_pm1(y).to(DTYPE)
    if name == "mnist5k":
        classes = options.get("classes", "parity")
        _check_classes(classes)
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
        _, S, Vh = torch.linalg.svd(Xc, full_matrices=False)
        # centring leaves at most n − 1 components; scaling one of variance ~0 to unit
        # variance would make a feature of rounding noise
        rank = int((S > S[0] * max(Xc.shape) * torch.finfo(DTYPE).eps).sum())
        if d0 > rank:
            raise ValueError(f"d0={d0} is more than the {rank} principal components of {n} "
                             "centred digits (at most n − 1)")
        Z = Xc @ Vh[:d0].T
        return Z / Z.std(0), label
    raise AssertionError(f"make_data has no branch for {name!r}, which DATASETS lists")


def _check_classes(classes) -> None:
    """'parity' or two different digits (a, b): another digit, or a == b, left one class."""
    if isinstance(classes, str) and classes == "parity":
        return
    pair = isinstance(classes, (tuple, list)) and len(classes) == 2 and all(
        isinstance(c, numbers.Integral) and not isinstance(c, bool) and 0 <= c <= 9 for c in classes)
    if not pair or classes[0] == classes[1]:
        raise ValueError(f"classes must be 'parity' or two different digits (a, b) in 0..9, "
                         f"got {classes!r}")


def _check_inputs(X: Tensor) -> Tensor:
    """X (N, d0) as float64, non-empty and finite, or a ValueError naming X."""
    X = torch.as_tensor(X, dtype=DTYPE)
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"X must be a non-empty (N, d0) matrix, got shape {tuple(X.shape)}")
    if not torch.isfinite(X).all():
        raise ValueError("X holds NaN or infinite values")
    return X


def _check_data(X: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    X, y = _check_inputs(X), torch.as_tensor(y, dtype=DTYPE)
    if y.shape != (X.shape[0],):
        raise ValueError(f"y must have shape ({X.shape[0]},) to match X, got {tuple(y.shape)}")
    if not torch.all((y == 1) | (y == -1)):
        raise ValueError("labels y must be ±1 (use analysis.data.to_pm1 on {0, 1} labels)")
    return X, y


def _check_params(W: Tensor, z: Tensor, d0: int) -> tuple[Tensor, Tensor]:
    """W (R, d1, d0) and z (R, d1) as float64, or a ValueError that names the shapes (a single
    net's W (d1, d0), or a z with another run count, used to fail deep in torch or broadcast)."""
    W, z = torch.as_tensor(W, dtype=DTYPE), torch.as_tensor(z, dtype=DTYPE)
    if W.ndim != 3 or W.shape[2] != d0 or z.shape != W.shape[:2]:
        raise ValueError(f"W must have shape (R, d1, d0) with d0 = {d0} (the columns of X) and z "
                         f"shape (R, d1), got {tuple(W.shape)} and {tuple(z.shape)}; for one net "
                         "use W[None], z[None]")
    return W, z


# --------------------------------------------------------------------------- the network

def init_params(runs: int, d0: int, width: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """R initializations, run r drawn from its own generator seeded seed + r (so run r of a
    batch equals a single run with seed + r): w_j ~ N(0, I/d0), z_j ~ N(0, 1/d1).
    Returns W (R, d1, d0), z (R, d1), float64."""
    check_count("runs", runs)
    check_count("d0", d0)
    check_count("width", width)
    W = torch.empty(runs, width, d0, dtype=DTYPE)
    z = torch.empty(runs, width, dtype=DTYPE)
    for r in range(runs):
        g = torch.Generator().manual_seed(seed + r)
        W[r] = torch.randn(width, d0, generator=g, dtype=DTYPE) / math.sqrt(d0)
        z[r] = torch.randn(width, generator=g, dtype=DTYPE) / math.sqrt(width)
    return W, z


def _slope(activation: str, slope: float) -> float:
    """ρ of the activation: 0 for ReLU, `slope` for leaky ReLU, which needs 0 ≤ ρ < 1
    (ρ = 1 is linear, without kinks; ρ > 1 or ρ < 0 is not max(u, ρu))."""
    check_choice("activation", activation, ACTIVATIONS)
    if activation == "relu":
        return 0.0
    if not 0 <= slope < 1:
        raise ValueError(f"slope ρ of the leaky ReLU must be in [0, 1), got {slope!r}")
    return float(slope)


def _sigma(U: Tensor, slope: float) -> Tensor:
    """σ(u) = u for u > 0, ρu otherwise (one fused kernel: torch.where is slow on CPU here)."""
    return torch.nn.functional.leaky_relu(U, slope)


def _sigma_backward(G: Tensor, U: Tensor, slope: float) -> Tensor:
    """G·σ'(U), σ'(u) = 1 for u > 0, ρ otherwise (σ'(0) = ρ), in one fused kernel."""
    return torch.ops.aten.leaky_relu_backward(G, U, slope, False)


def forward(W: Tensor, z: Tensor, X: Tensor, slope: float = 0.1) -> tuple[Tensor, Tensor]:
    """Pre-activations U_rnj = w_rj·x_n (R, N, d1) and outputs f_rn = Σ_j z_rj σ(U_rnj) (R, N).
    W (R, d1, d0), z (R, d1), X (N, d0), as float64; slope: ρ (0: ReLU)."""
    X = _check_inputs(X)
    W, z = _check_params(W, z, X.shape[1])
    U = torch.matmul(W, X.T)  # (R, d1, N), contiguous: elementwise kernels are fast on it
    return U.transpose(1, 2), (z.unsqueeze(1) @ _sigma(U, _slope("leaky_relu", slope))).squeeze(1)


def training_error(f: Tensor, y: Tensor) -> Tensor:
    """Fraction of samples with y_n f(x_n) ≤ 0 or NaN (a diverged net classifies nothing),
    per run: (R, N) -> (R,)."""
    return (~(y * f > 0)).to(DTYPE).mean(-1)


def _loss_terms(f: Tensor, y: Tensor, loss: str) -> tuple[Tensor, Tensor]:
    """Per-run loss L_r (R,) and its derivative dL_r/df_rn (R, N)."""
    N = y.shape[-1]
    if loss == "quadratic":
        r = f - y
        return 0.5 * (r * r).mean(-1), r / N
    if loss == "logistic":
        m = -y * f
        return torch.nn.functional.softplus(m).mean(-1), -y * torch.sigmoid(m) / N
    # every loss, Hessian and slice goes through here: a misspelt name must not fall through
    check_choice("loss", loss, LOSSES)
    raise AssertionError(f"_loss_terms has no branch for {loss!r}, which LOSSES lists")


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

    slope: ρ in [0, 1) (0: ReLU); y: labels ±1.
    """
    X, y = _check_data(X, y)
    W, z = _check_params(W, z, X.shape[1])
    L, gW, gz, f = _grads(W, z, X, y, _slope("leaky_relu", slope), loss)
    return L, training_error(f, y), gW, gz


def flatten(W: Tensor, z: Tensor) -> Tensor:
    """θ = (vec W, z): (R, P) from W (R, d1, d0) and z (R, d1)."""
    return torch.cat([W.flatten(1), z], dim=1)


def unflatten(theta: Tensor, d0: int, width: int) -> tuple[Tensor, Tensor]:
    """Inverse of `flatten`: θ (R, P) -> W (R, d1, d0), z (R, d1)."""
    k = width * d0
    return theta[:, :k].reshape(-1, width, d0), theta[:, k:]
