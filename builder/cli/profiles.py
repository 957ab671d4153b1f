"""`builder profiles`: list and validate every profile."""

from __future__ import annotations

import click

from builder.cli.common import emit_json
from builder.paths import Project
from builder.profile import load_all
from builder.profile.schema import json_schema
from builder.schemas import tagged


@click.command("profiles")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--schema", is_flag=True, help="Print the profile format as JSON Schema (for editors) and exit."
)
@click.pass_obj
def profiles(project: Project, as_json: bool, schema: bool) -> None:
    """List and validate every profile."""
    if schema:
        emit_json(json_schema())
        return
    all_profiles = load_all(project.profiles)
    rows = [p.summary() for p in all_profiles]
    if as_json:
        emit_json(tagged("profiles", {"profiles": rows}))
        return
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        click.echo(
            f"{r['name']:<{width}}  {r['target']:<15} py{r['python']:<5} {r['packages']:>3} packages"
            + (f"  (extends {r['extends']})" if r["extends"] else "")
        )
        if r["program"]["entry"] != "bundled stems":
            click.echo(f"{'':<{width}}  program {r['program']['name']}: {r['program']['entry']}")
        for override in r["overrides"]:
            click.echo(f"{'':<{width}}  override {override} (replaces every package's pin of it)")
        for pkg, why in sorted(r["excluded"].items()):
            click.echo(f"{'':<{width}}  excluded {pkg}: {why}")
    click.echo(f"{len(rows)} profiles, all valid")
