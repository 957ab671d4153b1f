"""Import time: `-X importtime` lines parsed into modules, summarised by package (pure)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

TOP_MODULES = 15


# --- parsing what the runtime printed ------------------------------------------------


def parse_importtime(stderr: str) -> list[dict[str, Any]]:
    """`-X importtime` lines -> [{module, self_us, cumulative_us, depth}] in import order (pure).

    >>> parse_importtime("import time: self [us] | cumulative | imported package\\n"
    ...                  "import time:       472 |        472 |     yaml._yaml\\n"
    ...                  "import time:       309 |      20639 | yaml\\n")[1]
    {'module': 'yaml', 'self_us': 309, 'cumulative_us': 20639, 'depth': 0}
    """
    rows = []
    for line in stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        parts = line[len("import time:") :].split("|")
        if len(parts) != 3:
            continue
        try:
            self_us, cum_us = int(parts[0]), int(parts[1])
        except ValueError:
            continue  # the header line
        name = parts[2].rstrip()
        depth = (len(name) - len(name.lstrip(" ")) - 1) // 2
        rows.append({"module": name.strip(), "self_us": self_us, "cumulative_us": cum_us, "depth": depth})
    return rows


def import_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Total import time, the slowest modules (self time) and time per top-level package."""
    by_package: dict[str, int] = {}
    for r in rows:
        top = r["module"].split(".")[0]
        by_package[top] = by_package.get(top, 0) + r["self_us"]
    slowest = sorted(rows, key=lambda r: -r["self_us"])[:TOP_MODULES]
    return {
        "total_s": round(sum(r["cumulative_us"] for r in rows if r["depth"] == 0) / 1e6, 4),
        "modules": len(rows),
        "slowest_modules": [
            {
                "module": r["module"],
                "self_ms": round(r["self_us"] / 1000, 2),
                "cumulative_ms": round(r["cumulative_us"] / 1000, 2),
            }
            for r in slowest
        ],
        "by_package_ms": {
            k: round(v / 1000, 2) for k, v in sorted(by_package.items(), key=lambda kv: -kv[1]) if v >= 500
        },
    }


def median_imports(runs: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """Median import time per package and per module over the runs that have them."""
    per = [r["imports"] for r in runs if r.get("imports")]
    if not per:
        return None
    pkgs = sorted({p for i in per for p in i["by_package_ms"]})
    by_pkg = {p: round(statistics.median([i["by_package_ms"].get(p, 0.0) for i in per]), 2) for p in pkgs}
    mods: dict[str, list[float]] = {}
    for i in per:
        for m in i["slowest_modules"]:
            mods.setdefault(m["module"], []).append(m["self_ms"])
    slowest = sorted(
        ((m, statistics.median(v + [0.0] * (len(per) - len(v)))) for m, v in mods.items()),
        key=lambda kv: -kv[1],
    )[:TOP_MODULES]
    return {
        "total_s": round(statistics.median([i["total_s"] for i in per]), 4),
        "by_package_ms": dict(sorted(by_pkg.items(), key=lambda kv: -kv[1])),
        "slowest_modules": [{"module": m, "self_ms": round(v, 2)} for m, v in slowest],
    }
