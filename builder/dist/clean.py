"""`builder clean`: remove what interrupted builds left behind, and with --all the build caches.

Plan, then apply. The plan never touches a complete dist (a folder with
manifest.json): leftovers are the staging names of fsutil.staged_dir
(`.NAME.tmp`, `.NAME.old`, and the older `-suffix` spellings) and of atomic
writes (`.NAME.<random>.tmp` files). An `.NAME.old` whose `NAME` is missing is
the last good output of a run that died between its two renames: it is put
back, never deleted. Do not run clean while a build is running.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.dist.manifest import MANIFEST
from builder.errors import InputError
from builder.fsutil import iter_files
from builder.paths import Project

# .NAME.tmp / .NAME.old (staged_dir), .NAME.tmp-xyz / .NAME.old-xyz, .NAME.abc123.tmp (atomic writes)
LEFTOVER = re.compile(r"^\.(?P<name>.+?)\.(?P<kind>tmp|old)(-[^/]*)?$")
MAX_DEPTH = 3  # dist/.P.tmp, build/P/.venv.tmp, build/P/frozen/.stems.tmp


@dataclass(frozen=True, kw_only=True)
class Action:
    kind: str  # "remove" | "restore" (an .old folder back to its name) | "remove-cache"
    path: Path
    target: Path | None = None  # for restore
    bytes: int = 0

    def describe(self) -> str:
        if self.kind == "restore":
            return f"restore  {self.path} -> {self.target} (last good output of an interrupted run)"
        return f"{self.kind:<8} {self.path} ({self.bytes / 1e6:.1f} MB)"

    def to_json(self) -> dict[str, Any]:
        return {"action": self.kind, "path": str(self.path), "target": str(self.target) if self.target else None,
                "bytes": self.bytes}  # fmt: skip


def _size(path: Path) -> int:
    if path.is_symlink() or not path.is_dir():
        return path.lstat().st_size
    total = 0
    for file in iter_files(path):
        try:
            total += file.lstat().st_size
        except OSError:
            pass  # removed meanwhile
    return total


def _is_complete_dist(path: Path) -> bool:
    return (path / MANIFEST).is_file()


def _is_venv(path: Path) -> bool:
    return (path / "pyvenv.cfg").is_file()


def _walk(top: Path, depth: int = 0) -> Iterator[Path]:
    """Entries under top, down to MAX_DEPTH, not inside complete dists, venvs or leftovers."""
    try:
        entries = sorted(top.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        yield entry
        if (
            depth + 1 < MAX_DEPTH and entry.is_dir() and not entry.is_symlink()
            and not LEFTOVER.match(entry.name) and not _is_complete_dist(entry) and not _is_venv(entry)
        ):  # fmt: skip
            yield from _walk(entry, depth + 1)


def _check_safe(folder: Path, project: Project) -> None:
    """Refuse to wipe a folder that holds the project or a user's home (a wrong BUILDER_WORK_DIR)."""
    real = folder.resolve()
    root = project.root.resolve()
    if real == Path(real.anchor) or real == Path.home().resolve() or real == root or real in root.parents:
        raise InputError(f"{folder}: refusing to remove the build caches here", hint="check BUILDER_WORK_DIR")


def plan_clean(project: Project, dist_dir: Path, *, all_caches: bool = False) -> list[Action]:
    """What `builder clean` would do, touching nothing."""
    actions: list[Action] = []
    work = project.work
    if all_caches and work.exists():
        _check_safe(work, project)
        for entry in sorted(work.iterdir()):
            actions.append(Action(kind="remove-cache", path=entry, bytes=_size(entry)))
    seen: set[Path] = set()
    tops = [dist_dir] if all_caches else [work, dist_dir]
    for top in tops:
        for entry in _walk(top):
            match = LEFTOVER.match(entry.name)
            if not match or entry in seen:
                continue
            seen.add(entry)
            final = entry.with_name(match["name"])
            is_old_dir = match["kind"] == "old" and entry.is_dir() and not entry.is_symlink()
            if is_old_dir and not final.exists() and not final.is_symlink():
                actions.append(Action(kind="restore", path=entry, target=final))
            else:
                actions.append(Action(kind="remove", path=entry, bytes=_size(entry)))
    return actions


def apply_clean(actions: list[Action]) -> None:
    for action in actions:
        if action.kind == "restore":
            assert action.target is not None
            os.replace(action.path, action.target)
        elif action.path.is_dir() and not action.path.is_symlink():
            shutil.rmtree(action.path)
        else:
            action.path.unlink(missing_ok=True)
