"""Execute the lesson notebooks: `python -m analysis lessons run [NAMES] [--fast]`.

Each notebook runs top to bottom in a fresh kernel (nbclient), its outputs are written back,
and the time and peak memory (resident set of the kernel process, sampled) are reported:
Binder gives a lesson 2 GB.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import nbformat
import psutil

__all__ = ["lessons_dir", "find_lessons", "run_notebook", "fast_mode", "cli"]


def lessons_dir() -> Path:
    """The lessons/ folder of this checkout (beside the analysis package), else ./lessons."""
    here = Path(__file__).resolve().parents[1] / "lessons"
    return here if here.is_dir() else Path.cwd() / "lessons"


def fast_mode() -> bool:
    """True when LESSONS_FAST=1: lessons shrink data and epochs to run in a minute or two."""
    return os.environ.get("LESSONS_FAST", "0") not in ("", "0", "false", "False")


def find_lessons(names: list[str] | None = None, folder: Path | None = None) -> list[Path]:
    """Notebooks matching `names` ("01", "01_binarized_networks", or a path); all when empty."""
    folder = folder or lessons_dir()
    every = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    if not names:
        return every
    found = []
    for name in names:
        p = Path(name)
        if p.suffix == ".ipynb" and p.exists():
            found.append(p)
            continue
        match = [nb for nb in every if nb.stem == name or nb.stem.startswith(name)]
        if not match:
            known = ", ".join(nb.stem for nb in every) or "none"
            raise ValueError(f"no lesson matches {name!r}; lessons: {known}")
        found.extend(match)
    return found


@contextmanager
def _peak_child_memory(result: dict, interval: float = 0.1):
    """Sample the total resident memory of this process's children (the kernel) into result['peak_mb']."""
    me, stop = psutil.Process(), threading.Event()
    result["peak_mb"] = 0.0

    def sample():
        while not stop.is_set():
            rss = 0
            for child in me.children(recursive=True):
                try:
                    rss += child.memory_info().rss
                except psutil.Error:
                    pass
            result["peak_mb"] = max(result["peak_mb"], rss / 2**20)
            stop.wait(interval)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield result
    finally:
        stop.set()
        thread.join()


def run_notebook(path: Path, fast: bool = False, timeout: int = 900, write: bool = True) -> dict:
    """Execute one notebook in a fresh kernel; return {name, seconds, peak_mb, error}.

    A cell that raises, runs past `timeout` seconds or kills its kernel (out of memory, say)
    is reported in `error`, and the notebook on disk keeps its committed outputs: only a
    clean run is written back.
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    nb = nbformat.read(path, as_version=4)
    old = os.environ.get("LESSONS_FAST")
    os.environ["LESSONS_FAST"] = "1" if fast else "0"
    result: dict = {"name": path.stem, "error": None}
    t0 = time.perf_counter()
    try:
        with _peak_child_memory(result):
            client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                    resources={"metadata": {"path": str(path.parent)}})
            client.execute()
    except CellExecutionError as e:
        result["error"] = str(e).strip().splitlines()[-1] if str(e).strip() else repr(e)
    except CellTimeoutError:
        result["error"] = f"a cell ran longer than the timeout ({timeout} s)"
    except DeadKernelError as e:
        result["error"] = f"the kernel died ({e}); out of memory?"
    finally:
        if old is None:
            os.environ.pop("LESSONS_FAST", None)
        else:
            os.environ["LESSONS_FAST"] = old
    result["seconds"] = time.perf_counter() - t0
    if write and result["error"] is None:
        nbformat.write(nb, path)
    return result


def cli(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m analysis lessons",
                                description="List or execute the lesson notebooks.")
    sub = p.add_subparsers(dest="action", required=True)
    sub.add_parser("list", help="list the lessons")
    r = sub.add_parser("run", help="execute lessons top to bottom and write their outputs back")
    r.add_argument("names", nargs="*", help="lesson numbers or names (default: all)")
    r.add_argument("--fast", action="store_true", help="LESSONS_FAST=1: small data, few epochs")
    r.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    r.add_argument("--no-write", action="store_true", help="do not write outputs back")
    a = p.parse_args(argv)
    try:
        paths = find_lessons(getattr(a, "names", None))
    except ValueError as e:
        print(f"error: {e}")
        return 2
    if a.action == "list":
        for path in paths:
            print(path.stem)
        return 0
    rows = []
    for path in paths:
        print(f"running {path.name} ({'fast' if a.fast else 'normal'} mode) ...", flush=True)
        row = run_notebook(path, fast=a.fast, timeout=a.timeout, write=not a.no_write)
        rows.append(row)
        status = "ok" if row["error"] is None else f"ERROR: {row['error']} (outputs not written)"
        print(f"  {row['seconds']:7.1f} s   peak {row['peak_mb']:7.0f} MB   {status}", flush=True)
    print("\nlesson                          seconds   peak MB   status")
    for row in rows:
        status = "ok" if row["error"] is None else "error"
        print(f"{row['name']:<30} {row['seconds']:8.1f} {row['peak_mb']:9.0f}   {status}")
    return 0 if all(row["error"] is None for row in rows) else 1
