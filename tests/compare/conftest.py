"""Fixtures: a real runtime venv installed from the minimal lock, and variants of it with planted packages.

uv installs from its cache with hard links, so each venv takes seconds even with torch.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from builder.tools.uv import uv_bin
from builder.wheelhouse import find_wheelhouse

from . import wheels

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "locks" / "minimal-linux-x86_64.lock"
COMMANDS = ("bench", "compare", "bisect", "tune")


def run_builder(*args: str | Path, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """The real `builder` CLI in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "builder", "--root", str(ROOT), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


def _uv(*args: str | Path) -> None:
    subprocess.run(
        [uv_bin(), *map(str, args)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"},
    )


def make_venv(dest: Path, extra_wheels: list[Path] = (), runtime: dict | None = None) -> Path:
    """A venv from the minimal lock (what `builder build` installs), plus extra wheels, plus runtime.json."""
    wh = find_wheelhouse(None)
    links = [f"--find-links={wh.path}"] if wh else ["--extra-index-url=https://download.pytorch.org/whl/cpu"]
    _uv("venv", "--quiet", "--python", "3.11", dest)
    _uv("pip", "sync", "--quiet", "--python", dest / "bin" / "python", "--require-hashes", *links, LOCK)
    if extra_wheels:
        _uv("pip", "install", "--quiet", "--no-deps", "--python", dest / "bin" / "python", *extra_wheels)
    if runtime is not None:
        (dest / "runtime.json").write_text(json.dumps(runtime))
    return dest


@pytest.fixture(scope="session")
def scratch() -> Iterator[Path]:
    """Our own folder, not pytest's basetemp: other pytest sessions on this machine rotate those away."""
    folder = Path(tempfile.mkdtemp(prefix="builder-compare-tests-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def wheelhouse(scratch: Path) -> Path:
    folder = scratch / "planted-wheels"
    folder.mkdir()
    wheels.slowpoke(folder)
    wheels.spinner(folder)
    wheels.hang(folder)
    wheels.innocents(folder)
    return folder


@pytest.fixture(scope="session")
def venv_factory(scratch: Path, wheelhouse: Path) -> Callable[..., Path]:
    made: dict[tuple, Path] = {}

    def factory(name: str, packages: tuple[str, ...] = (), runtime: dict | None = None) -> Path:
        key = (name, packages, json.dumps(runtime, sort_keys=True))
        if key not in made:
            whl = [next(wheelhouse.glob(f"{p.replace('-', '_')}-*.whl")) for p in packages]
            made[key] = make_venv(scratch / f"{len(made)}-{name}" / "venv", whl, runtime)
        return made[key]

    return factory
