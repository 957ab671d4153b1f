"""Planted causes, one at a time, on a real venv: the doctor names each one, and nothing else.

Workloads are short (tiny model, 1 s of audio; programs of a few seconds): the causes are named
from what the doctor observes (settings, masks, pools, threads), not from timings, which a shared
2-core machine cannot keep steady. The measured cost is reported beside them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import clean_environ, run_doctor

pytestmark = pytest.mark.slow
SHORT = ("--seconds", "1")

# A program of the app's own, not built by runtime-builder: it never sets threads itself.
TORCH_JOB = """
import time, torch
a = torch.randn(600, 600)
t0 = time.perf_counter()
while time.perf_counter() - t0 < 2:
    a @ a
print("threads", torch.get_num_threads())
"""
# The same job in a process that also imported scikit-learn (its own libgomp, unfixed venv).
WITH_SKLEARN = "import sklearn.cluster\n" + TORCH_JOB
# The same job beside an onnxruntime session that the app runs every 20 ms on another thread,
# created with onnxruntime's defaults (its intra-op pool spins between runs).
MATMUL_ONNX = (
    "CAg6QAoRCgF4CgF4EgF5IgZNYXRNdWwSAWdaEwoBeBIOCgwIARIICgIIQAoCCEBiEwoBeRIOCgwIARIICgIIQAoCCEBCBAoAEBE="
)
ORT_SESSION = """
import base64, threading, time, numpy as np, onnxruntime as ort
so = ort.SessionOptions()
so.intra_op_num_threads = 2
{options}session = ort.InferenceSession(base64.b64decode("{onnx}"), so, providers=["CPUExecutionProvider"])
x = np.ones((64, 64), dtype="float32")
def serve():
    while True:
        session.run(None, {{"x": x}})
        time.sleep(0.02)
threading.Thread(target=serve, daemon=True).start()
"""
WITH_ORT = ORT_SESSION.format(options="", onnx=MATMUL_ONNX) + TORCH_JOB
# The fix the doctor names, applied: the same session with its spin-wait off is no cause.
WITH_ORT_NOT_SPINNING = (
    ORT_SESSION.format(
        options="so.add_session_config_entry('session.intra_op.allow_spinning', '0')\n", onnx=MATMUL_ONNX
    )
    + TORCH_JOB
)


def _diagnose(proc: subprocess.CompletedProcess[str]) -> dict:
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def _ids(r: dict) -> list[str]:
    return [c["id"] for c in r["causes"]]


def _program(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "app_job.py"
    path.write_text(text)
    return path


SCHEMA = Path(__file__).resolve().parents[2] / "builder" / "schemas" / "doctor.schema.json"


def schema_errors(doc: dict) -> list[str]:
    import jsonschema

    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]


def test_a_clean_runtime_is_no_problem_found_with_its_figures(doctor_venv: Path) -> None:
    r = _diagnose(run_doctor(doctor_venv, *SHORT, "--json"))
    assert r["schema"] == "runtime-builder/doctor/1" and not schema_errors(r), schema_errors(r)
    assert r["verdict"] == "no problem found" and r["causes"] == [], r["causes"]
    f = r["figures"]
    assert f["threads"] == f["usable_cpus"] >= 1 and f["threads_at_import"] == f["threads"]
    assert len(f["openmp"]) == 1 and "torch/lib/libgomp" in f["openmp"][0]["path"]
    assert f["job_unit"] == "s/chunk" and f["job_seconds"] > 0
    assert not any(t["pinned"] for t in f["thread_rows"]) and f["settings_calls"] is not None


def test_interop_far_above_the_cores_is_named_with_its_fix(doctor_venv: Path) -> None:
    # 8 on 2 CPUs (stems refuses more than 4 per CPU): what 16 was on the Intel Mac's 4 cores
    r = _diagnose(run_doctor(doctor_venv, *SHORT, "--json", env=clean_environ(STEMS_INTEROP_THREADS="8")))
    assert _ids(r) == ["interop-threads"], r["causes"]
    assert not schema_errors(r), schema_errors(r)  # a cause with a measured cost follows the schema too
    c = r["causes"][0]
    assert "runtime.interop-threads = 1" in c["fix"] and "= 8;" in c["evidence"][0]
    assert c["cost"]["measured"] and c["cost"]["with_fix"] == "STEMS_INTEROP_THREADS=1"


def test_a_pinning_affinity_variable_is_named(doctor_venv: Path) -> None:
    r = _diagnose(run_doctor(doctor_venv, *SHORT, "--json", env=clean_environ(GOMP_CPU_AFFINITY="0")))
    assert _ids(r) == ["affinity-pinning"], r["causes"]
    c = r["causes"][0]
    assert "GOMP_CPU_AFFINITY=0" in c["title"] and 'runtime.env.OMP_PROC_BIND = "false"' in c["fix"]
    assert "pinned to CPU(s) [0]" in c["evidence"][1]
    assert c["cost"]["measured"] and c["cost"]["with_fix"] == "OMP_PROC_BIND=false"


@pytest.mark.skipif(shutil.which("taskset") is None, reason="taskset (util-linux) is not installed")
def test_a_one_cpu_mask_with_two_threads_asked_for_is_named(doctor_venv: Path) -> None:
    env = clean_environ(STEMS_THREADS="2")
    r = _diagnose(run_doctor(doctor_venv, *SHORT, "--json", env=env, prefix=("taskset", "-c", "0")))
    assert _ids(r) == ["cpu-limit"], r["causes"]
    c = r["causes"][0]
    assert c["title"] == "2 threads on 1 usable CPU(s)" and "CPU affinity mask [0]" in c["evidence"][1]
    assert 'runtime.threads = "auto"' in c["fix"] and c["cost"]["with_fix"] == "STEMS_THREADS=1"


def test_omp_num_threads_1_inherited_by_a_program_that_keeps_it_is_named(
    doctor_venv: Path, tmp_path: Path
) -> None:
    prog = _program(tmp_path, TORCH_JOB)
    env = clean_environ(OMP_NUM_THREADS="1")
    r = _diagnose(run_doctor(doctor_venv, "--program", prog, "--json", env=env))
    assert r["figures"]["usable_cpus"] >= 2, "needs a machine with 2 CPUs"
    assert _ids(r) == ["inherited-omp-num-threads"], r["causes"]
    c = r["causes"][0]
    assert c["cost"]["with_fix"] == "without OMP_NUM_THREADS" and "runtime.threads" in c["fix"]
    # stems itself overwrites an inherited 1 before torch's import: a note, not a cause
    r2 = _diagnose(run_doctor(doctor_venv, *SHORT, "--no-cost", "--json", env=env))
    assert r2["causes"] == [] and any("overwrote it" in n for n in r2["notes"]), r2


def test_two_openmp_runtimes_in_an_unfixed_venv_are_named(doctor_venv: Path, tmp_path: Path) -> None:
    r = _diagnose(run_doctor(doctor_venv, "--program", _program(tmp_path, WITH_SKLEARN), "--json"))
    assert _ids(r) == ["two-openmp-runtimes"], r["causes"]
    c = r["causes"][0]
    assert "scikit_learn.libs/libgomp" in c["evidence"][0] and "torch/lib/libgomp" in c["evidence"][0]
    assert "builder openmp VENV --fix" in c["fix"] and c["cost"]["measured"] is False


def test_a_spinning_onnxruntime_session_is_named(doctor_venv: Path, tmp_path: Path) -> None:
    r = _diagnose(run_doctor(doctor_venv, "--program", _program(tmp_path, WITH_ORT), "--json"))
    assert _ids(r) == ["spinning-threads"], r["causes"]
    c = r["causes"][0]
    assert "onnxruntime session" in c["title"] and "allow_spinning" in c["fix"]
    assert "onnxruntime" in r["figures"]["libraries_loaded"]
    # a program's cores busy from the runner's samples, over the job (torch's 2 threads, 2 s)
    f = r["figures"]
    assert f["cores_busy"] is not None and f["cores_busy"] > 0.5, f
    assert f["cores_busy_source"].startswith("builder's psutil samples"), f


def test_the_same_session_without_spinning_is_not_named(doctor_venv: Path, tmp_path: Path) -> None:
    prog = _program(tmp_path, WITH_ORT_NOT_SPINNING)
    r = _diagnose(run_doctor(doctor_venv, "--program", prog, "--no-cost", "--json"))
    assert r["causes"] == [], r["causes"]
    assert "onnxruntime" in r["figures"]["libraries_loaded"]
    assert all((t["cores_after_job"] or 0) < 0.1 for t in r["figures"]["thread_rows"])
