"""The one process runner and monitor for a measured runtime.

Around each process builder measures what the runtime cannot lie about: wall time, CPU
time, peak memory and the most OS threads it ran, and it kills a process that stops making
progress (no CPU time and no output) or runs past a limit.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.contract import runtime_environment
from builder.errors import ToolError

DEFAULT_TIMEOUT = 600.0
DEFAULT_STALL = 60.0


# --- one monitored process ----------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ProcessResult:
    argv: tuple[str, ...]
    returncode: int | None
    stdout: str
    stderr: str
    wall_s: float
    first_output_s: float | None  # process start to the first stdout line
    cpu_s: float | None
    peak_rss_mb: float | None
    os_threads: int | None  # most threads seen at once
    killed: str | None  # why it was killed (hang), or None


def _clean_env(extra: Mapping[str, str]) -> dict[str, str]:
    return runtime_environment(extra, os.environ)


def _proc_sample(pid: int) -> tuple[int | None, float | None]:
    """(threads, cpu seconds) of a live process from /proc; (None, None) elsewhere."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        # after "(comm)": state is fields[0]; utime 11, stime 12, num_threads 17
        return int(fields[17]), (int(fields[11]) + int(fields[12])) / ticks
    except (OSError, ValueError, IndexError):
        return None, None


def run_monitored(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    timeout: float = DEFAULT_TIMEOUT,
    stall: float = DEFAULT_STALL,
    cwd: Path | None = None,
) -> ProcessResult:
    """Run a runtime process to its end, or kill it (and its group) when it hangs.

    A hang is no stdout/stderr output and no CPU time for `stall` seconds (a deadlock,
    a sleep), or a run longer than `timeout` (a spin). The one place builder runs a runtime.
    """
    argv = tuple(str(a) for a in argv)
    if os.environ.get("BUILDER_VERBOSE"):
        print("+ " + shlex.join(argv), file=sys.stderr)
    start = time.perf_counter()
    try:
        proc = subprocess.Popen(
            argv,
            env=_clean_env(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
    except OSError as exc:
        raise ToolError(f"runtime: cannot start {argv[0]}: {exc.strerror}") from None
    out: list[str] = []
    err: list[str] = []
    marks: dict[str, float | None] = {"first": None, "last": time.perf_counter()}

    def pump(stream: Any, sink: list[str], is_stdout: bool) -> None:
        for line in stream:
            now = time.perf_counter()
            if is_stdout and marks["first"] is None and line.strip():
                marks["first"] = now
            marks["last"] = now
            sink.append(line)

    readers = [
        threading.Thread(target=pump, args=(proc.stdout, out, True), daemon=True),
        threading.Thread(target=pump, args=(proc.stderr, err, False), daemon=True),
    ]
    for r in readers:
        r.start()
    max_threads: int | None = None
    last_cpu, last_cpu_change = -1.0, time.perf_counter()
    killed = None
    status = rusage = None
    while True:
        pid_done, st, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid_done:
            status, rusage = st, ru
            break
        now = time.perf_counter()
        threads, cpu = _proc_sample(proc.pid)
        if threads is not None:
            max_threads = max(max_threads or 0, threads)
        if cpu is not None and cpu > last_cpu + 0.005:
            last_cpu, last_cpu_change = cpu, now
        idle_since = max(marks["last"] or start, last_cpu_change)
        if now - start > timeout:
            killed = f"still running after {timeout:.0f} s (limit)"
        elif now - idle_since > stall:
            killed = f"no output and no CPU time for {stall:.0f} s (hung)"
        if killed:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            _, status, rusage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.05)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    for r in readers:
        r.join(timeout=5)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()
    first = marks["first"]
    return ProcessResult(
        argv=argv, returncode=None if killed else proc.returncode, stdout="".join(out), stderr="".join(err),
        wall_s=wall, first_output_s=(first - start) if first is not None else None,
        cpu_s=(rusage.ru_utime + rusage.ru_stime) if rusage else None,
        peak_rss_mb=round(rusage.ru_maxrss / 1024, 1) if rusage and sys.platform != "darwin"
        else (round(rusage.ru_maxrss / 1048576, 1) if rusage else None),
        os_threads=max_threads, killed=killed,
    )  # fmt: skip
