"""Bit packing and the exact CPU reference of the ±1 matrix product.

For vectors a, b ∈ {−1, +1}^K coded as bits (+1 → 1, −1 → 0) the dot product is

    a·b = K − 2·popcount(a XOR b)

(each equal pair adds +1, each differing pair −1). `pack_bits` stores the bits of a matrix
along its last (reduction) axis in 64-bit words; `xnor_matmul` returns the exact integer
matrix A @ Bᵀ from two packed matrices. Element j of a row is bit j % 64 of word j // 64
(least significant bit first). When K is not a multiple of 64 the last word is padded with
0 bits in every packed row; `xnor_matmul` masks the bits past K off before counting (and
the true K, not 64·words, enters the formula), so results never depend on the padding.

The CPU reference (numpy's `bitwise_count`, in tiles that bound memory) is the oracle the
GPU kernels are compared with, exactly; CUDA tensors go to `analysis.xnor.gpu`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from analysis.checks import check_count

WORD_BITS = 64
_TILE = 256 * 256  # outputs of one CPU tile: 64 Ki words of scratch (0.6 MB), cache-sized

Array = np.ndarray | Tensor


def n_words(k: int) -> int:
    """Number of 64-bit words that hold k bits: ⌈k / 64⌉."""
    k = _check_k(k)
    return -(-k // WORD_BITS)


def _check_k(k: int) -> int:
    k = check_count("k (the length of the reduction axis)", k)
    if k >= 2**31:
        raise ValueError(f"k must be below 2^31 so that results fit in int32, got {k}")
    return k


def pack_bits(x: Array) -> Array:
    """Pack the signs of `x` along its last axis: shape (..., K) → (..., ⌈K/64⌉) words.

    Bit j % 64 of word j // 64 is 1 where x[..., j] ≥ 0 (sign(0) = +1) and 0 where it is
    negative; padding bits past K are 0. A numpy input gives `uint64` words; a torch input
    gives `int64` words on the same device (the same bits; torch has no full uint64), packed
    by `kernels/pack.cu` for CUDA tensors.
    """
    if isinstance(x, Tensor):
        if x.is_cuda:
            from analysis.xnor.gpu import cuda_pack_bits  # the launcher builds on this module

            return cuda_pack_bits(x)
        x = x.detach()
        if x.dtype == torch.bfloat16:  # numpy has no bfloat16; float32 holds it exactly
            x = x.float()
        return torch.from_numpy(_pack_numpy(x.numpy()).view(np.int64))
    return _pack_numpy(np.asarray(x))


def _pack_numpy(x: np.ndarray) -> np.ndarray:
    if x.ndim == 0 or x.shape[-1] == 0:
        raise ValueError(f"pack_bits needs an array with a non-empty last axis, got shape {x.shape}")
    if x.dtype == bool or not np.issubdtype(x.dtype, np.number) or np.iscomplexobj(x):
        raise ValueError(f"pack_bits needs a real-valued array, got dtype {x.dtype}")
    if np.issubdtype(x.dtype, np.floating) and np.isnan(x).any():
        raise ValueError("pack_bits got NaN values: their sign is undefined")
    k = x.shape[-1]
    w = n_words(k)
    bits = np.zeros(x.shape[:-1] + (w * WORD_BITS,), dtype=bool)
    bits[..., :k] = x >= 0
    # little-endian bytes, least significant bit first: bit j of the row is bit j % 64 of word j // 64
    packed = np.packbits(bits, axis=-1, bitorder="little")
    return np.ascontiguousarray(packed).view("<u8").astype(np.uint64, copy=False)


def unpack_bits(packed: Array, k: int) -> Array:
    """Inverse of `pack_bits` up to the sign: words (..., ⌈k/64⌉) → ±1 float32 (..., k)."""
    k = _check_k(k)
    if isinstance(packed, Tensor):
        device = packed.device
        out = _unpack_numpy(packed.detach().cpu().numpy(), k)
        return torch.from_numpy(out).to(device)
    return _unpack_numpy(np.asarray(packed), k)


def _unpack_numpy(packed: np.ndarray, k: int) -> np.ndarray:
    packed = _as_words(packed, "packed")
    if packed.shape[-1] != n_words(k):
        raise ValueError(
            f"k={k} needs {n_words(k)} words per row, but the packed array has {packed.shape[-1]}"
        )
    as_bytes = np.ascontiguousarray(packed).astype("<u8", copy=False).view(np.uint8)
    bits = np.unpackbits(as_bytes, axis=-1, bitorder="little")[..., :k]
    return np.where(bits == 1, np.float32(1), np.float32(-1))


def _as_words(x: np.ndarray, name: str) -> np.ndarray:
    if x.dtype not in (np.uint64, np.int64):
        raise ValueError(f"{name} must hold 64-bit words (uint64 or int64) from pack_bits, got {x.dtype}")
    if x.ndim == 0:
        raise ValueError(f"{name} must have a word axis, got a scalar")
    return x.view(np.uint64)


def xnor_matmul(a_packed: Array, b_packed: Array, k: int, *, out: Tensor | None = None,
                kernel: str = "auto") -> Array:
    """Exact A @ Bᵀ for ±1 matrices A (M, K) and B (N, K), both packed along K.

    C[m, n] = K − 2·popcount(A[m] XOR B[n]), an int32 matrix of shape (M, N) with
    |C| ≤ K. numpy inputs (or CPU tensors) use the CPU reference; CUDA tensors run
    `kernels/xnor_gemm.cu` (with a warning and the CPU reference where no GPU backend is
    installed): `kernel` "popc" (CUDA cores), "tc" (binary tensor cores, compute capability
    ≥ 8.0) or "auto" (see `gpu_kernel`). The result has the type and device of the inputs;
    for torch tensors `out` (a contiguous (M, N) int32 tensor on their device) receives it if
    given. `kernel` and `out` are checked on the CPU too, so code that passes them fails there
    as it would on a GPU.
    """
    from analysis.xnor.gpu import _check_out, check_kernel, cuda_xnor_matmul  # builds on this module

    k = _check_k(k)
    check_kernel(kernel)
    if isinstance(a_packed, Tensor) != isinstance(b_packed, Tensor):
        raise ValueError("a_packed and b_packed must both be numpy arrays or both torch tensors")
    if not isinstance(a_packed, Tensor):
        if out is not None:
            raise ValueError("out is for torch tensors; numpy inputs return a new int32 array")
        return xnor_matmul_cpu(np.asarray(a_packed), np.asarray(b_packed), k)
    if a_packed.device != b_packed.device:
        raise ValueError(f"a_packed is on {a_packed.device} but b_packed on {b_packed.device}: move one")
    if a_packed.is_cuda:
        return cuda_xnor_matmul(a_packed, b_packed, k, out, kernel)
    result = torch.from_numpy(xnor_matmul_cpu(a_packed.detach().numpy(), b_packed.detach().numpy(), k))
    if out is None:
        return result
    _check_out(out, tuple(result.shape), torch.int32, a_packed.device)
    return out.copy_(result)


def check_operands(a_shape: tuple, b_shape: tuple, k: int) -> tuple[int, int, int]:
    """Validate packed operand shapes (M, W), (N, W) for k bits; return (M, N, W)."""
    if len(a_shape) != 2 or len(b_shape) != 2:
        raise ValueError(
            f"xnor_matmul needs 2-d packed matrices (rows, words), got shapes {tuple(a_shape)} "
            f"and {tuple(b_shape)}"
        )
    w = n_words(k)
    if a_shape[1] != w or b_shape[1] != w:
        raise ValueError(
            f"k={k} needs {w} words per row, got {a_shape[1]} (a) and {b_shape[1]} (b): "
            "pack both operands along the same reduction axis of length k"
        )
    return a_shape[0], b_shape[0], w


def xnor_matmul_cpu(a_packed: np.ndarray, b_packed: np.ndarray, k: int) -> np.ndarray:
    """The CPU reference: C = K − 2·popcount(A XOR B) with numpy, tile by tile.

    A tile holds at most 64 Ki outputs (256 x 256, or flatter when M < 256); scratch memory
    is two such buffers, whatever M and N are. Bits past K in the last word are ignored.
    """
    k = _check_k(k)
    a = _as_words(np.asarray(a_packed), "a_packed")
    b = _as_words(np.asarray(b_packed), "b_packed")
    m, n, w = check_operands(a.shape, b.shape, k)
    if k % WORD_BITS:  # mask the padding, as the GPU kernels do: it must count nothing
        tail = np.uint64((1 << (k % WORD_BITS)) - 1)
        a, b = a.copy(), b.copy()
        a[:, -1] &= tail
        b[:, -1] &= tail
    counts = np.zeros((m, n), dtype=np.int32)
    if m == 0 or n == 0:
        return counts
    tm = min(m, 256)  # a flat tile when M is small: fewer, longer numpy passes
    tn = min(n, max(256, _TILE // tm))
    xor = np.empty((tm, tn), dtype=np.uint64)
    pop = np.empty((tm, tn), dtype=np.uint8)
    for i in range(0, m, tm):
        a_i = a[i : i + tm]
        for j in range(0, n, tn):
            b_j = b[j : j + tn]
            acc = counts[i : i + tm, j : j + tn]
            x = xor[: a_i.shape[0], : b_j.shape[0]]
            p = pop[: a_i.shape[0], : b_j.shape[0]]
            for word in range(w):
                np.bitwise_xor(a_i[:, word, None], b_j[None, :, word], out=x)
                np.bitwise_count(x, out=p)
                acc += p
    return k - 2 * counts
