"""Real separation programs from PyPI, frozen by a traced build and checked against their venv.

Each project is made by `builder init`; each profile extends the init base and names no hidden
import, data file or check command. Each model is tiny, with seeded random weights written by the
program's own code in the profile's venv. One freeze per program for the whole session (minutes:
PyInstaller over torch; fixtures measured on the 2-core machine: demucs 128 s, audio-separator 268 s).

- demucs (Meta's Demucs, PyPI `demucs`): program name = its package's name; it loads its model
  class by pickle, and numpy, torch and the libraries they load come in through its own code. The
  model is demucs's own test model (`demucs_unittest`, a 4-channel HDemucs).
- audio-separator (PyPI `audio-separator`, package `audio_separator`): imports torch only inside
  its command (`audio-separator --help` never loads it), and reads its own package data at run
  time (`models.json`, `models-scores.json`, through `importlib.resources`): no PyInstaller hook
  knows them, the trace adds them. It imports librosa, so the init base's exclude of librosa,
  scipy, numba and llvmlite is lifted by the trace. Its profile leaves out what has no CPU wheel
  for the target (`packages.excluded`: diffq, no cp311 wheel; torchvision, PyPI's is a CUDA
  build), as the lock's errors say. It runs `ffmpeg -version` at start: imageio-ffmpeg's binary
  (tests/requirements-engine.txt) is put on PATH. The model is a BS-RoFormer of width 16 in its
  own config layout (tests/fixtures/real/audio_separator/), built by its RoformerLoader; the model
  list it would download sits in the model folder.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import assert_one_line_error, assert_schema, run_builder

from builder.errors import CheckError
from builder.measure.take.workload import workload_of
from builder.profile import load_profile
from builder.stages.check import check_workload, expected
from builder.stages.install import install
from builder.stages.lock import read_lock
from builder.stages.outputs import read_wav
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

ASEP = "audio-separator-linux-x86_64"
ASEP_PROFILE = """\
description = "audio-separator from PyPI, frozen for Linux x86_64"
extends = "_base"

[target]
name = "linux-x86_64"
python = "3.11"

[packages]
requirements = ["audio-separator[cpu]==0.47.1", "torch==2.13.0+cpu", "threadpoolctl"]
from-wheelhouse = ["torch"]

[packages.excluded]
# what the lock's errors named: no wheel for this target, and a CUDA build beside CPU torch
diffq = "no cp311 wheel; only DiffQ-quantized Demucs models need it"
torchvision = "PyPI's Linux torchvision is a CUDA build; only onnx2torch (ONNX MDX models) imports it"

[indexes]
torch-index = "https://download.pytorch.org/whl/cpu"

[program]
name = "audio-separator"
console-script = "audio-separator"

[runtime]
threads = 2
interop-threads = 1

[bench]
command = "{program} {input} --model_filename tiny_bs_roformer.ckpt --model_file_dir {checkpoint} --output_dir {output} --output_format WAV"
checkpoint = "models"  # the model, its config and the model list, relative to the project
input-seconds = 1
max-size-mb = 1000  # torch, scipy, llvmlite, onnxruntime: librosa and the ONNX models bring them in
"""
# the program's package data, read through importlib.resources when its command runs
ASEP_DATA = ["audio_separator/models.json", "audio_separator/models-scores.json"]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]


def _locked_venv(project: Path, name: str) -> Path:
    """The profile's venv, as the build makes it (the build reuses it)."""
    proc = run_builder("lock", "--profile", name, root=project)
    assert proc.returncode == 0, proc.stderr[-3000:]
    profile = load_profile(name, project / "profiles")
    lock = read_lock(project / "locks" / f"{name}.lock")
    return install(profile, lock, project / "build" / name / "venv", find_wheelhouse(None)).venv


def _built(
    prefix: str,
    name: str,
    profile: str,
    prepare: Callable[[Path, Path], None],
    env: dict[str, str] | None = None,
) -> Iterator[tuple[Path, dict, str]]:
    """A project made by `builder init` with one profile, its model written by `prepare(project,
    venv python)` in the profile's venv, built once: (project, build JSON, log)."""
    folder = Path(tempfile.mkdtemp(prefix=f"builder-real-{prefix}-"))
    project = folder / "project"
    try:
        assert run_builder("init", project).returncode == 0
        (project / "profiles" / f"{name}.toml").write_text(profile)
        # the build reuses the venv the model was written in
        prepare(project, venv_python(_locked_venv(project, name)))
        proc = run_builder("build", "--profile", name, "--json", root=project, env=env, timeout=3000)
        assert proc.returncode == 0, proc.stderr[-4000:]
        assert_schema(json.loads(proc.stdout), "build")  # a traced program's build, as a stems one
        yield project, json.loads(proc.stdout), proc.stderr
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _demucs_model(project: Path, python: Path) -> None:
    (project / "models").mkdir()
    subprocess.run([python, FIXTURES / "demucs" / "make_checkpoint.py", project / "models"], check=True,
                   capture_output=True, timeout=600)  # fmt: skip


def _asep_model(project: Path, python: Path) -> None:
    (project / "models").mkdir()
    config = FIXTURES / "audio_separator" / "tiny_bs_roformer.yaml"
    subprocess.run([python, FIXTURES / "audio_separator" / "make_checkpoint.py", config, project / "models"],
                   check=True, capture_output=True, timeout=600)  # fmt: skip


@pytest.fixture(scope="session")
def demucs_project() -> Iterator[tuple[Path, dict, str]]:
    yield from _built("demucs", DEMUCS, DEMUCS_PROFILE.format(), _demucs_model)


@pytest.fixture(scope="session")
def ffmpeg_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """PATH with an `ffmpeg` on it (audio-separator checks for one at start): imageio-ffmpeg's."""
    import imageio_ffmpeg

    folder = tmp_path_factory.mktemp("ffmpeg-bin")
    (folder / "ffmpeg").symlink_to(imageio_ffmpeg.get_ffmpeg_exe())
    return {"PATH": f"{folder}{os.pathsep}{os.environ.get('PATH', '')}"}


@pytest.fixture(scope="session")
def asep_project(ffmpeg_env: dict[str, str]) -> Iterator[tuple[Path, dict, str]]:
    yield from _built("asep", ASEP, ASEP_PROFILE, _asep_model, env=ffmpeg_env)


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


def test_frozen_audio_separator_separates_like_its_venv_though_its_command_line_never_imports_torch(
    asep_project: tuple[Path, dict, str], ffmpeg_env: dict[str, str]
) -> None:
    """The default check of old (`{program} --help`) would have said "never imported torch"."""
    project, result, log = asep_project
    venv = project / "build" / ASEP / "venv"
    # the trait: its console script parses arguments before torch is imported (in the venv and frozen)
    code = "import sys; from audio_separator.utils import cli; print('torch' in sys.modules)"
    lazy = subprocess.run([venv_python(venv), "-c", code], capture_output=True, text=True, timeout=120)
    assert lazy.stdout.split() == ["False"], lazy.stderr
    frozen_help = subprocess.run([result["program"], "--help"], capture_output=True, text=True, timeout=120,
                                 env={**os.environ, **ffmpeg_env})  # fmt: skip
    assert frozen_help.returncode == 0 and "--model_filename" in frozen_help.stdout
    # the check ran the workload frozen and found the venv's outputs
    assert "workload: 2 output file(s), the same as the venv's run" in log
    venv_out = project / "build" / ASEP / "trace" / "run" / "output"
    stems = sorted(venv_out.rglob("*.wav"))
    assert [p.name for p in stems] == [
        "input_(other)_tiny_bs_roformer.wav",
        "input_(vocals)_tiny_bs_roformer.wav",
    ]
    for stem in stems:
        audio = read_wav(stem)
        assert audio is not None and (audio.frames, audio.channels, audio.rate) == (44100, 2, 44100)
    # what the lock's errors asked for: left out of the resolution, not only of the requirements
    lock = read_lock(project / "locks" / f"{ASEP}.lock")
    assert "diffq" not in lock.pins and "torchvision" not in lock.pins and "onnx2torch-py313" in lock.pins


def test_frozen_audio_separator_has_the_package_data_only_the_trace_found(
    asep_project: tuple[Path, dict, str],
) -> None:
    """audio-separator reads its own package data; the profile lists no data file."""
    project, result, log = asep_project
    manifest = json.loads(Path(result["manifest"]).read_text())
    added = manifest["trace"]["added_to_pyinstaller"]
    print(
        f"audio-separator: the trace added what PyInstaller missed: {json.dumps(added)}"
    )  # for the closing note
    # PyInstaller's own analysis (its hooks included) lacked the package's data: only the trace added
    # it (what freeze.drop removes counts as missed too, but no drop pattern matches these files)
    assert set(ASEP_DATA) <= set(added["datas"]), added["datas"]
    drop = load_profile(ASEP, project / "profiles").freeze.drop
    assert not [d for d in ASEP_DATA for pattern in drop if fnmatch.fnmatch(d, pattern)]
    assert "audio_separator/models.json" in log  # the freeze's log names what it added
    folder = Path(result["program"]).parent / "_internal"
    for rel in added["datas"] + added["metadata"] + added["binaries"]:
        assert (folder / rel).exists(), rel
    # the workload imports librosa and scipy: the init base's excludes were lifted, sklearn's kept
    assert "kept librosa: the workload imports it" in log and "kept scipy: the workload imports it" in log
    assert "left out by freeze.excludes: librosa" not in log
    assert not (folder / "sklearn").exists()
    profile_text = (project / "profiles" / f"{ASEP}.toml").read_text()
    assert "datas" not in profile_text and "collect" not in profile_text and "trace-add" not in profile_text


def test_frozen_audio_separator_without_its_package_data_fails_naming_the_file_and_the_key(
    asep_project: tuple[Path, dict, str],
    ffmpeg_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """What the trace added is what the frozen program needs: taken out, the check names it."""
    project, result, _log = asep_project
    monkeypatch.setenv("PATH", ffmpeg_env["PATH"])
    program = Path(result["program"])
    broken = tmp_path / program.parent.name
    shutil.copytree(program.parent, broken, copy_function=_link)
    (broken / "_internal" / "audio_separator" / "models.json").unlink()
    profile = load_profile(ASEP, project / "profiles")
    workload = workload_of(profile, project)
    assert workload is not None
    want = expected(profile, read_lock(project / "locks" / f"{ASEP}.lock"))
    reference = project / "build" / ASEP / "trace" / "run" / "output"
    with pytest.raises(CheckError) as err:
        check_workload(broken / program.name, workload, want, profile, reference)
    assert "missing file audio_separator/models.json" in str(err.value)
    assert err.value.hint == f'add freeze.trace-add = ["file:audio_separator/models.json"] to {ASEP}.toml'


def test_a_bench_change_alone_checks_the_dist_again_without_a_freeze(
    asep_project: tuple[Path, dict, str], ffmpeg_env: dict[str, str]
) -> None:
    """[bench] is not what the dist is made from, but what it is checked against (issue 20, point 6)."""
    project, result, _log = asep_project
    path = project / "profiles" / f"{ASEP}.toml"
    original = path.read_text()

    def build(*extra: str) -> subprocess.CompletedProcess[str]:
        return run_builder("build", "--profile", ASEP, *extra, root=project, env=ffmpeg_env, timeout=1800)

    try:
        path.write_text(original.replace("input-seconds = 1\n", "input-seconds = 1\ntolerance = 1e-6\n"))
        proc = build("--json")
        assert proc.returncode == 0, proc.stderr[-3000:]
        again = json.loads(proc.stdout)
        assert again["up_to_date"] and again["rechecked"] and again["sha256"] == result["sha256"]
        assert "==> freeze\n" not in proc.stderr and "==> package" not in proc.stderr
        assert "[bench] changed since its last check" in proc.stderr
        assert "==> check" in proc.stderr and "==> bench (smoke)" in proc.stderr
        assert "workload: 2 output file(s), the same as the venv's run" in proc.stderr
        # checked with these settings: the next build does nothing
        proc = build("--json")
        assert proc.returncode == 0 and not json.loads(proc.stdout)["rechecked"], proc.stderr[-3000:]
        assert "==> check" not in proc.stderr
        # a budget the dist is over fails, though the dist is up to date
        path.write_text(original.replace("max-size-mb = 1000", "max-size-mb = 100"))
        proc = build()
        assert_one_line_error(proc, 11, "over the budget of 100 MB", "largest: torch")
        assert "==> freeze\n" not in proc.stderr
    finally:
        path.write_text(original)
