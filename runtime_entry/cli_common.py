"""What every `stems` command shares: the runtime flags, JSON on stdout, exit codes.

Command modules import this, never `main`; `main` only sequences the commands.
"""

from __future__ import annotations

import argparse
import json
import re
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


_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape_surrogate(m: re.Match[str]) -> str:
    code = ord(m.group())
    # U+DC80..U+DCFF: a byte of a file name that is not UTF-8 (Python's surrogateescape)
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"


def strict_text(data: object) -> object:
    """`data` with every string valid Unicode: a byte of a file name that is not UTF-8 becomes
    the four characters `\\xHH` (its value in hex), any other lone surrogate `\\uHHHH`. JSON
    output then never holds a lone surrogate, which strict UTF-8 clients refuse."""
    if isinstance(data, str):
        return _SURROGATE.sub(_escape_surrogate, data)
    if isinstance(data, dict):
        return {strict_text(k): strict_text(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [strict_text(v) for v in data]
    return data


def json_line(data: object) -> str:
    """One line of JSON for stdout (no newline): keys sorted, strings made valid (strict_text)."""
    return json.dumps(strict_text(data), sort_keys=True)


def print_json(data: object) -> None:
    sys.stdout.write(json_line(data) + "\n")
    sys.stdout.flush()
