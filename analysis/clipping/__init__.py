"""ACIQ: clipping and 4-bit post-training quantization.

Banner, Nahshan, Soudry, "Post training 4-bit quantization of convolutional networks for
rapid-deployment", NeurIPS 2019 (first as "ACIQ: Analytical Clipping for Integer
Quantization of neural networks", arXiv:1810.05723).

- `analysis.clipping.mse`: per tensor. The expected MSE of clipping to [−α, α] and
  quantizing to M bits with `analysis.quant.quantize_uniform` (the paper's approximation
  and the exact value), the measured MSE, the optimal α*(M), prior fits (Laplace b,
  Gaussian σ, Kolmogorov–Smirnov), per-channel bit allocation, bias correction.
- `analysis.clipping.ptq`: per model. Post-training quantization (naive min–max, ACIQ,
  + bit allocation, + bias correction) and `python -m analysis ptq`.
"""

from analysis.clipping.mse import (
    PAPER_ALPHA,
    PRIORS,
    PriorFit,
    SortedTensor,
    TensorFit,
    allocate_bits,
    allocation_mse,
    alpha_table,
    bias_correct,
    channel_scales,
    check_tensor,
    compare_at_optimum,
    curve_rows,
    fit_prior,
    fit_tensor,
    format_rows,
    measured_mse,
    mse,
    mse_gaussian,
    mse_laplace,
    mse_terms,
    optimal_alpha,
    quant_range,
    relu_range,
)
from analysis.clipping.ptq import (
    SETTINGS,
    PTQConfig,
    clip_ranges,
    fold_bn_scale_,
    layer_inputs,
    lesson_model,
    lesson_settings,
    ptq_cli,
    ptq_table,
    quant_layers,
    quantize_model,
)

__all__ = [
    "PAPER_ALPHA", "PRIORS", "PriorFit", "SortedTensor", "TensorFit", "alpha_table", "allocate_bits",
    "allocation_mse", "bias_correct", "check_tensor", "fit_prior", "fit_tensor", "measured_mse", "mse",
    "mse_gaussian", "mse_laplace", "mse_terms", "compare_at_optimum", "format_rows", "optimal_alpha",
    "quant_range", "relu_range",
    "PTQConfig", "clip_ranges", "fold_bn_scale_", "layer_inputs", "ptq_cli", "ptq_table", "quant_layers",
    "quantize_model", "SETTINGS", "lesson_settings", "lesson_model", "curve_rows", "channel_scales",
]
