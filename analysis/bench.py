"""Benchmarks behind `python -m analysis bench <name>`.

Each benchmark times two (or more) things side by side in one run, on the same inputs, and
prints their ratio: on a shared, noisy machine a ratio measured together is meaningful where
an absolute time is not. `--json PATH` writes the figures for the record.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import torch

from analysis.checks import count_arg, json_path_arg
from analysis.partial import write_json_atomic

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
    """Write `results` with this machine's description to `path` (atomically); None: nothing."""
    if path:
        write_json_atomic(Path(path), {"machine": machine_info(), **results}, indent=1)
        print(f"wrote {path}")


def _mnist5k_batch(p: argparse.ArgumentParser, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first `batch_size` mnist5k training digits; an argparse error if there are fewer."""
    from analysis import data

    X, y = data.load("mnist5k", "train")
    if batch_size > len(X):
        p.error(f"--batch-size {batch_size} is more than the {len(X)} mnist5k training digits")
    return X[:batch_size], y[:batch_size]


def train(argv: list[str]) -> int:
    """One training step (forward, backward, Adam, latent clipping) of the BNN MLP vs its float twin."""
    from analysis import models
    from analysis.training import squared_hinge_loss, train_step

    p = argparse.ArgumentParser(prog="python -m analysis bench train", description=train.__doc__)
    p.add_argument("--width", type=count_arg(), default=1024,
                   help="hidden units per layer (default %(default)s)")
    p.add_argument("--depth", type=count_arg(0), default=3, help="hidden layers (default %(default)s)")
    p.add_argument("--batch-size", type=count_arg(2), default=100,
                   help="mnist5k digits per step (default %(default)s)")
    p.add_argument("--repeat", type=count_arg(), default=30,
                   help="steps timed per round, the median kept; 4 interleaved rounds (default %(default)s)")
    p.add_argument("--json", type=json_path_arg, default=None,
                   help="also write the results, with the machine, to this JSON file")
    a = p.parse_args(argv)

    xb, yb = _mnist5k_batch(p, a.batch_size)

    def make_step(name: str) -> Callable[[], None]:
        torch.manual_seed(0)
        model = models.build(name, width=a.width, depth=a.depth)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)

        return lambda: train_step(model, opt, xb, yb, squared_hinge_loss)

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


# --- XNOR kernel and packed BNN inference (issue 8) ------------------------------------------

POPC_PER_SM_PER_CLOCK = 16  # 32-bit popc throughput of compute capability 5.x-9.x (CUDA guide)


def _gpu_info() -> dict:
    """Device name, driver, CUDA version, SMs, clock and popcount peak of the current GPU."""
    import subprocess

    props = torch.cuda.get_device_properties(torch.cuda.current_device())
    info = {"name": props.name, "capability": f"{props.major}.{props.minor}",
            "sms": props.multi_processor_count, "memory_gib": round(props.total_memory / 2**30, 1),
            "cuda": torch.version.cuda, "driver": None, "max_sm_clock_mhz": None}
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version,clocks.max.sm",
                              "--format=csv,noheader,nounits", f"--id={torch.cuda.current_device()}"],
                             capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception as error:  # no nvidia-smi: the peak stays unknown, the timings do not
        info["driver"] = f"unknown ({type(error).__name__})"
        return info
    driver, _, clock = (v.strip() for v in out.partition(","))
    info["driver"] = driver or "unknown (nvidia-smi said nothing)"
    try:  # "[N/A]" on some virtualized GPUs: keep the driver, leave the peak unknown
        info["max_sm_clock_mhz"] = float(clock)
    except ValueError:
        pass
    if info["max_sm_clock_mhz"]:
        # binary ops: one popc counts 32 bit positions, each an XNOR and an add (2 ops)
        info["popcount_peak_ops"] = (info["sms"] * info["max_sm_clock_mhz"] * 1e6
                                     * POPC_PER_SM_PER_CLOCK * 32 * 2)
    return info


def _cuda_median_time(fn: Callable[[], object], repeat: int, warmup: int = 3) -> float:
    """Median seconds of `fn()` on the GPU, each run between two CUDA events, after warm-up."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeat):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return statistics.median(times)


def _adaptive_repeat(fn: Callable[[], object], repeat: int, budget_s: float, cuda: bool) -> int:
    """Fewer runs for slow candidates: about `budget_s` seconds each, at least 3."""
    t0 = time.perf_counter()
    fn()
    if cuda:
        torch.cuda.synchronize()
    one = time.perf_counter() - t0
    return max(3, min(repeat, int(budget_s / max(one, 1e-9))))


def _xnor_device(asked: str, cpu_run: str) -> str | None:
    """"cuda" or "cpu" for --device `asked` (auto: cuda where the XNOR kernels can run), saying
    what a CPU run (`cpu_run`) measures and skips; None, with the reason, when cuda cannot run."""
    from analysis import xnor as bits

    if asked == "cuda" or (asked == "auto" and bits.gpu_available()):
        if bits.gpu_available():
            return "cuda"
        print(f"no GPU kernels: {bits.gpu_status()}")
        return None
    why = "--device cpu" if asked == "cpu" else bits.gpu_status()
    print(f"CPU run ({why}): {cpu_run}")
    return "cpu"


def _pm1(m: int, k: int, generator: torch.Generator, device) -> torch.Tensor:
    return (torch.randint(0, 2, (m, k), generator=generator, dtype=torch.int8) * 2 - 1).float().to(device)


def xnor(argv: list[str]) -> int:
    """XNOR-popcount GEMM vs the unoptimized kernel vs torch.matmul (fp32 without TF32, bf16).

    On a GPU: the kernels of kernels/*.cu and cuBLAS on the same random ±1 matrices, CUDA
    events, warm-up, medians; binary ops/s against the device's popcount peak. "xnor" is the
    kernel the library runs by default (`xnor.gpu_kernel()`: tensor cores from compute
    capability 8.0); where that is "tc", the CUDA-core kernel is timed beside it as
    "xnor-popc". On the CPU: the numpy reference against float32 torch.matmul.
    """
    p = argparse.ArgumentParser(prog="python -m analysis bench xnor", description=xnor.__doc__)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="auto: the GPU where the XNOR kernels can run there, else the CPU")
    p.add_argument("--sizes", type=count_arg(), nargs="+", default=None,
                   help="square sizes M=N=K (default: GPU 1024..8192, CPU 256 512 1024)")
    p.add_argument("--batch", type=count_arg(), default=None,
                   help="batch M of the MNIST MLP's shapes (default GPU 10000, CPU 1000)")
    p.add_argument("--width", type=count_arg(), default=4096, help="MLP width: shapes (B, width, width)")
    p.add_argument("--repeat", type=count_arg(), default=20,
                   help="timed runs of each, the median kept; fewer for slow ones (default %(default)s)")
    p.add_argument("--no-baseline", action="store_true", help="skip the unoptimized kernel")
    p.add_argument("--threads", type=count_arg(), default=None,
                   help="torch CPU threads (the numpy reference uses one); default: torch's")
    p.add_argument("--json", type=json_path_arg, default=None,
                   help="also write the results, with the machine, to this JSON file")
    a = p.parse_args(argv)
    threads = torch.get_num_threads()
    if a.threads:
        torch.set_num_threads(a.threads)
    try:
        return _xnor(a)
    finally:  # --threads is for this run: a lesson calling bench.xnor keeps its own setting
        torch.set_num_threads(threads)


def _xnor(a: argparse.Namespace) -> int:
    from analysis import xnor as bits

    device = _xnor_device(a.device, "the numpy reference vs float32 torch.matmul; skipped: the "
                                    "CUDA kernels (XNOR, baseline) and bf16")
    if device is None:
        return 1
    cuda = device == "cuda"
    sizes = a.sizes if a.sizes is not None else ([1024, 2048, 4096, 8192] if cuda else [256, 512, 1024])
    batch = a.batch or (10000 if cuda else 1000)
    shapes = [("square", s, s, s) for s in sizes]
    shapes += [("mlp hidden", batch, a.width, a.width), ("mlp output", batch, 10, a.width)]
    info = _gpu_info() if cuda else {}
    peak = info.get("popcount_peak_ops")
    kernel = bits.gpu_kernel() if cuda else "cpu reference"  # what "xnor" runs
    g = torch.Generator().manual_seed(0)
    rows = []
    tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32: cuBLAS without TF32
    try:
        for label, m, n, k in shapes:
            A, B = _pm1(m, k, g, device), _pm1(n, k, g, device)
            pa, pb = bits.pack_bits(A), bits.pack_bits(B)
            out = torch.empty(m, n, dtype=torch.int32, device=device)
            fp32 = torch.matmul(A, B.T)
            exact = bool(torch.equal(bits.xnor_matmul(pa, pb, k).to(fp32.dtype), fp32))
            candidates: dict[str, Callable[[], object]] = {"fp32": lambda A=A, B=B: A @ B.T}
            if cuda:
                candidates["xnor"] = lambda pa=pa, pb=pb, k=k, out=out: bits.xnor_matmul(pa, pb, k, out=out)
                if kernel == "tc":
                    popc = bits.xnor_matmul(pa, pb, k, kernel="popc")
                    exact &= bool(torch.equal(popc.to(fp32.dtype), fp32))
                    candidates["xnor-popc"] = (lambda pa=pa, pb=pb, k=k, out=out:
                                               bits.xnor_matmul(pa, pb, k, out=out, kernel="popc"))
                Ab, Bb = A.bfloat16(), B.bfloat16()
                candidates["bf16"] = lambda Ab=Ab, Bb=Bb: Ab @ Bb.T
                if not a.no_baseline:
                    Bt = B.T.contiguous()
                    fout = torch.empty(m, n, device=device)
                    candidates["baseline"] = (lambda A=A, Bt=Bt, fout=fout:
                                              bits.baseline_matmul(A, Bt, out=fout))
                    exact &= bool(torch.equal(bits.baseline_matmul(A, Bt), fp32))
            else:
                na, nb = pa.numpy(), pb.numpy()
                candidates["xnor"] = lambda na=na, nb=nb, k=k: bits.xnor_matmul_cpu(na, nb, k)
            seconds = {}
            for name, fn in candidates.items():
                rep = _adaptive_repeat(fn, a.repeat, 10.0 if cuda else 5.0, cuda)
                seconds[name] = (_cuda_median_time(fn, rep, warmup=2) if cuda
                                 else median_time(fn, repeat=rep, warmup=1))
            ops = 2 * m * n * k
            row = {"shape": label, "m": m, "n": n, "k": k, "exact": exact, "seconds": seconds,
                   "ops_per_s": {name: ops / t for name, t in seconds.items()},
                   "xnor_speedup": {name: t / seconds["xnor"] for name, t in seconds.items()
                                    if name != "xnor"}}
            if peak:
                row["xnor_fraction_of_popcount_peak"] = ops / seconds["xnor"] / peak
                if "xnor-popc" in seconds:
                    row["xnor_popc_fraction_of_popcount_peak"] = ops / seconds["xnor-popc"] / peak
            rows.append(row)
            unit, scale = ("T", 1e12) if cuda else ("G", 1e9)
            speed = "  ".join(f"{name} {1e3 * t:9.3f} ms ({ops / t / scale:7.2f} {unit}/s)"
                              for name, t in seconds.items())
            ratio = "  ".join(f"xnor vs {name}: {r:6.2f}x" for name, r in row["xnor_speedup"].items())
            extra = f"  peak {100 * row['xnor_fraction_of_popcount_peak']:.0f}%" if peak else ""
            print(f"{label:11s} {m:6d}x{n:5d}x{k:5d} exact={exact}  {speed}  {ratio}{extra}")
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32
    print("ops = 2·M·N·K (binary ops for xnor, float ops otherwise); "
          + (f"device {info['name']}, popcount peak {peak / 1e12:.0f} T binary ops/s" if peak
             else f"{torch.get_num_threads()} CPU threads"))
    write_json(a.json, {"benchmark": "xnor", "device": "cuda" if cuda else "cpu", "gpu": info,
                        "backend": bits.gpu_status() if cuda else "cpu reference",
                        "xnor_kernel": kernel, "rows": rows})
    return 0 if all(r["exact"] for r in rows) else 1


def bnn_inference(argv: list[str]) -> int:
    """The MNIST binarized MLP: packed XNOR layers vs the baseline kernel vs the torch model.

    Exactness first: packed predictions against the torch model's on all mnist5k test digits
    (after --train-epochs of training on mnist5k), then the three timed side by side on a
    batch of test digits tiled to --batch. On the CPU the packed model runs the numpy
    reference and the baseline kernel (a GPU kernel) is left out.
    """
    from analysis import data, models
    from analysis import xnor as bits
    from analysis.training import fit

    p = argparse.ArgumentParser(prog="python -m analysis bench bnn-inference",
                                description=bnn_inference.__doc__)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="auto: the GPU where the XNOR kernels can run there, else the CPU")
    p.add_argument("--width", type=count_arg(), default=4096,
                   help="hidden units per layer (default %(default)s)")
    p.add_argument("--depth", type=count_arg(), default=3, help="hidden layers (default %(default)s)")
    p.add_argument("--batch", type=count_arg(), default=None, help="default GPU 10000, CPU 1000")
    p.add_argument("--train-epochs", type=count_arg(0), default=1,
                   help="epochs of training on mnist5k before the checks (0: random weights)")
    p.add_argument("--repeat", type=count_arg(), default=10,
                   help="timed runs of each, the median kept; fewer for slow ones (default %(default)s)")
    p.add_argument("--json", type=json_path_arg, default=None,
                   help="also write the results, with the machine, to this JSON file")
    a = p.parse_args(argv)

    device = _xnor_device(a.device, "the packed model on the numpy reference vs the torch model; "
                                    "skipped: the CUDA kernels (XNOR, baseline) and their exactness checks")
    if device is None:
        return 1
    cuda = device == "cuda"
    kernel = bits.gpu_kernel() if cuda else "cpu reference"  # what "xnor" runs
    batch = a.batch or (10000 if cuda else 1000)
    X, y = data.load("mnist5k", "train")
    Xt, yt = data.load("mnist5k", "test")
    torch.manual_seed(0)
    model = models.build("bnn-mlp", width=a.width, depth=a.depth)
    t0 = time.perf_counter()
    if a.train_epochs > 0:
        fit(model, (X, y), epochs=a.train_epochs, batch_size=100, lr=3e-3, lr_final=3e-4,
            loss="squared_hinge", progress=False)
    model.eval()
    print(f"bnn-mlp {a.depth}x{a.width}: {a.train_epochs} epoch(s) of training on mnist5k "
          f"in {time.perf_counter() - t0:.1f} s")
    packed = bits.export_packed(model)
    with torch.no_grad():
        want = model(Xt).argmax(1)
    got = packed.predict(Xt)
    checks = {"cpu": int((got == want).sum())}
    print(f"exactness (CPU reference): {checks['cpu']}/{len(Xt)} test digits predicted as the "
          f"torch model does; test error {100 * (got != yt).float().mean():.2f}%")
    size = bits.size_report(model, packed)
    print(f"size: weights {size['float_weights'] / 2**20:.2f} MiB float32 vs "
          f"{size['packed_weights'] / 2**20:.3f} MiB packed ({size['weights_ratio']:.1f}x); "
          f"whole model {size['total_ratio']:.1f}x")

    xb = Xt.repeat(-(-batch // len(Xt)), 1, 1, 1)[:batch].to(device)
    model_d = model.to(device)
    packed_d = bits.export_packed(model_d).to(device)  # thresholds folded by the device's batch-norm
    if cuda:
        with torch.no_grad():
            want_d = model_d(Xt.to(device)).argmax(1)
        checks["cuda"] = int((packed_d.predict(Xt.to(device)) == want_d).sum())
        checks["cuda_baseline"] = int((packed_d.predict(Xt.to(device), "baseline") == want_d).sum())
        if kernel == "tc":
            checks["cuda_popc"] = int((packed_d.predict(Xt.to(device), "popc") == want_d).sum())
        print("exactness (GPU): " + ", ".join(f"{name} {n}/{len(Xt)}" for name, n in checks.items()
                                               if name != "cpu"))
    candidates = {"xnor": lambda: packed_d.predict(xb), "torch float": lambda: model_d(xb).argmax(1)}
    if cuda:
        candidates["baseline"] = lambda: packed_d.predict(xb, "baseline")
        if kernel == "tc":
            candidates["xnor-popc"] = lambda: packed_d.predict(xb, "popc")
    tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    seconds = {}
    try:
        with torch.no_grad():
            for name, fn in candidates.items():
                rep = _adaptive_repeat(fn, a.repeat, 10.0, cuda)
                seconds[name] = (_cuda_median_time(fn, rep, warmup=2) if cuda
                                 else median_time(fn, repeat=rep, warmup=1))
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32
    for name, t in seconds.items():
        print(f"  {name:12s} {1e3 * t:10.2f} ms per batch of {batch}   "
              f"(xnor speedup {t / seconds['xnor']:.2f}x)")
    write_json(a.json, {"benchmark": "bnn-inference", "device": device,
                        "gpu": _gpu_info() if cuda else {}, "width": a.width, "depth": a.depth,
                        "xnor_kernel": kernel, "batch": batch, "train_epochs": a.train_epochs,
                        "exact": checks,
                        "test_digits": len(Xt), "size": size, "seconds": seconds,
                        "xnor_speedup": {n: t / seconds["xnor"] for n, t in seconds.items()}})
    return 0 if all(v == len(Xt) for v in checks.values()) else 1


def margin(argv: list[str]) -> int:
    """10^6 full-batch GD iterations on separable data (analysis.margin), and the vectorized
    step vs a naive per-sample Python loop on a short run, side by side."""
    import math

    from analysis import data
    from analysis import margin as M

    p = argparse.ArgumentParser(prog="python -m analysis bench margin", description=margin.__doc__)
    p.add_argument("--n", type=count_arg(2), default=100,
                   help="points of the separable data (default %(default)s)")
    p.add_argument("--d", type=count_arg(), default=50, help="dimensions (default %(default)s)")
    p.add_argument("--steps", type=count_arg(100), default=10**6,
                   help="iterations of the long run (the 1/log t fit needs a decade: >= 100)")
    p.add_argument("--short", type=count_arg(), default=200, help="iterations of the side-by-side run")
    p.add_argument("--repeat", type=count_arg(), default=3,
                   help="timed short runs of each, the median kept (default %(default)s)")
    p.add_argument("--json", type=json_path_arg, default=None,
                   help="also write the results, with the machine, to this JSON file")
    a = p.parse_args(argv)

    X, y = data.load("separable", n=a.n, d=a.d, margin=0.5, seed=0)
    X, y = X.double().numpy(), M.signed_labels(y)
    svm = M.hard_margin_svm(X, y)
    lr = 1.0 / M.smoothness(X, y)
    short = {
        "vectorized": lambda: M.gradient_descent(X, y, steps=a.short, lr=lr, record=[a.short],
                                                 svm=svm, progress=False),
        "naive loop": lambda: M.gradient_descent_naive(X, y, steps=a.short, lr=lr),
    }
    seconds = {name: median_time(fn, repeat=a.repeat, warmup=1) for name, fn in short.items()}
    long = M.gradient_descent(X, y, steps=a.steps, lr=lr, svm=svm)
    per_step = {name: s / a.short for name, s in seconds.items()}
    ratio = per_step["naive loop"] / per_step["vectorized"]
    fit = M.fit_rate(long.t, long.angle, "1/log t", decades=min(4.0, math.log10(a.steps) - 1))
    angles = {t: v["angle_deg"] for t, v in long.summary().items()}
    print(f"full-batch GD, logistic loss, n={a.n}, d={a.d}, lr=1/β={lr:.4g}")
    print(f"  {a.steps:,} iterations (vectorized, with log-grid records): {long.seconds:8.2f} s "
          f"({1e6 * long.seconds / a.steps:.2f} µs/iteration)")
    for name, s in per_step.items():
        print(f"  {name:11s} {1e6 * s:10.2f} µs/iteration   ({a.short} iterations)")
    print(f"  ratio naive / vectorized: {ratio:.1f}x")
    print("  angle to the SVM direction: " + ", ".join(f"t={t:,}: {v:.3f}°"
                                                       for t, v in angles.items()))
    print(f"  angle ≈ {fit.intercept:.4f} + {fit.slope:.4f}/log t (rad), R² = {fit.r2:.4f} "
          f"over t in [{fit.t_min:.0f}, {fit.t_max:.0f}]")
    write_json(a.json, {"benchmark": "margin", "n": a.n, "d": a.d, "steps": a.steps,
                        "seconds_long_run": long.seconds, "seconds_per_iteration": per_step,
                        "ratio_naive_over_vectorized": ratio, "angle_deg": angles,
                        "fit": {"slope": fit.slope, "intercept": fit.intercept, "r2": fit.r2,
                                "t_min": fit.t_min, "t_max": fit.t_max}})
    return 0


def diffusion(argv: list[str]) -> int:
    """Overhead of the WeightDiffusion callback: a training step with and without it, side by side."""
    from analysis import models
    from analysis.diffusion import WeightDiffusion, record_points
    from analysis.training import TrainState, train_step

    p = argparse.ArgumentParser(prog="python -m analysis bench diffusion", description=diffusion.__doc__)
    p.add_argument("--width", type=count_arg(), default=256, help="MLP width (the large-batch experiment's)")
    p.add_argument("--depth", type=count_arg(0), default=3, help="hidden layers (default %(default)s)")
    p.add_argument("--batch-size", type=count_arg(2), default=50,
                   help="mnist5k digits per step (default %(default)s)")
    p.add_argument("--repeat", type=count_arg(), default=200,
                   help="steps timed, interleaved, the median kept (default %(default)s)")
    p.add_argument("--updates", type=count_arg(), default=10_000,
                   help="run length for the amortized 'auto' cost")
    p.add_argument("--json", type=json_path_arg, default=None,
                   help="also write the results, with the machine, to this JSON file")
    a = p.parse_args(argv)

    xb, yb = _mnist5k_batch(p, a.batch_size)
    torch.manual_seed(0)
    model = models.build("mlp", width=a.width, depth=a.depth)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    state = TrainState(model, opt, batch_size=a.batch_size)
    every_update = WeightDiffusion(every=1)
    every_update.on_train_begin(state)

    def step() -> None:
        train_step(model, opt, xb, yb, torch.nn.functional.cross_entropy)
        state.step += 1

    def step_recorded() -> None:
        step()
        every_update.on_step_end(state)

    fns = {"step": step, "step+record": step_recorded, "record": every_update.distances}
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for i in range(a.repeat + 3):  # interleaved call by call: all three see the same load
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            if i >= 3:  # warm-up
                samples[name].append(time.perf_counter() - t0)
    times = {name: statistics.median(v) for name, v in samples.items()}
    n_params = sum(p.numel() for p in model.parameters())
    records = len(record_points(a.updates))
    per_record = times["record"] / times["step"]
    side_by_side = times["step+record"] / times["step"] - 1
    auto = per_record * records / a.updates
    print(f"MLP {a.depth}x{a.width} ({n_params:,} parameters), batch {a.batch_size}, "
          f"{torch.get_num_threads()} threads")
    print(f"  training step:                     {1e3 * times['step']:8.3f} ms")
    print(f"  training step + record (every=1):  {1e3 * times['step+record']:8.3f} ms")
    print(f"  one record (distances):            {1e3 * times['record']:8.3f} ms")
    print(f"  overhead, every update, side by side: {100 * side_by_side:6.2f}% of the step")
    print(f"  overhead, one record / step:          {100 * per_record:6.2f}%")
    print(f"  overhead, every='auto' over {a.updates} updates ({records} records): {100 * auto:.4f}%")
    write_json(a.json, {"benchmark": "diffusion", "width": a.width, "depth": a.depth,
                        "batch_size": a.batch_size, "parameters": n_params, "seconds": times,
                        "overhead_every_update": side_by_side, "overhead_per_record": per_record,
                        "overhead_auto": auto, "auto_updates": a.updates, "auto_records": records})
    return 0


def minima(argv: list[str]) -> int:
    """R trainings of a one-hidden-layer net as one batched computation (landscape.train_many)
    vs the same R trainings one after another, endpoints compared run by run."""
    from analysis import landscape

    p = argparse.ArgumentParser(prog="python -m analysis bench minima", description=minima.__doc__)
    p.add_argument("--runs", type=count_arg(), default=100, help="trainings R (default %(default)s)")
    p.add_argument("--n", type=count_arg(), default=64, help="samples N")
    p.add_argument("--d0", type=count_arg(), default=8, help="inputs d0")
    p.add_argument("--width", type=count_arg(), default=16, help="hidden units d1")
    p.add_argument("--data", default="random", choices=landscape.DATASETS,
                   help="labels (default %(default)s)")
    p.add_argument("--max-steps", type=count_arg(), default=20000,
                   help="gradient steps at most per training (default %(default)s)")
    p.add_argument("--json", type=json_path_arg, default=None,
                   help="also write the results, with the machine, to this JSON file")
    a = p.parse_args(argv)
    X, y = landscape.make_data(a.data, a.n, a.d0, seed=0)

    def batched():
        return landscape.train_many(X, y, a.width, a.runs, seed=0, max_steps=a.max_steps)

    def sequential():
        return [landscape.train_many(X, y, a.width, 1, seed=r, max_steps=a.max_steps)
                for r in range(a.runs)]

    # wall and CPU time of this process: on a shared machine the CPU time is the fair one
    t0, c0 = time.perf_counter(), time.process_time()
    many = batched()
    t_batched, c_batched = time.perf_counter() - t0, time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    ones = sequential()
    t_seq, c_seq = time.perf_counter() - t0, time.process_time() - c0
    diff = max(float((o.W[0] - many.W[r]).abs().max()) for r, o in enumerate(ones))
    same = sum(o.label[0] == many.label[r] for r, o in enumerate(ones))
    steps = int(many.steps.sum())
    print(f"{a.runs} runs, N={a.n}, d0={a.d0}, d1={a.width} ({a.data}), "
          f"{steps} updates in all (longest run {int(many.steps.max())}), classification included")
    print(f"  batched ({a.runs} at once): {t_batched:8.2f} s wall, {c_batched:8.2f} s CPU")
    print(f"  sequential (one by one):  {t_seq:8.2f} s wall, {c_seq:8.2f} s CPU")
    print(f"  ratio sequential / batched: {t_seq / t_batched:.1f}x wall, "
          f"{c_seq / c_batched:.1f}x CPU")
    print(f"  endpoints: max |ΔW| {diff:.1e}, same class {same}/{a.runs}")
    write_json(a.json, {"benchmark": "minima", "runs": a.runs, "n": a.n, "d0": a.d0,
                        "width": a.width, "data": a.data, "updates": steps,
                        "seconds": {"batched": t_batched, "sequential": t_seq},
                        "cpu_seconds": {"batched": c_batched, "sequential": c_seq},
                        "ratio": t_seq / t_batched, "cpu_ratio": c_seq / c_batched,
                        "max_weight_difference": diff, "same_class": same})
    return 0


def widgets(argv: list[str]) -> int:
    """The clipping widget's callback (statistics, curves, figure) vs drawing its figure alone,
    for a tensor of --n values (lesson 03; the issue asks ≤ 150 ms median for 10^6 values)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from analysis.widgets.clipping import make_callback, sample_tensors

    p = argparse.ArgumentParser(prog="python -m analysis bench widgets", description=widgets.__doc__)
    p.add_argument("--n", type=count_arg(2), default=10**6, help="values in the tensor")
    p.add_argument("--repeat", type=count_arg(), default=15,
                   help="timed calls of each, the median kept (default %(default)s)")
    p.add_argument("--json", type=json_path_arg, default=None,
                   help="also write the results, with the machine, to this JSON file")
    a = p.parse_args(argv)

    t0 = time.perf_counter()
    callback = make_callback(sample_tensors(a.n))
    setup = time.perf_counter() - t0
    state = {"bits": 0}

    def move_slider() -> None:  # a new bit width, curves recomputed (cache emptied): the worst case
        state["bits"] = state["bits"] % 8 + 1
        callback.views["Laplace samples"]._curves.clear()
        fig, _ = callback(bits=state["bits"], clip=4.0, tensor="Laplace samples")
        plt.close(fig)

    def move_clip() -> None:  # same bits, new α: what dragging the clipping slider costs
        state["bits"] += 1
        fig, _ = callback(bits=4, clip=2.0 + state["bits"] % 7, tensor="Laplace samples")
        plt.close(fig)

    t_bits = median_time(move_slider, a.repeat, warmup=8)
    t_clip = median_time(move_clip, a.repeat)
    fig, _ = callback(bits=4, clip=4.0, tensor="Laplace samples")
    t_draw = median_time(fig.canvas.draw, a.repeat)
    plt.close(fig)
    print(f"clipping widget, {a.n:,} values (views built once in {setup:.2f} s), torch threads "
          f"{torch.get_num_threads()}")
    print(f"  callback, bits changed:  {1e3 * t_bits:7.1f} ms median")
    print(f"  callback, clip changed:  {1e3 * t_clip:7.1f} ms median")
    print(f"  drawing the figure alone:{1e3 * t_draw:7.1f} ms median  "
          f"(callback/draw = {t_bits / t_draw:.2f})")
    write_json(a.json, {"benchmark": "widgets", "widget": "clipping", "n": a.n, "setup_seconds": setup,
                        "seconds": {"callback_bits": t_bits, "callback_clip": t_clip, "draw": t_draw},
                        "ratio": t_bits / t_draw})
    return 0


def _lesson_dashboards() -> dict[str, Callable[[], object]]:
    """Every lesson's dashboard, built as the lesson builds it in normal mode. Lesson 01's are
    built on an untrained model and a one-epoch width sweep on 1,000 digits: what is timed is
    their callbacks, which only read the model and the sweep's rows."""
    from analysis import binarized, data, models
    from analysis.widgets import binarized as w01
    from analysis.widgets import clipping as w03
    from analysis.widgets import diffusion as w04
    from analysis.widgets import landscape as w06
    from analysis.widgets import margin as w05
    from analysis.widgets import start as w00
    from analysis.widgets import xnor as w02

    def histogram():
        s = binarized.lesson_settings(False)
        return w01.histogram_dashboard(models.build("bnn-mlp", width=s["width"], depth=s["depth"]),
                                       data.load("mnist5k", "test")[0])

    def width():
        s = binarized.lesson_settings(False)
        return w01.width_dashboard(binarized.width_sweep(s["sweep_widths"], depth=s["sweep_depth"],
                                                         epochs=1, n_train=1000))

    return {"00 quantizer": w00.quantizer_dashboard,
            "01 sign": w01.sign_dashboard,
            "01 histogram": histogram,
            "01 width": width,
            "02 xnor": lambda: w02.xnor_dashboard(a="+-++-+--+-", b="++-+--+-++"),
            "03 clipping": lambda: w03.clipping_widget(n=10**6),
            "04 diffusion": w04.diffusion_dashboard,
            "05 implicit bias": w05.implicit_bias_widget,
            "06 minima": lambda: w06.minima_dashboard(n=32, d0=6, d1=4)}


def _another_value(control):
    """A value of `control` other than its own, as a student would pick next: one step of a
    slider (down at its top), the next option of a list, the other state of a check box, the
    first sign flipped in a ±1 text."""
    import ipywidgets as W

    if isinstance(control, (W.Dropdown, W.SelectionSlider)):
        options = list(control.options)
        labels = [o[1] if isinstance(o, tuple) else o for o in options]
        return labels[(labels.index(control.value) + 1) % len(labels)]
    if isinstance(control, W.Checkbox):
        return not control.value
    if isinstance(control, W.Text):
        flip = {"+": "-", "-": "+"}
        return flip.get(control.value[:1], "+") + control.value[1:]
    if control.min == control.max:
        raise ValueError(f"{control.description or 'the slider'} has one value ({control.max}): "
                         "it cannot move")
    up = control.value + control.step
    if up <= control.max + control.step / 2:  # 0.2 + 0.1 is just above a top of 0.3
        return min(up, control.max)
    return control.value - control.step


def dashboards(argv: list[str]) -> int:
    """Every lesson's dashboard: each control moved once, timed until the new figure is drawn
    as the notebook draws it (a PNG, bbox_inches="tight", as IPython's inline backend does),
    beside drawing that figure alone. A move to a setting not computed before: what a student
    waits for."""
    import contextlib
    import io
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    p = argparse.ArgumentParser(prog="python -m analysis bench dashboards", description=dashboards.__doc__)
    p.add_argument("--only", nargs="+", default=None, metavar="NAME",
                   help="dashboards whose name starts with one of these, e.g. 03 or '01 sign' (default: all)")
    p.add_argument("--json", type=json_path_arg, default=None,
                   help="also write the results, with the machine, to this JSON file")
    a = p.parse_args(argv)
    built = _lesson_dashboards()  # after parsing: --help imports no widget module
    names = [n for n in built if a.only is None or any(n.startswith(o) for o in a.only)]
    if not names:
        p.error(f"--only {' '.join(a.only)} matches no dashboard; the dashboards: {', '.join(built)}")
    rows, failed = [], []
    print(f"each control moved once; torch threads {torch.get_num_threads()}")
    print(f"{'dashboard':18s} {'control':18s} {'move → drawn':>13s} {'draw alone':>11s}")
    def png(fig) -> None:
        fig.savefig(io.BytesIO(), format="png", bbox_inches="tight")

    table = sys.stdout  # the table's lines go here, while the dashboards' own output is kept off

    for name in names:
        # outside a notebook plt.show() is a no-op that says so, and the Output widget's
        # clear_output writes terminal escapes: keep both off the table
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.filterwarnings("ignore", message=".*non-interactive.*")
            t0 = time.perf_counter()
            box = built[name]()
            t_build = time.perf_counter() - t0
            for control_name, control in box.controls.items():
                t0 = time.perf_counter()
                control.value = _another_value(control)
                result = box.last_result
                if result is None:
                    failed.append(f"{name}: {control_name}")
                    print(f"{name:18s} {control_name:18s}  the callback failed", file=table)
                    continue
                png(result[0])
                t_move = time.perf_counter() - t0
                t_draw = median_time(lambda fig=result[0]: png(fig), repeat=3, warmup=0)
                rows.append({"dashboard": name, "control": control_name, "value": control.value,
                             "seconds": t_move, "draw_seconds": t_draw, "build_seconds": t_build})
                print(f"{name:18s} {control_name:18s} {t_move:11.3f} s {t_draw:9.3f} s",
                      file=table, flush=True)
    times = sorted(r["seconds"] for r in rows)
    if times:
        print(f"{len(times)} moves: median {statistics.median(times):.3f} s, slowest {times[-1]:.3f} s "
              f"({max(rows, key=lambda r: r['seconds'])['dashboard']}), "
              f"{sum(t <= 0.15 for t in times)} within 0.15 s, {sum(t <= 1.0 for t in times)} within 1 s")
    write_json(a.json, {"benchmark": "dashboards", "rows": rows, "failed": failed})
    if failed:
        print(f"the callback failed after: {', '.join(failed)}")
    return 1 if failed else 0
