"""One file per OpenMP runtime in a frozen folder, and proof that the program loads that file.

The venv's OpenMP fix replaces every other copy by a relative symlink to the primary. What
PyInstaller then does with such a link (6.x, building/datastruct.py, toc_process_symbolic_links):
it keeps the link only when the link's relative target is collected at the same relative place;
otherwise it writes a full copy of the target under the link's name. A copy at another path is a
second image to glibc's loader and to dyld, so a second runtime with its own thread pool. This
pass finds OpenMP files by the contract's family patterns (runtime_entry/contract/shared.json),
groups the real files by content, keeps one of each group and turns the others back into relative
symlinks; `loaded_problems` then checks the frozen program's selftest: exactly one runtime loaded,
and it is the file kept here.

Windows has no symlinks in a PyInstaller folder (DLLs are always copies), so there the pass only
reports duplicates and the selftest check is what proves one runtime.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.fsutil import iter_files, sha256_file
from builder.openmp.model import family_name, family_of


@dataclass(frozen=True, kw_only=True)
class Relink:
    """Replace the copy `path` by the relative symlink `link`, which resolves to `primary`."""

    path: str  # relative to the frozen folder, POSIX separators
    link: str
    primary: str
    sha256: str


@dataclass(frozen=True, kw_only=True)
class FrozenOpenMP:
    """OpenMP files of a frozen folder: the real files kept, and the copies turned into links."""

    runtimes: tuple[str, ...]  # real files, one per distinct runtime (after the pass)
    relinked: tuple[Relink, ...]  # copies replaced by links (or, on Windows, copies found)
    applied: bool  # False where the copies could not be replaced (Windows)

    def to_json(self) -> dict[str, Any]:
        return {
            "runtimes": list(self.runtimes),
            "relinked": [{"path": r.path, "link": r.link, "primary": r.primary} for r in self.relinked],
            "applied": self.applied,
        }


def _rank(rel: str) -> tuple[int, int, str]:
    # The copy to keep: torch's (the primary of the venv fix is always the one torch loads),
    # then the shortest path; ties by name, so the choice does not depend on walk order.
    return (0 if "torch" in rel.split("/") else 1, len(rel), rel)


def plan_relinks(folder: Path) -> tuple[tuple[str, ...], tuple[Relink, ...]]:
    """(the real OpenMP files to keep, the byte-identical copies to relink) for a frozen folder."""
    groups: dict[str, list[str]] = defaultdict(list)
    for path in iter_files(folder):
        if path.is_symlink() or family_of(path.name) is None:
            continue
        groups[sha256_file(path)].append(path.relative_to(folder).as_posix())
    keep: list[str] = []
    relinks: list[Relink] = []
    for digest, members in groups.items():
        primary, *copies = sorted(members, key=_rank)
        keep.append(primary)
        for copy in copies:
            link = os.path.relpath(primary, os.path.dirname(copy) or ".")
            relinks.append(Relink(path=copy, link=Path(link).as_posix(), primary=primary, sha256=digest))
    return tuple(sorted(keep)), tuple(sorted(relinks, key=lambda r: r.path))


def one_file_per_runtime(folder: Path, *, symlinks: bool) -> FrozenOpenMP:
    """Turn byte-identical OpenMP copies in `folder` into relative symlinks to one kept file.

    Only replaces whole files by links: no byte of any binary changes, so a code signature made
    by PyInstaller stays valid. Each swap is one rename (the name never disappears).
    """
    keep, relinks = plan_relinks(folder)
    if symlinks:
        for r in relinks:
            path = folder / r.path
            tmp = path.with_name(f".{path.name}.relink-tmp")
            tmp.unlink(missing_ok=True)
            os.symlink(r.link, tmp)
            os.replace(tmp, path)
    return FrozenOpenMP(runtimes=keep, relinked=relinks, applied=symlinks)


def loaded_problems(folder: Path, openmp: Sequence[Mapping[str, Any]]) -> list[str]:
    """Why the frozen program's loaded OpenMP runtimes (the selftest's `openmp`) are wrong, if they are.

    Exactly one runtime must be loaded, from inside `folder`, and it must be a real file there
    (a link's target is what the loader maps, so the selftest reports the resolved path).
    """
    if len(openmp) != 1:
        found = ", ".join(str(o.get("path")) for o in openmp) or "none"
        return [f"{len(openmp)} OpenMP runtimes loaded in the frozen program, expected exactly 1: {found}"]
    path = Path(str(openmp[0].get("path")))
    root = Path(os.path.realpath(folder))
    real = Path(os.path.realpath(path))
    try:
        rel = real.relative_to(root)
    except ValueError:
        return [f"the frozen program loads OpenMP from {path}, outside its folder {folder}"]
    if family_of(real.name) is None and family_of(path.name) is None:
        return [f"loaded OpenMP file {path} matches no OpenMP family of the contract"]
    # A second real file of the family with other bytes is another runtime that some import may load.
    digest = sha256_file(real)
    family = family_of(real.name) or family_of(path.name)
    others = [
        p for p in _runtime_files(folder)
        if p != rel.as_posix() and family_of(Path(p).name) == family and sha256_file(folder / p) != digest
    ]  # fmt: skip
    if others:
        return [
            f"the frozen folder holds another {family_name(real.name) or family_name(path.name)} runtime beside {rel.as_posix()}: {', '.join(others)}"
        ]
    return []


def _runtime_files(folder: Path) -> Iterable[str]:
    for path in iter_files(folder):
        if not path.is_symlink() and family_of(path.name) is not None:
            yield path.relative_to(folder).as_posix()
