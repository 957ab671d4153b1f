"""What stands between a path and a regular file, said before anything reads it.

One stat, every OSError and ValueError mapped to words: a path that is too long, a symbolic
link loop, a NUL byte or a permission error is the reader's own error (bad input, config or
checkpoint), never an internal one.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

# kinds: "missing", "folder", "special" (a FIFO, device or socket), "unreadable" (anything else)
Problem = tuple[str, str]


def file_problem(path: str | Path) -> Problem | None:
    """(kind, what is wrong) when `path` is not a regular file, else None."""
    if "\0" in str(path):
        return "unreadable", "the path holds a NUL byte"
    try:
        st = os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            if os.path.islink(path):
                return "missing", "a broken symbolic link"
            return "missing", "no such file"
        if exc.errno == errno.ELOOP:
            return "unreadable", "a symbolic link loop"
        if exc.errno == errno.ENAMETOOLONG:
            return "unreadable", "the file name is too long for this system"
        if exc.errno == errno.ENOTDIR:
            return "missing", "a part of the path is a file, not a folder"
        return "unreadable", f"cannot read it ({exc.strerror or exc})"
    except ValueError as exc:
        return "unreadable", f"not a usable path ({exc})"
    if stat.S_ISDIR(st.st_mode):
        return "folder", "a folder"
    if not stat.S_ISREG(st.st_mode):
        return "special", "not a regular file (a FIFO or a device)"
    return None


def problem_text(problem: Problem, *, missing: str, holds: str) -> str:
    """The message for a model file that is not a regular file: `missing` when there is none,
    "not a regular file (<holds>)" for a folder, FIFO or device, else the problem's own words."""
    kind, text = problem
    if kind == "missing" and text == "no such file":
        return missing
    if kind in ("folder", "special"):
        return f"not a regular file ({holds})"
    return text
