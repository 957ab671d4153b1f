"""Reproducible archives of a dist, `.tar.xz` and `.zip`: same files in, same bytes out.

Both hold the same entries, sorted, under `<arcname>/`. The tar: owners and times fixed
(mtime = SOURCE_DATE_EPOCH), modes normalised to 0755/0644, and xz runs with a fixed block size
so its output does not depend on how many threads compress it. Where no `xz` is on PATH (Windows
outside Git Bash, a Mac without Homebrew's xz), Python's own liblzma writes the same format at the
same preset in one thread: slower, and other bytes than xz's blocks, but the same for the same
files, so two builds on one machine still agree. The zip (what Windows users and
app updaters expect): every entry's time is SOURCE_DATE_EPOCH (UTC, at least 1980, zip's first
year), its creator is "Unix" with the same normalised modes in the external attributes (plus
the MS-DOS directory bit for folders), names are UTF-8, and deflate runs at a fixed level. A
symlink is stored as a Unix link entry (its target as content): Info-ZIP's unzip, bsdtar and
macOS restore it; Windows' own extractor would write a small file instead, which is why the
freeze makes none on Windows. The bytes depend on zlib's version, like any deflate output.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import lzma
import os
import shutil
import stat
import subprocess
import tarfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, cast

from builder.errors import ToolError
from builder.fsutil import remove_dead_temps, sha256_file, temp_file_name, walk

# -0: measured on the minimal Linux runtime (492 MB in, xz 5.4, 2 threads, 32 MiB blocks): -3 gives
# 113 MB for 127 s of CPU, -1 119 MB for 45 s, -0 126 MB for 21 s. The size goal is 180 MB; -1
# with the zip beside it measured 1.92x the old stage's speed, short of the 2x asked for, so -0
# (docs/PERFORMANCE.md, "Package stage").
XZ_PRESET = 0
XZ_BLOCK = "32MiB"


def xz_args(threads: int | None = None) -> list[str]:
    """xz's arguments: multi-threaded mode always (2 threads at least), whose output depends on the
    block size alone; one thread ("-T1") would switch to the single-threaded encoder, other bytes."""
    count = max(2, threads if threads is not None else min(os.cpu_count() or 2, 4))
    return [f"-{XZ_PRESET}", f"--threads={count}", f"--block-size={XZ_BLOCK}", "--check=crc64", "-c"]


def _normalise(info: tarfile.TarInfo, epoch: int) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = epoch
    if info.isdir() or (info.isfile() and info.mode & 0o111):
        info.mode = 0o755
    elif info.isfile():
        info.mode = 0o644
    else:
        info.mode = 0o777  # symlinks
    return info


ZIP_FIRST_YEAR = 1980
ZIP_LEVEL = 6
# (bytes of the folder's files read so far, bytes of the archive written so far)
Progress = Callable[[int, int], None]


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _tmp(archive: Path) -> Path:
    return archive.with_name(temp_file_name(archive, "archive"))


def payload(folder: Path, skip: Iterable[Path] = ()) -> list[Path]:
    """What an archive of folder holds: folder itself and every entry under it, sorted by relative
    path, without `skip` (archives written into the folder, and their temporary files)."""
    left_out = {p for s in skip for p in (s, _tmp(s))}
    paths = [p for p in (folder, *walk(folder)) if p not in left_out]
    return sorted(paths, key=lambda p: p.relative_to(folder).as_posix())


def _entries(folder: Path, archive: Path, arcname: str, skip: Iterable[Path]) -> Iterator[tuple[Path, str]]:
    """(path, name in the archive) of every entry, in the order both archives store them."""
    for path in payload(folder, [archive, *skip]):
        rel = path.relative_to(folder).as_posix()
        yield path, arcname if rel == "." else f"{arcname}/{rel}"


@contextlib.contextmanager
def _atomic(archive: Path) -> Iterator[Path]:
    """The temporary file an archive is written to: renamed over `archive` when the block ends,
    removed when it raises (a killed run's leftovers are removed first)."""
    tmp = _tmp(archive)
    remove_dead_temps(archive.parent)
    try:
        yield tmp
        os.replace(tmp, archive)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_archive(
    folder: Path,
    archive: Path,
    epoch: int,
    *,
    arcname: str,
    skip: Iterable[Path] = (),
    progress: Progress | None = None,
    threads: int | None = None,
) -> str:
    """Write `folder` as `<arcname>/...` into archive (tar.xz), atomically; return its SHA-256.

    The archive may live inside `folder`: it, its temporary file and `skip` are left out.
    `progress` hears (bytes of files read, bytes of archive written) after each file.
    `threads`: xz's threads (default: the cores, 2 to 4); the bytes are the same for any count.
    """
    xz_program = shutil.which("xz")
    done = 0
    with _atomic(archive) as tmp, tmp.open("wb") as out:
        xz: subprocess.Popen[bytes] | None = None
        sink: IO[bytes]
        if xz_program is None:
            sink = lzma.LZMAFile(out, "wb", format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64, preset=XZ_PRESET)
        else:
            try:
                xz = subprocess.Popen([xz_program, *xz_args(threads)], stdin=subprocess.PIPE, stdout=out)
            except OSError as exc:
                raise ToolError(f"cannot run {xz_program}: {exc.strerror}") from None
            sink = cast(IO[bytes], xz.stdin)
        try:
            with tarfile.open(fileobj=sink, mode="w|", format=tarfile.GNU_FORMAT) as tar:
                for path, name in _entries(folder, archive, arcname, skip):
                    info = _normalise(tar.gettarinfo(str(path), arcname=name), epoch)
                    if not info.isfile():
                        tar.addfile(info)
                        continue
                    with path.open("rb") as fh:
                        tar.addfile(info, fh)
                    done += info.size
                    if progress is not None:
                        progress(done, _size(tmp))
        finally:
            sink.close()
            code = xz.wait() if xz is not None else 0
        if code != 0:
            raise ToolError(f"xz failed (exit {code}) writing {archive}")
    return sha256_file(archive)


def _zip_time(epoch: int) -> tuple[int, int, int, int, int, int]:
    t = time.gmtime(epoch)
    if t.tm_year < ZIP_FIRST_YEAR:
        return (ZIP_FIRST_YEAR, 1, 1, 0, 0, 0)
    return (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec)


def zip_entry(path: Path, name: str, epoch: int) -> zipfile.ZipInfo:
    """The ZipInfo of one entry: fixed time, Unix creator, normalised mode (as in the tar)."""
    info = zipfile.ZipInfo(name, date_time=_zip_time(epoch))
    info.create_system = 3  # Unix: unzip applies the mode bits below
    if path.is_symlink():
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        info.compress_type = zipfile.ZIP_STORED
    elif path.is_dir():
        info.external_attr = ((stat.S_IFDIR | 0o755) << 16) | 0x10  # 0x10: the MS-DOS directory bit
        info.compress_type = zipfile.ZIP_STORED
    else:
        mode = 0o755 if path.stat().st_mode & 0o111 else 0o644
        info.external_attr = (stat.S_IFREG | mode) << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        # ZipFile's own compresslevel applies only to entries named by a string, not by a ZipInfo;
        # the attribute is public from Python 3.13 (compress_level), private before.
        setattr(info, "compress_level" if hasattr(info, "compress_level") else "_compresslevel", ZIP_LEVEL)
    return info


def write_zip(
    folder: Path,
    archive: Path,
    epoch: int,
    *,
    arcname: str,
    skip: Iterable[Path] = (),
    progress: Progress | None = None,
) -> str:
    """Write `folder` as `<arcname>/...` into archive (.zip), atomically; return its SHA-256.

    The archive may live inside `folder`: it, its temporary file and `skip` are left out.
    `progress` hears (bytes of files read, bytes of archive written) after each file.
    """
    done = 0
    with _atomic(archive) as tmp, zipfile.ZipFile(tmp, "w", allowZip64=True) as zf:
        for path, name in _entries(folder, archive, arcname, skip):
            is_dir = path.is_dir() and not path.is_symlink()
            info = zip_entry(path, name + "/" if is_dir else name, epoch)
            if path.is_symlink():
                zf.writestr(info, os.readlink(path).replace(os.sep, "/"))
                continue
            if is_dir:
                zf.writestr(info, b"")
                continue
            # zip64 headers only where a file needs them: the choice depends on the size alone
            size = path.stat().st_size
            with path.open("rb") as src, zf.open(info, "w", force_zip64=size >= zipfile.ZIP64_LIMIT) as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
            done += size
            if progress is not None:
                progress(done, _size(tmp))
    return sha256_file(archive)


def write_both(
    folder: Path,
    tar_xz: Path,
    zipped: Path,
    epoch: int,
    *,
    arcname: str,
    skip: Iterable[Path] = (),
    progress: Callable[[str, int, int], None] | None = None,
) -> tuple[str, str]:
    """Write the tar.xz and the zip of `folder` at the same time; return their SHA-256s.

    The zip deflates in a second thread (zlib lets go of the GIL while it works) while xz's own
    threads compress the tar: on two cores neither waits for the other to finish. Each archive
    is written exactly as `write_archive` and `write_zip` write it alone. `progress` hears
    (archive name, bytes read, bytes written) from both threads.
    """

    stop = threading.Event()

    def reporter(name: str) -> Progress:
        def report(read: int, written: int) -> None:
            if stop.is_set():
                raise _Stopped  # the tar failed or was interrupted: no use finishing the zip
            if progress is not None:
                progress(name, read, written)

        return report

    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="zip") as pool:
        zip_job = pool.submit(
            write_zip, folder, zipped, epoch, arcname=arcname, skip=skip, progress=reporter(zipped.name)
        )
        try:
            tar_sha = write_archive(
                folder, tar_xz, epoch, arcname=arcname, skip=skip, progress=reporter(tar_xz.name)
            )
        except BaseException:
            stop.set()
            concurrent.futures.wait([zip_job])  # write_zip removes its temporary file as it stops
            if zip_job.exception() is None:
                zipped.unlink(missing_ok=True)  # finished first: not half of a pair
            raise
        return tar_sha, zip_job.result()  # the zip's own error, if any, is raised here


class _Stopped(Exception):
    """Raised inside the zip's thread to end it early."""
