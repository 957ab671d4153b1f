"""Where builder reads profiles and locks and writes its work, from one place."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, kw_only=True)
class Project:
    root: Path

    @property
    def profiles(self) -> Path:
        return self.root / "profiles"

    @property
    def locks(self) -> Path:
        return self.root / "locks"

    @property
    def work(self) -> Path:
        """Venvs, tools and frozen folders between builds (git-ignored)."""
        return Path(os.environ.get("BUILDER_WORK_DIR") or self.root / "build")

    @property
    def runtime_entry(self) -> Path:
        return self.root / "runtime_entry"

    def lock_path(self, profile: str) -> Path:
        return self.locks / f"{profile}.lock"


def find_project(start: Path | None = None) -> Project:
    """BUILDER_ROOT, else the nearest folder up from `start` with profiles/, else the checkout."""
    if env := os.environ.get("BUILDER_ROOT"):
        return Project(root=Path(env).resolve())
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "profiles").is_dir() and (folder / "runtime_entry").is_dir():
            return Project(root=folder)
    return Project(root=Path(__file__).resolve().parent.parent)
