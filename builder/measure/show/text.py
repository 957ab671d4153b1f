"""The terminal reports of bench, bisect and tune, rendered from their documents (to_json)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from builder.measure.show.format import metric_label, openmp_list
from builder.measure.take.metrics import METRICS

Doc = Mapping[str, Any]


def _bench_head(r: Doc) -> str:
    rt, s = r["runtime"], r["settings"]
    return (
        f"{rt['label']} ({rt['kind']}{', profile ' + rt['profile'] if rt['profile'] else ''}): "
        f"{s['repeat']} runs, model {s['model']}, {s['seconds']:g} s of audio"
    )


def _bench_threads(r: Doc) -> list[str]:
    t = r.get("threads") or {}
    if not t:
        return []
    return [
        f"  threads: {t.get('torch')} intra-op (at import {t.get('at_import')}), {t.get('interop')} "
        f"inter-op; matmul precision {r.get('matmul_precision')}; config {r.get('config_source')}"
    ]


def _bench_imports(r: Doc) -> list[str]:
    imp = r.get("imports")
    if not imp:
        return []
    return [f"  slowest imports (self time, median of runs; total {imp['total_s']:.2f} s):"] + [
        f"    {m['self_ms']:>8.1f} ms  {m['module']}" for m in imp["slowest_modules"]
    ]


def bench(r: Doc) -> str:
    """The human-readable bench report."""
    lines = [_bench_head(r)]
    for key, st in r["summary"].items():
        label, unit = METRICS[key]
        lines.append(
            f"  {label:<36} median {st['median']:>9.3f} {unit:<5} "
            f"(min {st['min']:.3f}, max {st['max']:.3f}, IQR {st['iqr']:.3f}, n={st['n']})"
        )
    lines += _bench_threads(r)
    lines.append("  OpenMP loaded: " + openmp_list(r.get("openmp_loaded") or [], sep=", "))
    lines += _bench_imports(r)
    lines += [
        f"  budget {c['budget']}: {c['measured']} <= {c['limit']}: {'ok' if c['ok'] else 'OVER BUDGET'}"
        for c in r["budget"]["checks"]
    ]
    lines += [f"  FLAG {f}" for f in r["flags"]]
    return "\n".join(lines)


def bisect(r: Doc) -> str:
    mode = r.get("mode") or f"{r['repeat']} rounds per test"
    extras = ", ".join(e["name"] + " " + e["version"] for e in r["extras"]) or "none"
    lines = [
        f"bisect {r['a']['label']} -> {r['b']['label']} on {metric_label(r['metric'])} "
        f"(threshold {r['threshold'] * 100:.0f}%, {mode})",
        f"B's extra packages: {extras}",
    ]
    lines += [f"  test {s['test']}: {s['label']}: {s['verdict']}" for s in r["steps"]]
    lines.append(r["conclusion"])
    return "\n".join(lines)


def _settings(s: Mapping[str, Any]) -> str:
    return f"threads {s['threads']}, interop {s['interop_threads']}, {s['matmul_precision']}"


def tune(r: Doc) -> str:
    lines = [f"tune {r['runtime']['label']} ({r['machine']['cpus']} CPUs)"]
    for name, rows in r["stages"].items():
        lines.append(f"  {name}: " + ", ".join(f"{row[name]} -> {row['median_s']} s" for row in rows))
    lines.append(f"  current: {_settings(r['current'])}")
    lines.append(f"  best:    {_settings(r['best'])}")
    lines.append(
        f"  gain: {r['gain']['verdict']}" + ("" if r["gain"].get("decided", True) else " (undecided)")
    )
    lines.append(
        f"  {'wrote' if r['written'] else 'would write'} {r['config_file']}"
        + (f" ({r['note']})" if r.get("note") else "")
    )
    return "\n".join(lines)
