"""Real separation programs from PyPI, frozen by a traced build and checked against their venv.

demucs (Meta's Demucs, PyPI `demucs`): its console script imports torch inside its command, it
loads its model class by pickle, and numpy, torch and the libraries they load come in through
its own code. The project is made by `builder init`; the profile extends the init base and names
no hidden import, data file or check command. The model is demucs's own test model
(`demucs_unittest`, a 4-channel HDemucs) with seeded random weights, saved by the project's
script with demucs's code in the profile's venv.

One freeze per program for the whole session (minutes: PyInstaller over torch).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import assert_schema, run_builder

from builder.errors import CheckError
from builder.measure.take.workload import workload_of
from builder.profile import load_profile
from builder.stages.check import check_workload, expected
from builder.stages.install import install
from builder.stages.lock import read_lock
from builder.venvs import venv_python
from builder.wheelhouse import find_wheelhouse

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "real"
DEMUCS = "demucs-linux-x86_64"
# [program].name is not "demucs": a launcher named like the package shadows it (issue 20, point 3,
# fixed on its own branch); the console script is demucs's own.
DEMUCS_PROFILE = """\
description = "demucs from PyPI, frozen for Linux x86_64"
extends = "_base"

[target]
name = "linux-x86_64"
python = "3.11"

[packages]
# demucs imports numpy without requiring it
requirements = ["demucs==4.1.0", "numpy", "torch==2.13.0+cpu", "threadpoolctl"]
from-wheelhouse = ["torch"]

[indexes]
torch-index = "https://download.pytorch.org/whl/cpu"

[program]
name = "demucs"  # the package's own name: the launcher must not shadow it
console-script = "demucs"

[runtime]
threads = 2
interop-threads = 1

[bench]
# --shifts 0: demucs's default shift is random; the check compares bytes with the venv's run
command = "{{program}} -n tiny --repo {{checkpoint}} --shifts 0 -o {{output}} {{input}}"
checkpoint = "models"  # a folder, relative to the project
input-seconds = 1
max-size-mb = 700
"""

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]


@pytest.fixture(scope="session")
def demucs_project() -> Iterator[tuple[Path, dict, str]]:
    """A project made by `builder init`, its demucs profile built once: (project, build JSON, log)."""
    folder = Path(tempfile.mkdtemp(prefix="builder-real-demucs-"))
    project = folder / "project"
    try:
        assert run_builder("init", project).returncode == 0
        models = project / "models"
        models.mkdir()
        (project / "profiles" / f"{DEMUCS}.toml").write_text(DEMUCS_PROFILE.format())
        proc = run_builder("lock", "--profile", DEMUCS, root=project)
        assert proc.returncode == 0, proc.stderr[-3000:]
        # the model, by demucs's own code in the profile's venv (the build reuses that venv)
        profile = load_profile(DEMUCS, project / "profiles")
        lock = read_lock(project / "locks" / f"{DEMUCS}.lock")
        venv = install(profile, lock, project / "build" / DEMUCS / "venv", find_wheelhouse(None)).venv
        subprocess.run([venv_python(venv), FIXTURES / "demucs" / "make_checkpoint.py", models], check=True,
                       capture_output=True, timeout=600)  # fmt: skip
        proc = run_builder("build", "--profile", DEMUCS, "--json", root=project, timeout=3000)
        assert proc.returncode == 0, proc.stderr[-4000:]
        assert_schema(json.loads(proc.stdout), "build")  # a traced program's build, as a stems one
        yield project, json.loads(proc.stdout), proc.stderr
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_frozen_demucs_separates_into_stems_of_the_inputs_length_equal_to_its_venv(
    demucs_project: tuple[Path, dict, str],
) -> None:
    project, _result, log = demucs_project
    # the check ran the workload frozen and found the venv's outputs, byte for byte
    assert "workload: 4 output file(s), the same as the venv's run" in log
    venv_out = project / "build" / DEMUCS / "trace" / "run" / "output"
    stems = sorted(venv_out.rglob("*.wav"))
    assert [p.name for p in stems] == ["bass.wav", "drums.wav", "other.wav", "vocals.wav"]
    for stem in stems:
        with wave.open(str(stem)) as fh:
            assert fh.getnframes() == 44100 and fh.getnchannels() == 2


def test_the_manifest_and_the_log_say_what_the_trace_added_that_pyinstaller_missed(
    demucs_project: tuple[Path, dict, str],
) -> None:
    project, result, log = demucs_project
    manifest = json.loads(Path(result["manifest"]).read_text())
    trace = manifest["trace"]
    added = trace["added_to_pyinstaller"]
    assert trace["modules"] > 500 and "demucs-4.1.0.dist-info" in trace["metadata"]
    assert "the trace added what PyInstaller's analysis missed" in log
    print(f"demucs: the trace added what PyInstaller missed: {json.dumps(added)}")  # for the closing note
    folder = Path(result["program"]).parent / "_internal"
    # what the trace added is in the frozen folder, where the program looks for it
    for rel in added["datas"] + added["metadata"] + added["binaries"]:
        assert (folder / rel).exists(), rel
    # demucs's own code asks importlib.metadata (through its dependencies); PyInstaller copies no
    # metadata of a package without a hook that asks for it
    assert added["metadata"] and set(added["metadata"]) <= set(trace["metadata"])
    stored = json.loads((project / "build" / DEMUCS / "trace" / "trace.json").read_text())
    assert stored["modules"] == sorted(stored["modules"]) and len(stored["modules"]) == trace["modules"]
    # metadata of what the base excludes is not bundled: it would announce a package that is not there
    assert not any(m.startswith(("sympy-", "jinja2-", "networkx-")) for m in trace["metadata"])


def test_a_frozen_program_missing_a_module_names_it_and_the_key_that_adds_it(
    demucs_project: tuple[Path, dict, str], tmp_path: Path
) -> None:
    project, result, _log = demucs_project
    program = Path(result["program"])
    broken = tmp_path / program.parent.name
    shutil.copytree(program.parent, broken, copy_function=_link)
    for lib in (broken / "_internal").glob("lameenc*.so"):  # demucs/audio.py imports lameenc
        lib.unlink()
    profile = load_profile(DEMUCS, project / "profiles")
    workload = workload_of(profile, project)
    assert workload is not None
    want = expected(profile, read_lock(project / "locks" / f"{DEMUCS}.lock"))
    reference = project / "build" / DEMUCS / "trace" / "run" / "output"
    with pytest.raises(CheckError) as err:
        check_workload(broken / program.name, workload, want, profile, reference)
    assert "missing module lameenc" in str(err.value)
    assert err.value.hint == f'add freeze.trace-add = ["module:lameenc"] to {DEMUCS}.toml'
    assert "runtime-builder probe" not in str(err.value)


def _link(src: str, dst: str) -> None:
    Path(dst).hardlink_to(src)
