"""A bench's runs judged (pure): the summary of each metric, the flags (hung, failed,
single-threaded, several OpenMP runtimes), the budget, and whether the command fails."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from builder.errors import BudgetError, CheckError
from builder.measure.judge.budget import Budget, check_budget
from builder.measure.judge.stats import spread
from builder.measure.take.importtime import TOP_MODULES
from builder.measure.take.metrics import METRICS, usable
from builder.measure.take.runs import SINGLE_THREAD_CORES, Run, RunOptions
from builder.measure.take.subject import Subject
from builder.profile import Profile

SCHEMA = "runtime-builder/bench/1"


@dataclass(frozen=True, kw_only=True)
class BenchSettings:
    repeat: int  # the runs measured
    model: str
    seconds: float | None
    timeout: float
    stall: float

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True, kw_only=True)
class BenchResult:
    """What `builder bench` (and the build's smoke bench) found; `to_json` is the published
    document (builder/schemas/bench.schema.json). Runs and the runtime's own reports (threads,
    env, versions, imports) stay as the runtime printed them: their keys are the contract's."""

    runtime: dict[str, Any]  # Subject.describe()
    settings: BenchSettings
    summary: dict[str, dict[str, Any]]  # metric -> spread
    imports: dict[str, Any] | None
    threads: dict[str, Any] | None
    matmul_precision: str | None
    env: dict[str, Any] | None
    openmp_loaded: list[dict[str, Any]]
    versions: dict[str, Any] | None
    config_source: str | None
    size: dict[str, Any] | None
    flags: list[str]
    budget: Budget
    runs: list[Run]

    @property
    def label(self) -> str:
        return str(self.runtime["label"])

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "runtime": self.runtime,
            "settings": self.settings.to_json(),
            "summary": self.summary,
            "imports": self.imports,
            "threads": self.threads,
            "matmul_precision": self.matmul_precision,
            "env": self.env,
            "openmp_loaded": self.openmp_loaded,
            "versions": self.versions,
            "config_source": self.config_source,
            "size": self.size,
            "flags": self.flags,
            "budget": self.budget.to_json(),
            "runs": self.runs,
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


def summarise(runs: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    good = [r for r in runs if usable(r)]
    return {
        m: spread([r[m] for r in good if r.get(m) is not None])
        for m in METRICS
        if any(r.get(m) is not None for r in good)
    }


def single_thread_diagnosis(
    run: Mapping[str, Any], pools: Sequence[Mapping[str, Any]] | None, asked: int | None
) -> str:
    """Why a run kept one core busy, from what builder saw (pure): how many threads did the work
    (psutil, per thread) and how many threads each native pool runs (threadpoolctl, in selftest)."""
    bits = []
    if run.get("busy_threads") is not None:
        n = run["busy_threads"]
        bits.append(f"{n} thread{'s' if n != 1 else ''} did the work (cores busy {run.get('cores_busy')})")
    for pool in pools or []:
        n = pool.get("num_threads")
        if asked and n is not None and n < asked:
            bits.append(
                f"{pool.get('user_api')} pool {pool.get('prefix')} runs {n} thread{'s' if n != 1 else ''}"
            )
    if run.get("busy_threads") and run["busy_threads"] >= 2 and not bits[1:]:
        bits.append("the threads share one core (CPU affinity, or a busy machine)")
    return f": {'; '.join(bits)}" if bits else ""


def flags_of(runs: Sequence[Run], first: Run, model: str) -> list[str]:
    """What the report flags (pure): runs that hung or failed, single-threaded runs, and more
    than one OpenMP runtime in one process."""
    flags: list[str] = []
    hung = [r for r in runs if r.get("hung")]
    failed = [r for r in runs if r.get("failed")]
    if hung:
        flags.append(f"hung: {len(hung)} of {len(runs)} runs killed ({hung[0]['hung']})")
    if failed:
        flags.append(f"failed: {len(failed)} of {len(runs)} runs printed no JSON ({failed[0]['failed']})")
    single = [r for r in runs if r.get("single_threaded")]
    if single:
        t = first.get("bench_threads") or {}
        flags.append(
            f"single-threaded: {len(single)} of {len(runs)} runs kept < {SINGLE_THREAD_CORES} cores busy "
            f"with {t.get('intra_op')} threads asked for"
            + single_thread_diagnosis(single[0], first.get("threadpools"), t.get("intra_op"))
            + (" (a model this small may not use more: try --model bs_roformer_4stem)" if model.startswith("tiny") else "")
        )  # fmt: skip
    loaded = first.get("openmp_loaded") or []
    if len(loaded) > 1:
        flags.append(f"openmp: {len(loaded)} OpenMP runtimes loaded in one process")
    return flags


def bench_result(
    rt: Subject, runs: list[Run], opts: RunOptions, profile: Profile | None, size: dict[str, Any] | None
) -> BenchResult:
    """The runs of one subject judged: summary, flags and the profile's budget (pure)."""
    summary = summarise(runs)
    first = next((r for r in runs if usable(r)), {})
    return BenchResult(
        runtime=rt.describe(),
        settings=BenchSettings(
            repeat=len(runs), model=opts.model, seconds=opts.seconds, timeout=opts.timeout, stall=opts.stall
        ),
        summary=summary,
        imports=median_imports(runs),
        threads=first.get("threads"),
        matmul_precision=first.get("matmul_precision"),
        env=first.get("env"),
        openmp_loaded=first.get("openmp_loaded") or [],
        versions=first.get("versions"),
        config_source=first.get("config_source"),
        size=size,
        flags=flags_of(runs, first, opts.model),
        budget=check_budget(summary, size, profile, shipped=rt.kind == "dist"),
        runs=runs,
    )


def enforce(result: BenchResult) -> None:
    """Raise after the report is out: over budget (11), or runs that hung or failed (8)."""
    over = result.budget.over
    if over:
        c = over[0]
        raise BudgetError(
            f"{result.label}: over budget: {c.budget} is {c.limit:g}, measured {c.measured:g}"
            + (f" (and {len(over) - 1} more)" if len(over) > 1 else "")
        )
    for key, what in (("hung", "hung and were killed"), ("failed", "failed")):
        bad = [r for r in result.runs if r.get(key)]
        if bad:
            raise CheckError(f"{result.label}: {len(bad)} of {len(result.runs)} runs {what}: {bad[0][key]}")
