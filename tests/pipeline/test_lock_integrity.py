"""Locks that cannot be edited unnoticed: a hand edit is "modified" (exit 12), apart from "stale" (9)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import assert_one_line_error, run_builder

from builder.errors import ModifiedLockError
from builder.stages.lock import read_lock

NAME = "minimal-linux-x86_64"


def _edit(lock: Path, change: str) -> None:
    text = lock.read_text()
    if change == "hash digit":
        m = re.search(r"--hash=sha256:([0-9a-f])", text)
        assert m
        digit = "1" if m.group(1) != "1" else "2"
        text = text[: m.start(1)] + digit + text[m.end(1) :]
    elif change == "package block":
        text = re.sub(r"(?ms)^tqdm==.*?(?=^[a-z])", "", text, count=1)
    elif change == "hash line":
        text = re.sub(r"(?m)^ +--hash=sha256:[0-9a-f]{64} \\\n", "", text, count=1)
    elif change == "body-hash header":
        text = re.sub(r"(?m)^# body-hash: .*\n", "", text)
    lock.write_text(text)


def test_the_committed_locks_are_fresh(root: Path) -> None:
    proc = run_builder("--root", root, "lock", "--all", "--check")
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("change", ["hash digit", "package block", "hash line", "body-hash header"])
def test_a_hand_edited_lock_is_reported_modified_not_fresh(project: Path, change: str) -> None:
    lock = project / "locks" / f"{NAME}.lock"
    before = lock.read_text()
    _edit(lock, change)
    assert lock.read_text() != before
    proc = run_builder("--root", project, "lock", "--check", "--profile", NAME)
    assert_one_line_error(proc, ModifiedLockError.exit_code, "modified")
    assert "MODIFIED" in proc.stderr


def test_a_stale_lock_keeps_its_own_code(project: Path) -> None:
    profile = project / "profiles" / f"{NAME}.toml"
    profile.write_text(profile.read_text().replace('"tqdm",', '"tqdm>=4",'))
    proc = run_builder("--root", project, "lock", "--check", "--profile", NAME)
    assert_one_line_error(proc, 9, "stale")


@pytest.mark.parametrize("content", [b"\xff\xfe\x00garbage" * 10, b"\x00" * 64])
def test_a_lock_of_random_bytes_is_one_line_naming_the_file(project: Path, content: bytes) -> None:
    lock = project / "locks" / f"{NAME}.lock"
    lock.write_bytes(content)
    with pytest.raises(ModifiedLockError, match="not a lock"):
        read_lock(lock)
    proc = run_builder("--root", project, "lock", "--check", "--profile", NAME)
    assert_one_line_error(proc, ModifiedLockError.exit_code, str(lock.name), "not a lock")


def test_a_url_requirement_for_a_wheelhouse_package_is_refused_in_the_profile(project: Path) -> None:
    profile = project / "profiles" / f"{NAME}.toml"
    profile.write_text(
        profile.read_text().replace(
            '"torch==2.13.0+cpu",', '"torch @ https://example.invalid/torch-2.13.0-cp311.whl",'
        )
    )
    proc = run_builder("--root", project, "lock", "--check", "--profile", NAME)
    assert_one_line_error(proc, 2, "direct URL", "from-wheelhouse")


def test_a_lock_that_pins_a_wheelhouse_package_by_url_or_not_at_all_is_refused(
    root: Path, tmp_path: Path
) -> None:
    from builder.errors import ResolutionError
    from builder.profile import load_profile
    from builder.stages.lock import _check_wheelhouse_pins, parse_lock

    profile = load_profile(NAME, root / "profiles")
    url_lock = parse_lock(
        "torch @ https://example.invalid/torch.whl \\\n    --hash=sha256:" + "0" * 64 + "\n", tmp_path
    )
    with pytest.raises(ResolutionError, match="direct URL"):
        _check_wheelhouse_pins(profile, url_lock)
    with pytest.raises(ResolutionError, match="does not pin it"):
        _check_wheelhouse_pins(
            profile, parse_lock("numpy==2.0.0 \\\n    --hash=sha256:" + "0" * 64 + "\n", tmp_path)
        )
