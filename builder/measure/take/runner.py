"""The one process runner and monitor for a measured runtime, on Linux, macOS and Windows.

Around each process builder measures what the runtime cannot lie about: wall time, CPU time
of the process and its children, CPU time per thread, the most OS threads it ran and its peak
memory, all from psutil, so every figure means the same on every system. It kills the whole
process tree when the process stops making progress (no CPU time and no output) or runs past
a limit.
"""

from __future__ import annotations

import itertools
import os
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import psutil

from builder.contract import runtime_environment
from builder.errors import ToolError

DEFAULT_TIMEOUT = 600.0
DEFAULT_STALL = 60.0
# How often the monitor samples: fine enough for a 0.3 s window, cheap enough not to be measured.
SAMPLE_INTERVAL = 0.05
# psutil finds children by scanning every process: too costly for every sample.
CHILDREN_INTERVAL = 0.5
# A thread "did the work" of a window when it was on a CPU at least this share of it.
BUSY_THREAD_SHARE = 0.2


# --- one monitored process ----------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Sample:
    """One look at the process: seconds since start, CPU seconds of the tree, per thread of the main process
    (and, when asked for, each thread's CPU affinity: Linux only)."""

    t: float
    cpu_s: float
    threads_cpu_s: Mapping[int, float] = field(default_factory=dict)
    threads_affinity: Mapping[int, tuple[int, ...]] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class ProcessResult:
    argv: tuple[str, ...]
    returncode: int | None
    stdout: str
    stderr: str
    wall_s: float
    first_output_s: float | None  # process start to the first stdout line
    last_output_s: float | None  # process start to the last stdout line
    cpu_s: float | None  # the process and every child seen
    peak_rss_mb: float | None  # the main process, sampled (and the OS's own peak where psutil has it)
    os_threads: int | None  # most threads seen at once
    thread_cpu_s: tuple[float, ...] = ()  # per thread of the main process, largest first
    samples: tuple[Sample, ...] = ()
    killed: str | None  # why it was killed (hang), or None
    pid: int | None = None
    started_epoch: float | None = None  # time.time() at the start: a sample's t + this is wall-clock time


def _clean_env(extra: Mapping[str, str]) -> dict[str, str]:
    return runtime_environment(extra, os.environ)


def affinity_of_thread(tid: int) -> tuple[int, ...] | None:
    """The CPUs one thread may run on (Linux); None elsewhere (psutil has no per-thread affinity)."""
    if sys.platform == "linux":
        try:
            return tuple(sorted(os.sched_getaffinity(tid)))
        except OSError:
            return None
    else:
        return None


def _cpu(times: Sequence[float]) -> float:
    # user + system; children_* are left out: every child is sampled on its own
    return float(times[0]) + float(times[1])


class _Monitor:
    """Samples a process tree with psutil. Keeps the last figure of each process and thread,
    so that what an exited child or thread used still counts."""

    def __init__(self, pid: int, *, affinity: bool = False) -> None:
        self.main = psutil.Process(pid)
        self.affinity = affinity
        self.affinity_by_thread: dict[int, tuple[int, ...]] = {}
        self.children: dict[tuple[int, float], psutil.Process] = {}
        self.cpu_by_proc: dict[tuple[int, float], float] = {}
        self.cpu_by_thread: dict[int, float] = {}
        self.max_threads: int | None = None
        self.peak_rss = 0
        self.os_peak_rss = 0
        self.next_children = 0.0

    def _key(self, p: psutil.Process) -> tuple[int, float]:
        try:
            return p.pid, p.create_time()
        except psutil.Error:
            return p.pid, 0.0

    def refresh_children(self) -> None:
        try:
            found = self.main.children(recursive=True)
        except psutil.Error:
            return
        for child in found:
            self.children.setdefault(self._key(child), child)

    def sample(self, now: float) -> bool:
        """Record one sample; False once the main process has exited (a zombie counts as exited)."""
        if now >= self.next_children:
            self.refresh_children()
            self.next_children = now + CHILDREN_INTERVAL
        alive = self._sample_main()
        for key, child in list(self.children.items()):
            try:
                self.cpu_by_proc[key] = _cpu(child.cpu_times())
            except psutil.Error:
                del self.children[key]  # gone: its last figure stays in cpu_by_proc
        return alive

    def _sample_main(self) -> bool:
        key = (self.main.pid, -1.0)  # never a child's key
        try:
            with self.main.oneshot():
                status = self.main.status()
                # A zombie's CPU times are final on Linux; elsewhere the call may refuse.
                self.cpu_by_proc[key] = _cpu(self.main.cpu_times())
                if status == psutil.STATUS_ZOMBIE:
                    return False
                mem = self.main.memory_info()
                self.peak_rss = max(self.peak_rss, int(mem.rss))
                if sys.platform == "win32":
                    # Windows keeps the process's own peak working set: exact, not sampled.
                    self.os_peak_rss = max(self.os_peak_rss, int(mem.peak_wset))
                n = self.main.num_threads()
                self.max_threads = max(self.max_threads or 0, n)
                for th in self.main.threads():
                    self.cpu_by_thread[th.id] = float(th.user_time) + float(th.system_time)
                    if self.affinity and (a := affinity_of_thread(th.id)) is not None:
                        self.affinity_by_thread[th.id] = a
        except psutil.Error:
            return False
        return True

    def tree_cpu(self) -> float:
        return sum(self.cpu_by_proc.values())

    def kill_tree(self) -> None:
        """Kill the process and every descendant, found before the parent dies (then they are orphans)."""
        self.refresh_children()
        victims = [self.main, *self.children.values()]
        for p in victims:
            try:
                p.kill()
            except psutil.Error:
                pass
        if sys.platform != "win32":
            import signal

            # Also whatever left the tree but not the session (a double fork): POSIX only.
            try:
                os.killpg(self.main.pid, signal.SIGKILL)
            except OSError:
                pass
        psutil.wait_procs(list(victims[1:]), timeout=5)


def _start(argv: tuple[str, ...], env: dict[str, str], cwd: Path | None) -> subprocess.Popen[str]:
    """The process in a group of its own, so that a hang is killed with everything it started."""
    try:
        if sys.platform == "win32":
            proc = subprocess.Popen(
                argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True, encoding="utf-8", errors="replace",
                creationflags=subprocess.CREATE_NEW_PROCESS_GROUP,
            )  # fmt: skip
        else:
            proc = subprocess.Popen(
                argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True, encoding="utf-8", errors="replace",
                start_new_session=True,  # its own process group, for killpg
            )  # fmt: skip
    except OSError as exc:
        raise ToolError(f"runtime: cannot start {argv[0]}: {exc.strerror}") from None
    return proc


class _Output:
    """stdout and stderr read on two threads, with when output came: the first and last stdout
    line (time to ready, the end of the separation) and the last line of either (a hang's clock)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.out: list[str] = []
        self.err: list[str] = []
        self.first: float | None = None
        self.last_out: float | None = None
        self.last: float = time.perf_counter()
        self.readers = [
            threading.Thread(target=self._pump, args=(proc.stdout, self.out, True), daemon=True),
            threading.Thread(target=self._pump, args=(proc.stderr, self.err, False), daemon=True),
        ]
        for r in self.readers:
            r.start()

    def _pump(self, stream: IO[str], sink: list[str], is_stdout: bool) -> None:
        for line in stream:
            now = time.perf_counter()
            if is_stdout and line.strip():
                if self.first is None:
                    self.first = now
                self.last_out = now
            self.last = now
            sink.append(line)

    def close(self) -> None:
        for r in self.readers:
            r.join(timeout=5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def _watch(
    mon: _Monitor, output: _Output, start: float, *, timeout: float, stall: float
) -> tuple[list[Sample], str | None]:
    """Sample the process tree until it ends; kill it on a hang: no output and no CPU time for
    `stall` seconds, or a run longer than `timeout`. (samples, why it was killed or None)"""
    samples: list[Sample] = []
    last_cpu, last_cpu_change = -1.0, time.perf_counter()
    while True:
        now = time.perf_counter()
        alive = mon.sample(now)
        cpu = mon.tree_cpu()
        samples.append(Sample(
            t=now - start, cpu_s=cpu, threads_cpu_s=dict(mon.cpu_by_thread),
            threads_affinity=dict(mon.affinity_by_thread),
        ))  # fmt: skip
        if not alive:
            return samples, None
        if cpu > last_cpu + 0.005:
            last_cpu, last_cpu_change = cpu, now
        idle_since = max(output.last or start, last_cpu_change)
        killed = None
        if now - start > timeout:
            killed = f"still running after {timeout:.0f} s (limit)"
        elif now - idle_since > stall:
            killed = f"no output and no CPU time for {stall:.0f} s (hung)"
        if killed:
            mon.kill_tree()
            return samples, killed
        time.sleep(SAMPLE_INTERVAL)


def run_monitored(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    timeout: float = DEFAULT_TIMEOUT,
    stall: float = DEFAULT_STALL,
    cwd: Path | None = None,
    inherit_env: bool = False,
    thread_affinity: bool = False,
) -> ProcessResult:
    """Run a runtime process to its end, or kill it (and its whole tree) when it hangs.

    A hang is no stdout/stderr output and no CPU time for `stall` seconds (a deadlock,
    a sleep), or a run longer than `timeout` (a spin). The one place builder runs a runtime.
    `env` is added to runtime_environment's cleaned one, or with `inherit_env` is the whole
    environment as given (the doctor's: what an app would pass down); `thread_affinity` samples
    each thread's CPU affinity too (Linux).
    """
    argv = tuple(str(a) for a in argv)
    if os.environ.get("BUILDER_VERBOSE"):
        print("+ " + shlex.join(argv), file=sys.stderr)
    start, started_epoch = time.perf_counter(), time.time()
    proc = _start(argv, dict(env) if inherit_env else _clean_env(env), cwd)
    output = _Output(proc)
    try:
        mon: _Monitor | None = _Monitor(proc.pid, affinity=thread_affinity)
    except psutil.NoSuchProcess:  # exited before the first look
        mon = None
    samples, killed = _watch(mon, output, start, timeout=timeout, stall=stall) if mon else ([], None)
    returncode = proc.wait()
    wall = time.perf_counter() - start
    output.close()
    peak = max(mon.peak_rss, mon.os_peak_rss) if mon else 0
    return ProcessResult(
        argv=argv,
        returncode=None if killed else returncode,
        stdout="".join(output.out),
        stderr="".join(output.err),
        wall_s=wall,
        first_output_s=(output.first - start) if output.first is not None else None,
        last_output_s=(output.last_out - start) if output.last_out is not None else None,
        cpu_s=mon.tree_cpu() if mon else None,
        peak_rss_mb=round(peak / 1048576, 1) if peak else None,
        os_threads=mon.max_threads if mon else None,
        thread_cpu_s=tuple(sorted(mon.cpu_by_thread.values(), reverse=True)) if mon else (),
        samples=tuple(samples),
        killed=killed,
        pid=proc.pid,
        started_epoch=started_epoch,
    )


# --- figures over a window (pure) -------------------------------------------------------


def _at(samples: Sequence[Sample], t: float, tid: int | None = None) -> float | None:
    """A cumulative figure at time t, interpolated between the samples around it."""

    def get(s: Sample) -> float:
        if tid is None:
            return s.cpu_s
        return s.threads_cpu_s.get(tid, 0.0)

    if not samples or t < samples[0].t or t > samples[-1].t:
        return None
    for a, b in itertools.pairwise(samples):
        if a.t <= t <= b.t:
            if b.t == a.t:
                return get(b)
            return get(a) + (get(b) - get(a)) * (t - a.t) / (b.t - a.t)
    return get(samples[-1])


def tree_cpu_at(samples: Sequence[Sample], t: float) -> float | None:
    """CPU seconds of the tree at t seconds since start, interpolated; None outside the samples."""
    return _at(samples, t)


@dataclass(frozen=True, kw_only=True)
class WindowFigures:
    """What the process did in one window (e.g. the separation inside `stems bench`)."""

    seconds: float
    cores_busy: float  # CPU seconds of the tree / wall seconds
    busy_threads: int  # threads on a CPU at least BUSY_THREAD_SHARE of the window
    thread_shares: tuple[float, ...]  # each thread's CPU seconds / wall seconds, largest first


def window(samples: Sequence[Sample], end: float, seconds: float) -> WindowFigures | None:
    """Figures for the `seconds` before `end` (seconds since start); None when the samples
    do not cover it (a run too short to sample, or no samples on this system)."""
    begin = end - seconds
    if seconds <= 0:
        return None
    c0, c1 = _at(samples, begin), _at(samples, end)
    if c0 is None or c1 is None:
        return None
    tids: set[int] = set()
    for s in samples:
        tids.update(s.threads_cpu_s)
    shares = []
    for tid in tids:
        a, b = _at(samples, begin, tid), _at(samples, end, tid)
        if a is not None and b is not None:
            shares.append(max(b - a, 0.0) / seconds)
    shares.sort(reverse=True)
    return WindowFigures(
        seconds=seconds,
        cores_busy=round(max(c1 - c0, 0.0) / seconds, 2),
        busy_threads=sum(1 for s in shares if s >= BUSY_THREAD_SHARE),
        thread_shares=tuple(round(s, 2) for s in shares),
    )
