"""Loss slices and the width sweep: the fraction of trainings that end at sub-optimal minima
against P/N, its tables, the lesson's sizes and `python -m analysis experiment minima`.

Loss slices: 1-D interpolation from an initialization to its endpoint, 2-D slices along
filter-normalized random directions (Li et al., "Visualizing the loss landscape of neural
nets", NeurIPS 2018).
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import torch
from torch import Tensor

from analysis.checks import check_count, count_arg, out_folder_arg
from analysis.landscape.net import (
    ACTIVATIONS,
    DATASETS,
    DTYPE,
    LOSSES,
    _check_data,
    _loss_terms,
    _slope,
    forward,
    make_data,
    training_error,
)
from analysis.landscape.train import train_many
from analysis.partial import code_version, interrupted, load_partial, write_json_atomic, write_text_atomic

__all__ = [
    "interpolate_1d",
    "filter_normalized_direction",
    "slice_2d",
    "SETTINGS",
    "lesson_settings",
    "SWEEPS",
    "TABLE_COLUMNS",
    "sweep",
    "markdown_table",
    "example_slices",
    "shipped_sweep",
    "experiment_cli",
]


# --------------------------------------------------------------------------- loss slices

def _losses_at(W: Tensor, z: Tensor, X: Tensor, y: Tensor, slope: float, loss: str,
               chunk: int = 4096) -> tuple[Tensor, Tensor]:
    """Loss and training error of a batch of parameter sets (R, d1, d0), (R, d1), in chunks."""
    Ls, errs = [], []
    for i in range(0, W.shape[0], chunk):
        f = forward(W[i:i + chunk], z[i:i + chunk], X, slope)[1]
        Ls.append(_loss_terms(f, y, loss)[0])
        errs.append(training_error(f, y))
    return torch.cat(Ls), torch.cat(errs)


def _check_point(W: Tensor, z: Tensor, d0: int, name: str) -> tuple[Tensor, Tensor]:
    """One net's W (d1, d0), z (d1,) as float64, finite, or a ValueError naming the shapes."""
    W, z = torch.as_tensor(W, dtype=DTYPE), torch.as_tensor(z, dtype=DTYPE)
    if W.ndim != 2 or W.shape[1] != d0 or z.shape != W.shape[:1]:
        raise ValueError(f"{name} must be one net's W (d1, d0) with d0 = {d0} (the columns of X) "
                         f"and z (d1,), got {tuple(W.shape)} and {tuple(z.shape)}; for run r of "
                         "a batch pass W[r], z[r]")
    if not (W.isfinite().all() and z.isfinite().all()):
        raise ValueError(f"{name} holds NaN or infinite weights")
    return W, z


def interpolate_1d(X: Tensor, y: Tensor, start: tuple[Tensor, Tensor], end: tuple[Tensor, Tensor],
                   alphas: Tensor | None = None, activation: str = "leaky_relu",
                   slope: float = 0.1, loss: str = "quadratic") -> dict[str, Tensor]:
    """L((1 − α)θ_0 + αθ_1) along the segment from `start` = (W0 (d1, d0), z0 (d1,)) to
    `end` = (W1, z1); default α from −0.25 to 1.25 in 121 steps. Returns alpha, loss, error."""
    X, y = _check_data(X, y)
    s = _slope(activation, slope)
    a = torch.linspace(-0.25, 1.25, 121, dtype=DTYPE) if alphas is None else \
        torch.as_tensor(alphas, dtype=DTYPE)
    if a.ndim != 1 or not a.isfinite().all():
        raise ValueError(f"alphas must be a 1-D sequence of finite numbers, got shape "
                         f"{tuple(a.shape)}" + ("" if a.isfinite().all() else " with NaN or inf"))
    W0, z0 = _check_point(*start, X.shape[1], "start")
    W1, z1 = _check_point(*end, X.shape[1], "end")
    if W0.shape != W1.shape:
        raise ValueError(f"start and end must be nets of the same width, got W {tuple(W0.shape)} "
                         f"and {tuple(W1.shape)}")
    W = (1 - a).view(-1, 1, 1) * W0 + a.view(-1, 1, 1) * W1
    z = (1 - a).view(-1, 1) * z0 + a.view(-1, 1) * z1
    L, err = _losses_at(W, z, X, y, s, loss)
    return {"alpha": a, "loss": L, "error": err}


def filter_normalized_direction(W: Tensor, z: Tensor, seed: int = 0) -> tuple[Tensor, Tensor]:
    """A Gaussian direction (dW (d1, d0), dz (d1,)) with each filter rescaled to the norm of the
    same filter of θ (Li et al. 2018): ‖dw_j‖ = ‖w_j‖ for every hidden unit j and ‖dz‖ = ‖z‖
    for the output unit."""
    g = torch.Generator().manual_seed(seed)
    dW = torch.randn(W.shape, generator=g, dtype=DTYPE)
    dz = torch.randn(z.shape, generator=g, dtype=DTYPE)
    dW = dW * (W.norm(dim=-1, keepdim=True) / dW.norm(dim=-1, keepdim=True))
    dz = dz * (z.norm() / dz.norm())
    return dW, dz


def slice_2d(X: Tensor, y: Tensor, W: Tensor, z: Tensor, span: float = 1.0, points: int = 41,
             seed: int = 0, activation: str = "leaky_relu", slope: float = 0.1,
             loss: str = "quadratic") -> dict[str, Tensor]:
    """L(θ + α δ + β η) on a points × points grid of (α, β) ∈ [−span, span]², δ, η two
    filter-normalized random directions (seeds seed, seed + 1) around θ = (W (d1, d0), z (d1,)).
    Returns alpha (points,), beta (points,), loss and error grids (points, points) [β, α]."""
    X, y = _check_data(X, y)
    check_count("points", points)
    if not 0 < span < math.inf:
        raise ValueError(f"span must be > 0 and finite, got {span!r}")
    s = _slope(activation, slope)
    W, z = _check_point(W, z, X.shape[1], "(W, z)")
    (dW1, dz1), (dW2, dz2) = (filter_normalized_direction(W, z, seed + i) for i in (0, 1))
    a = torch.linspace(-span, span, points, dtype=DTYPE)
    B, A = torch.meshgrid(a, a, indexing="ij")
    A, B = A.reshape(-1), B.reshape(-1)
    Wg = W + A.view(-1, 1, 1) * dW1 + B.view(-1, 1, 1) * dW2
    zg = z + A.view(-1, 1) * dz1 + B.view(-1, 1) * dz2
    L, err = _losses_at(Wg, zg, X, y, s, loss)
    return {"alpha": a, "beta": a, "loss": L.view(points, points),
            "error": err.view(points, points)}


# --------------------------------------------------------------------------- the sweep

SETTINGS = {
    "normal": dict(n=32, d0=6, widths=(1, 2, 3, 4, 6, 8, 12), runs=100, max_steps=4000,
                   data=("random", "teacher"), quick_runs=100, slice_widths=(2, 8)),
    "fast": dict(n=24, d0=5, widths=(1, 2, 4, 8), runs=30, max_steps=1500,
                 data=("random", "teacher"), quick_runs=30, slice_widths=(2, 8)),
}
"""Sizes of lesson 06 per mode (the command line's sweep is `SWEEPS`)."""


def lesson_settings(fast: bool) -> dict:
    """The lesson's sizes: SETTINGS["fast"] when fast, else SETTINGS["normal"] (a copy)."""
    return dict(SETTINGS["fast" if fast else "normal"])


SWEEPS = {
    "normal": dict(n=64, d0=8, widths=(1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 16, 24), runs=100,
                   max_steps=20000, data=("random", "teacher", "mnist5k")),
    "fast": dict(n=32, d0=6, widths=(1, 2, 3, 4, 6, 8, 12), runs=100, max_steps=4000,
                 data=("random", "teacher")),
}
"""The experiment's sizes: N samples, d0 = √N inputs (the papers' d0 = Ω̃(√N)), widths d1
spanning P/N = d1(d0 + 1)/N from about 0.1 to 3."""

TABLE_COLUMNS = ("data", "d1", "P/N", "runs", "frac_global", "frac_suboptimal", "frac_kink",
                 "frac_saddle", "frac_not_converged", "frac_nonzero_error", "mean_error",
                 "median_loss", "mean_steps", "seconds")


def sweep(data: str, widths: tuple[int, ...], runs: int, n: int, d0: int, seed: int = 0,
          log=None, **train_options) -> list[dict]:
    """train_many on one data set for each width d1; one row per width: `Endpoints.summary()`
    plus data, seconds and the per-run training errors ("errors") and labels ("labels")."""
    X, y = make_data(data, n, d0, seed)
    rows = []
    for width in widths:
        t0 = time.perf_counter()
        e = train_many(X, y, width, runs, seed=seed, **train_options)
        row = {"data": data, **e.summary(), "seconds": time.perf_counter() - t0,
               "errors": e.error.tolist(), "labels": list(e.label)}
        rows.append(row)
        if log:
            log(f"{data:8s} d1={width:3d} P/N={row['P/N']:.2f}: nonzero error "
                f"{row['frac_nonzero_error']:.2f}, sub-optimal DLM {row['frac_suboptimal']:.2f}, "
                f"kink {row['frac_kink']:.2f}, mean error {row['mean_error']:.3f} "
                f"({row['seconds']:.0f} s)")
    return rows


def _cell(value) -> str:
    if isinstance(value, float) and math.isfinite(value):  # nan, inf (diverged runs) as str
        return f"{value:.3g}" if abs(value) < 1e-3 and value != 0 else f"{value:.3f}".rstrip("0") \
            .rstrip(".") if value != int(value) or abs(value) >= 1e6 else str(int(value))
    return str(value)


def markdown_table(rows: list[dict], columns: tuple[str, ...] = TABLE_COLUMNS) -> str:
    """The sweep rows as a markdown table of `columns`."""
    head = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns)
    body = ["| " + " | ".join(_cell(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join([head, *body])


def _write_csv(path: Path, rows: list[dict], columns: tuple[str, ...] = TABLE_COLUMNS) -> None:
    import csv
    import io

    text = io.StringIO()
    w = csv.DictWriter(text, fieldnames=list(columns), extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    write_text_atomic(path, text.getvalue())


def example_slices(n: int, d0: int, widths: tuple[int, int], seed: int = 0,
                   max_steps: int = 4000) -> dict:
    """For one narrow and one wide net on random labels: the run with the highest final
    training error, its 1-D interpolation from its initialization and a 2-D slice around it."""
    X, y = make_data("random", n, d0, seed)
    out = {}
    for width in widths:
        e = train_many(X, y, width, 8, seed=seed, max_steps=max_steps, classify_endpoints=False)
        r = int(torch.argmax(e.error))
        out[f"d1={width}"] = {
            "error": float(e.error[r]), "P/N": e.params / n,
            "line": interpolate_1d(X, y, (e.W0[r], e.z0[r]), (e.W[r], e.z[r])),
            "slice": slice_2d(X, y, e.W[r], e.z[r], span=1.0, points=31, seed=seed)}
    return out


def shipped_sweep() -> dict:
    """The normal-mode sweep of `python -m analysis experiment minima` shipped with the package
    (analysis/results/minima.json): {"settings": ..., "rows": [...]}."""
    path = Path(__file__).resolve().parents[1] / "results" / "minima.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run `python -m analysis experiment minima "
                                f"--out runs/minima` and copy runs/minima/minima.json there")
    return json.loads(path.read_text())


def _sweep_rows(cfg: dict, a, done: list[dict], save) -> list[dict]:
    """The sweep's rows, data set by data set, width by width: a (data, d1) row of `done` (an
    interrupted sweep's) as it is, the others run one at a time, with save(rows so far) after
    each. A row depends only on the seed and its own settings (data, init and training are
    seeded afresh in `sweep`), so a resumed sweep ends with the rows of an uninterrupted one."""
    kept = {(r["data"], r["d1"]): r for r in done}
    rows = []
    for name in cfg["data"]:
        for width in cfg["widths"]:
            if (name, width) in kept:
                rows.append(kept[name, width])
                continue
            rows += sweep(name, (width,), cfg["runs"], cfg["n"], cfg["d0"], seed=a.seed,
                          log=lambda s: print(s, flush=True), activation=a.activation,
                          loss=a.loss, max_steps=cfg["max_steps"], progress=sys.stderr.isatty())
            save(rows)
    return rows


def experiment_cli(argv: list[str]) -> int:
    """python -m analysis experiment minima [--fast] [--out DIR] [--runs R] [--data a,b].

    After each (data set, width) row the rows so far go to DIR/minima.partial.json; the same
    command resumes an interrupted sweep from there."""
    import argparse

    p = argparse.ArgumentParser(
        prog="python -m analysis experiment minima",
        description="Soudry & Hoffer: the fraction of R trainings of a one-hidden-layer "
                    "leaky-ReLU net (quadratic loss) that end at sub-optimal minima, against "
                    "#parameters/N, on random-label, teacher-student and mnist5k data. Writes "
                    "minima.json, minima.csv, minima.md and figures to --out. Interrupted "
                    "(Ctrl-C), the same command goes on from the last finished row.")
    p.add_argument("--fast", action="store_true", help="N=32, two data sets (under 2 minutes)")
    p.add_argument("--out", type=out_folder_arg, default="runs/minima", help="output folder")
    p.add_argument("--runs", type=count_arg(), default=None, help="runs per width (default 100)")
    p.add_argument("--data", default=None, help="comma-separated: random,teacher,mnist5k")
    p.add_argument("--activation", default="leaky_relu", choices=ACTIVATIONS,
                   help="hidden units, leaky ReLU of slope 0.1 or ReLU (default %(default)s)")
    p.add_argument("--loss", default="quadratic", choices=LOSSES, help="default %(default)s")
    p.add_argument("--seed", type=int, default=0, help="data and initializations (default %(default)s)")
    a = p.parse_args(argv)
    cfg = dict(SWEEPS["fast" if a.fast else "normal"])
    if a.runs is not None:
        cfg["runs"] = a.runs
    if a.data:
        cfg["data"] = tuple(a.data.split(","))
        bad = [d for d in cfg["data"] if d not in DATASETS]
        if bad:
            p.error(f"unknown data {', '.join(bad)}; choose from {', '.join(DATASETS)}")
    out = Path(a.out)
    partial = out / "minima.partial.json"
    identity = {"mode": "fast" if a.fast else "normal", **cfg, "activation": a.activation,
                "loss": a.loss, "seed": a.seed, "code": code_version()}
    done = (load_partial(partial, identity, p) or {"rows": []})["rows"]
    out.mkdir(parents=True, exist_ok=True)
    total = len(cfg["data"]) * len(cfg["widths"])
    print(f"minima sweep ({'fast' if a.fast else 'normal'}): N={cfg['n']}, d0={cfg['d0']}, "
          f"d1 in {cfg['widths']}, {cfg['runs']} runs each, {a.activation}, {a.loss} loss, "
          f"data {', '.join(cfg['data'])}", flush=True)
    if done:
        print(f"resuming: {len(done)} of {total} rows done in {out}", flush=True)
    earlier = sum(r["seconds"] for r in done)  # of the rows kept
    t0 = time.perf_counter()
    try:
        rows = _sweep_rows(cfg, a, done, lambda r: write_json_atomic(partial, {"identity": identity,
                                                                                "rows": r}))
        widths = (cfg["widths"][1], cfg["widths"][-2])
        slices = example_slices(cfg["n"], cfg["d0"], widths, a.seed)
        seconds = earlier + time.perf_counter() - t0
        settings = {**cfg, "activation": a.activation, "loss": a.loss, "seed": a.seed,
                    "seconds": seconds}
        write_json_atomic(out / "minima.json", {"settings": settings, "rows": rows})
        _write_csv(out / "minima.csv", rows)
        table = markdown_table(rows)
        write_text_atomic(out / "minima.md", table + "\n")
        print("\n" + table + f"\n\n{seconds:.0f} s")

        import matplotlib.pyplot as plt

        from analysis.plots.landscape import error_histograms, fraction_vs_params, slices_figure

        figs = {"fractions.png": fraction_vs_params(rows), "errors.png": error_histograms(rows),
                "slices.png": slices_figure(slices)}
        for fname, fig in figs.items():
            fig.savefig(out / fname, dpi=110, bbox_inches="tight")
            plt.close(fig)  # written: a sweep calling this in a loop keeps no figures
    except KeyboardInterrupt:
        return interrupted(partial, total, "rows")
    partial.unlink(missing_ok=True)  # finished: the outputs are those of an uninterrupted run
    print(f"wrote {out / 'minima.json'}, minima.csv, minima.md, " + ", ".join(figs))
    return 0
