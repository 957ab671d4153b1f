"""The uv wrapper: every uv call goes through here, with Python downloads off."""

from __future__ import annotations

import re
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


# The causes uv chains under "Failed to fetch: URL" when it never got an answer from the index
# (connection, DNS, TLS, timeout), as opposed to an index that answered "no such package".
_UNREACHABLE = re.compile(
    r"tcp connect error|dns error|error resolving DNS|Connection refused|timed out|"
    r"Network is unreachable|No route to host|certificate|tls handshake|connection closed|"
    r"Connection reset",
    re.IGNORECASE,
)


def network_failure(stderr: str) -> str | None:
    """'URL: cause' when uv's report says an index could not be reached, else None (pure).

    uv prints `error: [Request failed after N retries ...]`, then `cause:` lines from the
    outermost (`Failed to fetch: URL`) to the innermost (`Connection refused (os error 111)`).
    """
    lines = [ln.strip().removeprefix("error:").removeprefix("cause:").strip() for ln in stderr.splitlines()]
    url = next(
        (ln.removeprefix("Failed to fetch:").strip() for ln in lines if ln.startswith("Failed to fetch:")),
        None,
    )
    if url is None or not any(_UNREACHABLE.search(ln) for ln in lines):
        return None
    innermost = next(ln for ln in reversed(lines) if ln)
    retries = next((ln for ln in lines if ln.startswith("Request failed after")), None)
    return f"{url}: {innermost}" + (f" ({retries[0].lower()}{retries[1:]})" if retries else "")
