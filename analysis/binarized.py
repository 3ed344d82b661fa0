"""Binarized networks (Hubara, Courbariaux, Soudry, El-Yaniv, Bengio, NIPS 2016): what lesson 01 measures.

- `sign_ste_at(x)`: sign(x), hard-tanh(x) and the straight-through gradient 1{|x| ≤ 1} at one
  point, computed by autograd through `analysis.quant.sign_ste` (the code the layers run).
- `latent_weights(model)`, `binarized_layer_inputs(model, X)`: the real-valued latent weights W
  that the optimizer updates, and the real values a that the next layer binarizes to sign(a).
- `run_time_memory(model)`: per layer, bits per weight and bytes stored at run time, from
  `analysis.models.model_size_bytes`.
- `train_model(...)`, `width_sweep(...)`: the lesson's runs on `mnist5k` (the sweep is cached
  in memory, so re-running a lesson cell is instant).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from analysis import data, models
from analysis.checks import check_count
from analysis.layers import layer_inputs
from analysis.quant import sign_ste
from analysis.training import History, fit

__all__ = [
    "SETTINGS",
    "TRAINING",
    "lesson_settings",
    "sign_ste_curves",
    "sign_ste_at",
    "latent_weights",
    "binarized_layer_inputs",
    "binarization_stats",
    "run_time_memory",
    "format_memory",
    "memory_ratio",
    "train_model",
    "width_sweep",
]

# Lesson 01's experiment: "normal" is sized for a laptop CPU (a few minutes), "fast" (LESSONS_FAST=1)
# for CI (the whole lesson in under two minutes on 2 cores). The paper's MNIST MLP: 3 × 4096 units.
SETTINGS: dict[str, dict] = {
    "normal": dict(width=512, depth=3, epochs=8, n_train=None, sweep_widths=(16, 32, 64, 128, 256, 512),
                   sweep_depth=2, sweep_epochs=2, sweep_n_train=None),
    "fast": dict(width=128, depth=2, epochs=2, n_train=1000, sweep_widths=(16, 64, 256),
                 sweep_depth=1, sweep_epochs=1, sweep_n_train=1000),
}

# Optimizer recipe per model: the BNN paper's Adam with exponential decay and squared hinge loss;
# the float twin with its usual cross-entropy.
TRAINING: dict[str, dict] = {
    "bnn-mlp": dict(optimizer="adam", lr=3e-3, lr_final=3e-4, loss="squared_hinge"),
    "mlp": dict(optimizer="adam", lr=1e-3, lr_final=1e-4, loss="cross_entropy"),
}


def lesson_settings(fast: bool) -> dict:
    """The lesson's sizes (width, depth, epochs, n_train and the width sweep's) for the mode."""
    return dict(SETTINGS["fast" if fast else "normal"])


def sign_ste_curves(x: Tensor) -> dict[str, Tensor]:
    """Along x: q = sign(x) (sign(0) = +1), hard-tanh(x) = clip(x, −1, 1), and the gradient ∂q/∂x
    that backward really returns through `quant.sign_ste`: the STE 1{|x| ≤ 1}.

    The true derivative of sign is 0 everywhere but at 0: used as is, it would stop all learning.
    """
    t = x.detach().clone().float().requires_grad_(True)
    q = sign_ste(t)
    q.sum().backward()
    return {"x": t.detach(), "sign": q.detach(), "hardtanh": F.hardtanh(t.detach()),
            "ste_gradient": t.grad.detach()}


def sign_ste_at(x: float) -> dict[str, float]:
    """`sign_ste_curves` at one point x, as floats: x, sign, hardtanh, ste_gradient."""
    return {k: float(v) for k, v in sign_ste_curves(torch.tensor([float(x)])).items()}


def _quantized_layers(model: nn.Module, attr: str) -> dict[str, nn.Module]:
    return {name: m for name, m in model.named_modules() if getattr(m, attr, None) is not None}


def latent_weights(model: nn.Module) -> dict[str, Tensor]:
    """Real-valued latent weights W (flattened copies) of every layer with a kernel quantizer.

    At run time the layer uses sign(W); training updates W and clips it to [−1, 1].
    """
    return {name: m.weight.detach().flatten().clone()
            for name, m in _quantized_layers(model, "kernel_quantizer").items()}


@torch.no_grad()
def binarized_layer_inputs(model: nn.Module, X: Tensor, batch_size: int = 500) -> dict[str, Tensor]:
    """Real inputs a (flattened) of every layer with an input quantizer, before it binarizes them.

    In the BNN MLP these are the batch-norm outputs; the layer computes with sign(a), and
    backward passes the gradient only where |a| ≤ 1. Runs the model in eval mode on X.
    """
    # checked here: torch's errors (an empty torch.cat, 'expected m1 and m2 to have the same
    # dtype', flatten() of a numpy array) do not say which argument is wrong
    if not isinstance(X, Tensor):
        raise ValueError(f"X must be a torch.Tensor of inputs, got {type(X).__name__} "
                         "(convert with torch.as_tensor)")
    if X.ndim == 0 or len(X) == 0:
        raise ValueError(f"X must hold at least one input, got shape {tuple(X.shape)}")
    dtype = next(model.parameters(), X).dtype
    if X.dtype != dtype:
        raise ValueError(f"X is {X.dtype} but the model's parameters are {dtype}; convert with "
                         f"X.to({dtype})")
    batch_size = check_count("batch_size", batch_size)
    inputs = layer_inputs(model, _quantized_layers(model, "input_quantizer"), X, batch_size)
    return {name: a.flatten() for name, a in inputs.items()}


def binarization_stats(weights: Tensor, inputs: Tensor | None = None) -> dict[str, float]:
    """Summary of one layer: latent weights W and the real inputs a it binarizes.

    clipped_weights: fraction with |W| = 1 (held at the clip bound); positive_weights: fraction
    with sign(W) = +1; ste_pass: fraction with |a| ≤ 1 (where the STE lets the gradient through);
    positive_inputs: fraction with sign(a) = +1. Without inputs (a first layer on real pixels)
    only the weight fractions.
    """
    w = weights.flatten().float()
    if w.numel() == 0 or (inputs is not None and inputs.numel() == 0):
        raise ValueError("binarization_stats needs non-empty weights (and inputs, when given)")
    stats = {"clipped_weights": float((w.abs() >= 1).float().mean()),
             "positive_weights": float((w >= 0).float().mean())}
    if inputs is not None:
        a = inputs.flatten().float()
        stats["ste_pass"] = float((a.abs() <= 1).float().mean())
        stats["positive_inputs"] = float((a >= 0).float().mean())
    return stats


def run_time_memory(model: nn.Module) -> list[dict]:
    """What the model stores at run time, per layer with tensors, then a "total" row.

    Each row: layer, kind, values (parameters and buffers), bits_per_weight (the kernel
    quantizer's bits: 1 binarized, k for a k-bit QNN; 32 for float), float_bytes (all float32),
    run_time_bytes (kernels at their bit width), and ratio = float_bytes / run_time_bytes.
    """
    rows = []
    for name, m in model.named_modules():
        if any(True for _ in m.children()):
            continue  # containers: their leaves are counted
        tensors = [t for t in list(m.parameters(recurse=False)) + list(m.buffers(recurse=False))
                   if t.is_floating_point()]
        if not tensors:
            continue
        size = models.model_size_bytes(m)
        kq = getattr(m, "kernel_quantizer", None)
        rows.append({"layer": name, "kind": type(m).__name__, "values": sum(t.numel() for t in tensors),
                     "bits_per_weight": getattr(kq, "bits", 32) if kq is not None else 32,
                     "float_bytes": size["float"], "run_time_bytes": size["deployed"]})
    if not rows:
        raise ValueError(f"{type(model).__name__} has no float parameters or buffers: nothing to count")
    total = models.model_size_bytes(model)
    rows.append({"layer": "total", "kind": "", "values": sum(r["values"] for r in rows),
                 "bits_per_weight": None, "float_bytes": total["float"],
                 "run_time_bytes": total["deployed"]})
    for r in rows:
        r["ratio"] = r["float_bytes"] / r["run_time_bytes"]
    return rows


def format_memory(rows: list[dict]) -> str:
    """`run_time_memory` rows as a text table (bytes, and the float32 / run-time ratio)."""
    wl = max(6, *(len(r["layer"]) for r in rows))  # columns as wide as the longest name
    wk = max(12, *(len(r["kind"]) for r in rows))
    lines = [f"{'layer':<{wl}} {'kind':<{wk}} {'values':>11} {'bits/weight':>11} {'float32 B':>12} "
             f"{'run-time B':>12} {'ratio':>6}"]
    for r in rows:
        bits = "" if r["bits_per_weight"] is None else str(r["bits_per_weight"])
        lines.append(f"{r['layer']:<{wl}} {r['kind']:<{wk}} {r['values']:>11,} {bits:>11} "
                     f"{r['float_bytes']:>12,} {r['run_time_bytes']:>12,} {r['ratio']:>5.1f}x")
    return "\n".join(lines)


def memory_ratio(model: nn.Module, binarized_only: bool = False) -> float:
    """float32 bytes / run-time bytes, of the whole model or only of its binarized layers' kernels."""
    rows = run_time_memory(model)[:-1]
    if binarized_only:
        rows = [r for r in rows if r["bits_per_weight"] == 1]
        if not rows:
            raise ValueError("the model has no binarized layers (no kernel quantizer with bits=1)")
    return sum(r["float_bytes"] for r in rows) / sum(r["run_time_bytes"] for r in rows)


def _subset(split: tuple[Tensor, Tensor], n: int | None, dataset: str) -> tuple[Tensor, Tensor]:
    if n is None:
        return split
    n = check_count("n_train", n)
    if n > len(split[0]):  # slicing would train on fewer examples than asked, without a word
        raise ValueError(f"n_train={n} is more than the {len(split[0])} training examples of "
                         f"{dataset!r}; use n_train=None for all of them")
    return split[0][:n], split[1][:n]


def train_model(name: str, *, width: int, depth: int, epochs: int, dataset: str = "mnist5k",
                n_train: int | None = None, seed: int = 0, progress: bool = False
                ) -> tuple[nn.Module, History]:
    """Build `name` ("bnn-mlp" or "mlp") and train it with its TRAINING recipe; return (model, history).

    n_train: use only the first n training examples (the test split is always whole).
    """
    if name not in TRAINING:
        raise ValueError(f"train_model knows {', '.join(TRAINING)}, got {name!r}")
    train = _subset(data.load(dataset, "train"), n_train, dataset)
    test = data.load(dataset, "test")
    torch.manual_seed(seed)
    model = models.build(name, width=width, depth=depth, in_shape=tuple(train[0].shape[1:]),
                         num_classes=data.DATASETS[dataset].num_classes)
    history = fit(model, train, test_data=test, epochs=epochs, seed=seed, progress=progress,
                  **TRAINING[name])
    return model, history


_SWEEPS: dict[tuple, list[dict]] = {}


def width_sweep(widths: Sequence[int], *, depth: int = 2, epochs: int = 2, dataset: str = "mnist5k",
                n_train: int | None = None, seed: int = 0, names: Sequence[str] = ("bnn-mlp", "mlp"),
                progress: bool = False) -> list[dict]:
    """Train each model of `names` at each hidden width; one row per run.

    Row: name, width, depth, epochs, test_error, train_error, parameters, float_bytes,
    run_time_bytes, seconds. Results are cached in memory by arguments.
    """
    widths = [check_count("each width", w) for w in widths]  # a list: numpy arrays and ranges too
    if not widths:
        raise ValueError("widths must name at least one hidden width, got none")
    if isinstance(names, str) or not names or any(name not in TRAINING for name in names):
        # checked before the first run: a bad last name would fail only after minutes of training
        raise ValueError(f"names must be a sequence of the models {', '.join(TRAINING)}, "
                         f"got {names!r}")
    key = (tuple(widths), depth, epochs, dataset, n_train, seed, tuple(names))
    if key in _SWEEPS:
        return [dict(r) for r in _SWEEPS[key]]
    rows = []
    for name in names:
        for width in widths:
            t0 = time.perf_counter()
            model, history = train_model(name, width=width, depth=depth, epochs=epochs,
                                         dataset=dataset, n_train=n_train, seed=seed, progress=progress)
            size = models.model_size_bytes(model)
            rows.append({"name": name, "width": width, "depth": depth, "epochs": epochs,
                         "test_error": history.final["test_error"],
                         "train_error": history.final["train_error"],
                         "parameters": sum(p.numel() for p in model.parameters()),
                         "float_bytes": size["float"], "run_time_bytes": size["deployed"],
                         "seconds": time.perf_counter() - t0})
    _SWEEPS[key] = rows
    return [dict(r) for r in rows]
