"""The compare report as Markdown: the sections people used to write by hand, rendered from the
comparison's document (Comparison.to_json, report.json), section by section."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from builder.measure.show.format import (
    cell,
    ci_header,
    ci_range,
    mapping,
    metric_label,
    openmp_list,
    sentence,
    size,
)
from builder.measure.take.metrics import RESOURCE_METRICS

Doc = Mapping[str, Any]


def table(header: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(cell(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return out


def headline(r: Doc) -> list[str]:
    a, b, s = r["a"]["runtime"], r["b"]["runtime"], r["settings"]
    wa, wb = a.get("workload"), b.get("workload")
    return [
        f"# Runtime comparison: A = {a['label']}, B = {b['label']}",
        "",
        f"**Verdict ({metric_label(r['verdict_metric'])}): {r['verdict']}**",
        "",
        *([f"*{sentence(r['caveat'])}*", ""] if r.get("caveat") else []),
        *([sentence(r["startup"]), ""] if r.get("startup") else []),
        f"A: `{a['path']}` ({a['kind']}); B: `{b['path']}` ({b['kind']}).  ",
        *([f"Workload A: `{wa['command']}`; B: `{wb['command']}`; input {wa['input']}.  "] if wa and wb else []),
        f"{s['repeat']} rounds ({s.get('mode', 'fixed')}), {s['order']}; model `{s['model']}`, "
        f"{s['seconds']:g} s of audio per run; CI: {s['ci']}; minimum effect {s['min_effect'] * 100:.0f}%.",
        "",
    ]  # fmt: skip


def where_from(r: Doc) -> list[str]:
    if not r.get("attribution"):
        return []
    return ["## Where the difference comes from", "", *[f"- {line}" for line in r["attribution"]], ""]


def performance(r: Doc) -> list[str]:
    sa, sb = r["summary"]["a"], r["summary"]["b"]
    rows = [
        [p["label"], f"{sa.get(m, {}).get('median')} (IQR {sa.get(m, {}).get('iqr')})",
         f"{sb.get(m, {}).get('median')} (IQR {sb.get(m, {}).get('iqr')})", p.get("ratio"), ci_range(p),
         p["verdict"]["text"]]
        for m, p in r["performance"].items()
    ]  # fmt: skip
    lines = ["## Performance", ""]
    lines += table(["metric (s)", "A median", "B median", "B/A", ci_header(r), "verdict"], rows)
    other = [m for m in RESOURCE_METRICS if m in sa or m in sb]
    if other:
        lines += ["", "Resources (medians):", ""]
        lines += table(
            ["metric", "A", "B"],
            [
                [metric_label(m, unit=True), sa.get(m, {}).get("median"), sb.get(m, {}).get("median")]
                for m in other
            ],
        )
    for side in ("a", "b"):
        lines += [f"\n- flag {side.upper()}: {flag}" for flag in r["flags"][side]]
    return lines


def packages(r: Doc) -> list[str]:
    a, b, pk = r["a"], r["b"], r["packages"]
    lines = [
        "", "## Packages", "",
        f"{len(pk['same'])} same, {len(pk['different_version'])} different version, "
        f"{len(pk['only_in_a'])} only in A, {len(pk['only_in_b'])} only in B. "
        f"Total: A {size(a['total_bytes'])} in {a['files']} files, B {size(b['total_bytes'])} in {b['files']} files.",
        "",
    ]  # fmt: skip
    rows = [[p["name"], "only in B", None, p["b"], size(p["size_b"])] for p in pk["only_in_b"]]
    rows += [[p["name"], "only in A", p["a"], None, size(p["size_a"])] for p in pk["only_in_a"]]
    rows += [[p["name"], "different version", p["a"], p["b"], f"{size(p['size_a'])} / {size(p['size_b'])}"]
             for p in pk["different_version"]]  # fmt: skip
    rows += [[p["name"], "same", p["a"], p["b"], size(p["size_a"])] for p in pk["same"][:10]]
    lines += table(["package", "status", "A", "B", "size"], rows)
    if len(pk["same"]) > 10:
        lines.append(f"\n({len(pk['same']) - 10} more identical packages in report.json)")
    return lines


def install(r: Doc) -> list[str]:
    a, b = r["a"], r["b"]
    keys = sorted(set(a["install"]) | set(b["install"]))
    rows = [[k, cell(mapping(a["install"].get(k))), cell(mapping(b["install"].get(k)))] for k in keys]
    rows += [["Python", a["python"], b["python"]], ["platform", a["platform"], b["platform"]]]
    return ["", "## Install method and tools", "", *table(["", "A", "B"], rows)]


def openmp(r: Doc) -> list[str]:
    rows = []
    for side in ("A", "B"):
        files = r[side.lower()]["openmp_files"].get("runtimes", [])
        rows.append([side, "on disk", openmp_list(files, links=True)])
        rows.append([side, "loaded", openmp_list(r["openmp_loaded"][side.lower()])])
    return ["", "## OpenMP", "", *table(["side", "", "runtimes"], rows)]


def threading(r: Doc) -> list[str]:
    rows = [[t["setting"], t["a"], t["b"], "same" if t["same"] else "**differs**"] for t in r["threading"]]
    return ["", "## Threading", "", *table(["setting", "A", "B", ""], rows)]


def imports(r: Doc) -> list[str]:
    imp = r["imports"]
    lines = ["", "## Import time", ""]
    if not (imp["a"] and imp["b"]):
        return [*lines, "Per-module import times need `-X importtime`, which frozen programs ignore; "
                "compare the venvs for this section."]  # fmt: skip
    lines.append(
        f"Total (median): A {imp['a']['total_s']:.3f} s, B {imp['b']['total_s']:.3f} s. "
        "Largest differences by top-level package (self time, ms):"
    )
    rows = [[d["package"], d["a_ms"], d["b_ms"], f"{d['diff_ms']:+.1f}"] for d in imp["top_differences"]]
    return [*lines, "", *table(["package", "A ms", "B ms", "B − A ms"], rows)]


SECTIONS = (headline, where_from, performance, packages, install, openmp, threading, imports)


def compare_report(r: Doc) -> str:
    return "\n".join(line for section in SECTIONS for line in section(r)) + "\n"
