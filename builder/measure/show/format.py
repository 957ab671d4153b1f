"""The one formatter of show/: sizes, times, intervals, links and lists, as every page writes them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from builder.artifact.inspect import human_size
from builder.measure.judge.stats import MIN_PAIRS
from builder.measure.take.metrics import METRICS


def size(n: float) -> str:
    """Decimal units (1 MB = 10^6 bytes), the units every budget here is stated in."""
    return human_size(n)


def seconds(v: float, digits: int = 2) -> str:
    return f"{v:.{digits}f} s"


def cell(value: Any) -> str:
    """A table cell: a dash for nothing."""
    return "—" if value is None or value == "" else str(value)


def sentence(text: str) -> str:
    """A generated clause as a sentence: its first letter capitalised."""
    return text[:1].upper() + text[1:]


def metric_label(key: str | None, *, unit: bool = False) -> str:
    if not key:
        return "-"
    label, u = METRICS[key]
    return f"{label} ({u})" if unit and u else label


def ci_range(p: Mapping[str, Any]) -> str | None:
    """A metric's interval as 'low–high', or None when too few rounds gave none."""
    return f"{p['ci_low']:.3f}–{p['ci_high']:.3f}" if p.get("ci_low") is not None else None


def ci_header(r: Mapping[str, Any]) -> str:
    """'95% CI' only when some metric has one: too few rounds print no 95% anywhere."""
    if any(p.get("ci_low") is not None for p in r["performance"].values()):
        return "95% CI"
    return f"CI (needs {MIN_PAIRS} rounds)"


def symlinks(f: Mapping[str, Any]) -> str:
    """An OpenMP file's other names (the links `builder build` made to it), as a suffix."""
    others = [n for n in f.get("links", []) if n != f["path"]]
    return f" (+{len(others)} symlink{'s' if len(others) > 1 else ''}: {', '.join(others)})" if others else ""


def openmp_list(runtimes: Iterable[Mapping[str, Any]], *, links: bool = False, sep: str = "; ") -> str:
    """'family path; family path' (with each file's links), or 'none'."""
    text = sep.join(f"{o['family']} {o['path']}" + (symlinks(o) if links else "") for o in runtimes)
    return text or "none"


def mapping(value: Any) -> Any:
    """A small dict as 'k: v, k: v' (install facts); anything else as it is."""
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items()) or "—"
    return value
