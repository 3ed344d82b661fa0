"""Benchmarks behind `python -m analysis bench <name>`.

Each benchmark times two (or more) things side by side in one run, on the same inputs, and
prints their ratio: on a shared, noisy machine a ratio measured together is meaningful where
an absolute time is not. `--json PATH` writes the figures for the record.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import torch

__all__ = ["median_time", "machine_info", "write_json", "train"]


def median_time(fn: Callable[[], object], repeat: int = 20, warmup: int = 3) -> float:
    """Median wall time of `fn()` in seconds over `repeat` calls, after `warmup` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def machine_info() -> dict:
    """What the figures were measured on."""
    return {"python": platform.python_version(), "torch": torch.__version__,
            "cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def write_json(path: str | Path | None, results: dict) -> None:
    if path:
        Path(path).write_text(json.dumps({"machine": machine_info(), **results}, indent=1))
        print(f"wrote {path}")


def train(argv: list[str]) -> int:
    """One training step (forward, backward, Adam, latent clipping) of the BNN MLP vs its float twin."""
    from analysis import data, models
    from analysis.layers import clip_latent_weights_
    from analysis.training import squared_hinge_loss

    p = argparse.ArgumentParser(prog="python -m analysis bench train", description=train.__doc__)
    p.add_argument("--width", type=int, default=1024)
    p.add_argument("--depth", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--repeat", type=int, default=30)
    p.add_argument("--json", default=None)
    a = p.parse_args(argv)

    X, y = data.load("mnist5k", "train")
    xb, yb = X[:a.batch_size], y[:a.batch_size]

    def make_step(name: str) -> Callable[[], None]:
        torch.manual_seed(0)
        model = models.build(name, width=a.width, depth=a.depth)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)

        def step() -> None:
            loss = squared_hinge_loss(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            clip_latent_weights_(model)

        return step

    steps = {name: make_step(name) for name in ("bnn-mlp", "mlp")}
    results = {name: float("inf") for name in steps}
    for name in ("bnn-mlp", "mlp", "mlp", "bnn-mlp"):  # interleaved: both see the same noise
        results[name] = min(results[name], median_time(steps[name], repeat=a.repeat))
    ratio = results["bnn-mlp"] / results["mlp"]
    print(f"one training step, MLP {a.depth}x{a.width}, batch {a.batch_size}, "
          f"{torch.get_num_threads()} threads")
    print(f"  binarized (bnn-mlp): {1e3 * results['bnn-mlp']:8.2f} ms")
    print(f"  float twin (mlp):    {1e3 * results['mlp']:8.2f} ms")
    print(f"  ratio binarized / float: {ratio:.2f}x  (target <= 1.5x)")
    write_json(a.json, {"benchmark": "train", "width": a.width, "depth": a.depth,
                        "batch_size": a.batch_size, "seconds": results, "ratio": ratio})
    return 0
