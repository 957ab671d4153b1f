"""`builder diff` compares what is on disk, not what the manifests say.

Two dists are built from the same frozen bytes, so their manifests are identical; then B is
changed on disk only. Every run that could block (a FIFO, a device) goes through a subprocess
with a timeout, so a read that blocks fails the test instead of hanging the suite.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
from pathlib import Path

import pytest
from helpers import assert_schema, run_builder
from release.helpers import make_dist

from builder.artifact.diff import diff_dists
from builder.artifact.manifest import MANIFEST

from .test_builder_files import cli

POSIX_ONLY = pytest.mark.skipif(sys.platform == "win32", reason="FIFOs and device nodes are POSIX-only")
LIB = "stems/_internal/other.so"


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    a = make_dist(tmp_path / "a")
    b = make_dist(tmp_path / "b")
    assert (a / MANIFEST).read_bytes() == (b / MANIFEST).read_bytes()
    return a, b


def _diff(a: Path, b: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, str]]:
    proc = cli("diff", a, b, "--json", capsys=capsys)
    assert "Traceback" not in proc.stderr, proc.stderr
    document = json.loads(proc.stdout)
    assert_schema(document, "diff")
    assert document["differing"] == len(document["files"])
    return proc.returncode, {d["path"]: d["why"] for d in document["files"]}


def _same_size_edit(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[3] ^= 0xFF
    path.write_bytes(bytes(data))


CHANGES = {
    "same size, other bytes": (_same_size_edit, "same size, first difference at byte 3"),
    "other size": (lambda p: p.write_bytes(p.read_bytes() + b"x"), "size 80 vs 81"),
    "removed": (lambda p: p.unlink(), "only in A"),
    "a folder in its place": (lambda p: (p.unlink(), p.mkdir()), "file vs folder"),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_file_changed_on_disk_under_an_identical_manifest_is_named(
    pair: tuple[Path, Path], change: str, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = pair
    edit, why = CHANGES[change]
    edit(b / LIB)
    code, files = _diff(a, b, capsys)
    assert code == 8
    assert list(files) == [LIB] and why in files[LIB], files


def test_a_file_added_on_disk_is_named(pair: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    a, b = pair
    (b / "stems" / "planted.so").write_bytes(b"not in any manifest")
    code, files = _diff(a, b, capsys)
    assert (code, files) == (8, {"stems/planted.so": "only in B"})


def test_a_missing_folder_is_reported_not_raised(
    pair: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = pair
    shutil.rmtree(b / "stems" / "_internal" / "pkg")
    code, files = _diff(a, b, capsys)
    assert code == 8
    assert files == {
        "stems/_internal/pkg": "only in A (folder)",
        "stems/_internal/pkg/__init__.pyc": "only in A",
    }


@pytest.mark.parametrize("target", ["/etc/passwd", "../../../../../../etc/hostname"])
def test_a_symlink_out_of_the_dist_is_compared_as_a_link_never_followed(
    pair: tuple[Path, Path], target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = pair
    (b / LIB).unlink()
    os.symlink(target, b / LIB)
    code, files = _diff(a, b, capsys)
    assert (code, files) == (8, {LIB: f"file vs symlink -> {target}"})


def test_two_symlinks_with_other_targets_differ_by_their_text(
    pair: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = pair
    link = "stems/_internal/libgomp-dup.so.1"
    (b / link).unlink()
    os.symlink("other.so", b / link)
    code, files = _diff(a, b, capsys)
    assert (code, files) == (8, {link: "symlink libgomp.so.1 vs other.so"})


@POSIX_ONLY
@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_special_file_is_reported_and_never_opened(pair: tuple[Path, Path], kind: str) -> None:
    a, b = pair
    (b / LIB).unlink()
    if kind == "fifo":
        os.mkfifo(b / LIB)
    else:
        try:
            os.mknod(b / LIB, stat.S_IFCHR | 0o666, os.makedev(1, 5))  # /dev/zero's numbers: never ends
        except PermissionError:
            pytest.skip("mknod needs root (CAP_MKNOD); the FIFO case covers special files here")
    proc = run_builder("diff", a, b, "--json", timeout=60)
    assert proc.returncode == 8 and "Traceback" not in proc.stderr, proc.stderr
    why = {d["path"]: d["why"] for d in json.loads(proc.stdout)["files"]}[LIB]
    assert why == f"file vs {'FIFO' if kind == 'fifo' else 'device'} (not a regular file: never opened)"


def test_identical_dists_on_disk_are_zero_differences(pair: tuple[Path, Path]) -> None:
    assert diff_dists(*pair) == []
