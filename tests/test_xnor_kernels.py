"""The CUDA kernels of kernels/*.cu: they compile for every supported architecture (where
nvcc exists), their indexing is right on a CPU emulation of CUDA (where g++ exists), and on
a GPU they equal the CPU reference exactly (marked gpu, skipped without one)."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

import analysis.xnor.gpu as gpu
from analysis import xnor

KERNELS = ["xnor_gemm", "baseline_gemm", "pack"]
ARCHS = ["sm_75", "sm_80", "sm_90"]  # sm_75: the oldest architecture CUDA 13 still builds for
EMU = Path(__file__).parent / "cuda_emu"
POISON = -123456789


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("kernel", KERNELS)
def test_kernel_compiles(kernel: str, arch: str, tmp_path: Path) -> None:
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc not found on PATH: cannot check that kernels/*.cu compile")
    source = xnor.kernel_dir() / f"{kernel}.cu"
    cubin = tmp_path / f"{kernel}.{arch}.cubin"
    done = subprocess.run([nvcc, "-cubin", f"-arch={arch}", "-O3", str(source), "-o", str(cubin)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert cubin.stat().st_size > 0


def _nvrtc() -> ctypes.CDLL | None:
    """NVRTC, the run-time compiler CuPy uses: from the system, else the nvidia-cuda-nvrtc wheel."""
    candidates = [ctypes.util.find_library("nvrtc")]
    for site in map(Path, sys.path):
        candidates += sorted(map(str, site.glob("nvidia/*/lib/libnvrtc.so*")))
    for name in filter(None, candidates):
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    return None


@pytest.mark.parametrize("arch", ["compute_75", "compute_80", "compute_90"])
@pytest.mark.parametrize("kernel", KERNELS)
def test_kernel_compiles_under_nvrtc(kernel: str, arch: str) -> None:
    """The CuPy launcher compiles kernels/*.cu with NVRTC, not nvcc: it must accept them too."""
    nvrtc = _nvrtc()
    if nvrtc is None:
        pytest.skip("NVRTC (libnvrtc) not found: cannot check the CuPy launcher's compiler")
    prog = ctypes.c_void_p()
    source = xnor.kernel_source(kernel).encode()
    assert nvrtc.nvrtcCreateProgram(ctypes.byref(prog), source, kernel.encode(), 0, None, None) == 0
    options = [f"--gpu-architecture={arch}".encode(), b"-std=c++14"]  # as xnor.gpu's _CuPy
    status = nvrtc.nvrtcCompileProgram(prog, len(options), (ctypes.c_char_p * len(options))(*options))
    size = ctypes.c_size_t()
    nvrtc.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
    log = ctypes.create_string_buffer(size.value)
    nvrtc.nvrtcGetProgramLog(prog, log)
    nvrtc.nvrtcDestroyProgram(ctypes.byref(prog))
    assert status == 0, log.value.decode()


def test_kernel_sources_are_read_as_utf8_whatever_the_locale() -> None:
    """NVRTC 12.1 (torch 2.3's) sets the process's C locale to "C" after a compile; the next
    kernel_source read the .cu files (UTF-8: "·", "ᵀ") as ASCII and raised UnicodeDecodeError."""
    import locale

    before = locale.setlocale(locale.LC_CTYPE)
    try:
        locale.setlocale(locale.LC_CTYPE, "C")
        if sys.flags.utf8_mode or locale.getpreferredencoding(False).lower() in ("utf-8", "utf8"):
            pytest.skip("Python is in UTF-8 mode: the C locale does not change how files are read")
        assert "·" in xnor.kernel_source("xnor_gemm")
    finally:
        locale.setlocale(locale.LC_CTYPE, before)


def test_launch_geometry_matches_the_kernel() -> None:
    d = xnor.kernel_defines("xnor_gemm")
    assert (d["XNOR_BM"] // d["XNOR_TM"]) * (d["XNOR_BN"] // d["XNOR_TN"]) == d["XNOR_THREADS"]
    assert d["XNOR_BM"] == d["XNOR_BN"] and d["XNOR_BM"] * d["XNOR_BK"] == 4 * d["XNOR_THREADS"]


# ------------------------------------------------------------------ CPU emulation of CUDA


EMU_SANITIZERS: list[str] = []  # what the emulator fixture's build checks at run time


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Path:
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("g++ not found: cannot run kernels/*.cu on the CPU emulation of CUDA")
    exe = tmp_path_factory.mktemp("emu") / "emu"
    # A signed overflow in a kernel (undefined behaviour) aborts the run, where g++ and the GPU
    # would most often wrap silently; so do a misaligned 16-byte load (a fault on the GPU, fine
    # on x86) and, under AddressSanitizer, any access past the exact-size buffers of main.cpp or
    # a __shared__ array (on the GPU an illegal address, or a silent read of a neighbour's data).
    # Without a sanitizer's library, the build goes without it (EMU_SANITIZERS says what is on).
    ub = "signed-integer-overflow,alignment"
    builds = [("address," + ub, ["-fsanitize=address," + ub, "-fno-sanitize-recover=all"]),
              (ub, ["-fsanitize=" + ub, "-fno-sanitize-recover=all"]), ("", [])]
    for sanitizers, flags in builds:  # noqa: B007 (`sanitizers` names the build the loop ends on)
        done = subprocess.run([gxx, "-std=c++20", "-O1", "-pthread", "-fno-strict-aliasing", *flags,
                               "-x", "c++", str(EMU / "main.cpp"), "-o", str(exe)],
                              capture_output=True, text=True)
        if "asan" in done.stderr or "ubsan" in done.stderr:
            continue  # no such sanitizer library
        if done.returncode != 0 or subprocess.run(  # a sanitizer that cannot start here
                [str(exe), "xnor_dot", "0"], capture_output=True, timeout=60,
                env={**os.environ, "ASAN_OPTIONS": "detect_leaks=0"}).returncode == 0:
            break
    EMU_SANITIZERS[:] = sanitizers.split(",") if sanitizers else []
    if done.returncode != 0 and "barrier" in done.stderr:
        pytest.skip(f"g++ lacks C++20 <barrier>: {done.stderr[:200]}")
    assert done.returncode == 0, done.stderr
    return exe


def emulate(exe: Path, kernel: str, sizes: list[int], *arrays: np.ndarray,
            env: dict[str, str] | None = None) -> bytes:
    data = b"".join(np.ascontiguousarray(a).tobytes() for a in arrays)
    env = {**os.environ, "ASAN_OPTIONS": "detect_leaks=0", **(env or {})}  # no LSan: no ptrace needed
    done = subprocess.run([str(exe), kernel, *map(str, sizes)], input=data, capture_output=True,
                          timeout=120, env=env)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def test_emulator_traps_out_of_bounds_accesses(emulator: Path) -> None:
    """A kernel reading or writing past its buffers (a row M or a word W loaded, a warp past
    R x W storing) leaves every output right, so only the sanitizer shows it: the build must
    have it, and main.cpp's buffers must end where the data ends (they had 2 elements of slack)."""
    if "address" not in EMU_SANITIZERS:
        pytest.skip("g++ without AddressSanitizer (libasan): out-of-bounds accesses go unseen")
    done = subprocess.run([str(emulator), "emu_read_past", "5"], input=bytes(4 * 5), capture_output=True,
                          timeout=60, env={**os.environ, "ASAN_OPTIONS": "detect_leaks=0"})
    assert done.returncode != 0 and b"heap-buffer-overflow" in done.stderr, done.stderr[-2000:]


def random_pm1(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.choice(np.array([-1.0, 1.0], dtype=np.float32), size=shape)


GEMM_CASES = [
    (1, 1, 1, 0),  # one output, one bit
    (3, 130, 64, 0),  # one word; two column blocks
    (129, 5, 1000, 0),  # W=16 even: 16-byte loads, two stages; two row blocks
    (130, 131, 600, 0),  # W=10 even but the last stage is partial (words 8, 9 only)
    (40, 70, 577, 0),  # W=10 too, K ragged inside the last word
    (37, 20, 1100, 0),  # W=18: three stages, the last with two words
    (33, 17, 449, 0),  # W=8 exactly one stage, K ragged
    (20, 9, 700, 0),  # W=11 odd: scalar loads
    (20, 9, 1024, 1),  # W=16 even but operands 8 bytes off 16-byte alignment: scalar loads
]


def with_garbage_padding(packed: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """The same matrix with random bits past K in the last word (they must count nothing)."""
    if k % 64 == 0:
        return packed
    junk = rng.integers(0, 2**63, packed.shape[0], dtype=np.int64).view(np.uint64)
    out = packed.view(np.uint64).copy()
    out[:, -1] |= junk & ~np.uint64((1 << (k % 64)) - 1)
    return out.view(packed.dtype)


@pytest.mark.parametrize("kernel", ["xnor_gemm", "xnor_gemm_tc"])
@pytest.mark.parametrize("m,n,k,misaligned", GEMM_CASES)
def test_emulated_xnor_gemm_equals_reference(emulator: Path, kernel: str, m: int, n: int, k: int,
                                             misaligned: int) -> None:
    rng = np.random.default_rng(m + 7 * n + 13 * k)
    a, b = xnor.pack_bits(random_pm1(rng, m, k)), xnor.pack_bits(random_pm1(rng, n, k))
    want = xnor.xnor_matmul_cpu(a, b, k)
    a, b = with_garbage_padding(a, k, rng), with_garbage_padding(b, k, rng)
    w = xnor.n_words(k)
    poisoned = np.full((m, n), POISON, dtype=np.int32)
    out = emulate(emulator, kernel, [m, n, w, k, misaligned], a, b, poisoned)
    got = np.frombuffer(out, dtype=np.int32).reshape(m, n)
    np.testing.assert_array_equal(got, want)


def epilogue_counts(k: int) -> list[tuple[int, int, int]]:
    """(pa, pb, c = popc(a AND b)) of rows a, b of k bits: all +1, all −1, +1 on the even
    bits, +1 on the first half, and random feasible counts."""
    even, half = (k + 1) // 2, k // 2
    counts = [(k, k, k), (k, 0, 0), (0, k, 0), (0, 0, 0), (k, even, even),
              (even, half, (half + 1) // 2)]  # even bits and first half share the even bits below k//2
    rng = np.random.default_rng(k)
    for pa, pb in rng.integers(0, k + 1, (50, 2)).tolist():
        counts.append((pa, pb, int(rng.integers(max(0, pa + pb - k), min(pa, pb) + 1))))
    return counts


@pytest.mark.parametrize("k", [2**30 + 100, 2**31 - 1])
def test_emulated_xnor_epilogues_hold_for_large_k(emulator: Path, k: int) -> None:
    """|C| ≤ K < 2^31 fits in int32, but the old epilogues K − 2d and K − 2pa − 2pb + 4c
    overflowed int (undefined behaviour) once 2d, 2pa or 4c passed 2^31 − 1. A whole product at such
    K would take the emulator hours (a 128 x 128 tile over 2^21 stages), so the two epilogues
    run alone here on the counts such rows have; the emulator traps on signed overflow."""
    pa, pb, c = np.array(epilogue_counts(k), dtype=np.int64).T
    d = pa + pb - 2 * c  # popc(a XOR b): the bits where a and b differ
    want = k - 2 * d  # exact, in int64
    assert want.min() == -k and want.max() == k
    kk = np.full(len(d), k, dtype=np.int32)
    for kernel, counts in [("xnor_dot", (d,)), ("xnor_dot_and", (pa, pb, c))]:
        out = emulate(emulator, kernel, [len(d)], kk, *(x.astype(np.int32) for x in counts))
        np.testing.assert_array_equal(np.frombuffer(out, dtype=np.int32), want, err_msg=kernel)


def test_emulated_baseline_gemm(emulator: Path) -> None:
    rng = np.random.default_rng(2)
    m, n, k = 19, 37, 50
    a, b = random_pm1(rng, m, k), random_pm1(rng, k, n)
    out = emulate(emulator, "baseline_gemm", [m, n, k], a, b, np.full((m, n), np.nan, np.float32))
    np.testing.assert_array_equal(np.frombuffer(out, np.float32).reshape(m, n), a @ b)


@pytest.mark.parametrize("r,k", [(1, 1), (5, 130), (3, 64), (300, 70), (2, 31), (9, 96)])
def test_emulated_pack_signs(emulator: Path, r: int, k: int) -> None:
    rng = np.random.default_rng(r * k)
    x = rng.standard_normal((r, k)).astype(np.float32)
    x[0, 0] = 0.0
    w = xnor.n_words(k)
    out = emulate(emulator, "pack_signs", [r, k, w], x, np.full((r, w), 7, np.uint64))
    np.testing.assert_array_equal(np.frombuffer(out, np.uint64).reshape(r, w), xnor.pack_bits(x))


@pytest.mark.parametrize("r,n", [(7, 150), (3, 20), (2, 128), (40, 33)])
def test_emulated_threshold_pack(emulator: Path, r: int, n: int) -> None:
    rng = np.random.default_rng(r * n)
    y = rng.integers(-50, 50, (r, n), dtype=np.int32)
    s = rng.choice(np.array([-1, 1], dtype=np.int32), n)
    t = rng.integers(-20, 20, n, dtype=np.int32)
    w = xnor.n_words(n)
    out = emulate(emulator, "threshold_pack", [r, n, w], y, s, t, np.full((r, w), 7, np.uint64))
    want = xnor.threshold_pack(torch.from_numpy(y), torch.from_numpy(s), torch.from_numpy(t))
    np.testing.assert_array_equal(np.frombuffer(out, np.int64).reshape(r, w), want.numpy())


def test_emulated_threshold_pack_at_int32_limits(emulator: Path) -> None:
    """S·Y is compared in 64 bits, as by the CPU rule: (−1)·(−2^31) overflowed int (undefined
    behaviour; it wrapped to −2^31, and −2^31 ≥ T is false where 2^31 ≥ T is true)."""
    lo, hi = -(2**31), 2**31 - 1
    y = np.array([[lo, lo, hi, hi, lo, hi]], dtype=np.int32)
    s = np.array([-1, 1, -1, 1, 1, -1], dtype=np.int32)
    t = np.array([hi, lo + 1, lo, hi, lo, lo + 2], dtype=np.int32)
    out = emulate(emulator, "threshold_pack", [1, 6, 1], y, s, t, np.full((1, 1), 7, np.uint64))
    got = torch.from_numpy(np.frombuffer(out, np.int64).reshape(1, 1).copy())
    assert xnor.unpack_bits(got, 6).tolist() == [[1, -1, 1, 1, 1, -1]]
    y, s, t = map(torch.from_numpy, (y, s, t))
    assert torch.equal(got, xnor.threshold_pack(y, s, t))


def test_threshold_pack_cpu_rule() -> None:
    y = torch.tensor([[3, -3, 0, 5]], dtype=torch.int32)
    s = torch.tensor([1, -1, 1, -1], dtype=torch.int32)
    t = torch.tensor([3, 3, 1, -5], dtype=torch.int32)
    # 3 ≥ 3 → 1;  −(−3) = 3 ≥ 3 → 1;  0 ≥ 1 → 0;  −5 ≥ −5 → 1
    assert xnor.unpack_bits(xnor.threshold_pack(y, s, t), 4).tolist() == [[1, 1, -1, 1]]


def test_without_gpu_the_status_says_why() -> None:
    if xnor.gpu_available():
        pytest.skip(f"a GPU backend is present: {xnor.gpu_status()}")
    status = xnor.gpu_status()
    assert "CUDA" in status or "pycuda" in status
    with pytest.raises(ValueError, match="GPU backend must be one of"):
        xnor.gpu_backend("opencl")


# ------------------------------------------------------------------ the launchers, on the emulation
#
# analysis.xnor.gpu with a stand-in backend: each launch is checked against CUDA's rules and the
# kernel's parameter list, then run on tests/cuda_emu with the grid and block the launcher chose.
# So the launchers' shapes, dtypes, argument order and geometry are checked without a GPU.

WORD, I32, F32 = (torch.int64, torch.uint64), (torch.int32,), (torch.float32,)
SIGNATURES = {  # kernel: parameters (a tuple of dtypes for a pointer, int for an int), output index
    "xnor_gemm": ((WORD, WORD, I32, int, int, int, int), 2),
    "xnor_gemm_tc": ((WORD, WORD, I32, int, int, int, int), 2),
    "baseline_gemm": ((F32, F32, F32, int, int, int), 2),
    "pack_signs": ((F32, WORD, int, int, int), 1),
    "threshold_pack": ((I32, I32, I32, WORD, int, int, int), 3),
}


def _elements(name: str, sizes: list[int]) -> list[int]:
    """The elements each pointer parameter spans, from the kernel's size parameters."""
    if name.startswith("xnor_gemm"):
        m, n, w, _ = sizes
        return [m * w, n * w, m * n]
    if name == "baseline_gemm":
        m, n, k = sizes
        return [m * k, k * n, m * n]
    if name == "pack_signs":
        r, k, w = sizes
        return [r * k, r * w]
    r, n, w = sizes
    return [r * n, n, n, r * w]


class EmulatedBackend:
    """A GPU backend for analysis.xnor.gpu that runs each launch on the CPU emulation of CUDA
    (or only records it, exe=None), after checking what a real launch would refuse."""

    name = "emulated"

    def __init__(self, exe: Path | None) -> None:
        self.exe, self.launches = exe, []

    def launch(self, file: str, name: str, grid: tuple, block: tuple, args: tuple, device: int):
        params, output = SIGNATURES[name]
        assert name in xnor.kernel_source(file)
        assert len(args) == len(params), f"{name} takes {len(params)} arguments, got {len(args)}"
        grid3, block3 = (tuple(grid) + (1, 1))[:3], (tuple(block) + (1, 1))[:3]
        # what cuLaunchKernel refuses: CUDA_ERROR_INVALID_VALUE
        assert all(isinstance(g, int) and g >= 1 for g in grid3 + block3), (grid, block)
        assert grid3[0] < 2**31 and max(grid3[1:]) <= 65535, f"grid {grid} over CUDA's limits"
        assert block3[0] * block3[1] * block3[2] <= 1024 and block3[2] <= 64, block
        tensors = [a for a in args if isinstance(a, torch.Tensor)]
        sizes = [a for a in args if not isinstance(a, torch.Tensor)]
        for arg, param in zip(args, params):
            if param is int:
                assert isinstance(arg, int) and -(2**31) <= arg < 2**31, f"{name}: int32 argument {arg!r}"
            else:
                assert isinstance(arg, torch.Tensor) and arg.dtype in param, f"{name}: {arg.dtype}"
                assert arg.is_contiguous(), f"{name}: a non-contiguous tensor passed as a pointer"
                # torch's __cuda_array_interface__ raises on these (RuntimeError)
                assert not arg.requires_grad, f"{name}: a tensor that requires grad"
        for t, count in zip(tensors, _elements(name, sizes)):
            assert t.numel() == count, f"{name}: a pointer to {t.numel()} elements where {count} are used"
        self.launches.append({"name": name, "grid": tuple(grid), "block": tuple(block),
                              "args": args})
        if self.exe is None:
            return
        if name.startswith("xnor_gemm"):
            sizes = [*sizes, int(any(t.data_ptr() % 16 for t in tensors[:2]))]
        env = {"EMU_GRID": ",".join(map(str, grid3)), "EMU_BLOCK": ",".join(map(str, block3))}
        raw = emulate(self.exe, name, sizes, *(t.numpy() for t in tensors), env=env)
        out = args[output]
        out.view(-1).copy_(torch.frombuffer(bytearray(raw), dtype=out.dtype))


@pytest.fixture
def emulated_gpu(emulator: Path, monkeypatch: pytest.MonkeyPatch) -> EmulatedBackend:
    backend = EmulatedBackend(emulator)
    monkeypatch.setattr(gpu, "gpu_backend", lambda name=None: backend)
    return backend


@pytest.fixture
def recorded_gpu(monkeypatch: pytest.MonkeyPatch) -> EmulatedBackend:
    backend = EmulatedBackend(None)
    monkeypatch.setattr(gpu, "gpu_backend", lambda name=None: backend)
    return backend


@pytest.mark.parametrize("kernel", ["popc", "tc"])
@pytest.mark.parametrize("m,n,k", [(1, 1, 1), (130, 3, 600), (7, 129, 577)])
def test_emulated_launcher_xnor_matmul(emulated_gpu: EmulatedBackend, kernel: str, m: int, n: int,
                                       k: int) -> None:
    rng = np.random.default_rng(m + n + k)
    a, b = random_pm1(rng, m, k), random_pm1(rng, n, k)
    pa, pb = xnor.pack_bits(torch.from_numpy(a)), xnor.pack_bits(torch.from_numpy(b))
    out = torch.full((m, n), POISON, dtype=torch.int32)
    got = gpu.cuda_xnor_matmul(pa, pb, k, out, kernel)
    assert got.data_ptr() == out.data_ptr()
    assert torch.equal(got, torch.from_numpy((a @ b.T).astype(np.int32)))
    assert [launch["name"] for launch in emulated_gpu.launches] == [xnor.GPU_KERNELS[kernel]]


def test_emulated_launcher_pack_threshold_baseline(emulated_gpu: EmulatedBackend) -> None:
    g = torch.Generator().manual_seed(8)
    x = torch.randn(3, 4, 130, generator=g)
    x[0, 0, :3] = torch.tensor([0.0, -0.0, -1e-40])
    assert torch.equal(gpu.cuda_pack_bits(x), xnor.pack_bits(x))
    y = torch.randint(-60, 60, (9, 70), generator=g, dtype=torch.int32)
    s = torch.where(torch.randn(70, generator=g) >= 0, 1, -1).to(torch.int32)
    t = torch.randint(-9, 9, (70,), generator=g, dtype=torch.int32)
    assert torch.equal(gpu.cuda_threshold_pack(y, s, t), xnor.threshold_pack(y, s, t))
    a = torch.where(torch.randn(20, 33, generator=g) >= 0, 1.0, -1.0)
    b = torch.where(torch.randn(33, 17, generator=g) >= 0, 1.0, -1.0)
    out = torch.full((20, 17), float("nan"))
    assert torch.equal(gpu.cuda_baseline_matmul(a, b, out), a @ b) and not out.isnan().any()
    assert [launch["name"] for launch in emulated_gpu.launches] == ["pack_signs", "threshold_pack",
                                                                    "baseline_gemm"]


def test_emulated_packed_inference_equals_torch(emulated_gpu: EmulatedBackend,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole packed network through the launchers, as PackedBinaryMLP runs it on a GPU."""
    import analysis.xnor.packed as packed_module
    from analysis import models

    torch.manual_seed(0)
    model = models.build("bnn-mlp", width=70, depth=2).eval()
    with torch.no_grad():  # batch-norms with statistics far from the identity, γ < 0 included
        for bn in (m for m in model if isinstance(m, torch.nn.BatchNorm1d)):
            bn.weight.normal_()
            bn.bias.normal_()
            bn.running_mean.normal_(0, 8)
            bn.running_var.uniform_(0.5, 50)
    packed = xnor.export_packed(model)
    x = torch.randn(21, 1, 28, 28, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        want = model(x)
    monkeypatch.setattr(packed_module, "pack_bits", gpu.cuda_pack_bits)
    monkeypatch.setattr(packed_module, "xnor_matmul",
                        lambda a, b, k, kernel: gpu.cuda_xnor_matmul(a, b, k, None, kernel))
    monkeypatch.setattr(packed_module, "threshold_pack", gpu.cuda_threshold_pack)
    monkeypatch.setattr(packed_module, "baseline_matmul", gpu.cuda_baseline_matmul)
    for kernel in ("popc", "tc", "baseline"):
        assert torch.equal(packed.scores(x, kernel), want), kernel
    names = [launch["name"] for launch in emulated_gpu.launches]
    assert names == ["pack_signs", "xnor_gemm", "threshold_pack", "xnor_gemm",
                     "pack_signs", "xnor_gemm_tc", "threshold_pack", "xnor_gemm_tc",
                     "baseline_gemm", "baseline_gemm"]


def test_launchers_skip_empty_operands(recorded_gpu: EmulatedBackend) -> None:
    """0 rows or columns: empty results and no launch (a grid of 0 blocks is a CUDA error,
    which the old launchers asked for)."""
    a, b = torch.zeros(0, 2, dtype=torch.int64), torch.zeros(5, 2, dtype=torch.int64)
    assert gpu.cuda_xnor_matmul(a, b, 100).shape == (0, 5)
    assert gpu.cuda_xnor_matmul(b, a, 100).shape == (5, 0)
    assert gpu.cuda_pack_bits(torch.zeros(2, 0, 70)).shape == (2, 0, 2)
    y = torch.zeros(0, 70, dtype=torch.int32)
    ones = torch.ones(70, dtype=torch.int32)
    assert gpu.cuda_threshold_pack(y, ones, ones).shape == (0, 2)
    assert gpu.cuda_baseline_matmul(torch.zeros(0, 3), torch.zeros(3, 4)).shape == (0, 4)
    assert recorded_gpu.launches == []


def test_launchers_take_tensors_that_require_grad(emulated_gpu: EmulatedBackend) -> None:
    """pack_bits(layer.weight) on a GPU: torch's __cuda_array_interface__ refuses a tensor that
    requires grad (RuntimeError), so the launchers must pass detached tensors."""
    w = torch.nn.Parameter(torch.randn(6, 70, generator=torch.Generator().manual_seed(1)))
    assert torch.equal(gpu.cuda_pack_bits(w), xnor.pack_bits(w))
    x = w.detach().sign().requires_grad_()
    assert torch.equal(gpu.cuda_baseline_matmul(x, x.detach().T), x.detach() @ x.detach().T)


def test_launcher_packs_other_dtypes_by_their_own_sign(emulated_gpu: EmulatedBackend) -> None:
    """float64 values below float32's range kept their sign on the CPU but packed as +1 on the
    GPU (−1e−300 became −0.0 in float32, and −0.0 ≥ 0); bool and complex, refused on the CPU,
    packed silently."""
    x = torch.tensor([[-1e-300, 1e-300, -0.0, 0.0, -3.0, 5e30, -1e-40]], dtype=torch.float64)
    assert xnor.unpack_bits(gpu.cuda_pack_bits(x), 7).tolist() == [[-1, 1, 1, 1, -1, 1, -1]]
    assert torch.equal(gpu.cuda_pack_bits(x), xnor.pack_bits(x))
    i = torch.tensor([[-(2**62), 0, 7, -1]])
    assert torch.equal(gpu.cuda_pack_bits(i), xnor.pack_bits(i))
    for bad in (torch.tensor([[True, False]]), torch.tensor([[1 + 1j, -1j]])):
        with pytest.raises(ValueError, match="real-valued"):
            gpu.cuda_pack_bits(bad)


def test_launchers_split_rows_past_the_grid_limit(recorded_gpu: EmulatedBackend) -> None:
    """More than 65535 row blocks: the old launcher raised 'split the rows'; now one launch per
    65535 blocks, each on its slice of rows."""
    bm = xnor.kernel_defines("xnor_gemm")["XNOR_BM"]
    m = 65535 * bm + 1
    a, b = torch.zeros(m, 1, dtype=torch.int64), torch.zeros(3, 1, dtype=torch.int64)
    out = gpu.cuda_xnor_matmul(a, b, 64)
    first, second = recorded_gpu.launches
    assert first["grid"] == (1, 65535) and second["grid"] == (1, 1)
    assert first["args"][0].data_ptr() == a.data_ptr() and first["args"][3] == m - 1
    assert second["args"][0].data_ptr() == a[m - 1 :].data_ptr() and second["args"][3] == 1
    assert second["args"][2].data_ptr() == out[m - 1 :].data_ptr()


@pytest.mark.parametrize("kernel", ["popc", "tc"])
def test_emulated_split_launches_equal_reference(emulated_gpu: EmulatedBackend,
                                                 monkeypatch: pytest.MonkeyPatch, kernel: str) -> None:
    """The same split at a limit of 1 block in y: every slice lands where it belongs."""
    monkeypatch.setattr(gpu, "_GRID_Y_MAX", 1)
    rng = np.random.default_rng(3)
    a, b = random_pm1(rng, 300, 100), random_pm1(rng, 40, 100)
    pa, pb = xnor.pack_bits(torch.from_numpy(a)), xnor.pack_bits(torch.from_numpy(b))
    got = gpu.cuda_xnor_matmul(pa, pb, 100, torch.full((300, 40), POISON, dtype=torch.int32), kernel)
    assert torch.equal(got, torch.from_numpy((a @ b.T).astype(np.int32)))
    assert len(emulated_gpu.launches) == 3
    fa, fb = torch.from_numpy(a[:40]), torch.from_numpy(b.T.copy())
    assert torch.equal(gpu.cuda_baseline_matmul(fa, fb, torch.full((40, 40), float("nan"))), fa @ fb)
    assert len(emulated_gpu.launches) == 3 + 3  # 16 rows a block: 40 rows in three launches


def test_launchers_check_out(recorded_gpu: EmulatedBackend) -> None:
    """A wrong `out` is a ValueError; baseline_matmul wrote into any out it was given."""
    a, b = torch.zeros(4, 2, dtype=torch.int64), torch.zeros(3, 2, dtype=torch.int64)
    for out, what in [(torch.empty(4, 4, dtype=torch.int32), r"\(4, 4\)"),
                      (torch.empty(4, 3, dtype=torch.int64), "int64"),
                      (torch.empty(3, 4, dtype=torch.int32).T, "non-contiguous"),
                      (torch.empty(4, 3, dtype=torch.int32, device="meta"), "meta")]:
        with pytest.raises(ValueError, match=what):
            gpu.cuda_xnor_matmul(a, b, 100, out)
    x, y = torch.ones(4, 5), torch.ones(5, 3)
    with pytest.raises(ValueError, match=r"contiguous \(4, 3\) torch.float32"):
        xnor.baseline_matmul(x, y, out=torch.empty(4, 4))
    with pytest.raises(ValueError, match="meta"):
        xnor.baseline_matmul(x, y.to("meta"))
    assert recorded_gpu.launches == []


# ------------------------------------------------------------------ the backends, with stand-in modules


def test_a_backend_that_fails_to_start_is_tried_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without PyCUDA every launch retried `import pycuda` (a search through sys.path, as Python
    does not cache failed imports) before taking CuPy: time added to every timed kernel call."""
    tries = {"pycuda": 0, "cupy": 0}

    class Broken:
        def __init__(self) -> None:
            tries["pycuda"] += 1
            raise ImportError("No module named 'pycuda'")

    class Working:
        name = "cupy"

        def __init__(self) -> None:
            tries["cupy"] += 1

    monkeypatch.setattr(gpu, "_BACKENDS", {"pycuda": Broken, "cupy": Working})
    monkeypatch.setattr(gpu, "_backend_cache", {})
    monkeypatch.setattr(gpu, "_reasons", {})
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.delenv("BITS_AND_BIAS_GPU_BACKEND", raising=False)
    backends = [gpu.gpu_backend() for _ in range(5)]
    assert all(isinstance(b, Working) for b in backends) and len(set(map(id, backends))) == 1
    assert gpu.gpu_backend("pycuda") is None
    assert tries == {"pycuda": 1, "cupy": 1}
    monkeypatch.setattr(gpu, "_backend_cache", {})
    monkeypatch.setattr(gpu, "_reasons", {})
    monkeypatch.setenv("BITS_AND_BIAS_GPU_BACKEND", "pycuda")
    status = gpu.gpu_status()  # says why, for both: one failed, the other was not asked for
    assert "pycuda unavailable (ImportError: No module named 'pycuda')" in status
    assert "cupy not tried (BITS_AND_BIAS_GPU_BACKEND=pycuda)" in status
    # it pointed to ../shared/gpu/README.md, outside the repository and the installed package
    assert "Install PyCUDA with pip install 'bits-and-bias[gpu]' (see the GPU section of README.md" in status


class _FakeCudaTensor(torch.Tensor):
    """A CPU tensor that shows a __cuda_array_interface__, as a CUDA tensor does."""

    @property
    def __cuda_array_interface__(self) -> dict:
        return {"data": (self.data_ptr(), False)}


def test_pycuda_launch_orders_torch_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    """PyCUDA launches on the legacy default stream. On another torch stream the old launcher
    synchronized the host and launched, but left the stream's next work unordered after the
    kernel (a race on `out`); now both orders are set on the device."""
    events: list[str] = []

    class Stream:
        def __init__(self, name: str) -> None:
            self.name = name

        def __eq__(self, other: object) -> bool:
            return isinstance(other, Stream) and other.name == self.name

        def wait_stream(self, other: Stream) -> None:
            events.append(f"{self.name} waits for {other.name}")

        def synchronize(self) -> None:
            events.append(f"host waits for {self.name}")

    class Context:
        def push(self) -> None:
            events.append("push")

        @staticmethod
        def pop() -> None:
            events.append("pop")

    driver = types.SimpleNamespace(Context=Context, Device=lambda d: types.SimpleNamespace(
        retain_primary_context=Context))
    backend = object.__new__(gpu._PyCuda)  # no pycuda here: its driver module is the stand-in
    backend._drv, backend._contexts = driver, {}
    x = torch.zeros(4).as_subclass(_FakeCudaTensor)

    def kernel(*args, block: tuple, grid: tuple) -> None:
        assert [type(a) for a in args] == [np.uintp, np.int32] and args[0] == x.data_ptr()
        events.append(f"kernel {grid} {block}")

    backend.function = lambda file, name, device: kernel
    side, legacy = Stream("side"), Stream("default")
    monkeypatch.setattr(torch.cuda, "default_stream", lambda device=None: legacy)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: side)
    backend.launch("pack", "pack_signs", (3, 1), (256, 1, 1), (x, 7), 0)
    assert events == ["default waits for side", "push", "kernel (3, 1) (256, 1, 1)", "pop",
                      "side waits for default"]
    events.clear()
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: legacy)
    backend.launch("pack", "pack_signs", (3, 1), (256, 1, 1), (x, 7), 0)
    assert events == ["push", "kernel (3, 1) (256, 1, 1)", "pop"]


def test_cupy_compiles_and_launches_for_the_tensors_device(monkeypatch: pytest.MonkeyPatch) -> None:
    """RawModule compiles on first get_function, which ran outside `with Device(device)`: for
    the current device (0), not the tensors'. The launch runs on torch's current stream."""
    current, log = [0], []

    class Device:
        def __init__(self, device: int) -> None:
            self.device = device

        def __enter__(self) -> None:
            self.previous, current[0] = current[0], self.device

        def __exit__(self, *error) -> None:
            current[0] = self.previous

    class ExternalStream:
        def __init__(self, ptr: int) -> None:
            self.ptr = ptr

        def __enter__(self) -> None:
            log.append(("stream", self.ptr))

        def __exit__(self, *error) -> None:
            log.append(("stream done", self.ptr))

    class RawModule:  # like CuPy's: the code compiles when a function is first asked for
        def __init__(self, code: str, options: tuple) -> None:
            assert "pack_signs" in code and options == ("-std=c++14",)

        def get_function(self, name: str):
            log.append(("compile", name, current[0]))
            return lambda grid, block, args: log.append(("kernel", grid, block, args, current[0]))

    cupy = types.SimpleNamespace(RawModule=RawModule, asarray=lambda t: ("array", t.data_ptr()),
                                 cuda=types.SimpleNamespace(Device=Device, ExternalStream=ExternalStream))
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    monkeypatch.setattr(torch.cuda, "current_stream",
                        lambda device=None: types.SimpleNamespace(cuda_stream=1234))
    backend = gpu._CuPy()
    x = torch.zeros(3)
    backend.launch("pack", "pack_signs", (2, 1), (256, 1, 1), (x, 9), 1)
    assert log == [("compile", "pack_signs", 1), ("stream", 1234),
                   ("kernel", (2, 1), (256, 1, 1), (("array", x.data_ptr()), 9), 1),
                   ("stream done", 1234)]


# ------------------------------------------------------------------ benchmarks/run-on-gpu.sh, with stand-ins

STUB_PYTHON = """#!/usr/bin/env bash
echo "python3 $*" >> "$STUB_LOG"
case "$*" in
    *get_device_properties*) echo "h100 sm_90" ;;
    *"-m analysis bench"*)
        args=("$@")
        for i in "${!args[@]}"; do [ "${args[$i]}" = --json ] && echo '{}' > "${args[$((i + 1))]}"; done
        echo "bench $4 ran"; exit "${STUB_BENCH_RC:-0}" ;;
    *"-m pytest"*) echo "gpu tests ran" ;;
esac
"""


@pytest.mark.parametrize("bench_rc", [0, 1])
def test_run_on_gpu_script_writes_everything_to_out(tmp_path: Path, bench_rc: int) -> None:
    """The GPU session gets back only what lies under $OUT, and the last 12k characters of
    output: the script must leave its whole log there, and fail (not time the CPU reference
    into files named for the GPU) when the benchmarks find no GPU backend."""
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash not found")
    repo = Path(__file__).resolve().parents[1]
    work, stubs, out = tmp_path / "repo", tmp_path / "bin", tmp_path / "out"
    (work / "benchmarks").mkdir(parents=True)
    shutil.copy(repo / "benchmarks" / "run-on-gpu.sh", work / "benchmarks")
    shutil.copytree(repo / "kernels", work / "kernels")
    stubs.mkdir()
    for name, text in [("python3", STUB_PYTHON),
                       ("nvidia-smi", "#!/bin/sh\necho 'NVIDIA H100 80GB HBM3, 580.159.04'\n"),
                       ("nvcc", "#!/bin/sh\necho 'ptxas info    : Used 32 registers' >&2\n")]:
        (stubs / name).write_text(text)
        (stubs / name).chmod(0o755)
    log = tmp_path / "calls.log"
    env = {**os.environ, "PATH": f"{stubs}:{os.environ['PATH']}", "OUT": str(out),
           "STUB_LOG": str(log), "STUB_BENCH_RC": str(bench_rc)}
    done = subprocess.run([bash, "benchmarks/run-on-gpu.sh"], cwd=work, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == bench_rc, done.stdout + done.stderr
    calls = log.read_text().splitlines()
    for bench in ("xnor", "bnn-inference"):
        assert f"python3 -m analysis bench {bench} --device cuda --json {out}/{bench}-h100.json" in calls
        assert (out / f"{bench}-h100.json").is_file()
    gpu_tests = " ".join(c for c in calls if "-m pytest" in c)
    for test in ("test_xnor_kernels.py", "test_training.py", "test_clipping_ptq.py",
                 "test_diffusion.py::test_callback_on_a_gpu_model"):
        assert test in gpu_tests  # every GPU test of the suite runs there
    saved = (out / "run-on-gpu.log").read_text()
    assert saved == done.stdout
    for line in ["NVIDIA H100 80GB HBM3", "xnor_gemm.cu: ptxas info    : Used 32 registers",
                 "gpu tests ran", "bench xnor ran", "bench bnn-inference ran"]:
        assert line in saved
    assert saved.rstrip().endswith(f"== exit status {bench_rc}")


# ------------------------------------------------------------------ on a GPU


def _gpu_reason() -> str:
    return "" if xnor.gpu_available() else f"needs a GPU backend: {xnor.gpu_status()}"


needs_gpu = pytest.mark.skipif(not xnor.gpu_available(), reason=_gpu_reason())

RAGGED = [(1, 1, 1), (1, 300, 65), (300, 1, 129), (127, 129, 1000), (257, 130, 600),
          (200, 150, 4097), (1000, 513, 8192)]


def _kernel_param(kernel: str):
    """A GEMM kernel as a test parameter, skipped (with why) where this GPU cannot run it."""
    reason = ""
    if kernel == "tc" and xnor.gpu_available() and torch.cuda.get_device_capability()[0] < 8:
        reason = f"kernel 'tc' needs compute capability 8.0; {torch.cuda.get_device_name()} has less"
    return pytest.param(kernel, marks=pytest.mark.skipif(bool(reason), reason=reason))


GPU_KERNELS = [_kernel_param(k) for k in xnor.GPU_KERNELS]


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("kernel", GPU_KERNELS)
@pytest.mark.parametrize("m,n,k", RAGGED)
def test_gpu_xnor_gemm_equals_reference(m: int, n: int, k: int, kernel: str) -> None:
    g = torch.Generator().manual_seed(m + n + k)
    a = torch.randn(m, k, generator=g)
    b = torch.randn(n, k, generator=g)
    want = xnor.xnor_matmul(xnor.pack_bits(a), xnor.pack_bits(b), k)
    pa, pb = xnor.pack_bits(a.cuda()), xnor.pack_bits(b.cuda())
    assert torch.equal(pa.cpu(), xnor.pack_bits(a)) and torch.equal(pb.cpu(), xnor.pack_bits(b))
    out = torch.full((m, n), POISON, dtype=torch.int32, device="cuda")
    got = xnor.xnor_matmul(pa, pb, k, out=out, kernel=kernel)
    assert got.data_ptr() == out.data_ptr()
    assert torch.equal(got.cpu(), want)


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("kernel", GPU_KERNELS)
def test_gpu_xnor_gemm_on_misaligned_views_and_garbage_padding(kernel: str) -> None:
    """Operands 8 bytes past a 16-byte boundary take the scalar-load path; bits past K count nothing."""
    g = torch.Generator().manual_seed(5)
    a = torch.randn(70, 1024, generator=g)
    b = torch.randn(90, 1024, generator=g)
    pa = torch.cat([torch.zeros(1, dtype=torch.int64), xnor.pack_bits(a).flatten()]).cuda()[1:]
    pb = torch.cat([torch.zeros(1, dtype=torch.int64), xnor.pack_bits(b).flatten()]).cuda()[1:]
    got = xnor.xnor_matmul(pa.view(70, 16), pb.view(90, 16), 1024, kernel=kernel)
    assert torch.equal(got.cpu(), xnor.xnor_matmul(xnor.pack_bits(a), xnor.pack_bits(b), 1024))
    rng = np.random.default_rng(5)
    k = 1000
    na, nb = xnor.pack_bits(a[:, :k].numpy()), xnor.pack_bits(b[:, :k].numpy())
    ja, jb = with_garbage_padding(na, k, rng), with_garbage_padding(nb, k, rng)
    got = xnor.xnor_matmul(torch.from_numpy(ja.view(np.int64)).cuda(),
                           torch.from_numpy(jb.view(np.int64)).cuda(), k, kernel=kernel)
    assert torch.equal(got.cpu(), torch.from_numpy(xnor.xnor_matmul_cpu(na, nb, k)))


@pytest.mark.gpu
@needs_gpu
def test_gpu_baseline_and_threshold_pack() -> None:
    g = torch.Generator().manual_seed(6)
    a = torch.where(torch.randn(33, 70, generator=g) >= 0, 1.0, -1.0)
    b = torch.where(torch.randn(70, 45, generator=g) >= 0, 1.0, -1.0)
    out = torch.full((33, 45), float("nan"), device="cuda")
    got = xnor.baseline_matmul(a.cuda(), b.cuda(), out=out)
    assert torch.equal(got.cpu(), a @ b)
    y = torch.randint(-70, 70, (33, 45), generator=g, dtype=torch.int32)
    s = torch.where(torch.randn(45, generator=g) >= 0, 1, -1).to(torch.int32)
    t = torch.randint(-10, 10, (45,), generator=g, dtype=torch.int32)
    assert torch.equal(xnor.threshold_pack(y.cuda(), s.cuda(), t.cuda()).cpu(),
                       xnor.threshold_pack(y, s, t))
