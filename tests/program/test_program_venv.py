"""A profile's own program measured from its venv, the way its freeze runs it: the probe's hook
first, with the profile's settings, then the entry; `bench` (and so compare and bisect) read the probe."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import run_builder, team_profile

from builder.measure.take.subject import venv_subject
from builder.paths import Project

RUNTIME = 'threads = 2\ninterop-threads = 1\nmatmul-precision = "medium"\n'

# Knows nothing of runtime-builder: reads the input, imports torch, writes one file.
SCRIPT = """\
import sys
from pathlib import Path

import torch

a = torch.randn(64, 64)
out = Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
(out / "result.txt").write_text(f"{Path(sys.argv[1]).stat().st_size} {float((a @ a).sum()):.1f}")
"""


def _project(tmp_path: Path) -> Path:
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles/p.toml").write_text(team_profile("app/separate.py", runtime=RUNTIME))
    (tmp_path / "app").mkdir()
    (tmp_path / "app/separate.py").write_text(SCRIPT)
    # the profile's venv: this interpreter's environment (it has torch), where builder looks for it
    (tmp_path / "build/p").mkdir(parents=True)
    (tmp_path / "build/p/venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    return tmp_path


def test_a_script_profiles_venv_runs_the_script_behind_the_probe(tmp_path: Path) -> None:
    project = _project(tmp_path)
    rt = venv_subject(project / "build/p/venv", Project(root=project), profile="p")
    assert rt.workload is not None and rt.argv[0].endswith(("python", "python.exe"))
    launcher = Path(rt.argv[1]).read_text()
    # the hook comes first, as in the frozen program's runtime hook
    assert launcher.index("RUNTIME_BUILDER_PROBE") < launcher.index("separate.py")
    assert json.loads(Path(rt.env["STEMS_RUNTIME_CONFIG"]).read_text())["matmul_precision"] == "medium"


@pytest.mark.slow
def test_bench_of_a_foreign_programs_venv_reads_its_probe(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    project = _project(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "MKL_"))}
    proc = run_builder("bench", project / "build/p/venv", "--repeat", "1", "--json", root=project, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    run = report["runs"][0]
    assert run.get("failed") is None and run["hung"] is None, run
    assert run["outputs"] == ["result.txt"] and run["import_s"] > 0
    # the profile's settings reached torch before the script's first line, through the hook
    assert report["threads"] == {"requested": 2, "at_import": 2, "torch": 2, "interop": 1}
    assert report["matmul_precision"] == "medium" and run["env"]["OMP_NUM_THREADS"] == "2"


@pytest.mark.slow
def test_tune_tries_candidates_on_a_foreign_program_through_the_hook(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    project = _project(tmp_path)
    proc = run_builder(
        "tune", project / "build/p/venv", "--threads", "1", "--threads", "2", "--repeat", "1", "--dry-run",
        "--json", root=project,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(proc.stdout)
    # what the program ran with, read from its probe: the profile's settings
    assert r["current"] == {"threads": 2, "interop_threads": 1, "matmul_precision": "medium"}
    assert [row["threads"] for row in r["stages"]["threads"]] == [1, 2]
    assert all(row["median_s"] > 0 for rows in r["stages"].values() for row in rows), r["stages"]
    # (that a candidate's STEMS_* variables reach the program: test_probe's outrank test)
    assert r["written"] is False and not (project / "build/p/venv/runtime.json").exists()


@pytest.mark.slow
def test_doctor_runs_a_foreign_programs_own_workload_and_names_its_interop_threads(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    project = _project(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "MKL_", "STEMS_"))}
    # what an app's environment would plant: the hook honours it over runtime.json, as stems does
    env["STEMS_INTEROP_THREADS"] = "8"
    proc = run_builder("doctor", project / "build/p/venv", "--json", root=project, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(proc.stdout)
    assert r["figures"]["workload"]["command"] == "{program} {input} {output}", r["figures"]["workload"]
    assert r["figures"]["threads"] == 2 and r["figures"]["interop"] == 8
    assert [c["id"] for c in r["causes"]] == ["interop-threads"], r["causes"]
    assert r["causes"][0]["cost"]["with_fix"] == "STEMS_INTEROP_THREADS=1"


def test_the_venv_stand_in_of_a_program_named_like_its_package_runs_the_package(tmp_path: Path) -> None:
    # [program] name "sep" for the function sep.cli:main: a stand-in named sep.py would import itself
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles/p.toml").write_text(
        team_profile("x.py").replace('script = "x.py"', 'function = "sep.cli:main"')
    )
    (tmp_path / "sep").mkdir()
    (tmp_path / "sep/__init__.py").write_text("")
    (tmp_path / "sep/cli.py").write_text("def main():\n    print('separated')\n    return 0\n")
    (tmp_path / "build/p").mkdir(parents=True)
    (tmp_path / "build/p/venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    rt = venv_subject(tmp_path / "build/p/venv", Project(root=tmp_path), profile="p")
    proc = subprocess.run(rt.argv, env={**os.environ, **rt.env}, capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stdout.strip()) == (0, "separated"), proc.stderr[-2000:]
