"""One measured run of a subject, in fresh processes, and the rounds that pair two subjects.

Each run starts the runtime twice, as a user's app would, and reads its JSON:
  1. a startup probe, `selftest --json` under `-X importtime` (venvs): time to ready
     (process start to the first JSON line), import time by module, threads, OpenMP;
  2. `bench --json`: separation wall time, real-time factor, seconds per chunk.
The process figures come from the runner (take/runner.py). A run is a dict of figures: its
keys differ by runtime (a workload, a frozen program, an older runtime) and are published in
the bench schema (builder/schemas/bench.schema.json) rather than typed here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from builder.contract import require
from builder.errors import CheckError, ToolError
from builder.log import Log
from builder.measure.take.importtime import import_summary, parse_importtime
from builder.measure.take.metrics import usable
from builder.measure.take.runner import DEFAULT_STALL, DEFAULT_TIMEOUT, ProcessResult, run_monitored, window
from builder.measure.take.subject import Subject
from builder.measure.take.workload import measure_workload

DEFAULT_MODEL = "tiny"
DEFAULT_SECONDS = 1.0
# What compare, bisect and tune measure by default: a small real model (two threads share its
# matmuls, where tiny's are barriers), on audio sized from the warm-up runs so that the faster
# side separates for at least SEPARATION_TARGET_S: each run's figure is the job, not start-up.
DECISION_MODEL = "small"
SEPARATION_TARGET_S = 2.5
SIZED_SECONDS = (2.0, 120.0)  # the sized audio's bounds
# A run is "single-threaded" when it keeps fewer cores than this busy with >= 2 threads asked for.
SINGLE_THREAD_CORES = 1.25

Run = dict[str, Any]


def _json_line(res: ProcessResult, what: str) -> dict[str, Any]:
    for line in res.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                doc: dict[str, Any] = json.loads(line)
            except json.JSONDecodeError:
                break
            return doc
    errors = [ln for ln in res.stderr.splitlines() if not ln.startswith("import time:")]
    tail = " | ".join(ln.strip() for ln in errors[-3:] if ln.strip()) or "(no output)"
    raise ToolError(
        f"runtime {what} printed no JSON (exit {res.returncode}): {tail}",
        hint="a runtime built before `stems bench` existed needs a rebuild"
        if "invalid choice" in tail
        else None,
    )


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    seconds: float | None = DEFAULT_SECONDS  # None: sized from the warm-up runs (sized_options)
    model: str = DEFAULT_MODEL
    timeout: float = DEFAULT_TIMEOUT
    stall: float = DEFAULT_STALL
    startup: bool = True  # the selftest probe (time to ready, imports, OpenMP)
    separation: bool = True  # the bench process


def _probe(
    rt: Subject, argv: list[str], what: str, opts: RunOptions, run: Run
) -> tuple[Any, dict[str, Any] | None]:
    """Run one process of a run; on a hang, no JSON or JSON that breaks the contract, note it in
    `run` and return None (`what` is the command, and the name of its schema)."""
    res = run_monitored(argv, env=rt.env, timeout=opts.timeout, stall=opts.stall)
    if res.killed:
        run["hung"] = f"{what}: {res.killed}"
        return res, None
    try:
        doc = _json_line(res, what)
        require(doc, what, what=f"runtime {what}")
    except (ToolError, CheckError) as exc:
        run["failed"] = exc.one_line()
        return res, None
    return res, doc


def startup_figures(res: ProcessResult, st: Mapping[str, Any], importtime: bool) -> Run:
    """What the selftest process gives (pure): time to ready, imports, threads, OpenMP."""
    imports = import_summary(parse_importtime(res.stderr)) if importtime else None
    return {
        "startup_s": round(res.first_output_s or res.wall_s, 4),
        "import_s": imports["total_s"] if imports else st.get("torch_import_seconds"),
        "import_source": "-X importtime" if imports else "selftest torch_import_seconds (frozen program)",
        "imports": imports,
        "threads": st.get("threads"),
        "matmul_precision": st.get("matmul_precision"),
        "env": st.get("env"),
        "openmp_loaded": st.get("openmp"),
        "threadpools": st.get("threadpools"),
        "versions": st.get("versions"),
        "config_source": st.get("config_source"),
    }


def separation_figures(res: ProcessResult, b: Mapping[str, Any]) -> Run:
    """What the bench process gives (pure). Cores busy during separation are builder's own figure
    (psutil, the same on every system): the window of `wall_seconds` that ends with the JSON line."""
    threads = (b.get("threads") or {}).get("intra_op")
    sep = b.get("wall_seconds")
    fig = window(res.samples, res.last_output_s, float(sep)) if sep and res.last_output_s else None
    cores = fig.cores_busy if fig else b.get("cpu_cores_busy")
    return {
        "separation_s": sep,
        "total_s": round(res.wall_s, 4),
        "rtf": b.get("realtime_factor"),
        # the median of the run's chunk times: a chunk slowed by another process moves it little
        "chunk_s": b.get("median_chunk_seconds"),
        "chunk_times": b.get("chunk_seconds"),
        "seconds_per_chunk": b.get("seconds_per_chunk"),
        "chunks": b.get("chunks"),
        "audio_seconds": b.get("audio_seconds"),
        "cores_busy": cores,
        "cores_busy_source": "builder (psutil)" if fig else "runtime (its own CPU time)",
        "cores_busy_runtime": b.get("cpu_cores_busy"),
        "busy_threads": fig.busy_threads if fig else None,
        "thread_shares": list(fig.thread_shares[:8]) if fig else None,
        "cpu_utilisation": b.get("cpu_utilisation"),
        "process_cpu_s": round(res.cpu_s, 3) if res.cpu_s is not None else None,
        "peak_rss_mb": res.peak_rss_mb or b.get("peak_rss_mb"),
        "os_threads": res.os_threads,
        "bench_threads": b.get("threads"),
        "bench_precision": b.get("matmul_precision"),
        "single_threaded": bool(
            threads and threads >= 2 and cores is not None and cores < SINGLE_THREAD_CORES
        ),
    }


def measure_once(rt: Subject, opts: RunOptions) -> Run:
    """One run: a startup probe and a bench process, each fresh. Never raises on a hang."""
    if rt.workload is not None:  # the profile's own command, measured from outside with the probe
        return measure_workload(
            list(rt.argv), dict(rt.env), rt.workload, timeout=opts.timeout, stall=opts.stall
        )
    run: Run = {"hung": None}
    if opts.startup:
        argv = rt.command("selftest", "--json", importtime=rt.importtime)
        res, st = _probe(rt, argv, "selftest", opts, run)
        if st is None:
            return run
        run.update(startup_figures(res, st, rt.importtime))
    if opts.separation:
        args = ["bench", "--json", "--model", opts.model]
        args += ["--seconds", f"{opts.seconds:g}"] if opts.seconds is not None else []
        res, b = _probe(rt, rt.command(*args), "bench", opts, run)
        if b is None:
            return run
        run.update(separation_figures(res, b))
    return run


def describe_run(run: Mapping[str, Any]) -> str:
    """One run as a progress line (the log's, while measuring; the reports are show/'s)."""
    if run.get("hung"):
        return f"KILLED: {run['hung']}"
    if run.get("failed"):
        return f"FAILED: {run['failed']}"
    bits = []
    if run.get("startup_s") is not None:
        bits.append(f"ready {run['startup_s']:.2f} s")
    if run.get("import_s") is not None:
        bits.append(f"imports {run['import_s']:.2f} s")
    if run.get("separation_s") is not None:
        bits.append(f"separation {run['separation_s']:.2f} s (RTF {run['rtf']})")
        bits.append(f"{run['cores_busy']} cores busy, {run['peak_rss_mb']} MB, {run['os_threads']} threads")
    elif run.get("total_s") is not None:  # a workload ([bench].command): the whole process
        bits.append(f"job {run['total_s']:.2f} s (RTF {run['rtf']})")
        bits.append(f"{run['cores_busy']} cores busy, {run['peak_rss_mb']} MB, {run['os_threads']} threads")
    if run.get("single_threaded"):
        bits.append("SINGLE-THREADED")
    return ", ".join(bits)


def sized_options(opts: RunOptions, warm: Sequence[Mapping[str, Any]]) -> RunOptions:
    """Options with the audio length fixed: as given, or sized so that the fastest warm-up run's
    separation would last SEPARATION_TARGET_S (pure). Both sides then separate the same audio.

    >>> sized_options(RunOptions(seconds=None), [{"separation_s": 1.2, "audio_seconds": 2.0}]).seconds
    4.5
    """
    if opts.seconds is not None:
        return opts
    rates = [
        float(r["separation_s"]) / float(r["audio_seconds"])
        for r in warm
        if usable(r) and r.get("separation_s") and r.get("audio_seconds")
    ]
    lo, hi = SIZED_SECONDS
    if not rates:
        return replace(opts, seconds=lo)
    seconds = math.ceil(2 * SEPARATION_TARGET_S / min(rates)) / 2  # to the half second
    return replace(opts, seconds=min(max(seconds, lo), hi))


def warm_up(subjects: Sequence[Subject], opts: RunOptions, log: Log) -> tuple[RunOptions, list[Run]]:
    """One run of each (not counted): files in the page cache, then the workload sized from them."""
    log.line(f"    warm-up: one run of {'each' if len(subjects) > 1 else subjects[0].label} (not counted)")
    warm = [measure_once(rt, opts) for rt in subjects]
    sized = sized_options(opts, warm)
    if opts.seconds is None:
        log.line(f"    workload: {sized.seconds:g} s of audio per run (sized from the warm-up: "
                 f"~{SEPARATION_TARGET_S:g} s of separation on the faster side)")  # fmt: skip
    return sized, warm


def one_round(a: Subject, b: Subject, i: int, *, opts: RunOptions, log: Log, of: str = "") -> tuple[Run, Run]:
    """Round i: A then B, or B then A for odd i (the order alternates against drift)."""
    order = [(a, "A"), (b, "B")]
    if i % 2:
        order.reverse()
    runs: dict[str, Run] = {}
    for rt, name in order:
        run = measure_once(rt, opts)
        run["index"], run["order"] = i, "".join(n for _, n in order)
        runs[name] = run
        log.line(f"    round {i + 1}{of} {name} ({rt.label}): {describe_run(run)}")
    return runs["A"], runs["B"]
