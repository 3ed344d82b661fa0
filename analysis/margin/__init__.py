"""Implicit bias of gradient descent on separable data, and of deep linear conv nets.

Soudry, Hoffer, Nacson, Gunasekar, Srebro, "The implicit bias of gradient descent on
separable data" (ICLR 2018 / JMLR 2018, arXiv 1710.10345): on linearly separable data
{(x_n, y_n)}, y_n ∈ {−1, +1}, gradient descent on the logistic or exponential loss gives

    w(t) = ŵ·log t + ρ(t),   ρ(t) bounded,   ŵ = argmin ‖w‖ s.t. y_n x_nᵀw ≥ 1,

so ‖w(t)/‖w(t)‖ − ŵ/‖ŵ‖‖ = O(1/log t) while the loss falls like 1/t.

Gunasekar, Lee, Soudry, Srebro, "Implicit bias of gradient descent on linear convolutional
networks" (NeurIPS 2018, arXiv 1806.00468): the end-to-end predictor β of a depth-L
full-width circular convolutional linear net converges in direction to a stationary point
of min ‖DFT(β)‖_{2/L} s.t. y_n⟨x_n, β⟩ ≥ 1 (sparse in frequency), while fully connected
linear nets of any depth go to the ℓ2 hard-margin SVM.

Conventions: z_n = y_n x_n (rows of Z); losses are means over the n samples,
L(w) = (1/n) Σ_n ℓ(z_nᵀw); arrays are numpy float64.

- `analysis.margin.common`: what the others share: the losses and optimizers, the errors,
  the label checks, `angle_between`, the sizes of lesson 05.
- `analysis.margin.svm`: the max-margin reference: the hard-margin SVM through the origin,
  its KKT residuals, the multi-class SVM.
- `analysis.margin.gd`: gradient-descent runs on separable data (GD, SGD, momentum) and
  their records, the naive reference loop, rate fits, the asymptotic theory, multi-class GD.
- `analysis.margin.linear_nets`: deep linear conv and fully connected nets (predictors and
  their gradients), the Fourier sparsity of β, the ℓ_{2/L} bridge solution, the Fourier bias.
"""

from analysis.margin.common import LOSSES as LOSSES
from analysis.margin.common import OPTIMIZERS as OPTIMIZERS
from analysis.margin.common import SETTINGS as SETTINGS
from analysis.margin.common import (
    DivergenceError,
    NotSeparableError,
    angle_between,
    lesson_settings,
    signed_labels,
)
from analysis.margin.gd import (
    GDRecord,
    RateFit,
    evaluate,
    fit_rate,
    gradient_descent,
    gradient_descent_multiclass,
    gradient_descent_naive,
    log_grid,
    move_point,
    smoothness,
    theory_loss,
    theory_residual,
)
from analysis.margin.linear_nets import (
    FourierBias,
    NetRecord,
    bridge_objective,
    bridge_solution,
    circulant,
    conv_net_predictor,
    conv_net_predictor_by_layers,
    fc_net_predictor,
    fourier_bias,
    fourier_coefficients,
    fourier_sparsity,
    train_linear_net,
)
from analysis.margin.linear_nets import _conv_grads as _conv_grads
from analysis.margin.linear_nets import _fc_grads as _fc_grads
from analysis.margin.svm import (
    MaxMargin,
    hard_margin_svm,
    kkt_residuals,
    max_margin_direction,
    multiclass_labels,
    multiclass_svm,
)

# The `X as X` imports (LOSSES, OPTIMIZERS, SETTINGS, _conv_grads, _fc_grads) are re-exported for
# callers and tests but, as before the split into a package, left out of __all__.
__all__ = [
    "MaxMargin", "NotSeparableError", "DivergenceError", "signed_labels", "hard_margin_svm",
    "max_margin_direction", "kkt_residuals", "multiclass_svm", "multiclass_labels", "log_grid",
    "smoothness",
    "GDRecord", "gradient_descent", "gradient_descent_naive", "RateFit", "fit_rate",
    "theory_loss", "theory_residual", "gradient_descent_multiclass", "circulant",
    "conv_net_predictor", "conv_net_predictor_by_layers", "fc_net_predictor",
    "fourier_coefficients", "fourier_sparsity", "NetRecord", "train_linear_net",
    "bridge_solution", "bridge_objective", "angle_between", "FourierBias", "fourier_bias", "evaluate",
    "move_point",
    "lesson_settings",
]
