"""`builder clean`."""

from __future__ import annotations

from pathlib import Path

import click

from builder.artifact.clean import CleanResult, apply_clean, plan_clean
from builder.cli.common import emit_json
from builder.cli.params import CheckedPath
from builder.paths import Project


@click.command("clean")
@click.option(
    "--all",
    "all_caches",
    is_flag=True,
    help="Also remove the build caches (venvs, PyInstaller, frozen folders) under build/.",
)
@click.option("--dry-run", is_flag=True, help="Print what would be removed; touch nothing.")
@click.option(
    "--out",
    "dist_dir",
    type=CheckedPath(file_okay=False, path_type=Path),
    default=None,
    help="The dist folder `builder build --out` wrote to  [default: dist/ in the project]",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable plan on stdout.")
@click.pass_obj
def clean(project: Project, all_caches: bool, dry_run: bool, dist_dir: Path | None, as_json: bool) -> None:
    """Remove temporary leftovers of interrupted builds (and with --all the build caches); never a complete dist."""
    actions = plan_clean(project, dist_dir or project.root / "dist", all_caches=all_caches)
    if not dry_run:
        apply_clean(actions)
    result = CleanResult(dry_run=dry_run, actions=tuple(actions))
    if as_json:
        emit_json(result.to_json())
        return
    for action in actions:
        click.echo(("would " if dry_run else "") + action.describe())
    verb = "would free" if dry_run else "freed"
    click.echo(
        f"{len(actions)} item(s); {verb} {result.bytes / 1e6:.1f} MB" if actions else "nothing to clean"
    )
