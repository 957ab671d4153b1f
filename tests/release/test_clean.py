"""`builder clean`: leftovers of interrupted builds go, complete dists never do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import assert_schema

from builder.artifact.clean import apply_clean, plan_clean
from builder.artifact.verify import verify_dist
from builder.errors import InputError
from builder.paths import Project
from release.helpers import make_dist, run_cli

P = "tiny-linux-x86_64"
DEAD = 2**22 + 1  # above Linux's default pid_max: no process has it


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    """A project folder with a complete dist and every kind of leftover an interrupted build leaves."""
    monkeypatch.delenv("BUILDER_WORK_DIR", raising=False)
    make_dist(tmp_path)  # tmp/dist/P (complete, with its archive)
    dist = tmp_path / "dist"
    (dist / f".{P}.builder-tmp" / "stems").mkdir(parents=True)  # killed while packaging
    (dist / P / f".{P}.tar.xz.builder-tmp-{DEAD}-archive").write_bytes(b"half an archive")
    work = tmp_path / "build" / P
    (work / "venv").mkdir(parents=True)
    (work / "venv" / "pyvenv.cfg").write_text("home = /usr\n")
    (work / "venv" / ".keep.builder-tmp").write_text("inside a venv: not ours to judge")
    (work / ".venv.builder-tmp" / "lib").mkdir(parents=True)  # killed while installing
    (work / "frozen").mkdir()
    (work / ".frozen.builder-old").mkdir()  # killed after the new one was in place
    (work / f".inputs.json.builder-tmp-{DEAD}-k3j9x").write_text("{")  # killed during an atomic write
    (tmp_path / "build" / "tools" / "pyinstaller").mkdir(parents=True)
    return Project(root=tmp_path)


def test_clean_removes_leftovers_but_keeps_complete_dist_and_caches(project: Project) -> None:
    root = project.root
    apply_clean(plan_clean(project, root / "dist"))
    assert sorted(p.name for p in (root / "dist").iterdir()) == [P]
    assert verify_dist(root / "dist" / P).ok
    assert sorted(p.name for p in (root / "build" / P).iterdir()) == ["frozen", "venv"]
    assert (root / "build" / P / "venv" / ".keep.builder-tmp").is_file()
    assert (root / "build" / "tools" / "pyinstaller").is_dir()


def test_clean_restores_an_old_folder_whose_replacement_never_arrived(project: Project) -> None:
    # Died between the two renames of staged_dir: .P.old is the last good dist.
    dist = project.root / "dist"
    (dist / P).rename(dist / f".{P}.builder-old")
    actions = plan_clean(project, dist)
    assert [(a.kind, a.target) for a in actions if a.kind == "restore"] == [("restore", dist / P)]
    apply_clean(actions)
    apply_clean(plan_clean(project, dist))  # the temp inside the restored dist goes on the next run
    assert verify_dist(dist / P).ok


def test_dry_run_touches_nothing_and_lists_every_leftover(project: Project) -> None:
    before = sorted(p.relative_to(project.root) for p in project.root.rglob("*"))
    proc = run_cli("--root", project.root, "clean", "--dry-run", "--out", project.root / "dist", "--json")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.relative_to(project.root) for p in project.root.rglob("*")) == before
    document = json.loads(proc.stdout)
    assert_schema(document, "clean")
    assert document["dry_run"] is True and document["bytes"] == sum(a["bytes"] for a in document["actions"])
    listed = {Path(a["path"]).name for a in document["actions"]}
    assert listed == {
        f".{P}.builder-tmp", f".{P}.tar.xz.builder-tmp-{DEAD}-archive", ".venv.builder-tmp", ".frozen.builder-old",
        f".inputs.json.builder-tmp-{DEAD}-k3j9x",
    }  # fmt: skip


def test_clean_all_also_removes_build_caches_but_not_the_dist(project: Project) -> None:
    proc = run_cli("--root", project.root, "clean", "--all", "--out", project.root / "dist")
    assert proc.returncode == 0, proc.stderr
    assert list((project.root / "build").iterdir()) == []
    assert sorted(p.name for p in (project.root / "dist").iterdir()) == [P]
    assert verify_dist(project.root / "dist" / P).ok


def test_clean_all_refuses_a_work_dir_that_holds_the_project(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BUILDER_WORK_DIR", str(project.root))
    with pytest.raises(InputError):
        plan_clean(project, project.root / "dist", all_caches=True)


def test_clean_with_nothing_left_says_so(tmp_path: Path) -> None:
    proc = run_cli("--root", tmp_path, "clean", "--out", tmp_path / "dist", env={"BUILDER_WORK_DIR": ""})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "nothing to clean"
