"""Progress for long work: each step with its duration, on stderr (stdout is for results).

Inside a step, `progress` prints what the work is doing now (a phase, MB written); such lines
are kept sparse: a tty gets one every PROGRESS_TTY_S seconds at most, a log file or a `--json`
run one every PROGRESS_QUIET_S, so a CI log or a JSON caller's stderr stays short.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

PROGRESS_TTY_S = 2.0
PROGRESS_QUIET_S = 15.0


class Log:
    def __init__(self, stream: TextIO | None = None, *, quiet: bool = False) -> None:
        """`quiet`: a machine reads stdout (--json), so progress lines come at the slower pace."""
        self.stream = stream or sys.stderr
        self.durations: dict[str, float] = {}
        tty = not quiet and bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = PROGRESS_TTY_S if tty else PROGRESS_QUIET_S
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()  # the package stage reports from two threads

    def line(self, text: str) -> None:
        with self._lock:
            print(text, file=self.stream, flush=True)

    def progress(self, key: str, text: str, *, now: bool = False) -> bool:
        """Print `    text` unless a line of the same `key` came less than `interval` ago (`now`:
        print anyway, for a new phase or the last figure). Return whether it was printed."""
        t = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if not now and last is not None and t - last < self.interval:
                return False
            self._last[key] = t
        self.line(f"    {text}")
        return True

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        self.line(f"==> {name}")
        start = time.perf_counter()
        try:
            yield
        except BaseException:
            self.line(f"    failed after {time.perf_counter() - start:.1f} s")
            raise
        elapsed = time.perf_counter() - start
        self.durations[name] = round(elapsed, 2)
        self.line(f"    done in {elapsed:.1f} s")
