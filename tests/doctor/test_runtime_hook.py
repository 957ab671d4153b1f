"""A team's own program gets the doctor through the freeze's hook alone: RUNTIME_BUILDER_DOCTOR=FILE
makes the program's own command write the report at exit. The hook's text (what the freeze writes
in front of the program) runs in a venv that has torch and neither builder nor runtime_doctor;
the build's step comes first: the same program with RUNTIME_BUILDER_FINGERPRINT."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from builder.program.entry import hook_text

from .conftest import clean_environ

pytestmark = pytest.mark.slow

# The team's program: it knows nothing of runtime-builder.
PROGRAM = """\
import torch

a = torch.randn(256, 256)
print("done", float((a @ a).abs().sum()) > 0)
"""


def _launch(venv: Path, tmp_path: Path, **env_extra: str) -> None:
    launch = tmp_path / "app.py"
    launch.write_text(hook_text(bundled=False) + PROGRAM)
    env = {k: v for k, v in clean_environ(**env_extra).items() if k != "PYTHONPATH"}
    proc = subprocess.run([venv / "bin" / "python", launch], capture_output=True, text=True, env=env, timeout=300,
                          cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0 and "done True" in proc.stdout, proc.stderr[-3000:]
    assert "runtime-builder doctor: not written" not in proc.stderr, proc.stderr


@pytest.fixture
def fingerprinted(doctor_venv: Path, tmp_path: Path) -> Iterator[Path]:
    """The venv with the build's step done: the fingerprint beside the interpreter (where a frozen
    program's dist keeps it, beside manifest.json)."""
    target = doctor_venv / "bin" / "fingerprint.json"
    _launch(doctor_venv, tmp_path, RUNTIME_BUILDER_FINGERPRINT=str(target))
    assert json.loads(target.read_text())["calibration"]["total_s"] > 0
    yield doctor_venv
    target.unlink()


def _run(venv: Path, tmp_path: Path, **plant: str) -> tuple[str, dict]:
    report = tmp_path / "doctor.txt"
    _launch(venv, tmp_path, RUNTIME_BUILDER_DOCTOR=str(report), **plant)
    return report.read_text(), json.loads(Path(f"{report}.json").read_text())


def test_the_venv_has_no_doctor_of_its_own(doctor_venv: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in clean_environ().items() if k != "PYTHONPATH"}
    proc = subprocess.run([doctor_venv / "bin" / "python", "-c", "import runtime_doctor"], capture_output=True,
                          env=env, cwd=tmp_path)  # fmt: skip
    assert proc.returncode != 0


def test_a_team_program_writes_the_report_at_exit(fingerprinted: Path, tmp_path: Path) -> None:
    text, doc = _run(fingerprinted, tmp_path)
    assert doc["causes"] == [] and doc["program"] == "app.py" and text.startswith("runtime doctor: app.py")
    assert doc["figures"]["calibration"]["total_s"] > 0 and "this machine runs the calibration" in text


def test_a_team_program_under_a_pinning_variable_names_it(fingerprinted: Path, tmp_path: Path) -> None:
    text, doc = _run(fingerprinted, tmp_path, GOMP_CPU_AFFINITY="0")
    assert [c["id"] for c in doc["causes"]] == ["affinity-pinning"], doc["causes"]
    assert "[affinity-pinning] GOMP_CPU_AFFINITY=0 pins the OpenMP threads" in text
