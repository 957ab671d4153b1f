"""`builder clean` touches only what builder made: its own temporary names and nothing else.

Every case snapshots the folder tree (names, kinds, bytes) before and after: a refusal must leave
it exactly as it was. Cases that point clean at `/` or above the project use --dry-run, so even a
clean that wrongly accepts them could not delete anything on this machine.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import assert_one_line_error
from release.helpers import make_dist

from builder.artifact.verify import verify_dist
from builder.errors import InputError

from .test_builder_files import cli

P = "tiny-linux-x86_64"
DEAD = 2**22 + 1  # above Linux's default pid_max: no process has it
# Names that merely look like leftovers: the old pattern (`.NAME.tmp`, `.NAME.old`, `-suffix`) took them.
LOOKALIKES = [".notes.tmp", ".photos.old", ".config.tmp-1", ".draft.k3j9x.tmp", ".backup.old-2024"]


def tree(root: Path) -> dict[str, str]:
    """Every entry under root (links not followed) with its kind and content."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            out[rel] = "link:" + os.readlink(path)
        elif path.is_dir():
            out[rel] = "dir"
        else:
            out[rel] = "file:" + path.read_bytes().hex()
    return out


def _plant(folder: Path, name: str) -> None:
    if ".old" in name:
        (folder / name).mkdir(parents=True)
        (folder / name / "keep.txt").write_text("a user's file")
    else:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text("a user's file")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("BUILDER_WORK_DIR", raising=False)
    make_dist(tmp_path)
    (tmp_path / "profiles").mkdir()
    return tmp_path


@pytest.mark.parametrize("name", LOOKALIKES)
def test_a_lookalike_name_in_the_work_folder_is_kept(
    project: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    work = project / "build" / P
    _plant(work, name)
    before = tree(project / "build")
    proc = cli("--root", project, "clean", capsys=capsys)
    assert proc.returncode == 0, proc.stderr
    assert tree(project / "build") == before


@pytest.mark.parametrize("name", LOOKALIKES)
def test_a_dist_folder_holding_a_lookalike_is_refused_and_untouched(
    project: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = project / "dist"
    _plant(out, name)
    (out / f".{P}.builder-tmp").mkdir()  # a real leftover: it stays too, since nothing is removed
    before = tree(project)
    proc = cli("--root", project, "clean", "--out", out, capsys=capsys)
    assert_one_line_error(proc, InputError.exit_code, "not a dist folder", name, "nothing removed")
    assert tree(project) == before


def test_a_home_folder_is_refused_and_nothing_in_it_renamed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home" / "alice"
    for name in [".bashrc.old", "notes.tmp", ".cache.tmp", ".profile.old-1"]:
        _plant(home, name)
    (home / ".ssh").mkdir()
    (home / ".ssh" / "id_ed25519").write_text("secret")
    monkeypatch.setenv("HOME", str(home))
    project = tmp_path / "project"
    (project / "profiles").mkdir(parents=True)
    before = tree(home)
    proc = cli("--root", project, "clean", "--out", home, capsys=capsys)
    assert_one_line_error(proc, InputError.exit_code, "a home folder", "nothing removed")
    assert tree(home) == before


@pytest.mark.parametrize("where", ["/", "the project", "above the project"])
def test_root_the_project_and_its_parents_are_refused(
    project: Path, where: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = {"/": Path("/"), "the project": project, "above the project": project.parent}[where]
    proc = cli("--root", project, "clean", "--dry-run", "--out", out, capsys=capsys)
    assert_one_line_error(proc, InputError.exit_code, str(out), "not a dist folder")


def test_a_folder_of_the_users_beside_a_dist_is_refused_by_name(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = project / "dist"
    (out / "thesis").mkdir()
    (out / "thesis" / ".draft.tmp").write_text("chapter 1")
    (out / "README.txt").write_text("mine")
    before = tree(project)
    proc = cli("--root", project, "clean", "--out", out, capsys=capsys)
    assert_one_line_error(proc, InputError.exit_code, "README.txt", "thesis")
    assert tree(project) == before


def test_builders_own_leftovers_go_and_the_dist_stays(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = project / "dist"
    (out / f".{P}.builder-tmp" / "stems").mkdir(parents=True)
    (out / P / "stems" / f".runtime.json.builder-tmp-{DEAD}-x1y2z3ab").write_text("{")  # a killed tune
    work = project / "build" / P
    work.mkdir(parents=True)
    (work / f".inputs.json.builder-tmp-{DEAD}-k3j9xq7w").write_text("{")
    (work / ".venv.builder-tmp" / "lib").mkdir(parents=True)
    proc = cli("--root", project, "clean", "--out", out, capsys=capsys)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == [P]
    assert list(work.iterdir()) == []
    assert verify_dist(out / P).ok


def test_a_leftover_name_that_is_a_symlink_loses_only_the_link(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "precious.txt").write_text("keep me")
    work = project / "build" / P
    work.mkdir(parents=True)
    os.symlink(elsewhere, work / ".venv.builder-tmp")
    proc = cli("--root", project, "clean", capsys=capsys)
    assert proc.returncode == 0, proc.stderr
    assert not (work / ".venv.builder-tmp").is_symlink()
    assert (elsewhere / "precious.txt").read_text() == "keep me"


def test_a_file_another_builder_is_writing_now_is_left_alone(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    work = project / "build" / P
    work.mkdir(parents=True)
    live = work / f".inputs.json.builder-tmp-{os.getppid()}-k3j9xq7w"  # pytest's parent: alive
    live.write_text("{")
    proc = cli("--root", project, "clean", capsys=capsys)
    assert proc.returncode == 0, proc.stderr
    assert live.exists()


def test_a_file_managers_files_in_the_dist_folder_are_no_reason_to_refuse(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = project / "dist"
    (out / ".DS_Store").write_bytes(b"Bud1")
    (out / f".{P}.builder-tmp").mkdir()
    proc = cli("--root", project, "clean", "--out", out, capsys=capsys)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == [".DS_Store", P]
