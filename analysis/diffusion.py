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
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from analysis.checks import check_count
from analysis.partial import interrupted, load_partial, write_json_atomic

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

RECORD_FILE = "diffusion.json"
W0_FILE = "diffusion_w0.pt"  # w_0 beside the record, so that a resumed run measures from it


# --- the record -----------------------------------------------------------------------------

@dataclass
class DiffusionRecord:
    """‖w_t − w_0‖ at update counts t: `distance` for the whole model, `layers[name]` per layer."""

    steps: list[int] = field(default_factory=list)
    distance: list[float] = field(default_factory=list)
    layers: dict[str, list[float]] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.steps)

    def save(self, path: str | Path) -> Path:
        """Write the record as JSON to `path`, or to `path`/diffusion.json when `path` is a folder."""
        path = Path(path)
        if path.is_dir() or not path.suffix:
            path.mkdir(parents=True, exist_ok=True)
            path = path / RECORD_FILE
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(asdict(self)))
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> DiffusionRecord:
        """Read a record written by `save` (a JSON file, or a run folder holding diffusion.json)."""
        path = Path(path)
        if path.is_dir():
            path = path / RECORD_FILE
        if not path.exists():
            raise FileNotFoundError(f"no diffusion record at {path}")
        return cls(**json.loads(path.read_text()))


def record_points(total: int, every: int | str = "auto", per_decade: int = 24) -> list[int]:
    """The update counts t ≤ `total` at which `WeightDiffusion(every)` records.

    every=k: k, 2k, 3k, ...; every="auto": about `per_decade` log-spaced points per factor
    of 10 (every update while the spacing is below one, up to t ≈ per_decade/ln 10), so a
    run of 10^6 updates keeps ~130 records.
    """
    every = _check_every(every)
    if not per_decade > 0:
        raise ValueError(f"per_decade must be positive, got {per_decade!r}")
    points, t = [], _next_point(0, every, per_decade)
    while t <= total:
        points.append(t)
        t = _next_point(t, every, per_decade)
    return points


def _check_every(every: int | str) -> int | str:
    if every == "auto":
        return every
    if isinstance(every, bool) or not isinstance(every, int) or every <= 0:
        raise ValueError(f"every must be a positive number of updates or 'auto', got {every!r}")
    return every


def _next_point(t: int, every: int | str, per_decade: int) -> int:
    if every == "auto":
        return max(t + 1, math.ceil(t * 10 ** (1 / per_decade)))
    return (t // every + 1) * every


# --- the callback ----------------------------------------------------------------------------

def _layer_of(param_name: str) -> str:
    """'3.weight' → '3': the module that owns a parameter."""
    return param_name.rpartition(".")[0] or param_name


class WeightDiffusion:
    """Training callback recording d(t) = ‖w_t − w_0‖₂ for the model and per layer.

    w_0 is kept as one flat copy taken at `on_train_begin`; each record computes all the
    per-parameter distances with two fused `torch._foreach_*` calls (no copy of the model is
    kept). every=k records after updates k, 2k, ...; every="auto" at log-spaced updates
    (see `record_points`); the last update of the run is always recorded. With a run folder
    the record is written there as diffusion.json after every epoch, and w_0 once as
    diffusion_w0.pt: a run resumed from that folder (`fit(..., resume=True)`) goes on with the
    same record, distances still from the first w_0. (A resumed run whose folder lacks them
    starts a new record from the resumed weights, and says so in `record.meta`.)
    """

    def __init__(self, every: int | str = "auto", layers: bool = True, per_decade: int = 24):
        self.every = _check_every(every)
        if per_decade <= 0:
            raise ValueError(f"per_decade must be positive, got {per_decade}")
        self.layers, self.per_decade = layers, per_decade
        self.record = DiffusionRecord()
        self._w0: Tensor | None = None

    # setup: one flat copy of w_0 and, per parameter, a view into it
    def on_train_begin(self, state) -> None:
        named = [(n, p) for n, p in state.model.named_parameters() if p.requires_grad]
        if not named:
            raise ValueError("WeightDiffusion: the model has no trainable parameters")
        self._params = [p for _, p in named]
        self._w0 = torch.cat([p.detach().reshape(-1) for p in self._params]).clone()
        self._w0_views, offset = [], 0
        for p in self._params:
            self._w0_views.append(self._w0[offset:offset + p.numel()].view_as(p))
            offset += p.numel()
        names = [_layer_of(n) for n, _ in named]
        self._layer_names = list(dict.fromkeys(names))
        self._layer_index = torch.tensor([self._layer_names.index(n) for n in names])
        self._start = state.step
        self._next = _next_point(0, self.every, self.per_decade)
        self.record = DiffusionRecord(layers={n: [] for n in self._layer_names} if self.layers else {},
                                      meta={"every": self.every, "per_decade": self.per_decade,
                                            "parameters": int(self._w0.numel()),
                                            "batch_size": state.batch_size})
        self._run_dir = state.run_dir
        if self._run_dir is None:
            return
        w0_path = self._run_dir / W0_FILE
        if state.step == 0:
            tmp = w0_path.with_suffix(".tmp")
            torch.save(self._w0.cpu(), tmp)
            os.replace(tmp, w0_path)
        elif w0_path.exists() and (self._run_dir / RECORD_FILE).exists():
            self._resume(state, w0_path)
        else:
            self.record.meta["restarted_at_update"] = state.step  # t counts from the resume

    def _resume(self, state, w0_path: Path) -> None:
        """Go on with the record of the run in `state.run_dir`, from its w_0 (saved at t = 0)."""
        w0 = torch.load(w0_path, map_location="cpu", weights_only=True)
        if w0.shape != self._w0.shape:
            raise ValueError(f"{w0_path} holds {w0.numel()} weights but the model has "
                             f"{self._w0.numel()}: not the model of this run")
        self._w0.copy_(w0)
        # the record is saved before the checkpoint: after a crash in between it runs past the
        # checkpoint's update, and those points will be recorded again
        saved = DiffusionRecord.load(self._run_dir)
        n = sum(t <= state.step for t in saved.steps)
        self.record = DiffusionRecord(saved.steps[:n], saved.distance[:n],
                                      {name: d[:n] for name, d in saved.layers.items()}, saved.meta)
        self._start = 0
        # the next point of the same grid as an uninterrupted run, after the checkpoint's update
        t = _next_point(0 if self.every == "auto" else state.step, self.every, self.per_decade)
        while t <= state.step:
            t = _next_point(t, self.every, self.per_decade)
        self._next = t

    @torch.no_grad()
    def distances(self) -> tuple[float, list[float]]:
        """(‖w − w_0‖, [‖w_l − w_0,l‖ per layer]) for the current weights."""
        diffs = torch._foreach_sub([p.detach() for p in self._params], self._w0_views)
        sq = torch.stack(torch._foreach_norm(diffs)).double().square().cpu()  # beside _layer_index
        per_layer = torch.zeros(len(self._layer_names), dtype=torch.float64).index_add_(
            0, self._layer_index, sq)
        return float(sq.sum().sqrt()), per_layer.sqrt().tolist()

    def on_step_end(self, state) -> None:
        t = state.step - self._start
        if t >= self._next:
            self._append(t)
            self._next = _next_point(t, self.every, self.per_decade)

    def _append(self, t: int) -> None:
        total, per_layer = self.distances()
        self.record.steps.append(t)
        self.record.distance.append(total)
        for name, d in zip(self.record.layers, per_layer):
            self.record.layers[name].append(d)

    def on_epoch_end(self, state) -> None:
        if self._run_dir is not None:
            self.record.save(self._run_dir / RECORD_FILE)

    def on_train_end(self, state) -> None:
        t = state.step - self._start
        if t > 0 and (not self.record.steps or self.record.steps[-1] != t):
            self._append(t)  # the last update is always in the record
        self.on_epoch_end(state)


def weight_distance(model: nn.Module, reference: nn.Module | dict[str, Tensor]) -> float:
    """‖w − w_ref‖₂ over the trainable parameters (the direct computation, for checks)."""
    ref = reference if isinstance(reference, dict) else dict(reference.named_parameters())
    sq = sum(float((p.detach().double() - ref[n].detach().double()).pow(2).sum())
             for n, p in model.named_parameters() if p.requires_grad)
    return math.sqrt(sq)


# --- fits ------------------------------------------------------------------------------------

def _as_curve(t, d, t_min: float = 1, t_max: float = math.inf) -> tuple[np.ndarray, np.ndarray]:
    t, d = np.asarray(t, dtype=float), np.asarray(d, dtype=float)
    if t.shape != d.shape or t.ndim != 1:
        raise ValueError(f"t and d must be 1-D and of equal length, got shapes {t.shape} and {d.shape}")
    keep = (t >= t_min) & (t <= t_max)
    t, d = t[keep], d[keep]
    if len(t) < 3:
        raise ValueError(f"need at least 3 points with {t_min} <= t <= {t_max} to fit, got {len(t)}")
    if np.any(t <= 0) or not np.all(np.isfinite(d)):
        raise ValueError("t must be positive and d finite")
    return t, d


def _r2(d: np.ndarray, pred: np.ndarray) -> float:
    ss_tot = float(np.sum((d - d.mean()) ** 2))
    return 1.0 - float(np.sum((d - pred) ** 2)) / ss_tot if ss_tot > 0 else float("nan")


def _linear_fit(x: np.ndarray, d: np.ndarray) -> tuple[float, float, float]:
    b, a = np.polyfit(x, d, 1)
    return float(a), float(b), _r2(d, a + b * x)


def fit_log(t: Sequence[float], d: Sequence[float], t_min: float = 1,
            t_max: float = math.inf) -> tuple[float, float, float]:
    """Least squares d ≈ a + b·log t (natural log) over points with t_min ≤ t ≤ t_max → (a, b, R²)."""
    t, d = _as_curve(t, d, t_min, t_max)
    return _linear_fit(np.log(t), d)


def fit_sqrt(t: Sequence[float], d: Sequence[float], t_min: float = 1,
             t_max: float = math.inf) -> tuple[float, float, float]:
    """Least squares d ≈ a + c·√t (a random walk on a flat landscape) → (a, c, R²)."""
    t, d = _as_curve(t, d, t_min, t_max)
    return _linear_fit(np.sqrt(t), d)


def fit_power(t: Sequence[float], d: Sequence[float], t_min: float = 1,
              t_max: float = math.inf) -> tuple[float, float, float]:
    """Least squares d ≈ c·t^p → (c, p, R²); R² is measured on d itself, like the other fits.

    p over a window [t_min, t_max] is the local growth exponent: ½ for a random walk, and
    shrinking with t for logarithmic growth.
    """
    from scipy.optimize import curve_fit

    t, d = _as_curve(t, d, t_min, t_max)
    if np.any(d <= 0):
        raise ValueError("fit_power needs d > 0")
    p0, logc0 = np.polyfit(np.log(t), np.log(d), 1)  # log-log start, then least squares on d
    try:
        (c, p), _ = curve_fit(lambda t, c, p: c * t ** p, t, d, p0=(math.exp(logc0), p0), maxfev=5000)
    except RuntimeError:
        c, p = math.exp(logc0), p0
    return float(c), float(p), _r2(d, c * t ** p)


FITS = {"log": fit_log, "power": fit_power, "sqrt": fit_sqrt}


def compare_fits(t: Sequence[float], d: Sequence[float], t_min: float = 1,
                 t_max: float = math.inf) -> dict:
    """The three laws on the same points: {"log": {...}, "power": {...}, "sqrt": {...}, "best": name}.

    log: a + b·log t;  power: c·t^p;  sqrt: a + c·√t. Each entry holds its parameters and R².
    """
    out: dict = {}
    for name, names, fn in [("log", ("a", "b"), fit_log), ("power", ("c", "p"), fit_power),
                            ("sqrt", ("a", "c"), fit_sqrt)]:
        x, y, r2 = fn(t, d, t_min, t_max)
        out[name] = {names[0]: x, names[1]: y, "r2": r2}
    out["best"] = max(FITS, key=lambda n: out[n]["r2"])
    t = np.asarray(t, dtype=float)
    out["points"] = int(np.sum((t >= t_min) & (t <= t_max)))
    return out


def predict(law: str, params: dict, t) -> np.ndarray:
    """The fitted curve of `law` ("log", "power" or "sqrt") with `params` from compare_fits at t."""
    t = np.asarray(t, dtype=float)
    if law == "log":
        return params["a"] + params["b"] * np.log(t)
    if law == "power":
        return params["c"] * t ** params["p"]
    if law == "sqrt":
        return params["a"] + params["c"] * np.sqrt(t)
    raise ValueError(f"unknown law {law!r}: use 'log', 'power' or 'sqrt'")


# --- the random-walk picture -------------------------------------------------------------------

def _environment(rng: np.random.Generator, walkers: int, steps: int) -> np.ndarray:
    """ξ = ±1 (int8) of the 2·steps + 1 sites each walker can reach, drawn a block of rows at a
    time (the same draws as one call; float64 in one call took 3 GB at 10⁶ steps)."""
    sites = 2 * steps + 1
    rows = max(1, 2**18 // sites)
    signs = np.array([-1, 1], dtype=np.int8)
    xi = np.empty((walkers, sites), dtype=np.int8)
    for i in range(0, walkers, rows):
        xi[i : i + rows] = rng.choice(signs, size=(min(rows, walkers - i), sites))
    return xi


def random_walk(steps: int, potential: str = "flat", walkers: int = 200, bias: float = 0.35,
                seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """RMS distance from the start of 1-D lattice walks, at log-spaced times → (t, d).

    potential="flat": each step ±1 with probability ½, d(t) = √t. potential="random": Sinai's
    walk in a random environment: at site x the walker steps right with probability
    ½ + bias·ξ_x, ξ_x = ±1 frozen at random; it gets trapped in ever deeper valleys of the
    random potential and d(t) grows like (log t)² ("ultra-slow diffusion", Hoffer et al. §3).
    """
    steps, walkers = check_count("steps", steps), check_count("walkers", walkers)
    if potential not in ("flat", "random"):
        raise ValueError(f"unknown potential {potential!r}: use 'flat' or 'random'")
    if not 0 <= bias < 0.5:
        raise ValueError(f"bias must be in [0, 0.5), got {bias}")
    rng = np.random.default_rng(seed)
    xi = np.zeros((walkers, 1), dtype=np.int8) if potential == "flat" else _environment(rng, walkers, steps)
    points = np.asarray(record_points(steps, "auto", per_decade=12))
    x = np.zeros(walkers, dtype=np.int64)
    rows = np.arange(walkers)
    d, k = [], 0
    for t in range(1, steps + 1):
        col = 0 if potential == "flat" else x + steps
        x += np.where(rng.random(walkers) < 0.5 + bias * xi[rows, col], 1, -1)
        if k < len(points) and t == points[k]:
            d.append(float(np.sqrt(np.mean(x.astype(float) ** 2))))
            k += 1
    return points.astype(float), np.asarray(d)


# --- the experiment: python -m analysis experiment large-batch -----------------------------------

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
    return Path(__file__).resolve().parent / "results" / "large_batch_grid.json"


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
    p.add_argument("--fast", action="store_true", help="smaller net, fewer epochs (about a minute)")
    p.add_argument("--out", default="runs/large-batch", help="output folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=None, help="epochs of the small batch run")
    p.add_argument("--grid", action="store_true",
                   help="run every (batch 50/200/1000, LR scaling, Ghost BN, regime adaptation) "
                        "combination for the lesson's widget instead of the table (ignores --fast); "
                        "ships as analysis/results/large_batch_grid.json")
    a = p.parse_args(argv)
    settings = dict(SETTINGS["grid" if a.grid else "fast" if a.fast else "normal"])
    if a.epochs is not None:
        if a.epochs <= 0:
            p.error(f"--epochs must be positive, got {a.epochs}")
        settings["epochs"] = a.epochs
    out = Path(a.out)
    if out.exists() and not out.is_dir():
        p.error(f"--out {out} is a file, not a folder")
    configs = (grid_configs(settings["small"], GRID_BATCH_SIZES) if a.grid
               else large_batch_configs(settings["small"], settings["large"]))
    mode = "grid" if a.grid else "fast" if a.fast else "normal"
    name = "large_batch_grid.json" if a.grid else "results.json"
    partial = out / name.replace(".json", ".partial.json")
    identity = {"mode": mode, **settings, "seed": a.seed}
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
    (out / "table.md").write_text(table + f"\n\nshare of the large-batch gap recovered: {share:.2f}\n")
    print("\n" + table + f"\n\nshare of the large-batch gap recovered by the fixes: {share:.2f}")

    import matplotlib.pyplot as plt

    from analysis.plots.diffusion import distance_vs_updates, error_per_config

    figs = {"distance.png": distance_vs_updates(results), "errors.png": error_per_config(results["rows"])}
    for fname, fig in figs.items():
        fig.savefig(out / fname, dpi=110, bbox_inches="tight")
        plt.close(fig)  # written: a sweep calling this in a loop keeps no figures
    print(f"wrote {out / 'table.md'}, " + ", ".join(str(out / f) for f in figs))
