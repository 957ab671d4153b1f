"""`builder tune`: the thread count, inter-op threads and matmul precision that run fastest here.

Coordinate search (threads, then inter-op threads, then precision), candidates of a stage
interleaved round by round; then the best settings against the runtime's current ones in paired
rounds for the gain with its CI, decided as compare decides (judge/sequential.py): a gain that
cannot be decided within --time is reported as undecided. The result goes to the runtime config
file that `stems` reads at start (runtime.json beside the program; for a venv, in the venv).
The decisions are judge/tune.py's.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from builder.contract import CONFIG_NAME, PRECISIONS, SETTINGS_ENV
from builder.errors import ToolError
from builder.fsutil import atomic_write_text, safe_output
from builder.log import Log
from builder.measure.judge.sequential import DEFAULT_TIME_S, SEQUENTIAL, Outcome, fixed_plan, run_rounds
from builder.measure.judge.tune import Candidate, Machine, Settings, Tuning, best_of, config_data, gain_of
from builder.measure.take.metrics import figure
from builder.measure.take.runs import RunOptions, measure_once, one_round, warm_up
from builder.measure.take.subject import Subject

DIST_NOTE = ("the dist's SHA256SUMS/manifest list the old runtime.json: ship this file as a "
             "per-machine override (STEMS_RUNTIME_CONFIG) or rebuild to repackage")  # fmt: skip


def config_file(rt: Subject) -> Path:
    """runtime.json beside a dist's program (whatever [program].name calls it), or in the venv."""
    return Path(rt.argv[0]).parent / CONFIG_NAME if rt.kind == "dist" else rt.path / CONFIG_NAME


def job_metric(rt: Subject) -> str:
    """What a candidate is judged on: stems' separation, or a [bench].command's whole process."""
    return "separation_s" if rt.workload is None else "total_s"


def with_settings(rt: Subject, s: Settings) -> Subject:
    """STEMS_* variables outrank the config file, so a candidate is tried without touching files."""
    values = s.to_json()
    return replace(rt, label=s.label).with_env(**{SETTINGS_ENV[k]: str(values[k]) for k in values})


def current_settings(rt: Subject, opts: RunOptions) -> Settings:
    run = measure_once(rt, replace(opts, startup=True, separation=False))
    t = run.get("threads") or {}
    if run.get("hung") or not t:
        raise ToolError(f"{rt.label}: selftest did not report its threads ({run.get('hung')})")
    return Settings(
        threads=t["torch"], interop_threads=t["interop"], matmul_precision=run["matmul_precision"]
    )


def stage(
    rt: Subject, name: str, candidates: list[Settings], *, repeat: int, opts: RunOptions, log: Log
) -> tuple[Settings, tuple[Candidate, ...]]:
    """Measure each candidate `repeat` times, round-robin; the lowest median job time wins."""
    times: list[list[float]] = [[] for _ in candidates]
    key = job_metric(rt)
    for i in range(repeat):
        order = list(range(len(candidates)))
        if i % 2:
            order.reverse()
        for k in order:
            value = figure(measure_once(with_settings(rt, candidates[k]), opts), key)
            if value is not None:
                times[k].append(value)
    rows = tuple(Candidate(settings=c, runs=tuple(ts)) for c, ts in zip(candidates, times, strict=False))
    for row in rows:
        log.line(f"    {name}: {row.settings.label}: median {row.median_s} s")
    return best_of(name, rt.label, rows), rows


def search(
    rt: Subject, base: Settings, threads: list[int], *, repeat: int, opts: RunOptions, log: Log
) -> tuple[Settings, dict[str, tuple[Candidate, ...]]]:
    """Threads, then inter-op threads, then precision, each stage from the best of the one before."""
    best, stages = base, {}
    axes: tuple[tuple[str, str, list[Any]], ...] = (
        ("threads", "threads", threads), ("interop_threads", "interop", [1, 2]),
        ("matmul_precision", "precision", list(PRECISIONS)),
    )  # fmt: skip
    titles = {"threads": f"threads: {threads}", "interop_threads": "inter-op threads: 1, 2",
              "matmul_precision": f"matmul precision: {', '.join(PRECISIONS)}"}  # fmt: skip
    for key, name, values in axes:
        with log.step(titles[key]):
            candidates = [replace(best, **{key: v}) for v in values]
            best, stages[key] = stage(rt, name, candidates, repeat=repeat, opts=opts, log=log)
    return best, stages


def gain_rounds(
    rt: Subject, base: Settings, best: Settings, *, repeat: int, paired: bool,
    time_s: float, opts: RunOptions, log: Log,
) -> Outcome:  # fmt: skip
    """The best settings against the current ones, in paired rounds."""
    key = job_metric(rt)
    plan = fixed_plan(max(repeat, 3)) if paired else SEQUENTIAL
    how = f"{max(repeat, 3)} paired rounds" if paired else f"paired rounds until decided, up to {time_s:g} s"
    with log.step(f"gain: best vs current settings, {how}"):
        cur, new = with_settings(rt, base), with_settings(rt, best)

        def one(i: int) -> tuple[tuple[float | None, float | None], float]:
            t0 = time.monotonic()
            rc, rn = one_round(cur, new, i, opts=opts, log=log)
            return (figure(rc, key), figure(rn, key)), time.monotonic() - t0

        return run_rounds(one, plan, budget_s=time_s, what="the tuned run")


def write_config(rt: Subject, path: Path, best: Settings, *, cpus: int, gain: str, model: str) -> None:
    existing = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    data = config_data(existing, best, at=at, cpus=cpus, gain=gain, model=model)
    atomic_write_text(
        path, json.dumps(data, indent=2, sort_keys=True) + "\n", what="--out", inputs=[Path(rt.argv[0])]
    )


def tune_runtime(
    rt: Subject,
    *,
    repeat: int = 3,
    opts: RunOptions | None = None,
    threads: list[int] | None = None,
    gain_repeat: bool = True,
    time_s: float = DEFAULT_TIME_S,
    log: Log | None = None,
    write: bool = True,
    out: Path | None = None,
) -> Tuning:
    log = log or Log()
    path = out or config_file(rt)
    if write:  # refuse a device, a FIFO or a dist's records before minutes of measuring
        safe_output(path, "--out", inputs=[Path(rt.argv[0])])
    opts = replace(opts or RunOptions(), startup=False, separation=True)
    base = current_settings(rt, opts)
    if opts.seconds is None:  # one workload for every candidate, sized on the current settings
        opts, _ = warm_up((rt,), opts, log)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    thread_options = sorted(set(threads or [1, max(1, cpus // 2), cpus]))
    best, stages = search(rt, base, thread_options, repeat=repeat, opts=opts, log=log)
    outcome = gain_rounds(
        rt, base, best, repeat=repeat, paired=gain_repeat, time_s=time_s, opts=opts, log=log
    )
    gain = gain_of(outcome)
    if write:
        write_config(rt, path, best, cpus=cpus, gain=outcome.decision["verdict"]["text"], model=opts.model)
    return Tuning(
        runtime=rt.describe(), current=base, best=best, stages=stages, gain=gain,
        machine=Machine(cpus=cpus, machine=platform.machine()),
        config_file=str(path), written=write, note=DIST_NOTE if write and rt.kind == "dist" else None,
    )  # fmt: skip
