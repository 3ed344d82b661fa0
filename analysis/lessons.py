"""Execute the lesson notebooks: `python -m analysis lessons run [NAMES] [--fast]`.

Each notebook runs top to bottom in a fresh kernel (nbclient), its outputs are written back,
and the time and peak memory (resident set of the kernel process, sampled) are reported:
Binder gives a lesson 2 GB. Ctrl-C stops the kernel, leaves the notebook as it was on disk
and prints the lessons finished so far.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import nbformat
import psutil

from analysis.partial import write_text_atomic

__all__ = ["lessons_dir", "find_lessons", "run_notebook", "fast_mode", "cli"]


def lessons_dir() -> Path:
    """The lessons/ folder of this checkout (beside the analysis package), else ./lessons."""
    here = Path(__file__).resolve().parents[1] / "lessons"
    return here if here.is_dir() else Path.cwd() / "lessons"


# what LESSONS_FAST may say, in any case and with spaces around it
_FAST_VALUES = {"1": True, "true": True, "yes": True, "on": True,
                "": False, "0": False, "false": False, "no": False, "off": False}


def fast_mode() -> bool:
    """True when LESSONS_FAST=1 (or true, yes, on): lessons shrink data and epochs to run in a
    minute or two. False when it is unset, empty, 0, false, no or off; any other value is a
    ValueError rather than a guess."""
    value = os.environ.get("LESSONS_FAST", "")
    if value.strip().lower() not in _FAST_VALUES:
        raise ValueError(f"LESSONS_FAST={value!r} is not understood: "
                         "set it to 1 for fast mode or 0 for normal mode")
    return _FAST_VALUES[value.strip().lower()]


def _matches(name: str, lesson: Path) -> bool:
    """A number matches the lesson of that number ("1" and "01" are lesson 01, "0" is 00 only);
    other text matches the start of the name ("01_bin")."""
    if name.isdigit():
        return int(name) == int(lesson.stem[:2])
    return bool(name) and lesson.stem.startswith(name)


def find_lessons(names: list[str] | None = None, folder: Path | None = None) -> list[Path]:
    """Notebooks matching `names` ("1", "01", "01_binarized_networks", or a path), each once, in
    the order given; all when empty."""
    folder = folder or lessons_dir()
    every = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    if not names:
        if not every:  # else `lessons run` ran nothing and said ok
            raise ValueError(f"no lessons (NN_topic.ipynb) in {folder}")
        return every
    found = []
    for name in names:
        p = Path(name)
        if p.suffix == ".ipynb" and p.exists():
            match = [p]
        else:
            match = [nb for nb in every if _matches(name, nb)]
        if not match:
            known = ", ".join(nb.stem for nb in every) or "none"
            raise ValueError(f"no lesson matches {name!r}; lessons: {known}")
        found.extend(nb for nb in match if nb not in found)
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


@contextmanager
def _lessons_fast(fast: bool):
    """LESSONS_FAST=1 or 0 while the block runs (the kernel inherits it), then as it was."""
    old = os.environ.get("LESSONS_FAST")
    os.environ["LESSONS_FAST"] = "1" if fast else "0"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("LESSONS_FAST", None)
        else:
            os.environ["LESSONS_FAST"] = old


# the kernel every lesson runs in, written into a notebook that names none (else JupyterLab
# asks the student to pick one)
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def _stop_kernel(client) -> None:
    """Kill the kernel process of `client` and its children, if it has started."""
    km = client.km
    pid = km.provisioner.pid if km is not None and km.provisioner is not None else None
    if pid is None:
        return
    try:
        kernel = psutil.Process(pid)
        for process in [*kernel.children(recursive=True), kernel]:
            process.kill()
    except psutil.Error:
        pass  # it ended on its own


POLL_SLICE = 1.0  # seconds: the longest a message can wait unnoticed on a kernel channel


def _sliced_get_msg(get_msg, slice_s: float = POLL_SLICE):
    """`get_msg(timeout)` of a kernel channel, as polls of at most `slice_s` seconds each.

    jupyter_client's async channel waits for a message with one zmq poll of the whole timeout
    (the cell's, 900 s). Its wake-up is sometimes missed: the reply is there but the poll only
    looks again when it times out, so `lessons run 05` took 935 s instead of 40, the kernel idle
    all the while (seen three times in 2026-11). Each poll ends with a last look at the socket;
    short polls bound the delay to `slice_s`. Raises queue.Empty at the timeout, as before.
    """
    from queue import Empty

    async def sliced(timeout: float | None = None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = slice_s if deadline is None else min(slice_s, max(0.0, deadline - time.monotonic()))
            try:
                return await get_msg(timeout=left)
            except Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise

    return sliced


def _client(nb, timeout: int, path: Path):
    """nbclient's NotebookClient for `nb`, its shell and IOPub channels read by `_sliced_get_msg`."""
    from nbclient import NotebookClient

    class Client(NotebookClient):
        async def async_start_new_kernel_client(self):
            kc = await super().async_start_new_kernel_client()
            for channel in (kc.shell_channel, kc.iopub_channel):
                channel.get_msg = _sliced_get_msg(channel.get_msg)
            return kc

    return Client(nb, timeout=timeout, kernel_name=KERNELSPEC["name"],
                  resources={"metadata": {"path": str(path.parent)}})


def _execute(client, timeout: int) -> str | None:
    """Run every cell of the client's notebook; None when all ran, else what went wrong.

    nbclient runs in a worker thread: in the main thread it would take Ctrl-C over (it shuts
    the kernel down, then fails with an AssertionError of its own). Here Ctrl-C raises
    KeyboardInterrupt in this thread as usual, after the kernel is stopped.
    """
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    outcome = {"error": None}
    done = threading.Event()  # waited on rather than Thread.join: on Python 3.11, Ctrl-C inside
    # join() marks the thread as stopped while it still runs

    def work():
        try:
            client.execute()
        except CellExecutionError as e:  # the exception's name and message, on one line
            message = " ".join(str(e.evalue).split())
            outcome["error"] = f"{e.ename}: {message}" if message else e.ename
        except CellTimeoutError:
            outcome["error"] = f"a cell ran longer than the timeout ({timeout} s)"
        except DeadKernelError as e:
            outcome["error"] = f"the kernel died ({e}); out of memory?"
        except Exception as e:  # the kernel did not start, or was stopped on Ctrl-C
            outcome["error"] = f"{type(e).__name__}: {e}"
        finally:
            done.set()

    threading.Thread(target=work, daemon=True).start()
    try:
        done.wait()
    except KeyboardInterrupt:
        while not done.is_set():  # a kernel still starting is stopped once it appears
            _stop_kernel(client)
            done.wait(0.5)
        raise
    return outcome["error"]


def run_notebook(path: Path, fast: bool = False, timeout: int = 900, write: bool = True) -> dict:
    """Execute one notebook in a fresh kernel; return {name, seconds, peak_mb, error}.

    A cell that raises, runs past `timeout` seconds (0: no limit) or kills its kernel (out of
    memory, say) is reported in `error`, and the notebook on disk keeps its committed outputs:
    only a clean run is written back, atomically (a notebook that cannot be read or written
    back is an `error` too).
    Ctrl-C stops the kernel and raises KeyboardInterrupt, with the notebook on disk untouched.
    """
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as e:  # not JSON (a merge conflict), not a notebook, unreadable: one row
        why = " ".join(str(e).split())  # NotJSONError quotes the file's first lines
        return {"name": path.stem, "seconds": 0.0, "peak_mb": 0.0, "error": f"cannot read {path}: {why}"}
    client = _client(nb, timeout, path)
    result: dict = {"name": path.stem}
    t0 = time.perf_counter()
    with _lessons_fast(fast), _peak_child_memory(result):
        result["error"] = _execute(client, timeout)
    result["seconds"] = time.perf_counter() - t0
    if write and result["error"] is None:
        nb.metadata.setdefault("kernelspec", KERNELSPEC)
        text = nbformat.writes(nb)
        try:  # a full disk or Ctrl-C while writing must not leave half a committed lesson
            write_text_atomic(path, text if text.endswith("\n") else text + "\n")
        except OSError as e:
            result["error"] = f"cannot write {path}: {e}"
    return result


def _print_table(rows: list[dict]) -> None:
    print("\nlesson                          seconds   peak MB   status")
    for row in rows:
        status = "ok" if row["error"] is None else "error"
        print(f"{row['name']:<30} {row['seconds']:8.1f} {row['peak_mb']:9.0f}   {status}")


def cli(argv: list[str]) -> int:
    """`python -m analysis lessons list|run …` → exit code."""
    p = argparse.ArgumentParser(prog="python -m analysis lessons",
                                description="List or execute the lesson notebooks.")
    sub = p.add_subparsers(dest="action", metavar="{list,run}", required=True)
    sub.add_parser("list", help="list the lessons")
    r = sub.add_parser("run", help="execute lessons top to bottom and write their outputs back")
    r.add_argument("names", nargs="*", help="lesson numbers or names, e.g. 1 or 01_bin (default: all)")
    r.add_argument("--fast", action="store_true", help="LESSONS_FAST=1: small data, few epochs")
    r.add_argument("--timeout", type=int, default=900, help="seconds per cell (0: no limit)")
    r.add_argument("--no-write", action="store_true", help="do not write outputs back")
    a = p.parse_args(argv)
    try:
        paths = find_lessons(getattr(a, "names", None))
    except ValueError as e:
        p.error(str(e))
    if a.action == "list":
        for path in paths:
            print(path.stem)
        return 0
    rows = []
    for path in paths:
        print(f"running {path.name} ({'fast' if a.fast else 'normal'} mode) ...", flush=True)
        try:
            row = run_notebook(path, fast=a.fast, timeout=a.timeout, write=not a.no_write)
        except KeyboardInterrupt:
            print(f"\ninterrupted: {path.name} stopped, its notebook left as it was", file=sys.stderr)
            if rows:
                _print_table(rows)
            return 130  # the shell's code for Ctrl-C
        rows.append(row)
        status = "ok" if row["error"] is None else f"ERROR: {row['error']} (outputs not written)"
        print(f"  {row['seconds']:7.1f} s   peak {row['peak_mb']:7.0f} MB   {status}", flush=True)
    _print_table(rows)
    return 0 if all(row["error"] is None for row in rows) else 1
