import argparse
import errno
import json
import os
from pathlib import Path

import pytest

from analysis.partial import code_version, load_partial, write_json_atomic, write_text_atomic


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


def test_code_version_follows_the_code_that_computes_results(tmp_path):
    """An edit to a computing module changes the fingerprint; one to plots/ or widgets/ does not."""
    pkg = tmp_path / "analysis"
    for rel in ("quant.py", "landscape/train.py", "plots/landscape.py", "widgets/margin.py"):
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(f"# {rel}\n")
    before = code_version(pkg)
    assert len(before) == 12 and code_version(pkg) == before
    (pkg / "plots/landscape.py").write_text("# another colour\n")
    (pkg / "widgets/margin.py").write_text("# another slider\n")
    assert code_version(pkg) == before
    (pkg / "landscape/train.py").write_text("# another step size\n")
    assert code_version(pkg) != before
    assert len(code_version()) == 12  # the installed package


def test_a_partial_run_of_other_code_is_refused(tmp_path, capsys):
    """Rows kept by other code (a git pull between Ctrl-C and the resume) would be mixed with new
    ones in silence: the resume stops and says why; the same code and settings resume."""
    p = argparse.ArgumentParser(prog="minima")
    partial = tmp_path / "minima.partial.json"
    write_json_atomic(partial, {"identity": {"runs": 100, "code": "0123456789ab"}, "rows": [{"d1": 1}]})
    assert load_partial(partial, {"runs": 100, "code": "0123456789ab"}, p)["rows"] == [{"d1": 1}]
    with pytest.raises(SystemExit):
        load_partial(partial, {"runs": 100, "code": "ba9876543210"}, p)
    err = capsys.readouterr().err
    assert "made by other code (version 0123456789ab, this is ba9876543210)" in err
    assert "remove it to start again" in err
    assert json.loads(partial.read_text())["rows"] == [{"d1": 1}]  # refused, not removed


@pytest.mark.parametrize("text", ["[1, 2]", '{"rows": []}', "{half"])
def test_a_partial_file_without_an_identity_is_a_clear_error(tmp_path, capsys, text):
    """A file of the name that is not a run's partial file: one argparse error, no traceback."""
    partial = tmp_path / "results.partial.json"
    partial.write_text(text)
    with pytest.raises(SystemExit):
        load_partial(partial, {"code": code_version()}, argparse.ArgumentParser(prog="large-batch"))
    assert f"cannot read {partial}" in capsys.readouterr().err


def test_code_version_follows_the_paths_of_the_files_too(tmp_path):
    """The fingerprint covers each file's path with its bytes: the same code moved to another
    module is other code."""
    pkg = tmp_path / "analysis"
    pkg.mkdir()
    (pkg / "quant.py").write_text("x = 1\n")
    before = code_version(pkg)
    (pkg / "quant.py").rename(pkg / "quant2.py")
    assert code_version(pkg) != before


def test_ctrl_c_during_a_write_leaves_the_old_file_and_no_temporary_file(tmp_path, monkeypatch):
    """Ctrl-C (a KeyboardInterrupt, not an Exception) mid-write: the old file stays, no NAME.tmp."""
    path = tmp_path / "results.json"
    write_text_atomic(path, "old")

    def interrupted_write(self, text, *args, **kwargs):
        Path.write_bytes(self, text[:3].encode())
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "write_text", interrupted_write)
    with pytest.raises(KeyboardInterrupt):
        write_text_atomic(path, "new contents")
    monkeypatch.undo()
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_a_partial_run_is_resumed_only_with_exactly_its_settings(tmp_path, capsys):
    """A setting the kept run had and the new one lacks is refused too; tuples compare equal to
    the lists JSON reads back."""
    p = argparse.ArgumentParser(prog="minima")
    partial = tmp_path / "minima.partial.json"
    write_json_atomic(partial, {"identity": {"code": "c", "widths": [1, 2], "seed": 0}, "rows": []})
    assert load_partial(partial, {"code": "c", "widths": (1, 2), "seed": 0}, p)["rows"] == []
    with pytest.raises(SystemExit):
        load_partial(partial, {"code": "c", "widths": (1, 2)}, p)
    assert "with seed = 0, not None" in capsys.readouterr().err
