"""Bit-packed binary matrix products: packing, the exact CPU reference, the GPU launcher.

For vectors a, b ∈ {−1, +1}^K coded as bits (+1 → 1, −1 → 0) the dot product is

    a·b = K − 2·popcount(a XOR b)

(each equal pair adds +1, each differing pair −1). `pack_bits` stores the bits of a matrix
along its last (reduction) axis in 64-bit words; `xnor_matmul` returns the exact integer
matrix A @ Bᵀ from two packed matrices. Element j of a row is bit j % 64 of word j // 64
(least significant bit first). When K is not a multiple of 64 the last word is padded with
0 bits in every packed row; `xnor_matmul` masks the bits past K off before counting (and
the true K, not 64·words, enters the formula), so results never depend on the padding.

The CPU reference (numpy's `bitwise_count`, in tiles that bound memory) is the oracle the
GPU kernels of `kernels/*.cu` are compared with, exactly. The launcher compiles those
kernels at run time with PyCUDA (else CuPy) for torch CUDA tensors; `gpu_status()` says
what is missing where neither runs. Two GPU kernels compute the same product: "popc" on the
CUDA cores (XOR + popcount, any GPU) and "tc" on the binary tensor cores (compute
capability 8.0 and later; AND + popcount, a·b = K − 2·popc(a) − 2·popc(b) + 4·popc(a AND b)).
`export_packed(model)` turns a trained bnn-mlp into a `PackedBinaryMLP` (packed weights,
batch-norm + sign folded into integer thresholds) whose predictions equal the torch model's.
"""

from __future__ import annotations

import copy
import functools
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

__all__ = [
    "WORD_BITS",
    "n_words",
    "pack_bits",
    "unpack_bits",
    "xnor_matmul",
    "xnor_matmul_cpu",
    "kernel_dir",
    "kernel_source",
    "kernel_defines",
    "gpu_backend",
    "gpu_status",
    "gpu_available",
    "gpu_kernel",
    "GPU_KERNELS",
    "baseline_matmul",
    "threshold_pack",
    "fold_bn_sign",
    "PackedLayer",
    "PackedBinaryMLP",
    "export_packed",
    "size_report",
    "PAPER",
    "parse_pm1",
    "dot_by_xnor",
    "committed_benchmarks",
]

WORD_BITS = 64
_TILE = 256 * 256  # outputs of one CPU tile: 64 Ki words of scratch (0.6 MB), cache-sized

Array = np.ndarray | Tensor


def n_words(k: int) -> int:
    """Number of 64-bit words that hold k bits: ⌈k / 64⌉."""
    k = _check_k(k)
    return -(-k // WORD_BITS)


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not float(k).is_integer() or k < 1:
        raise ValueError(f"k (the length of the reduction axis) must be a positive integer, got {k!r}")
    if k >= 2**31:
        raise ValueError(f"k must be below 2^31 so that results fit in int32, got {k}")
    return int(k)


def pack_bits(x: Array) -> Array:
    """Pack the signs of `x` along its last axis: shape (..., K) → (..., ⌈K/64⌉) words.

    Bit j % 64 of word j // 64 is 1 where x[..., j] ≥ 0 (sign(0) = +1) and 0 where it is
    negative; padding bits past K are 0. A numpy input gives `uint64` words; a torch input
    gives `int64` words on the same device (the same bits; torch has no full uint64), packed
    by `kernels/pack.cu` for CUDA tensors.
    """
    if isinstance(x, Tensor):
        if x.is_cuda:
            return _gpu_pack_bits(x)
        return torch.from_numpy(_pack_numpy(x.detach().numpy()).view(np.int64))
    return _pack_numpy(np.asarray(x))


def _pack_numpy(x: np.ndarray) -> np.ndarray:
    if x.ndim == 0 or x.shape[-1] == 0:
        raise ValueError(f"pack_bits needs an array with a non-empty last axis, got shape {x.shape}")
    if x.dtype == bool or not (np.issubdtype(x.dtype, np.number)):
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
    for CUDA tensors `out` (a contiguous (M, N) int32 tensor) receives it if given.
    """
    k = _check_k(k)
    if isinstance(a_packed, Tensor) != isinstance(b_packed, Tensor):
        raise ValueError("a_packed and b_packed must both be numpy arrays or both torch tensors")
    if isinstance(a_packed, Tensor):
        if a_packed.device != b_packed.device:
            raise ValueError(
                f"a_packed is on {a_packed.device} but b_packed on {b_packed.device}: move one"
            )
        if a_packed.is_cuda:
            return _gpu_xnor_matmul(a_packed, b_packed, k, out, kernel)
        out = xnor_matmul_cpu(a_packed.detach().numpy(), b_packed.detach().numpy(), k)
        return torch.from_numpy(out)
    return xnor_matmul_cpu(np.asarray(a_packed), np.asarray(b_packed), k)


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




# ---------------------------------------------------------------------------------------------
# The GPU launcher: kernels/*.cu compiled at run time (PyCUDA, else CuPy), on torch CUDA tensors


def kernel_dir() -> Path:
    """Folder of the CUDA sources: `kernels/` of a source checkout, else `analysis/_kernels`."""
    here = Path(__file__).resolve().parent
    for folder in (here.parent / "kernels", here / "_kernels"):
        if (folder / "xnor_gemm.cu").is_file():
            return folder
    raise FileNotFoundError(
        f"no CUDA sources: neither {here.parent / 'kernels'} nor {here / '_kernels'} holds "
        "xnor_gemm.cu (reinstall the package, or run from a source checkout)"
    )


def kernel_source(name: str) -> str:
    """The text of kernels/<name>.cu (name without the extension)."""
    return (kernel_dir() / f"{name}.cu").read_text()


def kernel_defines(name: str) -> dict[str, int]:
    """Integer `#define`s of kernels/<name>.cu: the launch geometry shared with the kernels."""
    pattern = r"^#define\s+(\w+)\s+(\d+)\s*$"
    return {k: int(v) for k, v in re.findall(pattern, kernel_source(name), flags=re.M)}


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


class _PyCuda:
    """PyCUDA: SourceModule (cached per device) in the primary context torch uses too."""

    name = "pycuda"

    def __init__(self) -> None:
        import pycuda.autoprimaryctx  # noqa: F401  retains and pushes the primary context
        import pycuda.driver as drv
        from pycuda.compiler import SourceModule

        self._drv, self._source_module = drv, SourceModule
        self._contexts: dict[int, object] = {}

    def _context(self, device: int):
        if device not in self._contexts:
            self._contexts[device] = self._drv.Device(device).retain_primary_context()
        return self._contexts[device]

    @functools.cache  # noqa: B019  one backend object per process
    def module(self, file: str, device: int):
        ctx = self._context(device)
        ctx.push()
        try:
            return self._source_module(kernel_source(file), no_extern_c=True, options=["-O3"])
        finally:
            self._drv.Context.pop()

    @functools.cache  # noqa: B019
    def function(self, file: str, name: str, device: int):
        return self.module(file, device).get_function(name)

    def launch(self, file: str, name: str, grid: tuple, block: tuple, args: tuple, device: int):
        fn = self.function(file, name, device)
        stream = torch.cuda.current_stream(device)
        if stream != torch.cuda.default_stream(device):
            stream.synchronize()  # kernels go to the legacy default stream, ordered after it
        converted = [
            np.uintp(a.__cuda_array_interface__["data"][0]) if isinstance(a, Tensor) else np.int32(a)
            for a in args
        ]
        ctx = self._context(device)
        ctx.push()
        try:
            fn(*converted, block=block, grid=grid)
        finally:
            self._drv.Context.pop()


class _CuPy:
    """CuPy: the same sources through NVRTC (`cupy.RawModule`), on torch's current stream."""

    name = "cupy"

    def __init__(self) -> None:
        import cupy

        self._cupy = cupy

    @functools.cache  # noqa: B019  one backend object per process
    def module(self, file: str, device: int):
        with self._cupy.cuda.Device(device):
            return self._cupy.RawModule(code=kernel_source(file), options=("-std=c++14",))

    @functools.cache  # noqa: B019
    def function(self, file: str, name: str, device: int):
        return self.module(file, device).get_function(name)

    def launch(self, file: str, name: str, grid: tuple, block: tuple, args: tuple, device: int):
        fn = self.function(file, name, device)
        cp = self._cupy
        converted = tuple(cp.asarray(a) if isinstance(a, Tensor) else np.int32(a) for a in args)
        stream = cp.cuda.ExternalStream(torch.cuda.current_stream(device).cuda_stream)
        with cp.cuda.Device(device), stream:
            fn(grid, block, converted)


_BACKENDS = {"pycuda": _PyCuda, "cupy": _CuPy}
_backend_cache: dict[str, object] = {}
_reasons: dict[str, str] = {}


def gpu_backend(name: str | None = None) -> _PyCuda | _CuPy | None:
    """The GPU backend to launch kernels with, or None (see `gpu_status` for why).

    `name` picks "pycuda" or "cupy"; by default the environment variable
    BITS_AND_BIAS_GPU_BACKEND, else PyCUDA where it imports, else CuPy.
    """
    name = name or os.environ.get("BITS_AND_BIAS_GPU_BACKEND") or None
    if name is not None and name not in _BACKENDS:
        raise ValueError(f"GPU backend must be one of {sorted(_BACKENDS)}, got {name!r}")
    if not torch.cuda.is_available():
        _reasons["gpu"] = "torch sees no CUDA GPU (torch.cuda.is_available() is False)"
        return None
    for candidate in [name] if name else list(_BACKENDS):
        if candidate not in _backend_cache:
            try:
                _backend_cache[candidate] = _BACKENDS[candidate]()
            except Exception as error:  # ImportError, or a driver error while starting
                _reasons[candidate] = f"{candidate} unavailable ({type(error).__name__}: {error})"
                continue
        return _backend_cache[candidate]
    return None


def gpu_status() -> str:
    """One line: which GPU and backend run the kernels, or what is missing."""
    backend = gpu_backend()
    if backend is not None:
        return f"{torch.cuda.get_device_name()} via {backend.name}"
    if "gpu" in _reasons:
        return _reasons["gpu"]
    missing = "; ".join(_reasons.get(n, n) for n in _BACKENDS)
    return (
        f"no GPU backend: {missing}. Install PyCUDA with pip install 'bits-and-bias[gpu]' "
        "(see ../shared/gpu/README.md without network) or CuPy"
    )


def gpu_available() -> bool:
    """True where CUDA tensors can run kernels/*.cu (a GPU and PyCUDA or CuPy)."""
    return gpu_backend() is not None


def _fallback_warning() -> None:
    warnings.warn(f"{gpu_status()}; using the CPU reference", RuntimeWarning, stacklevel=3)


def _launch(file: str, name: str, grid: tuple, block: tuple, args: tuple, device: torch.device):
    if len(grid) > 1 and grid[1] > 65535:
        raise ValueError(f"{name}: grid {grid} exceeds 65535 blocks in y; split the rows")
    gpu_backend().launch(file, name, grid, block, args, device.index or 0)


def _words(t: Tensor, name: str) -> Tensor:
    if t.dtype not in (torch.int64, torch.uint64):
        raise ValueError(f"{name} must hold 64-bit words (int64) from pack_bits, got {t.dtype}")
    return t.contiguous().view(torch.int64)


def _gpu_pack_bits(x: Tensor) -> Tensor:
    """pack_bits on the device: kernels/pack.cu `pack_signs`, one thread per word."""
    if not gpu_available():
        _fallback_warning()
        return pack_bits(x.cpu()).to(x.device)
    if x.ndim == 0 or x.shape[-1] == 0:
        raise ValueError(f"pack_bits needs a tensor with a non-empty last axis, got {tuple(x.shape)}")
    k = x.shape[-1]
    rows = x.reshape(-1, k).to(torch.float32).contiguous()
    w = n_words(k)
    out = torch.empty(rows.shape[0], w, dtype=torch.int64, device=x.device)
    threads = kernel_defines("pack")["PACK_THREADS"]
    grid = (_cdiv(rows.shape[0] * w, threads), 1)
    _launch("pack", "pack_signs", grid, (threads, 1, 1), (rows, out, rows.shape[0], k, w), x.device)
    return out.reshape(*x.shape[:-1], w)


GPU_KERNELS = {"popc": "xnor_gemm", "tc": "xnor_gemm_tc"}


def gpu_kernel(kernel: str = "auto", device: torch.device | int | None = None) -> str:
    """The XNOR GEMM kernel that runs on `device`: "popc" (CUDA cores) or "tc" (tensor cores).

    "auto" means the environment variable BITS_AND_BIAS_XNOR_KERNEL if set, else "tc" where
    the GPU has binary tensor cores with AND (compute capability 8.0 and later), else "popc".
    """
    if kernel == "auto":
        kernel = os.environ.get("BITS_AND_BIAS_XNOR_KERNEL") or "auto"
    if kernel not in ("auto", *GPU_KERNELS):
        raise ValueError(f"kernel must be 'auto' or one of {sorted(GPU_KERNELS)}, got {kernel!r}")
    if not torch.cuda.is_available():
        return "popc" if kernel == "auto" else kernel  # what a GPU would run; nothing runs here
    major, minor = torch.cuda.get_device_capability(device)
    if kernel == "auto":
        return "tc" if major >= 8 else "popc"
    if kernel == "tc" and major < 8:
        raise ValueError(f"kernel 'tc' needs compute capability 8.0 or later; this GPU has {major}.{minor}")
    return kernel


def _gpu_xnor_matmul(a: Tensor, b: Tensor, k: int, out: Tensor | None = None,
                     kernel: str = "auto") -> Tensor:
    """kernels/xnor_gemm.cu on CUDA tensors; `out` (M, N) int32 is written if given."""
    a, b = _words(a, "a_packed"), _words(b, "b_packed")
    m, n, w = check_operands(tuple(a.shape), tuple(b.shape), k)
    name = GPU_KERNELS[gpu_kernel(kernel, a.device)]
    if not gpu_available():
        _fallback_warning()
        result = xnor_matmul(a.cpu(), b.cpu(), k).to(a.device)
        return result if out is None else out.copy_(result)
    if out is None:
        out = torch.empty(m, n, dtype=torch.int32, device=a.device)
    elif out.shape != (m, n) or out.dtype != torch.int32 or not out.is_contiguous():
        raise ValueError(f"out must be a contiguous ({m}, {n}) int32 tensor, got {tuple(out.shape)}")
    d = kernel_defines("xnor_gemm")
    grid = (_cdiv(n, d["XNOR_BN"]), _cdiv(m, d["XNOR_BM"]))
    _launch("xnor_gemm", name, grid, (d["XNOR_THREADS"], 1, 1), (a, b, out, m, n, w, k), a.device)
    return out


def baseline_matmul(a: Tensor, b: Tensor, out: Tensor | None = None) -> Tensor:
    """The paper's unoptimized GEMM, C = A·B with A (M, K), B (K, N) float32.

    On CUDA tensors kernels/baseline_gemm.cu (one thread per output); on CPU tensors
    torch.matmul, the same product.
    """
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"baseline_matmul needs (M, K) and (K, N), got {tuple(a.shape)}, {tuple(b.shape)}")
    if not a.is_cuda or not gpu_available():
        if a.is_cuda:
            _fallback_warning()
        result = a.float().cpu() @ b.float().cpu()
        result = result.to(a.device)
        return result if out is None else out.copy_(result)
    a, b = a.float().contiguous(), b.float().contiguous()
    m, k = a.shape
    n = b.shape[1]
    if out is None:
        out = torch.empty(m, n, dtype=torch.float32, device=a.device)
    d = kernel_defines("baseline_gemm")
    grid = (_cdiv(n, d["BASELINE_BX"]), _cdiv(m, d["BASELINE_BY"]))
    _launch("baseline_gemm", "baseline_gemm", grid, (d["BASELINE_BX"], d["BASELINE_BY"], 1),
            (a, b, out, m, n, k), a.device)
    return out


def threshold_pack(y: Tensor, s: Tensor, t: Tensor) -> Tensor:
    """Packed bits of S[j]·Y[r, j] ≥ T[j]: batch-norm + sign as an integer threshold.

    y (R, N) int32 products, s (N,) ∈ {−1, +1} and t (N,) int32; returns (R, ⌈N/64⌉) words.
    On CUDA tensors kernels/pack.cu `threshold_pack` does it in one pass.
    """
    if y.ndim != 2 or s.shape != (y.shape[1],) or t.shape != (y.shape[1],):
        raise ValueError(f"threshold_pack needs y (R, N), s (N,), t (N,); got {tuple(y.shape)}, "
                         f"{tuple(s.shape)}, {tuple(t.shape)}")
    if not y.is_cuda or not gpu_available():
        if y.is_cuda:
            _fallback_warning()
        bits = (s.cpu().long() * y.cpu().long()) >= t.cpu().long()
        return pack_bits(bits.float() * 2 - 1).to(y.device)
    y = y.to(torch.int32).contiguous()
    s, t = s.to(y.device, torch.int32).contiguous(), t.to(y.device, torch.int32).contiguous()
    r, n = y.shape
    w = n_words(n)
    out = torch.empty(r, w, dtype=torch.int64, device=y.device)
    threads = kernel_defines("pack")["PACK_THREADS"]
    _launch("pack", "threshold_pack", (_cdiv(r * w, threads), 1), (threads, 1, 1),
            (y, s, t, out, r, n, w), y.device)
    return out


# ---------------------------------------------------------------------------------------------
# Packed inference of a trained binarized MLP (the bnn-mlp of analysis.models)
#
# Hidden unit j of layer ℓ computes y_j = Σ_i sign(W_ji)·x_i, then BN and sign:
#     x'_j = sign(γ_j (y_j − μ_j)/σ_j + β_j) = sign(y_j − τ_j),  τ_j = μ_j − β_j σ_j / γ_j,
# the comparison flipped when γ_j < 0 (paper). With sign(0) = +1 the next layer's bit is
#     bit_j = [s_j·y_j ≥ t_j],  s_j = ±1,
# and, y_j being an integer for binary inputs, t_j is an integer. Rather than trusting τ_j in
# real arithmetic, t_j is found by bisection on the BN module itself (its float32 map is
# monotone in y): the packed network then reproduces the torch model's float decisions
# exactly, ties at BN(y) = 0 included (they give bit 1, as sign(0) = +1).


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
    """
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
        t = torch.where(active, t, torch.where(p_lo, -inf, inf)).to(torch.float32)
    else:
        t = torch.where(rising, hi, torch.where(falling, -lo, torch.zeros((), dtype=torch.int64)))
        t = torch.where(active, t, torch.where(p_lo, torch.tensor(-k), torch.tensor(k + 1)))
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
    """Packed form of a trained bnn-mlp (see `PackedBinaryMLP`); the model is not changed."""
    pairs = _binary_layers(model)
    layers = []
    for i, (lin, bn) in enumerate(pairs):
        bn_eval = copy.deepcopy(bn).cpu().eval()
        w = lin.kernel_quantizer(lin.weight.detach().cpu())
        k = w.shape[1]
        last = i == len(pairs) - 1
        s, t = (None, None) if last else fold_bn_sign(bn_eval, None if i == 0 else k)
        layers.append(PackedLayer(pack_bits(w), k, s, t))
    head = copy.deepcopy(pairs[-1][1]).cpu().eval()
    return PackedBinaryMLP(layers, head)


@dataclass
class PackedBinaryMLP:
    """A binarized MLP for inference only: packed ±1 weights, integer thresholds, XNOR layers.

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
        x = x.reshape(x.shape[0], -1).to(self.device, torch.float32)
        first = self.layers[0]
        if x.shape[1] != first.k:
            raise ValueError(f"the model takes {first.k} input features, got {x.shape[1]}")
        y = torch.nn.functional.linear(x, self._weights_pm(first))
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


# ---------------------------------------------------------------------------------------------
# For the lesson: one dot product step by step, the paper's figures, committed GPU results

PAPER = {
    "source": "Hubara et al., Binarized Neural Networks, NIPS 2016 (GTX 750)",
    "xnor_vs_baseline_8192": 23.0,  # XNOR kernel vs the unoptimized GPU kernel, 8192^3
    "xnor_vs_cublas_8192": 3.4,  # XNOR kernel vs cuBLAS, 8192^3
    "mlp_xnor_vs_baseline": 7.0,  # MNIST MLP inference with XNOR vs baseline kernel
}


def parse_pm1(text: str) -> np.ndarray:
    """'+-+ -' → [1, −1, 1, −1] float32: '+' is +1, '-' is −1, spaces are ignored."""
    chars = [c for c in text if not c.isspace()]
    bad = sorted({c for c in chars if c not in "+-"})
    if bad:
        raise ValueError(f"a ±1 vector is written with '+' and '-' only, got {''.join(bad)!r}")
    if not chars:
        raise ValueError("a ±1 vector needs at least one '+' or '-'")
    return np.array([1.0 if c == "+" else -1.0 for c in chars], dtype=np.float32)


def dot_by_xnor(a: np.ndarray, b: np.ndarray) -> dict:
    """a·b for ±1 vectors, through the bits: a·b = K − 2·popcount(a XOR b).

    Returns the bits of a and b (1 for +1), their XOR, popcount p, K − 2p (from
    `xnor_matmul`) and the float dot product, for the lesson's widget.
    """
    a, b = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"two ±1 vectors of the same length, got shapes {a.shape} and {b.shape}")
    k = a.shape[0]
    bits_a, bits_b = (a >= 0).astype(np.uint8), (b >= 0).astype(np.uint8)
    xor = bits_a ^ bits_b
    dot = int(xnor_matmul(pack_bits(a[None]), pack_bits(b[None]), k)[0, 0])
    return {"k": k, "bits_a": bits_a, "bits_b": bits_b, "xor": xor,
            "popcount": int(xor.sum()), "dot": dot, "dot_float": float(a @ b)}


def committed_benchmarks(folder: str | Path | None = None) -> list[dict]:
    """GPU results of `bench xnor` / `bench bnn-inference` committed as benchmarks/*.json."""
    import json

    folder = Path(folder) if folder is not None else Path(__file__).resolve().parents[1] / "benchmarks"
    results = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        result = json.loads(path.read_text())
        if result.get("benchmark") in ("xnor", "bnn-inference") and result.get("device") == "cuda":
            results.append({**result, "file": path.name})
    return results
