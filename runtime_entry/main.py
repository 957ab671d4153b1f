"""`stems`: command-line entry of the frozen runtime (also `python -m runtime_entry`).

Arguments are parsed and thread variables exported before anything imports
torch; each command imports what it needs only when it runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence

from . import __version__, config
from .errors import Cancelled, StemsError

# Each command module adds its subparser and returns the function that runs it.
Command = Callable[[argparse.Namespace, config.RuntimeConfig], int]
EXIT_USAGE = 2
EXIT_FAILED = 1


def add_runtime_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=int, help="intra-op threads (default: runtime config, else all CPUs)")
    p.add_argument("--interop-threads", type=int, help="inter-op threads")
    p.add_argument("--precision", choices=config.PRECISIONS, help="float32 matmul precision")


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, Command]]:
    parser = argparse.ArgumentParser(prog="stems", description="Stem separation runtime.")
    parser.add_argument("--version", action="version", version=f"stems {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    commands: dict[str, Command] = {}

    p = sub.add_parser("selftest", help="report versions, threads and OpenMP runtimes in this process")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_runtime_flags(p)
    from .selftest import run as selftest_run

    commands["selftest"] = selftest_run

    from . import bench, separate, worker

    separate.add_parser(sub, add_runtime_flags)
    commands["separate"] = separate.run
    worker.add_parser(sub, add_runtime_flags)
    commands["worker"] = worker.run
    bench.add_parser(sub, add_runtime_flags)
    commands["bench"] = bench.run
    return parser, commands


def main(argv: Sequence[str] | None = None) -> int:
    parser, commands = build_parser()
    args = parser.parse_args(argv)
    try:
        cfg = config.resolve(
            threads=getattr(args, "threads", None),
            interop_threads=getattr(args, "interop_threads", None),
            precision=getattr(args, "precision", None),
        )
    except ValueError as exc:
        print(f"stems: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    config.prepare_environment(cfg)
    try:
        return commands[args.command](args, cfg)
    except StemsError as exc:
        print(f"stems: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("stems: interrupted", file=sys.stderr)
        return Cancelled.exit_code
    except Exception as exc:  # one line, no traceback (STEMS_DEBUG=1 shows it)
        if os.environ.get("STEMS_DEBUG"):
            raise
        print(f"stems: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED


def print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, sort_keys=True) + "\n")
    sys.stdout.flush()
