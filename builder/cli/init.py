"""`builder init`: a new project in a folder (the current one by default)."""

from __future__ import annotations

from pathlib import Path

import click

from builder.cli.common import emit_json
from builder.cli.params import CheckedPath
from builder.project.init import init_project


@click.command("init")
@click.argument("folder", required=False, type=CheckedPath(file_okay=False, path_type=Path), default=".")
@click.option("--target", help="linux-x86_64, mac-arm, mac-intel or windows-x86_64 (default: this host).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def init(folder: Path, target: str | None, as_json: bool) -> None:
    """Write a project: minimal and extended profiles for a target, locks/ and a .gitignore."""
    result = init_project(folder, target)
    if as_json:
        emit_json(result.to_json())
        return
    for path in result.written:
        click.echo(f"wrote {path}")
    click.echo(
        f"next: cd {folder} && builder lock --profile minimal-{result.target} "
        f"&& builder build --profile minimal-{result.target}",
        err=True,
    )
