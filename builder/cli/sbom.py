"""`builder sbom`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from builder.dist.manifest import MANIFEST
from builder.dist.sbom import (
    make_sbom,
)
from builder.errors import InputError
from builder.fsutil import atomic_write_text, safe_output


@click.command("sbom")
@click.argument("dist", type=click.Path(path_type=Path))
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
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
    if not path.is_file():
        raise InputError(f"{path}: missing; {dist} is not a dist built by `builder build`")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise InputError(f"{path}: not JSON ({exc})") from exc
    text = make_sbom(manifest)
    if out is None:
        click.echo(text, nl=False)
    else:
        atomic_write_text(out, text, what="--out", inputs=[path])
        click.echo(f"wrote {out}", err=True)
