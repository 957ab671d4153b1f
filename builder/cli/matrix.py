"""`builder matrix`."""

from __future__ import annotations

import click

from builder.cli.common import emit_json
from builder.matrix import matrix_document, release_matrix
from builder.paths import Project
from builder.profile import load_all


@click.command("matrix")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the entries as JSON: `include` is a workflow's `matrix.include`.",
)
@click.pass_obj
def matrix(project: Project, as_json: bool) -> None:
    """Print the release matrix: every profile with its target, runner and Python."""
    rows = release_matrix(load_all(project.profiles))
    if as_json:
        emit_json(matrix_document(rows))
        return
    table = [r.to_json() for r in rows]
    widths = {k: max(len(k), *(len(r[k]) for r in table)) for k in ("profile", "target", "runner", "python")}
    click.echo("  ".join(f"{k:<{w}}" for k, w in widths.items()).rstrip())
    for r in table:
        click.echo("  ".join(f"{r[k]:<{w}}" for k, w in widths.items()).rstrip())
