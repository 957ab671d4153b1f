"""Smoke stage: one short bench run of the frozen program against the profile's budget."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from builder.log import Log
from builder.measure.bench import bench_runtime
from builder.measure.judge.bench import BenchResult
from builder.measure.take.runner import DEFAULT_STALL
from builder.measure.take.runs import DEFAULT_MODEL, RunOptions
from builder.measure.take.subject import program_subject
from builder.stages.plan import BuildPlan


def smoke_bench(
    program_or_python: Path,
    plan: BuildPlan,
    *,
    seconds: float = 1.0,
    model: str = DEFAULT_MODEL,
    timeout: float = 300.0,
) -> BenchResult:
    """The build pipeline's short form: no warm-up, one run, the profile's budget. Never raises on budget.

    `program_or_python` is a dist's stems program or a venv's python. The result's
    `budget.ok` and `flags` say whether the runtime passed; the caller stores it as bench.json.
    """
    rt = program_subject(Path(program_or_python), plan.project)
    # the profile's workload; a program other than stems without one: its check command (start-up)
    rt = replace(rt, workload=plan.workload or plan.check_workload)
    opts = RunOptions(seconds=seconds, model=model, timeout=timeout, stall=min(DEFAULT_STALL, timeout))
    return bench_runtime(rt, repeat=1, opts=opts, warmup=False, log=Log(), profile=plan.profile)
