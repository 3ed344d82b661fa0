import math

import numpy as np
import pytest
import torch
from torch import nn

from analysis import models
from analysis.checks import check_count
from analysis.layers import (
    BinarizedLinear,
    FixedClassifier,
    GhostBatchNorm1d,
    GhostBatchNorm2d,
    L1BatchNorm1d,
    L1BatchNorm2d,
    QuantConv2d,
    QuantLinear,
    RangeBatchNorm1d,
    RangeBatchNorm2d,
    TopKBatchNorm1d,
    TopKBatchNorm2d,
    clip_latent_weights_,
    quantized_operands,
    topk_constant,
)
from analysis.quant import UniformQuantizer


def test_binarized_mlp_multiplies_only_pm1_operands():
    torch.manual_seed(0)
    model = models.build("bnn-mlp", width=32, depth=2)
    x = torch.randn(8, 1, 28, 28)
    with quantized_operands(model) as ops:
        model(x)
    names = list(ops)
    assert len(names) == 3
    first_in, first_w = ops[names[0]]
    assert torch.equal(first_in, x.flatten(1))  # the first layer sees the real input
    assert set(torch.unique(first_w).tolist()) == {-1.0, 1.0}
    for name in names[1:]:
        xin, w = ops[name]
        assert set(torch.unique(xin).tolist()) <= {-1.0, 1.0}
        assert set(torch.unique(w).tolist()) == {-1.0, 1.0}


def test_binarized_layer_output_is_the_pm1_product():
    torch.manual_seed(1)
    layer = BinarizedLinear(5, 3)
    x = torch.randn(4, 5)
    expected = torch.where(x >= 0, 1.0, -1.0) @ torch.where(layer.weight >= 0, 1.0, -1.0).T
    torch.testing.assert_close(layer(x), expected)


def test_latent_weights_are_clipped_after_a_step_and_float_layers_are_not():
    q = QuantLinear(4, 4, kernel_quantizer="sign")
    f = nn.Linear(4, 4)
    model = nn.Sequential(q, f)
    with torch.no_grad():
        q.weight.fill_(0.9)
        f.weight.fill_(0.9)
    opt = torch.optim.SGD(model.parameters(), lr=10.0)
    model(torch.randn(2, 4)).pow(2).sum().mul(-1).backward()
    opt.step()
    clip_latent_weights_(model)
    assert q.weight.abs().max() <= 1.0
    assert f.weight.abs().max() > 1.0


def test_quant_conv_uses_its_quantizers():
    conv = QuantConv2d(2, 3, 3, padding=1, kernel_quantizer=UniformQuantizer(2, clip=1.0),
                       input_quantizer="sign")
    with quantized_operands(conv) as ops:
        y = conv(torch.randn(1, 2, 5, 5))
    assert y.shape == (1, 3, 5, 5)
    xin, w = ops[""]
    assert set(torch.unique(xin).tolist()) <= {-1.0, 1.0}
    assert len(torch.unique(w)) <= 4


@pytest.mark.parametrize("name", ["bnn-mlp", "qnn-mlp", "mlp"])
def test_mlp_shapes(name):
    m = models.build(name, width=16, depth=2, in_shape=(1, 8, 8), num_classes=3)
    assert m(torch.randn(5, 1, 8, 8)).shape == (5, 3)


@pytest.mark.parametrize("name", ["bnn-cnn", "qnn-cnn", "cnn"])
def test_cnn_shapes(name):
    m = models.build(name, width=4, in_shape=(3, 32, 32))
    assert m(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_paper_mlp_default_is_three_hidden_layers_of_4096():
    m = models.build("bnn-mlp")
    widths = [layer.out_features for layer in m if isinstance(layer, QuantLinear)]
    assert widths == [4096, 4096, 4096, 10]


def test_model_size_binary_layers_are_32x_smaller():
    m = models.build("bnn-mlp", width=256, depth=2)
    size = models.model_size_bytes(m)
    weights = sum(layer.weight.numel() for layer in m if isinstance(layer, QuantLinear))
    bn = size["float"] - 4 * weights
    assert size["deployed"] - bn == weights // 8
    assert size["float"] / size["deployed"] > 20


def test_unknown_model_and_bad_options_are_clear_errors():
    with pytest.raises(ValueError, match="unknown model 'resnet'.*bnn-mlp"):
        models.build("resnet")
    with pytest.raises(ValueError, match="bad option for model 'mlp'"):
        models.build("mlp", colour="red")
    with pytest.raises(ValueError, match="bits_w must be in 1..16, got 0"):
        models.build("qnn-mlp", bits_w=0)
    with pytest.raises(ValueError, match="bits_a must be in 1..16, got 17"):
        models.build("qnn-cnn", bits_a=17)
    # bits for a model without them were ignored: bnn-mlp with bits_w=2 trained a 1-bit net
    with pytest.raises(ValueError, match="model 'bnn-mlp' takes no bits_w .*k-bit models are qnn"):
        models.build("bnn-mlp", bits_w=2)
    with pytest.raises(ValueError, match="model 'cnn' takes no bits_a or bits_w"):
        models.build("cnn", bits_w=4, bits_a=4)
    # were 'not enough values to unpack' and, at the first forward, 'Output size is too small'
    with pytest.raises(ValueError, match=r"in_shape must be \(channels, height, width\).*got \(2,\)"):
        models.build("cnn", in_shape=(2,))
    with pytest.raises(ValueError, match=r"at least 8x8, got \(1, 4, 4\)"):
        models.build("bnn-cnn", in_shape=(1, 4, 4), width=4)
    # a fractional width was a TypeError from inside nn.Linear; a ghost size of 2.5 or True
    # was used silently as 2 or 1
    with pytest.raises(ValueError, match="width must be a positive integer, got 2.5"):
        models.build("mlp", width=2.5)
    with pytest.raises(ValueError, match="depth must be an integer >= 0, got -1"):
        models.build("bnn-mlp", depth=-1)
    with pytest.raises(ValueError, match="width must be a positive integer, got 0"):
        models.build("cnn", width=0)
    for ghost_size in (2.5, True):
        with pytest.raises(ValueError, match="ghost_size must be a positive integer"):
            models.build("mlp", ghost_size=ghost_size)


@pytest.mark.parametrize("value", [True, 2.5, 2.0, "3", None, 0, -1])
def test_check_count_refuses_what_is_not_a_count(value):
    with pytest.raises(ValueError, match=f"runs must be a positive integer, got {value!r}"):
        check_count("runs", value)


def test_check_count_returns_plain_ints_and_honours_its_minimum():
    assert check_count("runs", np.int64(3)) == 3 and type(check_count("runs", np.int64(3))) is int
    assert check_count("depth", 0, minimum=0) == 0
    with pytest.raises(ValueError, match="depth must be an integer >= 0, got -1"):
        check_count("depth", -1, minimum=0)


def test_layer_inputs_records_what_each_layer_receives_in_eval_mode():
    from analysis.layers import layer_inputs

    torch.manual_seed(0)
    model = models.build("mlp", width=8, depth=1, in_shape=(1, 4, 4), num_classes=3)
    model.train()
    X = torch.randn(10, 1, 4, 4)
    got = layer_inputs(model, {"first": model[1], "last": model[4]}, X, batch_size=3)
    assert got["first"].shape == (10, 16) and torch.equal(got["first"], X.flatten(1))
    model.eval()
    expected = model[3](model[2](model[1](X.flatten(1))))
    torch.testing.assert_close(got["last"], expected)
    assert not model[1]._forward_pre_hooks  # hooks removed


# --- range and L1 batch-norm ------------------------------------------------------------------

def _by_hand(x: torch.Tensor, kind: str) -> torch.Tensor:
    """x̂ per channel of a (N, C) tensor, from the papers' formulas."""
    centred = x - x.mean(0)
    n = len(x)
    if kind == "range":
        sigma = (centred.amax(0) - centred.amin(0)) / (2 * math.sqrt(2 * math.log(n)))
    elif kind == "topk":  # k = 10
        sigma = centred.abs().sort(0).values[-10:].mean(0) / topk_constant(n, 10)
    else:
        sigma = centred.abs().mean(0) * math.sqrt(math.pi / 2)
    return centred / (sigma**2 + 1e-5).sqrt()


@pytest.mark.parametrize("kind,cls1d,cls2d", [("range", RangeBatchNorm1d, RangeBatchNorm2d),
                                              ("l1", L1BatchNorm1d, L1BatchNorm2d),
                                              ("topk", TopKBatchNorm1d, TopKBatchNorm2d)])
def test_range_and_l1_batchnorm_follow_their_formulas_in_1d_and_2d(kind, cls1d, cls2d):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, generator=g) * torch.tensor([1.0, 5.0, 0.1]) + 2
    bn = cls1d(3)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([1.0, -2.0, 0.5]))
        bn.bias.copy_(torch.tensor([0.0, 1.0, -1.0]))
    torch.testing.assert_close(bn(x), _by_hand(x, kind) * bn.weight + bn.bias)
    # 2d: n = B·H·W values per channel, the same as 1d on the channel-last flattening
    x4 = torch.randn(8, 3, 4, 5, generator=g) * 3 - 1
    flat = x4.permute(0, 2, 3, 1).reshape(-1, 3)
    got = cls2d(3)(x4).permute(0, 2, 3, 1).reshape(-1, 3)
    torch.testing.assert_close(got, _by_hand(flat, kind))
    with pytest.raises(ValueError, match="expected 4D input"):
        cls2d(3)(x)


def test_cheap_sigma_estimates_match_their_documented_accuracy():
    """L1: sqrt(π/2)·mean|x − μ| is σ for Gaussian x. Range: C(n)·range runs low, 0.83σ at
    n = 128 and 0.89σ at n = 4096 (the figures in RangeBatchNorm's docstring)."""
    g = torch.Generator().manual_seed(1)
    for n, low, high in ((128, 0.82, 0.86), (4096, 0.875, 0.905)):
        x = 3 * torch.randn(n, 400, generator=g)
        bn = RangeBatchNorm1d(400)
        bn(x)  # training step: running_var ← 0.9 + 0.1·σ̂²
        ratio = ((bn.running_var - 0.9) / 0.1).sqrt().mean() / 3
        assert low < ratio < high, (n, ratio)
    x = 3 * torch.randn(20000, 4, generator=g)
    bn = L1BatchNorm1d(4, momentum=1.0)
    bn(x)
    torch.testing.assert_close(bn.running_var.sqrt(), torch.full((4,), 3.0), rtol=0.02, atol=0)


@pytest.mark.parametrize("cls,ratio", [(RangeBatchNorm2d, 0.86), (L1BatchNorm2d, 1.0)])
def test_cheap_batchnorm_evaluates_with_the_sigma_it_trained_with(cls, ratio):
    """Running statistics settle on μ and the training-mode σ̂ (for the range, ratio·σ at
    n = 32·4·4 = 512 values a channel); evaluation is batch-norm on them."""
    g = torch.Generator().manual_seed(2)
    bn = cls(2)
    for _ in range(200):
        bn(torch.randn(32, 2, 4, 4, generator=g) * 4 + 3)
    torch.testing.assert_close(bn.running_mean, torch.full((2,), 3.0), rtol=0, atol=0.15)
    torch.testing.assert_close(bn.running_var.sqrt(), torch.full((2,), 4.0 * ratio), rtol=0.05, atol=0)
    x = torch.randn(5, 2, 4, 4, generator=g)
    bn.eval()
    view = (1, 2, 1, 1)
    expected = (x - bn.running_mean.view(view)) / (bn.running_var.view(view) + bn.eps).sqrt()
    torch.testing.assert_close(bn(x), expected)


@pytest.mark.parametrize("cls", [RangeBatchNorm1d, L1BatchNorm1d, TopKBatchNorm1d])
def test_cheap_batchnorm_evaluates_a_batch_as_it_trained_on_it_at_any_sigma(cls):
    """Training divided by σ̂ + ε, evaluation (torch's batch-norm) by sqrt(σ̂² + ε): a unit with
    σ = 0.002 had a std of about 1.0 in training and 0.57 in evaluation on the same batch,
    its running statistics being that batch's (momentum 1). Both are sqrt(σ̂² + ε) now, as in
    torch's BatchNorm1d, whose two modes agree."""
    g = torch.Generator().manual_seed(7)
    x = torch.randn(256, 3, generator=g) * torch.tensor([1.0, 0.01, 0.002]) + 0.5
    bn = cls(3, momentum=1.0)
    with torch.no_grad():
        trained = bn(x)
        torch.testing.assert_close(bn.eval()(x), trained, rtol=1e-4, atol=1e-4)


def test_cheap_batchnorm_options_behave_as_torch_batchnorm():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(16, 3, generator=g) * 2 + 1
    # no running statistics: batch estimates in training and evaluation alike (was an AttributeError)
    bn = L1BatchNorm1d(3, track_running_stats=False)
    torch.testing.assert_close(bn(x), _by_hand(x, "l1") * bn.weight + bn.bias)
    torch.testing.assert_close(bn.eval()(x), _by_hand(x, "l1") * bn.weight + bn.bias)
    # momentum=None: the running mean is the plain average of the batch means
    bn = RangeBatchNorm1d(3, momentum=None, affine=False)
    xs = [torch.randn(16, 3, generator=g) + i for i in range(4)]
    for xb in xs:
        torch.testing.assert_close(bn(xb), _by_hand(xb, "range"))
    torch.testing.assert_close(bn.running_mean, torch.stack([xb.mean(0) for xb in xs]).mean(0))
    assert int(bn.num_batches_tracked) == 4


@pytest.mark.parametrize("cls,ratio", [(L1BatchNorm1d, 1.0), (RangeBatchNorm1d, 0.86),
                                       (TopKBatchNorm1d, 1.0)])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_cheap_batchnorm_in_half_precision_keeps_finite_statistics(cls, ratio, dtype):
    """Norm matters: the cheap σ̂ is computed in half precision where a mean of squares
    overflows (σ = 400: (x − μ)² ≫ 65504). Its running σ̂² stays float32, so evaluation
    normalizes (it mapped every input to β: running_var was inf)."""
    g = torch.Generator().manual_seed(6)
    x = (torch.randn(1024, 4, generator=g) * 400 + 50).to(dtype)
    if dtype == torch.float16:
        assert not torch.isfinite(((x - x.mean(0)) ** 2).mean(0)).any()  # the L2 way, in fp16
    bn = cls(4, momentum=1.0).to(dtype)
    assert (bn.weight.dtype, bn.running_var.dtype) == (dtype, torch.float32)
    y = bn(x)
    assert y.dtype == dtype and torch.isfinite(y).all()
    sigma_hat = bn.running_var.sqrt()  # momentum 1: this batch's σ̂ (the range's is a noisy one)
    torch.testing.assert_close(sigma_hat, torch.full((4,), 400.0 * ratio), rtol=0.15, atol=0)
    torch.testing.assert_close(y.detach().float().std(0), x.float().std(0) / sigma_hat, rtol=0.01, atol=0)
    bn.eval()
    y_eval = bn(x)
    assert y_eval.dtype == dtype
    torch.testing.assert_close(y_eval.float(), y.float(), rtol=0, atol=0.05)
    # the statistics follow a cast to float64 and back to float32; a copy keeps their values
    assert bn.double().running_var.dtype == torch.float64
    assert bn.float().running_var.dtype == torch.float32
    twin = cls(4).half()
    twin.load_state_dict(bn.state_dict())
    torch.testing.assert_close(twin.running_var, bn.running_var)


def test_topk_constant_is_the_expected_mean_of_the_largest_half_normals():
    assert topk_constant(16, 16) == pytest.approx(math.sqrt(2 / math.pi), rel=1e-6)  # E|z|
    assert topk_constant(1, 1) == pytest.approx(math.sqrt(2 / math.pi), rel=1e-6)
    g = torch.Generator().manual_seed(4)
    for n, k in ((128, 10), (512, 1), (1000, 50)):
        z = torch.randn(4000, n, generator=g, dtype=torch.float64).abs()
        monte_carlo = z.topk(k, dim=1).values.mean().item()
        assert topk_constant(n, k) == pytest.approx(monte_carlo, rel=0.01), (n, k)
    with pytest.raises(ValueError, match="k=11 is more than the n=10"):
        topk_constant(10, 11)


def test_topk_batchnorm_estimates_sigma_and_refuses_k_above_n():
    g = torch.Generator().manual_seed(5)
    bn = TopKBatchNorm1d(300, k=10, momentum=1.0)
    bn(3 * torch.randn(256, 300, generator=g) + 7)
    assert bn.running_var.sqrt().mean().item() == pytest.approx(3.0, rel=0.02)
    assert "k=10" in repr(bn)
    with pytest.raises(ValueError, match="k=10 is more than the 8 values"):
        TopKBatchNorm1d(3, k=10)(torch.randn(8, 3))
    with pytest.raises(ValueError, match="k must be a positive integer"):
        TopKBatchNorm2d(3, k=0)


# --- fixed classifier ---------------------------------------------------------------------------

@pytest.mark.parametrize("make", [RangeBatchNorm1d, L1BatchNorm1d,
                                  lambda c: TopKBatchNorm1d(c, k=1),
                                  lambda c: GhostBatchNorm1d(c, ghost_size=1)])
def test_batchnorm_variants_refuse_one_value_per_channel_and_pass_an_empty_batch(make):
    torch.manual_seed(0)
    ref = nn.BatchNorm1d(3)
    m = make(3)
    with pytest.raises(ValueError):  # torch's own batch-norm refuses it too
        ref(torch.randn(1, 3))
    # was: an output of β (zeros) for any input, and running_var pulled towards 0
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        m(torch.randn(1 if not isinstance(m, GhostBatchNorm1d) else 4, 3))
    assert torch.equal(m.running_var, torch.ones(3))
    # was: IndexError (range), ZeroDivisionError (ghost), ValueError about k (top-k), and
    # NaN running statistics (L1); torch's batch-norm returns the empty batch as it is
    empty = torch.randn(0, 3, requires_grad=True)
    out = m(empty)
    assert out.shape == (0, 3) and out.shape == ref(empty).shape
    out.sum().backward()
    assert torch.equal(m.running_mean, torch.zeros(3)) and torch.equal(m.running_var, torch.ones(3))
    assert int(m.num_batches_tracked) == 0
    if not isinstance(m, GhostBatchNorm1d):  # a usable batch still trains the statistics
        m(torch.randn(8, 3))
        assert int(m.num_batches_tracked) == 1 and torch.isfinite(m.running_var).all()


def test_ghost_batchnorm_2d_with_ghost_size_1_normalizes_over_positions():
    m = GhostBatchNorm2d(2, ghost_size=1, affine=False)
    x = torch.randn(4, 2, 3, 3)
    out = m(x)  # one sample, 9 positions a ghost batch: well defined, like instance norm
    expected = nn.functional.instance_norm(x, eps=m.eps)
    assert torch.allclose(out, expected, atol=1e-5)


def test_fixed_classifier_is_hadamard_rows_and_one_learned_scale():
    head = FixedClassifier(256, 10)
    assert [name for name, _ in head.named_parameters()] == ["scale"]
    W = head.weight
    assert W.shape == (10, 256) and set((W * 16).unique().tolist()) == {-1.0, 1.0}
    torch.testing.assert_close(W @ W.T, torch.eye(10))  # orthonormal rows
    assert (W.sum(1).abs() < 1e-6).all()  # no all-ones row: it would favour class 0 on ReLU features
    x = torch.randn(5, 256)
    torch.testing.assert_close(head(x), 10.0 * (x / x.norm(dim=1, keepdim=True)) @ W.T)
    assert FixedClassifier(200, 10).weight.shape == (10, 200)  # cut to any width
    assert FixedClassifier(9, 10).weight.shape == (10, 9)
    with pytest.raises(ValueError, match="num_classes must be a positive integer"):
        FixedClassifier(8, 0)


def test_fixed_classifier_trains_almost_as_well_as_a_learned_head():
    """The paper's claim, small: one hidden layer on mnist5k, 5 epochs; the fixed head's test
    error is within 3 points of the learned head's (measured 9.4 % and 8.1 %)."""
    from analysis import data
    from analysis.training import fit

    train, test = data.load("mnist5k", "train"), data.load("mnist5k", "test")
    errors = {}
    for name in ("learned", "fixed"):
        torch.manual_seed(0)
        head = nn.Linear(200, 10) if name == "learned" else FixedClassifier(200, 10)
        model = nn.Sequential(nn.Flatten(), nn.Linear(784, 200), nn.BatchNorm1d(200), nn.ReLU(), head)
        errors[name] = fit(model, train, test_data=test, epochs=5, lr=1e-3).final["test_error"]
    assert errors["fixed"] < 0.15 and errors["fixed"] - errors["learned"] < 0.03, errors


def test_fixed_classifier_refuses_more_classes_than_distinct_hadamard_rows():
    """With C ≥ P (P the power of two ≥ N), rows 1 … C of H_2P cut to N columns repeat rows of H_P,
    the all-ones row 0 among them: FixedClassifier(8, 8) made class 7 the highest score for every
    non-negative input, and (3, 10) gave classes identical scores. They are refused now."""
    with pytest.raises(ValueError, match="8 inputs give 7 distinct Hadamard rows.*more than 8 inputs"):
        FixedClassifier(8, 8)
    with pytest.raises(ValueError, match="distinct Hadamard rows"):
        FixedClassifier(3, 10)
    for n, c in [(8, 7), (9, 10), (10, 10), (5, 7)]:
        W = FixedClassifier(n, c).weight
        assert len({tuple(row.tolist()) for row in W}) == c  # distinct classes
        assert (W.sum(1) < W.abs().sum(1)).all()  # no row all ones
    head = FixedClassifier(8, 7)
    torch.testing.assert_close(head.weight @ head.weight.T, torch.eye(7))  # N = P: orthonormal
    torch.manual_seed(0)
    assert len(head(torch.rand(1000, 8)).argmax(1).unique()) == 7  # ReLU-like input: each class wins


def test_fixed_classifier_rows_do_not_favour_a_class_on_non_negative_features():
    """Rows 1 … C of H_P cut to N < P columns can be nearly all ones: row 8 of H_16 at N = 9 is
    eight +1 and one −1, and class 7 won 95 % of uniform [0, 1) inputs (N = 200: 33 %, three
    times its share), what leaving out row 0 was for. The most balanced rows are taken now;
    at N = P they are rows 1 … C as before."""
    from scipy import linalg

    torch.testing.assert_close(FixedClassifier(16, 10).weight,
                               torch.tensor(linalg.hadamard(16)[1:11] / 4, dtype=torch.float32))
    torch.manual_seed(0)
    for n in (9, 100, 200):
        wins = FixedClassifier(n, 10)(torch.rand(4000, n)).argmax(1).bincount(minlength=10)
        assert wins.max().item() < 2 * 4000 / 10, (n, wins.tolist())


def test_quant_conv_takes_the_arguments_of_conv2d():
    """groups, dilation, padding_mode, device and dtype were a TypeError ('same arguments as nn.Conv2d')."""
    import torch.nn.functional as F

    from analysis.quant import sign

    torch.manual_seed(0)
    conv = QuantConv2d(4, 6, 3, 2, 2, 2, 2, True, "reflect", kernel_quantizer="sign",
                       input_quantizer="sign", dtype=torch.float64)
    assert conv.weight.shape == (6, 2, 3, 3) and conv.weight.dtype == torch.float64
    x = torch.randn(2, 4, 9, 9, dtype=torch.float64)
    expected = F.conv2d(F.pad(sign(x), (2, 2, 2, 2), mode="reflect"), sign(conv.weight), conv.bias,
                        stride=2, dilation=2, groups=2)
    torch.testing.assert_close(conv(x), expected)
    assert QuantLinear(3, 2, dtype=torch.float64).weight.dtype == torch.float64


def test_ghost_batchnorm_refuses_a_momentum_it_cannot_use():
    from analysis.layers import GhostBatchNorm1d

    for momentum in (0.0, 1.5):
        with pytest.raises(ValueError, match="momentum must be in"):
            GhostBatchNorm1d(4, 8, momentum=momentum)


def test_ghost_batchnorm_is_a_torch_batchnorm_with_its_options_and_state_dict():
    """GhostBatchNorm was a bare nn.Module: no num_batches_tracked, so the weights of a model built
    without ghost_size (nn.BatchNorm1d) did not load into its twin with ghost batches
    ('Unexpected key(s) in state_dict: "2.num_batches_tracked"'); momentum=None (torch's
    cumulative average), affine=False and track_running_stats=False were refused or ignored;
    a 4-d input to the 1d module passed; and code that looks for batch-norms
    (isinstance _BatchNorm, e.g. clipping.ptq.fold_bn_scale_) skipped it."""
    import io

    from analysis.layers import GhostBatchNorm1d, GhostBatchNorm2d

    torch.manual_seed(0)
    kw = dict(width=8, depth=1, in_shape=(1, 4, 4), num_classes=3)
    plain, ghost = models.build("mlp", **kw), models.build("mlp", ghost_size=4, **kw)
    plain.train()(torch.randn(16, 1, 4, 4))  # running statistics that differ from the defaults
    for source, target in ((plain, ghost), (ghost, plain)):
        buffer = io.BytesIO()
        torch.save(source.state_dict(), buffer)
        buffer.seek(0)
        target.load_state_dict(torch.load(buffer, weights_only=True))  # strict
    x = torch.randn(6, 1, 4, 4)
    torch.testing.assert_close(ghost.eval()(x), plain.eval()(x))
    assert isinstance(ghost[2], nn.modules.batchnorm._BatchNorm)

    # momentum=None: the running mean is the plain average of the ghost-batch means
    gbn = GhostBatchNorm1d(3, ghost_size=4, momentum=None)
    xs = [torch.randn(8, 3) + i for i in range(3)]
    for xb in xs:
        gbn(xb)
    torch.testing.assert_close(gbn.running_mean, torch.stack([xb.mean(0) for xb in xs]).mean(0))
    assert int(gbn.num_batches_tracked) == 6
    # affine=False: no γ, β; track_running_stats=False: ghost-batch statistics in eval too
    gbn = GhostBatchNorm2d(3, ghost_size=2, affine=False, track_running_stats=False).eval()
    assert not list(gbn.parameters()) and gbn.running_mean is None
    x4 = torch.randn(4, 3, 2, 2)
    expected = torch.cat([nn.BatchNorm2d(3, affine=False)(c) for c in x4.split(2)])
    torch.testing.assert_close(gbn(x4), expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="expected 2D or 3D input"):
        GhostBatchNorm1d(3, ghost_size=2)(x4)
    assert "ghost_size=2" in repr(gbn)


def test_model_size_counts_a_shared_weight_once():
    a, b = nn.Linear(8, 8, bias=False), nn.Linear(8, 8, bias=False)
    b.weight = a.weight  # tied weights (was counted twice in "deployed")
    size = models.model_size_bytes(nn.Sequential(a, b))
    assert size == {"float": 8 * 8 * 4, "deployed": 8 * 8 * 4}


def test_latent_weights_are_clipped_to_the_kernel_quantizers_range():
    """clip_latent_weights_ clipped every quantized layer to [−1, 1] whatever its quantizer:
    with UniformQuantizer(4, clip=2.0) the weights could never pass ±1, so 8 of the 16 levels
    (±1.125 … ±1.875) were out of reach; with clip=0.5 they drifted past 0.5, where the
    straight-through gradient is zero, and stayed there."""
    wide = QuantLinear(4, 4, kernel_quantizer=UniformQuantizer(4, clip=2.0))
    narrow = QuantLinear(4, 4, kernel_quantizer=UniformQuantizer(2, clip=0.5))
    binary = QuantLinear(4, 4, kernel_quantizer="sign")
    model = nn.Sequential(wide, narrow, binary)
    for values in (torch.tensor([-3.0, -1.7, 0.3, 1.7]), torch.tensor([-0.9, -0.2, 0.7, 5.0])):
        with torch.no_grad():
            for m in model:
                m.weight.copy_(values.expand(4, 4))
        clip_latent_weights_(model)
        assert wide.weight[0].tolist() == values.clamp(-2, 2).tolist()
        assert narrow.weight[0].tolist() == values.clamp(-0.5, 0.5).tolist()
        assert binary.weight[0].tolist() == values.clamp(-1, 1).tolist()
    assert wide.kernel_quantizer(wide.weight)[0, -1].item() == 1.875  # the top level is reachable
    clip_latent_weights_(model, bound=0.25)  # an explicit bound still holds for every layer
    assert all(m.weight.abs().max().item() == 0.25 for m in model)


def test_ghost_batchnorm_running_stats_step_once_per_ghost_batch_with_its_momentum():
    """Running mean and unbiased variance take one momentum step per ghost batch, exactly as a
    torch BatchNorm1d run on the ghost batches in turn (the paper's code), for any momentum."""
    x = torch.randn(12, 5, generator=torch.Generator().manual_seed(0)) * 3 + 1
    ghost = GhostBatchNorm1d(5, ghost_size=4, momentum=0.3).train()
    reference = nn.BatchNorm1d(5, momentum=0.3).train()
    ghost(x)
    for part in x.split(4):
        reference(part)
    torch.testing.assert_close(ghost.running_mean, reference.running_mean)
    torch.testing.assert_close(ghost.running_var, reference.running_var)
    assert int(ghost.num_batches_tracked) == 3


def test_quantized_layers_name_the_quantizer_with_a_bad_bit_width():
    """Was "bits must be in 1..16, got 0", naming neither argument."""
    with pytest.raises(ValueError, match="kernel_quantizer must be in 1..16, got 0"):
        QuantLinear(8, 4, kernel_quantizer=0)
    with pytest.raises(ValueError, match="input_quantizer must be in 1..16, got 17"):
        QuantConv2d(3, 4, 3, input_quantizer=17)


@pytest.mark.parametrize("make", [lambda c: GhostBatchNorm1d(c, ghost_size=8), RangeBatchNorm1d,
                                  L1BatchNorm1d, lambda c: TopKBatchNorm1d(c, k=2),
                                  lambda c: GhostBatchNorm2d(c, ghost_size=4), RangeBatchNorm2d,
                                  L1BatchNorm2d, lambda c: TopKBatchNorm2d(c, k=2)])
def test_batchnorm_variants_refuse_a_wrong_channel_count(make):
    """RangeBatchNorm1d(4) on (32, 5) was a RuntimeError on tensor sizes from deep inside; now a
    ValueError in training and in evaluation (float32 and half input), dimensions still checked."""
    m = make(4)
    two_d = isinstance(m, nn.BatchNorm2d)
    x = torch.randn(32, 5, 2, 2) if two_d else torch.randn(32, 5)
    for training in (True, False):
        m.train(training)
        for xx in (x, x.half()):
            with pytest.raises(ValueError, match=r"expected 4 channels \(num_features\), got input with 5"):
                m(xx)
        with pytest.raises(ValueError, match="expected 4D input" if two_d else "expected 2D or 3D"):
            m(torch.randn(32, 4)) if two_d else m(torch.randn(32, 4, 2, 2))
        assert m(torch.randn(32, 4, 2, 2) if two_d else torch.randn(32, 4)).shape[1] == 4


def test_fixed_classifier_refuses_input_that_is_not_a_batch_of_feature_vectors():
    """A numpy array was "no attribute 'norm'", 4-D features a matmul shape error."""
    head = FixedClassifier(64, 10)
    with pytest.raises(TypeError, match="x must be a torch.Tensor, got ndarray"):
        head(np.ones((2, 64), dtype=np.float32))
    for shape in ((2, 64, 1, 1), (2, 32), (64,)):
        with pytest.raises(ValueError, match=r"x must be \(B, in_features\) = \(B, 64\)"):
            head(torch.ones(shape))
    assert head(torch.ones(2, 64)).shape == (2, 10)
