"""`builder init`: write a project (profiles for a target, locks/, .gitignore) into a folder.

The profiles are the ones this checkout ships (copied into the wheel as templates; a test keeps
them equal): a minimal profile and an extended one that adds the packages such runtimes carry.
Nothing that exists is overwritten: an init into a project refuses, naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.errors import InputError
from builder.fsutil import atomic_write_text
from builder.schemas import tagged
from builder.targets import TARGETS, host_target

TEMPLATES = Path(__file__).resolve().parent / "templates"

# Prepended to the minimal profile: what a project usually changes first.
GUIDE = """\
# Written by `builder init`. Edit freely; `builder profiles` validates, `builder lock` resolves.
#
# Your own program instead of the bundled `stems` (exactly one of the first three):
#   [program]
#   name = "my-separator"                 # the executable's name
#   console-script = "msst-inference"     # a console script of a package in this profile, or
#   function = "my_app.worker:main"       # a module:function, or
#   script = "app/worker.py"              # a script in this project
#   datas = ["configs"]                   # project files or folders to bundle beside it
#   collect = ["my_app"]                  # packages whose every submodule must be bundled
#
# Relax a pin that an upstream package sets too tightly (uv's --override):
#   [packages]
#   overrides = ["torch==2.13.0+cpu"]
#
"""


@dataclass(frozen=True, kw_only=True)
class InitResult:
    root: Path
    target: str
    written: tuple[Path, ...]

    def to_json(self) -> dict[str, Any]:
        return tagged(
            "init", {"root": str(self.root), "target": self.target, "files": [str(p) for p in self.written]}
        )


def files_for(target: str) -> dict[str, str]:
    """Project-relative path -> text for a target's project (pure but for reading templates)."""
    minimal = f"minimal-{target}.toml"
    extended = f"extended-{target}.toml"
    return {
        "profiles/_base.toml": (TEMPLATES / "_base.toml").read_text(encoding="utf-8"),
        f"profiles/{minimal}": GUIDE + (TEMPLATES / minimal).read_text(encoding="utf-8"),
        f"profiles/{extended}": (TEMPLATES / extended).read_text(encoding="utf-8"),
        "locks/.gitkeep": "",
        ".gitignore": (TEMPLATES / "gitignore.txt").read_text(encoding="utf-8"),
    }


def init_project(folder: Path, target: str | None) -> InitResult:
    """Write the project; refuse before writing anything when a file is already there."""
    if target is None:
        host = host_target()
        if host is None:
            raise InputError("this host is none of the known targets", hint="pass --target")
        target = host.name
    if target not in TARGETS:
        raise InputError(f"--target: unknown target {target!r}", hint=f"known: {', '.join(sorted(TARGETS))}")
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{folder}: not a folder")
    files = files_for(target)
    for rel in files:
        if (folder / rel).exists():
            raise InputError(
                f"{folder / rel}: already exists", hint="init writes into an empty folder or a new one"
            )
    written = []
    for rel, text in files.items():
        atomic_write_text(folder / rel, text)
        written.append(folder / rel)
    return InitResult(root=folder.resolve(), target=target, written=tuple(written))
