"""`builder bisect`."""

from __future__ import annotations

from pathlib import Path

import click

from builder.cli.common import decision_options, emit_json, resolve_runtime, time_option
from builder.cli.params import CheckedPath
from builder.errors import InputError
from builder.log import Log
from builder.measure.bisect import STEP_TIME_S, bisect_runtimes
from builder.measure.judge.stats import DEFAULT_MIN_EFFECT
from builder.measure.show import text
from builder.measure.take.runs import RunOptions
from builder.paths import Project, find_project


@click.command("bisect")
@click.argument("a")
@click.argument("b")
@click.option(
    "--metric",
    type=click.Choice(["wall", "import", "startup", "total"]),
    default="startup",
    show_default=True,
    help="What 'slower' means: separation wall time, import time, time to ready, "
    "or the bench process's wall time.",
)
@click.option(
    "--threshold",
    type=click.FloatRange(0.0, 10.0),
    default=DEFAULT_MIN_EFFECT,
    show_default=True,
    help="Smallest relative slowdown that counts: a test is slower when its 95% CI lies above 1 + threshold.",
)
@click.option(
    "--find-links",
    "find_links",
    multiple=True,
    type=CheckedPath(file_okay=False, path_type=Path),
    help="Extra wheel folders for building intermediate environments (repeatable).",
)
@click.option("--wheelhouse", type=CheckedPath(path_type=Path), help="Wheel folder (e.g. CPU torch).")
@decision_options
@time_option(STEP_TIME_S, "Seconds of measuring per test before an undecided test is reported as undecided.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@click.pass_obj
def bisect(
    project: Project | None,
    a: str,
    b: str,
    metric: str,
    threshold: float,
    find_links: tuple[Path, ...],
    wheelhouse: Path | None,
    repeat: int | None,
    seconds: float | None,
    model: str,
    timeout: float,
    stall: float,
    time_s: float,
    as_json: bool,
) -> None:
    """Find which of B's extra packages make B slower than A (A, B: venvs or profiles)."""
    from builder.wheelhouse import find_wheelhouse

    project = project or find_project()
    log = Log()
    ra = resolve_runtime(a, project, log=log, wheelhouse=wheelhouse)
    rb = resolve_runtime(b, project, log=log, wheelhouse=wheelhouse)
    wh = find_wheelhouse(wheelhouse)
    links = [*[p.resolve() for p in find_links], *([wh.path] if wh else [])]
    for p in links:
        if not p.is_dir():
            raise InputError(f"--find-links {p}: not a directory")
    opts = RunOptions(seconds=seconds, model=model, timeout=timeout, stall=stall)
    result = bisect_runtimes(
        ra,
        rb,
        project,
        metric=metric,
        threshold=threshold,
        repeat=repeat,
        step_time_s=time_s,
        opts=opts,
        find_links=links,
        log=log,
    )
    if as_json:
        emit_json(result.to_json())
    else:
        click.echo(text.bisect(result.to_json()))
