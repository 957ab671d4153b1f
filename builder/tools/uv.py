"""The uv wrapper: every uv call goes through here, with Python downloads off."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from functools import cache
from pathlib import Path

from builder.errors import PythonNotFoundError, ToolError
from builder.tools import process

# uv must never fetch an interpreter: the target's Python is part of the build host.
BASE_ENV = {"UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"}


@cache
def uv_bin() -> str:
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if not found:
            raise ToolError(
                "uv not found: install runtime-builder with its dependencies (`make dev`)"
            ) from None
        return found


@cache
def version() -> str:
    out = process.run([uv_bin(), "--version"], tool="uv").stdout.split()
    return out[1] if len(out) > 1 else out[0]


def run(
    args: Sequence[str | Path], *, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return process.run([uv_bin(), *args], tool="uv", env={**BASE_ENV, **(env or {})}, check=check)


def find_python(version_request: str) -> Path:
    """The interpreter for `3.X` on this machine, or a clear error."""
    proc = run(["python", "find", "--no-project", version_request], check=False)
    if proc.returncode != 0:
        raise PythonNotFoundError(
            f"Python {version_request} is not available on this machine",
            hint=f"install CPython {version_request} and put python{version_request} on PATH; "
            "builder never downloads interpreters",
        )
    return Path(proc.stdout.strip())
