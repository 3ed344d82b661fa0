"""Nothing lost when a run is interrupted: files written atomically, and experiments resumed.

A file is written to `NAME.tmp` beside it and renamed over it (`os.replace`), so a crash leaves
the old file or the new one, never half of one. A long experiment (`python -m analysis
experiment large-batch`, `... minima`) writes what it has finished, after each unit, to a
partial file in its output folder, with the settings that made it and a fingerprint of the code
(`code_version`); the same command reads it back (`load_partial`) and runs only the rest. A
partial file made with other settings, or by other code (after a `git pull` or an edit), is
refused: its rows and the new ones would not come from the same experiment.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

__all__ = ["write_text_atomic", "write_json_atomic", "code_version", "load_partial", "interrupted"]

PACKAGE = Path(__file__).parent
PRESENTATION = ("plots", "widgets")  # draw or show results, never compute them


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` (UTF-8) to `path` through a temporary file in the same folder and a rename.
    A write that fails (a full disk, Ctrl-C) leaves `path` as it was and no temporary file."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, obj, indent: int | None = None) -> None:
    """`obj` as JSON at `path`, written whole or not at all (`write_text_atomic`)."""
    write_text_atomic(path, json.dumps(obj, indent=indent))


def code_version(package: Path = PACKAGE) -> str:
    """A fingerprint of the code that computes results: the SHA-256 (12 hex digits) of every
    .py file of the package but those under plots/ and widgets/, with their paths."""
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package)
        if rel.parts[0] in PRESENTATION:
            continue
        digest.update(rel.as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def load_partial(path: Path, identity: dict, p) -> dict | None:
    """What an interrupted run kept in the partial file `path` ({"identity": settings, ...}),
    or None if there is none; an argparse error (parser `p`) if other settings, or other code
    (the key "code": `code_version()`), made it."""
    if not path.exists():
        return None
    try:
        kept = json.loads(path.read_text())
        if not isinstance(kept.get("identity"), dict):
            raise ValueError("no 'identity' of the run in it")
    except (ValueError, AttributeError) as e:
        p.error(f"cannot read {path} ({e}); remove it to start again")
    identity = json.loads(json.dumps(identity))  # tuples → lists, as read back from JSON
    if kept["identity"].get("code") != identity.get("code"):
        p.error(f"{path} holds an unfinished run made by other code (version "
                f"{kept['identity'].get('code')}, this is {identity.get('code')}): its results and "
                f"new ones would not be comparable; remove it to start again, or choose another --out")
    for key in sorted(identity.keys() | kept["identity"].keys()):
        if kept["identity"].get(key) != identity.get(key):
            p.error(f"{path} holds an unfinished run with {key} = {kept['identity'].get(key)!r}, "
                    f"not {identity.get(key)!r}: run with its settings to resume it, or choose "
                    f"another --out")
    return kept


def interrupted(partial: Path, total: int, unit: str) -> int:
    """After Ctrl-C: one line on stderr (how many `unit`s of `total` the partial file keeps,
    and how to go on); returns 130, the shell's code for Ctrl-C."""
    kept = len(json.loads(partial.read_text())["rows"]) if partial.exists() else 0
    where = f", kept in {partial}" if kept else ""
    print(f"\ninterrupted: {kept} of {total} {unit} done{where}; run the same command to go on",
          file=sys.stderr)
    return 130
