"""Compare two runtimes (profiles, venvs or dists): the hand-written A/B report, measured.

Static sections (packages, install method, OpenMP files) come from the folders; dynamic ones
(OpenMP loaded, threads, imports, performance) from runs interleaved A B / B A in fresh
processes. Each time metric gets medians, spreads, the ratio B/A with a 95% t-interval on
the per-round log ratios and a verdict. The headline metric decides how long to measure: rounds
are added until its verdict is decided or the time budget is spent (measure/sequential.py).
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import psutil

from builder.errors import InputError
from builder.fsutil import atomic_write_text, require_writable_dir, safe_output
from builder.log import Log
from builder.measure.attribution import attribution
from builder.measure.bench import (
    METRIC_ALIASES,
    METRICS,
    RunOptions,
    one_round,
    result_of,
    usable,
    warm_up,
)
from builder.measure.runtime import Runtime
from builder.measure.sequential import DEFAULT_TIME_S, SEQUENTIAL, Outcome, Plan, fixed_plan, run_rounds
from builder.measure.stats import DEFAULT_MIN_EFFECT, paired_ratio, verdict
from builder.venvs import site_packages_of

# The headline is the job itself (the separation, per chunk); start-up is its own line, since it
# dominates a short run's process wall time and hid a 47% slower separation behind "no difference".
TIME_METRICS = ("chunk_s", "seconds_per_chunk", "separation_s", "startup_s", "import_s", "total_s")
STARTUP = "startup_s"


# --- static facts about one side -------------------------------------------------------


def static_facts(rt: Runtime) -> dict[str, Any]:
    """Packages with sizes, install method and tools, OpenMP files: read from disk, nothing run."""
    from builder.dist.inspect import inspect_path

    info = inspect_path(rt.path)
    facts: dict[str, Any] = {
        "python": info.python,
        "platform": info.platform,
        "total_bytes": info.total_bytes,
        "files": info.files,
        "packages": {
            p.name.lower(): {"name": p.name, "version": p.version, "size": p.size}
            for p in info.packages
            if p.version
        },
        "install": install_method(rt),
        "openmp_files": openmp_files(rt),
    }
    return facts


def install_method(rt: Runtime) -> dict[str, Any]:
    """Who installed what: pyvenv.cfg's creator, each package's INSTALLER, builder's stamp or manifest."""
    out: dict[str, Any] = {}
    if rt.kind == "venv":
        cfg = rt.path / "pyvenv.cfg"
        values = {
            k.strip(): v.strip()
            for k, _, v in (ln.partition("=") for ln in cfg.read_text().splitlines())
            if v
        }
        creator = next((f"{k} {values[k]}" for k in ("uv", "virtualenv") if k in values), "python -m venv")
        out["venv_created_by"] = creator
        installers: dict[str, int] = {}

        for f in sorted(site_packages_of(rt.path).glob("*.dist-info/INSTALLER")):
            name = f.read_text(encoding="utf-8", errors="replace").strip() or "?"
            installers[name] = installers.get(name, 0) + 1
        out["installers"] = installers
        stamp = rt.path / ".builder-stamp.json"
        if stamp.is_file():
            s = json.loads(stamp.read_text())
            out["builder_stamp"] = {"lock_sha256": s.get("lock"), "uv": s.get("uv")}
    else:
        from builder.dist.manifest import MANIFEST, read_manifest

        if not (rt.path / MANIFEST).is_file():  # a team's own freeze; a damaged manifest is an error
            return {"frozen": "no manifest.json"}
        m = read_manifest(rt.path)
        out["tools"] = m.get("tools")
        out["sources"] = m.get("sources")
        out["lock"] = (m.get("lock") or {}).get("sha256")
        out["frozen_by"] = f"PyInstaller {(m.get('tools') or {}).get('pyinstaller')}"
    return out


def program_folder(rt: Runtime) -> Path:
    """Where a runtime's files are: a venv, or a frozen program's onedir folder, the one its
    executable sits in (a dist's `<[program].name>/`, as its manifest names it; a frozen folder
    without a manifest is that folder itself)."""
    return rt.path if rt.kind == "venv" else Path(rt.argv[0]).parent


def openmp_files(rt: Runtime) -> dict[str, Any]:
    from builder.openmp.audit import audit

    try:
        rep = audit(program_folder(rt))
    except InputError as exc:
        return {"error": exc.one_line(), "runtimes": []}
    return {
        "runtimes": [
            {"path": r.path, "family": r.family_name, "size": r.size, "links": list(r.names)}
            for r in rep.runtimes
        ],
        "primary": rep.primary,
    }


# --- diffs (pure) ------------------------------------------------------------------------


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


def measure_rounds(
    a: Runtime,
    b: Runtime,
    *,
    plan: Plan,
    budget_s: float,
    opts: RunOptions,
    primary: str,
    min_effect: float,
    log: Log,
    warmup: bool = True,
) -> tuple[Outcome, list[dict[str, Any]], list[dict[str, Any]], str, RunOptions]:
    """Warm-up (which sizes the workload), then rounds until the plan's verdict is decided or the
    budget is spent: (outcome, A's runs, B's runs, the headline key, the options used)."""
    started = time.monotonic()
    warm: list[dict[str, Any]] = []
    if warmup or opts.seconds is None:
        opts, warm = warm_up((a, b), opts, log)
    key = headline_key(primary, warm, a.workload is not None)
    runs_a: list[dict[str, Any]] = []
    runs_b: list[dict[str, Any]] = []
    of = f"/{plan.looks[0]}" if len(plan.looks) == 1 else ""

    def measure_round(i: int) -> tuple[tuple[float | None, float | None], float]:
        t0 = time.monotonic()
        ra, rb = one_round(a, b, i, opts=opts, log=log, of=of)
        runs_a.append(ra)
        runs_b.append(rb)
        return (figure(ra, key), figure(rb, key)), time.monotonic() - t0

    outcome = run_rounds(
        measure_round, plan, budget_s=budget_s, spent_s=time.monotonic() - started, min_effect=min_effect
    )
    return outcome, runs_a, runs_b, key, opts


def figure(run: Mapping[str, Any], key: str) -> float | None:
    value = run.get(key) if usable(run) else None
    return float(value) if value is not None else None


def compare_runtimes(
    a: Runtime,
    b: Runtime,
    *,
    repeat: int | None = None,
    time_s: float = DEFAULT_TIME_S,
    opts: RunOptions | None = None,
    min_effect: float = DEFAULT_MIN_EFFECT,
    metric: str = "chunk",
    log: Log | None = None,
    warmup: bool = True,
) -> dict[str, Any]:
    """Static facts of both sides, then interleaved rounds: until decided within `time_s`, or
    exactly `repeat` rounds. The headline is decided by the plan's interval; the other metrics get
    the ordinary 95% interval, descriptive beside it."""
    opts = opts or RunOptions()
    log = log or Log()
    plan = fixed_plan(repeat) if repeat else SEQUENTIAL
    with log.step("read packages, install method and OpenMP files of both sides"):
        fa, fb = static_facts(a), static_facts(b)
    how = (
        f"{repeat} interleaved rounds" if repeat else f"interleaved rounds until decided, up to {time_s:g} s"
    )
    with log.step(f"measure: {how} (A B / B A), fresh processes"):
        load = [round(psutil.getloadavg()[0], 2)]
        outcome, runs_a, runs_b, key, opts = measure_rounds(
            a, b, plan=plan, budget_s=time_s, opts=opts, primary=METRIC_ALIASES.get(metric, metric),
            min_effect=min_effect, log=log, warmup=warmup,
        )  # fmt: skip
        load.append(round(psutil.getloadavg()[0], 2))
    ra, rb = result_of(a, runs_a, opts, None), result_of(b, runs_b, opts, None)
    perf = performance(runs_a, runs_b, min_effect=min_effect)
    head = outcome.decision
    if key in perf:  # the headline's interval is the plan's (wider under sequential looks)
        perf[key] = {**perf[key], **{k: v for k, v in head.items() if k != "median_ratio"}}
    text = head["verdict"]["text"] + (f"; {outcome.settle}" if outcome.settle else "")
    result: dict[str, Any] = {
        "a": {"runtime": a.describe(), **{k: v for k, v in fa.items() if k != "packages"}},
        "b": {"runtime": b.describe(), **{k: v for k, v in fb.items() if k != "packages"}},
        "settings": {
            "repeat": outcome.rounds,
            "mode": f"fixed: {repeat} rounds"
            if repeat
            else f"sequential: until decided, --time {time_s:g} s",
            # a workload ([bench].command) sets its own job and input length
            "model": opts.model if a.workload is None else "the profile's [bench].command",
            "seconds": opts.seconds if a.workload is None else a.workload.seconds,
            "min_effect": min_effect,
            "primary_metric": key,
            "order": "interleaved, alternating A B / B A",
            "ci": plan.method,
        },
        "verdict": text if key in perf or head.get("ratio") is not None else "no runs completed",
        "verdict_metric": key if key in perf else None,
        "decision": outcome.to_json(),
        "startup": startup_line(perf) if key != STARTUP else None,
        "caveat": headline_caveat(runs_a, runs_b, load=load, cpus=os.cpu_count()),
        "machine": {"cpus": os.cpu_count(), "load_average_before_after": load},
        "packages": package_diff(fa["packages"], fb["packages"]),
        "openmp_loaded": {"a": ra["openmp_loaded"], "b": rb["openmp_loaded"]},
        "threading": threading_rows(ra, rb),
        "imports": {
            "a": ra["imports"],
            "b": rb["imports"],
            "top_differences": import_diff(ra["imports"], rb["imports"]),
        },
        "summary": {"a": ra["summary"], "b": rb["summary"]},
        "performance": perf,
        "flags": {"a": ra["flags"], "b": rb["flags"]},
        "runs": {"a": runs_a, "b": runs_b},
    }
    result["attribution"] = attribution(result)  # where the differences come from, in sentences
    return result


def report_paths(out: Path) -> dict[str, Path]:
    return {"markdown": out / "report.md", "json": out / "report.json", "html": out / "report.html"}


def check_report_folder(out: Path) -> None:
    """Refuse, before any run, a --out whose report files could not be written (fsutil.safe_output)."""
    require_writable_dir(out, "--out")
    for path in report_paths(out).values():
        safe_output(path, "--out")


def write_reports(result: Mapping[str, Any], out: Path) -> dict[str, Path]:
    from builder.measure.report import html, markdown

    out.mkdir(parents=True, exist_ok=True)
    paths = report_paths(out)
    atomic_write_text(paths["markdown"], markdown.compare_report(result), what="--out")
    atomic_write_text(
        paths["json"], json.dumps(result, indent=2, sort_keys=True, default=str) + "\n", what="--out"
    )
    atomic_write_text(paths["html"], html.compare_page(result), what="--out")
    return paths
