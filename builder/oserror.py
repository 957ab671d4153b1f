"""What an OSError means for the user: one BuilderError naming the path, by errno.

Readers call `os_error` where they know what the path was for; the CLI calls it as the
safety net for any OSError that reached it. Missing paths and paths of the wrong kind are bad
input (exit 10); permissions, a full or read-only disk and the rest have their own codes.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from builder.errors import AccessError, BuilderError, DiskError, FileSystemError, InputError

# errno -> what it means here; EDQUOT is not in Windows' errno module.
_NOT_THERE = {
    errno.ENOENT: "no such file or folder",
    errno.ENOTDIR: "a part of the path is not a folder",
    errno.EISDIR: "is a folder, where a file belongs",
    errno.ELOOP: "symlink loop (a link that leads back to itself)",
    errno.ENAMETOOLONG: "name too long",
}
_ACCESS = {errno.EACCES, errno.EPERM}
_DISK = {
    errno.ENOSPC: "no space left on the device",
    errno.EROFS: "read-only file system",
    errno.EFBIG: "file too large for the file system or the process's limit",
    getattr(errno, "EDQUOT", errno.ENOSPC): "disk quota exceeded",
}


def _describe_missing(path: str) -> str:
    """ENOENT on a symlink is a broken link, which is worth saying: the name is there."""
    try:
        if os.path.islink(path):
            return f"broken symlink (it points to {os.readlink(path)}, which does not exist)"
    except OSError:
        pass
    return _NOT_THERE[errno.ENOENT]


def _where(exc: OSError, path: Path | str | None) -> str:
    name = path if path is not None else exc.filename
    where = os.fsdecode(name) if isinstance(name, (str, bytes, os.PathLike)) else "(unknown path)"
    if exc.filename2 is not None:
        where += f" -> {os.fsdecode(exc.filename2)}"
    return where


def os_error(exc: OSError, path: Path | str | None = None, *, doing: str = "") -> BuilderError:
    """The one BuilderError for `exc`: the path (given, or the exception's), what happened, a hint."""
    where = _where(exc, path)
    verb = f"cannot {doing}: " if doing else ""
    code = exc.errno
    if code == errno.ENOENT:
        return InputError(f"{where}: {verb}{_describe_missing(where.split(' -> ')[0])}")
    if code in _NOT_THERE:
        return InputError(f"{where}: {verb}{_NOT_THERE[code]}")
    if code in _ACCESS:
        return AccessError(
            f"{where}: {verb}permission denied",
            hint="check the file's and its folders' permissions, or run as a user that may access it",
        )
    if code in _DISK:
        return DiskError(f"{where}: {verb}{_DISK[code]}", hint="free space or write somewhere else")
    reason = exc.strerror or type(exc).__name__
    return FileSystemError(f"{where}: {verb}{reason} (errno {code})")


def stat_path(path: Path | str) -> os.stat_result:
    """os.stat, following links; a missing path, a loop or a permission is one BuilderError."""
    try:
        return os.stat(path)
    except OSError as exc:
        raise os_error(exc, path) from None
