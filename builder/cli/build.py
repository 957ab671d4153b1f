"""`builder build`: install, freeze, check and package a profile."""

from __future__ import annotations

from pathlib import Path

import click

from builder.artifact.inspect import human_size
from builder.cli.common import default_profile, emit_json
from builder.cli.params import CheckedPath
from builder.log import Log
from builder.paths import Project
from builder.stages.build import build as run_build


@click.command("build")
@click.option("--profile", "profile_name", help="Profile to build (default: minimal-<this host's target>).")
@click.option("--wheelhouse", type=CheckedPath(path_type=Path), help="Folder of wheels, e.g. CPU torch.")
@click.option(
    "--out",
    type=CheckedPath(file_okay=False, path_type=Path),
    default=None,
    help="Where dist/<profile>/ goes  [default: dist/ in the project, beside profiles/]",
)
@click.option("--force", is_flag=True, help="Freeze and package even when the inputs are unchanged.")
@click.option(
    "--no-wait",
    is_flag=True,
    help="When another build of this profile is running, exit 13 instead of waiting.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@click.pass_obj
def build(
    project: Project,
    profile_name: str | None,
    wheelhouse: Path | None,
    out: Path | None,
    force: bool,
    no_wait: bool,
    as_json: bool,
) -> None:
    """Install, freeze, check and package a profile (the host's minimal one by default)."""
    log = Log(quiet=as_json)
    result = run_build(
        project,
        profile_name or default_profile(),
        wheelhouse=wheelhouse,
        out=out or project.root / "dist",
        log=log,
        force=force,
        wait=not no_wait,
    )
    if as_json:
        emit_json(result.to_json())
    else:
        click.echo(
            f"built {result.profile}: {result.artifact} "
            f"({human_size(result.dist.size_bytes)}, {result.dist.files} files) {result.dist.sha256}"
        )
