"""The dist's archives (.tar.xz and .zip) and the Windows-facing details: reproducible bytes,
the same entries in both, verify checking both, and paths with spaces and non-ASCII characters."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

from builder.artifact.archive import write_archive, write_zip
from builder.artifact.manifest import package
from builder.artifact.verify import verify_dist
from builder.profile import load_all
from builder.targets import TARGETS
from builder.venvs import site_packages_of
from release.helpers import ROOT, make_dist, run_cli

EPOCH = 315532800  # 1980-01-01


def tree(root: Path, *, mode: int, mtime: int) -> Path:
    """The same content each call; file modes, times and creation order vary with the arguments."""
    (root / "b dir" / "ü").mkdir(parents=True)
    files = {"a.txt": b"alpha\n", "b dir/ü/daten.bin": b"\0\1\2" * 1000, "prog": b"#!/bin/sh\necho hi\n"}
    for rel in sorted(files, reverse=mode == 0o600):
        (root / rel).write_bytes(files[rel])
        os.chmod(root / rel, mode)
        os.utime(root / rel, (mtime, mtime))
    os.chmod(root / "prog", 0o755 if mode != 0o600 else 0o700)
    os.symlink("a.txt", root / "link")
    (root / "empty").mkdir()
    return root


def test_two_zips_of_the_same_folder_are_byte_identical(tmp_path: Path) -> None:
    a = tree(tmp_path / "a", mode=0o644, mtime=1_700_000_000)
    b = tree(tmp_path / "b", mode=0o600, mtime=1_600_000_000)
    sha_a = write_zip(a, tmp_path / "a.zip", EPOCH, arcname="p")
    sha_b = write_zip(b, tmp_path / "b.zip", EPOCH, arcname="p")
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()
    assert sha_a == sha_b
    assert write_zip(a, tmp_path / "c.zip", EPOCH + 86400, arcname="p") != sha_a  # the time is in it
    # the tar from the same trees, likewise
    assert write_archive(a, tmp_path / "a.tar.xz", EPOCH, arcname="p") == write_archive(
        b, tmp_path / "b.tar.xz", EPOCH, arcname="p"
    )


def test_zip_entries_are_sorted_with_fixed_time_unix_modes_and_utf8_names(tmp_path: Path) -> None:
    folder = tree(tmp_path / "a", mode=0o600, mtime=1_700_000_000)
    write_zip(folder, tmp_path / "a.zip", EPOCH, arcname="p")
    with zipfile.ZipFile(tmp_path / "a.zip") as zf:
        infos = zf.infolist()
        names = [i.filename for i in infos]
        assert names == sorted(names, key=lambda n: n.rstrip("/"))
        assert names[:3] == ["p/", "p/a.txt", "p/b dir/"]
        by_name = {i.filename: i for i in infos}
        assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
        assert {i.create_system for i in infos} == {3}
        mode = {n: i.external_attr >> 16 for n, i in by_name.items()}
        assert mode["p/a.txt"] == stat.S_IFREG | 0o644 and mode["p/prog"] == stat.S_IFREG | 0o755
        assert mode["p/empty/"] == stat.S_IFDIR | 0o755 and by_name["p/empty/"].external_attr & 0x10
        assert mode["p/link"] == stat.S_IFLNK | 0o777 and zf.read("p/link") == b"a.txt"
        assert by_name["p/b dir/ü/daten.bin"].flag_bits & 0x800  # names stored as UTF-8
        assert zf.read("p/b dir/ü/daten.bin") == b"\0\1\2" * 1000
        assert zf.testzip() is None


def test_unzip_restores_modes_and_the_link(tmp_path: Path) -> None:
    folder = tree(tmp_path / "a", mode=0o644, mtime=1_700_000_000)
    write_zip(folder, tmp_path / "a.zip", EPOCH, arcname="p")
    out = tmp_path / "out"
    proc = subprocess.run(["unzip", "-q", tmp_path / "a.zip", "-d", out], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert os.readlink(out / "p" / "link") == "a.txt"
    assert (out / "p" / "prog").stat().st_mode & 0o777 == 0o755
    assert (out / "p" / "b dir" / "ü" / "daten.bin").read_bytes() == b"\0\1\2" * 1000


def test_package_writes_tar_and_zip_with_the_same_entries(tmp_path: Path) -> None:
    dist = make_dist(tmp_path)
    name = dist.name
    with tarfile.open(dist / f"{name}.tar.xz") as tar:
        tar_names = sorted(m.name + ("/" if m.isdir() else "") for m in tar.getmembers())
    with zipfile.ZipFile(dist / f"{name}.zip") as zf:
        zip_names = sorted(zf.namelist())
    assert tar_names == zip_names
    assert not any(n.endswith((".tar.xz", ".zip", ".sha256")) for n in zip_names)  # neither holds the other
    assert f"{name}/manifest.json" in zip_names and f"{name}/stems/_internal/libgomp-dup.so.1" in zip_names
    side = (dist / f"{name}.zip.sha256").read_text().split()
    assert side[1] == f"{name}.zip" and verify_dist(dist).ok


def test_packaging_twice_gives_the_same_zip(tmp_path: Path) -> None:
    one = make_dist(tmp_path / "one")
    two = make_dist(tmp_path / "two")
    name = one.name
    assert (one / f"{name}.zip").read_bytes() == (two / f"{name}.zip").read_bytes()
    assert (one / f"{name}.tar.xz").read_bytes() == (two / f"{name}.tar.xz").read_bytes()


def test_verify_reports_a_changed_or_half_removed_zip(tmp_path: Path) -> None:
    dist = make_dist(tmp_path)
    zipped = dist / f"{dist.name}.zip"
    zipped.write_bytes(zipped.read_bytes() + b"\0")
    report = verify_dist(dist)
    assert not report.ok and [d.path for d in report.modified] == [zipped.name]
    (dist / f"{zipped.name}.sha256").unlink()
    assert verify_dist(dist).removed == (f"{zipped.name}.sha256",)
    zipped.unlink()
    assert verify_dist(dist).ok  # neither: a dist packaged without archives


@pytest.mark.parametrize("folder", ["dist with spaces ü", "Programme (x86)/Müller & Söhne"])
def test_archive_manifest_and_verify_work_under_spaces_and_non_ascii(tmp_path: Path, folder: str) -> None:
    base = tmp_path / folder
    frozen = base / "frozen" / "stems"
    (frozen / "_internal" / "données ü").mkdir(parents=True)
    (frozen / "stems.exe").write_bytes(b"MZ program\n")
    (frozen / "_internal" / "données ü" / "modèle 1.bin").write_bytes(b"weights" * 100)
    dist = base / "dist" / "p-windows-x86_64"
    package(frozen, dist, {"profile": dist.name}, {"selftest.json": "{}\n"}, archive_epoch=EPOCH)
    report = verify_dist(dist)
    assert report.ok, report.lines()
    assert "stems/_internal/données ü/modèle 1.bin" in (dist / "SHA256SUMS").read_text(encoding="utf-8")
    with zipfile.ZipFile(dist / f"{dist.name}.zip") as zf:
        assert f"{dist.name}/stems/_internal/données ü/modèle 1.bin" in zf.namelist()
    proc = run_cli("verify", dist, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # sha256sum (Linux, Git for Windows) or shasum (macOS): the same format
    tool = ["sha256sum"] if shutil.which("sha256sum") else ["shasum", "-a", "256"]
    sums = subprocess.run([*tool, "--check", "--quiet", "SHA256SUMS"], cwd=dist, capture_output=True)
    assert sums.returncode == 0
    (dist / "stems" / "_internal" / "données ü" / "modèle 1.bin").write_bytes(b"changed")
    proc = run_cli("verify", dist)
    assert proc.returncode != 0 and "données ü/modèle 1.bin" in proc.stdout + proc.stderr


def test_windows_targets_name_the_program_exe_and_find_their_site_packages(tmp_path: Path) -> None:
    windows = [p for p in load_all(ROOT / "profiles") if p.target.sys_platform == "win32"]
    assert windows and all(p.target.exe_suffix == ".exe" for p in windows)
    assert {t.exe_suffix for t in TARGETS.values() if t.sys_platform != "win32"} == {""}
    venv = tmp_path / "venv"
    (venv / "Lib" / "site-packages").mkdir(parents=True)  # what `uv venv` makes on Windows
    (venv / "Scripts").mkdir()
    assert site_packages_of(venv) == venv / "Lib" / "site-packages"


def test_a_dist_copied_under_a_spaced_non_ascii_path_still_verifies(tmp_path: Path) -> None:
    dist = make_dist(tmp_path)
    moved = tmp_path / "Application Support ü" / dist.name
    moved.parent.mkdir()
    shutil.copytree(dist, moved, symlinks=True)
    assert verify_dist(moved).ok


def _entries(archive: Path) -> list[tuple[str, int, int, bytes, str, int]]:
    with tarfile.open(archive) as tar:
        out = []
        for m in tar.getmembers():
            fh = tar.extractfile(m) if m.isfile() else None
            out.append((m.name, m.mode, m.mtime, fh.read() if fh else b"", m.linkname, int(m.type[0])))
        return out


def test_without_xz_on_path_python_writes_the_same_entries_reproducibly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Windows outside Git Bash and a Mac without Homebrew have no xz program
    a = tree(tmp_path / "a", mode=0o644, mtime=1_700_000_000)
    b = tree(tmp_path / "b", mode=0o600, mtime=1_600_000_000)
    assert shutil.which("xz"), "this test compares Python's output with the xz program's"
    write_archive(a, tmp_path / "by-xz.tar.xz", EPOCH, arcname="p")
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools-here"))
    assert shutil.which("xz") is None
    sha_a = write_archive(a, tmp_path / "a.tar.xz", EPOCH, arcname="p")
    assert sha_a == write_archive(b, tmp_path / "b.tar.xz", EPOCH, arcname="p")
    assert _entries(tmp_path / "a.tar.xz") == _entries(tmp_path / "by-xz.tar.xz")
    assert not list(tmp_path.glob(".*.tmp"))
