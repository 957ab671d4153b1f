"""What fills a frozen folder, by package, read from the files on disk.

PyInstaller copies a package's dist-info only when a hook asks for its metadata: torch's is
absent from most freezes, so a frozen folder is sized by its top-level entries under `_internal/`
(torch/, numpy.libs/, libpython3.11.so.1.0), each named by the dist-info that claims it where
there is one, else by itself. A pure reading of the tree: nothing is run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.artifact.manifest import read_record
from builder.fsutil import iter_files

INTERNAL = "_internal"


@dataclass(frozen=True, kw_only=True)
class Contributor:
    name: (
        str  # a distribution's name, a top-level folder or file, or "(program)" for what is beside _internal
    )
    version: str | None  # from its dist-info, when PyInstaller kept one
    size: int  # bytes on disk (links counted as themselves)
    files: int

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "size": self.size, "files": self.files}


def _owners(internal: Path) -> dict[str, tuple[str, str | None]]:
    """Top-level entry under _internal -> (distribution, version), from the dist-info PyInstaller kept."""
    owners: dict[str, tuple[str, str | None]] = {}
    for info in sorted(internal.glob("*.dist-info")):
        name, _, version = info.name.removesuffix(".dist-info").rpartition("-")
        owner = (name or version, version if name else None)
        owners[info.name] = owner
        tops = (
            [Path(rel).parts[0] for rel in read_record(info / "RECORD")]
            if (info / "RECORD").is_file()
            else []
        )
        if (info / "top_level.txt").is_file():  # setuptools' list, where PyInstaller kept no RECORD
            tops += (info / "top_level.txt").read_text(encoding="utf-8", errors="replace").split()
        for top in tops:
            if top not in ("..", "__pycache__") and not top.endswith(".dist-info"):
                owners.setdefault(top.removesuffix(".py"), owner)
    return owners


def frozen_contributors(folder: Path) -> list[Contributor]:
    """Every package or top-level entry of the frozen folder `folder` (holding `_internal/`), largest first."""
    internal = folder / INTERNAL
    owners = _owners(internal) if internal.is_dir() else {}
    sizes: dict[tuple[str, str | None], list[int]] = {}
    for path in iter_files(folder):
        parts = path.relative_to(folder).parts
        if parts[0] != INTERNAL or len(parts) == 1:
            key: tuple[str, str | None] = ("(program)", None)
        else:
            top = parts[1]
            base = top.removesuffix(".libs").removesuffix(".py")  # numpy.libs: numpy's vendored libraries
            key = owners.get(top) or owners.get(base) or (top, None)
        acc = sizes.setdefault(key, [0, 0])
        acc[0] += path.lstat().st_size
        acc[1] += 1
    rows = [Contributor(name=n, version=v, size=s, files=c) for (n, v), (s, c) in sizes.items()]
    return sorted(rows, key=lambda r: (-r.size, r.name.lower()))
