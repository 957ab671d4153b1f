"""`builder verify`."""

from __future__ import annotations

from pathlib import Path

import click

from builder.artifact.verify import (
    verify_dist,
)
from builder.cli.common import emit_json
from builder.cli.params import CheckedPath
from builder.errors import CheckError


@click.command("verify")
@click.argument("dist", type=CheckedPath(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable report on stdout.")
def verify(dist: Path, as_json: bool) -> None:
    """Re-hash every file of DIST against manifest.json and SHA256SUMS; exit 8 on any difference."""
    click.echo(f"==> verify {dist}", err=True)
    report = verify_dist(dist)
    if as_json:
        emit_json(report.to_json())
    else:
        click.echo("\n".join(report.lines()))
    if not report.ok:
        raise CheckError(report.summary())
