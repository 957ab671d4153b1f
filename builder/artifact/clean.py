"""`builder clean`: remove what interrupted builds left behind, and with --all the build caches.

Plan, then apply. clean removes only what builder's records say it made: names of
builder's one temporary pattern (fsutil.TEMP_NAME: `.NAME.builder-tmp`, `.NAME.builder-old`,
`.NAME.builder-tmp-PID-XXXX` of a process that is gone) inside the work folder or the dist
folder. A complete dist (a folder with manifest.json) is never touched. The dist folder must
look like one `builder build --out` made: only dists and builder's temporary names in it;
anything else (a home folder, `/`, a folder of the user's) is listed and refused before
anything is removed. An `.NAME.builder-old` whose `NAME` is missing is the last good output
of a run that died between its two renames: it is put back, never deleted. Do not run clean
while a build is running.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.artifact.manifest import MANIFEST
from builder.errors import InputError
from builder.fsutil import TEMP_NAME, is_dead_temp, iter_files
from builder.paths import Project
from builder.schemas import tagged

LEFTOVER = TEMP_NAME
MAX_DEPTH = 3  # dist/.P.builder-tmp, build/P/.venv.builder-tmp, build/P/frozen/.stems.builder-tmp
SHOWN = 3  # foreign entries named in a refusal
# Files a file manager or git keeps in any folder: not builder's, never removed, not a reason to refuse
HARMLESS = frozenset({".DS_Store", "Thumbs.db", "desktop.ini", ".gitkeep", ".gitignore"})


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


@dataclass(frozen=True, kw_only=True)
class CleanResult:
    """`builder clean`: what was removed or restored (with --dry-run, what would be)."""

    dry_run: bool
    actions: tuple[Action, ...]

    @property
    def bytes(self) -> int:
        return sum(a.bytes for a in self.actions)

    def to_json(self) -> dict[str, Any]:
        return tagged(
            "clean",
            {"dry_run": self.dry_run, "actions": [a.to_json() for a in self.actions], "bytes": self.bytes},
        )


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
    """Entries under top, down to MAX_DEPTH, not inside venvs or leftovers (inside a complete dist
    only builder's file temps can match: `tune` writes runtime.json there)."""
    try:
        entries = sorted(top.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        yield entry
        if (
            depth + 1 < MAX_DEPTH and entry.is_dir() and not entry.is_symlink()
            and not LEFTOVER.match(entry.name) and not _is_venv(entry)
        ):  # fmt: skip
            yield from _walk(entry, depth + 1)


def _check_safe(folder: Path, project: Project) -> None:
    """Refuse to wipe a folder that holds the project or a user's home (a wrong BUILDER_WORK_DIR)."""
    real = folder.resolve()
    root = project.root.resolve()
    if real == Path(real.anchor) or real == Path.home().resolve() or real == root or real in root.parents:
        raise InputError(f"{folder}: refusing to remove the build caches here", hint="check BUILDER_WORK_DIR")


def _never_a_dist_folder(real: Path, project_root: Path, home: Path) -> str | None:
    """What `real` is when it is `/`, a home folder, the project or above it; else None (pure)."""
    if real == Path(real.anchor):
        return "the file system's root"
    if real == home or real in home.parents:
        return "a home folder" if real == home else "a folder that holds a home folder"
    if real.parent.name in ("home", "Users") and real.parent.parent == Path(real.anchor):
        return "a home folder"
    if real == project_root:
        return "the project folder"
    if real in project_root.parents:
        return "a folder that holds the project"
    return None


def _refuse_root(folder: Path, project: Project) -> None:
    what = _never_a_dist_folder(folder.resolve(), project.root.resolve(), Path.home().resolve())
    if what:
        raise InputError(f"--out {folder}: is {what}, not a dist folder; nothing removed",
                         hint="give the folder `builder build --out` wrote to")  # fmt: skip


def _belongs_in_a_dist_folder(entry: Path) -> bool:
    """A complete dist, a name of builder's temporary pattern, or a file manager's file."""
    if LEFTOVER.match(entry.name):
        return True
    if entry.is_symlink():
        return False
    if entry.name in HARMLESS:
        return entry.is_file()
    return entry.is_dir() and _is_complete_dist(entry)


def check_dist_folder(folder: Path, project: Project) -> None:
    """Raise InputError unless `folder` is absent or holds only dists and builder's temporary names."""
    if not folder.exists() and not folder.is_symlink():
        return
    _refuse_root(folder, project)
    if not folder.is_dir():
        raise InputError(f"--out {folder}: not a folder; nothing removed")
    try:
        entries = sorted(folder.iterdir())
    except OSError as exc:
        raise InputError(f"--out {folder}: cannot list it ({exc.strerror or exc}); nothing removed") from None
    foreign = [e.name for e in entries if not _belongs_in_a_dist_folder(e)]
    if foreign:
        shown = ", ".join(foreign[:SHOWN]) + (
            f" and {len(foreign) - SHOWN} more" if len(foreign) > SHOWN else ""
        )
        raise InputError(
            f"--out {folder}: not a dist folder: {shown} not made by `builder build`; nothing removed",
            hint="give the folder `builder build --out` wrote to (only dists and builder's leftovers in it)",
        )


def plan_clean(project: Project, dist_dir: Path, *, all_caches: bool = False) -> list[Action]:
    """What `builder clean` would do, touching nothing (InputError for a folder that is not ours)."""
    check_dist_folder(dist_dir, project)
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
            if not match or entry in seen or (match["pid"] is not None and not is_dead_temp(entry)):
                continue  # not ours, or a file another builder is writing now
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
