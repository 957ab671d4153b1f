"""`builder tune`."""

from __future__ import annotations

from pathlib import Path

import click

from builder.cli.common import decision_options, emit_json, resolve_runtime, time_option
from builder.cli.params import CheckedPath
from builder.log import Log
from builder.measure.judge.sequential import DEFAULT_TIME_S
from builder.measure.show import text
from builder.measure.take.runs import RunOptions
from builder.measure.tune import tune_runtime
from builder.paths import Project, find_project


@click.command("tune")
@click.argument("path")
@decision_options
@time_option(
    DEFAULT_TIME_S, "Seconds for the gain's rounds (best vs current settings) before it is called undecided."
)
@click.option(
    "--threads",
    "threads",
    multiple=True,
    type=click.IntRange(1),
    help="Thread counts to try (repeatable; default: 1, half and all of this machine's CPUs).",
)
@click.option(
    "--out",
    type=CheckedPath(dir_okay=False, path_type=Path),
    help="Config file to write (default: the runtime's runtime.json).",
)
@click.option("--dry-run", is_flag=True, help="Measure and report; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@click.pass_obj
def tune(
    project: Project | None,
    path: str,
    repeat: int | None,
    seconds: float | None,
    model: str,
    timeout: float,
    stall: float,
    time_s: float,
    threads: tuple[int, ...],
    out: Path | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Try threads, inter-op threads and matmul precision here; write the fastest to runtime.json."""
    project = project or find_project()
    log = Log()
    rt = resolve_runtime(path, project, log=log)
    opts = RunOptions(seconds=seconds, model=model, timeout=timeout, stall=stall)
    result = tune_runtime(
        rt,
        repeat=repeat or 3,
        gain_repeat=repeat is not None,
        time_s=time_s,
        opts=opts,
        threads=list(threads) or None,
        log=log,
        write=not dry_run,
        out=out,
    )
    if as_json:
        emit_json(result.to_json())
    else:
        click.echo(text.tune(result.to_json()))
