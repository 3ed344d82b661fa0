"""Torch modules built on `analysis.quant`.

- `QuantLinear`, `QuantConv2d`: a Linear / Conv2d whose kernel and input pass through
  composable quantizers, Larq style: `kernel_quantizer=`, `input_quantizer=`.
- `BinarizedLinear`, `BinarizedConv2d`: the BNN layers of Hubara et al. (2016), i.e. the
  quantized layers with `sign_ste` for the kernel and (except for a first layer on real
  input) for the input. The real-valued *latent* weights are what the optimizer updates;
  `clip_latent_weights_` keeps them in [−1, 1] after every step.
- `RangeBatchNorm1d/2d` (Banner et al. 2018), `L1BatchNorm1d/2d` and `TopKBatchNorm1d/2d`
  (Hoffer et al. 2018), `GhostBatchNorm1d/2d` (Hoffer et al. 2017): batch-norm variants with
  the same interface.
- `FixedClassifier` (Hoffer et al. 2018): a last layer fixed to Hadamard rows, one learned scale.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F
from scipy import linalg, special
from torch import Tensor, nn

from analysis.checks import check_count, check_is_tensor
from analysis.quant import Quantizer, as_quantizer

__all__ = [
    "QuantLinear",
    "QuantConv2d",
    "BinarizedLinear",
    "BinarizedConv2d",
    "clip_latent_weights_",
    "quantized_operands",
    "layer_inputs",
    "GhostBatchNorm1d",
    "GhostBatchNorm2d",
    "RangeBatchNorm1d",
    "RangeBatchNorm2d",
    "L1BatchNorm1d",
    "L1BatchNorm2d",
    "TopKBatchNorm1d",
    "TopKBatchNorm2d",
    "topk_constant",
    "FixedClassifier",
]


class _Quantized:
    """Shared by the quantized layers: quantize the kernel and the input, remember the operands."""

    kernel_quantizer: Quantizer | None
    input_quantizer: Quantizer | None
    clip_weights: bool

    def _setup_quantizers(self, kernel_quantizer, input_quantizer, clip_weights: bool | None) -> None:
        self.kernel_quantizer = as_quantizer(kernel_quantizer, "kernel_quantizer")
        self.input_quantizer = as_quantizer(input_quantizer, "input_quantizer")
        # by default latent weights are clipped exactly when they are quantized
        self.clip_weights = self.kernel_quantizer is not None if clip_weights is None else clip_weights
        self.record_operands = False  # set by `quantized_operands` to inspect what is multiplied
        self.last_operands: tuple[Tensor, Tensor] | None = None

    def _operands(self, x: Tensor) -> tuple[Tensor, Tensor]:
        w = self.weight if self.kernel_quantizer is None else self.kernel_quantizer(self.weight)
        xq = x if self.input_quantizer is None else self.input_quantizer(x)
        if self.record_operands:
            self.last_operands = (xq.detach(), w.detach())
        return xq, w

    def extra_repr(self) -> str:
        return (super().extra_repr() + f", kernel_quantizer={self.kernel_quantizer}, "
                f"input_quantizer={self.input_quantizer}")


class QuantLinear(_Quantized, nn.Linear):
    """y = Q_x(x) · Q_w(W)ᵀ (+ b). With both quantizers None it is an ordinary Linear.

    clip_weights: clip the latent weights W after each optimizer step to the kernel quantizer's
    range [−α, α] (UniformQuantizer(clip=α)), else to [−1, 1] (the BNN rule); see
    `clip_latent_weights_`.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = False,
                 kernel_quantizer=None, input_quantizer=None, clip_weights: bool | None = None,
                 device=None, dtype=None):
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        self._setup_quantizers(kernel_quantizer, input_quantizer, clip_weights)

    def forward(self, x: Tensor) -> Tensor:
        xq, w = self._operands(x)
        return F.linear(xq, w, self.bias)


class QuantConv2d(_Quantized, nn.Conv2d):
    """y = conv(Q_x(x), Q_w(W)) (+ b); the arguments of nn.Conv2d, in its order (but bias=False
    by default, as in QuantLinear), plus the quantizers.

    Zero padding of a binarized input would add a third value; the BNN paper pads with 0
    all the same (it is the common practice), and so does this layer.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = False, padding_mode: str = "zeros",
                 kernel_quantizer=None, input_quantizer=None, clip_weights: bool | None = None,
                 device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                         dilation=dilation, groups=groups, bias=bias, padding_mode=padding_mode,
                         device=device, dtype=dtype)
        self._setup_quantizers(kernel_quantizer, input_quantizer, clip_weights)

    def forward(self, x: Tensor) -> Tensor:
        xq, w = self._operands(x)
        return self._conv_forward(xq, w, self.bias)


def BinarizedLinear(in_features: int, out_features: int, binary_input: bool = True,
                    bias: bool = False) -> QuantLinear:
    """BNN fully connected layer: sign(W) and, when `binary_input`, sign(x) (Hubara et al. 2016).

    The first layer of a BNN takes real input: `binary_input=False`.
    """
    return QuantLinear(in_features, out_features, bias=bias, kernel_quantizer="sign_weights",
                       input_quantizer="sign" if binary_input else None)


def BinarizedConv2d(in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                    binary_input: bool = True, bias: bool = False) -> QuantConv2d:
    """BNN convolution: sign(W) * sign(x) (real input when `binary_input=False`)."""
    return QuantConv2d(in_channels, out_channels, kernel_size, stride, padding, bias=bias,
                       kernel_quantizer="sign_weights",
                       input_quantizer="sign" if binary_input else None)


@torch.no_grad()
def clip_latent_weights_(model: nn.Module, bound: float | None = None) -> None:
    """W ← clip(W, −b, b) for every quantized layer with `clip_weights` (in place), with
    b = `bound` if given, else the kernel quantizer's fixed range α (UniformQuantizer(clip=α)),
    else 1 (the BNN rule, [−1, 1] being where sign's straight-through gradient passes).

    The training loop calls this after every optimizer step: one mechanism for all layers.
    """
    for m in model.modules():
        if isinstance(m, _Quantized) and m.clip_weights:
            # past α the gradient is zero (the weight would stick); below it, levels out of reach
            b = bound if bound is not None else getattr(m.kernel_quantizer, "clip", None) or 1.0
            m.weight.clamp_(-b, b)


class quantized_operands:
    """Context manager recording the (input, kernel) each quantized layer really multiplies.

    >>> with quantized_operands(model) as ops:
    ...     model(x)
    >>> ops[name] == (x_q, w_q)
    """

    def __init__(self, model: nn.Module):
        self.layers = {n: m for n, m in model.named_modules() if isinstance(m, _Quantized)}
        self.operands: dict[str, tuple[Tensor, Tensor]] = {}

    def __enter__(self) -> dict[str, tuple[Tensor, Tensor]]:
        for m in self.layers.values():
            m.record_operands = True
        return self.operands

    def __exit__(self, *exc) -> None:
        for name, m in self.layers.items():
            m.record_operands = False
            if m.last_operands is not None:
                self.operands[name] = m.last_operands
            m.last_operands = None


@torch.no_grad()
def layer_inputs(model: nn.Module, layers: dict[str, nn.Module], X: Tensor,
                 batch_size: int = 500) -> dict[str, Tensor]:
    """The input each of `layers` (name → submodule of `model`) receives when `model` runs on X.

    Forward pre-hooks record the inputs batch by batch, in eval mode; returns name → the
    concatenated inputs, of shape (len(X), *input shape of that layer).
    """
    seen: dict[str, list[Tensor]] = {name: [] for name in layers}
    hooks = [m.register_forward_pre_hook(lambda _m, args, name=name: seen[name].append(args[0]))
             for name, m in layers.items()]
    was_training = model.training
    model.eval()
    try:
        for i in range(0, len(X), batch_size):
            model(X[i:i + batch_size])
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return {name: torch.cat(parts) for name, parts in seen.items()}


# --- batch-norm variants ---------------------------------------------------------------

def _check_input(module: nn.Module, x: Tensor) -> None:
    """Torch's check of x's number of dimensions, then of its channels: a wrong channel count
    failed deep inside, on tensor sizes that do not match."""
    module._check_input_dim(x)
    if x.shape[1] != module.num_features:
        raise ValueError(f"{type(module).__name__} expected {module.num_features} channels "
                         f"(num_features), got input with {x.shape[1]}: shape {tuple(x.shape)}")


def _check_values_per_channel(module: nn.Module, x: Tensor, n: int, where: str = "") -> None:
    """Refuse, as torch's batch-norm does, to normalize n = 1 value per channel with batch
    statistics: x − μ is 0, and the output would be β whatever the input."""
    if n == 1:
        raise ValueError(f"{type(module).__name__} needs more than 1 value per channel{where} to "
                         f"normalize in training, got input of shape {tuple(x.shape)}")


class _GhostBatchNorm:
    """Batch-norm with statistics over ghost batches of `ghost_size` samples (Hoffer et al. 2017).

    A batch of B = G·ghost_size samples is viewed as G ghost batches; each is normalized by
    its own mean and variance, in one vectorized pass. The running statistics (for evaluation)
    take one momentum step per ghost batch, G a batch, as if each were a batch of its own.
    With ghost_size == B it is ordinary batch-norm.
    A torch batch-norm otherwise (same options, buffers and state_dict, `num_batches_tracked`
    included), so a model built with or without ghost batches loads the other's weights.
    """

    def __init__(self, num_features: int, ghost_size: int, eps: float = 1e-5,
                 momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, device=None, dtype=None):
        if momentum is not None and not 0 < momentum <= 1:  # None: the cumulative average
            raise ValueError(f"momentum must be in (0, 1] or None, got {momentum!r}")
        super().__init__(num_features, eps=eps, momentum=momentum, affine=affine,
                         track_running_stats=track_running_stats, device=device, dtype=dtype)
        self.ghost_size = check_count("ghost_size", ghost_size)

    def forward(self, x: Tensor) -> Tensor:
        _check_input(self, x)
        shape = [1, -1] + [1] * (x.dim() - 2)
        tracking = self.running_mean is not None
        if not self.training and tracking:
            x_hat = (x - self.running_mean.view(shape)) / torch.sqrt(
                self.running_var.view(shape) + self.eps)
        else:
            B = x.shape[0]
            if B % self.ghost_size:
                raise ValueError(f"ghost_size {self.ghost_size} must divide the batch size {B}")
            if B == 0:  # as torch's batch-norm: nothing to normalize, statistics untouched
                return self._affine(x, shape)
            _check_values_per_channel(self, x, self.ghost_size * math.prod(x.shape[2:]),
                                      f" in each ghost batch of {self.ghost_size}")
            G = B // self.ghost_size
            xg = x.reshape(G, self.ghost_size, *x.shape[1:])
            dims = [1] + list(range(3, xg.dim()))  # samples and spatial positions
            mean = xg.mean(dim=dims, keepdim=True)
            var = xg.var(dim=dims, unbiased=False, keepdim=True)
            x_hat = ((xg - mean) / torch.sqrt(var + self.eps)).reshape_as(x)
            if self.training and tracking:
                # one momentum step per ghost batch, as if each were a batch of its own (the
                # paper's Algorithm 1; its code runs batch-norm on the ghost batches in turn)
                n = xg.numel() / (G * self.num_features)
                unbiased = var.reshape(G, -1) * n / max(n - 1, 1)
                with torch.no_grad():
                    for mean_l, var_l in zip(mean.reshape(G, -1), unbiased):
                        self.num_batches_tracked += 1  # momentum=None: the cumulative average
                        m = self.momentum if self.momentum is not None else 1 / int(self.num_batches_tracked)
                        self.running_mean.lerp_(mean_l, m)
                        self.running_var.lerp_(var_l, m)
        return self._affine(x_hat, shape)

    def _affine(self, x_hat: Tensor, shape: list[int]) -> Tensor:
        return x_hat * self.weight.view(shape) + self.bias.view(shape) if self.affine else x_hat

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, ghost_size={self.ghost_size}"


class GhostBatchNorm1d(_GhostBatchNorm, nn.BatchNorm1d):
    """Ghost batch-norm for (B, C) inputs."""


class GhostBatchNorm2d(_GhostBatchNorm, nn.BatchNorm2d):
    """Ghost batch-norm for (B, C, H, W) inputs."""


class _CheapScaleBatchNorm:
    """Batch-norm whose σ in training is estimated without squares, from `_sigma(centred, dims, n)`:
    x̂ = (x − μ)/sqrt(σ̂² + ε) per channel, over the batch (and the positions, for (B, C, H, W)
    input). The running mean and σ̂² feed evaluation, which is ordinary batch-norm on them.

    σ̂² is the one square left, so the running statistics stay float32 when the module is
    cast to float16 or bfloat16: in float16, σ̂² overflows once σ̂ > 256 (256² > 65504),
    and evaluation would then map every input to β.
    """

    def _apply(self, fn, recurse=True):
        before = {name: getattr(self, name) for name in ("running_mean", "running_var")}
        super()._apply(fn, recurse)
        for name, old in before.items():
            new = getattr(self, name)
            if old is not None and new.dtype in (torch.float16, torch.bfloat16):
                setattr(self, name, old.to(new.device, torch.float32))
        return self

    def forward(self, x: Tensor) -> Tensor:
        _check_input(self, x)
        tracking = self.running_mean is not None
        if not self.training and tracking:
            if x.dtype == self.running_var.dtype:
                return super().forward(x)
            # half input, float32 statistics: torch's mixed-precision batch-norm wants all of
            # weight, bias and statistics in float32, and returns x's dtype
            weight, bias = (self.weight.float(), self.bias.float()) if self.affine else (None, None)
            return F.batch_norm(x, self.running_mean, self.running_var, weight, bias, False, 0.0,
                                self.eps)
        dims, shape = [0, *range(2, x.dim())], [1, -1] + [1] * (x.dim() - 2)
        if x.shape[0] == 0:  # as torch's batch-norm: nothing to normalize, statistics untouched
            return x * self.weight.view(shape) + self.bias.view(shape) if self.affine else x
        _check_values_per_channel(self, x, x.shape[0] * math.prod(x.shape[2:]))
        mu = x.mean(dims)
        centred = x - mu.view(shape)
        sigma = self._sigma(centred, dims, x.numel() // x.shape[1])
        if self.training and tracking:
            with torch.no_grad():
                self.num_batches_tracked += 1  # momentum=None: the cumulative average, as in torch
                m = self.momentum if self.momentum is not None else 1 / int(self.num_batches_tracked)
                stats = self.running_var.dtype
                self.running_mean.lerp_(mu.to(stats), m)
                self.running_var.lerp_(sigma.to(stats) ** 2, m)
        # ε as in torch's batch-norm, sqrt(σ̂² + ε), the evaluation's sqrt(running_var + ε) (σ̂ + ε
        # made a unit with σ̂ ~ √ε twice as large in training); hypot forms no σ̂², which
        # overflows float16 once σ̂ > 256
        x_hat = centred / torch.hypot(sigma, sigma.new_tensor(math.sqrt(self.eps))).view(shape)
        return x_hat * self.weight.view(shape) + self.bias.view(shape) if self.affine else x_hat


class _RangeBatchNorm(_CheapScaleBatchNorm):
    """Range batch-norm (Banner et al. 2018): x̂ = (x − μ) / (C(n) · range(x − μ)), n values a channel.

    C(n) = 1/(2·sqrt(2·ln n)): the expected range of n Gaussian samples is ≈ 2σ·sqrt(2 ln n),
    so C(n)·range estimates σ with no squares (8-bit friendly). The approximation runs low:
    on N(0, σ²), C(n)·E[range] is 0.83σ at n = 128 and 0.89σ at n = 4096 (measured in
    tests/test_layers_models.py), so x̂ has a std of about 1.2; γ absorbs it, and training and
    evaluation use the same σ̂.
    """

    @staticmethod
    def _sigma(centred: Tensor, dims: list[int], n: int) -> Tensor:
        value_range = centred.amax(dims) - centred.amin(dims)
        return value_range / (2 * math.sqrt(2 * math.log(max(n, 2))))


class _L1BatchNorm(_CheapScaleBatchNorm):
    """L1 batch-norm (Hoffer et al. 2018): σ̂ = sqrt(π/2) · mean|x − μ|, exact in expectation
    for Gaussian x, and no squares: computed in float16, it stays finite where the mean of
    squares (x − μ)² overflows, once |x − μ| passes 256."""

    @staticmethod
    def _sigma(centred: Tensor, dims: list[int], n: int) -> Tensor:
        return centred.abs().mean(dims) * math.sqrt(math.pi / 2)


@functools.lru_cache(maxsize=256)
def topk_constant(n: int, k: int) -> float:
    """C(n, k) = E[mean of the k largest of |z_1| … |z_n|], z_i ~ N(0, 1) independent.

    The j-th largest of n half-normal values has density n!/((j−1)!(n−j)!)·F^(n−j)·(1−F)^(j−1)·f
    with F(x) = erf(x/√2), f(x) = √(2/π)·e^(−x²/2); C is the mean of their expectations,
    integrated numerically on [0, 12] (k = n gives E|z| = √(2/π), k = 1 the expected maximum).
    """
    n, k = check_count("n", n), check_count("k", k)
    if k > n:
        raise ValueError(f"k={k} is more than the n={n} values it takes the largest of")
    x = np.linspace(0.0, 12.0, 24001)[1:]
    log_f_cdf, log_tail = np.log(special.erf(x / math.sqrt(2))), np.log(special.erfc(x / math.sqrt(2)))
    density = math.sqrt(2 / math.pi) * np.exp(-x**2 / 2)
    total = 0.0
    for j in range(1, k + 1):
        log_coef = special.gammaln(n + 1) - special.gammaln(j) - special.gammaln(n - j + 1)
        order_density = np.exp(log_coef + (n - j) * log_f_cdf + (j - 1) * log_tail) * density
        total += np.trapezoid(x * order_density, x)
    return total / k


class _TopKBatchNorm(_CheapScaleBatchNorm):
    """Top-k batch-norm (Hoffer et al. 2018, "Norm matters"): σ̂ = mean of the k largest
    |x − μ| of a channel's n values, divided by C(n, k) = `topk_constant(n, k)`, its expectation
    for N(0, 1) data, so that σ̂ ≈ σ for Gaussian x. k = 1 is the L∞ norm; the mean of a few
    top values is much less noisy than the maximum alone. No squares, no sums of n terms.
    """

    def __init__(self, num_features: int, k: int = 10, **options):
        super().__init__(num_features, **options)
        self.k = check_count("k", k)

    def _sigma(self, centred: Tensor, dims: list[int], n: int) -> Tensor:
        if self.k > n:
            raise ValueError(f"k={self.k} is more than the {n} values a channel has in this batch")
        per_channel = centred.abs().movedim(1, -1).reshape(-1, centred.shape[1])
        return per_channel.topk(self.k, dim=0).values.mean(0) / topk_constant(n, self.k)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, k={self.k}"


class RangeBatchNorm1d(_RangeBatchNorm, nn.BatchNorm1d):
    """Range batch-norm for (B, C) inputs."""


class RangeBatchNorm2d(_RangeBatchNorm, nn.BatchNorm2d):
    """Range batch-norm for (B, C, H, W) inputs; n = B·H·W values per channel."""


class L1BatchNorm1d(_L1BatchNorm, nn.BatchNorm1d):
    """L1 batch-norm for (B, C) inputs."""


class L1BatchNorm2d(_L1BatchNorm, nn.BatchNorm2d):
    """L1 batch-norm for (B, C, H, W) inputs."""


class TopKBatchNorm1d(_TopKBatchNorm, nn.BatchNorm1d):
    """Top-k batch-norm for (B, C) inputs."""


class TopKBatchNorm2d(_TopKBatchNorm, nn.BatchNorm2d):
    """Top-k batch-norm for (B, C, H, W) inputs; n = B·H·W values per channel."""


# --- fixed classifier ----------------------------------------------------------------------------

class FixedClassifier(nn.Module):
    """The last layer of "Fix your classifier" (Hoffer, Hubara, Soudry, ICLR 2018): scores
    y = α · W x/‖x‖ with W fixed and one learned scale α (the only parameter).

    W (C × N) is C rows of the Sylvester Hadamard matrix H_P of order P, the least power of
    two ≥ N, cut to the N inputs and scaled by 1/√N: entries ±1/√N, so W x needs additions
    and subtractions only; the rows are orthogonal when N = P (rows 1 … C then). Row 0 (all
    ones) is left out: features after a ReLU are ≥ 0, and that row would score class 0 highest
    for every input; for N < P the rows whose first N entries sum closest to 0 are taken.
    So C ≤ P − 1: rows of a larger H_2P cut to N ≤ P columns repeat those of H_P, row 0 among
    them (two classes with the same scores, one of them always the highest on ReLU features).
    """

    def __init__(self, in_features: int, num_classes: int, scale: float = 10.0):
        super().__init__()
        n, c = check_count("in_features", in_features), check_count("num_classes", num_classes)
        order = 1 << (n - 1).bit_length()  # P, the least power of two ≥ N
        if c > order - 1:
            enough = 1 << c.bit_length()  # the least power of two ≥ C + 1
            raise ValueError(f"FixedClassifier: {n} inputs give {order - 1} distinct Hadamard rows "
                             f"besides the all-ones one, fewer than num_classes={c}; "
                             f"use more than {enough // 2} inputs")
        H = linalg.hadamard(order)[1:, :n]
        # the C most balanced rows (least |Σ_j W_cj|, ties in order): cut to N < P columns a row
        # can be nearly all ones, e.g. row 8 of H_16 at N = 9 (sum 7), and win like row 0 would
        rows = H[np.argsort(np.abs(H.sum(1)), kind="stable")[:c]] / math.sqrt(n)
        self.register_buffer("weight", torch.tensor(rows, dtype=torch.float32))
        self.scale = nn.Parameter(torch.tensor(float(scale)))

    def forward(self, x: Tensor) -> Tensor:
        n = self.weight.shape[1]
        if check_is_tensor("x", x).dim() != 2 or x.shape[1] != n:
            raise ValueError(f"x must be (B, in_features) = (B, {n}) features, got shape "
                             f"{tuple(x.shape)}")
        return self.scale * F.normalize(x, dim=1) @ self.weight.T

    def extra_repr(self) -> str:
        return f"in_features={self.weight.shape[1]}, num_classes={self.weight.shape[0]}"
