"""Tune: find the thread count, inter-op threads and matmul precision that run fastest on this machine.

Coordinate search (threads, then inter-op threads, then precision), candidates of a stage
interleaved round by round; then the best settings against the runtime's current ones in
paired rounds for the gain with its CI, decided as compare decides (measure/judge/sequential.py): a
gain that cannot be decided within --time is reported as undecided. The result goes to the runtime config file that
`stems` reads at start (runtime.json beside the program; for a venv, in the venv).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from builder.contract import CONFIG_NAME, PRECISIONS, SETTINGS_ENV
from builder.errors import ToolError
from builder.fsutil import atomic_write_text, safe_output
from builder.log import Log
from builder.measure.bench import (
    RunOptions,
    measure_once,
    one_round,
    usable,
    warm_up,
)
from builder.measure.judge.sequential import DEFAULT_TIME_S, SEQUENTIAL, fixed_plan, run_rounds
from builder.measure.take.subject import Runtime


def config_file(rt: Runtime) -> Path:
    """runtime.json beside a dist's program (whatever [program].name calls it), or in the venv."""
    return Path(rt.argv[0]).parent / CONFIG_NAME if rt.kind == "dist" else rt.path / CONFIG_NAME


def job_metric(rt: Runtime) -> str:
    """What a candidate is judged on: stems' separation, or a [bench].command's whole process."""
    return "separation_s" if rt.workload is None else "total_s"


def with_settings(rt: Runtime, s: Mapping[str, Any]) -> Runtime:
    """STEMS_* variables outrank the config file, so a candidate is tried without touching files."""
    return replace(
        rt, label=f"threads={s['threads']} interop={s['interop_threads']} {s['matmul_precision']}"
    ).with_env(
        **{SETTINGS_ENV[k]: str(s[k]) for k in ("threads", "interop_threads", "matmul_precision")},
    )


def current_settings(rt: Runtime, opts: RunOptions) -> dict[str, Any]:
    run = measure_once(rt, replace(opts, startup=True, separation=False))
    t = run.get("threads") or {}
    if run.get("hung") or not t:
        raise ToolError(f"{rt.label}: selftest did not report its threads ({run.get('hung')})")
    return {
        "threads": t["torch"],
        "interop_threads": t["interop"],
        "matmul_precision": run["matmul_precision"],
    }


def stage(
    rt: Runtime, name: str, candidates: list[dict[str, Any]], *, repeat: int, opts: RunOptions, log: Log
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Measure each candidate `repeat` times, round-robin; the lowest median job time wins."""
    times: list[list[float]] = [[] for _ in candidates]
    key = job_metric(rt)
    for i in range(repeat):
        order = list(range(len(candidates)))
        if i % 2:
            order.reverse()
        for k in order:
            run = measure_once(with_settings(rt, candidates[k]), opts)
            if not run.get("hung") and run.get(key) is not None:
                times[k].append(run[key])
    rows = []
    for c, ts in zip(candidates, times, strict=False):
        med = statistics.median(ts) if ts else None
        rows.append({**c, "median_s": round(med, 4) if med is not None else None, "runs": ts})
        log.line(
            f"    {name}: {with_settings(rt, c).label}: median {med if med is None else round(med, 3)} s"
        )
    best = min((r for r in rows if r["median_s"] is not None), key=lambda r: r["median_s"], default=None)
    if best is None:
        raise ToolError(f"{rt.label}: every {name} candidate failed or hung")
    return {k: best[k] for k in ("threads", "interop_threads", "matmul_precision")}, rows


def tune_runtime(
    rt: Runtime,
    *,
    repeat: int = 3,
    opts: RunOptions | None = None,
    threads: list[int] | None = None,
    gain_repeat: bool = True,
    time_s: float = DEFAULT_TIME_S,
    log: Log | None = None,
    write: bool = True,
    out: Path | None = None,
) -> dict[str, Any]:
    log = log or Log()
    if write:  # refuse a device, a FIFO or a dist's records before minutes of measuring
        safe_output(out or config_file(rt), "--out", inputs=[Path(rt.argv[0])])
    opts = replace(opts or RunOptions(), startup=False, separation=True)
    base = current_settings(rt, opts)
    if opts.seconds is None:  # one workload for every candidate, sized on the current settings
        opts, _ = warm_up((rt,), opts, log)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    thread_options = sorted(set(threads or [1, max(1, cpus // 2), cpus]))
    best = dict(base)
    stages = {}
    with log.step(f"threads: {thread_options}"):
        best, stages["threads"] = stage(
            rt, "threads", [{**best, "threads": t} for t in thread_options], repeat=repeat, opts=opts, log=log
        )
    with log.step("inter-op threads: 1, 2"):
        best, stages["interop_threads"] = stage(
            rt, "interop", [{**best, "interop_threads": n} for n in (1, 2)], repeat=repeat, opts=opts, log=log
        )
    with log.step(f"matmul precision: {', '.join(PRECISIONS)}"):
        best, stages["matmul_precision"] = stage(
            rt,
            "precision",
            [{**best, "matmul_precision": p} for p in PRECISIONS],
            repeat=repeat,
            opts=opts,
            log=log,
        )
    key = job_metric(rt)
    plan = fixed_plan(max(repeat, 3)) if gain_repeat else SEQUENTIAL
    how = (
        f"{max(repeat, 3)} paired rounds"
        if gain_repeat
        else f"paired rounds until decided, up to {time_s:g} s"
    )
    with log.step(f"gain: best vs current settings, {how}"):
        cur, new = with_settings(rt, base), with_settings(rt, best)

        def one(i: int) -> tuple[tuple[float | None, float | None], float]:
            t0 = time.monotonic()
            rc, rn = one_round(cur, new, i, opts=opts, log=log)
            return (
                rc.get(key) if usable(rc) else None,
                rn.get(key) if usable(rn) else None,
            ), time.monotonic() - t0

        outcome = run_rounds(one, plan, budget_s=time_s, what="the tuned run")
    stat = {k: v for k, v in outcome.decision.items() if k != "verdict"}
    gain = outcome.decision["verdict"]
    path = out or config_file(rt)
    result = {
        "runtime": rt.describe(),
        "current": base,
        "best": best,
        "stages": stages,
        "gain": {
            **stat,
            "verdict": gain["text"] + (f"; {outcome.settle}" if outcome.settle else ""),
            "call": gain["call"],
            # not slower, faster nor inside the band within the budget: said so, never taken as "same"
            "decided": gain["call"] in ("slower", "faster", "same"),
            "rounds": outcome.rounds,
            "percent": round((1 - stat["ratio"]) * 100, 1) if stat.get("ratio") else None,
        },
        "machine": {"cpus": cpus, "host": platform.node(), "machine": platform.machine()},
        "config_file": str(path),
        "written": False,
    }
    if write:
        existing = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        data = {
            **existing,
            **best,
            "tuned": {
                "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "cpus": cpus,
                "gain": gain["text"],
                "model": opts.model,
            },
        }
        atomic_write_text(
            path, json.dumps(data, indent=2, sort_keys=True) + "\n", what="--out", inputs=[Path(rt.argv[0])]
        )
        result["written"] = True
        if rt.kind == "dist":
            result["note"] = (
                "the dist's SHA256SUMS/manifest list the old runtime.json: ship this file as a "
                "per-machine override (STEMS_RUNTIME_CONFIG) or rebuild to repackage"
            )
    return result


def render(r: Mapping[str, Any]) -> str:
    lines = [f"tune {r['runtime']['label']} ({r['machine']['cpus']} CPUs)"]
    for name, rows in r["stages"].items():
        lines.append(f"  {name}: " + ", ".join(f"{row[name]} -> {row['median_s']} s" for row in rows))
    c, b = r["current"], r["best"]
    lines.append(
        f"  current: threads {c['threads']}, interop {c['interop_threads']}, {c['matmul_precision']}"
    )
    lines.append(
        f"  best:    threads {b['threads']}, interop {b['interop_threads']}, {b['matmul_precision']}"
    )
    lines.append(
        f"  gain: {r['gain']['verdict']}" + ("" if r["gain"].get("decided", True) else " (undecided)")
    )
    lines.append(
        f"  {'wrote' if r['written'] else 'would write'} {r['config_file']}"
        + (f" ({r['note']})" if r.get("note") else "")
    )
    return "\n".join(lines)
