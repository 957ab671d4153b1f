"""Bench: measure a runtime (venv or frozen dist) in fresh processes.

Each run starts the runtime twice, as a user's app would, and reads its JSON:
  1. a startup probe, `selftest --json` under `-X importtime` (venvs): time to ready
     (process start to the first JSON line), import time by module, threads, OpenMP;
  2. `bench --json`: separation wall time, real-time factor, seconds per chunk.
The process figures come from the runner (measure/take/runner.py).
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
from builder.measure.judge.budget import check_budget, size_of
from builder.measure.judge.stats import spread
from builder.measure.take.importtime import import_summary, median_imports, parse_importtime
from builder.measure.take.runner import DEFAULT_STALL, DEFAULT_TIMEOUT, ProcessResult, run_monitored, window
from builder.measure.take.subject import Runtime
from builder.measure.take.workload import measure_workload
from builder.profile import Profile

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

# Per-run metrics, in seconds unless named otherwise: key -> (label, unit, lower is better)
METRICS: dict[str, tuple[str, str]] = {
    "startup_s": ("time to ready (selftest JSON)", "s"),
    "import_s": ("import time (all modules)", "s"),
    "separation_s": ("separation wall time", "s"),
    "total_s": ("bench process wall time", "s"),
    "rtf": ("real-time factor (wall / audio)", "x"),
    "chunk_s": ("separation, median seconds per chunk", "s"),
    "seconds_per_chunk": ("separation, seconds per chunk", "s"),
    "cores_busy": ("CPU cores busy during separation", "cores"),
    "peak_rss_mb": ("peak memory (bench process)", "MB"),
    "os_threads": ("OS threads (max seen)", ""),
}
# What `--metric` names in compare/bisect/tune mean.
METRIC_ALIASES = {
    "chunk": "chunk_s",
    "wall": "separation_s",
    "import": "import_s",
    "startup": "startup_s",
    "total": "total_s",
}


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


# --- one measured run ----------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    seconds: float | None = DEFAULT_SECONDS  # None: sized from the warm-up runs (sized_options)
    model: str = DEFAULT_MODEL
    timeout: float = DEFAULT_TIMEOUT
    stall: float = DEFAULT_STALL
    startup: bool = True  # the selftest probe (time to ready, imports, OpenMP)
    separation: bool = True  # the bench process


def _probe(
    rt: Runtime, argv: list[str], what: str, opts: RunOptions, run: dict[str, Any]
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


def measure_once(rt: Runtime, opts: RunOptions) -> dict[str, Any]:
    """One run: a startup probe and a bench process, each fresh. Never raises on a hang."""
    if rt.workload is not None:  # the profile's own command, measured from outside with the probe
        return measure_workload(
            list(rt.argv), dict(rt.env), rt.workload, timeout=opts.timeout, stall=opts.stall
        )
    run: dict[str, Any] = {"hung": None}
    if opts.startup:
        res, st = _probe(
            rt, rt.command("selftest", "--json", importtime=rt.importtime), "selftest", opts, run
        )
        if st is None:
            return run
        imports = import_summary(parse_importtime(res.stderr)) if rt.importtime else None
        run.update({
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
        })  # fmt: skip
    if opts.separation:
        args = ["bench", "--json", "--model", opts.model]
        args += ["--seconds", f"{opts.seconds:g}"] if opts.seconds is not None else []
        res, b = _probe(rt, rt.command(*args), "bench", opts, run)
        if b is None:
            return run
        threads = (b.get("threads") or {}).get("intra_op")
        # Cores busy during separation, measured by builder (psutil, the same on every system):
        # the separation is the window of `wall_seconds` that ends with the JSON line.
        sep = b.get("wall_seconds")
        fig = window(res.samples, res.last_output_s, float(sep)) if sep and res.last_output_s else None
        cores = fig.cores_busy if fig else b.get("cpu_cores_busy")
        run.update({
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
            "single_threaded": bool(threads and threads >= 2 and cores is not None and cores < SINGLE_THREAD_CORES),
        })  # fmt: skip
    return run


def usable(run: Mapping[str, Any]) -> bool:
    return not run.get("hung") and not run.get("failed")


def summarise(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    good = [r for r in runs if usable(r)]
    return {
        m: spread([r[m] for r in good if r.get(m) is not None])
        for m in METRICS
        if any(r.get(m) is not None for r in good)
    }


# --- the benchmark --------------------------------------------------------------------


def bench_runtime(
    rt: Runtime,
    *,
    repeat: int = 3,
    opts: RunOptions | None = None,
    warmup: bool = True,
    log: Log | None = None,
    profile: Profile | None = None,
) -> dict[str, Any]:
    """Warm-up, then `repeat` measured runs, each in fresh processes; summary, flags and budget."""
    opts = opts or RunOptions()
    log = log or Log()
    if warmup or opts.seconds is None:
        opts, _ = warm_up((rt,), opts, log)
    runs = []
    for i in range(repeat):
        run = measure_once(rt, opts)
        run["index"] = i
        runs.append(run)
        log.line(f"    {rt.label}: run {i + 1}/{repeat}: {describe_run(run)}")
    return result_of(rt, runs, opts, profile)


def single_thread_diagnosis(
    run: Mapping[str, Any], pools: Sequence[Mapping[str, Any]] | None, asked: int | None
) -> str:
    """Why a run kept one core busy, from what builder saw (pure): how many threads did the work
    (psutil, per thread) and how many threads each native pool runs (threadpoolctl, in selftest)."""
    bits = []
    if run.get("busy_threads") is not None:
        n = run["busy_threads"]
        bits.append(f"{n} thread{'s' if n != 1 else ''} did the work (cores busy {run.get('cores_busy')})")
    for pool in pools or []:
        n = pool.get("num_threads")
        if asked and n is not None and n < asked:
            bits.append(
                f"{pool.get('user_api')} pool {pool.get('prefix')} runs {n} thread{'s' if n != 1 else ''}"
            )
    if run.get("busy_threads") and run["busy_threads"] >= 2 and not bits[1:]:
        bits.append("the threads share one core (CPU affinity, or a busy machine)")
    return f": {'; '.join(bits)}" if bits else ""


def result_of(
    rt: Runtime, runs: list[dict[str, Any]], opts: RunOptions, profile: Profile | None
) -> dict[str, Any]:
    summary = summarise(runs)
    hung = [r for r in runs if r.get("hung")]
    first = next((r for r in runs if usable(r)), {})
    failed = [r for r in runs if r.get("failed")]
    flags: list[str] = []
    if hung:
        flags.append(f"hung: {len(hung)} of {len(runs)} runs killed ({hung[0]['hung']})")
    if failed:
        flags.append(f"failed: {len(failed)} of {len(runs)} runs printed no JSON ({failed[0]['failed']})")
    single = [r for r in runs if r.get("single_threaded")]
    if single:
        t = first.get("bench_threads") or {}
        flags.append(
            f"single-threaded: {len(single)} of {len(runs)} runs kept < {SINGLE_THREAD_CORES} cores busy "
            f"with {t.get('intra_op')} threads asked for"
            + single_thread_diagnosis(single[0], first.get("threadpools"), t.get("intra_op"))
            + (
                " (a model this small may not use more: try --model bs_roformer_4stem)"
                if opts.model.startswith("tiny")
                else ""
            )
        )
    loaded = first.get("openmp_loaded") or []
    if len(loaded) > 1:
        flags.append(f"openmp: {len(loaded)} OpenMP runtimes loaded in one process")
    size = size_of(rt)
    return {
        "runtime": rt.describe(),
        "settings": {
            "repeat": len(runs),
            "model": opts.model,
            "seconds": opts.seconds,
            "timeout": opts.timeout,
            "stall": opts.stall,
        },
        "summary": summary,
        "imports": median_imports(runs),
        "threads": first.get("threads"),
        "matmul_precision": first.get("matmul_precision"),
        "env": first.get("env"),
        "openmp_loaded": loaded,
        "versions": first.get("versions"),
        "config_source": first.get("config_source"),
        "size": size,
        "flags": flags,
        "budget": check_budget(summary, size, profile, shipped=rt.kind == "dist"),
        "runs": runs,
    }


def describe_run(run: Mapping[str, Any]) -> str:
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


def render(result: Mapping[str, Any]) -> str:
    """The human-readable bench report."""
    rt = result["runtime"]
    s = result["settings"]
    lines = [
        f"{rt['label']} ({rt['kind']}{', profile ' + rt['profile'] if rt['profile'] else ''}): "
        f"{s['repeat']} runs, model {s['model']}, {s['seconds']:g} s of audio"
    ]
    for key, st in result["summary"].items():
        label, unit = METRICS[key]
        lines.append(
            f"  {label:<36} median {st['median']:>9.3f} {unit:<5} "
            f"(min {st['min']:.3f}, max {st['max']:.3f}, IQR {st['iqr']:.3f}, n={st['n']})"
        )
    t = result.get("threads") or {}
    if t:
        lines.append(
            f"  threads: {t.get('torch')} intra-op (at import {t.get('at_import')}), {t.get('interop')} "
            f"inter-op; matmul precision {result.get('matmul_precision')}; config {result.get('config_source')}"
        )
    omp = result.get("openmp_loaded") or []
    lines.append("  OpenMP loaded: " + (", ".join(f"{o['family']} {o['path']}" for o in omp) or "none"))
    imp = result.get("imports")
    if imp:
        lines.append(f"  slowest imports (self time, median of runs; total {imp['total_s']:.2f} s):")
        for m in imp["slowest_modules"]:
            lines.append(f"    {m['self_ms']:>8.1f} ms  {m['module']}")
    for c in result["budget"]["checks"]:
        lines.append(
            f"  budget {c['budget']}: {c['measured']} <= {c['limit']}: {'ok' if c['ok'] else 'OVER BUDGET'}"
        )
    for f in result["flags"]:
        lines.append(f"  FLAG {f}")
    return "\n".join(lines)


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


def warm_up(
    runtimes: Sequence[Runtime], opts: RunOptions, log: Log
) -> tuple[RunOptions, list[dict[str, Any]]]:
    """One run of each (not counted): files in the page cache, then the workload sized from them."""
    log.line(f"    warm-up: one run of {'each' if len(runtimes) > 1 else runtimes[0].label} (not counted)")
    warm = [measure_once(rt, opts) for rt in runtimes]
    sized = sized_options(opts, warm)
    if opts.seconds is None:
        log.line(f"    workload: {sized.seconds:g} s of audio per run (sized from the warm-up: "
                 f"~{SEPARATION_TARGET_S:g} s of separation on the faster side)")  # fmt: skip
    return sized, warm


def one_round(
    a: Runtime, b: Runtime, i: int, *, opts: RunOptions, log: Log, of: str = ""
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Round i: A then B, or B then A for odd i (the order alternates against drift)."""
    order = [(a, "A"), (b, "B")]
    if i % 2:
        order.reverse()
    runs: dict[str, dict[str, Any]] = {}
    for rt, name in order:
        run = measure_once(rt, opts)
        run["index"], run["order"] = i, "".join(n for _, n in order)
        runs[name] = run
        log.line(f"    round {i + 1}{of} {name} ({rt.label}): {describe_run(run)}")
    return runs["A"], runs["B"]


def run_interleaved(
    a: Runtime, b: Runtime, *, repeat: int, opts: RunOptions, log: Log, warmup: bool = True
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rounds A B, B A, A B ...: each round gives one pair; the order alternates against drift."""
    if warmup or opts.seconds is None:
        opts, _ = warm_up((a, b), opts, log)
    runs_a: list[dict[str, Any]] = []
    runs_b: list[dict[str, Any]] = []
    for i in range(repeat):
        ra, rb = one_round(a, b, i, opts=opts, log=log, of=f"/{repeat}")
        runs_a.append(ra)
        runs_b.append(rb)
    return runs_a, runs_b
