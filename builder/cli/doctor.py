"""`builder doctor`: say why a runtime is slow."""

from __future__ import annotations

from pathlib import Path

import click

from builder.cli.common import emit_json, resolve_runtime
from builder.cli.params import CheckedPath
from builder.errors import InputError
from builder.log import Log
from builder.measure.doctor import diagnose
from builder.measure.show.doctor import render, render_html
from builder.measure.take.doctor_run import DEFAULT_MODEL, DEFAULT_SECONDS, DEFAULT_TIMEOUT, Workload
from builder.paths import Project, find_project


@click.command("doctor")
@click.argument("target")
@click.option(
    "--model", default=DEFAULT_MODEL, show_default=True, help="Model preset or MSST .yaml for stems bench."
)
@click.option(
    "--seconds",
    type=click.FloatRange(0.1),
    default=DEFAULT_SECONDS,
    show_default=True,
    help="Audio the workload separates (tiny at 20 s: ~55 chunks, 5-30 s here).",
)
@click.option(
    "--program",
    type=CheckedPath(exists=True, dir_okay=False, path_type=Path),
    help="A Python program of your own to run with TARGET's interpreter (a venv) instead of stems bench.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(1),
    default=DEFAULT_TIMEOUT,
    show_default=True,
    help="Kill the workload after this long (seconds).",
)
@click.option("--no-cost", is_flag=True, help="Do not rerun the workload with each fix to measure its cost.")
@click.option(
    "--wheelhouse",
    type=CheckedPath(path_type=Path),
    help="Wheel folder, when TARGET is a profile to install.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the diagnosis as JSON on stdout.")
@click.option("--html", "as_html", is_flag=True, help="Print the diagnosis as one HTML page on stdout.")
@click.pass_obj
def doctor(
    project: Project | None,
    target: str,
    model: str,
    seconds: float,
    program: Path | None,
    timeout: float,
    no_cost: bool,
    wheelhouse: Path | None,
    as_json: bool,
    as_html: bool,
) -> None:
    """Run TARGET's real workload (a dist, a venv or a profile) in the environment an app would give
    it, and name what slows it: each cause with its evidence, measured cost and fix.

    Exits 0 with "no problem found" or the causes; 7 when the workload itself fails.
    """
    project = project or find_project()
    log = Log()
    rt = resolve_runtime(target, project, log=log, wheelhouse=wheelhouse)
    if program is not None and rt.kind != "venv":
        raise InputError(
            f"{target}: --program needs a venv (its interpreter runs the program)",
            hint="give a venv or a profile",
        )
    work = Workload(
        model=model,
        seconds=seconds,
        program=program.absolute() if program else None,
        timeout=timeout,
        cost=not no_cost,
    )
    result = diagnose(rt, work, log=log)
    if as_json:
        emit_json(result)
    elif as_html:
        click.echo(render_html(result), nl=False)
    else:
        click.echo(render(result))
