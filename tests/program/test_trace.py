"""The traced freeze's parts: the trace hook in front of a real program, what builder keeps of it,
what the spec adds, and how a frozen run's outputs and failures are judged.

The program here does what PyInstaller's analysis cannot follow: it imports a plugin by name,
reads a data file of its package through importlib.resources, asks importlib.metadata for its
version, and loads a shared library with ctypes; all of it from a site-packages folder of its own.
"""

from __future__ import annotations

import _json
import json
import os
import shutil
import struct
import subprocess
import sys
import wave
from pathlib import Path

import pytest

from builder.errors import CheckError, ProfileError
from builder.profile import load_profile
from builder.program.entry import hook_text
from builder.stages.freeze import MISSED_NAME, group_missed, spec_text
from builder.stages.outputs import compare_outputs, missing_from, without_probe_frames
from builder.stages.trace import TRACE_INSTALL, TRACE_SOURCE, Trace, adjust, parse_trace, spec_lists

PROGRAM = """\
import ctypes
import importlib
import importlib.metadata
import importlib.resources
import importlib.util
import sys

plugin = importlib.import_module("plugpkg.plugins." + sys.argv[1])
table = importlib.resources.files("plugpkg").joinpath("data/table.json").read_text()
lib = ctypes.CDLL(sys.argv[2])
# loaded lazily and never used, as librosa's `lazy.load("samplerate")`: its code must not run at exit
spec = importlib.util.find_spec("plugpkg.broken")
spec.loader = importlib.util.LazyLoader(spec.loader)
sys.modules["plugpkg.broken"] = lazy = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lazy)
print(plugin.NAME, table.strip(), importlib.metadata.version("plugpkg"))
"""


def _site(tmp_path: Path) -> Path:
    site = tmp_path / "site-packages"
    (site / "plugpkg/plugins").mkdir(parents=True)
    (site / "plugpkg/data").mkdir()
    (site / "plugpkg/libs").mkdir()
    (site / "plugpkg/__init__.py").write_text("")
    (site / "plugpkg/plugins/__init__.py").write_text("")
    (site / "plugpkg/plugins/loud.py").write_text("NAME = 'loud'\n")
    (site / "plugpkg/data/table.json").write_text('{"gain": 2}\n')
    (site / "plugpkg/broken.py").write_text("raise OSError('libbroken not found')\n")
    (site / "plugpkg-1.0.dist-info").mkdir()
    (site / "plugpkg-1.0.dist-info/METADATA").write_text(
        "Metadata-Version: 2.1\nName: plugpkg\nVersion: 1.0\n"
    )
    (site / "plugpkg-1.0.dist-info/RECORD").write_text("")
    # any real shared library will do: one of the interpreter's own extension modules
    ext = Path(_json.__file__)
    shutil.copyfile(ext, site / "plugpkg/libs/libgain.so")
    return site


def _trace(tmp_path: Path) -> tuple[dict, Path]:
    site = _site(tmp_path)
    launcher = tmp_path / "launcher.py"
    launcher.write_text(
        TRACE_INSTALL.format(source=TRACE_SOURCE.read_text()) + hook_text(bundled=False) + PROGRAM
    )
    raw = tmp_path / "trace.json"
    env = {**os.environ, "PYTHONPATH": str(site), "RUNTIME_BUILDER_TRACE": str(raw)}
    # -S: no site-packages, so builder's own runtime_doctor is not importable, as in a program's
    # venv: the hook's finder serves it from its text
    proc = subprocess.run(
        [sys.executable, "-S", launcher, "loud", site / "plugpkg/libs/libgain.so"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "trace: not written" not in proc.stderr
    assert proc.stdout.split() == ["loud", '{"gain":', "2}", "1.0"]
    return json.loads(raw.read_text()), site


@pytest.mark.skipif(sys.platform != "linux", reason="the library part reads /proc/self/maps (Linux)")
def test_the_trace_records_what_the_program_touched_that_its_code_does_not_name(tmp_path: Path) -> None:
    raw, site = _trace(tmp_path)
    trace = parse_trace(raw, site)
    assert {"plugpkg", "plugpkg.plugins", "plugpkg.plugins.loud", "importlib.metadata"} <= set(trace.modules)
    assert not any(m.startswith("_runtime_builder") for m in trace.modules)  # builder's own hooks
    assert "plugpkg.broken" not in trace.modules  # lazily loaded, never run
    # the doctor's rule book, served by builder's hook from its own text, is not the program's
    assert not [m for m in trace.modules if m.split(".")[0] == "runtime_doctor"]
    # a module's other names are not modules to bundle: os.path is posixpath
    assert "posixpath" in trace.modules and "os.path" not in trace.modules
    assert "_frozen_importlib" not in trace.modules
    assert trace.files == ("plugpkg/data/table.json",)
    assert trace.metadata == ("plugpkg-1.0.dist-info",)
    assert trace.libraries == ("plugpkg/libs/libgain.so",)
    # sorted: two traces of one program give one spec, whatever order the run saw things in
    assert list(trace.modules) == sorted(trace.modules)


def test_the_spec_adds_the_trace_after_pyinstallers_own_analysis(tmp_path: Path, root: Path) -> None:
    site = _site(tmp_path)
    trace = Trace(modules=("plugpkg.plugins.loud",), files=("plugpkg/data/table.json",),
                  metadata=("plugpkg-1.0.dist-info",), libraries=("plugpkg/libs/libgain.so",))  # fmt: skip
    lists = spec_lists(trace, site)
    assert lists["datas"] == sorted(
        [
            ["plugpkg-1.0.dist-info/METADATA", str(site.resolve() / "plugpkg-1.0.dist-info/METADATA")],
            ["plugpkg-1.0.dist-info/RECORD", str(site.resolve() / "plugpkg-1.0.dist-info/RECORD")],
            ["plugpkg/data/table.json", str(site.resolve() / "plugpkg/data/table.json")],
        ]
    )
    profile = load_profile("minimal-linux-x86_64", root / "profiles")
    from builder.program.entry import resolve_program

    (tmp_path / "profiles").mkdir()
    entry = resolve_program(profile, site, root)
    scratch = tmp_path / "scratch"
    text = spec_text(profile, root=root, launcher=scratch / "x.py", hook=scratch / "h.py", need_sources=[],
                     toplevel_out=scratch / "top.json", entry=entry, scratch=scratch, trace=lists)  # fmt: skip
    compile(text, "spec", "exec")
    assert "'plugpkg.plugins.loud'" in text and str(scratch / MISSED_NAME) in text
    assert text.index("process_post_graph_hooks = _then_the_trace") < text.index("a = Analysis(")


def _profile(tmp_path: Path, freeze: str) -> Path:
    (tmp_path / "profiles").mkdir(exist_ok=True)
    (tmp_path / "profiles/p.toml").write_text(
        'description = "p"\n[target]\nname = "linux-x86_64"\npython = "3.11"\n[program]\nname = "sep"\nscript = "a.py"\n'
        f'[freeze]\nexcludes = ["plugpkg.plugins"]\n{freeze}'
    )
    return tmp_path / "profiles"


def test_trace_add_and_ignore_change_the_trace_by_hand_and_excludes_still_win(tmp_path: Path) -> None:
    site = _site(tmp_path)
    profiles = _profile(
        tmp_path,
        'trace-add = ["module:plugpkg.extra", "file:plugpkg/data/*.json", "metadata:PlugPkg"]\n'
        'trace-ignore = ["library:plugpkg/libs/*"]\n',
    )
    found = Trace(modules=("plugpkg", "plugpkg.plugins.loud"), files=(), metadata=(),
                  libraries=("plugpkg/libs/libgain.so",))  # fmt: skip
    trace = adjust(found, load_profile("p", profiles), site)
    assert trace.modules == ("plugpkg", "plugpkg.extra")
    assert trace.excluded == ("plugpkg.plugins.loud",)
    assert trace.files == ("plugpkg/data/table.json",) and trace.metadata == ("plugpkg-1.0.dist-info",)
    assert trace.libraries == () and trace.ignored == ("library:plugpkg/libs/libgain.so",)


@pytest.mark.parametrize(
    ("entry", "needle"),
    [("plugpkg/data/table.json", "is not KIND:NAME"), ("file:plugpkg/nothing.bin", "matches nothing")],
)
def test_a_trace_add_entry_that_is_wrong_is_one_error_naming_the_key(
    tmp_path: Path, entry: str, needle: str
) -> None:
    site = _site(tmp_path)
    profiles = _profile(tmp_path, f'trace-add = ["{entry}"]\n')
    empty = Trace(modules=(), files=(), metadata=(), libraries=())
    with pytest.raises(ProfileError, match=r"key 'freeze\.trace-add'") as err:
        adjust(empty, load_profile("p", profiles), site)
    assert needle in str(err.value)


def _wav(path: Path, samples: list[int], channels: int = 2) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as fh:
        fh.setnchannels(channels)
        fh.setsampwidth(2)
        fh.setframerate(44100)
        fh.writeframes(struct.pack(f"<{len(samples)}h", *samples))


def test_outputs_compare_by_files_shapes_and_the_declared_tolerance(tmp_path: Path) -> None:
    venv, frozen = tmp_path / "venv", tmp_path / "frozen"
    _wav(venv / "t/bass.wav", [0, 100, 200, 300])
    _wav(frozen / "t/bass.wav", [0, 100, 200, 301])
    (venv / "t/notes.txt").write_text("ok")
    assert compare_outputs(venv, frozen, None) == [
        "t/notes.txt: written by the venv's run, missing from the frozen program's",
        "t/bass.wav: samples differ (max abs diff 3.05e-05; [bench].tolerance allows a difference)",
    ]
    (frozen / "t/notes.txt").write_text("ok")
    assert compare_outputs(venv, frozen, 1e-4) == []
    assert compare_outputs(venv, frozen, 1e-5) == [
        "t/bass.wav: samples differ by up to 3.05e-05, over [bench].tolerance = 1e-05"
    ]
    _wav(frozen / "t/bass.wav", [0, 100, 200, 300, 400, 500])
    assert compare_outputs(venv, frozen, 1.0) == [
        "t/bass.wav: 3 frames x 2 channels at 44100 Hz, the venv's 2 x 2 at 44100 Hz"
    ]


def _float_wav_with_peak(path: Path, samples: list[float], stamp: int) -> None:
    """A float WAV as libsndfile writes one (soundfile's subtype FLOAT): a PEAK chunk, with the
    time it was written, before the samples."""
    fmt = struct.pack("<HHIIHH", 3, 1, 44100, 44100 * 4, 4, 32)
    peak = struct.pack("<II", 1, stamp) + struct.pack("<fI", max(map(abs, samples)), 0)
    body = struct.pack(f"<{len(samples)}f", *samples)
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"PEAK" + struct.pack("<I", len(peak)) + peak
    chunks += b"data" + struct.pack("<I", len(body)) + body
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks)


def test_wavs_with_the_same_samples_are_the_same_output_whatever_their_header_says(tmp_path: Path) -> None:
    # melband-roformer-infer writes its stems this way: two runs differ only in the PEAK time
    venv, frozen = tmp_path / "venv", tmp_path / "frozen"
    _float_wav_with_peak(venv / "vocals.wav", [0.25, -0.5, 0.125], stamp=1_800_000_000)
    _float_wav_with_peak(frozen / "vocals.wav", [0.25, -0.5, 0.125], stamp=1_800_000_007)
    assert (venv / "vocals.wav").read_bytes() != (frozen / "vocals.wav").read_bytes()
    assert compare_outputs(venv, frozen, None) == []
    _float_wav_with_peak(frozen / "vocals.wav", [0.25, -0.5, 0.25], stamp=1_800_000_007)
    assert compare_outputs(venv, frozen, None) == [
        "vocals.wav: samples differ (max abs diff 0.125; [bench].tolerance allows a difference)"
    ]


STDERR = """\
Traceback (most recent call last):
  File "demucs_separate.py", line 4, in <module>
  File "<runtime-builder probe>", line 155, in _timed_import
  File "demucs/separate.py", line 13, in <module>
    from .api import Separator
ModuleNotFoundError: No module named 'sphn'
FileNotFoundError: [Errno 2] No such file or directory: '{folder}/_internal/demucs/remote/files.txt'
OSError: libgain.so: cannot open shared object file: No such file or directory
importlib.metadata.PackageNotFoundError: No package metadata was found for plugpkg
"""


def test_a_failed_frozen_run_names_what_is_missing_and_the_key_that_adds_it(tmp_path: Path) -> None:
    folder = tmp_path / "dist/sep"
    found = missing_from(STDERR.format(folder=folder), folder)
    assert found == [
        ("module sphn", "module:sphn"),
        ("the metadata of distribution plugpkg", "metadata:plugpkg"),
        ("library libgain.so", "library:libgain.so"),
        ("file demucs/remote/files.txt", "file:demucs/remote/files.txt"),
    ]
    shown = without_probe_frames(STDERR)
    assert "<runtime-builder" not in shown and 'File "demucs/separate.py"' in shown


def test_the_log_names_metadata_folders_once_not_file_by_file() -> None:
    missed = {"modules": ["b", "a"], "binaries": [],
              "datas": ["pkg/data/x.json", "pkg-1.0.dist-info/RECORD", "pkg-1.0.dist-info/METADATA"]}  # fmt: skip
    assert group_missed(missed) == {
        "modules": ["a", "b"], "datas": ["pkg/data/x.json"], "metadata": ["pkg-1.0.dist-info"], "binaries": []
    }  # fmt: skip


def _script_run(tmp_path: Path, body: str) -> pytest.ExceptionInfo[CheckError]:
    """run_trace of a script program (this interpreter as its venv's python) that runs `body`."""
    from helpers import team_profile

    from builder.measure.take.workload import workload_of
    from builder.program.entry import resolve_program
    from builder.stages.trace import run_trace

    (tmp_path / "profiles").mkdir()
    (tmp_path / "app").mkdir()
    (tmp_path / "app/sep.py").write_text(body)
    (tmp_path / "profiles/p.toml").write_text(team_profile("app/sep.py"))
    profile = load_profile("p", tmp_path / "profiles")
    entry = resolve_program(profile, tmp_path / "no-site-packages", tmp_path)
    workload = workload_of(profile, tmp_path)
    assert workload is not None
    with pytest.raises(CheckError) as info:
        run_trace(profile, entry, workload, Path(sys.executable), tmp_path / "trace", "sha256:x")
    return info


def test_a_workload_that_fails_in_the_venv_is_named_before_any_freeze(tmp_path: Path) -> None:
    info = _script_run(tmp_path, "import sys\nsys.exit('no model at models/x.ckpt')\n")
    assert "the workload failed in the venv, before any freeze (exit 1): no model at models/x.ckpt" in str(
        info.value
    )


def test_a_workload_that_exits_past_the_trace_says_so_not_that_it_failed(tmp_path: Path) -> None:
    info = _script_run(tmp_path, "import os\nos._exit(0)\n")
    assert "ran in the venv (exit 0) but left no trace" in str(info.value)
    assert "os._exit()" in (info.value.hint or "")
