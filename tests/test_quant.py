import math

import pytest
import torch

from analysis.quant import (
    SignQuantizer,
    UniformQuantizer,
    as_quantizer,
    check_bits,
    minmax_range,
    quantize_uniform,
    sign,
    sign_ste,
)


def test_sign_of_zero_is_plus_one():
    assert sign(torch.tensor([-2.0, -0.0, 0.0, 3.0])).tolist() == [-1.0, 1.0, 1.0, 1.0]


def test_sign_of_integer_tensor():
    """Was a RuntimeError from torch (the in-place + ½ on a Long tensor)."""
    q = sign(torch.tensor([3, -1, 0]))
    assert q.tolist() == [1.0, -1.0, 1.0] and q.is_floating_point()


def test_sign_ste_forward_and_hardtanh_gradient():
    x = torch.tensor([-2.0, -1.0, -0.3, 0.0, 0.7, 1.0, 1.5], requires_grad=True)
    q = sign_ste(x)
    assert q.tolist() == [-1, -1, -1, 1, 1, 1, 1]
    upstream = torch.arange(1.0, 8.0)
    q.backward(upstream)
    # gradient passes where |x| <= 1 (including the edges), cancelled outside
    assert x.grad.tolist() == [0.0, 2.0, 3.0, 4.0, 5.0, 6.0, 0.0]


@pytest.mark.parametrize("bits", [1, 2, 3, 5, 8])
def test_uniform_has_at_most_2_to_the_k_levels(bits):
    x = torch.randn(20000) * 3
    q = quantize_uniform(x, bits, -1.5, 2.0)
    levels = torch.unique(q)
    assert len(levels) <= 2**bits
    assert len(levels) == 2**bits  # wide data reaches every level
    delta = 3.5 / 2**bits
    expected = -1.5 + delta * (torch.arange(2**bits) + 0.5)
    torch.testing.assert_close(levels, expected)


def test_uniform_rounds_to_nearest_level_and_clips():
    q = quantize_uniform(torch.tensor([-5.0, -0.9, -0.1, 0.1, 0.49, 0.51, 9.0]), 2, -1.0, 1.0)
    assert q.tolist() == [-0.75, -0.75, -0.25, 0.25, 0.25, 0.75, 0.75]


def test_uniform_straight_through_gradient_inside_range_only():
    x = torch.tensor([-3.0, -0.5, 0.2, 0.99, 2.0], requires_grad=True)
    quantize_uniform(x, 3, -1, 1).sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]


def test_uniform_gradient_passes_at_the_range_edges():
    """The STE mask is 1{lo ≤ x ≤ hi}, edges included, as sign_ste's 1{|x| ≤ 1} (BNN paper)."""
    x = torch.tensor([-1.0, -0.5, 1.0, 0.5], requires_grad=True)
    quantize_uniform(x, 1, -1.0, 1.0).backward(torch.tensor([2.0, 3.0, 5.0, 7.0]))
    assert x.grad.tolist() == [2.0, 3.0, 5.0, 7.0]
    just_out = torch.tensor([torch.nextafter(torch.tensor(-1.0), torch.tensor(-2.0)).item(),
                             torch.nextafter(torch.tensor(1.0), torch.tensor(2.0)).item()],
                            requires_grad=True)
    quantize_uniform(just_out, 1, -1.0, 1.0).sum().backward()
    assert just_out.grad.tolist() == [0.0, 0.0]
    # at 1 bit on [−1, 1] the mask is exactly sign_ste's hard-tanh derivative
    t = torch.tensor([-1.5, -1.0, 0.0, 1.0, 1.5], requires_grad=True)
    t2 = t.detach().clone().requires_grad_(True)
    quantize_uniform(t, 1, -1.0, 1.0).sum().backward()
    sign_ste(t2).sum().backward()
    assert torch.equal(t.grad, t2.grad)


def test_stochastic_rounding_is_unbiased_and_uses_neighbours():
    g = torch.Generator().manual_seed(0)
    x = torch.full((200000,), 0.1)
    q = quantize_uniform(x, 2, -1, 1, stochastic=True, generator=g)
    assert set(torch.unique(q).tolist()) == {-0.25, 0.25}
    assert abs(q.mean().item() - 0.1) < 0.005


def test_per_channel_ranges_broadcast():
    x = torch.tensor([[0.0, 1.0], [0.0, 10.0]])
    lo, hi = minmax_range(x, symmetric=False, dim=0)
    assert lo.shape == (2, 1)
    q = quantize_uniform(x, 1, lo, hi)
    assert q.tolist() == [[0.25, 0.75], [2.5, 7.5]]


@pytest.mark.parametrize("bits", [0, 17, -1, 2.5, "4", None, True])
def test_bits_out_of_range_is_a_clear_error(bits):
    with pytest.raises(ValueError, match="bits must be"):
        quantize_uniform(torch.zeros(3), bits, -1, 1)


def test_empty_range_is_a_clear_error():
    with pytest.raises(ValueError, match="lo < hi"):
        quantize_uniform(torch.zeros(3), 4, 1.0, 1.0)


@pytest.mark.parametrize("lo, hi", [(-math.inf, 1.0), (-1.0, math.inf), (-1.0, math.nan)])
def test_infinite_range_is_a_clear_error(lo, hi):
    """An infinite range has infinitely wide bins: the levels would be NaN or ±inf."""
    with pytest.raises(ValueError, match="finite lo < hi"):
        quantize_uniform(torch.zeros(3), 4, lo, hi)
    with pytest.raises(ValueError, match="finite"):
        UniformQuantizer(4, clip=math.inf)


def test_range_wider_than_the_dtype_is_a_clear_error():
    """lo = −3e38, hi = 3e38 are finite float32 numbers but hi − lo is not: every level was NaN."""
    with pytest.raises(ValueError, match="overflows"):
        quantize_uniform(torch.zeros(3), 4, -3e38, 3e38)
    wide = quantize_uniform(torch.tensor([0.0, 1e38, -2e38]), 4, -1e38, 1e38)  # hi − lo still fits
    assert torch.allclose(wide, torch.tensor([1e38 / 16, 1e38 * 15 / 16, -1e38 * 15 / 16]), rtol=1e-6)


def test_quantizer_objects():
    assert isinstance(as_quantizer("sign"), SignQuantizer)
    assert as_quantizer(None) is None
    uq = as_quantizer(3)
    assert isinstance(uq, UniformQuantizer) and uq.bits == 3
    assert len(torch.unique(UniformQuantizer(2, clip=None)(torch.randn(1000)))) == 4
    with pytest.raises(ValueError, match="unknown quantizer"):
        as_quantizer("ternary")
    with pytest.raises(ValueError, match="^input_quantizer: unknown quantizer 'ternary'"):
        as_quantizer("ternary", "input_quantizer")
    with pytest.raises(ValueError, match="clip must be > 0"):
        UniformQuantizer(4, clip=0.0)


def test_weight_ste_passes_the_gradient_unchanged():
    w = torch.tensor([-1.5, -1.0, 0.0, 0.4, 1.0], requires_grad=True)
    q = sign_ste(w, cancel=False)
    assert q.tolist() == [-1, -1, 1, 1, 1]
    q.backward(torch.arange(1.0, 6.0))
    assert w.grad.tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert repr(as_quantizer("sign_weights")) == "SignQuantizer(cancel=False)"


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("bits", [4, 8, 16])
def test_half_precision_input_gets_the_float32_levels_in_its_dtype(dtype, bits):
    """float16 rounded the bin index (x − lo)/Δ itself: 20 of these 10001 values went to a wrong
    level at 4 bits, hundreds at 8, and 16 bits overflowed float16 (a RuntimeError)."""
    x = torch.linspace(-1, 1, 10001).to(dtype)
    q = quantize_uniform(x, bits, -1, 1)
    assert q.dtype == dtype
    assert torch.equal(q, quantize_uniform(x.float(), bits, -1, 1).to(dtype))
    q_stochastic = quantize_uniform(x, bits, -1, 1, stochastic=True)
    assert q_stochastic.dtype == dtype


def test_float16_value_goes_to_its_nearest_level():
    x = torch.tensor([0.0625], dtype=torch.float16)  # exactly on the edge between 0.03125 and 0.09375
    assert quantize_uniform(x, 5, -1, 1).item() == 0.09375
    x = torch.tensor([0.06244], dtype=torch.float16)  # 0.06244 in float16 is just below the edge
    assert quantize_uniform(x, 5, -1, 1).item() == 0.03125


@pytest.mark.parametrize("value", [2.0, -3.0, 1000.0])
def test_minmax_range_of_a_constant_tensor_stays_defined(value):
    """lo + ε rounded back to lo for |lo| ≥ 2: the range was empty and quantizing a constant
    tensor (or channel) with clip=None, symmetric=False raised 'needs finite lo < hi'."""
    x = torch.full((3, 4), value)
    lo, hi = minmax_range(x, symmetric=False)
    assert lo.item() == value and hi.item() > lo.item()
    q = UniformQuantizer(4, clip=None, symmetric=False)(x)
    assert torch.allclose(q, x, rtol=1e-6)
    per_channel = torch.stack([torch.full((4,), value), torch.linspace(0, 1, 4)])
    q = UniformQuantizer(2, clip=None, symmetric=False, per_channel=True)(per_channel)
    assert torch.allclose(q[0], per_channel[0], rtol=1e-6)
    assert q[1].tolist() == [0.125, 0.375, 0.625, 0.875]


def test_sign_of_nan_is_nan_so_divergence_shows():
    """torch.sign(NaN) is 0, and sign(0) = +1 turned a NaN into +1: a diverged layer binarized
    to a finite output and the loss never became NaN."""
    x = torch.tensor([math.nan, -0.0, -2.0, math.inf, -math.inf], requires_grad=True)
    q = sign_ste(x)
    assert q[0].isnan() and q[1:].tolist() == [1.0, -1.0, 1.0, -1.0]
    q[1:].sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 0.0, 0.0, 0.0]


def test_as_quantizer_takes_numpy_ints_and_refuses_bools():
    """np.int64(3) (a bit width from np.arange) was 'unknown quantizer'; True was silently
    the sign quantizer (True == 1) while False was an error."""
    import numpy as np

    uq = as_quantizer(np.int64(3))
    assert isinstance(uq, UniformQuantizer) and uq.bits == 3 and uq.clip == 1.0
    assert isinstance(as_quantizer(np.int64(1)), SignQuantizer)
    for spec in (True, False):
        with pytest.raises(ValueError, match="unknown quantizer"):
            as_quantizer(spec)
    with pytest.raises(ValueError, match="bits must be"):
        as_quantizer(2.5)


def test_stochastic_rounding_is_unbiased_between_the_outer_levels_only():
    """As the docstring says: E[Q(x)] = x on [lo + Δ/2, hi − Δ/2]; beyond, Q clips to those levels."""
    g = torch.Generator().manual_seed(0)
    for value, expected in [(-0.6, -0.6), (0.7, 0.7), (-0.9, -0.75), (0.9, 0.75)]:
        q = quantize_uniform(torch.full((200000,), value), 2, -1, 1, stochastic=True, generator=g)
        assert abs(q.mean().item() - expected) < 0.005


def test_per_channel_with_a_fixed_clip_is_refused_and_shown_in_repr():
    """UniformQuantizer(per_channel=True) with the default clip=1.0 ignored per_channel silently
    (one range [−1, 1] for all channels), and its repr did not say per_channel."""
    with pytest.raises(ValueError, match="per_channel=True takes each channel's min/max range"):
        UniformQuantizer(2, per_channel=True)
    q = UniformQuantizer(2, clip=None, per_channel=True)
    assert repr(q) == ("UniformQuantizer(bits=2, clip=None, symmetric=True, stochastic=False, "
                       "per_channel=True)")
    x = torch.tensor([[0.0, 1.0], [0.0, 10.0]])
    assert q(x).tolist() == [[0.25, 0.75], [2.5, 7.5]]


@pytest.mark.parametrize("dtype, scale", [(torch.float32, 1e-9), (torch.float16, 1e-5)])
def test_minmax_range_keeps_a_narrow_range_as_it_is(dtype, scale):
    """Not only a zero-width range was widened: any range narrower than ε·max(1, |lo|) was, so
    values of about 1e-9 in float32 (gradients, say) got [−4.6e-9, 1.1e-7]: 17 of the 256
    levels of 8 bits used, a 13% rms error; at 1e-10, 2 levels and a 148% error."""
    x = (torch.randn(10_000, generator=torch.Generator().manual_seed(0)) * scale).to(dtype)
    lo, hi = minmax_range(x)
    assert lo.item() == -x.abs().max().item() and hi.item() == x.abs().max().item()
    lo, hi = minmax_range(x, symmetric=False)
    assert lo.item() == x.min().item() and hi.item() == x.max().item()
    q = UniformQuantizer(8, clip=None)(x).float()
    assert ((q - x.float()).norm() / x.float().norm()).item() < 0.02
    assert q.unique().numel() > 150


def test_ranges_that_do_not_broadcast_to_x_are_a_clear_error():
    """Per-channel ranges of shape (C,) for a (C, K) weight were a RuntimeError from inside
    autograd ('size of tensor a (16) must match …'); ranges of shape (2, 1) for x of shape (3,)
    silently returned a (2, 3) tensor."""
    for x, lo in [(torch.randn(4, 16), -torch.ones(4)), (torch.randn(3), -torch.ones(2, 1))]:
        with pytest.raises(ValueError, match=r"lo and hi must broadcast to x's shape .* \(C, 1, …, 1\)"):
            quantize_uniform(x, 4, lo, -lo)
    assert quantize_uniform(torch.randn(4, 16), 4, -torch.ones(4, 1), torch.ones(4, 1)).shape == (4, 16)


def test_per_channel_range_of_a_1d_tensor_is_one_range_per_value():
    x = torch.tensor([0.5, -2.0, 3.0])
    # was: amin/amax over dim=[] reduced over every value, one per-tensor range of shape (1,)
    lo, hi = minmax_range(x, symmetric=False, dim=0)
    assert lo.shape == hi.shape == x.shape
    assert torch.equal(lo, x) and torch.all(hi > lo) and torch.allclose(hi, x)
    lo, hi = minmax_range(x, dim=0)
    assert torch.equal(hi, x.abs()) and torch.equal(lo, -x.abs())
    q = UniformQuantizer(2, clip=None, per_channel=True)(x)
    assert torch.equal(q.sign(), x.sign())  # each value in its own range [-|x|, |x|]
    assert torch.allclose(q.abs(), 0.75 * x.abs())  # the outer level hi - Δ/2, Δ = 2|x|/4


def test_minmax_range_refuses_a_dim_the_tensor_does_not_have():
    x = torch.randn(2, 3)
    assert torch.equal(minmax_range(x, dim=-1)[1], x.abs().amax(0, keepdim=True))
    with pytest.raises(ValueError, match="dim must be in -2..1 .* got 2"):
        minmax_range(x, dim=2)  # was: taken as dim 0 (2 % 2), a range per row, silently


def test_sign_and_minmax_range_refuse_what_is_not_a_tensor():
    """A numpy array was "'numpy.ndarray' object has no attribute 'is_floating_point'" (sign,
    sign_ste) or "... 'detach'" (minmax_range): now quantize_uniform's TypeError."""
    import numpy as np

    for f in (sign, sign_ste, minmax_range, lambda x: quantize_uniform(x, 2, -1, 1)):
        with pytest.raises(TypeError, match="x must be a torch.Tensor, got ndarray"):
            f(np.ones(3))


def test_minmax_range_of_an_empty_tensor_is_a_clear_error():
    """Was torch's "Expected reduction dim ..."; no slices along dim still give no ranges."""
    for x, dim in ((torch.ones(0), None), (torch.ones(3, 0), None), (torch.ones(3, 0), 0)):
        with pytest.raises(ValueError, match=r"x of shape .* is empty"):
            minmax_range(x, dim=dim)
    lo, hi = minmax_range(torch.ones(0, 3), dim=0)  # an empty batch's per-sample ranges
    assert lo.shape == hi.shape == (0, 1)


def test_minmax_range_of_an_integer_tensor_is_float():
    """Was an int lo with a float hi."""
    for symmetric in (True, False):
        lo, hi = minmax_range(torch.tensor([3, -1, 2]), symmetric=symmetric)
        assert lo.dtype == hi.dtype == torch.float32
        assert (lo.item(), hi.item()) == ((-3.0, 3.0) if symmetric else (-1.0, 3.0))
    lo, hi = minmax_range(torch.tensor([2, 2]), symmetric=False)
    assert lo.dtype == hi.dtype == torch.float32 and lo.item() == 2.0 < hi.item()


def test_bit_width_errors_name_their_argument():
    """Were all "bits must be in 1..16, got 0", whichever argument was wrong."""
    with pytest.raises(ValueError, match="bits must be in 1..16, got 0"):
        check_bits(0)
    with pytest.raises(ValueError, match="bits_w must be in 1..16, got 0"):
        check_bits(0, "bits_w")
    with pytest.raises(ValueError, match="kernel_quantizer must be an integer in 1..16, got 2.5"):
        as_quantizer(2.5, "kernel_quantizer")
