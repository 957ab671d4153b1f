"""A lock checked out with CRLF line endings (git's default on Windows runners) is the same lock.

The body hash is taken over LF line endings, and .gitattributes pins locks and profiles to LF,
so `builder lock --check` on windows-2022 sees what was committed. A real edit still shows.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from builder.errors import ModifiedLockError
from builder.profile import load_profile
from builder.stages.lock import check_lock

from .test_builder_files import cli

NAME = "minimal-linux-x86_64"


def _crlf(path: Path, every: int = 1) -> None:
    """Rewrite `path` with CRLF on every `every`-th line (1: all of them, as a Windows checkout)."""
    lines = path.read_bytes().split(b"\n")
    path.write_bytes(b"".join(ln + (b"\r\n" if n % every == 0 else b"\n") for n, ln in enumerate(lines[:-1])))


@pytest.mark.parametrize("which", ["the lock", "the lock and its profiles", "every other line"])
def test_a_crlf_checkout_passes_lock_check(
    project: Path, which: str, capsys: pytest.CaptureFixture[str]
) -> None:
    lock = project / "locks" / f"{NAME}.lock"
    _crlf(lock, 2 if which == "every other line" else 1)
    if which == "the lock and its profiles":
        for profile in (project / "profiles").glob("*.toml"):
            _crlf(profile)
    assert b"\r\n" in lock.read_bytes()
    proc = cli("--root", project, "lock", "--check", "--profile", NAME, capsys=capsys)
    assert proc.returncode == 0, proc.stderr
    assert "fresh" in proc.stderr + proc.stdout


def test_an_edit_in_a_crlf_checkout_is_still_modified(project: Path) -> None:
    lock = project / "locks" / f"{NAME}.lock"
    _crlf(lock)
    lock.write_bytes(lock.read_bytes().replace(b"\r\ntqdm==", b"\r\ntqdm===", 1))
    with pytest.raises(ModifiedLockError, match="modified"):
        check_lock(load_profile(NAME, project / "profiles"), lock)


@pytest.mark.parametrize("path", [f"locks/{NAME}.lock", f"profiles/{NAME}.toml"])
def test_gitattributes_pins_locks_and_profiles_to_lf(root: Path, path: str) -> None:
    if not (root / ".git").exists():
        pytest.skip("not a git checkout: .gitattributes applies to checkouts only")
    proc = subprocess.run(
        ["git", "check-attr", "eol", "text", "--", path], cwd=root, capture_output=True, text=True, check=True
    )
    assert f"{path}: eol: lf" in proc.stdout and f"{path}: text: set" in proc.stdout, proc.stdout
