"""The frozen minimal runtime's own doctor, builder absent: each planted cause is named, and no other.

The dist is the session's one build (tests/conftest.py `frozen_minimal`); each case runs its
`stems doctor --json` in a scrubbed environment (no PYTHONPATH: nothing of builder or this checkout
can reach the program, whose bundle holds neither) with one thing an app controls changed: its CPU
mask, a variable, a library preloaded, a cgroup, a busy neighbour. `builder doctor` of the same dist
under the same plant names the same causes: one rule book (runtime_doctor.rules).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from builder.contract import violations

from .conftest import ROOT, clean_environ

pytestmark = pytest.mark.slow
CGROUP_V1_CPU = Path("/sys/fs/cgroup/cpu")


def _program(frozen_minimal: dict) -> Path:
    program = Path(frozen_minimal["program"])
    internal = program.parent / "_internal"
    assert not (internal / "builder").exists()  # the bundle holds no builder
    return program


def _env(**plant: str) -> dict[str, str]:
    env = {k: v for k, v in clean_environ(**plant).items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return {**env, "PATH": "/usr/bin:/bin"}


def stems_doctor(program: Path, env: dict[str, str], prefix: tuple[str, ...] = ()) -> dict:
    proc = subprocess.run(
        [*prefix, str(program), "doctor", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd="/",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    print(doc["verdict"], doc["notes"])
    return doc


def paste(program: Path, env: dict[str, str], prefix: tuple[str, ...] = (), what: str = "") -> str:
    """The plain-text report, as a user would paste it (printed for the closing note with -s)."""
    proc = subprocess.run([*prefix, str(program), "doctor"], capture_output=True, text=True, env=env, timeout=300,
                          cwd="/")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    print(f"\n===== stems doctor, {what} =====\n{proc.stdout}")
    return proc.stdout


def builder_doctor(dist: Path, env: dict[str, str], prefix: tuple[str, ...] = ()) -> dict:
    proc = subprocess.run(
        [*prefix, sys.executable, "-m", "builder", "--root", str(ROOT), "doctor", str(dist), "--seconds", "1",
         "--no-cost", "--json"],
        capture_output=True, text=True, env={**env, "PATH": os.environ["PATH"]}, timeout=600, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def ids(doc: dict) -> list[str]:
    return [c["id"] for c in doc["causes"]]


def test_a_clean_run_names_nothing_and_compares_with_the_fingerprint(frozen_minimal: dict) -> None:
    doc = stems_doctor(_program(frozen_minimal), _env())
    assert ids(doc) == [], doc["causes"]
    assert not violations(doc, "runtime-doctor"), violations(doc, "runtime-doctor")
    ident = doc["runtime"]
    assert ident["profile"] == "minimal-linux-x86_64" and ident["dist_sha256"] == frozen_minimal["sha256"]
    assert doc["closing"]["text"].startswith("this machine runs the calibration ")
    assert doc["figures"]["build_calibration_s"] > 0 and doc["figures"]["calibration_s"] > 0
    assert "verdict: no problem found" in paste(_program(frozen_minimal), _env(), what="clean")


def test_the_report_is_redacted_and_written_to_a_file(frozen_minimal: dict, tmp_path: Path) -> None:
    report = tmp_path / "doctor.txt"
    env = _env(HOME=str(tmp_path), SECRET_TOKEN="hunter2")
    proc = subprocess.run([_program(frozen_minimal), "doctor", "--report", report], capture_output=True,
                          text=True, env=env, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = report.read_text()
    assert text == proc.stdout and "hunter2" not in text and str(tmp_path) not in text
    assert "this machine runs the calibration" in text and "profile minimal-linux-x86_64" in text


@pytest.mark.skipif(shutil.which("taskset") is None, reason="taskset (util-linux) is not installed")
def test_one_core_affinity_is_cpu_limit_alone(frozen_minimal: dict) -> None:
    if (os.cpu_count() or 1) < 2:
        pytest.skip("needs a machine with 2 CPUs to give the runtime 1")
    doc = stems_doctor(_program(frozen_minimal), _env(), prefix=("taskset", "-c", "0"))
    assert ids(doc) == ["cpu-limit"], doc["causes"]
    assert "CPU affinity mask [0]" in doc["causes"][0]["evidence"][0]
    assert "[cpu-limit]" in paste(_program(frozen_minimal), _env(), ("taskset", "-c", "0"), "taskset -c 0")
    b = builder_doctor(Path(frozen_minimal["artifact"]), _env(), prefix=("taskset", "-c", "0"))
    assert ids(b) == ids(doc), b["causes"]


def test_an_inherited_omp_num_threads_1_is_seen_and_overwritten_by_the_runtime(frozen_minimal: dict) -> None:
    # a frozen runtime exports its own thread count before torch's import: the inherited 1 is a note
    doc = stems_doctor(_program(frozen_minimal), _env(OMP_NUM_THREADS="1"))
    assert ids(doc) == [], doc["causes"]
    assert any(
        "OMP_NUM_THREADS=1 inherited from the parent; the runtime overwrote it" in n for n in doc["notes"]
    )
    assert doc["figures"]["env_parent"] == {"OMP_NUM_THREADS": "1"}
    b = builder_doctor(Path(frozen_minimal["artifact"]), _env(OMP_NUM_THREADS="1"))
    assert ids(b) == [] and any("overwrote it" in n for n in b["notes"]), (b["causes"], b["notes"])


def test_a_pinning_affinity_variable_is_named_alone(frozen_minimal: dict) -> None:
    doc = stems_doctor(_program(frozen_minimal), _env(GOMP_CPU_AFFINITY="0"))
    assert ids(doc) == ["affinity-pinning"], doc["causes"]
    assert "GOMP_CPU_AFFINITY=0" in doc["causes"][0]["title"]
    assert "[affinity-pinning]" in paste(
        _program(frozen_minimal), _env(GOMP_CPU_AFFINITY="0"), what="GOMP_CPU_AFFINITY=0"
    )
    b = builder_doctor(Path(frozen_minimal["artifact"]), _env(GOMP_CPU_AFFINITY="0"))
    assert ids(b) == ids(doc), b["causes"]


def _second_openmp() -> Path:
    import sklearn  # the test environment's: its wheel carries a libgomp of its own

    libs = sorted((Path(sklearn.__file__).parents[1] / "scikit_learn.libs").glob("libgomp*.so*"))
    if not libs:
        pytest.skip("scikit-learn's own libgomp is not in this environment: no second OpenMP to preload")
    return libs[0]


def test_a_second_openmp_runtime_loaded_is_named_alone(frozen_minimal: dict) -> None:
    env = _env(LD_PRELOAD=str(_second_openmp()))
    doc = stems_doctor(_program(frozen_minimal), env)
    assert ids(doc) == ["two-openmp-runtimes"], doc["causes"]
    assert "libgomp-" in doc["causes"][0]["evidence"][0]
    b = builder_doctor(Path(frozen_minimal["artifact"]), env)
    assert ids(b) == ids(doc), b["causes"]


@pytest.fixture
def half_a_core_cgroup() -> Iterator[Path]:
    folder = CGROUP_V1_CPU / f"rb-doctor-{os.getpid()}"
    try:
        folder.mkdir()
        (folder / "cpu.cfs_quota_us").write_text("50000")
    except OSError as exc:
        pytest.skip(f"cannot make a CPU-quota cgroup here ({folder}: {exc.strerror}); the quota is tested "
                    "through host.cgroup_quota's parsers only")  # fmt: skip
    yield folder
    for _ in range(50):  # the cgroup empties when its last process has exited
        try:
            folder.rmdir()
            break
        except OSError:
            time.sleep(0.1)


def test_a_cpu_quota_cgroup_is_cpu_limit_alone(frozen_minimal: dict, half_a_core_cgroup: Path) -> None:
    enter = ("sh", "-c", f'echo $$ > {half_a_core_cgroup}/cgroup.procs && exec "$@"', "sh")
    doc = stems_doctor(_program(frozen_minimal), _env(), prefix=enter)
    assert ids(doc) == ["cpu-limit"], doc["causes"]
    assert any("cgroup CPU quota 0.5 cores" in e for e in doc["causes"][0]["evidence"])


@pytest.fixture
def busy_neighbours() -> Iterator[int]:
    n = 2 * (os.cpu_count() or 1)  # two per core: they outnumber the runtime's threads
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    time.sleep(0.5)
    yield n
    for p in spinners:
        p.kill()
        p.wait()


def test_a_calibration_slowed_by_a_busy_process_is_named_alone(
    frozen_minimal: dict, busy_neighbours: int
) -> None:
    doc = stems_doctor(_program(frozen_minimal), _env())
    assert ids(doc) == ["busy-cores"], doc["causes"]
    closing = doc["closing"]
    assert closing["slower"] > closing["explained"], closing  # slower than its cores explain
