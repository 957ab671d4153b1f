"""Atomic writes and file hashing: outputs appear whole or not at all, and only where they may.

The one rule for outputs (`safe_output`): builder never writes over something that is not a
plain file of its own: a device, a FIFO, a socket, a folder, a symlink, a dist's own records
(manifest.json, SHA256SUMS, its SBOM, archives and their .sha256), or one of the command's
inputs. Every write goes to a temporary name in the same folder and is renamed into place.

Every temporary name builder makes has one pattern (`TEMP_NAME`), so builder's own leftovers
are told from a user's files by name alone:
  .NAME.builder-tmp / .NAME.builder-old     staged folders (fixed names: paths stay reproducible)
  .NAME.builder-tmp-PID-XXXX                a file being written by process PID
A file temp whose process is gone is a leftover; the next write into that folder removes it.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

from builder.errors import InputError
from builder.oserror import os_error

TEMP_TAG = ".builder-"
TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.builder-(?P<kind>tmp|old)(?:-(?P<pid>\d+)-(?P<id>[A-Za-z0-9_]+))?$")
# A dist's own records: written by `builder build` only, never over by another command.
DIST_MARKER = "manifest.json"
DIST_RECORDS = frozenset({"manifest.json", "SHA256SUMS", "sbom.cdx.json"})
DIST_RECORD_SUFFIXES = (".tar.xz", ".zip", ".sha256")


def temp_file_name(final: Path, tag: str = "") -> str:
    """The temporary name of a file on its way to `final`: `.NAME.builder-tmp-PID-` (+ tag)."""
    return f".{final.name}.builder-tmp-{os.getpid()}-{tag}"


def staged_names(final: Path) -> tuple[Path, Path]:
    """(staging folder, the folder it replaces moved aside) of staged_dir, beside `final`."""
    return final.parent / f".{final.name}.builder-tmp", final.parent / f".{final.name}.builder-old"


def is_dead_temp(path: Path) -> bool:
    """A file temp of builder's pattern whose writer is no longer running (pid reuse only delays it)."""
    match = TEMP_NAME.match(path.name)
    if not match or match["kind"] != "tmp" or match["pid"] is None:
        return False
    pid = int(match["pid"])
    return pid != os.getpid() and not psutil.pid_exists(pid)


def remove_dead_temps(folder: Path) -> list[Path]:
    """Remove builder's file temps in `folder` (not below) left by a killed process; return them."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if TEMP_TAG not in entry.name or not is_dead_temp(Path(entry.path)):
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
        except OSError:
            continue  # another run removed it first, or it is not ours to remove after all
        removed.append(Path(entry.path))
    return removed


def _kind_of(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISLNK(mode):
        return "a symlink"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def is_dist_record(path: Path) -> bool:
    """A file `builder build` wrote as a dist's record: manifest, sums, SBOM, archive (pure but for is_file)."""
    name = path.name
    if name not in DIST_RECORDS and not name.endswith(DIST_RECORD_SUFFIXES):
        return False
    return (path.parent / DIST_MARKER).is_file()


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


def safe_output(path: Path, what: str, inputs: Iterable[Path] = ()) -> None:
    """Raise InputError unless `path` may be written: absent, or a regular file that is neither a
    dist's record nor one of `inputs`. Called before any work and again by every atomic write."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise InputError(f"{what} {path}: cannot write there ({exc.strerror or exc})") from None
    hint = "name a new file, or a plain file builder wrote"
    if mode is not None and not stat.S_ISREG(mode):
        raise InputError(f"{what} {path}: is {_kind_of(mode)}, not a regular file; refusing to write over it",
                         hint=hint)  # fmt: skip
    if mode is not None and is_dist_record(path):
        raise InputError(
            f"{what} {path}: is a record of the dist in {path.parent}; refusing to write over it",
            hint="write it outside the dist",
        )
    for source in inputs:
        if (mode is not None and _same_file(path, source)) or path.resolve() == source.resolve():
            raise InputError(f"{what} {path}: is an input of this command; refusing to write over it",
                             hint=hint)  # fmt: skip


def safe_output_dir(final: Path, what: str, marker: str = DIST_MARKER) -> None:
    """Raise InputError unless the folder `final` may be replaced: absent, empty, or a folder builder
    made (it holds `marker`). A user's folder that happens to share the name is never replaced."""
    try:
        mode = final.lstat().st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise InputError(f"{what} {final}: cannot write there ({exc.strerror or exc})") from None
    if not stat.S_ISDIR(mode):
        raise InputError(
            f"{what} {final}: is {_kind_of(mode)}, not a folder builder made; refusing to replace it"
        )
    if (final / marker).is_file() or not any(final.iterdir()):
        return
    raise InputError(
        f"{what} {final}: exists and is not a folder builder made (no {marker}); refusing to replace it",
        hint="move it away, or give another --out",
    )


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def content_digest(path: Path) -> bytes:
    """SHA-256 of a file's bytes, or of a folder's files (relative names, link texts and bytes, in
    a stable order): a workload's model may be either."""
    digest = hashlib.sha256()
    if not path.is_dir():
        digest.update(path.read_bytes())
        return digest.digest()
    for item in iter_files(path):
        digest.update(item.relative_to(path).as_posix().encode() + b"\0")
        digest.update(os.readlink(item).encode() if item.is_symlink() else content_digest(item))
    return digest.digest()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path, text: str, *, what: str = "output", inputs: Iterable[Path] = ()) -> None:
    """Write `text` to a temporary file beside `path`, then rename it over `path` (see safe_output);
    an OS refusal names `path`, not the temporary."""
    safe_output(path, what, inputs)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_dead_temps(path.parent)
        fd, tmp = tempfile.mkstemp(prefix=temp_file_name(path), dir=path.parent)
    except OSError as exc:
        raise os_error(exc, path, doing="write") from None
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a written file should read like any other
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise os_error(exc, path, doing="write") from None
        raise


@contextmanager
def staged_dir(final: Path) -> Iterator[Path]:
    """Yield a fresh temporary folder beside `final`; on success it replaces `final`.

    The old folder is moved aside first and removed only after the new one is in
    place, so an interruption at any point leaves a complete folder at `final`
    or (before the very first success) none at all. Leftovers are named
    `.NAME.builder-tmp` / `.NAME.builder-old` and removed by the next run.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(final)
    # A fixed staging name (not mkdtemp's random one) keeps paths, and so bytes, reproducible.
    # (One build per output at a time: the next run clears a dead run's leftovers.)
    tmp, old = staged_names(final)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def remove_leftovers(final: Path) -> None:
    tmp, old = staged_names(final)
    shutil.rmtree(tmp, ignore_errors=True)
    if old.exists():
        # An .old folder without a final one means we died between the two renames.
        if final.exists():
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(old, final)


def walk(root: Path) -> Iterator[Path]:
    """The one directory walker: every entry under root (folders, files, symlinks), sorted by name
    within each folder; a symlink to a folder is an entry of its own and is not followed."""
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames.sort()
        for name in sorted(filenames):
            yield here / name
        for name in dirnames:
            yield here / name
        dirnames[:] = [d for d in dirnames if not (here / d).is_symlink()]


def iter_files(root: Path) -> Iterator[Path]:
    """Every file and symlink under root (links not followed), in a stable order."""
    for path in walk(root):
        if path.is_symlink() or not path.is_dir():
            yield path


def require_writable_dir(path: Path, what: str) -> None:
    """Fail now, not after an hour of work, when `path` cannot become a folder we write into."""
    if path.exists() and not path.is_dir():
        raise InputError(f"{what} {path}: not a folder")
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(f"{what} {path}: cannot write there ({existing} is not a folder)")
    # a real probe, not os.access: root passes access() on read-only mounts and /proc
    try:
        with tempfile.TemporaryDirectory(prefix=f".probe.builder-tmp-{os.getpid()}-", dir=existing):
            pass
    except OSError as exc:
        raise InputError(
            f"{what} {path}: cannot write there ({existing} is not a writable folder: {exc.strerror or exc})"
        ) from None
