"""Packed inference of a trained binarized MLP (the bnn-mlp of analysis.models).

Hidden unit j of layer ℓ computes y_j = Σ_i sign(W_ji)·x_i, then BN and sign:
    x'_j = sign(γ_j (y_j − μ_j)/σ_j + β_j) = sign(y_j − τ_j),  τ_j = μ_j − β_j σ_j / γ_j,
the comparison flipped when γ_j < 0 (paper). With sign(0) = +1 the next layer's bit is
    bit_j = [s_j·y_j ≥ t_j],  s_j = ±1,
and, y_j being an integer for binary inputs, t_j is an integer. Rather than trusting τ_j in
real arithmetic, t_j is found by bisection on the BN module itself (its float32 map is
monotone in y): the packed network then reproduces the torch model's float decisions
exactly, ties at BN(y) = 0 included (they give bit 1, as sign(0) = +1).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from analysis.checks import check_is_tensor
from analysis.xnor.gpu import GPU_KERNELS, baseline_matmul, threshold_pack
from analysis.xnor.packing import pack_bits, unpack_bits, xnor_matmul


@dataclass
class PackedLayer:
    """One binarized layer in packed form: sign(W) packed along its K inputs.

    weight_bits (N, ⌈K/64⌉) int64; for hidden layers the threshold rule bit_j = s_j·y_j ≥ t_j
    with s (N,) int32 ∈ {−1, +1} and t (N,): float32 after the first (real-input) layer,
    int32 after the others; s = t = None for the output layer (its batch-norm is `head`).
    """

    weight_bits: Tensor
    k: int
    s: Tensor | None = None
    t: Tensor | None = None

    def to(self, device: torch.device | str) -> PackedLayer:
        s = None if self.s is None else self.s.to(device)
        t = None if self.t is None else self.t.to(device)
        return PackedLayer(self.weight_bits.to(device), self.k, s, t)


def _float_key(x: Tensor) -> Tensor:
    """Order-preserving map float32 → int64 (an involution on the int32 bit pattern)."""
    b = x.to(torch.float32).contiguous().view(torch.int32).to(torch.int64)
    return torch.where(b >= 0, b, b ^ 0x7FFFFFFF)


def _key_float(key: Tensor) -> Tensor:
    b = torch.where(key >= 0, key, key ^ 0x7FFFFFFF).to(torch.int32)
    return b.view(torch.float32)


def _key_integer(key: Tensor) -> Tensor:
    return key.to(torch.float32)


@torch.no_grad()
def fold_bn_sign(bn: nn.Module, k: int | None) -> tuple[Tensor, Tensor]:
    """Fold batch-norm + sign into a threshold per unit: sign(BN(y)) = +1 ⇔ s·y ≥ t.

    `bn` is evaluated as is (eval mode, on a 1-row batch), so the rule reproduces its float32
    arithmetic, including BN(y) = 0 → +1. k: y is an integer in [−k, k] (binary input) and t
    is int32; k=None: y is any float32 (real input) and t is float32 (±inf for units whose
    sign never changes). Returns (s, t), s = +1 where BN increases with y, −1 where it
    decreases (γ < 0), +1 where it is constant.

    A unit with the same sign at both ends of the range takes its sign at y = 0: with γ = 0
    it is sign(β) for every y a layer produces, but a batch-norm that computes
    (y − μ)/σ·γ + β (GhostBatchNorm1d, say) gives NaN = ∞·0 at the ends y = ±3.4e38 when σ < 1.
    """
    if hasattr(bn, "running_mean") and bn.running_mean is None:
        raise ValueError(
            f"fold_bn_sign needs a batch-norm with running statistics, got {bn}: without them "
            "(track_running_stats=False) it normalizes every batch by that batch's own mean and "
            "variance, even in eval mode, so sign(BN(y)) has no fixed threshold; build it with "
            "track_running_stats=True (the default) and train it")
    n = bn.num_features
    device = bn.running_mean.device if getattr(bn, "running_mean", None) is not None else "cpu"
    if k is None:
        big = torch.tensor(torch.finfo(torch.float32).max)
        lo0, hi0 = _float_key(-big).item(), _float_key(big).item()
        value = _key_float
    else:
        lo0, hi0 = -int(k), int(k)
        value = _key_integer

    def positive(key: Tensor) -> Tensor:
        return bn(value(key).to(device).view(1, n)).view(n).cpu() >= 0

    lo = torch.full((n,), lo0, dtype=torch.int64)
    hi = torch.full((n,), hi0, dtype=torch.int64)
    p_lo, p_hi = positive(lo), positive(hi)
    p_zero = positive(torch.zeros(n, dtype=torch.int64))  # key 0 is y = +0.0 (and 0 for k)
    rising = p_hi & ~p_lo  # invariant: BN(lo) < 0 ≤ BN(hi)
    falling = p_lo & ~p_hi  # invariant: BN(lo) ≥ 0 > BN(hi)
    active = rising | falling
    while bool(((hi - lo > 1) & active).any()):
        mid = torch.div(lo + hi, 2, rounding_mode="floor")
        p = positive(mid)
        go_up = torch.where(rising, ~p, p)  # the crossing lies above mid
        lo = torch.where(active & go_up, mid, lo)
        hi = torch.where(active & ~go_up, mid, hi)
    s = torch.where(falling, -1, 1).to(torch.int32)
    if k is None:
        inf = torch.tensor(float("inf"))
        t = torch.where(rising, value(hi), torch.where(falling, -value(lo), torch.zeros(())))
        t = torch.where(active, t, torch.where(p_zero, -inf, inf)).to(torch.float32)
    else:
        t = torch.where(rising, hi, torch.where(falling, -lo, torch.zeros((), dtype=torch.int64)))
        t = torch.where(active, t, torch.where(p_zero, torch.tensor(-k), torch.tensor(k + 1)))
        t = t.to(torch.int32)
    return s, t


def _binary_layers(model: nn.Module) -> list[tuple[nn.Module, nn.Module]]:
    """(QuantLinear, batch-norm) pairs of a bnn-mlp, checked; Flatten/Dropout/Identity skipped."""
    from analysis.layers import QuantLinear
    from analysis.quant import SignQuantizer

    modules = [m for m in (model if isinstance(model, nn.Sequential) else [model])
               if not isinstance(m, nn.Flatten | nn.Dropout | nn.Identity)]
    if len(modules) < 2 or len(modules) % 2:
        raise ValueError("export_packed needs a bnn-mlp: Linear, BatchNorm pairs (models.build"
                         f"('bnn-mlp')); got {len(modules)} layers")
    pairs = list(zip(modules[0::2], modules[1::2]))
    for i, (lin, bn) in enumerate(pairs):
        if not isinstance(lin, QuantLinear) or not isinstance(lin.kernel_quantizer, SignQuantizer):
            raise ValueError(f"layer {2 * i}: expected a BinarizedLinear (sign kernel), got {lin}")
        want_input = None if i == 0 else SignQuantizer
        got_input = lin.input_quantizer
        if (got_input is None) != (want_input is None) or (
                want_input is not None and not isinstance(got_input, SignQuantizer)):
            where = "the first layer must take real input" if i == 0 else "must binarize its input"
            raise ValueError(f"layer {2 * i}: {where}; got input_quantizer={got_input}")
        if lin.bias is not None:
            raise ValueError(f"layer {2 * i} has a bias: export_packed needs bias=False layers")
        if not hasattr(bn, "num_features") or not hasattr(bn, "running_mean"):
            raise ValueError(f"layer {2 * i + 1}: expected a batch-norm after the linear, got {bn}")
    return pairs


@torch.no_grad()
def export_packed(model: nn.Module) -> PackedBinaryMLP:
    """Packed form of a trained bnn-mlp (see `PackedBinaryMLP`); the model is not changed.

    The thresholds are folded by running the model's batch-norms where they are, so they
    reproduce that device's float arithmetic bit for bit (a GPU's batch-norm may round a
    value next to a threshold the other way than the CPU's): export a model on the device
    its packed form will run on, `export_packed(model.cuda()).to("cuda")`.
    """
    pairs = _binary_layers(model)
    layers = []
    for i, (lin, bn) in enumerate(pairs):
        bn_eval = copy.deepcopy(bn).eval()
        w = lin.kernel_quantizer(lin.weight.detach().cpu())
        k = w.shape[1]
        last = i == len(pairs) - 1
        s, t = (None, None) if last else fold_bn_sign(bn_eval, None if i == 0 else k)
        layers.append(PackedLayer(pack_bits(w), k, s, t))
    head = copy.deepcopy(pairs[-1][1]).cpu().eval()
    return PackedBinaryMLP(layers, head)


@dataclass
class PackedBinaryMLP:
    """A binarized MLP for inference only: packed ±1 weights, thresholds (integers after the
    first layer), XNOR layers.

    Layer 1: y = x · sign(W₁)ᵀ in float32 (real input), bits = [s·y ≥ t].
    Layers 2..L−1: y = K − 2·popcount(x XOR w) (`xnor_matmul`), bits = [s·y ≥ t].
    Layer L: scores = BN(y) with the model's own last batch-norm; prediction = argmax.
    On CUDA tensors the binary layers run kernels/xnor_gemm.cu (kernel="xnor", the kernel
    `gpu_kernel` picks; "popc" or "tc" to choose) or the unoptimized float kernel on ±1
    floats (kernel="baseline"); on the CPU the reference.
    """

    layers: list[PackedLayer]
    head: nn.Module
    _unpacked: dict = field(default_factory=dict, repr=False)

    def to(self, device: torch.device | str) -> PackedBinaryMLP:
        return PackedBinaryMLP([layer.to(device) for layer in self.layers],
                               copy.deepcopy(self.head).to(device))

    @property
    def device(self) -> torch.device:
        return self.layers[0].weight_bits.device

    @torch.no_grad()
    def scores(self, x: Tensor, kernel: str = "xnor") -> Tensor:
        """Class scores (B, classes) float32 for a batch x (B, ...) of real inputs."""
        if kernel not in ("xnor", "baseline", *GPU_KERNELS):
            raise ValueError(f"kernel must be 'xnor', 'popc', 'tc' or 'baseline', got {kernel!r}")
        xnor = kernel != "baseline"
        gemm = "auto" if kernel == "xnor" else kernel
        x = check_is_tensor("x", x)
        x = x.reshape(x.shape[0], math.prod(x.shape[1:])).to(self.device, torch.float32)  # B may be 0
        first = self.layers[0]
        if x.shape[1] != first.k:
            raise ValueError(f"the model takes {first.k} input features, got {x.shape[1]}")
        y = torch.nn.functional.linear(x, self._weights_pm(first))
        if first.s is None:  # depth 0: the first layer is the last
            return self.head(y)
        h = torch.where(first.s * y >= first.t, 1.0, -1.0)
        if xnor:
            h = pack_bits(h)
        for layer in self.layers[1:]:
            if xnor:
                y = xnor_matmul(h, layer.weight_bits, layer.k, kernel=gemm)
            else:
                y = baseline_matmul(h, self._weights_pm(layer, transposed=True)).to(torch.int32)
            if layer.s is None:
                return self.head(y.to(torch.float32))
            if xnor:
                h = threshold_pack(y, layer.s, layer.t)
            else:
                h = torch.where(layer.s * y >= layer.t, 1.0, -1.0)
        raise ValueError("a packed MLP needs at least two layers")

    def _weights_pm(self, layer: PackedLayer, transposed: bool = False) -> Tensor:
        """±1 float32 weights (N, K), or (K, N) contiguous if `transposed`, unpacked once per
        layer and device (a cache for the float paths, not counted in `nbytes`)."""
        key = (id(layer), str(layer.weight_bits.device), transposed)
        if key not in self._unpacked:
            w = unpack_bits(layer.weight_bits, layer.k)
            self._unpacked[key] = w.T.contiguous() if transposed else w
        return self._unpacked[key]

    def predict(self, x: Tensor, kernel: str = "xnor") -> Tensor:
        """Predicted classes (B,) int64: argmax of `scores` (the first maximum on ties)."""
        return self.scores(x, kernel).argmax(dim=1)

    def nbytes(self) -> dict[str, int]:
        """Bytes stored: packed weights, thresholds (s as int8, t), and the last batch-norm."""
        weights = sum(layer.weight_bits.numel() * 8 for layer in self.layers)
        thresholds = sum(layer.s.numel() * 1 + layer.t.numel() * 4
                         for layer in self.layers if layer.s is not None)
        head = sum(v.numel() * 4 for v in list(self.head.parameters()) + list(self.head.buffers())
                   if v.is_floating_point())
        return {"weights": weights, "thresholds": thresholds, "head": head,
                "total": weights + thresholds + head}


def size_report(model: nn.Module, packed: PackedBinaryMLP) -> dict[str, float]:
    """Bytes of the float32 model against its packed form (weights alone and in total)."""
    float_weights = sum(lin.weight.numel() * 4 for lin, _ in _binary_layers(model))
    float_total = sum(t.numel() * 4 for t in list(model.parameters()) + list(model.buffers())
                      if t.is_floating_point())
    packed_bytes = packed.nbytes()
    return {
        "float_weights": float_weights,
        "packed_weights": packed_bytes["weights"],
        "weights_ratio": float_weights / packed_bytes["weights"],
        "float_total": float_total,
        "packed_total": packed_bytes["total"],
        "total_ratio": float_total / packed_bytes["total"],
    }
