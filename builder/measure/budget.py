"""A profile's [bench] budget checked against what was measured."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from builder.errors import BudgetError, CheckError, InputError
from builder.measure.runtime import Runtime
from builder.profile import Profile

# --- budget ---------------------------------------------------------------------------


def size_of(rt: Runtime) -> dict[str, Any] | None:
    from builder.dist.inspect import inspect_path

    try:
        info = inspect_path(rt.path)
    except (InputError, FileNotFoundError):
        return None
    return {"bytes": info.total_bytes, "files": info.files}


def check_budget(
    summary: Mapping[str, Any],
    size: Mapping[str, Any] | None,
    profile: Profile | None,
    *,
    shipped: bool = True,
) -> dict[str, Any]:
    """Each budget the profile sets, with the measured median (or size) and whether it is met."""
    checks = []
    if profile is not None:
        b = profile.bench
        pairs = [
            ("max-startup-seconds", b.max_startup_seconds, (summary.get("startup_s") or {}).get("median")),
            (
                "max-seconds-per-chunk",
                b.max_seconds_per_chunk,
                (summary.get("seconds_per_chunk") or {}).get("median"),
            ),
            # size budgets are for what ships: a dist, not a venv
            ("max-size-mb", b.max_size_mb, round(size["bytes"] / 1e6, 1) if size and shipped else None),
            ("max-files", b.max_files, size["files"] if size and shipped else None),
        ]
        for key, limit, value in pairs:
            if limit is not None and value is not None:
                checks.append({"budget": key, "limit": limit, "measured": value, "ok": value <= limit})
    return {
        "profile": profile.name if profile else None,
        "checks": checks,
        "ok": all(c["ok"] for c in checks),
    }


def enforce(result: Mapping[str, Any]) -> None:
    """Raise after the report is out: over budget (11), or runs that hung (8)."""
    over = [c for c in result["budget"]["checks"] if not c["ok"]]
    if over:
        c = over[0]
        raise BudgetError(
            f"{result['runtime']['label']}: over budget: {c['budget']} is {c['limit']}, "
            f"measured {c['measured']}" + (f" (and {len(over) - 1} more)" if len(over) > 1 else "")
        )
    hung = [r for r in result["runs"] if r.get("hung")]
    if hung:
        raise CheckError(
            f"{result['runtime']['label']}: {len(hung)} of {len(result['runs'])} runs hung and were "
            f"killed: {hung[0]['hung']}"
        )
    failed = [r for r in result["runs"] if r.get("failed")]
    if failed:
        raise CheckError(
            f"{result['runtime']['label']}: {len(failed)} of {len(result['runs'])} runs failed: "
            f"{failed[0]['failed']}"
        )
