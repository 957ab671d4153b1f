"""What the benchmarks share (one copy each): the machine they ran on, in one line for a report,
and writing a benchmark's own section of a Markdown file such as docs/PERFORMANCE.md."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo), else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_bf16_flags() -> list[str] | None:
    """The CPU's native bf16 flags (Linux's /proc/cpuinfo: AMX, AVX512-BF16); None when unknown."""
    try:
        flags = next(
            line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")
        ).split()
    except (OSError, StopIteration):
        return None
    return sorted(f for f in flags if f in ("avx512_bf16", "amx_bf16", "amx_tile"))


def machine() -> str:
    """CPU model, CPU count, OS and Python, e.g.
    'Intel(R) Xeon(R) Processor, 2 CPUs, Linux 6.18.44 x86_64, Python 3.11.7'."""
    system = f"{platform.system()} {platform.release()} {platform.machine()}"
    return f"{cpu_model()}, {os.cpu_count()} CPUs, {system}, Python {platform.python_version()}"


def write_section(path: Path, section: str, begin: str, end: str) -> None:
    """Replace the part of `path` between the markers with `section` (which carries them), or
    append it; written to a temporary file and renamed into place."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Performance\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        tail = rest.split(end, 1)[1].lstrip("\n")
        text = head + section + ("\n" + tail if tail else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
