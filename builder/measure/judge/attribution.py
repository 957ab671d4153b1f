"""Where a difference between two runtimes comes from, in sentences, from what compare measured.

The process wall time is split into what the imports took (by top-level package, from
`-X importtime` or the probe) and the rest (model load and separation); the rest is then laid
beside what differs in threads, precision, environment and OpenMP. Packages only one side
carries are named with their size. Pure: it reads the comparison, measures nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# A package's import time difference worth naming, ms.
NAMED_MS = 20.0


def _median(summary: Mapping[str, Any], metric: str) -> float | None:
    value = (summary.get(metric) or {}).get("median")
    return float(value) if value is not None else None


def attribution(result: Mapping[str, Any]) -> list[str]:
    """The comparison's differences, largest first, each naming its source (pure)."""
    sa, sb = result["summary"]["a"], result["summary"]["b"]
    lines: list[str] = []
    total_a, total_b = _median(sa, "total_s"), _median(sb, "total_s")
    imp_a, imp_b = _median(sa, "import_s"), _median(sb, "import_s")
    delta_import = imp_b - imp_a if imp_a is not None and imp_b is not None else None
    if total_a is not None and total_b is not None:
        delta = total_b - total_a
        lines.append(
            f"B's process takes {delta:+.2f} s against A's ({total_a:.2f} s → {total_b:.2f} s, medians)."
        )
    if delta_import is not None:
        named = [
            f"{row['package']} {row['diff_ms']:+.0f} ms"
            for row in result["imports"]["top_differences"]
            if abs(row["diff_ms"]) >= NAMED_MS
        ]
        lines.append(
            f"Imports: {delta_import:+.2f} s ({imp_a:.2f} s → {imp_b:.2f} s)"
            + (": " + ", ".join(named[:8]) if named else "; no package differs by 20 ms or more")
            + "."
        )
        if total_a is not None and total_b is not None:
            rest = (total_b - total_a) - delta_import
            lines.append(f"After the imports (model load, separation, writing): {rest:+.2f} s.")
    differing = [
        row for row in result["threading"] if not row["same"] and row["setting"] != "runtime settings from"
    ]
    if differing:
        lines.append(
            "Settings that differ: "
            + "; ".join(f"{row['setting']}: A {row['a']}, B {row['b']}" for row in differing)
            + "."
        )
    else:
        lines.append("Threads, inter-op threads, matmul precision and the reported environment are the same.")
    omp = result["openmp_loaded"]
    files_a = sorted(o["path"].rsplit("/", 1)[-1] for o in omp["a"] or [])
    files_b = sorted(o["path"].rsplit("/", 1)[-1] for o in omp["b"] or [])
    if files_a != files_b:
        lines.append(f"OpenMP loaded: A {', '.join(files_a) or 'none'}; B {', '.join(files_b) or 'none'}.")
    for side, other in (("b", "a"), ("a", "b")):
        only = result["packages"][f"only_in_{side}"]
        if only:
            size = sum(int(p.get(f"size_{side}") or 0) for p in only)
            names = ", ".join(p["name"] for p in only[:8])
            lines.append(
                f"{side.upper()} carries {len(only)} packages {other.upper()} does not ({size / 1e6:.0f} MB): "
                f"{names}{', …' if len(only) > 8 else ''}."
            )
    return lines
