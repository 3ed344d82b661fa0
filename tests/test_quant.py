import math

import pytest
import torch

from analysis.quant import (
    SignQuantizer,
    UniformQuantizer,
    as_quantizer,
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


def test_quantizer_objects():
    assert isinstance(as_quantizer("sign"), SignQuantizer)
    assert as_quantizer(None) is None
    uq = as_quantizer(3)
    assert isinstance(uq, UniformQuantizer) and uq.bits == 3
    assert len(torch.unique(UniformQuantizer(2, clip=None)(torch.randn(1000)))) == 4
    with pytest.raises(ValueError, match="unknown quantizer"):
        as_quantizer("ternary")
    with pytest.raises(ValueError, match="clip must be > 0"):
        UniformQuantizer(4, clip=0.0)


def test_weight_ste_passes_the_gradient_unchanged():
    w = torch.tensor([-1.5, -1.0, 0.0, 0.4, 1.0], requires_grad=True)
    q = sign_ste(w, cancel=False)
    assert q.tolist() == [-1, -1, 1, 1, 1]
    q.backward(torch.arange(1.0, 6.0))
    assert w.grad.tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert repr(as_quantizer("sign_weights")) == "SignQuantizer(cancel=False)"
