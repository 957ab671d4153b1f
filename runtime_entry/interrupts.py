"""SIGINT and SIGTERM, handled the same way by every command.

The first of them is kept (`signal_name`, `exit_code`: 128 + its number, the shell's
convention); a later one is ignored, so that the cleanup the first one started (removing
partial stems, answering the worker's jobs) cannot itself be cut short. SIGKILL cannot be
handled: its partial files are removed by the next run into the same folder (audio.py).

`separate` raises `Interrupted` at once, in the main thread, wherever it is: every writer
aborts on any BaseException. The worker only notes it (`raise_at_once=False`): its job
loop stops the running job before its next batch, as a `cancel` does, and answers every
accepted request.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

from .errors import Interrupted

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupts:
    def __init__(self) -> None:
        self.signum: int | None = None
        self.raise_at_once = True
        self.event = threading.Event()

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""

    def error(self) -> Interrupted:
        assert self.signum is not None
        return Interrupted(self.signum, self.signal_name)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:
            return  # a second signal: the first one's cleanup goes on
        self.signum = signum
        self.event.set()
        if self.raise_at_once:
            raise self.error()

    def install(self, *, raise_at_once: bool) -> None:
        """Handle SIGINT and SIGTERM from now on (main thread only, as Python requires)."""
        self.raise_at_once = raise_at_once
        for sig in SIGNALS:
            signal.signal(sig, self._handle)


# one per process: signal handlers are process-wide
INTERRUPTS = Interrupts()
