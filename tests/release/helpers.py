"""Small synthetic dists (packaged by the real builder.artifact.manifest.package()) and the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from builder.artifact.manifest import package

ROOT = Path(__file__).resolve().parents[2]


def make_dist(tmp: Path, name: str = "tiny-linux-x86_64") -> Path:
    """dist/NAME/ with stems/ (a program, a library, a symlink to it, a nested folder)."""
    frozen = tmp / "frozen" / "stems"
    (frozen / "_internal" / "pkg").mkdir(parents=True)
    (frozen / "stems").write_bytes(b"\x7fELF program bytes\n" * 10)
    (frozen / "_internal" / "libgomp.so.1").write_bytes(b"primary OpenMP runtime\n" * 50)
    (frozen / "_internal" / "other.so").write_bytes(b"another library\n" * 5)
    (frozen / "_internal" / "pkg" / "__init__.pyc").write_bytes(b"code")
    os.symlink("libgomp.so.1", frozen / "_internal" / "libgomp-dup.so.1")
    dist = tmp / "dist" / name
    package(frozen, dist, {"profile": name}, {"selftest.json": "{}\n"}, archive_epoch=315532800)
    return dist


def run_cli(
    *args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "builder", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )
