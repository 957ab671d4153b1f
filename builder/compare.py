"""Compare two runtimes (profiles, venvs or dists): the hand-written A/B report, measured.

Static sections (packages, install method, OpenMP files) come from the folders; dynamic ones
(OpenMP loaded, threads, imports, performance) from runs interleaved A B / B A in fresh
processes. Each time metric gets medians, spreads, the ratio B/A with a paired bootstrap
95% confidence interval and a verdict.
"""

from __future__ import annotations

import json
import random
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from .bench import (
    METRIC_ALIASES,
    METRICS,
    RunOptions,
    Runtime,
    common_options,
    describe_run,
    emit_json,
    measure_once,
    resolve_runtime,
    result_of,
    usable,
)
from .errors import InputError
from .fsutil import atomic_write_text
from .log import Log
from .paths import Project, find_project

TIME_METRICS = ("total_s", "separation_s", "startup_s", "import_s")
DEFAULT_MIN_EFFECT = 0.05
BOOTSTRAP = 4000
MIN_PAIRS = 3  # fewer rounds give no interval worth the name


# --- statistics (pure) ---------------------------------------------------------------


def paired_ratio(
    a: Sequence[float], b: Sequence[float], *, resamples: int = BOOTSTRAP, seed: int = 0
) -> dict[str, Any]:
    """Ratio median(B)/median(A) with a 95% percentile bootstrap CI over paired rounds.

    Pairs (a[i], b[i]) come from the same round, so they are resampled together: what
    disturbed both sides of a round (another process, a cache flush) stays paired.

    >>> r = paired_ratio([1.0, 1.1, 0.9, 1.0, 1.05], [2.0, 2.2, 1.8, 2.1, 2.0])
    >>> r["ratio"], r["ci_low"] > 1.5
    (2.0, True)
    """
    pairs = [(x, y) for x, y in zip(a, b) if x is not None and y is not None and x > 0]
    if len(pairs) < MIN_PAIRS:
        return {"n": len(pairs), "ratio": None, "ci_low": None, "ci_high": None}
    ratio = statistics.median(y for _, y in pairs) / statistics.median(x for x, _ in pairs)
    rng = random.Random(seed)
    boots = []
    n = len(pairs)
    for _ in range(resamples):
        sample = [pairs[rng.randrange(n)] for _ in range(n)]
        den = statistics.median(x for x, _ in sample)
        boots.append(statistics.median(y for _, y in sample) / den)
    boots.sort()
    lo, hi = boots[int(0.025 * resamples)], boots[min(resamples - 1, int(0.975 * resamples))]
    return {"n": n, "ratio": round(ratio, 4), "ci_low": round(lo, 4), "ci_high": round(hi, 4)}


def verdict(
    stat: Mapping[str, Any], *, min_effect: float = DEFAULT_MIN_EFFECT, what: str = "B"
) -> dict[str, Any]:
    """'slower' / 'faster' only when the CI excludes 1.0 and the effect is at least min_effect.

    >>> verdict({"n": 5, "ratio": 1.12, "ci_low": 1.08, "ci_high": 1.16})["text"]
    'B is 12% slower (95% CI 8–16%)'
    >>> verdict({"n": 5, "ratio": 1.01, "ci_low": 0.97, "ci_high": 1.05})["text"]
    'no difference detected (B/A 1.01, 95% CI 0.97–1.05)'
    """
    r, lo, hi = stat.get("ratio"), stat.get("ci_low"), stat.get("ci_high")
    if r is None:
        return {
            "call": "unknown",
            "text": f"not enough runs (n={stat.get('n', 0)}; need at least {MIN_PAIRS} rounds)",
        }
    pct = lambda v: f"{abs(v - 1) * 100:.0f}%"  # noqa: E731
    if lo > 1 and r - 1 >= min_effect:
        return {"call": "slower", "text": f"{what} is {pct(r)} slower (95% CI {pct(lo)[:-1]}–{pct(hi)})"}
    if hi < 1 and 1 - r >= min_effect:
        speedup = f", {1 / r:.1f}x" if r < 0.5 else ""
        return {
            "call": "faster",
            "text": f"{what} is {pct(r)} faster (95% CI {pct(hi)[:-1]}–{pct(lo)}{speedup})",
        }
    note = ""
    if lo > 1 or hi < 1:
        note = f"; below the {min_effect * 100:.0f}% minimum effect"
    return {"call": "same", "text": f"no difference detected (B/A {r:.2f}, 95% CI {lo:.2f}–{hi:.2f}{note})"}


# --- static facts about one side -------------------------------------------------------


def static_facts(rt: Runtime) -> dict[str, Any]:
    """Packages with sizes, install method and tools, OpenMP files: read from disk, nothing run."""
    from .inspect import inspect_path

    info = inspect_path(rt.path)
    facts: dict[str, Any] = {
        "python": info.get("python"),
        "platform": info.get("platform"),
        "total_bytes": info["total_bytes"],
        "files": info["files"],
        "packages": {
            p["name"].lower(): {"name": p["name"], "version": p["version"], "size": p["size"]}
            for p in info["packages"]
            if p.get("version")
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
        values = dict(
            (k.strip(), v.strip())
            for k, _, v in (ln.partition("=") for ln in cfg.read_text().splitlines())
            if v
        )
        creator = next((f"{k} {values[k]}" for k in ("uv", "virtualenv") if k in values), "python -m venv")
        out["venv_created_by"] = creator
        installers: dict[str, int] = {}
        from .manifest import site_packages_of

        for f in sorted(site_packages_of(rt.path).glob("*.dist-info/INSTALLER")):
            name = f.read_text(encoding="utf-8", errors="replace").strip() or "?"
            installers[name] = installers.get(name, 0) + 1
        out["installers"] = installers
        stamp = rt.path / ".builder-stamp.json"
        if stamp.is_file():
            s = json.loads(stamp.read_text())
            out["builder_stamp"] = {"lock_sha256": s.get("lock"), "uv": s.get("uv")}
    else:
        from .manifest import read_manifest

        try:
            m = read_manifest(rt.path)
        except OSError:
            return {"frozen": "no manifest.json"}
        out["tools"] = m.get("tools")
        out["sources"] = m.get("sources")
        out["lock"] = (m.get("lock") or {}).get("sha256")
        out["frozen_by"] = f"PyInstaller {(m.get('tools') or {}).get('pyinstaller')}"
    return out


def openmp_files(rt: Runtime) -> dict[str, Any]:
    from .openmp.audit import audit

    root = rt.path / "stems" if rt.kind == "dist" else rt.path
    try:
        rep = audit(root)
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
    same, changed, only_a, only_b = [], [], [], []
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
        else:
            only_b.append({"name": pb["name"], "b": pb["version"], "size_b": pb["size"]})  # type: ignore[index]
    by_size = lambda key: lambda r: -r.get(key, 0)  # noqa: E731
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


def run_interleaved(
    a: Runtime, b: Runtime, *, repeat: int, opts: RunOptions, log: Log, warmup: bool = True
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rounds A B, B A, A B ...: each round gives one pair; the order alternates against drift."""
    if warmup:
        log.line("    warm-up: one run of each (not counted)")
        measure_once(a, opts)
        measure_once(b, opts)
    runs_a: list[dict[str, Any]] = []
    runs_b: list[dict[str, Any]] = []
    for i in range(repeat):
        order = [(a, runs_a, "A"), (b, runs_b, "B")]
        if i % 2:
            order.reverse()
        for rt, sink, name in order:
            run = measure_once(rt, opts)
            run["index"], run["order"] = i, "".join(n for _, _, n in order)
            sink.append(run)
            log.line(f"    round {i + 1}/{repeat} {name} ({rt.label}): {describe_run(run)}")
    return runs_a, runs_b


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
            for ra, rb in zip(runs_a, runs_b)
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


def compare_runtimes(
    a: Runtime,
    b: Runtime,
    *,
    repeat: int = 5,
    opts: RunOptions | None = None,
    min_effect: float = DEFAULT_MIN_EFFECT,
    metric: str = "total",
    log: Log | None = None,
    warmup: bool = True,
) -> dict[str, Any]:
    opts = opts or RunOptions()
    log = log or Log()
    primary = METRIC_ALIASES.get(metric, metric)
    with log.step("read packages, install method and OpenMP files of both sides"):
        fa, fb = static_facts(a), static_facts(b)
    with log.step(f"measure: {repeat} interleaved rounds (A B / B A), fresh processes"):
        runs_a, runs_b = run_interleaved(a, b, repeat=repeat, opts=opts, log=log, warmup=warmup)
    ra, rb = result_of(a, runs_a, opts, None), result_of(b, runs_b, opts, None)
    perf = performance(runs_a, runs_b, min_effect=min_effect)
    head = perf.get(primary) or next(iter(perf.values()), None)
    return {
        "a": {"runtime": a.describe(), **{k: v for k, v in fa.items() if k != "packages"}},
        "b": {"runtime": b.describe(), **{k: v for k, v in fb.items() if k != "packages"}},
        "settings": {
            "repeat": repeat,
            "model": opts.model,
            "seconds": opts.seconds,
            "min_effect": min_effect,
            "primary_metric": primary,
            "order": "interleaved, alternating A B / B A",
            "ci": f"95% percentile bootstrap over paired rounds ({BOOTSTRAP} resamples, seed 0)",
        },
        "verdict": head["verdict"]["text"] if head else "no runs completed",
        "verdict_metric": primary if head else None,
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


def write_reports(result: Mapping[str, Any], out: Path) -> dict[str, Path]:
    from .report import html, markdown

    out.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": out / "report.md", "json": out / "report.json", "html": out / "report.html"}
    atomic_write_text(paths["markdown"], markdown.compare_report(result))
    atomic_write_text(paths["json"], json.dumps(result, indent=2, sort_keys=True, default=str) + "\n")
    atomic_write_text(paths["html"], html.compare_page(result))
    return paths


@click.command("compare")
@click.argument("a")
@click.argument("b")
@common_options
@click.option(
    "--metric",
    type=click.Choice(sorted(METRIC_ALIASES)),
    default="total",
    show_default=True,
    help="Metric of the headline verdict (all time metrics are reported).",
)
@click.option(
    "--min-effect",
    type=click.FloatRange(0, 1),
    default=DEFAULT_MIN_EFFECT,
    show_default=True,
    help="Smallest relative difference called a difference, even when the CI excludes 1.0.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write report.md, report.json and report.html here.",
)
@click.option(
    "--wheelhouse", type=click.Path(path_type=Path), help="Wheel folder, when A or B is a profile to install."
)
@click.option("--json", "as_json", is_flag=True, help="Print the JSON report on stdout (default: Markdown).")
@click.pass_obj
def compare(
    project: Project | None,
    a: str,
    b: str,
    repeat: int,
    seconds: float,
    model: str,
    timeout: float,
    stall: float,
    metric: str,
    min_effect: float,
    out: Path | None,
    wheelhouse: Path | None,
    as_json: bool,
) -> None:
    """Compare runtimes A and B (profiles, venvs or dists): packages, install, OpenMP, threads, imports, speed."""
    from .report import markdown

    project = project or find_project()
    log = Log()
    ra = resolve_runtime(a, project, label=None, log=log, wheelhouse=wheelhouse)
    rb = resolve_runtime(b, project, label=None, log=log, wheelhouse=wheelhouse)
    if ra.label == rb.label:
        ra, rb = (
            ra.__class__(**{**ra.__dict__, "label": f"A: {ra.label}"}),
            rb.__class__(**{**rb.__dict__, "label": f"B: {rb.label}"}),
        )
    opts = RunOptions(seconds=seconds, model=model, timeout=timeout, stall=stall)
    result = compare_runtimes(ra, rb, repeat=repeat, opts=opts, min_effect=min_effect, metric=metric, log=log)
    if out is not None:
        for kind, path in write_reports(result, out).items():
            log.line(f"    {kind}: {path}")
    if as_json:
        emit_json(result)
    else:
        click.echo(markdown.compare_report(result))
    log.line(
        f"verdict ({METRICS[result['verdict_metric']][0] if result['verdict_metric'] else '-'}): "
        f"{result['verdict']}"
    )
