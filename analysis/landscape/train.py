"""R trainings of the one-hidden-layer net as one batched full-batch computation
(Adam or gradient descent, per-run learning rates and stopping), each endpoint classified
by `analysis.landscape.endpoints`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from analysis.checks import check_choice, check_count
from analysis.landscape.endpoints import (
    Endpoints,
    classify,
    hessian_extremes,
    kink_margin,
    needs_curvature,
    pattern_rank,
)
from analysis.landscape.net import (
    DTYPE,
    LOSSES,
    OPTIMIZERS,
    _check_data,
    _grads,
    _slope,
    flatten,
    init_params,
    loss_and_grad,
    unflatten,
)

__all__ = ["train_many", "SPECTRA"]

SPECTRA = ("all", "needed")
"""Which runs of `train_many` get their Hessian's extreme eigenvalues."""


# --------------------------------------------------------------------------- training

def train_many(X: Tensor, y: Tensor, width: int, runs: int, *, activation: str = "leaky_relu",
               slope: float = 0.1, loss: str = "quadratic", optimizer: str = "adam",
               lr: float | None = None, max_steps: int = 20000, grad_tol: float = 1e-6,
               loss_floor: float = 1e-10, window: int = 250, plateau_tol: float = 1e-3,
               lr_decay: float = 0.3, min_lr: float | None = None, seed: int = 0,
               init: tuple[Tensor, Tensor] | None = None, classify_endpoints: bool = True,
               hessian_max: int = 600, spectra: str = "all", threads: int | None = 1,
               progress: bool = False) -> Endpoints:
    """Train R one-hidden-layer nets f = Σ_j z_j σ(w_j·x) from R initializations on (X, y),
    as one batched full-batch computation, and classify their endpoints.

    X: (N, d0) inputs; y: (N,) labels ±1; width: d1 ≥ 1; runs: R ≥ 1.
    optimizer "adam" (default lr 0.01) or "gd" (default lr 0.5), each run with its own
    learning rate, multiplied by lr_decay when its loss fell by less than a fraction
    plateau_tol over `window` steps. A run stops (and is frozen) when ‖∇L‖ ≤ grad_tol
    ("gradient"), L ≤ loss_floor ("floor"), its learning rate fell below min_lr (default
    lr·1e-4; "plateau"), when its weights are no longer finite ("diverged"), or after
    max_steps updates ("cap"). Runs never interact, so run r
    equals a single training with seed + r (or with init (W0[r:r+1], z0[r:r+1])).
    spectra: "all" gives λ_min, λ_max of ∇²L for every run; "needed" only for the runs whose
    class depends on them (`needs_curvature`: critical points with nonzero error, off the
    kinks; NaN elsewhere), the same classes at a fraction of the cost (an exact spectrum at
    P ≈ 500 costs ~20 ms a run, and most runs end global or at a kink).
    threads: torch intra-op threads while training and classifying (default 1: these tensors are small and
    thread hand-offs cost more than they save, badly so on a busy machine; None: unchanged).
    """
    X, y = _check_data(X, y)
    check_count("width", width)
    check_count("runs", runs)
    check_count("max_steps", max_steps)
    check_count("window", window)
    check_choice("loss", loss, LOSSES)
    check_choice("optimizer", optimizer, OPTIMIZERS)
    check_choice("spectra", spectra, SPECTRA)
    s = _slope(activation, slope)
    lr = float(lr if lr is not None else (0.01 if optimizer == "adam" else 0.5))
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    if not 0 < lr_decay < 1:
        raise ValueError(f"lr_decay must be in (0, 1), got {lr_decay!r} (it multiplies the "
                         "learning rate of a run whose loss stalls)")
    if not 0 <= plateau_tol < 1:  # ≥ 1 decays every window, < 0 (or NaN) never
        raise ValueError(f"plateau_tol must be in [0, 1), got {plateau_tol!r} (the fraction by "
                         "which the loss must fall over a window)")
    for name, tol in (("grad_tol", grad_tol), ("loss_floor", loss_floor)):
        if not tol >= 0:  # negative or NaN: no run would ever stop or count as critical
            raise ValueError(f"{name} must be >= 0, got {tol!r}")
    if threads is not None:
        check_count("threads", threads)
    min_lr = lr * 1e-4 if min_lr is None else float(min_lr)
    if not 0 <= min_lr < lr:  # ≥ lr stopped every run at its first window, loss falling or not
        raise ValueError(f"min_lr must be in [0, lr) = [0, {lr:g}), got {min_lr!r}")
    N, d0 = X.shape
    if init is None:
        W0, z0 = init_params(runs, d0, width, seed)
    else:
        W0, z0 = (torch.as_tensor(t, dtype=DTYPE) for t in init)
        if W0.shape != (runs, width, d0) or z0.shape != (runs, width):
            raise ValueError(f"init must be W (runs, width, d0) = {(runs, width, d0)} and "
                             f"z (runs, width); got {tuple(W0.shape)} and {tuple(z0.shape)}")
        if not (W0.isfinite().all() and z0.isfinite().all()):
            raise ValueError("init holds NaN or infinite weights")

    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        W, z, steps, reason = _optimize(W0.clone(), z0.clone(), X, y, s, loss, optimizer, lr,
                                        max_steps, grad_tol, loss_floor, window, plateau_tol,
                                        lr_decay, min_lr, progress)
        L, error, gW, gz = loss_and_grad(W, z, X, y, s, loss)
        grad_norm = torch.sqrt(gW.pow(2).sum((1, 2)) + gz.pow(2).sum(1))
        kink = kink_margin(W, X)
        nan = torch.full((runs,), math.nan, dtype=DTYPE)
        lam_min, lam_max, labels = nan.clone(), nan.clone(), ["not_converged"] * runs
        if classify_endpoints:
            only = None if spectra == "all" else needs_curvature(
                error, L, grad_norm, kink, grad_tol=grad_tol, loss_floor=loss_floor)
            lam_min, lam_max = hessian_extremes(W, z, X, y, activation, slope, loss,
                                                hessian_max, only)
            labels = classify(error, L, grad_norm, kink, lam_min, lam_max, grad_tol=grad_tol,
                              loss_floor=loss_floor)
        rank = pattern_rank(W, X, s)
    finally:
        torch.set_num_threads(before)
    settings = dict(activation=activation, slope=s, loss=loss, optimizer=optimizer, lr=lr,
                    max_steps=max_steps, grad_tol=grad_tol, loss_floor=loss_floor, seed=seed)
    pattern = torch.einsum("rjd,nd->rnj", W, X) > 0
    return Endpoints(W, z, W0, z0, L, error, grad_norm, steps, reason, pattern, kink, rank,
                     lam_min, lam_max, labels, settings)


def _optimize(W: Tensor, z: Tensor, X: Tensor, y: Tensor, slope: float, loss: str,
              optimizer: str, lr: float, max_steps: int, grad_tol: float, loss_floor: float,
              window: int, plateau_tol: float, lr_decay: float, min_lr: float,
              progress: bool) -> tuple[Tensor, Tensor, Tensor, list[str]]:
    """Batched full-batch descent on θ = (vec W, z) (R, P). Only the runs still going are
    computed: a run that stops is written back and dropped from the working set at once, so
    every active run has made the same number of updates (one Adam step count t for all).
    The loop runs under torch.inference_mode: none of its tensors needs gradients, and
    skipping autograd's bookkeeping saves about a fifth of each (tiny) operation's cost."""
    from tqdm.auto import tqdm

    R, d1, d0 = W.shape
    k = d1 * d0
    final = flatten(W, z)  # created outside inference mode: the endpoints stay normal tensors
    steps = torch.full((R,), max_steps, dtype=torch.long)  # until a run stops earlier
    reason = ["cap"] * R
    ids = torch.arange(R)
    theta = final.clone()
    rate = torch.full((R,), lr, dtype=DTYPE)
    ref = torch.full((R,), math.inf, dtype=DTYPE)  # loss at the start of the window
    m, v = torch.zeros_like(theta), torch.zeros_like(theta)
    b1, b2, eps = 0.9, 0.999, 1e-12
    bar = tqdm(total=max_steps, disable=not progress, desc=f"{R} runs", leave=False)
    with torch.inference_mode():
        for t in range(1, max_steps + 1):
            L, gW, gz, _ = _grads(theta[:, :k].view(-1, d1, d0), theta[:, k:], X, y, slope, loss)
            grad = torch.cat([gW.flatten(1), gz], dim=1)
            gnorm = torch.linalg.vector_norm(grad, dim=1)
            done_grad, done_floor = gnorm <= grad_tol, L <= loss_floor
            diverged = ~theta.isfinite().all(1)  # they stay so: computing on to the cap changes nothing
            stop = done_grad | done_floor | diverged
            if t % window == 0:
                rate = torch.where(L > ref * (1 - plateau_tol), rate * lr_decay, rate)
                ref = L
                stop = stop | (rate < min_lr)
            elif t == 1:
                ref = L
            if stop.any():
                for j in torch.nonzero(stop).flatten().tolist():
                    reason[int(ids[j])] = ("diverged" if diverged[j] else "floor" if done_floor[j]
                                           else "gradient" if done_grad[j] else "plateau")
                final[ids[stop]] = theta[stop]
                steps[ids[stop]] = t - 1  # updates made before step t
                keep = ~stop
                ids, theta, grad, rate, ref, m, v = (a[keep] for a in (ids, theta, grad, rate,
                                                                       ref, m, v))
                if len(ids) == 0:
                    break
            if optimizer == "adam":
                m.mul_(b1).add_(grad, alpha=1 - b1)
                v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
                denom = (v / (1 - b2 ** t)).sqrt_().add_(eps)
                update = (m / denom).mul_(rate.view(-1, 1) / (1 - b1 ** t))
            else:
                update = grad.mul_(rate.view(-1, 1))
            theta.sub_(update)
            bar.update(1)
        final[ids] = theta
    bar.close()
    W, z = unflatten(final, d0, d1)
    return W.contiguous(), z.contiguous(), steps, reason
