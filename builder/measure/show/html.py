"""The compare report as one self-contained HTML page: inline SVG plots, inline CSS, no scripts;
rendered from the comparison's document (Comparison.to_json, report.json), section by section."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from builder.measure.show.format import ci_header, ci_range, mapping, metric_label, openmp_list, size
from builder.measure.take.metrics import RESOURCE_METRICS

COLOR_A, COLOR_B = "#2563eb", "#ea580c"
CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#111;padding:0 1rem}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
.verdict{font-size:1.2rem;padding:.8rem 1rem;border-radius:6px;margin:1rem 0}
.slower{background:#fee2e2;border-left:6px solid #dc2626}.faster{background:#dcfce7;border-left:6px solid #16a34a}
.same,.unknown{background:#f1f5f9;border-left:6px solid #64748b}.inconclusive{background:#fef9c3;border-left:6px solid #ca8a04}
table{border-collapse:collapse;margin:.5rem 0;font-size:13px}td,th{border:1px solid #e5e7eb;padding:3px 8px;text-align:left}
th{background:#f8fafc}td.num{text-align:right;font-variant-numeric:tabular-nums}.differs{color:#b91c1c;font-weight:600}
.a{color:#2563eb;font-weight:600}.b{color:#ea580c;font-weight:600}.plots{display:flex;flex-wrap:wrap;gap:1rem}
.muted{color:#64748b}.flag{color:#b91c1c}
"""


def _e(v: Any) -> str:
    return "—" if v is None or v == "" else escape(str(v))


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], cls: str = "") -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(c if isinstance(c, _Raw) else f"<td>{_e(c)}</td>" for c in row) + "</tr>"
        for row in rows
    )
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


class _Raw(str):
    """A pre-rendered <td>."""


def _nice_max(v: float) -> float:
    for step in (0.1, 0.2, 0.25, 0.5, 1, 2, 2.5, 5, 10, 20, 25, 50, 100, 200, 500, 1000, 2000, 5000, 10000):
        if v <= step * 5:
            return step * 5
    return v


def strip_plot(title: str, a: Sequence[float], b: Sequence[float], unit: str = "s") -> str:
    """Run-time distributions: every run as a dot, the median as a bar, A above B, shared axis from 0."""
    w, h, left, right = 480, 130, 40, 20
    top = max([*a, *b, 1e-9])
    vmax = _nice_max(top * 1.05)

    def x(v: float) -> float:
        return left + (w - left - right) * v / vmax

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>',
        f'<text x="{left}" y="14" font-size="12" font-weight="600">{escape(title)}</text>',
    ]
    for i in range(6):
        v = vmax * i / 5
        parts.append(f'<line x1="{x(v):.1f}" y1="24" x2="{x(v):.1f}" y2="{h - 22}" stroke="#e5e7eb"/>')
        parts.append(
            f'<text x="{x(v):.1f}" y="{h - 8}" font-size="10" text-anchor="middle" fill="#64748b">'
            f"{v:g}{unit if i == 5 else ''}</text>"
        )
    for row, (name, vals, color) in enumerate((("A", a, COLOR_A), ("B", b, COLOR_B))):
        y = 45 + row * 38
        parts.append(
            f'<text x="{left - 8}" y="{y + 4}" font-size="12" text-anchor="end" fill="{color}" '
            f'font-weight="600">{name}</text>'
        )
        for j, v in enumerate(vals):
            jitter = ((j * 7) % 5 - 2) * 2.5
            parts.append(
                f'<circle class="run-{name.lower()}" cx="{x(v):.1f}" cy="{y + jitter:.1f}" r="4" '
                f'fill="{color}" fill-opacity="0.55"><title>{name} run {j + 1}: {v:g} {unit}</title></circle>'
            )
        if vals:
            med = (
                sorted(vals)[len(vals) // 2]
                if len(vals) % 2
                else sum(sorted(vals)[len(vals) // 2 - 1 : len(vals) // 2 + 1]) / 2
            )
            parts.append(
                f'<line class="median" x1="{x(med):.1f}" y1="{y - 12}" x2="{x(med):.1f}" y2="{y + 12}" '
                f'stroke="{color}" stroke-width="3"><title>median {med:g} {unit}</title></line>'
            )
    parts.append("</svg>")
    return "".join(parts)


def import_bars(
    rows: Sequence[Mapping[str, Any]], title: str = "Import time by package (self time, ms)"
) -> str:
    """Grouped horizontal bars, A and B per package."""
    rows = sorted(rows, key=lambda r: -max(r["a_ms"], r["b_ms"]))[:15]
    bar, gap, left, w = 9, 8, 150, 700
    h = 30 + len(rows) * (2 * bar + gap) + 20
    vmax = _nice_max(max([max(r["a_ms"], r["b_ms"]) for r in rows] + [1.0]) * 1.05)

    def x(v: float) -> float:
        return (w - left - 60) * v / vmax

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>',
        f'<text x="0" y="14" font-size="12" font-weight="600">{escape(title)}</text>',
    ]
    for i, r in enumerate(rows):
        y = 30 + i * (2 * bar + gap)
        parts.append(
            f'<text x="{left - 6}" y="{y + bar + 3}" font-size="11" text-anchor="end">{escape(r["package"])}</text>'
        )
        for k, (key, color) in enumerate((("a_ms", COLOR_A), ("b_ms", COLOR_B))):
            v = r[key]
            parts.append(
                f'<rect class="bar-{key[0]}" x="{left}" y="{y + k * bar}" width="{max(x(v), 0.5):.1f}" '
                f'height="{bar - 1}" fill="{color}"><title>{escape(r["package"])} {key[0].upper()}: '
                f"{v:g} ms</title></rect>"
            )
            parts.append(
                f'<text x="{left + x(v) + 4:.1f}" y="{y + k * bar + bar - 2}" font-size="9" '
                f'fill="#475569">{v:g}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


Doc = Mapping[str, Any]


def headline(r: Doc) -> list[str]:
    a, b, s = r["a"]["runtime"], r["b"]["runtime"], r["settings"]
    head = r["performance"].get(r["verdict_metric"] or "", {})
    call = head.get("verdict", {}).get("call", "unknown")
    metric = escape(metric_label(r["verdict_metric"])) if r["verdict_metric"] else ""
    return [
        '<!doctype html><html lang="en"><head><meta charset="utf-8">',
        f"<title>Runtime comparison: {escape(a['label'])} vs {escape(b['label'])}</title>",
        f"<style>{CSS}</style></head><body>",
        f'<h1>Runtime comparison</h1><p><span class="a">A</span> = {escape(a["label"])} '
        f'<span class="muted">({escape(a["path"])}, {a["kind"]})</span><br>'
        f'<span class="b">B</span> = {escape(b["label"])} '
        f'<span class="muted">({escape(b["path"])}, {b["kind"]})</span></p>',
        f'<div class="verdict {call}" id="verdict"><b>{metric}:</b> {escape(r["verdict"])}</div>',
        f'<p id="caveat"><b>{escape(r["caveat"])}</b></p>' if r.get("caveat") else "",
        f'<p id="startup">{escape(r["startup"])}</p>' if r.get("startup") else "",
        f'<p class="muted">{s["repeat"]} rounds, {escape(s["order"])}; model <code>{escape(s["model"])}</code>, '
        f"{s['seconds']:g} s of audio per run; {escape(s['ci'])}; minimum effect {s['min_effect'] * 100:.0f}%.</p>",
    ]


def performance(r: Doc) -> list[str]:
    sa, sb = r["summary"]["a"], r["summary"]["b"]
    out = ['<h2 id="performance">Performance</h2><div class="plots">']
    out += [strip_plot(p["label"], p["a"], p["b"]) for p in r["performance"].values()]
    out.append("</div>")
    rows = [
        [p["label"], sa.get(m, {}).get("median"), sa.get(m, {}).get("iqr"), sb.get(m, {}).get("median"),
         sb.get(m, {}).get("iqr"), p.get("ratio"), ci_range(p), p["verdict"]["text"]]
        for m, p in r["performance"].items()
    ]  # fmt: skip
    header = ["metric (s)", "A median", "A IQR", "B median", "B IQR", "B/A", ci_header(r), "verdict"]
    out.append(table(header, rows, "perf"))
    res = [m for m in RESOURCE_METRICS if m in sa]
    rows = [[metric_label(m), sa.get(m, {}).get("median"), sb.get(m, {}).get("median")] for m in res]
    out.append(table(["resource (median)", "A", "B"], rows))
    for side in ("a", "b"):
        out += [f'<p class="flag">flag {side.upper()}: {escape(flag)}</p>' for flag in r["flags"][side]]
    return out


def imports(r: Doc) -> list[str]:
    imp = r["imports"]
    out = ['<h2 id="imports">Import time</h2>']
    if not (imp["a"] and imp["b"]):
        return [
            *out,
            "<p>Per-module import times need <code>-X importtime</code>, which frozen programs ignore.</p>",
        ]
    pa, pb = imp["a"]["by_package_ms"], imp["b"]["by_package_ms"]
    bars = [{"package": p, "a_ms": pa.get(p, 0.0), "b_ms": pb.get(p, 0.0)} for p in set(pa) | set(pb)]
    rows = [[d["package"], d["a_ms"], d["b_ms"], f"{d['diff_ms']:+.1f}"] for d in imp["top_differences"]]
    return [
        *out,
        f'<p>Total (median): <span class="a">A {imp["a"]["total_s"]:.3f} s</span>, '
        f'<span class="b">B {imp["b"]["total_s"]:.3f} s</span>.</p>',
        import_bars(bars),
        table(["package", "A ms", "B ms", "B − A ms"], rows),
    ]


def _differs(text: str) -> _Raw:
    return _Raw(f'<td class="differs">{text}</td>')


def packages(r: Doc) -> list[str]:
    a, b, pk = r["a"], r["b"], r["packages"]
    rows = [[p["name"], _differs("only in B"), None, p["b"], size(p["size_b"])] for p in pk["only_in_b"]]
    rows += [[p["name"], _differs("only in A"), p["a"], None, size(p["size_a"])] for p in pk["only_in_a"]]
    rows += [[p["name"], _differs("different version"), p["a"], p["b"], f"{size(p['size_a'])} / {size(p['size_b'])}"]
             for p in pk["different_version"]]  # fmt: skip
    rows += [[p["name"], "same", p["a"], p["b"], size(p["size_a"])] for p in pk["same"]]
    return [
        f'<h2 id="packages">Packages</h2><p>{len(pk["same"])} same, {len(pk["different_version"])} different '
        f"version, {len(pk['only_in_a'])} only in A, {len(pk['only_in_b'])} only in B. A "
        f"{size(a['total_bytes'])} in {a['files']} files; B {size(b['total_bytes'])} in {b['files']} files.</p>",
        table(["package", "status", "A", "B", "size"], rows, "packages"),
    ]


def install(r: Doc) -> list[str]:
    a, b = r["a"], r["b"]
    keys = sorted(set(a["install"]) | set(b["install"]))
    rows = [[k, mapping(a["install"].get(k)), mapping(b["install"].get(k))] for k in keys]
    rows += [["Python", a["python"], b["python"]], ["platform", a["platform"], b["platform"]]]
    return ['<h2 id="install">Install method and tools</h2>', table(["", "A", "B"], rows)]


def openmp(r: Doc) -> list[str]:
    rows = []
    for side in ("A", "B"):
        rows.append(
            [side, "on disk", openmp_list(r[side.lower()]["openmp_files"].get("runtimes", []), links=True)]
        )
        rows.append([side, "loaded", openmp_list(r["openmp_loaded"][side.lower()])])
    return ['<h2 id="openmp">OpenMP</h2>', table(["side", "", "runtimes"], rows)]


def threading(r: Doc) -> list[str]:
    rows = [
        [t["setting"], t["a"], t["b"], "same" if t["same"] else _differs("differs")] for t in r["threading"]
    ]
    return ['<h2 id="threading">Threading</h2>', table(["setting", "A", "B", ""], rows)]


SECTIONS = (headline, performance, imports, packages, install, openmp, threading)


def compare_page(r: Doc) -> str:
    out = [line for section in SECTIONS for line in section(r)]
    out.append('<p class="muted">Generated by <code>builder compare</code>.</p></body></html>\n')
    return "\n".join(out)
