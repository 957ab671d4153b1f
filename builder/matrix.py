"""`builder matrix`: the CI matrix, each profile with the runner that builds it natively.

install, freeze and bench run on the target itself, so a release pipeline builds
every profile on its target's own runner (builder/targets.py `Target.runner`).
The release workflow reads this as `strategy.matrix.include`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import click

from .paths import Project
from .profile import Profile, load_all


def release_matrix(profiles: Iterable[Profile]) -> list[dict[str, str]]:
    """One entry per profile, sorted by name: what a CI job needs to build it on its runner."""
    return [
        {
            "profile": p.name,
            "target": p.target.name,
            "platform": p.target.uv_platform,
            "runner": p.target.runner,
            "python": p.python,
        }
        for p in sorted(profiles, key=lambda p: p.name)
    ]


@click.command("matrix")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the entries as a JSON list (for a workflow's `matrix.include`).",
)
@click.pass_obj
def matrix(project: Project, as_json: bool) -> None:
    """Print the release matrix: every profile with its target, runner and Python."""
    rows = release_matrix(load_all(project.profiles))
    if as_json:
        click.echo(json.dumps(rows, indent=2, sort_keys=True))
        return
    widths = {k: max(len(k), *(len(r[k]) for r in rows)) for k in ("profile", "target", "runner", "python")}
    click.echo("  ".join(f"{k:<{w}}" for k, w in widths.items()).rstrip())
    for r in rows:
        click.echo("  ".join(f"{r[k]:<{w}}" for k, w in widths.items()).rstrip())
