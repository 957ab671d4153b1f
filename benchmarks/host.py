"""The machine a benchmark ran on, in one line for its report (the benchmarks' one copy of it)."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def machine() -> str:
    """CPU model, CPU count, OS and Python, e.g.
    'Intel(R) Xeon(R) Processor, 2 CPUs, Linux 6.18.44 x86_64, Python 3.11.7'."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    system = f"{platform.system()} {platform.release()} {platform.machine()}"
    return f"{model}, {os.cpu_count()} CPUs, {system}, Python {platform.python_version()}"
