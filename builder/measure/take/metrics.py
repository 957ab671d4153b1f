"""The figures a run takes: each metric's key, what it is and its unit, what `--metric` names, and
which runs count (pure definitions, shared by take and judge)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Per-run metrics, in seconds unless named otherwise: key -> (label, unit); lower is better.
METRICS: dict[str, tuple[str, str]] = {
    "startup_s": ("time to ready (selftest JSON)", "s"),
    "import_s": ("import time (all modules)", "s"),
    "separation_s": ("separation wall time", "s"),
    "total_s": ("bench process wall time", "s"),
    "rtf": ("real-time factor (wall / audio)", "x"),
    "chunk_s": ("separation, median seconds per chunk", "s"),
    "seconds_per_chunk": ("separation, seconds per chunk", "s"),
    "cores_busy": ("CPU cores busy during separation", "cores"),
    "peak_rss_mb": ("peak memory (bench process)", "MB"),
    "os_threads": ("OS threads (max seen)", ""),
}
# What `--metric` names in compare/bisect/tune mean.
METRIC_ALIASES = {
    "chunk": "chunk_s",
    "wall": "separation_s",
    "import": "import_s",
    "startup": "startup_s",
    "total": "total_s",
}
# The headline is the job itself (the separation, per chunk); start-up is its own line, since it
# dominates a short run's process wall time and hid a 47% slower separation behind "no difference".
TIME_METRICS = ("chunk_s", "seconds_per_chunk", "separation_s", "startup_s", "import_s", "total_s")
STARTUP = "startup_s"
# The resources beside the time metrics, in the reports.
RESOURCE_METRICS = ("rtf", "cores_busy", "peak_rss_mb", "os_threads")


def usable(run: Mapping[str, Any]) -> bool:
    return not run.get("hung") and not run.get("failed")


def figure(run: Mapping[str, Any], key: str) -> float | None:
    """A usable run's figure for `key`, as a float; None for a failed run or a missing figure."""
    value = run.get(key) if usable(run) else None
    return float(value) if value is not None else None
