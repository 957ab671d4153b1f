"""`builder bench`: measure one runtime."""

from __future__ import annotations

from pathlib import Path

import click

from builder.cli.common import common_options, emit_json, profile_for, resolve_runtime
from builder.cli.params import CheckedPath
from builder.log import Log
from builder.measure.bench import bench_runtime
from builder.measure.judge.bench import enforce
from builder.measure.show import text
from builder.measure.take.runs import RunOptions
from builder.paths import Project, find_project


@click.command("bench")
@click.argument("path")
@common_options
@click.option(
    "--profile", "profile_name", help="Profile whose [bench] budget applies (default: the runtime's)."
)
@click.option(
    "--wheelhouse", type=CheckedPath(path_type=Path), help="Wheel folder, when PATH is a profile to install."
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@click.pass_obj
def bench(
    project: Project | None,
    path: str,
    repeat: int,
    seconds: float,
    model: str,
    timeout: float,
    stall: float,
    profile_name: str | None,
    wheelhouse: Path | None,
    as_json: bool,
) -> None:
    """Benchmark a venv, a dist or a profile: time to ready, imports, separation, CPU, memory, threads.

    Exits 11 when a median is over the profile's [bench] budget, 8 when a run hung.
    """
    project = project or find_project()
    log = Log()
    rt = resolve_runtime(path, project, log=log, wheelhouse=wheelhouse)
    profile = profile_for(rt, project, profile_name)
    opts = RunOptions(seconds=seconds, model=model, timeout=timeout, stall=stall)
    with log.step(f"bench {rt.label}: warm-up + {repeat} runs"):
        result = bench_runtime(rt, repeat=repeat, opts=opts, log=log, profile=profile)
    if as_json:
        emit_json(result.to_json())
    else:
        click.echo(text.bench(result.to_json()))
    enforce(result)
