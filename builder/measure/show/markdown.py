"""The compare report as Markdown: the sections people used to write by hand."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from builder.dist.inspect import human_size
from builder.measure.bench import METRICS
from builder.measure.judge.stats import MIN_PAIRS


def _v(value: Any) -> str:
    return "—" if value is None or value == "" else str(value)


def table(header: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_v(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return out


def ci_header(r: Mapping[str, Any]) -> str:
    """'95% CI' only when some metric has one: too few rounds print no 95% anywhere."""
    if any(p.get("ci_low") is not None for p in r["performance"].values()):
        return "95% CI"
    return f"CI (needs {MIN_PAIRS} rounds)"


def compare_report(r: Mapping[str, Any]) -> str:
    a, b = r["a"], r["b"]
    s = r["settings"]
    lines = [
        f"# Runtime comparison: A = {a['runtime']['label']}, B = {b['runtime']['label']}",
        "",
        f"**Verdict ({METRICS[r['verdict_metric']][0] if r['verdict_metric'] else '-'}): {r['verdict']}**",
        "",
        *([f"*{r['caveat'][0].upper() + r['caveat'][1:]}*", ""] if r.get("caveat") else []),
        *([r["startup"][0].upper() + r["startup"][1:], ""] if r.get("startup") else []),
        f"A: `{a['runtime']['path']}` ({a['runtime']['kind']}); B: `{b['runtime']['path']}` ({b['runtime']['kind']}).  ",
        *(
            [
                f"Workload A: `{w['command']}`; B: `{r['b']['runtime']['workload']['command']}`; input {w['input']}.  "
            ]
            if (w := a["runtime"].get("workload")) and r["b"]["runtime"].get("workload")
            else []
        ),
        f"{s['repeat']} rounds ({s.get('mode', 'fixed')}), {s['order']}; model `{s['model']}`, {s['seconds']:g} s of audio per run; "
        f"CI: {s['ci']}; minimum effect {s['min_effect'] * 100:.0f}%.",
        "",
        *(
            ["## Where the difference comes from", "", *[f"- {line}" for line in r["attribution"]], ""]
            if r.get("attribution")
            else []
        ),
        "## Performance",
        "",
    ]
    rows = []
    for m, p in r["performance"].items():
        sa, sb = r["summary"]["a"].get(m, {}), r["summary"]["b"].get(m, {})
        ci = f"{p['ci_low']:.3f}–{p['ci_high']:.3f}" if p.get("ci_low") is not None else None
        rows.append(
            [
                p["label"],
                f"{sa.get('median')} (IQR {sa.get('iqr')})",
                f"{sb.get('median')} (IQR {sb.get('iqr')})",
                p.get("ratio"),
                ci,
                p["verdict"]["text"],
            ]
        )
    lines += table(["metric (s)", "A median", "B median", "B/A", ci_header(r), "verdict"], rows)
    other = [
        m
        for m in ("rtf", "cores_busy", "peak_rss_mb", "os_threads")
        if m in r["summary"]["a"] or m in r["summary"]["b"]
    ]
    if other:
        lines += ["", "Resources (medians):", ""]
        lines += table(
            ["metric", "A", "B"],
            [
                [
                    f"{METRICS[m][0]} ({METRICS[m][1]})" if METRICS[m][1] else METRICS[m][0],
                    r["summary"]["a"].get(m, {}).get("median"),
                    r["summary"]["b"].get(m, {}).get("median"),
                ]
                for m in other
            ],
        )
    for side in ("a", "b"):
        for flag in r["flags"][side]:
            lines.append(f"\n- flag {side.upper()}: {flag}")

    pk = r["packages"]
    lines += [
        "",
        "## Packages",
        "",
        f"{len(pk['same'])} same, {len(pk['different_version'])} different version, "
        f"{len(pk['only_in_a'])} only in A, {len(pk['only_in_b'])} only in B. "
        f"Total: A {human_size(a['total_bytes'])} in {a['files']} files, "
        f"B {human_size(b['total_bytes'])} in {b['files']} files.",
        "",
    ]
    rows = [[p["name"], "only in B", None, p["b"], human_size(p["size_b"])] for p in pk["only_in_b"]]
    rows += [[p["name"], "only in A", p["a"], None, human_size(p["size_a"])] for p in pk["only_in_a"]]
    rows += [
        [
            p["name"],
            "different version",
            p["a"],
            p["b"],
            f"{human_size(p['size_a'])} / {human_size(p['size_b'])}",
        ]
        for p in pk["different_version"]
    ]
    rows += [[p["name"], "same", p["a"], p["b"], human_size(p["size_a"])] for p in pk["same"][:10]]
    lines += table(["package", "status", "A", "B", "size"], rows)
    if len(pk["same"]) > 10:
        lines.append(f"\n({len(pk['same']) - 10} more identical packages in report.json)")

    lines += ["", "## Install method and tools", ""]
    keys = sorted(set(a["install"]) | set(b["install"]))
    lines += table(
        ["", "A", "B"],
        [[k, _fmt(a["install"].get(k)), _fmt(b["install"].get(k))] for k in keys]
        + [["Python", a["python"], b["python"]], ["platform", a["platform"], b["platform"]]],
    )

    lines += ["", "## OpenMP", ""]
    rows = []
    for side, facts in (("A", a), ("B", b)):
        files = facts["openmp_files"].get("runtimes", [])
        rows.append(
            [side, "on disk", "; ".join(f"{f['family']} {f['path']}" + _links(f) for f in files) or "none"]
        )
        loaded = r["openmp_loaded"][side.lower()]
        rows.append([side, "loaded", "; ".join(f"{o['family']} {o['path']}" for o in loaded) or "none"])
    lines += table(["side", "", "runtimes"], rows)

    lines += ["", "## Threading", ""]
    lines += table(
        ["setting", "A", "B", ""],
        [[t["setting"], t["a"], t["b"], "same" if t["same"] else "**differs**"] for t in r["threading"]],
    )

    imp = r["imports"]
    lines += ["", "## Import time", ""]
    if imp["a"] and imp["b"]:
        lines.append(
            f"Total (median): A {imp['a']['total_s']:.3f} s, B {imp['b']['total_s']:.3f} s. "
            "Largest differences by top-level package (self time, ms):"
        )
        lines.append("")
        lines += table(
            ["package", "A ms", "B ms", "B − A ms"],
            [[d["package"], d["a_ms"], d["b_ms"], f"{d['diff_ms']:+.1f}"] for d in imp["top_differences"]],
        )
    else:
        lines.append(
            "Per-module import times need `-X importtime`, which frozen programs ignore; "
            "compare the venvs for this section."
        )
    return "\n".join(lines) + "\n"


def _fmt(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items()) or "—"
    return _v(value)


def _links(f: Mapping[str, Any]) -> str:
    others = [n for n in f.get("links", []) if n != f["path"]]
    return f" (+{len(others)} symlink{'s' if len(others) > 1 else ''}: {', '.join(others)})" if others else ""
