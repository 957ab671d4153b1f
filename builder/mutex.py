"""One build of a profile at a time: a mutex file held for the whole build.

The file holds the owner's pid. A mutex whose owner is gone (a killed build) is stale and is
taken over; a live owner is waited for, with a line every so often, or refused (--no-wait).
Creating the file with O_EXCL is atomic on every target, so two builds never both win.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

from builder.errors import BusyError
from builder.log import Log
from builder.oserror import os_error

POLL_SECONDS = 1.0
SAY_EVERY_SECONDS = 30.0


def _owner(path: Path) -> int | None:
    """The pid holding the mutex, or None when the file is gone, damaged or half-written.

    A file we may not read is not a stale mutex: that is said as such, and nothing is removed.
    """
    try:
        pid = json.loads(path.read_bytes()[:4096].decode("utf-8")).get("pid")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise os_error(exc, path, doing="read the build mutex") from None
    except (ValueError, AttributeError, RecursionError):
        return None
    return pid if isinstance(pid, int) else None


def _try_take(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    except OSError as exc:  # a folder we may not write, a read-only or full disk: not "busy"
        raise os_error(exc, path, doing="create the build mutex") from None
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump({"pid": os.getpid(), "started": time.time()}, fh)
    return True


@contextmanager
def build_mutex(path: Path, *, what: str, wait: bool, log: Log) -> Iterator[None]:
    """Hold `path` for the duration; another holder makes us wait, or raise BusyError."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise os_error(exc, path.parent, doing="create the folder of the build mutex") from None
    said = 0.0
    started = time.monotonic()
    while not _try_take(path):
        owner = _owner(path)
        if owner is None or owner == os.getpid() or not psutil.pid_exists(owner):
            # The owner was killed (or the file is half-written by one): recover the mutex.
            if owner is None and time.time() - path.stat().st_mtime < 2:
                time.sleep(POLL_SECONDS)  # a writer may be between create and write
                continue
            log.line(f"    {what}: recovering a stale build mutex {path} (pid {owner} is gone)")
            path.unlink(missing_ok=True)
            continue
        if not wait:
            raise BusyError(
                f"{what} is already running (pid {owner}, mutex {path})",
                hint="wait for it, or run again without --no-wait to wait",
            )
        now = time.monotonic()
        if now - said >= SAY_EVERY_SECONDS or said == 0.0:
            log.line(f"    {what}: waiting for pid {owner} to finish ({now - started:.0f} s so far)")
            said = now
        time.sleep(POLL_SECONDS)
    try:
        yield
    finally:
        if _owner(path) == os.getpid():
            path.unlink(missing_ok=True)
