"""Package names that an output folder cannot shadow, and a clean clone that holds every package.

`builder/dist/` once shared its name with the `dist/` output folder, and an unanchored `dist/` in
.gitignore dropped the package from a clean clone: the wheel built there lacked it.
"""

from __future__ import annotations

import fnmatch
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_ROOTS = ("builder", "runtime_entry")


def ignored_folder_names(gitignore: str) -> set[str]:
    """The folder patterns of a .gitignore (`/dist/`, `.venv/`, `*.egg-info/`), as bare names.

    >>> sorted(ignored_folder_names("/dist/\\n# a comment\\n.venv/\\n*.pyc\\n*.egg-info/\\n"))
    ['*.egg-info', '.venv', 'dist']
    """
    names = set()
    for line in gitignore.splitlines():
        line = line.strip()
        if line.endswith("/") and not line.startswith(("#", "!")):
            names.add(line.strip("/").rsplit("/", 1)[-1])
    return names


def packages() -> list[Path]:
    """Every package folder of builder/ and runtime_entry/ on disk (relative to the project)."""
    found = []
    for top in PACKAGE_ROOTS:
        found += [p.parent.relative_to(ROOT) for p in sorted((ROOT / top).rglob("__init__.py"))]
    return found


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout


def test_the_folder_names_are_read_from_gitignore() -> None:
    names = ignored_folder_names((ROOT / ".gitignore").read_text(encoding="utf-8"))
    assert {"dist", "build", ".venv"} <= names, names


def test_no_package_is_named_like_an_ignored_output_folder() -> None:
    names = ignored_folder_names((ROOT / ".gitignore").read_text(encoding="utf-8"))
    clashes = [
        f"{pkg.as_posix()} (named like the ignored folder {pattern}/)"
        for pkg in packages()
        for part in pkg.parts
        for pattern in names
        if fnmatch.fnmatchcase(part, pattern)
    ]
    assert not clashes, "\n".join(clashes)


def test_no_package_file_is_ignored_by_git() -> None:
    files = [f"{pkg.as_posix()}/__init__.py" for pkg in packages()]
    # check-ignore exits 1 when none of the paths is ignored; it prints those that are.
    proc = subprocess.run(
        ["git", "check-ignore", "--no-index", *files], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 1 and not proc.stdout, proc.stdout or proc.stderr


def test_a_clean_clone_holds_every_package() -> None:
    tracked = set(git("ls-files", "-z", *PACKAGE_ROOTS).split("\0"))
    missing = [
        f"{pkg.as_posix()}/__init__.py"
        for pkg in packages()
        if f"{pkg.as_posix()}/__init__.py" not in tracked
    ]
    assert not missing, f"packages git does not track (a clean clone lacks them): {missing}"
