"""The comparison judged (pure): package, import and threading differences, each time metric's
ratio B/A with its interval and verdict, the headline's caveat, and the Comparison itself."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from builder.measure.judge.attribution import attribution
from builder.measure.judge.bench import BenchResult
from builder.measure.judge.sequential import Outcome, Plan
from builder.measure.judge.stats import DEFAULT_MIN_EFFECT, paired_ratio, verdict
from builder.measure.take.metrics import METRICS, STARTUP, TIME_METRICS, usable
from builder.measure.take.runs import RunOptions
from builder.measure.take.subject import Subject

SCHEMA = "runtime-builder/compare/1"


def package_diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    same: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    only_a: list[dict[str, Any]] = []
    only_b: list[dict[str, Any]] = []
    for key in sorted(set(a) | set(b)):
        pa, pb = a.get(key), b.get(key)
        if pa and pb:
            row = {
                "name": pa["name"],
                "a": pa["version"],
                "b": pb["version"],
                "size_a": pa["size"],
                "size_b": pb["size"],
            }
            (same if pa["version"] == pb["version"] else changed).append(row)
        elif pa:
            only_a.append({"name": pa["name"], "a": pa["version"], "size_a": pa["size"]})
        elif pb:
            only_b.append({"name": pb["name"], "b": pb["version"], "size_b": pb["size"]})

    def by_size(key: str) -> Callable[[dict[str, Any]], int]:
        return lambda r: -int(r.get(key, 0))

    return {
        "same": sorted(same, key=by_size("size_a")),
        "different_version": changed,
        "only_in_a": sorted(only_a, key=by_size("size_a")),
        "only_in_b": sorted(only_b, key=by_size("size_b")),
    }


def import_diff(
    a: Mapping[str, Any] | None, b: Mapping[str, Any] | None, top: int = 15
) -> list[dict[str, Any]]:
    if not a or not b:
        return []
    pa, pb = a["by_package_ms"], b["by_package_ms"]
    rows = [
        {
            "package": p,
            "a_ms": pa.get(p, 0.0),
            "b_ms": pb.get(p, 0.0),
            "diff_ms": round(pb.get(p, 0.0) - pa.get(p, 0.0), 2),
        }
        for p in set(pa) | set(pb)
    ]
    return sorted(rows, key=lambda r: -abs(r["diff_ms"]))[:top]


def threading_rows(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[dict[str, Any]]:
    ta, tb = a.get("threads") or {}, b.get("threads") or {}
    rows = [
        ("intra-op threads (torch.get_num_threads)", ta.get("torch"), tb.get("torch")),
        ("threads right after import torch", ta.get("at_import"), tb.get("at_import")),
        ("inter-op threads", ta.get("interop"), tb.get("interop")),
        ("matmul precision", a.get("matmul_precision"), b.get("matmul_precision")),
        (
            "runtime settings from",
            (a.get("runtime") or {}).get("settings") or a.get("config_source"),
            (b.get("runtime") or {}).get("settings") or b.get("config_source"),
        ),
    ]
    ea, eb = a.get("env") or {}, b.get("env") or {}
    rows += [(f"env {k}", ea.get(k), eb.get(k)) for k in sorted(set(ea) | set(eb))]
    return [{"setting": s, "a": va, "b": vb, "same": va == vb} for s, va, vb in rows]


# --- the comparison ----------------------------------------------------------------------


def performance(
    runs_a: list[dict[str, Any]],
    runs_b: list[dict[str, Any]],
    *,
    min_effect: float = DEFAULT_MIN_EFFECT,
    metrics: Sequence[str] = TIME_METRICS,
) -> dict[str, Any]:
    out = {}
    for m in metrics:
        pairs = [
            (ra.get(m), rb.get(m))
            for ra, rb in zip(runs_a, runs_b, strict=False)
            if usable(ra) and usable(rb) and ra.get(m) is not None and rb.get(m) is not None
        ]
        if not pairs:
            continue
        stat = paired_ratio([p[0] for p in pairs], [p[1] for p in pairs])
        out[m] = {
            "label": METRICS[m][0],
            "a": [p[0] for p in pairs],
            "b": [p[1] for p in pairs],
            **stat,
            "verdict": verdict(stat, min_effect=min_effect),
        }
    return out


def startup_line(perf: Mapping[str, Any]) -> str | None:
    """Start-up (process start to ready) as its own line beside the headline."""
    p = perf.get(STARTUP)
    if not p:
        return None
    return (
        f"start-up (time to ready): A {statistics.median(p['a']):.2f} s, B {statistics.median(p['b']):.2f} s; "
        f"{p['verdict']['text']}"
    )


def starved(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """A side whose threads did not get the cores they asked for: in most of its usable runs two or
    more threads did the work (psutil, per thread) but kept fewer than 1.25 cores busy between them,
    which is contention or a CPU mask, not a model too small to split. None otherwise (pure)."""
    good = [r for r in runs if usable(r)]
    low = [
        r
        for r in good
        if r.get("single_threaded") and (r.get("busy_threads") or 0) >= 2 and r.get("cores_busy") is not None
    ]
    if not good or 2 * len(low) <= len(good):
        return None
    return {
        "runs": len(low),
        "of": len(good),
        "threads": (low[0].get("bench_threads") or {}).get("intra_op"),
        "cores_busy": round(statistics.median(float(r["cores_busy"]) for r in low), 2),
    }


def headline_caveat(
    runs_a: Sequence[Mapping[str, Any]],
    runs_b: Sequence[Mapping[str, Any]],
    *,
    load: Sequence[float] = (),
    cpus: int | None = None,
) -> str | None:
    """What the headline cannot be trusted for (pure): a side whose threads shared too few cores.

    On a busy machine a runtime asking for 2 threads on 2 CPUs gets about one core, its OpenMP
    threads wait on each other at every barrier, and a runtime forced to one thread comes out
    faster: the headline then measures the machine's contention, not the runtime.

    >>> runs = [{"single_threaded": True, "cores_busy": 0.5, "busy_threads": 2, "bench_threads": {"intra_op": 2}}] * 3
    >>> headline_caveat(runs, [{"cores_busy": 0.55}] * 3, load=(5.2, 6.8), cpus=2)[:70]
    "caveat: A's 2 threads kept 0.5 cores busy in 3 of 3 runs (load average"
    """
    parts = []
    for name, runs in (("A", runs_a), ("B", runs_b)):
        s = starved(runs)
        if s:
            parts.append(
                f"{name}'s {s['threads']} threads kept {s['cores_busy']:g} cores busy in {s['runs']} of {s['of']} runs"
            )
    if not parts:
        return None
    where = (
        f"load average up to {max(load):.1f} on {cpus} CPUs"
        if load and cpus
        else "a busy machine or a CPU mask"
    )
    return (
        "caveat: " + "; ".join(parts) + f" ({where}): the runtime did not get the cores its threads need, "
        "so this headline measures the machine's contention as much as the runtime; rerun on a quiet machine "
        "(`builder doctor` names a CPU mask or quota)"
    )


def headline_key(primary: str, warm: Sequence[Mapping[str, Any]], workload: bool) -> str:
    """The figure the rounds are judged on (pure): the metric asked for, or the nearest one the
    runtimes report (a [bench].command is one process: its wall time; a runtime built before
    chunk times were reported: its mean seconds per chunk)."""
    if workload and primary in ("chunk_s", "seconds_per_chunk", "separation_s"):
        return "total_s"
    good = [r for r in warm if usable(r)]
    if primary == "chunk_s" and good and any(r.get("chunk_s") is None for r in good):
        return "seconds_per_chunk"
    return primary


@dataclass(frozen=True, kw_only=True)
class Side:
    """One side's measured rounds and what its folder says."""

    subject: Subject
    facts: dict[str, Any]  # take/facts.static_facts
    bench: BenchResult  # its rounds, judged as bench judges them


@dataclass(frozen=True, kw_only=True)
class CompareSettings:
    repeat: int  # the rounds measured
    mode: str
    model: str
    seconds: float | None
    min_effect: float
    primary_metric: str
    order: str
    ci: str

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True, kw_only=True)
class Comparison:
    """What `builder compare` found; `to_json` is report.json and the --json document
    (builder/schemas/compare.schema.json), which the Markdown and HTML pages render. The rows of
    the package, threading and performance tables stay as the tables print them."""

    a: Side
    b: Side
    settings: CompareSettings
    verdict: str
    verdict_metric: str | None
    decision: Outcome
    startup: str | None
    caveat: str | None
    cpus: int | None
    load: tuple[float, ...]  # load average before and after the rounds
    packages: dict[str, list[dict[str, Any]]]
    threading: list[dict[str, Any]]
    import_differences: list[dict[str, Any]]
    performance: dict[str, dict[str, Any]]
    attribution: list[str]

    def to_json(self) -> dict[str, Any]:
        ra, rb = self.a.bench, self.b.bench
        return {
            "schema": SCHEMA, "a": side_json(self.a), "b": side_json(self.b), "settings": self.settings.to_json(),
            "verdict": self.verdict, "verdict_metric": self.verdict_metric, "decision": self.decision.to_json(),
            "startup": self.startup, "caveat": self.caveat,
            "machine": {"cpus": self.cpus, "load_average_before_after": list(self.load)},
            "packages": self.packages, "openmp_loaded": {"a": ra.openmp_loaded, "b": rb.openmp_loaded},
            "threading": self.threading,
            "imports": {"a": ra.imports, "b": rb.imports, "top_differences": self.import_differences},
            "summary": {"a": ra.summary, "b": rb.summary}, "performance": self.performance,
            "flags": {"a": ra.flags, "b": rb.flags}, "runs": {"a": ra.runs, "b": rb.runs},
            "attribution": self.attribution,
        }  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class Measured:
    """How the rounds went: the sequential outcome, the headline key, the options used."""

    outcome: Outcome
    plan: Plan
    key: str
    opts: RunOptions
    repeat: int | None
    time_s: float
    min_effect: float
    load: list[float]
    cpus: int | None


def side_json(side: Side) -> dict[str, Any]:
    return {"runtime": side.subject.describe(), **{k: v for k, v in side.facts.items() if k != "packages"}}


def headline(perf: dict[str, Any], m: Measured) -> tuple[str, str | None]:
    """The verdict line and its metric; the headline's interval is the plan's (wider under
    sequential looks), written over the ordinary one in `perf`."""
    head = m.outcome.decision
    if m.key in perf:
        perf[m.key] = {**perf[m.key], **{k: v for k, v in head.items() if k != "median_ratio"}}
    text = head["verdict"]["text"] + (f"; {m.outcome.settle}" if m.outcome.settle else "")
    decided = m.key in perf or head.get("ratio") is not None
    return (text if decided else "no runs completed"), (m.key if m.key in perf else None)


def settings_of(a: Subject, m: Measured) -> CompareSettings:
    return CompareSettings(
        repeat=m.outcome.rounds,
        mode=f"fixed: {m.repeat} rounds" if m.repeat else f"sequential: until decided, --time {m.time_s:g} s",
        # a workload ([bench].command) sets its own job and input length
        model=m.opts.model if a.workload is None else "the profile's [bench].command",
        seconds=m.opts.seconds if a.workload is None else a.workload.seconds,
        min_effect=m.min_effect, primary_metric=m.key, order="interleaved, alternating A B / B A", ci=m.plan.method,
    )  # fmt: skip


def comparison(sa: Side, sb: Side, m: Measured) -> Comparison:
    """Both sides and their rounds judged: the headline, the other metrics' intervals
    (descriptive beside it), the differences, and where they come from (pure)."""
    ra, rb = sa.bench, sb.bench
    perf = performance(ra.runs, rb.runs, min_effect=m.min_effect)
    text, metric = headline(perf, m)
    packages = package_diff(sa.facts["packages"], sb.facts["packages"])
    threading = threading_rows(ra.to_json(), rb.to_json())
    differences = import_diff(ra.imports, rb.imports)
    imports = {"a": ra.imports, "b": rb.imports, "top_differences": differences}
    parts = {"packages": packages, "threading": threading, "imports": imports,
             "openmp_loaded": {"a": ra.openmp_loaded, "b": rb.openmp_loaded},
             "summary": {"a": ra.summary, "b": rb.summary}}  # fmt: skip
    return Comparison(
        a=sa, b=sb, settings=settings_of(sa.subject, m), verdict=text, verdict_metric=metric,
        decision=m.outcome, startup=startup_line(perf) if m.key != STARTUP else None,
        caveat=headline_caveat(ra.runs, rb.runs, load=m.load, cpus=m.cpus), cpus=m.cpus, load=tuple(m.load),
        packages=packages, threading=threading, import_differences=differences,
        performance=perf, attribution=attribution(parts),
    )  # fmt: skip
