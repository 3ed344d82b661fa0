"""Bit packing and the exact CPU reference of analysis.xnor."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from analysis import xnor


def random_pm1(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.choice(np.array([-1.0, 1.0], dtype=np.float32), size=shape)


SHAPES = [(1, 1, 1), (1, 7, 63), (5, 1, 64), (3, 4, 65), (17, 9, 100), (40, 33, 128),
          (8, 300, 129), (257, 3, 200), (2, 2, 1000)]


@pytest.mark.parametrize("m,n,k", SHAPES)
def test_reference_equals_float_product(m: int, n: int, k: int) -> None:
    rng = np.random.default_rng(m * 1000 + n * 10 + k)
    a, b = random_pm1(rng, m, k), random_pm1(rng, n, k)
    got = xnor.xnor_matmul(xnor.pack_bits(a), xnor.pack_bits(b), k)
    want = (a.astype(np.float64) @ b.T.astype(np.float64)).astype(np.int64)
    assert got.dtype == np.int32 and got.shape == (m, n)
    np.testing.assert_array_equal(got, want)


def test_reference_tiles_cover_large_outputs() -> None:
    """More rows and columns than one 256 x 256 tile, and K spanning several words."""
    rng = np.random.default_rng(1)
    m, n, k = 300, 520, 130
    a, b = random_pm1(rng, m, k), random_pm1(rng, n, k)
    got = xnor.xnor_matmul_cpu(xnor.pack_bits(a), xnor.pack_bits(b), k)
    np.testing.assert_array_equal(got, (a @ b.T).astype(np.int64))


def test_torch_tensors_give_torch_results() -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(6, 70, generator=g)
    b = torch.randn(4, 70, generator=g)
    pa, pb = xnor.pack_bits(a), xnor.pack_bits(b)
    assert pa.dtype == torch.int64 and pa.shape == (6, 2)
    got = xnor.xnor_matmul(pa, pb, 70)
    want = torch.where(a >= 0, 1.0, -1.0) @ torch.where(b >= 0, 1.0, -1.0).T
    assert isinstance(got, torch.Tensor) and got.dtype == torch.int32
    assert torch.equal(got, want.to(torch.int32))


def test_packing_layout_and_padding() -> None:
    x = -np.ones(70, dtype=np.float32)
    x[[0, 3, 64, 69]] = 1.0
    x[5] = 0.0  # sign(0) = +1
    (w0, w1) = xnor.pack_bits(x)
    assert w0 == np.uint64((1 << 0) | (1 << 3) | (1 << 5))
    assert w1 == np.uint64((1 << 0) | (1 << 5))  # bits 64 and 69; padding bits 70..127 stay 0
    assert xnor.pack_bits(np.ones(64)).dtype == np.uint64
    assert xnor.pack_bits(np.ones(64))[0] == np.uint64(2**64 - 1)


@pytest.mark.parametrize("shape", [(1,), (63,), (64,), (3, 65), (2, 3, 130)])
def test_round_trip(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(len(shape))
    x = rng.standard_normal(shape).astype(np.float32)
    x.flat[0] = 0.0
    back = xnor.unpack_bits(xnor.pack_bits(x), shape[-1])
    np.testing.assert_array_equal(back, np.where(x >= 0, 1.0, -1.0))
    t = torch.from_numpy(x)
    assert torch.equal(xnor.unpack_bits(xnor.pack_bits(t), shape[-1]), torch.from_numpy(back))


def test_integer_inputs_pack_by_sign() -> None:
    x = np.array([[-3, 0, 2, -1]])
    np.testing.assert_array_equal(xnor.unpack_bits(xnor.pack_bits(x), 4), [[-1, 1, 1, -1]])


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((3, 0)), "non-empty last axis"),
        (np.float32(1.0), "non-empty last axis"),
        (np.array([1.0, np.nan]), "NaN"),
        (np.array(["a", "b"]), "real-valued"),
        (np.array([True, False]), "real-valued"),
    ],
)
def test_pack_rejects_bad_inputs(bad: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        xnor.pack_bits(bad)


def test_matmul_rejects_bad_inputs() -> None:
    a = xnor.pack_bits(np.ones((3, 100)))
    b = xnor.pack_bits(np.ones((2, 100)))
    with pytest.raises(ValueError, match="k=200 needs 4 words per row, got 2"):
        xnor.xnor_matmul(a, b, 200)
    with pytest.raises(ValueError, match="positive integer"):
        xnor.xnor_matmul(a, b, 0)
    with pytest.raises(ValueError, match="positive integer"):
        xnor.xnor_matmul(a, b, 99.5)
    with pytest.raises(ValueError, match="2-d packed"):
        xnor.xnor_matmul(a[0], b, 100)
    with pytest.raises(ValueError, match="64-bit words"):
        xnor.xnor_matmul(a.astype(np.float64), b, 100)
    with pytest.raises(ValueError, match="both be numpy arrays or both torch"):
        xnor.xnor_matmul(torch.from_numpy(a.view(np.int64)), b, 100)
    with pytest.raises(ValueError, match="k=300 needs 5 words per row"):
        xnor.unpack_bits(a, 300)
