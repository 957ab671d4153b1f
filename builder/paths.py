"""Where builder reads profiles and locks and writes its work, from one place.

A project is any folder with `profiles/` (what `builder init` writes); it need not be this
checkout. The bundled program `runtime_entry/` ships in the same wheel as builder, beside it;
a project that has its own `runtime_entry/` (this checkout) freezes that one.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

# runtime_entry is installed beside builder (one wheel, or this checkout): found by path, never imported.
BUNDLED_RUNTIME_ENTRY = Path(__file__).resolve().parent.parent / "runtime_entry"
BUNDLED_RUNTIME_DOCTOR = BUNDLED_RUNTIME_ENTRY.with_name("runtime_doctor")


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
        """The bundled program's package: the project's own copy if it has one, else the installed one."""
        own = self.root / "runtime_entry"
        return own if (own / "main.py").is_file() else BUNDLED_RUNTIME_ENTRY

    def runtime_entry_path(self) -> Path:
        """A folder to put on a venv's PYTHONPATH for `python -m runtime_entry`: the project's own, or
        one holding only a link to the installed package (never the installed builder's site-packages)."""
        if self.runtime_entry.parent == self.root:
            return self.root
        folder = self.work / ".runtime-entry-path"
        # stems imports runtime_doctor (stdlib only, installed beside it) for `stems doctor`
        for link, package in (
            (folder / "runtime_entry", self.runtime_entry),
            (folder / "runtime_doctor", BUNDLED_RUNTIME_DOCTOR),
        ):
            if not link.exists():
                folder.mkdir(parents=True, exist_ok=True)
                if sys.platform == "win32":  # links need a privilege there
                    shutil.copytree(package, link, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    link.symlink_to(package, target_is_directory=True)
        return folder

    def lock_path(self, profile: str) -> Path:
        return self.locks / f"{profile}.lock"


def find_project(start: Path | None = None) -> Project:
    """BUILDER_ROOT, else the nearest folder up from `start` with profiles/, else the checkout
    builder runs from (when it has profiles/), else `start` itself."""
    if env := os.environ.get("BUILDER_ROOT"):
        return Project(root=Path(env).resolve())
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "profiles").is_dir():
            return Project(root=folder)
    checkout = Path(__file__).resolve().parent.parent
    return Project(root=checkout if (checkout / "profiles").is_dir() else here)
