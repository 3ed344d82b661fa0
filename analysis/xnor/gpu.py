"""The GPU launcher: kernels/*.cu compiled at run time (PyCUDA, else CuPy), on torch CUDA tensors.

PyCUDA compiles with `SourceModule` in the primary context that torch uses too; CuPy, where
PyCUDA is missing, compiles the same sources with NVRTC (`cupy.RawModule`). Tensors pass
as device pointers (`__cuda_array_interface__`), never through the host. `gpu_status()` says
what is missing where neither runs; every function here then falls back to the CPU
reference of `analysis.xnor.packing`, with a warning. Two kernels compute the XNOR product:
"popc" on the CUDA cores (XOR + popcount, any GPU) and "tc" on the binary tensor cores
(compute capability 8.0 and later; AND + popcount,
a·b = K − 2·popc(a) − 2·popc(b) + 4·popc(a AND b)); `gpu_kernel` picks one.
"""

from __future__ import annotations

import functools
import os
import re
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from analysis.xnor.packing import check_operands, n_words, pack_bits, xnor_matmul


def kernel_dir() -> Path:
    """Folder of the CUDA sources: `kernels/` of a source checkout, else `analysis/_kernels`."""
    package = Path(__file__).resolve().parents[1]  # analysis/
    for folder in (package.parent / "kernels", package / "_kernels"):
        if (folder / "xnor_gemm.cu").is_file():
            return folder
    raise FileNotFoundError(
        f"no CUDA sources: neither {package.parent / 'kernels'} nor {package / '_kernels'} holds "
        "xnor_gemm.cu (reinstall the package, or run from a source checkout)"
    )


def kernel_source(name: str) -> str:
    """The text of kernels/<name>.cu (name without the extension)."""
    return (kernel_dir() / f"{name}.cu").read_text(encoding="utf-8")


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
        converted = [
            np.uintp(a.__cuda_array_interface__["data"][0]) if isinstance(a, Tensor) else np.int32(a)
            for a in args
        ]
        # The kernel goes to the legacy default stream (torch's default stream). On another
        # torch stream, order it after the work queued there, and that stream's next work
        # after it: both on the device, no host synchronization.
        stream, legacy = torch.cuda.current_stream(device), torch.cuda.default_stream(device)
        if stream != legacy:
            legacy.wait_stream(stream)
        ctx = self._context(device)
        ctx.push()
        try:
            fn(*converted, block=block, grid=grid)
        finally:
            self._drv.Context.pop()
        if stream != legacy:
            stream.wait_stream(legacy)


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
        with self._cupy.cuda.Device(device):  # RawModule compiles here, on first use: for `device`
            return self.module(file, device).get_function(name)

    def launch(self, file: str, name: str, grid: tuple, block: tuple, args: tuple, device: int):
        fn = self.function(file, name, device)
        cp = self._cupy
        converted = tuple(cp.asarray(a) if isinstance(a, Tensor) else np.int32(a) for a in args)
        stream = cp.cuda.ExternalStream(torch.cuda.current_stream(device).cuda_stream)
        with cp.cuda.Device(device), stream:
            fn(grid, block, converted)


_BACKENDS = {"pycuda": _PyCuda, "cupy": _CuPy}
_backend_cache: dict[str, object | None] = {}  # None: it failed to start, and is not tried again
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
            # once per process: a failed import is not cached by Python, and retrying it on every
            # launch would cost each kernel call the time of a search through sys.path
            try:
                _backend_cache[candidate] = _BACKENDS[candidate]()
            except Exception as error:  # ImportError, or a driver error while starting
                _backend_cache[candidate] = None
                _reasons[candidate] = f"{candidate} unavailable ({type(error).__name__}: {error})"
        if _backend_cache[candidate] is not None:
            return _backend_cache[candidate]
    return None


def gpu_status() -> str:
    """One line: which GPU and backend run the kernels, or what is missing."""
    backend = gpu_backend()
    if backend is not None:
        return f"{torch.cuda.get_device_name()} via {backend.name}"
    if "gpu" in _reasons:
        return _reasons["gpu"]
    chosen = os.environ.get("BITS_AND_BIAS_GPU_BACKEND")
    missing = "; ".join(_reasons.get(n, f"{n} not tried (BITS_AND_BIAS_GPU_BACKEND={chosen})")
                        for n in _BACKENDS)
    return (
        f"no GPU backend: {missing}. Install PyCUDA with pip install 'bits-and-bias[gpu]' "
        "(see the GPU section of README.md without network) or CuPy"
    )


def gpu_available() -> bool:
    """True where CUDA tensors can run kernels/*.cu (a GPU and PyCUDA or CuPy)."""
    return gpu_backend() is not None


def _fallback_warning() -> None:
    warnings.warn(f"{gpu_status()}; using the CPU reference", RuntimeWarning, stacklevel=3)


_GRID_Y_MAX = 65535  # CUDA's limit on gridDim.y: taller products are split into several launches


def _launch(file: str, name: str, grid: tuple, block: tuple, args: tuple, device: torch.device):
    if min(grid) < 1 or (len(grid) > 1 and grid[1] > _GRID_Y_MAX):
        raise ValueError(f"{name}: grid {grid} is outside CUDA's 1..65535 blocks in y")  # a launcher bug
    # __cuda_array_interface__ refuses tensors that require grad; the kernels take no gradients
    args = tuple(a.detach() if isinstance(a, Tensor) else a for a in args)
    gpu_backend().launch(file, name, grid, block, args, device.index or 0)


def _row_chunks(rows: int, rows_per_block: int) -> list[tuple[int, int]]:
    """(start, count) of the row ranges that one launch each covers, ≤ _GRID_Y_MAX blocks in y."""
    step = _GRID_Y_MAX * rows_per_block
    return [(i, min(step, rows - i)) for i in range(0, rows, step)]


def _check_out(out: Tensor, shape: tuple[int, int], dtype: torch.dtype, device: torch.device) -> None:
    if out.shape != shape or out.dtype != dtype or out.device != device or not out.is_contiguous():
        raise ValueError(
            f"out must be a contiguous {shape} {dtype} tensor on {device}, got a "
            f"{'' if out.is_contiguous() else 'non-contiguous '}{tuple(out.shape)} {out.dtype} "
            f"tensor on {out.device}"
        )


def _words(t: Tensor, name: str) -> Tensor:
    if t.dtype not in (torch.int64, torch.uint64):
        raise ValueError(f"{name} must hold 64-bit words (int64) from pack_bits, got {t.dtype}")
    return t.contiguous().view(torch.int64)


def cuda_pack_bits(x: Tensor) -> Tensor:
    """pack_bits on the device: kernels/pack.cu `pack_signs`, one warp per word.

    As on the CPU, bool and complex tensors are refused; NaN packs as 0 (not checked here:
    that would cost a synchronization).
    """
    if x.ndim == 0 or x.shape[-1] == 0:
        raise ValueError(f"pack_bits needs a tensor with a non-empty last axis, got {tuple(x.shape)}")
    if x.dtype == torch.bool or x.is_complex():
        raise ValueError(f"pack_bits needs a real-valued tensor, got dtype {x.dtype}")
    if not gpu_available():
        _fallback_warning()
        return pack_bits(x.cpu()).to(x.device)
    k = x.shape[-1]
    rows = x.detach().reshape(-1, k)
    if rows.dtype != torch.float32:  # the sign in x's own type: float64 −1e−300 is −0.0 in float32
        rows = torch.where(rows >= 0, 1.0, -1.0)
    rows = rows.contiguous()
    w = n_words(k)
    out = torch.empty(rows.shape[0], w, dtype=torch.int64, device=x.device)
    if rows.shape[0]:
        threads = kernel_defines("pack")["PACK_THREADS"]
        grid = (_cdiv(rows.shape[0] * w, threads // 32), 1)  # one warp per word
        _launch("pack", "pack_signs", grid, (threads, 1, 1), (rows, out, rows.shape[0], k, w), x.device)
    return out.reshape(*x.shape[:-1], w)


GPU_KERNELS = {"popc": "xnor_gemm", "tc": "xnor_gemm_tc"}


def check_kernel(kernel: str) -> None:
    """A ValueError unless `kernel` is "auto" or a GEMM kernel's name ("popc", "tc")."""
    if kernel not in ("auto", *GPU_KERNELS):
        raise ValueError(f"kernel must be 'auto' or one of {sorted(GPU_KERNELS)}, got {kernel!r}")


def gpu_kernel(kernel: str = "auto", device: torch.device | int | None = None) -> str:
    """The XNOR GEMM kernel that runs on `device`: "popc" (CUDA cores) or "tc" (tensor cores).

    "auto" means the environment variable BITS_AND_BIAS_XNOR_KERNEL if set, else "tc" where
    the GPU has binary tensor cores with AND (compute capability 8.0 and later), else "popc".
    """
    if kernel == "auto":
        kernel = os.environ.get("BITS_AND_BIAS_XNOR_KERNEL") or "auto"
    check_kernel(kernel)
    if not torch.cuda.is_available():
        return "popc" if kernel == "auto" else kernel  # what a GPU would run; nothing runs here
    major, minor = torch.cuda.get_device_capability(device)
    if kernel == "auto":
        return "tc" if major >= 8 else "popc"
    if kernel == "tc" and major < 8:
        raise ValueError(f"kernel 'tc' needs compute capability 8.0 or later; this GPU has {major}.{minor}")
    return kernel


def cuda_xnor_matmul(a: Tensor, b: Tensor, k: int, out: Tensor | None = None,
                     kernel: str = "auto") -> Tensor:
    """kernels/xnor_gemm.cu on CUDA tensors; `out` (M, N) int32 is written if given."""
    a, b = _words(a, "a_packed"), _words(b, "b_packed")
    m, n, w = check_operands(tuple(a.shape), tuple(b.shape), k)
    name = GPU_KERNELS[gpu_kernel(kernel, a.device)]
    if out is not None:
        _check_out(out, (m, n), torch.int32, a.device)
    if not gpu_available():
        _fallback_warning()
        result = xnor_matmul(a.cpu(), b.cpu(), k).to(a.device)
        return result if out is None else out.copy_(result)
    if out is None:
        out = torch.empty(m, n, dtype=torch.int32, device=a.device)
    d = kernel_defines("xnor_gemm")
    for i, rows in _row_chunks(m, d["XNOR_BM"]) if n else []:
        grid = (_cdiv(n, d["XNOR_BN"]), _cdiv(rows, d["XNOR_BM"]))
        _launch("xnor_gemm", name, grid, (d["XNOR_THREADS"], 1, 1),
                (a[i : i + rows], b, out[i : i + rows], rows, n, w, k), a.device)
    return out


def baseline_matmul(a: Tensor, b: Tensor, out: Tensor | None = None) -> Tensor:
    """The paper's unoptimized GEMM, C = A·B with A (M, K), B (K, N) float32.

    On CUDA tensors kernels/baseline_gemm.cu (one thread per output); on CPU tensors
    torch.matmul, the same product. `out`, if given, is a contiguous (M, N) float32 tensor
    on a's device that receives C.
    """
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"baseline_matmul needs (M, K) and (K, N), got {tuple(a.shape)}, {tuple(b.shape)}")
    if b.device != a.device:
        raise ValueError(f"a is on {a.device} but b on {b.device}: move one")
    if out is not None:
        _check_out(out, (a.shape[0], b.shape[1]), torch.float32, a.device)
    if a.is_cuda:
        return cuda_baseline_matmul(a, b, out)
    result = a.float() @ b.float()
    return result if out is None else out.copy_(result)


def cuda_baseline_matmul(a: Tensor, b: Tensor, out: Tensor | None = None) -> Tensor:
    """kernels/baseline_gemm.cu on CUDA tensors (operands checked by `baseline_matmul`)."""
    if not gpu_available():
        _fallback_warning()
        result = (a.float().cpu() @ b.float().cpu()).to(a.device)
        return result if out is None else out.copy_(result)
    a, b = a.float().contiguous(), b.float().contiguous()
    m, k = a.shape
    n = b.shape[1]
    if out is None:
        out = torch.empty(m, n, dtype=torch.float32, device=a.device)
    d = kernel_defines("baseline_gemm")
    for i, rows in _row_chunks(m, d["BASELINE_BY"]) if n else []:
        grid = (_cdiv(n, d["BASELINE_BX"]), _cdiv(rows, d["BASELINE_BY"]))
        _launch("baseline_gemm", "baseline_gemm", grid, (d["BASELINE_BX"], d["BASELINE_BY"], 1),
                (a[i : i + rows], b, out[i : i + rows], rows, n, k), a.device)
    return out


def threshold_pack(y: Tensor, s: Tensor, t: Tensor) -> Tensor:
    """Packed bits of S[j]·Y[r, j] ≥ T[j]: batch-norm + sign as an integer threshold.

    y (R, N) int32 products, s (N,) ∈ {−1, +1} and t (N,) int32; returns (R, ⌈N/64⌉) words.
    On CUDA tensors kernels/pack.cu `threshold_pack` does it in one pass.
    """
    if y.ndim != 2 or s.shape != (y.shape[1],) or t.shape != (y.shape[1],):
        raise ValueError(f"threshold_pack needs y (R, N), s (N,), t (N,); got {tuple(y.shape)}, "
                         f"{tuple(s.shape)}, {tuple(t.shape)}")
    if y.is_cuda:
        return cuda_threshold_pack(y, s, t)
    bits = (s.long() * y.long()) >= t.long()
    return pack_bits(bits.float() * 2 - 1)


def cuda_threshold_pack(y: Tensor, s: Tensor, t: Tensor) -> Tensor:
    """kernels/pack.cu `threshold_pack` on CUDA tensors (shapes checked by `threshold_pack`)."""
    if not gpu_available():
        _fallback_warning()
        return threshold_pack(y.cpu(), s.cpu(), t.cpu()).to(y.device)
    y = y.to(torch.int32).contiguous()
    s, t = s.to(y.device, torch.int32).contiguous(), t.to(y.device, torch.int32).contiguous()
    r, n = y.shape
    w = n_words(n)
    out = torch.empty(r, w, dtype=torch.int64, device=y.device)
    if r:
        threads = kernel_defines("pack")["PACK_THREADS"]
        _launch("pack", "threshold_pack", (_cdiv(r * w, threads // 32), 1), (threads, 1, 1),
                (y, s, t, out, r, n, w), y.device)
    return out
