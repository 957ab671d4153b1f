"""Fixtures for the hostile-input tests of stems and its worker (the engine tests' real helpers)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# `worker` is the engine tests' fixture, shared: one place starts and closes workers.
from engine.conftest import ROOT, stems_env, tone, worker

__all__ = ["worker"]


def run_stems(
    *args: str | Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runtime_entry", *map(str, args)],
        cwd=ROOT,
        env={**stems_env(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def partials(folder: Path) -> list[Path]:
    """Half-written files anywhere under `folder` (stems' temporary names)."""
    return sorted(p for p in folder.rglob("*") if ".partial" in p.name) if folder.exists() else []


def errors_of(proc: subprocess.CompletedProcess[str]) -> list[str]:
    """stderr without the UNTRAINED note every seeded-weights run prints."""
    return [ln for ln in proc.stderr.splitlines() if "UNTRAINED" not in ln]


def assert_one_line(proc: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    """Bad input: the documented code, one `stems: error:` line, no traceback."""
    lines = errors_of(proc)
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr and len(lines) == 1, proc.stderr
    assert lines[0].startswith("stems: error: "), lines
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


@pytest.fixture
def wav(tmp_path: Path) -> Path:
    import soundfile as sf

    path = tmp_path / "in" / "song.wav"
    path.parent.mkdir()
    sf.write(str(path), tone(0.4, 44100), 44100, subtype="FLOAT")
    return path


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """The output folder; afterwards nothing half-written may be left in it."""
    folder = tmp_path / "out"
    yield folder
    assert partials(folder) == []


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    if sys.platform == "win32":
        pytest.skip("os.mkfifo is POSIX-only")
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return path
