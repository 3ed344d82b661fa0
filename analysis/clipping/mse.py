"""The mean-square error of clipping plus rounding, per tensor: analytic (the paper's
approximation and the exact value), measured, optimal clipping, prior fits, bit allocation,
bias correction.

Banner, Nahshan, Soudry, "Post training 4-bit quantization of convolutional networks for
rapid-deployment", NeurIPS 2019 (first as "ACIQ: Analytical Clipping for Integer
Quantization of neural networks", arXiv:1810.05723).

A tensor X is clipped to [−α, α] and quantized to M bits by the project's one quantizer,
`analysis.quant.quantize_uniform`: 2^M bins of width Δ = 2α/2^M, each value replaced by the
centre of its bin, so the outermost levels are ±(α − Δ/2). Its mean-square error is

    E[(X − Q(X))²] ≈ clipping noise + α²/(3·4^M)          (the paper's approximation)
    Laplace(b):  2b²·e^(−α/b) + α²/(3·4^M)
    Gaussian(σ): (α² + σ²)·[1 − erf(α/(σ√2))] − √(2/π)·α·σ·e^(−α²/(2σ²)) + α²/(3·4^M)

The rounding term α²/(3·4^M) = Δ²/12 assumes a flat density inside every bin and all the
mass inside [−α, α]; `exact=True` integrates (x − level)² against the density over every
bin in closed form instead (the outermost bins run to ±∞, i.e. the tail is clipped to the
outermost level centre α − Δ/2, not to α). Everything here is in float64 numpy; tensors
are torch, on any device: a function that fits or sorts a tensor in numpy copies it to the CPU
once, where it enters.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy import optimize, special, stats
from torch import Tensor

from analysis.checks import check_choice
from analysis.quant import check_bits, quantize_uniform

__all__ = [
    "PAPER_ALPHA",
    "PRIORS",
    "mse_laplace",
    "mse_gaussian",
    "mse",
    "optimal_alpha",
    "alpha_table",
    "relu_range",
    "quant_range",
    "measured_mse",
    "SortedTensor",
    "PriorFit",
    "fit_prior",
    "allocate_bits",
    "allocation_mse",
    "bias_correct",
    "TensorFit",
    "fit_tensor",
    "check_tensor",
    "mse_terms",
    "compare_at_optimum",
    "format_rows",
    "curve_rows",
    "channel_scales",
]

PRIORS = ("laplace", "gaussian")

# Optimal clipping α*/b (Laplace) and α*/σ (Gaussian) of the paper's approximation, as
# published for M = 1..8 bits (arXiv:1810.05723 and its reference code): the project's
# `optimal_alpha(M, prior)` must agree with these to two decimals.
PAPER_ALPHA = {
    "laplace": {1: 1.86, 2: 2.83, 3: 3.89, 4: 5.03, 5: 6.20, 6: 7.41, 7: 8.64, 8: 9.89},
    "gaussian": {1: 1.24, 2: 1.71, 3: 2.15, 4: 2.55, 5: 2.93, 6: 3.28, 7: 3.61, 8: 3.92},
}

_MAX_CELLS = 1 << 22  # bins × α values evaluated at once by the exact MSE


# --- checks ------------------------------------------------------------------------------

def _check_prior(prior: str) -> str:
    check_choice("prior", prior, PRIORS)
    return prior


def _positive_array(value, name: str) -> np.ndarray:
    a = np.asarray(value, dtype=np.float64)
    if a.size == 0:
        raise ValueError(f"{name} is empty")
    if not (np.isfinite(a) & (a > 0)).all():
        raise ValueError(f"{name} must be > 0 and finite, got {value!r}")
    return a


def _bits_array(bits) -> np.ndarray:
    m = np.asarray(bits)
    if m.size == 0:
        raise ValueError("bits is empty")
    for v in np.unique(m):
        check_bits(v.item() if hasattr(v, "item") else v)
    return m.astype(np.int64)


def check_tensor(x: Tensor, name: str = "x") -> Tensor:
    """`x` as a float tensor, or a ValueError if it is empty or holds NaN/inf."""
    if not torch.is_tensor(x):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.numel() == 0:
        raise ValueError(f"{name} is empty: nothing to quantize")
    if not x.is_floating_point():
        x = x.double()
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    return x


# --- closed-form pieces, in units of the prior's scale (b or σ = 1) -------------------------

def _clip_noise(a: np.ndarray, prior: str) -> np.ndarray:
    """E[(|X| − a)²; |X| > a] for the unit prior (both tails)."""
    if prior == "laplace":
        return 2.0 * np.exp(-a)
    return (a**2 + 1.0) * special.erfc(a / math.sqrt(2.0)) - math.sqrt(2 / math.pi) * a * np.exp(-a**2 / 2)


def _bin_moment(lo: np.ndarray, hi: np.ndarray, c: np.ndarray, prior: str) -> np.ndarray:
    """∫_lo^hi (x − c)² f(x) dx for the unit prior's density f, 0 ≤ lo < hi ≤ ∞."""
    if prior == "laplace":
        # antiderivative of (x − c)²·½e^(−x) on x ≥ 0: −½e^(−x)[(x − c)² + 2(x − c) + 2]
        def upper(t):
            with np.errstate(invalid="ignore", over="ignore"):
                v = 0.5 * np.exp(-t) * ((t - c) ** 2 + 2 * (t - c) + 2)
            return np.where(np.isinf(t), 0.0, v)
    else:
        # ∫_t^∞ (x − c)² φ(x) dx = (1 + c²)·Q(t) + (t − 2c)·φ(t), Q the normal survival function
        def upper(t):
            with np.errstate(invalid="ignore"):
                v = (1 + c**2) * special.ndtr(-t) + (t - 2 * c) * np.exp(-t**2 / 2) / math.sqrt(2 * math.pi)
            return np.where(np.isinf(t), 0.0, v)
    return upper(lo) - upper(hi)


def _exact_unit(a: np.ndarray, bits: int, prior: str, relu: bool) -> np.ndarray:
    """Exact E[(X − Q(X))²] for the unit prior, a = α/scale (1-D array), one bit width.

    Symmetric: by symmetry twice the positive half, whose bins are [kΔ, (k+1)Δ) with
    centres (k + ½)Δ, Δ = 2a/2^M, the last one running to ∞. ReLU (see `relu_range`):
    levels kΔ, Δ = 2a/(2^(M+1) − 1), bins [(k − ½)Δ, (k + ½)Δ) ∩ [0, ∞); the zeros are exact.
    """
    n = 2**bits
    k = np.arange(n // 2 if not relu else n, dtype=np.float64)
    out = np.empty_like(a)
    step = max(1, _MAX_CELLS // k.size)
    for s in range(0, a.size, step):
        aa = a[s:s + step, None]
        if relu:
            d = 2 * aa / (2 * n - 1)
            c = k * d
            lo, hi = np.maximum((k - 0.5) * d, 0.0), (k + 0.5) * d
        else:
            d = 2 * aa / n
            c = (k + 0.5) * d
            lo, hi = k * d, (k + 1) * d
        hi = np.where(k == k[-1], np.inf, hi)
        total = _bin_moment(lo, hi, c, prior).sum(axis=1)
        out[s:s + step] = total if relu else 2 * total
    return out


def _mse(alpha, scale, bits, prior: str, exact: bool, relu: bool) -> np.ndarray | float:
    alpha = _positive_array(alpha, "alpha")
    scale = _positive_array(scale, "scale (b or sigma)")
    m = _bits_array(bits)
    a, s, m = np.broadcast_arrays(alpha / scale, scale, m)
    out = np.empty(a.shape)
    for bits_value in np.unique(m):
        sel = m == bits_value
        if exact:
            out[sel] = _exact_unit(a[sel].ravel(), int(bits_value), prior, relu)
        else:
            rounding = a[sel] ** 2 / (3.0 * 4.0**bits_value)
            clip = _clip_noise(a[sel], prior)
            # ReLU: one tail, and rounding noise only over the positive half of the mass
            out[sel] = clip / 2 + rounding / 8 if relu else clip + rounding
    out = out * s**2
    return out.item() if out.ndim == 0 else out


def mse_laplace(alpha, b, bits, exact: bool = False, relu: bool = False):
    """Expected MSE of clipping X ~ Laplace(0, b) to [−α, α] and quantizing to 2^bits levels.

    exact=False: the paper's 2b²·e^(−α/b) + α²/(3·4^M); exact=True: the exact value for
    `analysis.quant.quantize_uniform(x, M, −α, α)`. relu=True: the tensor is ReLU(X),
    quantized on `relu_range(α, M)` (a level at 0); approximation b²·e^(−α/b) + α²/(24·4^M).
    Vectorized: alpha, b, bits broadcast together; returns a float for scalar inputs.
    """
    return _mse(alpha, b, bits, "laplace", exact, relu)


def mse_gaussian(alpha, sigma, bits, exact: bool = False, relu: bool = False):
    """Expected MSE of clipping X ~ N(0, σ²) to [−α, α] and quantizing to 2^bits levels.

    exact=False: the paper's (α² + σ²)[1 − erf(α/(σ√2))] − √(2/π)·α·σ·e^(−α²/(2σ²)) + α²/(3·4^M);
    exact=True: the exact value for `quantize_uniform(x, M, −α, α)`; relu as in `mse_laplace`.
    """
    return _mse(alpha, sigma, bits, "gaussian", exact, relu)


def mse(alpha, scale, bits, prior: str, exact: bool = False, relu: bool = False):
    """`mse_laplace` or `mse_gaussian` by name."""
    return _mse(alpha, scale, bits, _check_prior(prior), exact, relu)


@functools.cache
def optimal_alpha(bits: int, prior: str, exact: bool = False, relu: bool = False) -> float:
    """α*(M) = argmin_α MSE(α), in units of b (Laplace) or σ (Gaussian), for any M in 1..16.

    With exact=False it reproduces the paper's table (`PAPER_ALPHA`); with relu=True the
    tensor is ReLU(X) (for the approximation, α*_relu(M) = α*(M + 1): one tail, half the mass).
    """
    bits = check_bits(bits)
    _check_prior(prior)
    grid = np.linspace(0.05, 6.0 + 2.5 * bits, 400)
    values = _mse(grid, 1.0, bits, prior, exact, relu)
    i = int(np.argmin(values))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
    res = optimize.minimize_scalar(lambda a: float(_mse(a, 1.0, bits, prior, exact, relu)),
                                   bounds=(lo, hi), method="bounded", options={"xatol": 1e-9})
    return float(res.x)


def alpha_table(bits=range(1, 9)) -> list[dict]:
    """Rows of α*(M) per prior: the project's (approximation and exact) beside the paper's."""
    rows = []
    for m in bits:
        row = {"bits": m}
        for prior in PRIORS:
            row[f"{prior}_paper"] = PAPER_ALPHA[prior].get(m, float("nan"))
            row[f"{prior}_approx"] = optimal_alpha(m, prior)
            row[f"{prior}_exact"] = optimal_alpha(m, prior, exact=True)
        rows.append(row)
    return rows


# --- the quantizer's range and the measured MSE ----------------------------------------------

def relu_range(alpha: float, bits: int) -> tuple[float, float]:
    """The range [lo, hi] that `quantize_uniform` needs to quantize a non-negative tensor
    clipped at α with a level exactly at 0: levels kΔ, k = 0..2^M − 1, Δ = 2α/(2^(M+1) − 1),
    lo = −Δ/2, hi = α (so, as in the symmetric case, α is the outer bin edge and the top
    level is α − Δ/2)."""
    bits = check_bits(bits)
    alpha = float(_positive_array(alpha, "alpha"))
    delta = 2 * alpha / (2 ** (bits + 1) - 1)
    return -delta / 2, alpha


def quant_range(alpha: float, bits: int, relu: bool = False, center: float = 0.0) -> tuple[float, float]:
    """[center − α, center + α], or `relu_range(α, M)` for a non-negative tensor."""
    if relu:
        return relu_range(alpha, bits)
    alpha = float(_positive_array(alpha, "alpha"))
    return center - alpha, center + alpha


def measured_mse(x: Tensor, alpha, bits: int, relu: bool = False, center: float = 0.0):
    """mean((x − Q(x))²) with Q = `quantize_uniform(x, M, *quant_range(α, M))`, for one α
    or an array of α (returns a float or a numpy array)."""
    x = check_tensor(x).detach().double()
    alphas = _positive_array(alpha, "alpha")
    out = np.array([((x - quantize_uniform(x, bits, *quant_range(a, bits, relu, center))) ** 2).mean().item()
                    for a in alphas.ravel()]).reshape(alphas.shape)
    return out.item() if out.ndim == 0 else out


class SortedTensor:
    """A tensor's values sorted once, with prefix sums of x and x², so that the measured MSE
    of `quantize_uniform` at any (α, M) costs 2^M binary searches instead of a pass over
    the data (what makes the widget's slider cheap). The bins are those of
    `quantize_uniform`: [lo + kΔ, lo + (k+1)Δ) → lo + (k + ½)Δ, the outer ones open."""

    def __init__(self, x: Tensor):
        x = check_tensor(x).detach().cpu().double().flatten()
        self.values = np.sort(x.numpy())
        self.s1 = np.concatenate([[0.0], np.cumsum(self.values)])
        self.s2 = np.concatenate([[0.0], np.cumsum(self.values**2)])
        self.n = self.values.size

    def mse(self, alpha, bits: int, relu: bool = False, center: float = 0.0):
        """Same value as `measured_mse(x, alpha, bits, relu, center)` (up to float rounding)."""
        bits = check_bits(bits)
        alphas = _positive_array(alpha, "alpha")
        out = np.empty(alphas.size)
        k = np.arange(2**bits)
        for j, a in enumerate(alphas.ravel()):
            lo, hi = quant_range(a, bits, relu, center)
            delta = (hi - lo) / 2**bits
            edges = np.searchsorted(self.values, lo + delta * k[1:], side="left")
            idx = np.concatenate([[0], edges, [self.n]])
            n1 = np.diff(idx)
            s1, s2 = np.diff(self.s1[idx]), np.diff(self.s2[idx])
            c = lo + delta * (k + 0.5)
            out[j] = (s2 - 2 * c * s1 + c**2 * n1).sum() / self.n
        out = np.maximum(out, 0.0).reshape(alphas.shape)
        return out.item() if out.ndim == 0 else out


# --- fitting the prior -----------------------------------------------------------------------

@dataclass(frozen=True)
class PriorFit:
    """Laplace and Gaussian fits of a tensor and their Kolmogorov–Smirnov distances."""

    mean: float
    b: float          # Laplace scale, b = mean|x − mean|
    sigma: float      # Gaussian scale, the standard deviation
    ks_laplace: float
    ks_gaussian: float

    @property
    def best(self) -> str:
        """The prior with the smaller KS distance."""
        return "laplace" if self.ks_laplace <= self.ks_gaussian else "gaussian"

    def scale(self, prior: str | None = None) -> float:
        """b or σ for `prior` (default: the best one)."""
        return self.b if _check_prior(prior or self.best) == "laplace" else self.sigma


def fit_prior(x: Tensor, max_samples: int = 100_000, seed: int = 0) -> PriorFit:
    """Fit Laplace(μ, b) with b = mean|x − μ| and N(μ, σ²), and measure each fit by the
    KS statistic sup|F_n − F| (on at most `max_samples` values drawn without replacement)."""
    if isinstance(max_samples, bool) or not isinstance(max_samples, (int, np.integer)) or max_samples < 1:
        raise ValueError(f"max_samples must be an integer >= 1, got {max_samples!r}")
    x = check_tensor(x).detach().cpu().double().flatten().numpy()
    mu = float(x.mean())
    b = float(np.abs(x - mu).mean())
    sigma = float(x.std())
    if not b > 0 or not sigma > 0:
        raise ValueError("the tensor is constant: no scale to fit")
    if x.size > max_samples:
        x = np.random.default_rng(seed).choice(x, max_samples, replace=False)
    ks_l = stats.kstest(x, "laplace", args=(mu, b)).statistic
    ks_g = stats.kstest(x, "norm", args=(mu, sigma)).statistic
    return PriorFit(mu, b, sigma, float(ks_l), float(ks_g))


def _channel_view(v: Tensor, x: Tensor, dim: int) -> Tensor:
    shape = [1] * x.dim()
    shape[dim] = -1
    return v.reshape(shape)


def _looks_relu(x: Tensor) -> bool:
    """A ReLU output: no negative value and some exact zeros (min x = 0). A positive tensor
    away from 0 (say N(10, 1), or a constant) is fitted as a two-sided distribution instead."""
    return bool(x.min() == 0)


def _channel_stats(x: Tensor, dim: int | None, relu: bool) -> dict[str, Tensor]:
    """Centre, Laplace b, Gaussian σ, min and max per channel (dim) or per tensor (None).

    For a non-negative tensor (after ReLU) b and σ describe its positive part:
    b = mean(x | x > 0), σ = sqrt(mean(x² | x > 0)) (a Laplace/Gaussian tail past 0)."""
    x = x.detach().double()
    x = x.movedim(dim, 0).reshape(x.shape[dim], -1) if dim is not None else x.reshape(1, -1)
    lo, hi = x.min(1).values, x.max(1).values
    if relu:  # x ≥ 0: the sums over the positive part are the sums over all of x
        count = (x > 0).sum(1).clamp_min(1)
        b, sigma = x.sum(1) / count, (x.square().sum(1) / count).sqrt()
        mu = torch.zeros_like(b)
    else:
        mu = x.mean(1)
        b, sigma = (x - mu[:, None]).abs().mean(1), x.std(1, unbiased=False)
    return {"mu": mu, "b": b, "sigma": sigma, "min": lo, "max": hi}


def _choose_prior(x: Tensor, relu: bool, st: dict[str, Tensor]) -> str:
    """The prior with the smaller KS distance (on the positive part for a ReLU tensor); x on
    the CPU (its callers copy it there once)."""
    if not relu:
        return fit_prior(x).best
    pos = x[x > 0].detach().double().flatten().numpy()
    if pos.size < 2:
        return "laplace"
    pos = np.random.default_rng(0).choice(pos, min(pos.size, 100_000), replace=False)
    b, s = st["b"].mean().item(), st["sigma"].mean().item()
    ks_l = stats.kstest(pos, "expon", args=(0, b)).statistic
    ks_g = stats.kstest(pos, "halfnorm", args=(0, s)).statistic
    return "laplace" if ks_l <= ks_g else "gaussian"


@dataclass(frozen=True)
class TensorFit:
    """How ACIQ sees one tensor: its prior, centre μ and scale (b or σ), and whether it is
    non-negative (after ReLU: then μ = 0 and the scale describes the positive part)."""

    prior: str
    center: float
    scale: float
    relu: bool


def fit_tensor(x: Tensor, prior: str | None = None) -> TensorFit:
    """Fit a whole tensor: `prior` (default: the one with the smaller KS distance) and its scale."""
    x = check_tensor(x).detach().cpu()
    relu = _looks_relu(x)
    st = _channel_stats(x, None, relu)
    prior = _check_prior(prior) if prior else _choose_prior(x, relu, st)
    scale = (st["b"] if prior == "laplace" else st["sigma"]).item()
    if not scale > 0:
        raise ValueError("the tensor is constant (or all zeros): no scale to fit")
    return TensorFit(prior, st["mu"].item(), scale, relu)


# --- per-channel bit allocation --------------------------------------------------------------

def allocate_bits(alphas, budget: float, min_bits: int = 1, max_bits: int = 8) -> np.ndarray:
    """Integer bits per channel under an average budget B (the paper's rule).

    Continuous rule: 2^(M_i) ∝ α_i^(2/3), i.e. M_i = B + log2(α_i^(2/3)) − mean_j log2(α_j^(2/3)),
    which minimizes Σ α_i²/4^(M_i) for a fixed total number of bins Σ 2^(M_i). Then a shift c
    with Σ clip(M_i + c, min, max) = n·B, floors, and one more bit to the channels with the
    largest remainders, so every M_i ∈ [min, max] and Σ M_i = round(n·B) exactly.
    """
    a = _positive_array(alphas, "alphas").ravel()
    check_bits(min_bits), check_bits(max_bits)
    if not min_bits <= budget <= max_bits:
        raise ValueError(f"the average budget must be in [{min_bits}, {max_bits}] bits, got {budget}")
    total = int(round(budget * a.size))
    m = (2 / 3) * np.log2(a)
    m = m - m.mean() + budget

    lo, hi = min_bits - m.max(), max_bits - m.min()  # Σ clip(m + c) = n·min at lo, n·max at hi
    for _ in range(200):  # bisection: Σ clip(m + c, min, max) is continuous and monotone in c
        c = (lo + hi) / 2
        lo, hi = (c, hi) if np.clip(m + c, min_bits, max_bits).sum() < total else (lo, c)
    c = lo
    cont = np.clip(m + c, min_bits, max_bits)
    bits = np.floor(cont).astype(np.int64)
    short = total - int(bits.sum())
    if short > 0:
        order = np.argsort(-(cont - bits), kind="stable")
        order = order[bits[order] < max_bits]
        bits[order[:short]] += 1
    return bits


def allocation_mse(scales, bits_per_channel, prior: str, exact: bool = False) -> float:
    """Mean over channels of the expected MSE when channel i (scale b_i or σ_i) is clipped at
    its optimal α*(M_i)·scale_i and quantized to M_i bits."""
    s = _positive_array(scales, "scales").ravel()
    m = _bits_array(bits_per_channel).ravel()
    if m.size == 1:
        m = np.full(s.shape, m.item())
    if m.shape != s.shape:
        raise ValueError(f"one bit width per channel: got {m.size} for {s.size} channels")
    table = {int(v): optimal_alpha(int(v), prior, exact) for v in np.unique(m)}
    alpha = s * np.array([table[int(v)] for v in m])
    return float(np.mean(mse(alpha, s, m, prior, exact)))


# --- bias correction -------------------------------------------------------------------------

def bias_correct(w_q: Tensor, w: Tensor, scale: bool = False) -> Tensor:
    """Per output channel c (axis 0): W_q[c] ← W_q[c] − mean(W_q[c]) + mean(W[c]); with
    scale=True also stretch by std(W[c])/std(W_q[c]) so the channel's std matches too."""
    w = check_tensor(w, "w")
    w_q = check_tensor(w_q, "w_q")
    if w.shape != w_q.shape:
        raise ValueError(f"w_q and w must have the same shape, got {tuple(w_q.shape)} and {tuple(w.shape)}")
    dims = tuple(range(1, w.dim()))
    if not dims:
        raise ValueError("bias correction needs a weight with an output-channel axis (≥ 2 dims)")
    mq, m = w_q.mean(dims, keepdim=True), w.mean(dims, keepdim=True)
    if not scale:
        return w_q - mq + m
    sq, s = w_q.std(dims, keepdim=True, unbiased=False), w.std(dims, keepdim=True, unbiased=False)
    ratio = torch.where(sq > 0, s / sq.clamp_min(torch.finfo(sq.dtype).tiny), torch.ones_like(sq))
    return (w_q - mq) * ratio + m


# --- the lesson's tables -----------------------------------------------------------------------

def mse_terms(alpha, scale, bits: int, prior: str) -> dict[str, np.ndarray]:
    """The two terms of the paper's approximation over α: the clipping noise
    E[(|X| − α)²; |X| > α] and the rounding noise α²/(3·4^M)."""
    s = _positive_array(scale, "scale")
    if s.size != 1:
        raise ValueError(f"scale must be one number (b or sigma), got {s.size} values")
    a = _positive_array(alpha, "alpha") / s.item()
    bits = check_bits(bits)
    s2 = s.item() ** 2
    return {"clipping": _clip_noise(a, _check_prior(prior)) * s2, "rounding": a**2 / (3.0 * 4.0**bits) * s2}


def compare_at_optimum(samples: dict[str, Tensor], bits=range(1, 9)) -> list[dict]:
    """Exact and paper's MSE against the measured one, at the paper's α* and at the exact α*.

    samples: prior name → samples of the unit prior (Laplace b = 1, N(0, 1)). Each row:
    prior, bits, alpha_paper (the published α*, `PAPER_ALPHA`; beyond 8 bits, where the paper
    gives none, the optimum of its approximation), alpha_exact, and the relative differences
    (analytic/measured − 1) exact_vs_measured and paper_vs_measured at the paper's α*, and the
    same at the exact α* (keys ending in _at_exact)."""
    rows = []
    for prior, x in samples.items():
        st = SortedTensor(x)
        for m in bits:
            paper = PAPER_ALPHA[_check_prior(prior)].get(check_bits(m)) or optimal_alpha(m, prior)
            row = {"prior": prior, "bits": m,
                   "alpha_paper": paper, "alpha_exact": optimal_alpha(m, prior, exact=True)}
            for key, a in (("", row["alpha_paper"]), ("_at_exact", row["alpha_exact"])):
                measured = st.mse(a, m)
                row["exact_vs_measured" + key] = mse(a, 1.0, m, prior, exact=True) / measured - 1
                row["paper_vs_measured" + key] = mse(a, 1.0, m, prior) / measured - 1
                row["paper_vs_exact" + key] = mse(a, 1.0, m, prior) / mse(a, 1.0, m, prior, exact=True) - 1
            rows.append(row)
    return rows


def format_rows(rows: list[dict], columns: dict[str, str]) -> str:
    """A plain-text table: columns maps a row key to its format, e.g. {"bits": "{:>4}", "x": "{:8.3f}"}."""
    def cell(fmt: str, v) -> str:
        return fmt.format(v)

    widths = [len(cell(f, rows[0][k])) if rows else len(k) for k, f in columns.items()]
    head = "  ".join(k.rjust(max(w, len(k))) for k, w in zip(columns, widths))
    lines = [head]
    for r in rows:
        cells = (cell(f, r[k]).rjust(max(w, len(k))) for (k, f), w in zip(columns.items(), widths))
        lines.append("  ".join(cells))
    return "\n".join(lines)


def curve_rows(x: Tensor, prior: str, bits=(2, 4, 8), grid=None) -> list[dict]:
    """MSE over α for each bit width: exact, paper's and measured on x (samples of the unit
    prior, b = 1 or σ = 1). grid: α values (default 0.25..14 in 60 steps)."""
    grid = np.linspace(0.25, 14, 60) if grid is None else np.asarray(grid, dtype=np.float64)
    st = SortedTensor(x)
    return [{"bits": m, "grid": grid, "exact": mse(grid, 1.0, m, prior, exact=True),
             "paper": mse(grid, 1.0, m, prior), "measured": st.mse(grid, m)} for m in bits]


def channel_scales(w: Tensor) -> np.ndarray:
    """Laplace scale b_c = mean|w − mean(w_c)| of every output channel c (axis 0) of a weight."""
    w = check_tensor(w, "w")
    if w.dim() < 2:
        raise ValueError(f"w needs an output-channel axis and at least one more, got shape {tuple(w.shape)}")
    w = w.detach().cpu().double().flatten(1)
    return (w - w.mean(1, keepdim=True)).abs().mean(1).numpy()

