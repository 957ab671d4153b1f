"""One shared venv for every planted case: the minimal lock (torch, scikit-learn; no OpenMP fix)
plus onnxruntime from PyPI (what the extended profile adds). uv installs it from its cache in
seconds. Each case plants one cause through what an app controls: the environment it starts
the runtime with, its CPU mask, or the program it runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from builder.tools.uv import uv_bin
from tests.compare.conftest import make_venv

ROOT = Path(__file__).resolve().parents[2]
# What builder's own environment must not carry into a case that does not plant it.
PLANTABLE = ("OMP_", "KMP_", "GOMP_", "STEMS_", "MKL_", "BUILDER_DOCTOR")


def clean_environ(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(PLANTABLE)}
    return {**env, "PYTHONWARNINGS": "ignore", **extra}


def run_doctor(
    *args: str | Path, env: dict[str, str] | None = None, prefix: tuple[str, ...] = (), timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, sys.executable, "-m", "builder", "--root", str(ROOT), "doctor", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=env if env is not None else clean_environ(),
    )


@pytest.fixture(scope="session")
def doctor_venv() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="builder-doctor-tests-"))
    venv = make_venv(folder / "venv")
    subprocess.run(
        [uv_bin(), "pip", "install", "--quiet", "--python", venv / "bin" / "python", "onnxruntime"],
        check=True,
        capture_output=True,
        env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"},
    )
    yield venv
    shutil.rmtree(folder, ignore_errors=True)
