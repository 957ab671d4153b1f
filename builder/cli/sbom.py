"""`builder sbom`."""

from __future__ import annotations

from pathlib import Path

import click

from builder.cli.params import CheckedPath
from builder.dist.manifest import read_manifest
from builder.dist.sbom import (
    make_sbom,
)
from builder.fsutil import atomic_write_text


@click.command("sbom")
@click.argument("dist", type=CheckedPath(path_type=Path))
@click.option(
    "--out",
    type=CheckedPath(dir_okay=False, path_type=Path),
    help="Write the SBOM here (atomically) instead of stdout; keep it outside DIST.",
)
def sbom(dist: Path, out: Path | None) -> None:
    """CycloneDX JSON SBOM of the runtime in DIST, from its manifest.json."""
    manifest = read_manifest(dist)  # the one reader: bounded, and one line naming what is wrong
    text = make_sbom(manifest)
    if out is None:
        click.echo(text, nl=False)
    else:
        atomic_write_text(out, text)
        click.echo(f"wrote {out}", err=True)
