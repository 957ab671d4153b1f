"""Atomic writes and file hashing: outputs appear whole or not at all."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from builder.errors import InputError
from builder.oserror import os_error


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path, text: str) -> None:
    """Write through a temporary file beside `path`; an OS refusal names `path`, not the temporary."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
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
    `.NAME.tmp-*` / `.NAME.old-*` and removed by the next run.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(final)
    # A fixed staging name (not mkdtemp's random one) keeps paths, and so bytes, reproducible.
    # (One build per output at a time: the next run clears a dead run's leftovers.)
    tmp = final.parent / f".{final.name}.tmp"
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = final.parent / f".{final.name}.old"
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def remove_leftovers(final: Path) -> None:
    shutil.rmtree(final.parent / f".{final.name}.tmp", ignore_errors=True)
    old = final.parent / f".{final.name}.old"
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
        with tempfile.TemporaryDirectory(prefix=".probe-", dir=existing):
            pass
    except OSError as exc:
        raise InputError(
            f"{what} {path}: cannot write there ({existing} is not a writable folder: {exc.strerror or exc})"
        ) from None
