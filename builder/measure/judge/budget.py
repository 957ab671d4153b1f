"""A profile's [bench] budget checked against what was measured (pure): the one budget check,
used by bench (medians and size) and by the build's frozen folder (size, before the smoke bench)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from builder.profile import BenchBudget, Profile


@dataclass(frozen=True, kw_only=True)
class BudgetCheck:
    budget: str  # the profile's key, e.g. max-size-mb
    limit: float
    measured: float

    @property
    def ok(self) -> bool:
        return self.measured <= self.limit

    def to_json(self) -> dict[str, Any]:
        return {"budget": self.budget, "limit": self.limit, "measured": self.measured, "ok": self.ok}


@dataclass(frozen=True, kw_only=True)
class Budget:
    profile: str | None
    checks: tuple[BudgetCheck, ...] = ()

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def over(self) -> tuple[BudgetCheck, ...]:
        return tuple(c for c in self.checks if not c.ok)

    def to_json(self) -> dict[str, Any]:
        return {"profile": self.profile, "checks": [c.to_json() for c in self.checks], "ok": self.ok}


def _checks(pairs: list[tuple[str, float | None, float | None]]) -> list[BudgetCheck]:
    return [
        BudgetCheck(budget=key, limit=limit, measured=value)
        for key, limit, value in pairs
        if limit is not None and value is not None
    ]


def size_checks(bench: BenchBudget, size_bytes: int | None, files: int | None) -> list[BudgetCheck]:
    """max-size-mb (decimal MB, 10**6 bytes, to 0.1 MB) and max-files against a folder's totals.

    >>> [c.to_json() for c in size_checks(BenchBudget(max_size_mb=500, max_files=10), 612_340_000, 9)]
    [{'budget': 'max-size-mb', 'limit': 500, 'measured': 612.3, 'ok': False}, {'budget': 'max-files', 'limit': 10, 'measured': 9, 'ok': True}]
    """
    size_mb = round(size_bytes / 1e6, 1) if size_bytes is not None else None
    return _checks([("max-size-mb", bench.max_size_mb, size_mb), ("max-files", bench.max_files, files)])


def check_budget(
    summary: Mapping[str, Any],
    size: Mapping[str, Any] | None,
    profile: Profile | None,
    *,
    shipped: bool = True,
) -> Budget:
    """Each budget the profile sets, with the measured median (or size) and whether it is met.
    Size budgets are for what ships: a dist, not a venv."""
    if profile is None:
        return Budget(profile=None)
    b = profile.bench
    checks = _checks([
        ("max-startup-seconds", b.max_startup_seconds, (summary.get("startup_s") or {}).get("median")),
        ("max-seconds-per-chunk", b.max_seconds_per_chunk, (summary.get("seconds_per_chunk") or {}).get("median")),
    ])  # fmt: skip
    if size and shipped:
        checks += size_checks(b, size["bytes"], size["files"])
    return Budget(profile=profile.name, checks=tuple(checks))
