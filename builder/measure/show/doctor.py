"""`builder doctor`'s report: plain text and one self-contained HTML page."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from runtime_doctor.rules import BUSY_AFTER


def cost_line(cost: Mapping[str, Any] | None) -> str:
    """A cause's cost, as the text and the page both say it."""
    cost = cost or {}
    if cost.get("measured"):
        return (f"{cost['before']} -> {cost['after']} {cost['unit']} with {cost['with_fix']} "
                f"({cost['ratio']}x; {cost['runs']})")  # fmt: skip
    return f"not measured ({cost.get('why')})"


def _causes(r: Mapping[str, Any]) -> list[str]:
    lines = []
    for i, c in enumerate(r["causes"], 1):
        lines.append(f"  {i}. [{c['id']}] {c['title']}")
        lines += [f"       evidence: {e}" for e in c["evidence"]]
        lines.append(f"       cost: {cost_line(c['cost'])}")
        lines.append(f"       fix: {c['fix']}")
    return lines + [f"  note: {n}" for n in r["notes"]]


def _thread_settings(f: Mapping[str, Any]) -> str:
    calls = f.get("settings_calls")
    if calls is None:
        return "not observed (the program wrote no probe)"
    at_import = (f.get("env_at_import") or {}).get("OMP_NUM_THREADS", "unset")
    done = ", ".join(f"{c['call']}({c['value']}) at {c['at_s']} s" for c in calls) or "no calls"
    return f"OMP_NUM_THREADS={at_import} at torch's import; after it {done}"


def render(r: Mapping[str, Any]) -> str:
    f = r["figures"]
    lines = [f"doctor: {r['runtime']['label']} ({r['runtime']['kind']}): {r['verdict']}", *_causes(r)]
    busy = [t for t in f["thread_rows"] if (t.get("cores_after_job") or 0) >= BUSY_AFTER]
    omp = "; ".join(
        f"{o['path']}" + (f" ({o['threads']} threads)" if o.get("threads") else "") for o in f["openmp"]
    )
    lines += [
        "  figures:",
        f"    job: {f['job_seconds']} {f['job_unit']} ({f['wall_s']} s wall); cores busy {f.get('cores_busy')}"
        + (f" ({f['cores_busy_source']})" if f.get("cores_busy_source") else ""),
        f"    CPUs: {f['usable_cpus']} usable (host {f['host_cpus']}, mask {f['cpu_mask']}, "
        f"cgroup quota {f['cgroup_quota_cores'] if f['cgroup_quota_cores'] is not None else 'none'})",
        f"    threads: intra-op {f['threads']} (at torch import {f['threads_at_import']}, requested "
        f"{f['threads_requested']}), inter-op {f['interop']}; OS threads seen {len(f['thread_rows'])}, "
        f"pinned {sum(1 for t in f['thread_rows'] if t['pinned'])}",
        "    thread settings: " + _thread_settings(f),
        f"    OpenMP loaded: {omp or 'none seen'}",
        f"    threads busy after the job: {len(busy)}"
        + ("" if f["probe"] else " (not observed: the program wrote no probe)"),
        "    environment given: "
        + (
            ", ".join(f"{k}={v}" for k, v in sorted(f["env_parent"].items()))
            or "no thread or affinity variables"
        ),
    ]
    return "\n".join(lines)


def render_html(r: Mapping[str, Any]) -> str:
    """One self-contained page: the verdict, each cause, the figures."""
    body = [f"<h1>builder doctor: {escape(r['runtime']['label'])}</h1>",
            f'<p id="verdict"><b>{escape(r["verdict"])}</b></p>']  # fmt: skip
    for c in r["causes"]:
        body.append(f'<section class="cause" id="{escape(c["id"])}"><h2>{escape(c["title"])}</h2><ul>')
        body += [f"<li>{escape(e)}</li>" for e in c["evidence"]]
        body.append(
            f"<li>cost: {escape(cost_line(c['cost']))}</li></ul><p>fix: {escape(c['fix'])}</p></section>"
        )
    body += [f"<p class=note>note: {escape(n)}</p>" for n in r["notes"]]
    body.append("<h2>Figures</h2><pre>" + escape(render(r).split("  figures:\n", 1)[-1]) + "</pre>")
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>builder doctor</title>'
        "<style>body{font:15px system-ui;margin:2rem;max-width:60rem}.cause{border-left:4px solid #c33;"
        "padding-left:1rem}</style></head><body>" + "".join(body) + "</body></html>\n"
    )
