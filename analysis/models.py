"""Model builders by name: the papers' small nets, binarized, quantized and float.

    build("bnn-mlp", width=1024)      # BNN MLP of Hubara et al. (2016), 3 hidden layers
    build("mlp", width=1024)          # its float twin
    build("qnn-mlp", bits_w=2, bits_a=2)
    build("bnn-cnn"), build("cnn"), build("qnn-cnn")   # VGG-style for 32x32 (or 28x28) images

Every model is a plain `nn.Sequential` that reads top to bottom. In the binarized and
quantized nets the activation quantizer lives in the *next* layer's `input_quantizer`, as in
Larq: Linear → BatchNorm → (next layer quantizes its input) → Linear → ...
"""

from __future__ import annotations

import math
import numbers

from torch import nn

from analysis.checks import check_choice, check_count
from analysis.layers import GhostBatchNorm1d, GhostBatchNorm2d, QuantConv2d, QuantLinear
from analysis.quant import UniformQuantizer, check_bits

__all__ = ["build", "MODELS", "model_size_bytes"]


def _check_net(kind: str, in_shape, num_classes: int) -> tuple[int, ...]:
    """in_shape as a tuple of positive integers, after checking kind and num_classes.

    An unknown kind built a float net without its ReLUs (a linear model), num_classes=0 a
    model that failed at its first forward, and in_shape=784 said "'int' object is not iterable".
    """
    check_choice("kind", kind, ("bnn", "qnn", "float"))
    check_count("num_classes", num_classes)
    try:
        shape = tuple(in_shape)
    except TypeError:  # a number, not a shape
        shape = ()
    if not shape or any(isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1
                        for n in shape):
        raise ValueError(f"in_shape must be the shape of one input, a tuple of positive integers "
                         f"such as (1, 28, 28), got {in_shape!r}")
    return tuple(int(n) for n in shape)


def _quantizers(kind: str, bits_w: int, bits_a: int):
    """(kernel, input) quantizer specs for 'bnn', 'qnn' or 'float' layers."""
    if kind == "bnn":
        return "sign_weights", "sign"
    if kind == "qnn":
        check_bits(bits_w, "bits_w")
        check_bits(bits_a, "bits_a")
        kq = "sign_weights" if bits_w == 1 else UniformQuantizer(bits_w, clip=1.0)
        aq = "sign" if bits_a == 1 else UniformQuantizer(bits_a, clip=1.0)
        return kq, aq
    return None, None


def _norm1d(n: int, ghost_size: int | None) -> nn.Module:
    return nn.BatchNorm1d(n) if ghost_size is None else GhostBatchNorm1d(n, ghost_size)


def _norm2d(n: int, ghost_size: int | None) -> nn.Module:
    return nn.BatchNorm2d(n) if ghost_size is None else GhostBatchNorm2d(n, ghost_size)


def mlp(kind: str = "float", in_shape=(1, 28, 28), num_classes: int = 10, width: int = 4096,
        depth: int = 3, bits_w: int = 1, bits_a: int = 1, ghost_size: int | None = None,
        dropout: float = 0.0) -> nn.Sequential:
    """MLP with `depth` hidden layers of `width` units, batch-norm after every linear layer.

    kind="bnn": binary weights everywhere, binary activations (the first layer sees the real
    input); kind="qnn": k-bit weights and activations; kind="float": ReLU, float weights.
    ghost_size: Ghost Batch-Norm (statistics per ghost batch of that size) after the hidden
    layers; the output layer's batch-norm, which scales the class scores, stays a plain one in
    both `mlp` and `cnn`, as in the shipped large-batch results.
    """
    check_count("width", width)
    check_count("depth", depth, minimum=0)
    in_shape = _check_net(kind, in_shape, num_classes)
    kq, aq = _quantizers(kind, bits_w, bits_a)
    sizes = [math.prod(in_shape)] + [width] * depth + [num_classes]
    layers: list[nn.Module] = [nn.Flatten()]
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        first, last = i == 0, i == len(sizes) - 2
        layers.append(QuantLinear(n_in, n_out, kernel_quantizer=kq,
                                  input_quantizer=None if first else aq))
        layers.append(nn.BatchNorm1d(n_out) if last else _norm1d(n_out, ghost_size))
        if not last:
            if kind == "float":
                layers.append(nn.ReLU())
            if dropout:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def cnn(kind: str = "float", in_shape=(3, 32, 32), num_classes: int = 10, width: int = 128,
        bits_w: int = 1, bits_a: int = 1, ghost_size: int | None = None) -> nn.Sequential:
    """VGG-style CNN of the BNN paper: (2×width C3)-MP2-(2×2width C3)-MP2-(2×4width C3)-MP2-(2×F FC)-FC.

    The paper's CIFAR-10 net has width=128 and F = 1024 (F = 1024 from width 128 up); smaller
    widths keep it laptop sized, with F = max(2·width, 64).
    """
    check_count("width", width)
    in_shape = _check_net(kind, in_shape, num_classes)
    if len(in_shape) != 3 or min(in_shape[1:]) < 8:  # three 2x2 poolings need 8x8 at least
        raise ValueError(f"in_shape must be (channels, height, width) of images at least 8x8, "
                         f"got {tuple(in_shape)}")
    kq, aq = _quantizers(kind, bits_w, bits_a)
    c_in, h, w = in_shape
    chans = [width, width, 2 * width, 2 * width, 4 * width, 4 * width]
    layers: list[nn.Module] = []
    for i, c_out in enumerate(chans):
        layers.append(QuantConv2d(c_in, c_out, 3, padding=1, kernel_quantizer=kq,
                                  input_quantizer=None if i == 0 else aq))
        if i % 2 == 1:
            layers.append(nn.MaxPool2d(2))  # pool before BN, as in the paper
            h, w = h // 2, w // 2
        layers.append(_norm2d(c_out, ghost_size))
        if kind == "float":
            layers.append(nn.ReLU())
        c_in = c_out
    fc = max(2 * width, 64) if width < 128 else 1024
    layers.append(nn.Flatten())
    for n_in, n_out, last in [(c_in * h * w, fc, False), (fc, fc, False), (fc, num_classes, True)]:
        layers.append(QuantLinear(n_in, n_out, kernel_quantizer=kq, input_quantizer=aq))
        layers.append(nn.BatchNorm1d(n_out) if last else _norm1d(n_out, ghost_size))
        if kind == "float" and not last:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


MODELS = {
    "bnn-mlp": ("binarized MLP of the BNN paper (width, depth)", lambda **o: mlp("bnn", **o)),
    "qnn-mlp": ("k-bit MLP of the QNN paper (bits_w, bits_a)", lambda **o: mlp("qnn", **o)),
    "mlp": ("float twin of bnn-mlp / qnn-mlp (ReLU)", lambda **o: mlp("float", **o)),
    "bnn-cnn": ("binarized VGG-style CNN of the BNN paper (width)", lambda **o: cnn("bnn", **o)),
    "qnn-cnn": ("k-bit VGG-style CNN (bits_w, bits_a)", lambda **o: cnn("qnn", **o)),
    "cnn": ("float twin of bnn-cnn / qnn-cnn (ReLU)", lambda **o: cnn("float", **o)),
}


def build(name: str, **options) -> nn.Sequential:
    """Build a model by name (see MODELS); options go to `mlp` or `cnn`."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(MODELS)}")
    bits = sorted({"bits_w", "bits_a"} & set(options))
    if bits and not name.startswith("qnn"):  # bnn-* are 1-bit, float models unquantized
        raise ValueError(f"model {name!r} takes no {' or '.join(bits)} (it would be ignored); "
                         "k-bit models are qnn-mlp and qnn-cnn")
    try:
        return MODELS[name][1](**options)
    except TypeError as e:  # an unknown keyword: say which model and what it takes
        raise ValueError(f"bad option for model {name!r}: {e}") from None


def model_size_bytes(model: nn.Module) -> dict[str, int]:
    """Bytes the model stores at run time: float32 for float tensors, 1 bit per binary weight.

    Returns {"float": bytes if every parameter and buffer were float32, "deployed": bytes with
    the weights of each quantized layer at its bit width}.
    """
    float_bytes = sum(t.numel() * 4 for t in list(model.parameters()) + list(model.buffers())
                      if t.is_floating_point())
    deployed, seen = 0, set()
    for m in model.modules():
        for name, t in list(m.named_parameters(recurse=False)) + list(m.named_buffers(recurse=False)):
            if id(t) in seen:  # shared by two modules (tied weights): stored once
                continue
            seen.add(id(t))
            bits = 32
            kq = getattr(m, "kernel_quantizer", None)
            if name == "weight" and kq is not None:
                bits = getattr(kq, "bits", 32)
            if t.is_floating_point():
                deployed += math.ceil(t.numel() * bits / 8)
    return {"float": float_bytes, "deployed": deployed}
