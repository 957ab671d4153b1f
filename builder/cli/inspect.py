"""`builder inspect`: packages by installed size of a venv, site-packages or dist."""

from __future__ import annotations

from pathlib import Path

import click

from builder.artifact.inspect import inspect_path, render
from builder.cli.common import emit_json
from builder.cli.params import CheckedPath


@click.command("inspect")
@click.argument("path", type=CheckedPath(exists=True, file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def inspect(path: Path, as_json: bool) -> None:
    """Python, platform and packages by installed size of a venv, site-packages or dist."""
    info = inspect_path(path)
    if as_json:
        emit_json(info.to_json())
    else:
        click.echo(render(info))
