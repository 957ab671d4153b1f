"""One build of a profile at a time: a lock file held for the whole build.

The file holds the owner's pid. A lock whose owner is gone (a killed build) is stale and is
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

POLL_SECONDS = 1.0
SAY_EVERY_SECONDS = 30.0


def _owner(path: Path) -> int | None:
    """The pid holding the lock, or None when the file is unreadable or half-written."""
    try:
        pid = json.loads(path.read_text(encoding="utf-8")).get("pid")
    except (OSError, ValueError, AttributeError):
        return None
    return pid if isinstance(pid, int) else None


def _try_take(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump({"pid": os.getpid(), "started": time.time()}, fh)
    return True


@contextmanager
def exclusive(path: Path, *, what: str, wait: bool, log: Log) -> Iterator[None]:
    """Hold `path` for the duration; another holder makes us wait, or raise BusyError."""
    path.parent.mkdir(parents=True, exist_ok=True)
    said = 0.0
    started = time.monotonic()
    while not _try_take(path):
        owner = _owner(path)
        if owner is None or owner == os.getpid() or not psutil.pid_exists(owner):
            # The owner was killed (or the file is half-written by one): recover the lock.
            if owner is None and time.time() - path.stat().st_mtime < 2:
                time.sleep(POLL_SECONDS)  # a writer may be between create and write
                continue
            log.line(f"    {what}: recovering a stale lock {path} (pid {owner} is gone)")
            path.unlink(missing_ok=True)
            continue
        if not wait:
            raise BusyError(
                f"{what} is already running (pid {owner}, lock {path})",
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
