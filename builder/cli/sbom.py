"""`builder sbom`."""

from __future__ import annotations

from pathlib import Path

import click

from builder.artifact.manifest import MANIFEST, read_manifest
from builder.artifact.sbom import (
    make_sbom,
)
from builder.cli.params import CheckedPath
from builder.errors import InputError
from builder.fsutil import atomic_write_text, safe_output


@click.command("sbom")
@click.argument("dist", type=CheckedPath(path_type=Path))
@click.option(
    "--out",
    type=CheckedPath(dir_okay=False, path_type=Path),
    help="Write the SBOM here (atomically) instead of stdout; keep it outside DIST.",
)
def sbom(dist: Path, out: Path | None) -> None:
    """CycloneDX JSON SBOM of the runtime in DIST, from its manifest.json."""
    path = dist / MANIFEST
    if out is not None:
        if dist.is_dir() and out.resolve().is_relative_to(dist.resolve()):
            raise InputError(f"--out {out}: is inside the dist {dist}; refusing to write there",
                             hint="write the SBOM outside DIST (a dist holds only what `builder build` wrote)")  # fmt: skip
        safe_output(out, "--out", inputs=[path])
    manifest = read_manifest(dist)  # the one reader: bounded, and one line naming what is wrong
    text = make_sbom(manifest)
    if out is None:
        click.echo(text, nl=False)
    else:
        atomic_write_text(out, text, what="--out", inputs=[path])
        click.echo(f"wrote {out}", err=True)
