"""The faster package stage keeps its archives reproducible: xz's bytes do not depend on its thread
count (multi-threaded mode, fixed block size), and writing the tar.xz and the zip at the same time
gives the same bytes as writing them one after the other."""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import pytest

from builder.artifact import archive
from builder.artifact.archive import write_archive, write_both, write_zip, xz_args

EPOCH = 315532800
needs_xz = pytest.mark.skipif(
    shutil.which("xz") is None, reason="xz is not on PATH (Python's liblzma is used)"
)


def tree(root: Path, big: int = 0) -> Path:
    """A small folder (files, a link, an empty folder); `big` adds a compressible file of that size."""
    (root / "lib" / "sub").mkdir(parents=True)
    rng = random.Random(7)
    (root / "lib" / "a.so").write_bytes(rng.randbytes(300_000))
    (root / "lib" / "sub" / "b.txt").write_text("text\n" * 5000)
    (root / "prog").write_bytes(b"#!/bin/sh\n")
    os.chmod(root / "prog", 0o755)
    os.symlink("lib/a.so", root / "link")
    (root / "empty").mkdir()
    if big:
        pattern = rng.randbytes(1 << 16)  # repeats inside xz's window: fast to compress, still 2+ blocks
        (root / "lib" / "big.bin").write_bytes(pattern * (big // len(pattern)))
    return root


def test_xz_always_runs_multithreaded_with_a_fixed_block_size() -> None:
    for threads in (None, 1, 2, 16):
        args = xz_args(threads)
        count = int(next(a for a in args if a.startswith("--threads=")).split("=")[1])
        assert count >= 2  # -T1 would be xz's single-threaded encoder: other bytes
        assert "--block-size=32MiB" in args


@needs_xz
def test_the_tar_xz_is_the_same_for_any_thread_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # 1 MiB blocks over ~4.5 MB: five blocks, compressed in parallel, in well under a second
    monkeypatch.setattr(archive, "XZ_BLOCK", "1MiB")
    folder = tree(tmp_path / "t", big=4 << 20)
    shas = {
        t: write_archive(folder, tmp_path / f"{t}.tar.xz", EPOCH, arcname="p", threads=t) for t in (2, 3, 5)
    }
    assert len(set(shas.values())) == 1


@needs_xz
@pytest.mark.slow
def test_the_tar_xz_is_the_same_for_any_thread_count_at_the_real_block_size(tmp_path: Path) -> None:
    folder = tree(tmp_path / "t", big=70 << 20)  # 70 MiB: three 32 MiB blocks
    shas = {t: write_archive(folder, tmp_path / f"{t}.tar.xz", EPOCH, arcname="p", threads=t) for t in (2, 3)}
    assert len(set(shas.values())) == 1


def test_both_archives_at_once_equal_each_written_alone(tmp_path: Path) -> None:
    folder = tree(tmp_path / "t")
    alone = (
        write_archive(folder, tmp_path / "alone.tar.xz", EPOCH, arcname="p"),
        write_zip(folder, tmp_path / "alone.zip", EPOCH, arcname="p"),
    )
    heard: dict[str, list[tuple[int, int]]] = {}
    together = write_both(
        folder,
        tmp_path / "both.tar.xz",
        tmp_path / "both.zip",
        EPOCH,
        arcname="p",
        progress=lambda name, read, written: heard.setdefault(name, []).append((read, written)),
    )
    assert together == alone
    assert (tmp_path / "both.zip").read_bytes() == (tmp_path / "alone.zip").read_bytes()
    files = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
    assert set(heard) == {"both.tar.xz", "both.zip"}
    for reports in heard.values():
        reads = [read for read, _ in reports]
        assert reads == sorted(reads) and reads[-1] == files  # every file's bytes, counted once


def test_a_failing_tar_stops_the_zip_and_leaves_neither_archive(tmp_path: Path) -> None:
    folder = tree(tmp_path / "t", big=2 << 20)

    def progress(name: str, read: int, written: int) -> None:
        if name.endswith(".tar.xz"):
            raise KeyboardInterrupt  # what Ctrl-C does in the main thread

    with pytest.raises(KeyboardInterrupt):
        write_both(folder, tmp_path / "o.tar.xz", tmp_path / "o.zip", EPOCH, arcname="p", progress=progress)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t"]
