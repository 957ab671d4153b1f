"""`builder diff`: every file that differs between two dists, and why."""

from __future__ import annotations

import os
from pathlib import Path

import click

from builder.artifact.diff import report
from builder.cli.common import emit_json
from builder.cli.params import CheckedPath
from builder.errors import CheckError, InputError


@click.command("diff")
@click.argument("a", type=CheckedPath(exists=True, file_okay=False, path_type=Path))
@click.argument("b", type=CheckedPath(exists=True, file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def diff(a: Path, b: Path, as_json: bool) -> None:
    """Name every file that differs between two dists, and why (exit 8 when any does)."""
    for dist in (a, b):
        if not os.path.lexists(dist / "manifest.json"):  # read_manifest names a broken or odd one
            raise InputError(f"{dist}: not a dist (no manifest.json)")
    rep = report(a, b)
    if as_json:
        emit_json(rep.to_json())
    else:
        for d in rep.files:
            click.echo(f"{d.path}: {d.why}")
        click.echo(f"{len(rep.files)} differing files")
    if rep.files:
        raise CheckError(f"{len(rep.files)} files differ between {a} and {b}")
