"""One file per OpenMP runtime in a frozen folder, and the check that the program loads that file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from builder.artifact.bundle import frozen_problems, loaded_openmp
from builder.fsutil import sha256_file
from builder.openmp.frozen import loaded_problems, one_file_per_runtime, plan_relinks
from builder.openmp.model import family_name
from builder.profile import load_profile
from builder.tools import pyinstaller

ROOT = Path(__file__).resolve().parents[2]
GOMP = b"\x7fELF GNU libgomp, torch's build\n" * 100
OTHER_GOMP = b"\x7fELF GNU libgomp, another build\n" * 100


def frozen(tmp_path: Path) -> Path:
    """What PyInstaller leaves when it could not keep the venv fix's link: a full copy."""
    folder = tmp_path / "stems"
    internal = folder / "_internal"
    (internal / "torch" / "lib").mkdir(parents=True)
    (internal / "scikit_learn.libs").mkdir()
    (internal / "torch" / "lib" / "libgomp.so.1").write_bytes(GOMP)
    (internal / "scikit_learn.libs" / "libgomp-e985bcbb.so.1.0.0").write_bytes(GOMP)  # the copy
    (internal / "torch" / "lib" / "libtorch_cpu.so").write_bytes(b"\x7fELF torch\n")
    (folder / "stems").write_bytes(b"\x7fELF program\n")
    return folder


def test_family_patterns_come_from_the_contract() -> None:
    assert family_name("libgomp.so.1") == "GNU libgomp"
    assert family_name("libomp.dylib") == "LLVM libomp"
    assert family_name("vcomp140.dll") == "MSVC vcomp"
    assert family_name("libtorch_cpu.so") is None


def test_a_duplicate_copy_becomes_a_relative_link_to_torchs_file(tmp_path: Path) -> None:
    folder = frozen(tmp_path)
    result = one_file_per_runtime(folder, symlinks=True)
    copy = folder / "_internal" / "scikit_learn.libs" / "libgomp-e985bcbb.so.1.0.0"
    primary = folder / "_internal" / "torch" / "lib" / "libgomp.so.1"
    assert result.runtimes == ("_internal/torch/lib/libgomp.so.1",)
    assert [r.path for r in result.relinked] == ["_internal/scikit_learn.libs/libgomp-e985bcbb.so.1.0.0"]
    assert copy.is_symlink() and os.readlink(copy) == "../torch/lib/libgomp.so.1"
    assert copy.resolve() == primary.resolve() and sha256_file(primary) == sha256_file(copy)
    # a second pass finds nothing left to do
    again = one_file_per_runtime(folder, symlinks=True)
    assert again.relinked == () and again.runtimes == result.runtimes


def test_a_different_runtime_is_kept_and_named_by_the_check(tmp_path: Path) -> None:
    folder = frozen(tmp_path)
    (folder / "_internal" / "libgomp-system.so.1").write_bytes(OTHER_GOMP)
    keep, relinks = plan_relinks(folder)
    assert keep == ("_internal/libgomp-system.so.1", "_internal/torch/lib/libgomp.so.1")
    assert len(relinks) == 1
    one_file_per_runtime(folder, symlinks=True)
    loaded = [{"path": str(folder / "_internal/torch/lib/libgomp.so.1"), "family": "GNU libgomp"}]
    assert loaded_problems(folder, loaded) == [
        "the frozen folder holds another GNU libgomp runtime beside _internal/torch/lib/libgomp.so.1: "
        "_internal/libgomp-system.so.1"
    ]


def test_on_windows_copies_are_reported_not_touched(tmp_path: Path) -> None:
    folder = frozen(tmp_path)
    result = one_file_per_runtime(folder, symlinks=False)
    assert not result.applied and len(result.relinked) == 1
    assert not (folder / "_internal" / "scikit_learn.libs" / "libgomp-e985bcbb.so.1.0.0").is_symlink()


def test_the_loaded_runtime_must_be_the_one_file_in_the_folder(tmp_path: Path) -> None:
    folder = frozen(tmp_path)
    one_file_per_runtime(folder, symlinks=True)
    via_link = str(folder / "_internal" / "scikit_learn.libs" / "libgomp-e985bcbb.so.1.0.0")
    assert loaded_problems(folder, [{"path": via_link, "family": "GNU libgomp"}]) == []
    outside = tmp_path / "usr" / "lib" / "libgomp.so.1"
    outside.parent.mkdir(parents=True)
    outside.write_bytes(GOMP)
    assert (
        "outside its folder" in loaded_problems(folder, [{"path": str(outside), "family": "GNU libgomp"}])[0]
    )
    assert "0 OpenMP runtimes loaded" in loaded_problems(folder, [])[0]


def test_the_check_reads_threadpoolctl_pools_before_the_mapped_files(tmp_path: Path) -> None:
    folder = frozen(tmp_path)
    one_file_per_runtime(folder, symlinks=True)
    primary = str(folder / "_internal" / "torch" / "lib" / "libgomp.so.1")
    pool = {"user_api": "openmp", "internal_api": "openmp", "prefix": "libgomp", "filepath": primary,
            "version": None, "num_threads": 2}  # fmt: skip
    blas = {**pool, "user_api": "blas", "filepath": "/x/libopenblas.so"}
    report = {
        "threadpools": [pool, blas],
        "openmp": [{"path": "/elsewhere/libgomp.so.1", "family": "GNU libgomp"}],
    }
    assert loaded_openmp(report) == [{"path": primary, "family": "GNU libgomp"}]
    linux = load_profile("minimal-linux-x86_64", ROOT / "profiles")
    assert frozen_problems(folder, report, linux) == []
    assert "outside its folder" in frozen_problems(folder, {"openmp": report["openmp"]}, linux)[0]


@pytest.mark.slow
def test_pyinstaller_copies_a_link_whose_target_lands_elsewhere_and_the_pass_relinks_it(
    tmp_path: Path,
) -> None:
    """The real PyInstaller: the venv fix's link survives only when its target is collected at the
    same relative place; here torch's file lands at the top, so PyInstaller writes a second copy."""
    src = tmp_path / "src"
    (src / "torch" / "lib").mkdir(parents=True)
    (src / "scikit_learn.libs").mkdir()
    real = Path("/usr/lib/x86_64-linux-gnu/libgomp.so.1")  # any real shared library would do
    assert real.is_file(), "the test needs the system libgomp (libgomp1)"
    (src / "torch" / "lib" / "libgomp.so.1").write_bytes(real.read_bytes())
    os.symlink("../torch/lib/libgomp.so.1", src / "scikit_learn.libs" / "libgomp-e985bcbb.so.1.0.0")
    (src / "app.py").write_text("print('ok')\n")
    tool = pyinstaller.ensure(Path(sys.executable), ROOT / "build" / "tools")
    sep = os.pathsep
    proc = subprocess.run(
        [sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN", "--onedir",
         "--distpath", tmp_path / "dist", "--workpath", tmp_path / "work", "--specpath", tmp_path,
         "--add-binary", f"{src / 'torch' / 'lib' / 'libgomp.so.1'}{sep}.",
         "--add-binary", f"{src / 'scikit_learn.libs' / 'libgomp-e985bcbb.so.1.0.0'}{sep}scikit_learn.libs",
         src / "app.py"],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(tool)}, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    folder = tmp_path / "dist" / "app"
    copy = folder / "_internal" / "scikit_learn.libs" / "libgomp-e985bcbb.so.1.0.0"
    assert copy.is_file() and not copy.is_symlink()  # PyInstaller's copy: a second runtime on disk
    result = one_file_per_runtime(folder, symlinks=True)
    assert result.runtimes == ("_internal/libgomp.so.1",)
    assert copy.is_symlink() and os.readlink(copy) == "../libgomp.so.1"
    run = subprocess.run([folder / "app"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.strip() == "ok"
