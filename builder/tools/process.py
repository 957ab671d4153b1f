"""The one place builder starts processes: echo, capture, turn failure into ToolError."""

from __future__ import annotations

import contextlib
import os
import queue
import shlex
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
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


def stream(
    args: Sequence[str | Path],
    *,
    tool: str,
    on_line: Callable[[str], None],
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    on_idle: Callable[[], None] | None = None,
    idle_s: float = 2.0,
    log_file: Path | None = None,
) -> None:
    """Run a tool whose output is its progress: each line of stdout and stderr (merged) goes to
    `on_line` as it comes, and `on_idle` runs every `idle_s` seconds while the tool is silent.

    The whole output is kept in `log_file` when given; a failure raises ToolError with its last lines.
    """
    argv = [str(a) for a in args]
    if VERBOSE:
        print("+ " + shlex.join(argv), file=sys.stderr)
    try:
        proc = subprocess.Popen(
            argv, env={**os.environ, **(env or {})}, cwd=cwd, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, errors="replace", bufsize=1,
        )  # fmt: skip
    except FileNotFoundError:
        raise ToolError(f"{tool}: program not found: {argv[0]}") from None
    with proc:
        try:
            tail = _follow(proc, on_line, on_idle, idle_s, log_file)
        except BaseException:
            proc.kill()  # a progress callback failed or the user pressed Ctrl-C: do not leave it running
            raise
    if proc.returncode != 0:
        raise ToolError(f"{tool} failed (exit {proc.returncode}): {last_lines(''.join(tail))}")


def _follow(
    proc: subprocess.Popen[str],
    on_line: Callable[[str], None],
    on_idle: Callable[[], None] | None,
    idle_s: float,
    log_file: Path | None,
) -> deque[str]:
    """Hand each line of proc's output to on_line until it ends; return its last lines."""
    # A reader thread, so that `on_idle` runs on time while the tool prints nothing.
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_pump, args=(proc, lines), daemon=True).start()
    tail: deque[str] = deque(maxlen=40)
    with log_file.open("w", encoding="utf-8") if log_file else contextlib.nullcontext() as saved:
        while True:
            try:
                line = lines.get(timeout=idle_s)
            except queue.Empty:
                if on_idle is not None:
                    on_idle()
                continue
            if line is None:
                return tail
            tail.append(line)
            if saved is not None:
                saved.write(line)
            if VERBOSE:
                sys.stderr.write(line)
            on_line(line.rstrip("\n"))


def _pump(proc: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.put(line)
    lines.put(None)


def last_lines(text: str, n: int = 3) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-n:]) if lines else "(no output)"
