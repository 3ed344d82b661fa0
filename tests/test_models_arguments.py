"""analysis.models: the arguments every builder shares (kind, in_shape, num_classes) are checked
when the model is built, with a ValueError that names them, not at its first forward."""

import numpy as np
import pytest
import torch

from analysis import models


@pytest.mark.parametrize("name", ["mlp", "bnn-mlp", "cnn", "bnn-cnn"])
@pytest.mark.parametrize("num_classes", [0, 2.5, True])
def test_num_classes_must_be_a_count(name, num_classes):
    """num_classes=0 built a model whose first forward was an IndexError inside batch_norm;
    2.5 and True were torch's 'empty(): argument size must be tuple of ints'."""
    with pytest.raises(ValueError, match=f"num_classes must be a positive integer, got {num_classes!r}"):
        models.build(name, width=4, num_classes=num_classes)


@pytest.mark.parametrize("name", ["mlp", "bnn-mlp"])
@pytest.mark.parametrize("in_shape", [784, (0,), (1, 0, 28), (1, 28.0, 28), ()])
def test_mlp_in_shape_must_be_positive_integers(name, in_shape):
    """in_shape=784 said "bad option: 'int' object is not iterable"; (0,) or (1, 0, 28) built a
    layer with no inputs; (1, 28.0, 28) torch's 'empty(): ... must be tuple of ints'."""
    with pytest.raises(ValueError, match=r"in_shape must be the shape of one input, a tuple of "
                                         r"positive integers such as \(1, 28, 28\)"):
        models.build(name, width=4, depth=1, in_shape=in_shape)


@pytest.mark.parametrize("in_shape", [(0, 32, 32), (3, 32, 32.0)])
def test_cnn_in_shape_must_be_positive_integers(in_shape):
    """(0, 32, 32) built a convolution over no channels."""
    with pytest.raises(ValueError, match="in_shape must be the shape of one input"):
        models.build("cnn", width=4, in_shape=in_shape)


def test_a_shape_of_any_integer_kind_builds_the_same_model():
    """torch.Size, a list and numpy integers are shapes too; the model runs on that input."""
    for in_shape in [torch.Size([1, 8, 8]), [1, 8, 8], tuple(np.array([1, 8, 8]))]:
        model = models.build("bnn-mlp", width=4, depth=1, in_shape=in_shape, num_classes=3)
        assert model[1].in_features == 64
        assert model.eval()(torch.randn(2, 1, 8, 8)).shape == (2, 3)
    assert models.build("cnn", width=4, in_shape=np.array([3, 8, 8]))[0].in_channels == 3


@pytest.mark.parametrize("builder", [models.mlp, models.cnn])
def test_an_unknown_kind_is_refused(builder):
    """mlp('bnnn') built a float net without its ReLUs: a linear model under a wrong name."""
    with pytest.raises(ValueError, match="kind must be one of 'bnn', 'qnn', 'float', got 'bnnn'"):
        builder("bnnn", width=4)


# ---------------------------------------------------------------- from a mutation audit:
# the architecture the docstrings describe, and model_size_bytes' bit counting

from torch import nn  # noqa: E402

from analysis.layers import GhostBatchNorm2d, QuantConv2d, QuantLinear  # noqa: E402


def _kinds(model: nn.Module) -> list[str]:
    short = {QuantConv2d: "C", QuantLinear: "L", nn.MaxPool2d: "P", nn.BatchNorm2d: "B",
             GhostBatchNorm2d: "B", nn.BatchNorm1d: "B", nn.ReLU: "R", nn.Flatten: "F"}
    return [short[type(m)] for m in model]


def test_cnn_is_the_papers_vgg_with_pooling_before_batchnorm():
    """cnn: (2×w C3)-MP2-(2×2w C3)-MP2-(2×4w C3)-MP2-(2×F FC)-FC, max-pooling before the BN of
    its conv, every conv and FC followed by BN (and ReLU in the float net, but after the last)."""
    m = models.build("cnn", width=3, in_shape=(1, 16, 16), num_classes=5)
    assert "".join(_kinds(m)) == "CBR" "CPBR" "CBR" "CPBR" "CBR" "CPBR" "F" "LBR" "LBR" "LB"
    convs = [c for c in m if isinstance(c, QuantConv2d)]
    assert [c.out_channels for c in convs] == [3, 3, 6, 6, 12, 12]
    assert all(c.kernel_size == (3, 3) and c.padding == (1, 1) for c in convs)
    fcs = [f for f in m if isinstance(f, QuantLinear)]
    # 16x16 pooled three times is 2x2; F = max(2·width, 64) below width 128
    assert [(f.in_features, f.out_features) for f in fcs] == [(12 * 2 * 2, 64), (64, 64), (64, 5)]
    assert m(torch.randn(2, 1, 16, 16)).shape == (2, 5)


@pytest.mark.parametrize("width, F", [(16, 64), (40, 80), (127, 254), (128, 1024)])
def test_cnn_fully_connected_width(width, F):
    """F = max(2·width, 64) below width 128 and the paper's 1024 from 128 up."""
    m = models.cnn("float", width=width, in_shape=(1, 8, 8), num_classes=2)
    assert [f.out_features for f in m if isinstance(f, QuantLinear)] == [F, F, 2]


@pytest.mark.parametrize("name", ["bnn-cnn", "bnn-mlp"])
def test_the_first_layer_sees_the_real_input_and_every_other_layer_a_binarized_one(name):
    """As in the BNN paper (and Larq): the first layer's input is not quantized; every later
    conv or FC layer quantizes its input (sign) and its weights."""
    opts = {"width": 2, "in_shape": (3, 8, 8)} if "cnn" in name else {"width": 8, "depth": 2}
    layers = [m for m in models.build(name, **opts) if isinstance(m, (QuantConv2d, QuantLinear))]
    assert layers[0].input_quantizer is None
    assert all(layer.input_quantizer is not None for layer in layers[1:])
    assert all(layer.kernel_quantizer is not None for layer in layers)


def test_mlp_dropout_follows_every_hidden_layer_only():
    """dropout=p: an nn.Dropout(p) after each hidden layer's BN (and ReLU), none after the output."""
    m = models.build("mlp", width=8, depth=2, in_shape=(4,), num_classes=2, dropout=0.3)
    drops = [i for i, layer in enumerate(m) if isinstance(layer, nn.Dropout)]
    assert len(drops) == 2 and all(m[i].p == 0.3 and isinstance(m[i - 1], nn.ReLU) for i in drops)
    assert isinstance(m[-1], nn.BatchNorm1d)


def test_model_size_counts_bits_per_quantized_weight_and_32_for_the_rest():
    """deployed = ⌈numel·bits/8⌉ for each quantized layer's weight (32 bits for a kernel quantizer
    that gives no bit width), 4 bytes for biases and buffers; float = 4 bytes for everything."""
    binary = QuantLinear(3, 5, bias=True, kernel_quantizer="sign_weights")  # 15 weights, 1 bit
    two_bit = QuantLinear(3, 1, kernel_quantizer=2)  # 3 weights × 2 bits = 6 bits: 1 byte
    custom = QuantLinear(2, 2, kernel_quantizer=torch.round)  # no `bits`: stays float32
    bn = nn.BatchNorm1d(5)  # weight, bias, running mean and var, and an int64 counter
    size = models.model_size_bytes(nn.Sequential(binary, two_bit, custom, bn))
    assert size["deployed"] == 2 + 4 * 5 + 1 + 4 * 4 + 4 * 4 * 5
    assert size["float"] == 4 * (15 + 5 + 3 + 4 + 4 * 5)


@pytest.mark.parametrize("name", ["qnn-mlp", "qnn-cnn"])
def test_qnn_quantizes_weights_with_bits_w_and_inputs_with_bits_a(name):
    """bits_w and bits_a go to the kernel and input quantizers, each its own; 1 bit is sign, the
    levels ±1 of the BNN (not the ±½ of a 1-bit uniform quantizer)."""
    opts = {"width": 2, "in_shape": (3, 8, 8)} if "cnn" in name else {"width": 8, "depth": 2}
    layers = [m for m in models.build(name, bits_w=2, bits_a=4, **opts)
              if isinstance(m, (QuantConv2d, QuantLinear))]
    assert {layer.kernel_quantizer.bits for layer in layers} == {2}
    assert {layer.input_quantizer.bits for layer in layers[1:]} == {4}
    one_bit = [m for m in models.build(name, bits_w=1, bits_a=1, **opts)
               if isinstance(m, (QuantConv2d, QuantLinear))]
    x = torch.linspace(-2, 2, 41)
    for layer in one_bit:
        assert set(layer.kernel_quantizer(layer.weight).detach().unique().tolist()) <= {-1.0, 1.0}
    for layer in one_bit[1:]:
        assert set(layer.input_quantizer(x).unique().tolist()) == {-1.0, 1.0}


@pytest.mark.parametrize("name", ["mlp", "bnn-mlp", "cnn"])
def test_ghost_batchnorm_follows_the_hidden_layers_and_not_the_output(name):
    """ghost_size puts Ghost BN after every hidden layer; the output's batch-norm stays plain."""
    from analysis.layers import GhostBatchNorm1d, GhostBatchNorm2d

    opts = {"width": 8} if name == "cnn" else {"width": 8, "depth": 2}
    model = models.build(name, ghost_size=4, in_shape=(1, 28, 28), **opts)
    norms = [m for m in model if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert all(isinstance(m, (GhostBatchNorm1d, GhostBatchNorm2d)) for m in norms[:-1])
    assert type(norms[-1]) is nn.BatchNorm1d and norms[-1].num_features == 10
    assert len(norms) == (6 + 3 if name == "cnn" else 3)  # 6 convolutions, 3 linear layers
