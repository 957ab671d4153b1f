"""Progress for long work: each step with its duration, on stderr (stdout is for results)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO


class Log:
    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.durations: dict[str, float] = {}

    def line(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

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
