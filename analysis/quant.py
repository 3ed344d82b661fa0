"""Quantizers: pure functions on tensors, each with a straight-through backward.

The one uniform quantizer of the project (used by layers, clipping analyses and widgets):
the range [lo, hi] is cut into 2^k equal bins of width Δ = (hi − lo)/2^k and every value is
replaced by the centre of its bin,

    Q(x) = lo + Δ·(i + ½),   i = clamp(floor((x − lo)/Δ), 0, 2^k − 1),

so values outside [lo, hi] are clipped to the outermost levels. With a flat density inside
each bin its rounding noise is Δ²/12 = α²/(3·4^k) for the symmetric range [−α, α], the
term of the ACIQ paper (Banner et al. 2019).

Larq-style quantizer objects (`SignQuantizer`, `UniformQuantizer`) wrap these functions so
that layers take `kernel_quantizer=` / `input_quantizer=`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import torch
from torch import Tensor

from analysis.checks import check_is_tensor

__all__ = [
    "sign",
    "sign_ste",
    "quantize_uniform",
    "minmax_range",
    "check_bits",
    "Quantizer",
    "SignQuantizer",
    "UniformQuantizer",
    "as_quantizer",
]

MAX_BITS = 16


def check_bits(bits: int, name: str = "bits") -> int:
    """Return `bits` as an int, or raise a ValueError a person can act on, naming the argument
    `name` (bits_w, kernel_quantizer…)."""
    if isinstance(bits, bool) or not isinstance(bits, numbers.Real) or not float(bits).is_integer():
        raise ValueError(f"{name} must be an integer in 1..{MAX_BITS}, got {bits!r}")
    bits = int(bits)
    if not 1 <= bits <= MAX_BITS:
        raise ValueError(f"{name} must be in 1..{MAX_BITS}, got {bits}")
    return bits


def sign(x: Tensor) -> Tensor:
    """sign(x) ∈ {−1, +1} with sign(0) = +1 (the BNN paper's convention); integer input gives float.

    sign(NaN) = NaN: a diverged layer shows up in the loss instead of binarizing to +1.
    """
    if not check_is_tensor("x", x).is_floating_point():
        x = x.float()  # the in-place + ½ below needs a float tensor
    # sign(sign(x) + ½) sends 0 to +1 and keeps ±1 (with the NaN check, ~1.7x faster than
    # torch.where on CPU); torch.sign(NaN) is 0, which the + ½ would turn into +1
    return torch.sign(x).add_(0.5).sign_().masked_fill_(x.isnan(), math.nan)


class _SignSTE(torch.autograd.Function):
    """Forward q = sign(x); backward g_x = g_q · 1{|x| ≤ 1} (or g_q when not cancelling)."""

    @staticmethod
    def forward(ctx, x: Tensor, cancel: bool) -> Tensor:
        ctx.cancel = cancel
        if cancel:
            ctx.save_for_backward(x)
        return sign(x)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        if not ctx.cancel:
            return grad_out, None
        (x,) = ctx.saved_tensors
        return grad_out * (x.abs() <= 1), None


def sign_ste(x: Tensor, cancel: bool = True) -> Tensor:
    """Binarize with the straight-through estimator of Hubara et al. (2016).

    Forward: q = sign(x) ∈ {−1, +1}, sign(0) = +1.
    Backward: ∂L/∂x = ∂L/∂q · 1{|x| ≤ 1}, "gradient cancellation" outside [−1, 1].
    cancel=False passes ∂L/∂q unchanged: the paper's rule for the weights (Algorithm 1),
    whose latent values are kept in [−1, 1] by clipping, so the mask would be all ones.
    """
    return _SignSTE.apply(check_is_tensor("x", x), cancel)


def _uniform_levels(x: Tensor, bits: int, lo: Tensor, hi: Tensor, stochastic: bool,
                    generator: torch.Generator | None) -> Tensor:
    """Q(x) computed in the dtype of lo and hi (float32 or wider), returned in x's dtype."""
    out_dtype, x = x.dtype, x.to(lo.dtype)
    n = 2**bits
    delta = (hi - lo) / n
    u = (x - lo) / delta - 0.5  # position in units of bins, 0 at the first bin's centre
    if stochastic:
        noise = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        i = torch.floor(u + noise)  # rounds up with probability frac(u): unbiased
    else:
        i = torch.floor(u + 0.5)
    i = i.clamp(0, n - 1)
    return (lo + delta * (i + 0.5)).to(out_dtype)


class _UniformSTE(torch.autograd.Function):
    """Forward Q(x); backward g_x = g_q · 1{lo ≤ x ≤ hi} (straight through, clipped)."""

    @staticmethod
    def forward(ctx, x, bits, lo, hi, stochastic, generator):
        ctx.save_for_backward(x, lo, hi)
        return _uniform_levels(x, bits, lo, hi, stochastic, generator)

    @staticmethod
    def backward(ctx, grad_out):
        x, lo, hi = ctx.saved_tensors
        inside = ((x >= lo) & (x <= hi)).to(grad_out.dtype)
        return grad_out * inside, None, None, None, None, None


def quantize_uniform(
    x: Tensor,
    bits: int,
    lo: float | Tensor,
    hi: float | Tensor,
    stochastic: bool = False,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Quantize `x` to 2^bits levels: the centres of 2^bits equal bins over [lo, hi].

    Q(x) = lo + Δ(i + ½), Δ = (hi − lo)/2^bits, i = clamp(⌊(x − lo)/Δ⌋, 0, 2^bits − 1)
    (a value on a bin edge goes to the bin above).
    Deterministic rounding goes to the nearest level; stochastic rounding goes up with
    probability equal to the fractional distance, so E[Q(x)] = x between the outermost levels
    lo + Δ/2 and hi − Δ/2 (beyond them, as outside [lo, hi], Q clips to those levels).
    `lo`/`hi` may be tensors broadcastable to `x` (per-channel ranges). float16 and bfloat16
    input is quantized in float32 and returned in its own dtype.
    Backward: straight through inside [lo, hi], zero outside.
    """
    bits = check_bits(bits)
    if not check_is_tensor("x", x).is_floating_point():
        x = x.float()
    # float16/bfloat16 have 11/8 significant bits: the bin index (x − lo)/Δ of 8 bits or more
    # would round to a wrong level (and 2^16 − 1 overflows float16), so compute in float32
    work = torch.promote_types(x.dtype, torch.float32)
    lo_t = torch.as_tensor(lo, dtype=work, device=x.device)
    hi_t = torch.as_tensor(hi, dtype=work, device=x.device)
    try:
        shape = torch.broadcast_shapes(x.shape, lo_t.shape, hi_t.shape)
    except RuntimeError:
        shape = None
    if shape != x.shape:  # torch would fail deep inside, or return a larger tensor than x
        raise ValueError(f"lo and hi must broadcast to x's shape {tuple(x.shape)}, got shapes "
                         f"{tuple(lo_t.shape)} and {tuple(hi_t.shape)} (per-channel ranges along "
                         f"axis 0: shape (C, 1, …, 1))")
    if not (torch.isfinite(lo_t).all() and torch.isfinite(hi_t).all()) or (hi_t <= lo_t).any():
        raise ValueError(f"the clipping range needs finite lo < hi, got lo={lo}, hi={hi}")
    if not torch.isfinite(hi_t - lo_t).all():  # Δ = inf would make every level NaN
        raise ValueError(f"the clipping range hi − lo overflows {work} (lo={lo}, hi={hi}): "
                         f"scale x down first")
    return _UniformSTE.apply(x, bits, lo_t, hi_t, stochastic, generator)


def minmax_range(x: Tensor, symmetric: bool = True, dim: int | None = None) -> tuple[Tensor, Tensor]:
    """The min/max clipping range of `x` (GEMMLOWP style), per tensor or per slice along `dim`.

    symmetric: [−max|x|, max|x|]; asymmetric: [min x, max x]. A zero-width range (a constant
    tensor or slice) is widened to [lo, lo + ε·max(1, |lo|)], ε the dtype's machine epsilon, so
    that the quantizer stays defined: a plain lo + ε rounds back to lo once |lo| ≥ 2. Any other
    range, however narrow (values of 1e-9, say), is kept as it is. Integer input gives a float
    range, as it is quantized in float.
    """
    x = check_is_tensor("x", x).detach()
    if dim is not None and not -max(x.dim(), 1) <= dim < max(x.dim(), 1):
        raise ValueError(f"dim must be in {-max(x.dim(), 1)}..{max(x.dim(), 1) - 1} for a "
                         f"tensor of shape {tuple(x.shape)}, got {dim}")
    if x.numel() == 0 and (dim is None or x.shape[dim] > 0):  # no slices along dim: no ranges
        raise ValueError(f"x of shape {tuple(x.shape)} is empty: it has no min/max range")
    if not x.is_floating_point():
        x = x.float()
    if dim is None:
        lo, hi = x.min(), x.max()
    else:
        reduce = [d for d in range(x.dim()) if d != dim % x.dim()]
        # a 1-d tensor's slices are single values; amin(dim=[]) would reduce over all of them
        lo = x.amin(dim=reduce, keepdim=True) if reduce else x.clone()
        hi = x.amax(dim=reduce, keepdim=True) if reduce else x.clone()
    if symmetric:
        hi = torch.maximum(lo.abs(), hi.abs())
        lo = -hi
    eps = torch.finfo(x.dtype).eps
    # only where hi = lo: a floor of lo + ε on every range would stretch a tensor of 1e-9 values
    # 25-fold and leave 8 bits with 17 levels
    hi = torch.where(hi > lo, hi, lo + eps * lo.abs().clamp(min=1))
    return lo, hi


# --- Larq-style quantizer objects -------------------------------------------------------

Quantizer = Callable[[Tensor], Tensor]


class SignQuantizer:
    """x ↦ sign_ste(x, cancel): 1 bit, values in {−1, +1}.

    For activations keep cancel=True (hard-tanh STE); for latent weights that the training
    loop clips to [−1, 1], cancel=False gives the same gradient without computing a mask.
    """

    bits = 1

    def __init__(self, cancel: bool = True):
        self.cancel = cancel

    def __call__(self, x: Tensor) -> Tensor:
        return sign_ste(x, self.cancel)

    def __repr__(self) -> str:
        return "SignQuantizer()" if self.cancel else "SignQuantizer(cancel=False)"


class UniformQuantizer:
    """x ↦ quantize_uniform(x, bits, lo, hi): k bits over a fixed or a min/max range.

    clip=α gives the fixed range [−α, α]; clip=None takes the min/max range of each tensor
    (symmetric or not). `per_channel=True` takes one range per slice along axis 0.
    """

    def __init__(self, bits: int, clip: float | None = 1.0, symmetric: bool = True,
                 stochastic: bool = False, per_channel: bool = False):
        self.bits = check_bits(bits)
        if clip is not None and not 0 < clip < float("inf"):
            raise ValueError(f"clip must be > 0 and finite (or None for min/max), got {clip}")
        if per_channel and clip is not None:  # a fixed clip is one range for every channel
            raise ValueError(f"per_channel=True takes each channel's min/max range: use clip=None, "
                             f"not clip={clip}")
        self.clip, self.symmetric = clip, symmetric
        self.stochastic, self.per_channel = stochastic, per_channel

    def __call__(self, x: Tensor) -> Tensor:
        if self.clip is not None:
            lo, hi = -self.clip, self.clip
        else:
            lo, hi = minmax_range(x, self.symmetric, dim=0 if self.per_channel else None)
        return quantize_uniform(x, self.bits, lo, hi, self.stochastic)

    def __repr__(self) -> str:
        per_channel = ", per_channel=True" if self.per_channel else ""
        return (f"UniformQuantizer(bits={self.bits}, clip={self.clip}, "
                f"symmetric={self.symmetric}, stochastic={self.stochastic}{per_channel})")


def as_quantizer(spec: Quantizer | str | int | None, name: str = "bits") -> Quantizer | None:
    """Turn a spec into a quantizer: None, "sign" (hard-tanh STE), "sign_weights" (plain STE,
    for clipped latent weights), an integer k, numpy's included (k bits on [−1, 1]; k = 1 is
    "sign", the levels ±1), or a callable. A bool is not a bit width and is refused; a bad
    bit width's or an unknown spec's error names the argument `name` (kernel_quantizer…)."""
    if spec is None or callable(spec):
        return spec
    if spec in ("sign", "ste_sign"):
        return SignQuantizer()
    if spec == "sign_weights":
        return SignQuantizer(cancel=False)
    if isinstance(spec, numbers.Real) and not isinstance(spec, bool):
        bits = check_bits(spec, name)
        return SignQuantizer() if bits == 1 else UniformQuantizer(bits, clip=1.0)
    raise ValueError(f"{name}: unknown quantizer {spec!r}: use None, 'sign', 'sign_weights', "
                     "a bit width or a callable")
