"""The one training loop of the project, for every model, lesson and experiment.

    history = fit(model, (X, y), test_data=(Xt, yt), epochs=20, optimizer="adam", lr=3e-3,
                  lr_final=3e-4, loss="squared_hinge", run_dir="runs/bnn")

What it does, in order, for every batch: forward, loss, backward, optional gradient
clipping, optimizer step, latent-weight clipping of quantized layers (W ← clip(W, −α, α), α = 1 for sign),
callbacks' `on_step_end`. After every epoch: evaluation, history row, callbacks'
`on_epoch_end`, an atomic checkpoint (when `run_dir` is given) so that an interrupted run
resumes with `resume=True` and loses at most the epoch in progress.

Schedules ("regimes") are pure functions of the epoch: `learning_rate(...)`. The large-batch
recipes of Hoffer et al. (2017) are options: `lr_scaling="sqrt"` multiplies the learning rate
by sqrt(B/B_small), `regime_adaptation=True` multiplies epochs and milestones by B/B_small.
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from analysis.checks import check_count, count_arg, out_folder_arg, positive_arg
from analysis.layers import clip_latent_weights_
from analysis.partial import write_text_atomic

__all__ = [
    "fit",
    "evaluate",
    "train_step",
    "History",
    "TrainState",
    "TrainingDiverged",
    "learning_rate",
    "large_batch_recipe",
    "squared_hinge_loss",
    "save_checkpoint",
    "load_checkpoint",
    "set_seed",
    "cli",
]

CHECKPOINT = "checkpoint.pt"


class TrainingDiverged(ValueError):
    """The loss became NaN or infinite: the run stops here instead of training on garbage."""


# --- losses ---------------------------------------------------------------------------------

def squared_hinge_loss(scores: Tensor, y: Tensor) -> Tensor:
    """L = mean over samples and classes of max(0, 1 − t·s)², t = +1 for the label, −1 else (BNN paper)."""
    t = -torch.ones_like(scores)
    t.scatter_(1, y[:, None], 1.0)
    return F.relu(1 - t * scores).pow(2).mean()


LOSSES = {"cross_entropy": F.cross_entropy, "squared_hinge": squared_hinge_loss}


def _check_labels(scores: Tensor, y: Tensor) -> None:
    """A label ≥ the number of scores is a ValueError here, not a CUDA device-side assert (which
    breaks the whole CUDA context) or an index error from inside the loss."""
    if scores.ndim == 2 and len(y) and int(y.max()) >= scores.shape[1]:
        raise ValueError(f"y holds class {int(y.max())} but the model gives {scores.shape[1]} "
                         f"scores (classes 0…{scores.shape[1] - 1})")


def _loss_fn(name: str):
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; known losses: {', '.join(LOSSES)}")
    return LOSSES[name]


# --- schedules -------------------------------------------------------------------------------

def learning_rate(epoch: int, epochs: int, lr: float, schedule: str = "constant",
                  lr_final: float | None = None, milestones: Sequence[int] = (),
                  gamma: float = 0.1) -> float:
    """Learning rate for `epoch` (0-based).

    constant: η;  exp: η·(η_final/η)^(epoch/(epochs−1)), the BNN paper's exponential decay;
    step: η·γ^(number of milestones ≤ epoch).
    """
    if schedule == "constant":
        return lr
    if schedule == "exp":
        if lr_final is None:
            raise ValueError("schedule 'exp' needs lr_final")
        if not (lr > 0 and lr_final > 0):
            raise ValueError(f"schedule 'exp' needs lr > 0 and lr_final > 0, got lr={lr}, "
                             f"lr_final={lr_final}")
        return lr * (lr_final / lr) ** (epoch / max(epochs - 1, 1))
    if schedule == "step":
        return lr * gamma ** sum(epoch >= m for m in milestones)
    raise ValueError(f"unknown schedule {schedule!r}: use 'constant', 'exp' or 'step'")


def resumed_exp(last_lr: float, done: int, epochs: int, lr_final: float) -> Callable[[int], float]:
    """The "exp" schedule of a run resumed with a new total of `epochs` after `done` epochs, the
    last at `last_lr`: it decays on from there to lr_final at the new last epoch. Spread anew
    over the new total, the decay would jump: a finished 20-epoch run (ending at η_final) taken
    to 30 epochs would go back up to η·(η_final/η)^(20/29) ≈ 2·η_final for η_final = η/10."""
    return lambda epoch: learning_rate(epoch - done + 1, epochs - done + 1, last_lr, "exp", lr_final)


def large_batch_recipe(batch_size: int, base_batch_size: int, lr: float, epochs: int,
                       milestones: Sequence[int] = (), lr_scaling: str | None = None,
                       regime_adaptation: bool = False) -> tuple[float, int, list[int]]:
    """(lr, epochs, milestones) for batch B from a recipe tuned at B_small (Hoffer et al. 2017).

    lr_scaling="sqrt": η·sqrt(B/B_small); "linear": η·B/B_small.
    regime_adaptation: epochs and milestones × B/B_small, so the number of updates matches.
    """
    if batch_size <= 0 or base_batch_size <= 0:
        raise ValueError(f"batch sizes must be positive, got {batch_size} and {base_batch_size}")
    ratio = batch_size / base_batch_size
    if lr_scaling == "sqrt":
        lr = lr * math.sqrt(ratio)
    elif lr_scaling == "linear":
        lr = lr * ratio
    elif lr_scaling is not None:
        raise ValueError(f"unknown lr_scaling {lr_scaling!r}: use None, 'sqrt' or 'linear'")
    milestones = list(milestones)
    if regime_adaptation:
        epochs = max(1, round(epochs * ratio))
        milestones = [round(m * ratio) for m in milestones]
    return lr, epochs, milestones


# --- state, history, checkpoints --------------------------------------------------------------

@dataclass
class TrainState:
    """What callbacks see: the model and optimizer, and where the run is."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    epoch: int = 0          # epochs completed before the current one
    step: int = 0           # updates so far
    loss: float = math.nan  # loss of the last batch
    batch_size: int = 0
    run_dir: Path | None = None
    history: History | None = None


@dataclass
class History:
    """One row per epoch: epoch, lr, train_loss, train_error, test_loss, test_error, updates, seconds."""

    epochs: list[dict] = field(default_factory=list)

    def __getitem__(self, key: str) -> list:
        return [row[key] for row in self.epochs]

    def __len__(self) -> int:
        return len(self.epochs)

    @property
    def final(self) -> dict:
        return self.epochs[-1] if self.epochs else {}

    def save(self, run_dir: str | Path) -> None:
        run_dir = Path(run_dir)
        write_text_atomic(run_dir / "metrics.json", json.dumps(self.epochs, indent=1))
        if self.epochs:
            tmp = run_dir / "metrics.csv.tmp"
            with open(tmp, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=list(self.epochs[0]))
                w.writeheader()
                w.writerows(self.epochs)
            os.replace(tmp, run_dir / "metrics.csv")

    @classmethod
    def load(cls, run_dir: str | Path) -> History:
        return cls(json.loads((Path(run_dir) / "metrics.json").read_text()))


def save_checkpoint(path: str | Path, state: TrainState, extra: dict | None = None) -> None:
    """Write model, optimizer, counters, history and RNG state atomically (tmp file + rename)."""
    path = Path(path)
    payload = {
        "model": state.model.state_dict(),
        "optimizer": state.optimizer.state_dict(),
        "epoch": state.epoch,
        "step": state.step,
        "history": state.history.epochs if state.history else [],
        "torch_rng": torch.get_rng_state(),
        # dropout on a GPU draws from the CUDA generators (untouched, hence unsaved, on CPU runs)
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
        **(extra or {}),
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path) -> dict:
    """Load a checkpoint without executing any code from it (weights_only=True)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    return torch.load(path, map_location="cpu", weights_only=True)


def set_seed(seed: int) -> None:
    """Seed torch (CPU and CUDA) for a reproducible run."""
    torch.manual_seed(seed)


# --- the loop ----------------------------------------------------------------------------------

def _make_optimizer(name: str, params, lr: float, momentum: float, weight_decay: float):
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}: use 'adam' or 'sgd'")


def _check_data(data, name: str, model: nn.Module) -> tuple[Tensor, Tensor]:
    """(X, y) with X in the model's dtype and y as int64 class labels, else a ValueError."""
    try:
        X, y = data
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (X, y) of tensors") from None
    if not (isinstance(X, Tensor) and isinstance(y, Tensor)):
        raise ValueError(f"{name} must be a pair (X, y) of tensors, got {type(X).__name__} and "
                         f"{type(y).__name__} (convert with torch.as_tensor)")
    if len(X) != len(y) or len(X) == 0:
        raise ValueError(f"{name}: X and y must be non-empty and of equal length, "
                         f"got {len(X)} and {len(y)}")
    dtype = next(model.parameters(), X).dtype
    if X.dtype != dtype:
        raise ValueError(f"{name}: X is {X.dtype} but the model's parameters are {dtype}; "
                         f"convert with X.to({dtype})")
    if y.ndim != 1 or y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise ValueError(f"{name}: y must be a 1-D tensor of integer class labels, "
                         f"got {y.dtype} of shape {tuple(y.shape)}")
    if int(y.min()) < 0:
        raise ValueError(f"{name}: y must hold class labels 0, 1, …, got {int(y.min())} "
                         "(±1 labels? use (y + 1) // 2)")
    return X, y.long()  # int32 or uint8 labels too: cross-entropy and scatter_ need int64


def _check_rate(name: str, value) -> None:
    """A learning rate: a number ≥ 0 (0 trains nothing, which measures a loss as it is)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(f"{name} must be a number ≥ 0, got {value!r}")


def _show_progress(progress: bool | None) -> bool:
    if progress is not None:
        return progress
    return sys.stderr.isatty() and "PYTEST_CURRENT_TEST" not in os.environ


@torch.no_grad()
def evaluate(model: nn.Module, data, loss: str = "cross_entropy", batch_size: int = 1000,
             device: str | torch.device = "cpu") -> tuple[float, float]:
    """(mean loss, error rate in [0, 1]) of `model` on `data` = (X, y), in eval mode."""
    X, y = _check_data(data, "data", model)
    loss_fn = _loss_fn(loss)
    was_training = model.training
    model.eval()
    total_loss, wrong = 0.0, 0
    for i in range(0, len(X), batch_size):
        xb, yb = X[i:i + batch_size].to(device), y[i:i + batch_size].to(device)
        out = model(xb)
        _check_labels(out, yb)
        total_loss += float(loss_fn(out, yb)) * len(xb)
        wrong += int((out.argmax(1) != yb).sum())
    model.train(was_training)
    return total_loss / len(X), wrong / len(X)


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, xb: Tensor, yb: Tensor,
               loss_fn, grad_clip: float | None = None) -> tuple[Tensor, Tensor]:
    """One update: forward, loss, backward, optional gradient-norm clipping, optimizer step,
    latent-weight clipping W ← clip(W, −α, α) (`layers.clip_latent_weights_`; α = 1 for sign).
    Returns (scores, loss), both detached.

    Raises TrainingDiverged, before any update, when the loss is NaN or infinite, and a
    ValueError when a label is not one of the model's classes.
    """
    out = model(xb)
    _check_labels(out, yb)
    loss = loss_fn(out, yb)
    if not torch.isfinite(loss):
        raise TrainingDiverged(f"the loss became {loss.item()}")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip is not None:
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    clip_latent_weights_(model)
    return out.detach(), loss.detach()


def _call(callbacks: Iterable, hook: str, state: TrainState) -> None:
    for cb in callbacks:
        fn = getattr(cb, hook, None)
        if fn is not None:
            fn(state)


def _train_epoch(model: nn.Module, opt: torch.optim.Optimizer, X: Tensor, y: Tensor, order: Tensor,
                 batch_size: int, loss_fn, grad_clip: float | None, device, state: TrainState,
                 callbacks: list, show: bool) -> tuple[float, float]:
    """One pass over (X, y) in batches taken in `order` → (mean loss, error) of the batches seen."""
    model.train()
    sum_loss, wrong, seen = 0.0, 0, 0
    # an epoch of a large net or data set takes minutes: show its batches too
    with tqdm(total=max(len(X) // batch_size, 1), unit="batch", desc=f"epoch {state.epoch + 1}",
              disable=not show, leave=False) as batch_bar:
        for i in range(0, len(X), batch_size):
            idx = order[i:i + batch_size]
            if len(idx) < batch_size and i > 0:
                break  # drop a last, partial batch: batch-norm statistics need full batches
            xb, yb = X[idx].to(device), y[idx].to(device)
            out, batch_loss = train_step(model, opt, xb, yb, loss_fn, grad_clip)
            state.step += 1
            state.loss = batch_loss.item()
            sum_loss += state.loss * len(idx)
            wrong += int((out.argmax(1) != yb).sum())
            seen += len(idx)
            _call(callbacks, "on_step_end", state)
            batch_bar.update()
    return sum_loss / seen, wrong / seen


def fit(
    model: nn.Module,
    train_data,
    *,
    test_data=None,
    epochs: int = 10,
    batch_size: int = 100,
    optimizer: str = "adam",
    lr: float = 1e-3,
    schedule: str | None = None,
    lr_final: float | None = None,
    milestones: Sequence[int] = (),
    gamma: float = 0.1,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    loss: str = "cross_entropy",
    base_batch_size: int | None = None,
    lr_scaling: str | None = None,
    regime_adaptation: bool = False,
    grad_clip: float | None = None,
    callbacks: Sequence = (),
    seed: int = 0,
    run_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool | None = None,
    device: str | torch.device = "cpu",
) -> History:
    """Train `model` on `train_data` = (X, y) and return its History (one row per epoch).

    schedule: None picks "exp" when lr_final is given, "step" when milestones are, else
    "constant". base_batch_size + lr_scaling / regime_adaptation: the large-batch recipes
    (see `large_batch_recipe`). grad_clip: clip the global gradient norm to this value.
    run_dir: write metrics.json/csv and checkpoint.pt after each epoch; resume=True continues
    from the checkpoint there, up to a total of `epochs`. With the total it was started with,
    the run goes on as if never stopped; with another total, an "exp" decay goes on from the
    last rate used down to lr_final (`resumed_exp`).
    """
    X, y = _check_data(train_data, "train_data", model)
    if test_data is not None:
        test_data = _check_data(test_data, "test_data", model)
    check_count("epochs", epochs)
    batch_size = min(check_count("batch_size", batch_size), len(X))  # B > N: one batch of all N
    if grad_clip is not None and not grad_clip > 0:
        raise ValueError(f"grad_clip must be None or a positive gradient norm, got {grad_clip!r}")
    loss_fn = _loss_fn(loss)
    _check_rate("lr", lr)
    if lr_final is not None:
        _check_rate("lr_final", lr_final)
    if base_batch_size is not None:
        if lr_final is not None:  # lr_scaling scales the whole schedule, its end included
            lr_final = large_batch_recipe(batch_size, base_batch_size, lr_final, 1, (), lr_scaling)[0]
        lr, epochs, milestones = large_batch_recipe(batch_size, base_batch_size, lr, epochs,
                                                    milestones, lr_scaling, regime_adaptation)
    elif lr_scaling or regime_adaptation:
        raise ValueError("lr_scaling and regime_adaptation need base_batch_size (B_small)")
    if resume and run_dir is None:
        raise ValueError("resume=True needs run_dir, the folder of the run to continue")
    if schedule is None:
        schedule = "exp" if lr_final is not None else "step" if milestones else "constant"
    learning_rate(0, epochs, lr, schedule, lr_final, milestones, gamma)  # validates early

    def rate(epoch: int) -> float:
        return learning_rate(epoch, epochs, lr, schedule, lr_final, milestones, gamma)

    set_seed(seed)
    model.to(device)
    opt = _make_optimizer(optimizer, model.parameters(), lr, momentum, weight_decay)
    history = History()
    state = TrainState(model, opt, batch_size=batch_size, history=history)
    if run_dir is not None:
        state.run_dir = Path(run_dir)
        state.run_dir.mkdir(parents=True, exist_ok=True)
        ckpt_path = state.run_dir / CHECKPOINT
        if resume and ckpt_path.exists():
            ckpt = load_checkpoint(ckpt_path)
            model.load_state_dict(ckpt["model"])
            opt.load_state_dict(ckpt["optimizer"])
            state.epoch, state.step = ckpt["epoch"], ckpt["step"]
            history.epochs = list(ckpt["history"])
            if schedule == "exp" and history.epochs and ckpt.get("epochs", epochs) != epochs:
                rate = resumed_exp(history.epochs[-1]["lr"], state.epoch, epochs, lr_final)
            torch.set_rng_state(ckpt["torch_rng"])
            for i, rng in enumerate(ckpt.get("cuda_rng", [])[:torch.cuda.device_count()]):
                torch.cuda.set_rng_state(rng, i)

    _call(callbacks, "on_train_begin", state)
    show = _show_progress(progress)
    # `with`: the bars are closed however the loop ends (Ctrl-C, divergence); a bar left open
    # is drawn again when it is garbage-collected, after what the caller prints of the error
    with tqdm(range(state.epoch, epochs), initial=state.epoch, total=epochs, unit="epoch",
              disable=not show, leave=False) as bar:
        for epoch in bar:
            t0 = time.perf_counter()
            eta = rate(epoch)
            for group in opt.param_groups:
                group["lr"] = eta
            order = torch.randperm(len(X), generator=torch.Generator().manual_seed(seed * 1000 + epoch))
            try:
                train_loss, train_error = _train_epoch(model, opt, X, y, order, batch_size, loss_fn,
                                                       grad_clip, device, state, callbacks, show)
            except TrainingDiverged as e:
                raise TrainingDiverged(
                    f"{e} at epoch {epoch + 1}, update {state.step + 1} (lr={eta:.3g}); "
                    "lower the learning rate or clip gradients") from None
            row = {"epoch": epoch + 1, "lr": eta, "train_loss": train_loss,
                   "train_error": train_error, "updates": state.step}
            if test_data is not None:
                row["test_loss"], row["test_error"] = evaluate(model, test_data, loss, device=device)
            row["seconds"] = time.perf_counter() - t0
            history.epochs.append(row)
            state.epoch = epoch + 1
            bar.set_postfix({k: f"{v:.3f}" for k, v in row.items() if k.endswith("error")})
            _call(callbacks, "on_epoch_end", state)
            if state.run_dir is not None:
                save_checkpoint(state.run_dir / CHECKPOINT, state, {"epochs": epochs})
                history.save(state.run_dir)
    _call(callbacks, "on_train_end", state)
    return history


# --- command line: python -m analysis train ---------------------------------------------------

def cli(argv: list[str]) -> int:
    """python -m analysis train --model bnn-mlp --dataset mnist5k --epochs 20 [--resume RUN]."""
    import argparse

    from analysis import data, models

    p = argparse.ArgumentParser(
        prog="python -m analysis train",
        description="Train a model on a dataset and write a run folder (metrics, checkpoint, figure).",
        epilog=f"models: {', '.join(models.MODELS)}; datasets: {', '.join(data.DATASETS)}")
    p.add_argument("--model", default="bnn-mlp", help="one of: " + ", ".join(models.MODELS))
    p.add_argument("--dataset", default="mnist5k", help="one of: " + ", ".join(data.DATASETS))
    # numbers checked as they are read, not by fit: its error would come after config.json is written
    p.add_argument("--epochs", type=count_arg(), default=None,
                   help="default 20; with --resume: a new total (a decaying lr goes on from its last "
                        "value down to --lr-final over the epochs left)")
    p.add_argument("--batch-size", type=count_arg(), default=100,
                   help="examples per update (default %(default)s)")
    p.add_argument("--optimizer", default="adam", choices=["adam", "sgd"], help="default %(default)s")
    p.add_argument("--lr", type=positive_arg, default=None, help="default: 3e-3 for bnn/qnn, 1e-3 else")
    p.add_argument("--lr-final", type=positive_arg, default=None,
                   help="exponential decay to this lr (default lr/10 with adam)")
    p.add_argument("--loss", default=None, choices=list(LOSSES),
                   help="default: squared_hinge for bnn/qnn (as in the paper), cross_entropy else")
    p.add_argument("--width", type=int, default=None, help="hidden width (mlp) or base channels (cnn)")
    p.add_argument("--depth", type=int, default=None, help="hidden layers (mlp)")
    p.add_argument("--dropout", type=float, default=None, help="dropout after hidden layers (mlp)")
    p.add_argument("--bits-w", type=int, default=None, help="weight bits of qnn models (default 1)")
    p.add_argument("--bits-a", type=int, default=None, help="activation bits of qnn models (default 1)")
    p.add_argument("--seed", type=int, default=0, help="initialization and data order (default %(default)s)")
    p.add_argument("--out", type=out_folder_arg, default="runs", help="parent folder of the run folder")
    p.add_argument("--name", default=None, help="run folder name (default: model-dataset-seed)")
    p.add_argument("--resume", metavar="RUN", default=None, help="continue the run in folder RUN")
    a = p.parse_args(argv)

    if a.resume:
        run_dir = Path(a.resume)
        config_path = run_dir / "config.json"
        if not config_path.exists():
            p.error(f"--resume: no run at {run_dir} (config.json missing)")
        config = json.loads(config_path.read_text())
        if a.epochs is not None:
            config["epochs"] = a.epochs
    else:
        binary = a.model.startswith(("bnn", "qnn"))
        options = {k: v for k, v in {"width": a.width, "depth": a.depth, "bits_w": a.bits_w,
                                      "bits_a": a.bits_a, "dropout": a.dropout}.items() if v is not None}
        lr = a.lr if a.lr is not None else (3e-3 if binary else 1e-3)
        config = {
            "model": a.model, "model_options": options, "dataset": a.dataset,
            "epochs": a.epochs or 20, "batch_size": a.batch_size, "optimizer": a.optimizer, "lr": lr,
            "lr_final": a.lr_final if a.lr_final is not None else
            (lr / 10 if a.optimizer == "adam" else None),
            "loss": a.loss or ("squared_hinge" if binary else "cross_entropy"), "seed": a.seed,
        }
        run_dir = Path(a.out) / (a.name or f"{a.model}-{a.dataset}-s{a.seed}")
        if (run_dir / "config.json").exists() or (run_dir / CHECKPOINT).exists():
            p.error(f"{run_dir} already holds a run: continue it with --resume {run_dir}, "
                    "or start a new one with another --name (or --out)")
    try:
        train = data.load(config["dataset"], "train")
        test = data.load(config["dataset"], "test")
        options = dict(config["model_options"])
        set_seed(config["seed"])  # the initial weights are part of the run
        if "mlp" in config["model"] or "cnn" in config["model"]:
            options.setdefault("in_shape", tuple(train[0].shape[1:]))
            options.setdefault("num_classes", int(train[1].max()) + 1)
        model = models.build(config["model"], **options)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    config["model_options"] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in options.items()}
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(run_dir / "config.json", json.dumps(config, indent=1))
    print(f"run folder: {run_dir}")
    history = fit(model, train, test_data=test, epochs=config["epochs"],
                  batch_size=config["batch_size"], optimizer=config["optimizer"], lr=config["lr"],
                  lr_final=config["lr_final"], loss=config["loss"], seed=config["seed"],
                  run_dir=run_dir, resume=True)  # progress bars on a terminal only
    import matplotlib.pyplot as plt

    from analysis.plots import training_curves

    kind = "binary" if config["model"].startswith(("bnn", "qnn")) else "float"  # models.MODELS
    fig = training_curves(history, kinds=[kind], title=f"{config['model']} on {config['dataset']}")
    fig.savefig(run_dir / "curves.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    f = history.final
    print(f"epochs {f['epoch']}  train error {f['train_error']:.4f}  "
          f"test error {f.get('test_error', float('nan')):.4f}  updates {f['updates']}")
    return 0
