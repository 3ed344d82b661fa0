"""Post-training quantization of a model with ACIQ (Banner, Nahshan, Soudry, NeurIPS 2019):
weights and layer inputs quantized by `analysis.quant.quantize_uniform` with ranges from
min–max (naive) or from the optimal clipping of `analysis.clipping.mse`, per-channel bit
allocation, bias correction; first and last layers at 8 bits.

    rows = ptq_table(model, calibration_images, (X_test, y_test), w_bits=4, a_bits=4)
    python -m analysis ptq --run runs/cnn-mnist5k-s0 --w-bits 4 --a-bits 4
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor, nn

from analysis.clipping.mse import (
    _channel_stats,
    _channel_view,
    _choose_prior,
    _looks_relu,
    allocate_bits,
    bias_correct,
    check_tensor,
    optimal_alpha,
)
from analysis.layers import layer_inputs as collect_inputs
from analysis.quant import check_bits, quantize_uniform

__all__ = ["clip_ranges", "PTQConfig", "quant_layers", "layer_inputs", "fold_bn_scale_",
           "quantize_model", "ptq_table", "ptq_cli", "SETTINGS", "lesson_settings", "lesson_model"]

# Sizes of lesson 03 per mode: samples for the MSE curves, the CNN trained on mnist5k, and the
# calibration set of post-training quantization.
SETTINGS: dict[str, dict] = {
    "normal": {"samples": 10**6, "width": 16, "epochs": 6, "train_size": 4000, "calibration": 500},
    "fast": {"samples": 10**5, "width": 8, "epochs": 2, "train_size": 1500, "calibration": 300},
}


def lesson_settings(fast: bool) -> dict:
    """A copy of SETTINGS["fast"] or SETTINGS["normal"]."""
    return dict(SETTINGS["fast" if fast else "normal"])


def lesson_model(settings: dict, seed: int = 0, progress: bool = False):
    """The float CNN of lesson 03 trained on mnist5k with `settings` (width, epochs,
    train_size, calibration): returns (model, history, calibration images, (X_test, y_test))."""
    from analysis import data, models
    from analysis.training import fit

    x, y = data.load("mnist5k", "train")
    test = data.load("mnist5k", "test")
    x, y = x[:settings["train_size"]], y[:settings["train_size"]]
    torch.manual_seed(seed)
    model = models.build("cnn", in_shape=tuple(x.shape[1:]), num_classes=10, width=settings["width"])
    history = fit(model, (x, y), test_data=test, epochs=settings["epochs"], lr=1e-3, lr_final=1e-4,
                  seed=seed, progress=progress)
    g = torch.Generator().manual_seed(seed)
    calibration = x[torch.randperm(len(x), generator=g)[:settings["calibration"]]]
    return model.eval(), history, calibration, test


def _device(model: nn.Module) -> torch.device:
    """Where the model's parameters are (the CPU for a model without any)."""
    return next(model.parameters(), torch.empty(0)).device


def _quantize_channels(x: Tensor, bits, lo: Tensor, hi: Tensor, dim: int) -> Tensor:
    """quantize_uniform along channel axis `dim`: channel c gets bits[c] over [lo[c], hi[c]]
    (bits: an int for all channels, or an int array; lo, hi: scalars or one per channel, on any
    device: they are moved to x's, where they are applied)."""
    lo, hi = lo.to(x.device), hi.to(x.device)
    if lo.dim() == 0:
        return quantize_uniform(x, int(bits), lo, hi)
    bits = np.broadcast_to(np.asarray(bits), (x.shape[dim],))
    out = torch.empty_like(x)
    for m in np.unique(bits):
        idx = torch.from_numpy(np.flatnonzero(bits == m)).to(x.device)
        xs = x.index_select(dim, idx)
        out.index_copy_(dim, idx, quantize_uniform(xs, int(m), _channel_view(lo[idx], xs, dim),
                                                  _channel_view(hi[idx], xs, dim)))
    return out


def clip_ranges(x: Tensor, bits: int, method: str = "aciq", dim: int | None = None,
                allocate: bool = False, relu: bool | None = None, exact: bool = False):
    """Bits and clipping range [lo, hi] of `x`, per tensor (dim=None) or per channel along `dim`.

    method "minmax": [min, max] (a ReLU tensor: `relu_range(max)`, so 0 stays a level);
    "aciq": [μ − α, μ + α] with α = α*(M)·b (or σ, whichever prior fits better by KS),
    never wider than [min, max]; allocate=True (per channel): bits per channel by
    `allocate_bits` with average `bits`. Returns (bits: int or int array, lo, hi: tensors in
    x's dtype, on x's device; the statistics are computed in float64 on the CPU).
    """
    if method not in ("minmax", "aciq"):
        raise ValueError(f"method must be 'minmax' or 'aciq', got {method!r}")
    if allocate and dim is None:
        raise ValueError("bit allocation is per channel: give dim")
    if not allocate:  # with allocation, `bits` is an average budget, checked by allocate_bits
        bits = check_bits(bits)
    x = check_tensor(x)
    if dim is not None and not -x.dim() <= dim < x.dim():
        raise ValueError(f"dim must be None or a channel axis of x (shape {tuple(x.shape)}), got {dim}")
    device, x = x.device, x.detach().cpu()  # numpy and scipy (KS, bit allocation) need the CPU
    relu = _looks_relu(x) if relu is None else relu
    st = _channel_stats(x, dim, relu)
    # a constant tensor (say a zero-initialized layer) has no prior to choose: its α is capped
    # to [min, max] = [c, c] whichever prior, as with min–max
    constant = bool(x.min() == x.max())
    scale_prior = _choose_prior(x, relu, st) if method == "aciq" and not constant else "laplace"
    scale = st["b"] if scale_prior == "laplace" else st["sigma"]
    tiny = max(scale.max().item(), 1e-12) * 1e-6  # dead channels (all zero) get the fewest bits
    ch_bits = (allocate_bits(scale.clamp_min(tiny).numpy(), bits, max_bits=max(8, bits)) if allocate
               else np.full(scale.numel(), bits))
    if method == "minmax":
        alpha = st["max"] if relu else None
    else:
        a_star = [optimal_alpha(int(m), scale_prior, exact, relu) for m in ch_bits]
        alpha = torch.tensor(a_star, dtype=torch.float64) * scale
        cap = st["max"] if relu else torch.maximum(st["max"] - st["mu"], st["mu"] - st["min"])
        alpha = torch.minimum(alpha, cap)
    if relu:
        alpha = alpha.clamp_min(tiny)
        delta = 2 * alpha / (2.0 ** (torch.from_numpy(ch_bits).double() + 1) - 1)
        lo, hi = -delta / 2, alpha  # relu_range, vectorized
    elif method == "minmax":
        lo, hi = st["min"], st["max"]
    else:
        lo, hi = torch.maximum(st["mu"] - alpha, st["min"]), torch.minimum(st["mu"] + alpha, st["max"])
    # a constant channel's [c, c] widened as in `minmax_range`, in x's dtype: c + tiny in
    # float64 would round back to c in float32
    lo, hi = lo.to(x.dtype), hi.to(x.dtype)
    hi = torch.where(hi > lo, hi, lo + torch.finfo(x.dtype).eps * lo.abs().clamp(min=1))
    lo, hi = lo.to(device), hi.to(device)
    if dim is None:
        return int(ch_bits[0]), lo[0], hi[0]
    return ch_bits, lo, hi


@dataclass(frozen=True)
class PTQConfig:
    """One post-training method: bits, clipping, bit allocation, bias correction."""

    w_bits: int = 4
    a_bits: int = 4
    method: str = "minmax"          # "minmax" (naive) or "aciq"
    allocate: str = ""              # per-channel bit allocation of "w", "a" or "wa" (both)
    bias_correction: bool = False   # per-channel mean and std of the weights restored
    end_bits: int = 8               # first and last layer (weights and inputs)
    exact: bool = False             # α* of the exact MSE instead of the paper's approximation
    fold_bn: bool = True            # batch-norm scales folded into the weights first
    per_channel: bool = True        # weights: one range per output channel (else per tensor)


class _InputQuantizer:
    """Forward pre-hook: quantize the layer's input with fixed (calibrated) ranges."""

    def __init__(self, bits, lo: Tensor, hi: Tensor, dim: int | None):
        self.bits, self.lo, self.hi, self.dim = bits, lo.float(), hi.float(), dim

    def __call__(self, module, args):
        (x, *rest) = args
        return (_quantize_channels(x, self.bits, self.lo, self.hi, self.dim or 0), *rest)


def quant_layers(model: nn.Module) -> list[nn.Module]:
    """The layers PTQ quantizes, in forward order: every nn.Linear and nn.Conv2d."""
    return [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]


@torch.no_grad()
def layer_inputs(model: nn.Module, x: Tensor, batch_size: int = 100) -> list[Tensor]:
    """The input of every `quant_layers` layer on the calibration data x (eval mode, on the
    model's device)."""
    if len(x) == 0:
        raise ValueError("the calibration data is empty: give at least one sample")
    layers = dict(enumerate(quant_layers(model)))
    inputs = collect_inputs(model, layers, x.to(_device(model)), batch_size)
    return [inputs[i] for i in range(len(layers))]


@torch.no_grad()
def fold_bn_scale_(model: nn.Module) -> nn.Module:
    """Move the scale of every batch-norm that directly follows a Linear/Conv2d (possibly
    through max-pooling or flattening), one feature per output channel, into that layer's
    weights, in place, without changing the function: k_c = |γ_c|/sqrt(var_c + ε),
    W_c ← k_c·W_c, and the batch-norm's running mean and std multiplied by k_c too
    (var_c ← k_c²(var_c + ε) − ε). Then each weight channel carries the scale its output
    really has, which is what per-channel clipping and bit allocation compare (k_c > 0
    commutes with max-pooling and ReLU). A batch-norm over flattened C·H·W features is left
    as it is."""
    pending = None
    for mod in model.modules():
        if next(mod.children(), None) is not None:
            continue  # containers: their leaves come next, in order (nn.Sequential)
        if isinstance(mod, (nn.Linear, nn.Conv2d)):
            pending = mod
        elif isinstance(mod, nn.modules.batchnorm._BatchNorm) and pending is not None \
                and mod.affine and mod.running_var is not None \
                and mod.num_features == pending.weight.shape[0]:
            k = mod.weight.abs() / torch.sqrt(mod.running_var + mod.eps)
            k = torch.where(k > 0, k, torch.ones_like(k))
            pending.weight.mul_(_channel_view(k, pending.weight, 0))
            if pending.bias is not None:
                pending.bias.mul_(k)
            mod.running_mean.mul_(k)
            mod.running_var.copy_(k**2 * (mod.running_var + mod.eps) - mod.eps)
            pending = None
        elif not isinstance(mod, (nn.MaxPool1d, nn.MaxPool2d, nn.Flatten, nn.Identity, nn.Dropout)):
            pending = None
    return model


@torch.no_grad()
def quantize_model(model: nn.Module, calibration: Tensor, cfg: PTQConfig,
                   inputs: list[Tensor] | None = None) -> nn.Module:
    """A quantized copy of `model`: weights replaced by their quantized values (per output
    channel with `cfg.per_channel` or weight bit allocation, else per tensor), inputs of every
    Linear/Conv2d quantized by a forward pre-hook with ranges calibrated on `calibration` (per
    tensor, or per channel with bit allocation); the first and last layers at `cfg.end_bits`.
    The float model is left untouched; the copy stays on its device."""
    check_bits(cfg.w_bits), check_bits(cfg.a_bits), check_bits(cfg.end_bits)
    if not set(cfg.allocate) <= {"w", "a"}:
        raise ValueError(f"allocate must be '', 'w', 'a' or 'wa', got {cfg.allocate!r}")
    inputs = layer_inputs(model, calibration) if inputs is None else inputs
    q = copy.deepcopy(model).eval()
    if cfg.fold_bn:
        fold_bn_scale_(q)
    layers = quant_layers(q)
    if len(inputs) != len(layers):
        raise ValueError(f"one calibration input per Linear/Conv2d layer: got {len(inputs)} for "
                         f"{len(layers)} layers (see layer_inputs)")
    for i, (layer, x_in) in enumerate(zip(layers, inputs)):
        end = i in (0, len(layers) - 1)
        wb, ab = (cfg.end_bits, cfg.end_bits) if end else (cfg.w_bits, cfg.a_bits)
        alloc_w, alloc_a = ("w" in cfg.allocate and not end), ("a" in cfg.allocate and not end)
        w = layer.weight.detach()
        w_dim = 0 if cfg.per_channel or alloc_w else None
        bits, lo, hi = clip_ranges(w, wb, cfg.method, dim=w_dim, allocate=alloc_w, relu=False,
                                   exact=cfg.exact)
        w_q = _quantize_channels(w, bits, lo, hi, 0)
        if cfg.bias_correction and not end:
            w_q = bias_correct(w_q, w, scale=True)
        layer.weight.copy_(w_q)
        a_dim = 1 if alloc_a else None
        bits, lo, hi = clip_ranges(x_in, ab, cfg.method, dim=a_dim, allocate=alloc_a, exact=cfg.exact)
        layer.register_forward_pre_hook(_InputQuantizer(bits, lo, hi, a_dim))
    return q


def ptq_table(model: nn.Module, calibration: Tensor, test: tuple[Tensor, Tensor], w_bits: int = 4,
              a_bits: int = 4, exact: bool = False, per_channel: bool = False,
              allocate: str = "w") -> list[dict]:
    """Test accuracy of float, W8A8 naive, and W{w}A{a}: naive min–max, + ACIQ clipping,
    + bit allocation (of `allocate`: "w", "a" or "wa"), + bias correction (each row adds one
    method to the one above). per_channel: weights' ranges per output channel (bit
    allocation is per channel in any case)."""
    from analysis.training import evaluate

    inputs = layer_inputs(model, calibration)
    base = PTQConfig(w_bits, a_bits, exact=exact, per_channel=per_channel)
    aciq = replace(base, method="aciq")
    rows = [("float", None),
            ("W8A8 naive", replace(base, w_bits=8, a_bits=8)),
            (f"W{w_bits}A{a_bits} naive", base),
            ("+ ACIQ clipping", aciq),
            ("+ bit allocation", replace(aciq, allocate=allocate)),
            ("+ bias correction", replace(aciq, allocate=allocate, bias_correction=True))]
    out = []
    for name, cfg in rows:
        qm = model if cfg is None else quantize_model(model, calibration, cfg, inputs)
        _, error = evaluate(qm, test, device=_device(model))
        out.append({"method": name, "accuracy": 1 - error})
    return out


def ptq_cli(argv: list[str]) -> int:
    """python -m analysis ptq --run RUN --w-bits 4 --a-bits 4: the post-training accuracy table."""
    import argparse
    import json
    import sys
    from pathlib import Path

    from analysis import data, models
    from analysis.checks import count_arg, json_path_arg
    from analysis.partial import write_json_atomic
    from analysis.training import CHECKPOINT, load_checkpoint

    p = argparse.ArgumentParser(prog="python -m analysis ptq",
                                description="Post-training quantization (ACIQ) of a run written by "
                                            "`python -m analysis train`: accuracy per method.")
    p.add_argument("--run", required=True, help="run folder (config.json, checkpoint.pt)")
    p.add_argument("--w-bits", type=int, default=4, help="bits of the weights (default %(default)s)")
    p.add_argument("--a-bits", type=int, default=4, help="bits of the activations (default %(default)s)")
    p.add_argument("--calibration", type=count_arg(), default=1000,
                   help="training images for activation statistics")
    p.add_argument("--exact", action="store_true", help="α* of the exact MSE instead of the paper's")
    p.add_argument("--per-channel", action="store_true", help="weights' ranges per output channel")
    p.add_argument("--allocate", default="w", choices=["w", "a", "wa"],
                   help="bit allocation of weights (w), activations (a) or both")
    p.add_argument("--json", type=json_path_arg, default=None,
                   help="also write the table as JSON here (a file in an existing folder)")
    a = p.parse_args(argv)
    run = Path(a.run)
    try:
        check_bits(a.w_bits), check_bits(a.a_bits)
        config = json.loads((run / "config.json").read_text())
        options = {k: tuple(v) if isinstance(v, list) else v for k, v in config["model_options"].items()}
        model = models.build(config["model"], **options)
        model.load_state_dict(load_checkpoint(run / CHECKPOINT)["model"])
        x_train, _ = data.load(config["dataset"], "train")
        test = data.load(config["dataset"], "test")
    except (ValueError, FileNotFoundError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    g = torch.Generator().manual_seed(0)
    calibration = x_train[torch.randperm(len(x_train), generator=g)[:a.calibration]]
    rows = ptq_table(model, calibration, test, a.w_bits, a.a_bits, a.exact, a.per_channel, a.allocate)
    print(f"{config['model']} on {config['dataset']} ({run}); calibration: {len(calibration)} images; "
          f"{len(test[0])} test images; weights per {'channel' if a.per_channel else 'tensor'}; "
          f"alpha* {'exact' if a.exact else 'of the paper'}; bit allocation: {a.allocate}")
    print(f"{'method':<22}{'accuracy':>9}")
    for r in rows:
        print(f"{r['method']:<22}{100 * r['accuracy']:>8.2f}%")
    if a.json:
        options = {k: v for k, v in vars(a).items() if k != "run"}
        write_json_atomic(Path(a.json), {"run": str(run), **options, "rows": rows}, indent=1)
    return 0
