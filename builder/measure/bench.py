"""`builder bench` and the build's smoke bench: warm-up, then measured runs of one subject, each
in fresh processes (take/runs.py), judged (judge/bench.py). Rendering is show/text.py's."""

from __future__ import annotations

from builder.log import Log
from builder.measure.judge.bench import BenchResult, bench_result
from builder.measure.take.facts import size_of
from builder.measure.take.runs import RunOptions, describe_run, measure_once, warm_up
from builder.measure.take.subject import Subject
from builder.profile import Profile


def bench_runtime(
    rt: Subject,
    *,
    repeat: int = 3,
    opts: RunOptions | None = None,
    warmup: bool = True,
    log: Log | None = None,
    profile: Profile | None = None,
) -> BenchResult:
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
    return bench_result(rt, runs, opts, profile, size_of(rt))
