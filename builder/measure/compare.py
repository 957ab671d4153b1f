"""`builder compare`: two subjects (profiles, venvs or dists) side by side, measured.

Static sections (packages, install method, OpenMP files) come from the folders (take/facts.py);
dynamic ones (OpenMP loaded, threads, imports, performance) from runs interleaved A B / B A in
fresh processes (take/runs.py). The headline metric decides how long to measure: rounds are
added until its verdict is decided or the time budget is spent (judge/sequential.py); the
comparison itself is judged in judge/compare.py and shown by show/markdown.py and show/html.py.
"""

from __future__ import annotations

import os
import time

import psutil

from builder.log import Log
from builder.measure.judge.bench import bench_result
from builder.measure.judge.compare import Comparison, Measured, Side, comparison, headline_key
from builder.measure.judge.sequential import DEFAULT_TIME_S, SEQUENTIAL, Plan, fixed_plan, run_rounds
from builder.measure.judge.stats import DEFAULT_MIN_EFFECT
from builder.measure.take.facts import static_facts
from builder.measure.take.metrics import METRIC_ALIASES, figure
from builder.measure.take.runs import Run, RunOptions, one_round, warm_up
from builder.measure.take.subject import Subject


class _Rounds:
    """The rounds of one comparison, kept as they are measured (the sequential plan asks for
    one more round at a time)."""

    def __init__(self, a: Subject, b: Subject, opts: RunOptions, key: str, of: str, log: Log) -> None:
        self.a, self.b, self.opts, self.key, self.of, self.log = a, b, opts, key, of, log
        self.runs_a: list[Run] = []
        self.runs_b: list[Run] = []

    def __call__(self, i: int) -> tuple[tuple[float | None, float | None], float]:
        t0 = time.monotonic()
        ra, rb = one_round(self.a, self.b, i, opts=self.opts, log=self.log, of=self.of)
        self.runs_a.append(ra)
        self.runs_b.append(rb)
        return (figure(ra, self.key), figure(rb, self.key)), time.monotonic() - t0


def measure_rounds(
    a: Subject,
    b: Subject,
    *,
    plan: Plan,
    budget_s: float,
    opts: RunOptions,
    primary: str,
    min_effect: float,
    log: Log,
    warmup: bool = True,
    repeat: int | None = None,
) -> tuple[Measured, _Rounds]:
    """Warm-up (which sizes the workload), then rounds until the plan's verdict is decided or the
    budget is spent."""
    started = time.monotonic()
    load = [round(psutil.getloadavg()[0], 2)]
    warm: list[Run] = []
    if warmup or opts.seconds is None:
        opts, warm = warm_up((a, b), opts, log)
    key = headline_key(primary, warm, a.workload is not None)
    rounds = _Rounds(a, b, opts, key, f"/{plan.looks[0]}" if len(plan.looks) == 1 else "", log)
    outcome = run_rounds(
        rounds, plan, budget_s=budget_s, spent_s=time.monotonic() - started, min_effect=min_effect
    )
    load.append(round(psutil.getloadavg()[0], 2))
    measured = Measured(
        outcome=outcome, plan=plan, key=key, opts=opts, repeat=repeat, time_s=budget_s,
        min_effect=min_effect, load=load, cpus=os.cpu_count(),
    )  # fmt: skip
    return measured, rounds


def compare_runtimes(
    a: Subject,
    b: Subject,
    *,
    repeat: int | None = None,
    time_s: float = DEFAULT_TIME_S,
    opts: RunOptions | None = None,
    min_effect: float = DEFAULT_MIN_EFFECT,
    metric: str = "chunk",
    log: Log | None = None,
    warmup: bool = True,
) -> Comparison:
    """Static facts of both sides, then interleaved rounds: until decided within `time_s`, or
    exactly `repeat` rounds."""
    opts = opts or RunOptions()
    log = log or Log()
    plan = fixed_plan(repeat) if repeat else SEQUENTIAL
    with log.step("read packages, install method and OpenMP files of both sides"):
        fa, fb = static_facts(a), static_facts(b)
    how = (
        f"{repeat} interleaved rounds" if repeat else f"interleaved rounds until decided, up to {time_s:g} s"
    )
    with log.step(f"measure: {how} (A B / B A), fresh processes"):
        m, rounds = measure_rounds(
            a, b, plan=plan, budget_s=time_s, opts=opts, primary=METRIC_ALIASES.get(metric, metric),
            min_effect=min_effect, log=log, warmup=warmup, repeat=repeat,
        )  # fmt: skip
    sa = Side(subject=a, facts=fa, bench=bench_result(a, rounds.runs_a, m.opts, None, None))
    sb = Side(subject=b, facts=fb, bench=bench_result(b, rounds.runs_b, m.opts, None, None))
    return comparison(sa, sb, m)
