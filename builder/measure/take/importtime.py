"""Import time: `-X importtime` lines parsed into modules, summarised by package (pure)."""

from __future__ import annotations

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
