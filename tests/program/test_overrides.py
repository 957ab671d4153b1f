"""packages.overrides: uv's --override relaxes an upstream pin; the lock records it and goes stale without it."""

from __future__ import annotations

from pathlib import Path

from compare.wheels import make_wheel
from helpers import assert_one_line_error, local_index_profile, run_builder

from builder.stages.lock import parse_lock


def _project(tmp_path: Path, overrides: str) -> Path:
    (tmp_path / "wheels").mkdir(exist_ok=True)
    # an app that pins its dependency below the version the profile needs (msst's torch<2.12)
    make_wheel(tmp_path / "wheels", "rbprobe-app", "1.0", {"rbprobe_app.py": ""}, requires=["rbprobe-dep<2"])
    for version in ("1.0", "2.0"):
        make_wheel(tmp_path / "wheels", "rbprobe-dep", version, {"rbprobe_dep.py": ""})
    (tmp_path / "profiles").mkdir(exist_ok=True)
    (tmp_path / "locks").mkdir(exist_ok=True)
    (tmp_path / "profiles/ov.toml").write_text(local_index_profile(overrides))
    return tmp_path


def test_an_override_replaces_an_upstream_pin_and_is_recorded_in_the_lock(tmp_path: Path) -> None:
    project = _project(tmp_path, "")
    assert run_builder("lock", "--profile", "ov", root=project).returncode == 0
    lock = project / "locks/ov.lock"
    assert parse_lock(lock.read_text(), lock).pins["rbprobe-dep"].version == "1.0"

    project = _project(tmp_path, 'overrides = ["rbprobe-dep==2.0"]')
    # the profile changed what resolves: the old lock is stale
    assert_one_line_error(run_builder("lock", "--check", "--profile", "ov", root=project), 9, "stale")
    proc = run_builder("lock", "--profile", "ov", root=project)
    assert proc.returncode == 0, proc.stderr
    text = lock.read_text()
    assert parse_lock(text, lock).pins["rbprobe-dep"].version == "2.0"
    assert "# override rbprobe-dep==2.0" in text
    assert run_builder("lock", "--check", "--profile", "ov", root=project).returncode == 0
    listed = run_builder("profiles", root=project)
    assert "override rbprobe-dep==2.0" in listed.stdout


def test_a_bad_override_is_one_error_naming_the_key(tmp_path: Path) -> None:
    project = _project(tmp_path, 'overrides = ["torch<<2"]')
    assert_one_line_error(run_builder("profiles", root=project), 2, "packages.overrides", "torch<<2")
