"""Bit-packed binary matrix products: packing, the exact CPU reference, the GPU kernels,
packed inference of trained binarized networks (Hubara et al., "Binarized Neural
Networks", NIPS 2016).

For a, b ∈ {−1, +1}^K coded as bits (+1 → 1), a·b = K − 2·popcount(a XOR b).

- `analysis.xnor.packing`: `pack_bits` (signs → 64-bit words along the last axis),
  `unpack_bits`, and `xnor_matmul`, the exact integer A @ Bᵀ of two packed matrices: the
  numpy reference on the CPU (the oracle), the GPU kernels for CUDA tensors.
- `analysis.xnor.gpu`: the launcher of `kernels/*.cu` (PyCUDA, else CuPy; `gpu_status`
  says what is missing), the choice between the CUDA-core and tensor-core kernels
  (`gpu_kernel`), the paper's unoptimized baseline GEMM, batch-norm + sign as a threshold.
- `analysis.xnor.packed`: `export_packed(model)` turns a trained bnn-mlp into a
  `PackedBinaryMLP` whose predictions equal the torch model's, exactly.
- `analysis.xnor.lesson`: the paper's figures, one dot product step by step, the GPU
  results committed under `benchmarks/`.
"""

from analysis.xnor.gpu import (
    GPU_KERNELS,
    baseline_matmul,
    gpu_available,
    gpu_backend,
    gpu_kernel,
    gpu_status,
    kernel_defines,
    kernel_dir,
    kernel_source,
    threshold_pack,
)
from analysis.xnor.lesson import PAPER, committed_benchmarks, dot_by_xnor, parse_pm1
from analysis.xnor.packed import PackedBinaryMLP, PackedLayer, export_packed, fold_bn_sign, size_report
from analysis.xnor.packing import (
    WORD_BITS,
    check_operands,
    n_words,
    pack_bits,
    unpack_bits,
    xnor_matmul,
    xnor_matmul_cpu,
)

__all__ = [
    "WORD_BITS",
    "n_words",
    "pack_bits",
    "unpack_bits",
    "check_operands",
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
