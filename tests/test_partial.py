import errno
import os
from pathlib import Path

import pytest

from analysis.partial import write_json_atomic, write_text_atomic


def fill_the_disk(monkeypatch, room: int = 10):
    """From now on a text file opened for writing takes `room` characters, then fails with
    ENOSPC, as on a full disk."""
    real_open = Path.open

    class Full:
        def __init__(self, f):
            self.f = f

        def write(self, s):
            self.f.write(s[:room])
            self.f.flush()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def __getattr__(self, name):
            return getattr(self.f, name)

    def open_(self, mode="r", *args, **kwargs):
        f = real_open(self, mode, *args, **kwargs)
        return Full(f) if "w" in mode and "b" not in mode else f

    monkeypatch.setattr(Path, "open", open_)


def test_write_text_atomic_writes_utf8_and_replaces(tmp_path):
    path = tmp_path / "notes.md"
    write_text_atomic(path, "old")
    write_text_atomic(path, "‖w_t − w_0‖ ~ log t")
    assert path.read_bytes() == "‖w_t − w_0‖ ~ log t".encode()
    assert [p.name for p in tmp_path.iterdir()] == ["notes.md"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path, monkeypatch):
    """A full disk mid-write: the old file stays whole (it did), and the half-written NAME.tmp
    is removed (it was left beside it: results.json.tmp in an experiment's --out)."""
    path = tmp_path / "results.json"
    write_json_atomic(path, {"rows": [1, 2, 3]})
    before = path.read_text()
    fill_the_disk(monkeypatch)
    with pytest.raises(OSError, match="No space left on device"):
        write_json_atomic(path, {"rows": [1, 2, 3, 4]})
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]
