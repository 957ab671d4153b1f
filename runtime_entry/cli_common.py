"""What every `stems` command shares: the runtime flags, JSON on stdout, exit codes.

Command modules import this, never `main`; `main` only sequences the commands.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from . import config
from .errors import StemsError, UsageError

if TYPE_CHECKING:
    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]

EXIT_FAILED = StemsError.exit_code
EXIT_USAGE = UsageError.exit_code

AddFlags = Callable[[argparse.ArgumentParser], None]
Command = Callable[[argparse.Namespace, config.RuntimeConfig], int]


class CommandModule(Protocol):
    """A command's module: `add_parser` adds its subparser, `run` runs it."""

    def add_parser(self, sub: SubParsers, add_runtime_flags: AddFlags, /) -> None: ...

    def run(self, args: argparse.Namespace, cfg: config.RuntimeConfig, /) -> int: ...


def add_runtime_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=int, help="intra-op threads (default: runtime config, else all CPUs)")
    p.add_argument("--interop-threads", type=int, help="inter-op threads")
    p.add_argument("--precision", choices=config.PRECISIONS, help="float32 matmul precision")


def print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, sort_keys=True) + "\n")
    sys.stdout.flush()
