"""Weight diffusion: how far the weights travel from their initialization (Hoffer et al. 2017).

    rec = WeightDiffusion()                       # log-spaced records: small on long runs
    fit(model, train, epochs=10, callbacks=[rec])
    a, b, r2 = fit_log(rec.record.steps, rec.record.distance)    # d(t) ≈ a + b·log t

"Train longer, generalize better" (Hoffer, Hubara, Soudry, NIPS 2017) observes that the
distance d(t) = ‖w_t − w_0‖ grows like log t ("ultra-slow diffusion", a random walk on a
random potential), not like √t (a random walk on a flat one). So a large batch, which makes
B/B_small fewer updates per epoch, travels less far; the fixes are a larger step
(η·sqrt(B/B_small)), Ghost Batch-Norm, and as many updates as the small batch ("regime
adaptation"). `experiment_cli` runs that comparison: `python -m analysis experiment large-batch`.

- `analysis.diffusion.record`: `WeightDiffusion`, the training callback, and its
  `DiffusionRecord` (saved beside a run, resumed with it).
- `analysis.diffusion.fits`: the laws a + b·log t, c·t^p and a + c·√t fitted to d(t).
- `analysis.diffusion.walk`: lattice random walks on a flat and on a random potential.
- `analysis.diffusion.large_batch`: the large-batch experiment and the widget's grid.
"""

from analysis.diffusion.fits import compare_fits, fit_log, fit_power, fit_sqrt, predict
from analysis.diffusion.large_batch import (
    LARGE_BATCH_CONFIGS,
    SETTINGS,
    LargeBatchConfig,
    compact,
    default_grid_path,
    experiment_cli,
    gap_recovered,
    grid_configs,
    grid_key,
    large_batch_configs,
    lesson_settings,
    load_results,
    markdown_table,
    run_config,
    run_large_batch,
)
from analysis.diffusion.record import DiffusionRecord, WeightDiffusion, record_points, weight_distance
from analysis.diffusion.walk import random_walk

__all__ = [
    "WeightDiffusion",
    "DiffusionRecord",
    "record_points",
    "fit_log",
    "fit_power",
    "fit_sqrt",
    "compare_fits",
    "predict",
    "weight_distance",
    "random_walk",
    "LargeBatchConfig",
    "LARGE_BATCH_CONFIGS",
    "SETTINGS",
    "lesson_settings",
    "large_batch_configs",
    "grid_configs",
    "grid_key",
    "run_config",
    "run_large_batch",
    "gap_recovered",
    "markdown_table",
    "load_results",
    "compact",
    "default_grid_path",
    "experiment_cli",
]
