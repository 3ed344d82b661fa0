"""The weight-diffusion record: d(t) = ‖w_t − w_0‖ logged by a training callback.

    rec = WeightDiffusion()                       # log-spaced records: small on long runs
    fit(model, train, epochs=10, callbacks=[rec])
    rec.record.steps, rec.record.distance         # t and d(t); rec.record.layers per layer
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from analysis.partial import write_json_atomic

__all__ = ["DiffusionRecord", "record_points", "WeightDiffusion", "weight_distance"]

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
        write_json_atomic(path, asdict(self))
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
    every, per_decade = _check_every(every), _check_per_decade(per_decade)
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


def _check_per_decade(per_decade: float) -> float:
    if isinstance(per_decade, bool) or not isinstance(per_decade, (int, float)) or not per_decade > 0:
        raise ValueError(f"per_decade must be positive, got {per_decade!r}")
    return per_decade


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
        self.every, per_decade = _check_every(every), _check_per_decade(per_decade)
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
        # half-precision weights: subtract and take norms in float32, not in 8 or 11 mantissa bits
        up = [torch.promote_types(p.dtype, torch.float32) for p in self._params]
        diffs = torch._foreach_sub([p.detach().to(u) for p, u in zip(self._params, up)],
                                   [w.to(u) for w, u in zip(self._w0_views, up)])
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


