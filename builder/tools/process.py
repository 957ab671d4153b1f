"""The one place builder starts processes: echo, capture, turn failure into ToolError."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from builder.errors import ToolError

VERBOSE = bool(os.environ.get("BUILDER_VERBOSE"))


def run(
    args: Sequence[str | Path],
    *,
    tool: str,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    check: bool = True,
    timeout: float | None = None,
    inherit: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a tool, capturing its output; show it only on failure or when verbose.

    `env` is added to os.environ, or replaces it when `inherit` is False.
    """
    argv = [str(a) for a in args]
    if VERBOSE:
        print("+ " + shlex.join(argv), file=sys.stderr)
    full_env = {**(os.environ if inherit else {}), **(env or {})}
    try:
        proc = subprocess.run(argv, env=full_env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise ToolError(f"{tool}: program not found: {argv[0]}") from None
    except subprocess.TimeoutExpired:
        raise ToolError(f"{tool}: no answer within {timeout:.0f} s: {shlex.join(argv[:4])} ...") from None
    if VERBOSE and proc.stdout:
        sys.stderr.write(proc.stdout)
    if check and proc.returncode != 0:
        raise ToolError(f"{tool} failed (exit {proc.returncode}): {last_lines(proc.stderr or proc.stdout)}")
    return proc


def last_lines(text: str, n: int = 3) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-n:]) if lines else "(no output)"
