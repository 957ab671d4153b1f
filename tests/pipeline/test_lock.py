"""Locks: parsing, uv's errors condensed, staleness, and real locks of all eight profiles."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers import assert_one_line_error, assert_schema, run_builder

from builder.errors import NoWheelError, ResolutionError, StaleLockError
from builder.profile import load_profile
from builder.stages.lock import condense_uv_error, parse_lock

LOCK = (
    """\
# profile-hash: sha256:abc
numpy==1.26.4 \\
    --hash=sha256:"""
    + "a" * 64
    + """ \\
    --hash=sha256:"""
    + "b" * 64
    + """
    # via -r x.in
torch==2.13.0+cpu \\
    --hash=sha256:"""
    + "c" * 64
    + """
"""
)


def test_parse_lock_reads_pins_hashes_and_profile_hash() -> None:
    lock = parse_lock(LOCK, Path("x.lock"))
    assert lock.profile_hash == "sha256:abc"
    assert lock.pins["numpy"].version == "1.26.4" and len(lock.pins["numpy"].hashes) == 2
    assert lock.pins["torch"].version == "2.13.0+cpu"


UV_NO_WHEEL = """error: No solution found when resolving dependencies
  cause: Because diffq==0.2.1 has no wheels with a matching Python ABI tag (e.g., `cp311`) and you require diffq, we can conclude that your requirements are unsatisfiable.

hint: You require CPython 3.11 (`cp311`), but we only found wheels for `diffq` (v0.2.1) with the following Python ABI tags: `cp36m`, `cp37m`
"""
UV_CONFLICT = """error: No solution found when resolving dependencies
  cause: Because you require numpy<1 and numpy>2, we can conclude that your requirements are unsatisfiable.
"""


def test_uv_no_wheel_becomes_a_no_wheel_error_naming_package_and_platform(root: Path) -> None:
    profile = load_profile("minimal-linux-x86_64", root / "profiles")
    err = condense_uv_error(UV_NO_WHEEL, profile)
    assert isinstance(err, NoWheelError)
    line = err.one_line()
    assert "diffq 0.2.1" in line and "x86_64-manylinux_2_28" in line and "3.11" in line
    assert "\n" not in line


def test_uv_conflict_is_condensed_to_the_reason(root: Path) -> None:
    profile = load_profile("minimal-linux-x86_64", root / "profiles")
    err = condense_uv_error(UV_CONFLICT, profile)
    assert type(err) is ResolutionError
    assert "because you require numpy<1 and numpy>2" in err.one_line()


def copy_project(root: Path, dest: Path) -> Path:
    for sub in ("profiles", "locks", "runtime_entry"):
        shutil.copytree(root / sub, dest / sub)
    return dest


def test_check_flags_a_lock_made_from_another_profile(root: Path, tmp_path: Path) -> None:
    proj = copy_project(root, tmp_path)
    assert run_builder("lock", "--all", "--check", root=proj).returncode == 0
    path = proj / "profiles" / "minimal-mac-arm.toml"
    path.write_text(path.read_text().replace('"einops",', '"einops<1",'))
    proc = run_builder("lock", "--all", "--check", "--json", root=proj)
    assert_one_line_error(proc, StaleLockError.exit_code, "2 of 8 locks are stale", "mac-arm.lock")
    # extended-mac-arm extends it, so it is stale too
    assert "STALE" in proc.stderr and proc.stderr.count("STALE") == 2
    document = json.loads(proc.stdout)
    assert_schema(document, "lock")
    stale = {s["profile"]: s for s in document["locks"] if s["status"] == "stale"}
    assert sorted(stale) == ["extended-mac-arm", "minimal-mac-arm"]
    assert (
        "mac-arm.lock" in stale["minimal-mac-arm"]["reason"] and stale["minimal-mac-arm"]["packages"] is None
    )


def test_missing_lock_is_reported_as_stale(root: Path, tmp_path: Path) -> None:
    proj = copy_project(root, tmp_path)
    (proj / "locks" / "minimal-linux-x86_64.lock").unlink()
    proc = run_builder("lock", "--profile", "minimal-linux-x86_64", "--check", "--json", root=proj)
    assert_one_line_error(
        proc, StaleLockError.exit_code, "no lock yet", "run `builder lock --profile minimal-linux-x86_64`"
    )
    document = json.loads(proc.stdout)
    assert_schema(document, "lock")
    assert [(s["profile"], s["status"]) for s in document["locks"]] == [("minimal-linux-x86_64", "missing")]
    assert "MISSING" in proc.stderr and "stale" not in proc.stderr.lower()


def test_a_fresh_init_project_is_told_to_lock_its_profiles_not_that_they_are_stale(tmp_path: Path) -> None:
    assert run_builder("init", tmp_path).returncode == 0
    proc = run_builder("lock", "--all", "--check", root=tmp_path)
    assert_one_line_error(
        proc, StaleLockError.exit_code, "2 of 2 profiles have no lock yet", "`builder lock --all`"
    )
    assert "stale" not in proc.stderr.lower()


def test_committed_locks_are_fresh_hashed_and_wheel_only(root: Path) -> None:
    proc = run_builder("lock", "--all", "--check", "--json")
    assert proc.returncode == 0, proc.stderr
    document = json.loads(proc.stdout)
    assert_schema(document, "lock")
    assert {s["status"] for s in document["locks"]} == {"fresh"} and len(document["locks"]) == 8
    for lock_path in (root / "locks").glob("*.lock"):
        lock = parse_lock(lock_path.read_text(), lock_path)
        assert lock.pins and all(pin.hashes for pin in lock.pins.values()), lock_path
    mac = parse_lock((root / "locks/minimal-mac-intel.lock").read_text(), Path())
    assert mac.pins["torch"].version == "2.2.2"
    assert mac.pins["numpy"].version.startswith("1.")
    linux = parse_lock((root / "locks/minimal-linux-x86_64.lock").read_text(), Path())
    assert linux.pins["torch"].version == "2.13.0+cpu"


# --- real uv against the registry ---------------------------------------------

BAD = """\
description = "bad"
[target]
name = "{target}"
python = "{python}"
[packages]
requirements = {reqs}
"""


@pytest.mark.slow
def test_lock_all_eight_profiles_for_real(root: Path, tmp_path: Path) -> None:
    proj = copy_project(root, tmp_path)
    for lock in (proj / "locks").glob("*.lock"):
        lock.unlink()
    proc = run_builder("lock", "--all", root=proj)
    assert proc.returncode == 0, proc.stderr
    assert run_builder("lock", "--all", "--check", root=proj).returncode == 0
    for lock_path in (proj / "locks").glob("*.lock"):
        lock = parse_lock(lock_path.read_text(), lock_path)
        committed = parse_lock((root / "locks" / lock_path.name).read_text(), lock_path)
        # same inputs, same registry: the same top-level pins as the committed lock
        assert lock.pins["torch"].version == committed.pins["torch"].version
        assert all(pin.hashes for pin in lock.pins.values())
    mac = parse_lock((proj / "locks/extended-mac-intel.lock").read_text(), Path())
    assert mac.pins["torch"].version == "2.2.2" and mac.pins["numpy"].version.startswith("1.")
    assert "diffq" in mac.pins  # has a cp310 macOS wheel


@pytest.mark.slow
def test_unsatisfiable_pins_give_uvs_reason_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles/x.toml").write_text(
        BAD.format(target="linux-x86_64", python="3.11", reqs='["numpy<1", "numpy>2"]')
    )
    proc = run_builder("lock", "--profile", "x", root=tmp_path)
    assert_one_line_error(proc, ResolutionError.exit_code, "x.toml", "unsatisfiable", "numpy")
    assert not (tmp_path / "locks/x.lock").exists()


@pytest.mark.slow
def test_no_wheel_under_only_binary_names_package_version_and_platform(tmp_path: Path) -> None:
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles/x.toml").write_text(
        BAD.format(target="mac-arm", python="3.11", reqs='["diffq==0.2.4"]')
    )
    proc = run_builder("lock", "--profile", "x", root=tmp_path)
    assert_one_line_error(proc, NoWheelError.exit_code, "diffq 0.2.4", "aarch64-apple-darwin", "3.11")
