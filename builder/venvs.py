"""Where a venv keeps its interpreter and packages, on every target."""

from __future__ import annotations

import sys
from pathlib import Path

from builder.errors import CheckError


def venv_python(venv: Path) -> Path:
    """`bin/python` on POSIX, `Scripts/python.exe` on Windows (it may not exist yet)."""
    return venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def existing_venv_python(venv: Path) -> Path:
    """The venv's interpreter, which must exist (a venv made for this host)."""
    python = venv_python(venv)
    if not python.exists():
        raise CheckError(f"{venv}: no {python.relative_to(venv)} in this venv", hint="it needs a native venv")
    return python


def site_packages_of(venv: Path) -> Path:
    """`lib/python3.X/site-packages` on POSIX, `Lib/site-packages` on Windows."""
    found = sorted(venv.glob("lib/python3*/site-packages")) or sorted(venv.glob("Lib/site-packages"))
    if not found:
        raise FileNotFoundError(f"{venv}: no site-packages")
    return found[0]
