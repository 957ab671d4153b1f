"""A dist's last check is keyed by [bench] and the files it names: a [bench] change alone re-runs the
check and the smoke bench of an up-to-date dist (builder/stages/checked.py); the real rebuild is in
tests/program/test_real_programs.py."""

from __future__ import annotations

import shutil
from pathlib import Path

from builder.profile import load_profile
from builder.stages import checked

PROFILE = "minimal-linux-x86_64"


def _project(root: Path, tmp_path: Path) -> Path:
    shutil.copytree(root / "profiles", tmp_path / "profiles")
    return tmp_path


def _hash(project: Path) -> str:
    return checked.checks_hash(project, load_profile(PROFILE, project / "profiles"))


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def test_every_bench_key_and_the_bytes_of_the_files_it_names_change_the_checks_hash(
    root: Path, tmp_path: Path
) -> None:
    project = _project(root, tmp_path)
    first = _hash(project)
    assert _hash(project) == first  # stable
    base = project / "profiles" / "_base.toml"
    base.write_text(base.read_text().replace("max-startup-seconds = 10", "max-startup-seconds = 11"))
    second = _hash(project)
    assert second != first
    (project / "job").mkdir()
    (project / "job" / "model.ckpt").write_bytes(b"one")
    _append(project / "profiles" / f"{PROFILE}.toml", '\n[bench]\ncheckpoint = "job/model.ckpt"\n')
    third = _hash(project)
    assert third != second
    (project / "job" / "model.ckpt").write_bytes(b"two")  # the same key, other weights
    assert _hash(project) != third
    fourth = _hash(project)
    # what is not [bench] is in the dist's own key, not in this one
    base.write_text(base.read_text().replace("strip = true", "strip = false"))
    assert _hash(project) == fourth


def test_the_record_holds_one_dist_key_and_one_checks_hash(tmp_path: Path) -> None:
    assert not checked.is_checked(tmp_path, "sha256:dist", "sha256:bench")  # none yet: check
    checked.save(tmp_path, "sha256:dist", "sha256:bench")
    assert checked.is_checked(tmp_path, "sha256:dist", "sha256:bench")
    assert not checked.is_checked(tmp_path, "sha256:dist", "sha256:other-bench")
    assert not checked.is_checked(tmp_path, "sha256:other-dist", "sha256:bench")
    (tmp_path / checked.RECORD).write_text("{not json")
    assert not checked.is_checked(tmp_path, "sha256:dist", "sha256:bench")  # damaged: check again
