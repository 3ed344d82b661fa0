"""The command line: `python -m analysis <command> ...`.

Each command is a function `f(argv) -> exit code` in the module that owns it, imported only
when it runs, so that `python -m analysis --help` stays instant.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "train": ("analysis.training:cli", "train a model and write a run folder"),
    "data": ("analysis.data:cli", "list the datasets (offline and downloadable); fetch one"),
    "lessons": ("analysis.lessons:cli", "execute the lesson notebooks (lessons run [NAMES] [--fast])"),
    "ptq": ("analysis.clipping:ptq_cli", "post-training quantization of a trained run (ACIQ)"),
}
GROUPS = {
    "bench": {
        "train": "analysis.bench:train",
        "widgets": "analysis.bench:widgets",
        "dashboards": "analysis.bench:dashboards",
        "xnor": "analysis.bench:xnor",
        "bnn-inference": "analysis.bench:bnn_inference",
        "diffusion": "analysis.bench:diffusion",
        "minima": "analysis.bench:minima",
        "margin": "analysis.bench:margin",
    },
    "experiment": {
        "large-batch": "analysis.diffusion:experiment_cli",
        "minima": "analysis.landscape:experiment_cli",
    },
}
GROUP_HELP = {"bench": "benchmarks: two things timed side by side, and their ratio",
              "experiment": "the papers' experiments, with tables and figures"}


def _run(target: str, argv: list[str], name: str) -> int:
    """Run the command `name`; Ctrl-C and a file-system error (a folder that is a file, no
    permission, a full disk) end it with one line on stderr, not a traceback."""
    module, func = target.split(":")
    try:
        return int(getattr(importlib.import_module(module), func)(argv) or 0)
    except KeyboardInterrupt:
        print(f"\ninterrupted (Ctrl-C): python -m analysis {name} stopped", file=sys.stderr)
        return 130  # the shell's code for Ctrl-C, as `lessons run` and the experiments return
    except OSError as e:
        print(f"python -m analysis {name}: error: {e}", file=sys.stderr)
        return 1


def _usage() -> str:
    lines = ["usage: python -m analysis <command> [options]   (<command> --help for more)", ""]
    for name, (_, text) in COMMANDS.items():
        lines.append(f"  {name:<12} {text}")
    for group, subs in GROUPS.items():
        lines.append(f"  {group:<12} {GROUP_HELP[group]}: {' | '.join(subs)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """`python -m analysis COMMAND …` (and the `bits-and-bias` script): run COMMAND → exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd in COMMANDS:
        return _run(COMMANDS[cmd][0], rest, cmd)
    if cmd in GROUPS:
        subs = GROUPS[cmd]
        usage = f"usage: python -m analysis {cmd} {{{','.join(subs)}}} [options]"
        if rest and rest[0] in ("-h", "--help"):
            print(usage)
            return 0
        if not rest or rest[0] not in subs:
            # as argparse does for a missing or unknown subcommand: stderr, exit 2
            what = f"unknown {cmd} {rest[0]!r}" if rest else f"{cmd} needs one of: {', '.join(subs)}"
            print(f"{usage}\nerror: {what}", file=sys.stderr)
            return 2
        return _run(subs[rest[0]], rest[1:], f"{cmd} {rest[0]}")
    print(f"unknown command {cmd!r}\n\n{_usage()}", file=sys.stderr)
    return 2
