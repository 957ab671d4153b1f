"""Pipeline stages without the network: packaging, atomic folders, the selftest check, guards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import assert_one_line_error, run_builder

from builder.artifact.inspect import inspect_path
from builder.artifact.manifest import MANIFEST, SUMS, package
from builder.errors import ForeignTargetError, PythonNotFoundError
from builder.fsutil import staged_dir
from builder.profile import load_profile
from builder.stages.check import compare, expected
from builder.stages.lock import parse_lock


def test_package_writes_manifest_and_sums_that_sha256sum_accepts(tmp_path: Path) -> None:
    frozen = tmp_path / "stems"
    (frozen / "_internal/torch/lib").mkdir(parents=True)
    (frozen / "stems").write_bytes(b"\x7fELF program")
    (frozen / "_internal/torch/lib/libgomp.so.1").write_bytes(b"gomp" * 100)
    os.symlink("libgomp.so.1", frozen / "_internal/torch/lib/libgomp-abc.so.1")
    result = package(
        frozen,
        tmp_path / "dist/p",
        {"profile": "p", "packages": []},
        {"selftest.json": "{}\n"},
        archive_epoch=315532800,
    )
    dist = tmp_path / "dist/p"
    manifest = json.loads((dist / MANIFEST).read_text())
    paths = {e["path"]: e for e in manifest["files"]}
    assert paths["stems/stems"]["size"] == len(b"\x7fELF program")
    assert paths["stems/_internal/torch/lib/libgomp-abc.so.1"] == {
        "path": "stems/_internal/torch/lib/libgomp-abc.so.1",
        "link": "libgomp.so.1",
    }
    assert result.files == 4 and not frozen.exists()
    check = subprocess.run(
        ["sha256sum", "--check", "--quiet", SUMS], cwd=dist, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    (dist / "stems/stems").write_bytes(b"tampered")
    assert (
        subprocess.run(["sha256sum", "--check", "--quiet", SUMS], cwd=dist, capture_output=True).returncode
        != 0
    )


def test_a_failed_stage_leaves_the_previous_folder_untouched(tmp_path: Path) -> None:
    final = tmp_path / "dist"
    with staged_dir(final) as tmp:
        (tmp / "good").write_text("v1")
    with pytest.raises(RuntimeError), staged_dir(final) as tmp:
        (tmp / "good").write_text("half")
        raise RuntimeError("killed")
    assert (final / "good").read_text() == "v1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dist"]


def test_leftovers_of_a_killed_run_are_recovered(tmp_path: Path) -> None:
    # killed between "move old aside" and "move new in": only .dist.builder-old and .dist.builder-tmp exist
    (tmp_path / ".dist.builder-old").mkdir()
    (tmp_path / ".dist.builder-old/good").write_text("v1")
    (tmp_path / ".dist.builder-tmp").mkdir()
    with staged_dir(tmp_path / "dist") as tmp:
        assert (tmp_path / "dist/good").read_text() == "v1"  # restored before the new run starts
        (tmp / "good").write_text("v2")
    assert (tmp_path / "dist/good").read_text() == "v2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dist"]


SELFTEST = {
    "threads": {"at_import": 4, "torch": 4, "interop": 2},
    "matmul_precision": "high",
    "env": {"OMP_NUM_THREADS": "4", "MKL_NUM_THREADS": "4"},
    "versions": {"torch": "2.13.0+cpu"},
    "openmp": [{"path": "/x/torch/lib/libgomp.so.1", "family": "GNU libgomp"}],
    "threadpools": [
        {
            "user_api": "openmp",
            "internal_api": "openmp",
            "prefix": "libgomp",
            "filepath": "/x/torch/lib/libgomp.so.1",
            "version": None,
            "num_threads": 4,
        },
        {
            "user_api": "blas",
            "internal_api": "openblas",
            "prefix": "libscipy_openblas",
            "filepath": "/x/numpy.libs/libscipy_openblas64_.so",
            "version": "0.3.31",
            "num_threads": 4,
        },
    ],
    "matmul_ok": True,
}
WANT = {
    "threads": 4,
    "interop": 2,
    "matmul_precision": "high",
    "env": {"OMP_NUM_THREADS": "4", "MKL_NUM_THREADS": "4"},
    "torch": "2.13.0+cpu",
}


def test_selftest_matching_the_profile_passes() -> None:
    assert compare(SELFTEST, WANT) == []


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"threads": {"at_import": 2, "torch": 4, "interop": 2}}, "not set before torch loaded"),
        ({"matmul_precision": "highest"}, "matmul precision"),
        ({"env": {"OMP_NUM_THREADS": "4"}}, "MKL_NUM_THREADS"),
        ({"env": {**SELFTEST["env"], "KMP_DUPLICATE_LIB_OK": "TRUE"}}, "KMP_DUPLICATE_LIB_OK"),
        (
            {"openmp": SELFTEST["openmp"] * 2 + [{"path": "/y/libgomp-1.so", "family": "GNU libgomp"}]},
            "OpenMP runtimes loaded",
        ),
        ({"versions": {"torch": "2.2.2"}}, "locked 2.13.0+cpu"),
        (
            {
                "threadpools": [
                    *SELFTEST["threadpools"],
                    {**SELFTEST["threadpools"][0], "filepath": "/y/libgomp-1.so"},
                ]
            },
            "2 OpenMP runtimes loaded (threadpoolctl)",
        ),
        ({"threadpools": SELFTEST["threadpools"][1:]}, "threadpoolctl found no OpenMP runtime"),
        (
            {"threadpools": [{**SELFTEST["threadpools"][0], "num_threads": 1}]},
            "OpenMP pool (libgomp) runs 1 threads, expected 4",
        ),
    ],
)
def test_selftest_differing_from_the_profile_is_named(change: dict, problem: str) -> None:
    problems = compare({**SELFTEST, **change}, WANT)
    assert any(problem in p for p in problems), problems


def test_expected_settings_come_from_profile_and_lock(root: Path) -> None:
    profile = load_profile("minimal-mac-intel", root / "profiles")
    lock = parse_lock((root / "locks/minimal-mac-intel.lock").read_text(), Path("x"))
    want = expected(profile, lock)
    assert want["threads"] == 8 and want["interop"] == 4 and want["matmul_precision"] == "high"
    assert want["env"]["KMP_BLOCKTIME"] == "1" and want["torch"] == "2.2.2"


def test_build_for_a_foreign_target_says_where_it_can_run() -> None:
    proc = run_builder("build", "--profile", "minimal-mac-intel")
    assert_one_line_error(
        proc,
        ForeignTargetError.exit_code,
        "must run on mac-intel",
        "lock and audit run anywhere; install, freeze and bench run on the target",
    )


def test_missing_target_python_is_one_line(tmp_path: Path, root: Path) -> None:
    (tmp_path / "profiles").mkdir()
    text = (
        (root / "profiles/minimal-linux-x86_64.toml")
        .read_text()
        .replace('python = "3.11"', 'python = "3.10"')
    )
    (tmp_path / "profiles/py310.toml").write_text(text)
    (tmp_path / "profiles/_base.toml").write_text((root / "profiles/_base.toml").read_text())
    proc = run_builder("build", "--profile", "py310", root=tmp_path, env={"PATH": "/usr/bin:/bin"})
    assert_one_line_error(
        proc, PythonNotFoundError.exit_code, "Python 3.10 is not available", "never downloads"
    )


def test_inspect_reads_packages_from_dist_info(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    info = site / "demo-1.2.dist-info"
    info.mkdir(parents=True)
    (site / "demo").mkdir()
    (site / "demo/__init__.py").write_text("x = 1\n" * 100)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: demo\nVersion: 1.2\n")
    (info / "RECORD").write_text("demo/__init__.py,sha256=x,600\ndemo-1.2.dist-info/METADATA,,\n")
    (info / "WHEEL").write_text("Wheel-Version: 1.0\nTag: cp311-cp311-manylinux_2_28_x86_64\n")
    data = inspect_path(site)
    assert [p.to_json() for p in data.packages] == [
        {"name": "demo", "version": "1.2", "size": 600 + (info / "METADATA").stat().st_size, "files": 2}
    ]
    assert data.platform == "manylinux_2_28_x86_64" and data.files == 4


def test_inspect_of_something_else_is_one_line(tmp_path: Path) -> None:
    proc = run_builder("inspect", tmp_path)
    assert_one_line_error(proc, 10, "not a venv")


def test_builder_never_imports_torch() -> None:
    code = (
        "import sys, pkgutil, importlib, builder\n"
        "for m in pkgutil.walk_packages(builder.__path__, 'builder.'):\n"
        "    if not m.name.endswith('__main__'): importlib.import_module(m.name)\n"
        "from builder.cli import cli\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_runtime_entry_never_imports_builder(root: Path) -> None:
    import ast

    for path in (root / "runtime_entry").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else ([node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            )
            assert not any(n == "builder" or n.startswith("builder.") for n in names), path


def _inputs(project_root: Path, lock: str = "sha256:lock", profile_name: str = "minimal-linux-x86_64") -> str:
    from builder.stages.freeze import plan_freeze
    from builder.stages.inputs import inputs_hash

    profile = load_profile(profile_name, project_root / "profiles")
    site = project_root / "site-packages"  # no torch here: no module reads its own source
    plan = plan_freeze(profile, site, project_root, project_root / "build" / profile.name)
    return inputs_hash(project_root, profile, plan, lock, Path(sys.executable))


def test_build_inputs_change_with_runtime_entry_lock_and_settings(entry_project: Path) -> None:
    project = entry_project
    base = _inputs(project)
    assert _inputs(project) == base
    assert _inputs(project, lock="sha256:other") != base
    (project / "runtime_entry/main.py").write_text(
        (project / "runtime_entry/main.py").read_text() + "\n# x\n"
    )
    assert _inputs(project) != base


def test_a_new_module_under_runtime_entry_makes_the_build_stale(entry_project: Path) -> None:
    project = entry_project
    base = _inputs(project)
    (project / "runtime_entry/models/extra_layer.py").write_text("X = 1\n")
    assert _inputs(project) != base


def test_a_changed_contract_file_makes_the_build_stale(entry_project: Path) -> None:
    project = entry_project
    base = _inputs(project)
    shared = project / "runtime_entry/contract/shared.json"
    shared.write_text(shared.read_text().replace('"runtime.json"', '"settings.json"'))
    assert _inputs(project) != base


def test_the_inputs_hash_reads_every_builder_module_the_build_imports() -> None:
    from builder.stages.inputs import BUILDER_DIR, builder_modules

    names = {p.relative_to(BUILDER_DIR).as_posix() for p in builder_modules()}
    # the stages, what they package with, and the tools they call; not the measuring commands' CLI
    assert {
        "stages/build.py",
        "stages/freeze.py",
        "artifact/manifest.py",
        "artifact/archive.py",
        "tools/uv.py",
    } <= names
    assert {"contract.py", "openmp/formats/elf.py", "stages/package.py", "stages/inputs.py"} <= names
    assert not any(n.startswith("cli/") for n in names)
    assert "measure/compare.py" not in names


def test_archive_is_byte_identical_for_the_same_files_whatever_their_times(tmp_path: Path) -> None:
    import tarfile

    from builder.artifact.archive import write_archive

    def tree(where: Path, mtime: int) -> Path:
        (where / "stems/_internal").mkdir(parents=True)
        (where / "stems/stems").write_bytes(b"program")
        (where / "stems/stems").chmod(0o755)
        (where / "stems/_internal/b.so").write_bytes(b"lib" * 1000)
        os.symlink("b.so", where / "stems/_internal/a.so")
        for p in (where / "stems/stems", where / "stems/_internal/b.so"):
            os.utime(p, (mtime, mtime))
        return where

    a, b = tree(tmp_path / "a", 1_000_000), tree(tmp_path / "b", 2_000_000)
    (b / "stems/_internal/b.so").chmod(0o600)  # umask differences must not matter either
    sha_a = write_archive(a, tmp_path / "a.tar.xz", 315532800, arcname="p")
    sha_b = write_archive(b, tmp_path / "b.tar.xz", 315532800, arcname="p")
    assert sha_a == sha_b
    with tarfile.open(tmp_path / "a.tar.xz") as tar:
        names = tar.getnames()
        assert names == sorted(names, key=lambda n: n) and "p/stems/_internal/a.so" in names
        assert tar.getmember("p/stems/_internal/a.so").issym()
        assert {m.mtime for m in tar.getmembers()} == {315532800}
    assert write_archive(a, tmp_path / "c.tar.xz", 315532801, arcname="p") != sha_a


def test_package_archive_holds_the_dist_and_its_checksum_verifies(tmp_path: Path) -> None:
    frozen = tmp_path / "stems"
    frozen.mkdir()
    (frozen / "stems").write_bytes(b"x")
    result = package(frozen, tmp_path / "dist/p", {"profile": "p"}, {}, archive_epoch=315532800)
    assert result.archive == tmp_path / "dist/p/p.tar.xz" and result.archive.is_file()
    check = subprocess.run(
        ["sha256sum", "--check", "p.tar.xz.sha256"], cwd=tmp_path / "dist/p", capture_output=True
    )
    assert check.returncode == 0
    import tarfile

    with tarfile.open(result.archive) as tar:
        assert {"p/stems/stems", "p/manifest.json", "p/SHA256SUMS"} <= set(tar.getnames())
        assert not any(n.endswith(".tar.xz") or ".tmp" in n for n in tar.getnames())


def test_diff_names_each_differing_file_and_why(tmp_path: Path) -> None:
    import struct
    import time

    def dist(name: str, stamp: int, extra: bool) -> Path:
        frozen = tmp_path / name / "stems"
        frozen.mkdir(parents=True)
        (frozen / "same.so").write_bytes(b"\x7fELF" + b"x" * 100)
        (frozen / "lib.so").write_bytes(b"\x7fELF" + b"\0" * 20 + struct.pack("<I", stamp) + b"\0" * 20)
        if extra:
            (frozen / "extra.txt").write_text("x")
        package(frozen, tmp_path / name / "dist", {"profile": "p"}, {}, archive_epoch=None)
        return tmp_path / name / "dist"

    now = int(time.time())
    a, b = dist("a", now, False), dist("b", now + 7, True)
    proc = run_builder("diff", a, b, "--json")
    assert proc.returncode == 8
    files = {d["path"]: d["why"] for d in json.loads(proc.stdout)["files"]}
    # read from disk, not from the manifests: the records that list the files differ too, and say so
    assert set(files) == {"stems/lib.so", "stems/extra.txt", "manifest.json", "SHA256SUMS"}
    assert files["SHA256SUMS"].endswith("(a record of the files that differ)")
    assert "ELF binary" in files["stems/lib.so"] and "embedded timestamp" in files["stems/lib.so"]
    assert files["stems/extra.txt"] == "only in B"
    assert run_builder("diff", a, a).returncode == 0


def test_reports_are_named_but_neither_hashed_nor_archived(tmp_path: Path) -> None:
    import tarfile

    frozen = tmp_path / "stems"
    frozen.mkdir()
    (frozen / "stems").write_bytes(b"x")
    result = package(
        frozen,
        tmp_path / "dist/p",
        {"profile": "p"},
        {},
        archive_epoch=315532800,
        reports={"bench.json": '{"startup_s": 1.23}\n'},
    )
    dist = tmp_path / "dist/p"
    manifest = json.loads((dist / MANIFEST).read_text())
    assert manifest["reports"] == ["bench.json"]
    assert "bench.json" not in {e["path"] for e in manifest["files"]}
    with tarfile.open(result.archive) as tar:
        assert "p/bench.json" not in tar.getnames()
    assert run_builder("verify", dist).returncode == 0
    (dist / "bench.json").write_text("{}")  # a new measurement does not make the dist differ
    assert run_builder("verify", dist).returncode == 0


def test_modules_that_read_their_own_source_keep_it(tmp_path: Path) -> None:
    from builder.stages.freeze import modules_reading_own_source

    files = {
        "torch/__init__.py": "from typing import overload as _overload\n",
        "torch/_dynamo/config.py": "install_config_module(sys.modules[__name__])\n",
        "torch/nn/functional.py": "from torch._jit_internal import (\n    boolean_dispatch,\n    _overload,\n)\n",
        "torch/nn/modules/rnn.py": "@torch._jit_internal._overload_method\ndef forward(): ...\n",
        "torch/jit/__init__.py": "from torch._jit_internal import _overload\n",
        "torch/plain.py": "x = 1\n",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    assert modules_reading_own_source(tmp_path) == [
        "torch._dynamo.config",
        "torch.jit",
        "torch.nn.functional",
        "torch.nn.modules.rnn",
    ]
