"""`stems`: command-line entry of the frozen runtime (also `python -m runtime_entry`).

Arguments are parsed and thread variables exported before anything imports torch.
Only the named command's module is imported (`stems selftest` never loads bench's
POSIX-only imports); the others appear in the parser by name and help alone.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, NoReturn

from . import __version__, config
from .cli_common import EXIT_FAILED, AddFlags, CommandModule, add_runtime_flags
from .errors import Cancelled, Interrupted, StemsError, as_stems_error
from .interrupts import INTERRUPTS

if TYPE_CHECKING:
    from .cli_common import SubParsers

# the command index: name -> one-line help (each module's own parser repeats it)
COMMANDS = {
    "selftest": "report versions, threads and OpenMP runtimes in this process",
    "separate": "separate audio files into stems",
    "worker": "serve separation jobs as JSON lines on stdin/stdout",
    "bench": "separate generated audio; report real-time factor, s/chunk, CPU, memory",
    "doctor": "say why this runtime is slow on this machine, against the build's fingerprint",
}
# What the parent gave this process, before `_run` exports the runtime's settings: `stems doctor`
# in a venv compares them (frozen, the freeze's probe has recorded them earlier still).
ENV_AT_START = dict(os.environ)


def _cpu_mask() -> list[int] | None:
    if sys.platform == "linux":
        return sorted(os.sched_getaffinity(0))
    else:
        return None


CPU_MASK_AT_START = _cpu_mask()


class _Selftest:
    """selftest.py has only `run`; its flags are defined here."""

    @staticmethod
    def add_parser(sub: SubParsers, add_flags: AddFlags, /) -> None:
        p = sub.add_parser("selftest", help=COMMANDS["selftest"])
        p.add_argument("--json", action="store_true", help="print one JSON object")
        add_flags(p)

    @staticmethod
    def run(args: argparse.Namespace, cfg: config.RuntimeConfig, /) -> int:
        from .selftest import run

        return run(args, cfg)


def command_module(name: str) -> CommandModule:
    # one plain import per command, so that the freeze's analysis sees every module
    if name == "separate":
        from . import separate

        return separate
    if name == "worker":
        from . import worker

        return worker
    if name == "bench":
        from . import bench

        return bench
    if name == "doctor":
        from . import doctor

        return doctor
    return _Selftest()


class _Parser(argparse.ArgumentParser):
    """A usage error is one line (what is wrong, where to look), not argparse's usage block; exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser(command: str | None) -> tuple[argparse.ArgumentParser, CommandModule | None]:
    """The parser, complete for `command` (when it is one of COMMANDS), and that command's module."""
    parser: argparse.ArgumentParser = _Parser(prog="stems", description="Stem separation runtime.")
    parser.add_argument("--version", action="version", version=f"stems {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)  # subparsers are _Parser too (type(self))
    module = command_module(command) if command is not None and command in COMMANDS else None
    for name, text in COMMANDS.items():
        if name == command and module is not None:
            module.add_parser(sub, add_runtime_flags)
        else:
            sub.add_parser(name, help=text)
    return parser, module


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # the top level has no options that take a value: the first other word is the command
    named = next((a for a in argv if not a.startswith("-")), None)
    parser, module = build_parser(named)
    args = parser.parse_args(argv)
    if module is None:  # parse_args has already exited for a missing or unknown command
        parser.error("a command is required")
    # from here SIGINT and SIGTERM end every command the same way (interrupts.py)
    INTERRUPTS.install(raise_at_once=args.command != "worker")
    try:
        return _run(module, args)
    except Interrupted as exc:  # partial stems are already removed on the way here
        print(f"stems: {exc}; partial files removed", file=sys.stderr)
        return exc.exit_code


def _run(module: CommandModule, args: argparse.Namespace) -> int:
    try:
        cfg = config.resolve(
            threads=getattr(args, "threads", None),
            interop_threads=getattr(args, "interop_threads", None),
            precision=getattr(args, "precision", None),
        )
    except StemsError as exc:  # a bad runtime config or runtime flag: one line, before torch
        print(f"stems: error: {exc}", file=sys.stderr)
        return exc.exit_code
    config.prepare_environment(cfg)
    try:
        return module.run(args, cfg)
    except StemsError as exc:
        print(f"stems: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("stems: interrupted", file=sys.stderr)
        return Cancelled.exit_code
    except Exception as exc:  # one line, no traceback (STEMS_DEBUG=1 shows it)
        if (known := as_stems_error(exc)) is not None:  # an allocation failure: out of memory
            print(f"stems: error: {known}", file=sys.stderr)
            return known.exit_code
        if os.environ.get("STEMS_DEBUG"):
            raise
        print(f"stems: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED
