"""`builder init`: a project anywhere, from the wheel's templates; the wheel holds everything."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from builder.project.init import TEMPLATES
from tests.helpers import assert_one_line_error, assert_schema

ROOT = Path(__file__).resolve().parents[2]


def builder_in(
    cwd: Path, *args: str | Path, python: str = sys.executable
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("BUILDER_ROOT", "BUILDER_WORK_DIR", "PYTHONPATH")}
    return subprocess.run(
        [python, "-m", "builder", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
    )


def test_the_init_templates_are_the_shipped_profiles() -> None:
    shipped = {p.name: p.read_bytes() for p in (ROOT / "profiles").glob("*.toml")}
    templates = {p.name: p.read_bytes() for p in TEMPLATES.glob("*.toml")}
    assert templates == shipped, "copy profiles/*.toml to builder/project/templates/"


def test_init_writes_a_project_that_builder_finds_from_its_folder(tmp_path: Path) -> None:
    proc = builder_in(tmp_path, "init", "new", "--target", "mac-arm", "--json")
    assert proc.returncode == 0, proc.stderr
    project = tmp_path / "new"
    document = json.loads(proc.stdout)
    assert_schema(document, "init")
    assert document["root"] == str(project.resolve()) and document["target"] == "mac-arm"
    assert sorted(Path(f).as_posix() for f in document["files"]) == [
        "new/.gitignore", "new/locks/.gitkeep", "new/profiles/_base.toml", "new/profiles/extended-mac-arm.toml",
        "new/profiles/minimal-mac-arm.toml",
    ]  # fmt: skip
    assert sorted(p.name for p in (project / "profiles").iterdir()) == [
        "_base.toml", "extended-mac-arm.toml", "minimal-mac-arm.toml",
    ]  # fmt: skip
    assert (project / "locks").is_dir()
    assert "/build/" in (project / ".gitignore").read_text()
    assert "[program]" in (project / "profiles/minimal-mac-arm.toml").read_text()
    # found from a subfolder, with no --root: the project, not the checkout
    (project / "sub").mkdir()
    listed = builder_in(project / "sub", "profiles", "--json")
    assert listed.returncode == 0, listed.stderr
    assert "minimal-mac-arm" in listed.stdout and "linux" not in listed.stdout


def test_init_refuses_to_overwrite_and_unknown_targets(tmp_path: Path) -> None:
    assert builder_in(tmp_path, "init").returncode == 0
    assert_one_line_error(builder_in(tmp_path, "init"), 10, "_base.toml", "already exists")
    assert_one_line_error(builder_in(tmp_path, "init", "x", "--target", "amiga"), 10, "--target", "amiga")
    assert not (tmp_path / "x").exists()


def _build_wheel(dest: Path) -> Path:
    # Built from a copy of what the sdist holds: no build/ folders or venvs of this checkout.
    src = dest / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        (src / name).write_bytes((ROOT / name).read_bytes())
    for package in ("builder", "runtime_entry", "runtime_doctor"):
        files = subprocess.run(
            ["git", "ls-files", package], cwd=ROOT, capture_output=True, text=True, check=True
        )
        untracked = subprocess.run(
            ["git", "ls-files", "--others", "--exclude-standard", package],
            cwd=ROOT, capture_output=True, text=True, check=True,
        )  # fmt: skip
        for rel in {*files.stdout.split(), *untracked.stdout.split()}:
            if (ROOT / rel).is_file():
                (src / rel).parent.mkdir(parents=True, exist_ok=True)
                (src / rel).write_bytes((ROOT / rel).read_bytes())
    uv = str(ROOT / ".venv/bin/uv")
    subprocess.run(
        [uv, "build", "--wheel", "--out-dir", dest / "wheels", src], check=True, capture_output=True
    )
    (wheel,) = (dest / "wheels").glob("runtime_builder-*.whl")
    return wheel


@pytest.mark.slow
def test_the_built_wheel_installs_a_builder_that_inits_locks_and_builds_a_project(tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"runtime_entry/main.py", "runtime_entry/contract/selftest.schema.json",
            "runtime_entry/contract/probe.schema.json", "builder/project/templates/_base.toml",
            "builder/data/entitlements.plist", "runtime_doctor/rules.py"} <= names  # fmt: skip
    # every --json schema is published with builder, for the pipelines that read its output
    from builder.schemas import FOLDER as SCHEMAS

    assert {f"builder/schemas/{p.name}" for p in SCHEMAS.glob("*.schema.json")} <= names
    uv = str(ROOT / ".venv/bin/uv")
    venv = tmp_path / "tool"
    subprocess.run([uv, "venv", "--quiet", "--python", "3.11", venv], check=True)
    subprocess.run([uv, "pip", "install", "--quiet", "--python", venv / "bin/python", wheel], check=True)
    python = str(venv / "bin/python")
    project = tmp_path / "project"
    project.mkdir()
    assert builder_in(project, "init", python=python).returncode == 0
    lock = builder_in(project, "lock", "--profile", "minimal-linux-x86_64", python=python)
    assert lock.returncode == 0, lock.stderr
    assert (project / "locks/minimal-linux-x86_64.lock").is_file()
    build = builder_in(project, "build", "--profile", "minimal-linux-x86_64", "--json", python=python)
    assert build.returncode == 0, build.stderr[-3000:]
    assert_schema(json.loads(build.stdout), "build")
    dist = project / "dist/minimal-linux-x86_64"
    assert (dist / "stems/stems").is_file() and (dist / "manifest.json").is_file()
    # nothing came from the checkout: the frozen program's sources are the installed wheel's
    assert str(ROOT) not in build.stdout


def test_a_project_without_its_own_runtime_entry_uses_the_installed_one_alone(tmp_path: Path) -> None:
    from builder.paths import BUNDLED_RUNTIME_DOCTOR, BUNDLED_RUNTIME_ENTRY, Project, find_project

    assert builder_in(tmp_path, "init").returncode == 0
    project = find_project(tmp_path)
    assert project == Project(root=tmp_path.resolve()) and project.runtime_entry == BUNDLED_RUNTIME_ENTRY
    path = project.runtime_entry_path()  # what a venv gets on PYTHONPATH for `python -m runtime_entry`
    # the program and the doctor's rule book it imports (`stems doctor`), nothing else
    assert sorted(p.name for p in path.iterdir()) == ["runtime_doctor", "runtime_entry"]
    assert (path / "runtime_entry").resolve() == BUNDLED_RUNTIME_ENTRY
    assert (path / "runtime_doctor").resolve() == BUNDLED_RUNTIME_DOCTOR
    assert Project(root=ROOT).runtime_entry_path() == ROOT  # this checkout: its own
