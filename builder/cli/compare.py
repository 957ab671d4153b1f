"""`builder compare`."""

from __future__ import annotations

from pathlib import Path

import click

from builder.cli.common import decision_options, emit_json, resolve_runtime, time_option
from builder.cli.params import CheckedPath
from builder.log import Log
from builder.measure.compare import compare_runtimes
from builder.measure.judge.sequential import DEFAULT_TIME_S
from builder.measure.judge.stats import DEFAULT_MIN_EFFECT
from builder.measure.show.files import check_report_folder, write_reports
from builder.measure.show.format import metric_label
from builder.measure.take.metrics import METRIC_ALIASES
from builder.measure.take.runs import RunOptions
from builder.paths import Project, find_project
from builder.relpaths import project_relative


@click.command("compare")
@click.argument("a")
@click.argument("b")
@decision_options
@click.option(
    "--metric",
    type=click.Choice(sorted(METRIC_ALIASES)),
    default="chunk",
    show_default=True,
    help="Metric of the headline verdict (all time metrics are reported); chunk = the separation's seconds per chunk.",
)
@click.option(
    "--min-effect",
    type=click.FloatRange(0, 1),
    default=DEFAULT_MIN_EFFECT,
    show_default=True,
    help="Half-width of the band around B/A = 1: outside it 'slower'/'faster', inside it 'same'.",
)
@time_option(
    DEFAULT_TIME_S,
    "Seconds of measuring (warm-up included) before an undecided headline is called inconclusive.",
)
@click.option(
    "--out",
    type=CheckedPath(file_okay=False, path_type=Path),
    help="Write report.md, report.json and report.html here.",
)
@click.option(
    "--wheelhouse",
    type=CheckedPath(path_type=Path),
    help="Wheel folder, when A or B is a profile to install.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the JSON report on stdout (default: Markdown).")
@click.pass_obj
def compare(
    project: Project | None,
    a: str,
    b: str,
    repeat: int | None,
    seconds: float | None,
    model: str,
    timeout: float,
    stall: float,
    metric: str,
    min_effect: float,
    time_s: float,
    out: Path | None,
    wheelhouse: Path | None,
    as_json: bool,
) -> None:
    """Compare runtimes A and B (profiles, venvs or dists): packages, install, OpenMP, threads, imports, speed.

    The headline says B is slower, faster, the same within --min-effect, or inconclusive (with
    what would settle it) when --time runs out first.
    """
    from builder.measure.show import markdown

    project = project or find_project()
    if out is not None:
        check_report_folder(out)
    log = Log()
    ra = resolve_runtime(a, project, label=None, log=log, wheelhouse=wheelhouse)
    rb = resolve_runtime(b, project, label=None, log=log, wheelhouse=wheelhouse)
    if ra.label == rb.label:
        ra, rb = (
            ra.__class__(**{**ra.__dict__, "label": f"A: {ra.label}"}),
            rb.__class__(**{**rb.__dict__, "label": f"B: {rb.label}"}),
        )
    opts = RunOptions(seconds=seconds, model=model, timeout=timeout, stall=stall)
    result = compare_runtimes(
        ra, rb, repeat=repeat, time_s=time_s, opts=opts, min_effect=min_effect, metric=metric, log=log
    )
    doc = result.to_json()
    if out is not None:  # a report for sharing: paths under the project, relative to it
        for kind, path in write_reports(project_relative(doc, project.root.resolve()), out).items():
            log.line(f"    {kind}: {path}")
    if as_json:
        emit_json(doc)
    else:
        click.echo(markdown.compare_report(doc))
    log.line(f"verdict ({metric_label(result.verdict_metric)}): {result.verdict}")
    if result.caveat:
        log.line(result.caveat)
