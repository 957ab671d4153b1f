"""Local wheelhouses: where wheels that must not come from PyPI (CPU torch) are found."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from builder.errors import InputError


@dataclass(frozen=True, kw_only=True)
class Wheelhouse:
    path: Path
    origin: str  # "--wheelhouse", "BUILDER_WHEELHOUSE" or "PIP_FIND_LINKS"


def find_wheelhouse(explicit: Path | None, environ: dict[str, str] | None = None) -> Wheelhouse | None:
    """--wheelhouse, else BUILDER_WHEELHOUSE, else the first local folder in PIP_FIND_LINKS."""
    env = os.environ if environ is None else environ
    if explicit is not None:
        if not explicit.is_dir():
            raise InputError(f"--wheelhouse {explicit}: not a directory")
        return Wheelhouse(path=explicit.resolve(), origin="--wheelhouse")
    if value := env.get("BUILDER_WHEELHOUSE"):
        path = Path(value)
        if not path.is_dir():
            raise InputError(f"BUILDER_WHEELHOUSE={value}: not a directory")
        return Wheelhouse(path=path.resolve(), origin="BUILDER_WHEELHOUSE")
    for entry in env.get("PIP_FIND_LINKS", "").split():
        path = Path(entry.removeprefix("file://"))
        if "://" not in entry.removeprefix("file://") and path.is_dir():
            return Wheelhouse(path=path.resolve(), origin="PIP_FIND_LINKS")
    return None
