"""Local minima of one-hidden-layer networks: many trainings at once, Hessians, loss slices.

The network of Soudry & Carmon (2016, arXiv 1605.08361) and Soudry & Hoffer (arXiv
1702.05777): one hidden layer of d1 piecewise-linear units, a single output, no biases,

    f(x) = Σ_j z_j σ(w_j·x),   σ(u) = u for u > 0, ρ·u otherwise  (ρ = `slope`; ReLU: ρ = 0),

trained on N samples (x_n, y_n), x_n ∈ R^d0, y_n = ±1, with the quadratic loss
L = (1/2N) Σ_n (f(x_n) − y_n)² or the logistic loss L = (1/N) Σ_n log(1 + exp(−y_n f(x_n))).
The parameter count is P = d1·(d0 + 1).

Their result: with standard normal inputs, d0 = Ω̃(√N) and P = Ω̃(N), the volume of the
differentiable regions (fixed activation pattern a_nj = σ'(w_j·x_n)) that hold sub-optimal
differentiable local minima vanishes exponentially next to that of global minima. Within a
region f is linear in v_j = z_j w_j, so a differentiable local minimum (DLM) solves a least
squares problem with the N × d1·d0 design matrix G_n = (a_nj x_n)_j: when rank G = N (which
needs d1·d0 ≥ N) its loss is zero.

Here R networks are trained together as one batched computation (weights W of shape
(R, d1, d0), z of shape (R, d1)); each endpoint is classified as a global minimum, a
sub-optimal DLM, a saddle, a point at a kink, or not converged, with its Hessian spectrum
(exact in closed form for small nets, Lanczos on Hessian-vector products for large ones).
Loss slices: 1-D interpolation from an initialization to its endpoint, 2-D slices along
filter-normalized random directions (Li et al., "Visualizing the loss landscape of neural
nets", NeurIPS 2018).

- `analysis.landscape.net`: the network and its data. Data sets with labels ±1, R
  initializations, the forward pass, the loss, the training error and exact gradients,
  θ = (vec W, z).
- `analysis.landscape.endpoints`: where a training ends. `Endpoints`, kink margin, rank of
  the pattern's design matrix, Hessians (closed form, torch.func, Lanczos), the classes
  `LABELS`, `classify` and `needs_curvature` (the runs whose class needs the Hessian), the
  hand-built sub-optimal minimum `v_shape_example`.
- `analysis.landscape.train`: `train_many`, R trainings as one batched computation, each
  endpoint classified.
- `analysis.landscape.experiment`: loss slices (1-D, 2-D), the width sweep and its tables,
  the lesson's sizes and `python -m analysis experiment minima`.
"""

from analysis.landscape.endpoints import (
    LABELS,
    Endpoints,
    classify,
    hessian_extremes,
    hessian_reference,
    hessians,
    kink_margin,
    needs_curvature,
    pattern_rank,
    v_shape_example,
)
from analysis.landscape.experiment import (
    SETTINGS,
    SWEEPS,
    TABLE_COLUMNS,
    example_slices,
    experiment_cli,
    filter_normalized_direction,
    interpolate_1d,
    lesson_settings,
    markdown_table,
    shipped_sweep,
    slice_2d,
    sweep,
)
from analysis.landscape.net import (
    ACTIVATIONS,
    DATASETS,
    DTYPE,
    LOSSES,
    OPTIMIZERS,
    flatten,
    forward,
    init_params,
    loss_and_grad,
    make_data,
    random_labels,
    training_error,
    unflatten,
)
from analysis.landscape.train import train_many

__all__ = [
    "LABELS",
    "Endpoints",
    "make_data",
    "random_labels",
    "init_params",
    "forward",
    "loss_and_grad",
    "train_many",
    "flatten",
    "unflatten",
    "hessians",
    "hessian_reference",
    "hessian_extremes",
    "kink_margin",
    "pattern_rank",
    "classify",
    "needs_curvature",
    "interpolate_1d",
    "filter_normalized_direction",
    "slice_2d",
    "v_shape_example",
    "SETTINGS",
    "lesson_settings",
    "SWEEPS",
    "sweep",
    "markdown_table",
    "shipped_sweep",
    "experiment_cli",
    # also used from outside (widgets, bench, lesson 06), re-exported as before
    "ACTIVATIONS",
    "LOSSES",
    "OPTIMIZERS",
    "DATASETS",
    "DTYPE",
    "training_error",
    "TABLE_COLUMNS",
    "example_slices",
]
