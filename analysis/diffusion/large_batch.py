"""The large-batch experiment of Hoffer et al. (2017): python -m analysis experiment large-batch.

Small batch against large batch, then the large batch with the fixes added one by one:
learning rate η·sqrt(B/B_small), Ghost Batch-Norm, and regime adaptation (as many updates as
the small batch). Each run logs its weight diffusion; `grid_configs` are every combination,
precomputed for lesson 04's widget (analysis/results/large_batch_grid.json).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from analysis.checks import count_arg, out_folder_arg
from analysis.diffusion.fits import compare_fits
from analysis.diffusion.record import WeightDiffusion
from analysis.partial import code_version, interrupted, load_partial, write_json_atomic, write_text_atomic

__all__ = [
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


@dataclass(frozen=True)
class LargeBatchConfig:
    """One training run of the large-batch experiment."""

    name: str
    batch_size: int
    lr_scaling: str | None = None     # None or "sqrt": η·sqrt(B/B_small)
    ghost: bool = False               # Ghost Batch-Norm with ghost batches of B_small
    regime_adaptation: bool = False   # epochs × B/B_small: as many updates as the small batch


def large_batch_configs(small: int, large: int) -> list[LargeBatchConfig]:
    """The table of the paper: small batch, large batch, then the fixes added one by one."""
    return [
        LargeBatchConfig(f"small batch ({small})", small),
        LargeBatchConfig(f"large batch ({large})", large),
        LargeBatchConfig("+ sqrt LR", large, "sqrt"),
        LargeBatchConfig("+ Ghost BN", large, "sqrt", ghost=True),
        LargeBatchConfig("+ regime adaptation", large, "sqrt", ghost=True, regime_adaptation=True),
    ]


def grid_configs(small: int, batch_sizes: Sequence[int]) -> list[LargeBatchConfig]:
    """Every combination (batch, LR scaling, Ghost BN, regime adaptation) for the lesson's widget."""
    out = [LargeBatchConfig(grid_key(small, None, False, False), small)]
    for B in batch_sizes:
        if B == small:
            continue
        for scaling in (None, "sqrt"):
            for ghost in (False, True):
                for ra in (False, True):
                    out.append(LargeBatchConfig(grid_key(B, scaling, ghost, ra), B, scaling, ghost, ra))
    return out


def grid_key(batch_size: int, lr_scaling: str | None, ghost: bool, regime_adaptation: bool) -> str:
    """Name of a run in the widget's grid, e.g. 'B1000-sqrt-gbn-ra'."""
    parts = [f"B{batch_size}", lr_scaling or "nolr"]
    parts += ["gbn"] if ghost else []
    parts += ["ra"] if regime_adaptation else []
    return "-".join(parts)


LARGE_BATCH_CONFIGS = large_batch_configs(50, 1000)

SETTINGS = {
    # 5 epochs at batch 50 (400 updates) vs 20 updates at batch 1000: a gap of several points
    "normal": {"dataset": "mnist5k", "width": 256, "depth": 3, "epochs": 5, "small": 50,
               "large": 1000, "lr": 0.02, "momentum": 0.9, "grad_clip": 5.0},
    "fast": {"dataset": "mnist5k", "width": 128, "depth": 3, "epochs": 3, "small": 50,
             "large": 1000, "lr": 0.02, "momentum": 0.9, "grad_clip": 5.0},
}
SETTINGS["grid"] = dict(SETTINGS["fast"])  # the widget's 17 runs: the fast sizes
GRID_BATCH_SIZES = (200, 1000)


def lesson_settings(fast: bool) -> dict:
    """The sizes of the experiment for lesson 04: SETTINGS["fast"] or SETTINGS["normal"]."""
    return dict(SETTINGS["fast" if fast else "normal"])


def run_config(config: LargeBatchConfig, settings: dict, train, test, seed: int = 0,
               progress: bool = False) -> dict:
    """Train one configuration with the one training loop; return its row and diffusion record."""
    from analysis import models
    from analysis.training import fit

    s, small = settings, settings["small"]
    if config.ghost and config.batch_size % small:
        raise ValueError(f"Ghost BN: the ghost size {small} must divide the batch size {config.batch_size}")
    torch.manual_seed(seed)
    model = models.build("mlp", in_shape=tuple(train[0].shape[1:]), num_classes=int(train[1].max()) + 1,
                         width=s["width"], depth=s["depth"], ghost_size=small if config.ghost else None)
    rec = WeightDiffusion()
    t0 = time.perf_counter()
    history = fit(model, train, test_data=test, epochs=s["epochs"], batch_size=config.batch_size,
                  optimizer="sgd", lr=s["lr"], momentum=s["momentum"], grad_clip=s["grad_clip"],
                  base_batch_size=small, lr_scaling=config.lr_scaling,
                  regime_adaptation=config.regime_adaptation, callbacks=[rec], seed=seed,
                  progress=progress)
    f = history.final
    row = {"name": config.name, "batch_size": config.batch_size, "lr": f["lr"],
           "lr_scaling": config.lr_scaling or "none", "ghost_bn": config.ghost,
           "regime_adaptation": config.regime_adaptation, "epochs": f["epoch"],
           "updates": f["updates"], "train_error": f["train_error"], "test_error": f["test_error"],
           "final_distance": rec.record.distance[-1], "seconds": time.perf_counter() - t0}
    row["fits"] = compare_fits(rec.record.steps, rec.record.distance)
    return {"row": row, "record": asdict(rec.record)}


def run_large_batch(configs: Sequence[LargeBatchConfig], settings: dict, seed: int = 0,
                    progress: bool = False, log=print, done: dict | None = None,
                    save=None) -> dict:
    """Run `configs` on the settings' dataset → {"settings", "rows", "records"} (JSON-ready).

    done: the results of an interrupted run with the same settings; its configs are taken as
    they are, not run again. save(results) is called after each config that ran (for a partial
    file). Each config depends only on `seed` and its own settings, never on the ones before."""
    from analysis import data

    done_rows = {r["name"]: r for r in (done or {}).get("rows", [])}
    train = data.load(settings["dataset"], "train")
    test = data.load(settings["dataset"], "test")
    results = {"settings": dict(settings, seed=seed), "rows": [], "records": {}}
    for c in configs:
        if c.name in done_rows:
            results["rows"].append(done_rows[c.name])
            results["records"][c.name] = done["records"][c.name]
            continue
        out = run_config(c, settings, train, test, seed, progress)
        results["rows"].append(out["row"])
        results["records"][c.name] = out["record"]
        r = out["row"]
        log(f"  {c.name:<24} updates {r['updates']:5d}  test error {100 * r['test_error']:5.2f}%  "
            f"‖w−w0‖ {r['final_distance']:6.2f}  ({r['seconds']:.0f} s)")
        if save is not None:
            save(results)
    return results


def gap_recovered(rows: Sequence[dict]) -> float:
    """(err_large − err_all_fixes) / (err_large − err_small), rows in the order of
    `large_batch_configs` (small, large, ..., all fixes): the share of the gap the fixes close."""
    if len(rows) < 3:
        raise ValueError(f"need the small, large and at least one fixed run, got {len(rows)} rows")
    small, large, fixed = rows[0]["test_error"], rows[1]["test_error"], rows[-1]["test_error"]
    gap = large - small
    return (large - fixed) / gap if gap > 0 else float("nan")


def markdown_table(rows: Sequence[dict]) -> str:
    """The large-batch table: configuration, batch, lr, epochs, updates, errors, distance, log-fit R²."""
    lines = ["| configuration | batch | lr | epochs | updates | train error | test error | ‖w−w₀‖ "
             "| R² log / power / sqrt |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        f = r["fits"]
        lines.append(f"| {r['name']} | {r['batch_size']} | {r['lr']:.3g} | {r['epochs']} | {r['updates']} "
                     f"| {100 * r['train_error']:.2f}% | {100 * r['test_error']:.2f}% "
                     f"| {r['final_distance']:.2f} | {f['log']['r2']:.3f} / {f['power']['r2']:.3f} / "
                     f"{f['sqrt']['r2']:.3f} |")
    return "\n".join(lines)


def load_results(path: str | Path) -> dict:
    """Read results.json written by the experiment (a file or its folder)."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    if not path.exists():
        raise FileNotFoundError(f"no large-batch results at {path}; run "
                                f"`python -m analysis experiment large-batch --out {path.parent}`")
    return json.loads(path.read_text())


def compact(results: dict, digits: int = 5) -> dict:
    """The results without per-layer records and with distances to `digits` significant digits
    (for the grid shipped with the package)."""
    out = dict(results, records={})
    for name, rec in results["records"].items():
        out["records"][name] = dict(rec, layers={},
                                    distance=[float(f"{d:.{digits}g}") for d in rec["distance"]])
    return out


def default_grid_path() -> Path:
    """The precomputed grid the lesson's widget reads (committed with the package)."""
    return Path(__file__).resolve().parents[1] / "results" / "large_batch_grid.json"


def experiment_cli(argv: list[str]) -> int:
    """python -m analysis experiment large-batch [--fast] [--out DIR] [--grid].

    After each config the results so far go to DIR/results.partial.json (the grid's:
    large_batch_grid.partial.json); the same command resumes an interrupted run from there."""
    import argparse

    p = argparse.ArgumentParser(
        prog="python -m analysis experiment large-batch",
        description="Hoffer et al. (2017): small vs large batch, and the large batch with sqrt LR "
                    "scaling, Ghost BN and regime adaptation added; test error, updates and weight "
                    "diffusion of each. Writes results.json, table.md and figures to --out. "
                    "Interrupted (Ctrl-C), the same command goes on from the last finished config.")
    p.add_argument("--fast", action="store_true", help="smaller net, fewer epochs (1–2 minutes on 2 cores)")
    p.add_argument("--out", type=out_folder_arg, default="runs/large-batch", help="output folder")
    p.add_argument("--seed", type=int, default=0, help="initialization and data order (default %(default)s)")
    p.add_argument("--epochs", type=count_arg(), default=None, help="epochs of the small batch run")
    p.add_argument("--grid", action="store_true",
                   help="run every (batch 50/200/1000, LR scaling, Ghost BN, regime adaptation) "
                        "combination for the lesson's widget instead of the table (ignores --fast); "
                        "ships as analysis/results/large_batch_grid.json")
    a = p.parse_args(argv)
    settings = dict(SETTINGS["grid" if a.grid else "fast" if a.fast else "normal"])
    if a.epochs is not None:
        settings["epochs"] = a.epochs
    out = Path(a.out)
    configs = (grid_configs(settings["small"], GRID_BATCH_SIZES) if a.grid
               else large_batch_configs(settings["small"], settings["large"]))
    mode = "grid" if a.grid else "fast" if a.fast else "normal"
    name = "large_batch_grid.json" if a.grid else "results.json"
    partial = out / name.replace(".json", ".partial.json")
    identity = {"mode": mode, **settings, "seed": a.seed, "code": code_version()}
    done = load_partial(partial, identity, p)
    out.mkdir(parents=True, exist_ok=True)
    print(f"large-batch experiment ({mode}): mlp {settings['depth']}x"
          f"{settings['width']} on {settings['dataset']}, {settings['epochs']} epochs at batch "
          f"{settings['small']}, SGD lr {settings['lr']}", flush=True)
    if done is not None:
        print(f"resuming: {len(done['rows'])} of {len(configs)} configs done in {out}", flush=True)
    earlier = sum(r["seconds"] for r in done["rows"]) if done else 0.0  # of the configs kept
    t0 = time.perf_counter()
    try:
        results = run_large_batch(configs, settings, seed=a.seed, progress=sys.stderr.isatty(),
                                  log=lambda s: print(s, flush=True), done=done,
                                  save=lambda r: write_json_atomic(partial, dict(r, identity=identity)))
        results["seconds"] = earlier + time.perf_counter() - t0
        write_json_atomic(out / name, compact(results) if a.grid else results)
        print(f"wrote {out / name} ({results['seconds']:.0f} s)")
        if not a.grid:
            _write_table_and_figures(results, out)
    except KeyboardInterrupt:
        return interrupted(partial, len(configs), "configs")
    partial.unlink(missing_ok=True)  # finished: the outputs are those of an uninterrupted run
    return 0


def _write_table_and_figures(results: dict, out: Path) -> None:
    """table.md, distance.png and errors.png of the experiment's results in the folder `out`."""
    table = markdown_table(results["rows"])
    share = gap_recovered(results["rows"])
    write_text_atomic(out / "table.md", table + f"\n\nshare of the large-batch gap recovered: {share:.2f}\n")
    print("\n" + table + f"\n\nshare of the large-batch gap recovered by the fixes: {share:.2f}")

    import matplotlib.pyplot as plt

    from analysis.plots.diffusion import distance_vs_updates, error_per_config

    figs = {"distance.png": distance_vs_updates(results), "errors.png": error_per_config(results["rows"])}
    for fname, fig in figs.items():
        fig.savefig(out / fname, dpi=110, bbox_inches="tight")
        plt.close(fig)  # written: a sweep calling this in a loop keeps no figures
    print(f"wrote {out / 'table.md'}, " + ", ".join(str(out / f) for f in figs))
