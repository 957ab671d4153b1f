"""examples/msst: ZFTurbo's msst-inference frozen from PyPI, separating, and compared with stems.

One build per profile for the whole module (each is a PyInstaller freeze of torch: minutes). The
example is built in place; its random checkpoint is written by msst's own model class. With RUNTIME_BUILDER_DOCS=1 the two comparison reports are also written to docs/.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import run_builder
from packaging.utils import canonicalize_name

from builder.contract import violations
from builder.measure.take.workload import workload_of
from builder.profile import load_profile

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "msst"
STEMS, MSST, EXTENDED = "stems-linux-x86_64", "msst-linux-x86_64", "msst-extended-linux-x86_64"
DOCS = os.environ.get("RUNTIME_BUILDER_DOCS") == "1"

# Three freezes of torch and two compares: ~40 min on 2 cores, more than CI's budget allows on top
# of the suite, so `make test` deselects it (it says so) and `make test-examples` runs it.
# (the three freezes happen in the first test's fixture: beyond the suite's 30-minute test timeout
# on a loaded machine)
pytestmark = [pytest.mark.slow, pytest.mark.example, pytest.mark.timeout(7200)]


@pytest.fixture(scope="module")
def project() -> Path:
    # Built in place (build/, dist/ and the checkpoint are git-ignored there), as a user would:
    # a second run of the module finds the dists up to date instead of freezing them again.
    subprocess.run([sys.executable, EXAMPLE / "job/make_checkpoint.py"], check=True, capture_output=True)
    return EXAMPLE


@pytest.fixture(scope="module")
def dists(project: Path) -> dict[str, Path]:
    built = {}
    for profile in (MSST, STEMS, EXTENDED):
        proc = run_builder("build", "--profile", profile, "--json", root=project)
        assert proc.returncode == 0, proc.stderr[-4000:]
        built[profile] = Path(json.loads(proc.stdout)["artifact"])
    return built


def test_the_example_locks_are_fresh_and_record_the_override(project: Path) -> None:
    proc = run_builder("lock", "--check", "--all", root=project)
    assert proc.returncode == 0, proc.stderr
    lock = (project / "locks" / f"{MSST}.lock").read_text()
    assert (
        "# override torch==2.13.0+cpu" in lock and "\ntorch==2.13.0+cpu" in lock and "\nmsst==0.1.0" in lock
    )


def test_frozen_msst_inference_separates_with_the_msst_config_and_a_random_checkpoint(
    project: Path, dists: dict[str, Path], tmp_path: Path
) -> None:
    dist = dists[MSST]
    manifest = json.loads((dist / "manifest.json").read_text())
    assert manifest["program"] == {"name": "msst-inference", "entry": "console script msst-inference"}
    assert manifest["overrides"] == ["torch==2.13.0+cpu"]
    workload = workload_of(load_profile(MSST, project / "profiles"), project)
    assert workload is not None
    work = tmp_path
    argv = workload.render([str(dist / "msst-inference" / "msst-inference")], work)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "MKL_", "PYTHON"))}
    env["RUNTIME_BUILDER_PROBE"] = str(work / "probe.json")
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=900, cwd=work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    stems = sorted(p.name for p in (work / "output").rglob("*.wav"))
    assert stems == ["bass.wav", "drums.wav", "other.wav", "vocals.wav"]
    probe = json.loads((work / "probe.json").read_text())
    assert violations(probe, "probe") == []
    assert probe["frozen"] and probe["settings_applied_by"] == "probe"
    assert probe["versions"]["torch"] == "2.13.0+cpu" and probe["matmul_precision"] == "high"
    assert probe["threads"]["interop"] == 2 and probe["threads"]["at_import"] == probe["threads"]["requested"]
    assert [p["prefix"] for p in probe["threadpools"] if p["user_api"] == "openmp"] == ["libgomp"]


def test_frozen_msst_inference_answers_the_doctors_switch_with_its_own_command(
    project: Path, dists: dict[str, Path], tmp_path: Path
) -> None:
    """A team's program, no code of its own: RUNTIME_BUILDER_DOCTOR=FILE and its own command write the
    report at exit, judged against the dist's fingerprint; a planted pinning variable is named alone."""
    dist = dists[MSST]
    assert violations(json.loads((dist / "fingerprint.json").read_text()), "fingerprint") == []
    workload = workload_of(load_profile(MSST, project / "profiles"), project)
    assert workload is not None
    argv = workload.render([str(dist / "msst-inference" / "msst-inference")], tmp_path)
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "MKL_", "GOMP_", "KMP_", "PYTHON"))
    }
    report = tmp_path / "doctor.txt"
    env.update(RUNTIME_BUILDER_DOCTOR=str(report), GOMP_CPU_AFFINITY="0")
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=900, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(Path(f"{report}.json").read_text())
    assert violations(doc, "runtime-doctor") == [] and doc["runtime"]["profile"] == MSST
    assert [c["id"] for c in doc["causes"]] == ["affinity-pinning"], doc["causes"]
    assert "this machine runs the calibration" in report.read_text()


def _compare(project: Path, a: Path, b: Path, name: str, out: Path) -> dict:  # type: ignore[type-arg]
    proc = run_builder(
        "compare",
        a,
        b,
        "--repeat",
        "3",
        "--metric",
        "total",
        "--out",
        out,
        "--json",
        root=project,
        timeout=3600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "report.json", "report.md"]
    if DOCS:
        shutil.copytree(out, ROOT / "docs" / name, dirs_exist_ok=True)
    result: dict = json.loads(proc.stdout)  # type: ignore[type-arg]
    return result


def test_builder_compare_of_frozen_stems_and_frozen_msst_inference_on_the_same_job(
    project: Path, dists: dict[str, Path], tmp_path: Path
) -> None:
    result = _compare(project, dists[STEMS], dists[MSST], "msst-compare", tmp_path)
    a, b = result["a"]["runtime"]["workload"], result["b"]["runtime"]["workload"]
    # the same job: the same config, checkpoint and generated input on both sides
    assert a["config"] == b["config"] and a["checkpoint"] == b["checkpoint"] and a["input"] == b["input"]
    for side in ("a", "b"):
        runs = result["runs"][side]
        assert runs and all(not r.get("failed") and not r.get("hung") for r in runs), runs
        assert all(r["outputs"] for r in runs)
    assert result["verdict_metric"] == "total_s" and len(result["performance"]["total_s"]["a"]) == 3


def test_minimal_against_extended_msst_names_where_the_difference_comes_from(
    project: Path, dists: dict[str, Path], tmp_path: Path
) -> None:
    result = _compare(project, dists[MSST], dists[EXTENDED], "msst-extended-compare", tmp_path)
    added = {canonicalize_name(row["name"]) for row in result["packages"]["only_in_b"]}
    # (packages with files in the bundle: pure-Python ones live in the PYZ archive, see the manifest)
    assert {"onnxruntime", "onnx"} <= added, added
    # the extended program imports what it carries: modules of packages only B has are among the
    # largest import differences, and the attribution names them
    top = [row["package"] for row in result["imports"]["top_differences"][:8] if row["diff_ms"] > 0]
    carried = [name for name in top if canonicalize_name(name) in added]
    assert carried, (top, added)
    assert any(carried[0] in line for line in result["attribution"]), result["attribution"]
