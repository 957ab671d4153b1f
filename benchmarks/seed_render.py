"""The seed report: the by-hand environment comparison this project grew from, from measurements.

`reference/environment-comparison-by-hand.md` (outside this repository) compared an OLD (fast) and a NEW
(slow) runtime section by section (versions, extra packages, OpenMP, threading, imports) and
ended with hypotheses. `benchmarks/seed_report.py` (`make seed-report`) measures the same two
settings as Linux profiles with `builder compare` and `builder doctor`; this module turns their
JSON into that document, ending with measured answers (pure: it reads, measures nothing).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from builder.measure.show.format import ci_header
from builder.measure.show.format import size as human_size
from builder.measure.show.markdown import table
from builder.measure.take.metrics import METRICS

# The by-hand document's tables, in its order.
CORE = ("torch", "numpy", "librosa", "soundfile", "scipy")
EXTRAS = (
    "onnx",
    "onnxruntime",
    "julius",
    "diffq",
    "resampy",
    "pydub",
    "samplerate",
    "huggingface_hub",
    "pytorch_lightning",
)
# Packages whose import at start-up the hypotheses suspect.
SUSPECTS = ("onnx", "onnxruntime", "julius", "resampy", "pydub", "samplerate", "huggingface_hub")


_A, _B = re.compile(r"\bA\b"), re.compile(r"\bB\b")


def named(text: str) -> str:
    """compare's A and B as OLD and NEW (pure).

    >>> named("start-up (time to ready): A 2.00 s, B 2.12 s; B is 6% slower (B/A 1.06); A's 2 threads")
    "start-up (time to ready): OLD 2.00 s, NEW 2.12 s; NEW is 6% slower (NEW/OLD 1.06); OLD's 2 threads"
    """
    for old, new in ((": A ", ": OLD "), (", B ", ", NEW "), ("B is", "NEW is"), ("B/A", "NEW/OLD"),
                     ("A's", "OLD's"), ("B's", "NEW's")):  # fmt: skip
        text = text.replace(old, new)
    return text


def _key(name: str) -> str:
    return name.lower().replace("_", "-")


def _versions(r: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """Every package's version on each side, by normalised name, from compare's package diff."""
    a: dict[str, str] = {}
    b: dict[str, str] = {}
    pk = r["packages"]
    for row in [*pk["same"], *pk["different_version"]]:
        a[_key(row["name"])], b[_key(row["name"])] = row["a"], row["b"]
    for row in pk["only_in_a"]:
        a[_key(row["name"])] = row["a"]
    for row in pk["only_in_b"]:
        b[_key(row["name"])] = row["b"]
    return a, b


def _median(r: Mapping[str, Any], side: str, metric: str) -> float | None:
    v = (r["summary"][side].get(metric) or {}).get("median")
    return float(v) if v is not None else None


def _perf(r: Mapping[str, Any], metric: str) -> Mapping[str, Any] | None:
    p: Mapping[str, Any] | None = r["performance"].get(metric)
    return p


def _ratio_text(p: Mapping[str, Any] | None) -> str:
    if not p:
        return "not measured"
    return named(p["verdict"]["text"])


def _causes(d: Mapping[str, Any] | None) -> list[str]:
    if d is None:
        return ["- not run"]
    out = [f"**{d['verdict']}**", ""]
    for c in d["causes"]:
        cost = c.get("cost") or {}
        measured = (
            f"measured cost: {cost['before']} → {cost['after']} {cost['unit']} with {cost['with_fix']} "
            f"({cost['ratio']}x; {cost['runs']})"
            if cost.get("measured")
            else f"cost not measured ({cost.get('why')})"
        )
        out.append(f"- **{c['id']}**: {c['title']}")
        out += [f"  - evidence: {e}" for e in c["evidence"]]
        out += [f"  - {measured}", f"  - fix: {c['fix']}"]
    out += [f"- note: {n}" for n in d.get("notes") or []]
    f = d["figures"]
    out += [
        "",
        f"Figures: job {f['job_seconds']} {f['job_unit']} ({f['wall_s']} s wall), cores busy "
        f"{f.get('cores_busy')}; {f['usable_cpus']} usable CPUs (host {f['host_cpus']}, cgroup quota "
        f"{f['cgroup_quota_cores'] if f.get('cgroup_quota_cores') is not None else 'none'}); intra-op "
        f"{f['threads']} (at torch's import {f['threads_at_import']}), inter-op {f['interop']}; "
        f"load average {f.get('load_average')}.",
    ]
    return out


def _doctor_ids(d: Mapping[str, Any] | None) -> list[str]:
    return [c["id"] for c in (d or {}).get("causes") or []]


def _interop_cost(d: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    for c in (d or {}).get("causes") or []:
        if c["id"] == "interop-threads" and (c.get("cost") or {}).get("measured"):
            cost: Mapping[str, Any] = c["cost"]
            return cost
    return None


def _answer_slower(r: Mapping[str, Any]) -> str:
    head = _perf(r, r["verdict_metric"]) if r.get("verdict_metric") else None
    text = "**Is NEW slower at all?** " + f"The separation (seconds per chunk): {_ratio_text(head)}."
    if r.get("caveat"):
        text += f" ({named(r['caveat'])}.)"
    if r.get("startup"):
        text += f" {named(r['startup'][0].upper() + r['startup'][1:])}."
    return text


def _imported_suspects(r: Mapping[str, Any]) -> tuple[list[str], dict[str, Any]]:
    by_b = (r["imports"]["b"] or {}).get("by_package_ms") or {}
    return [p for p in SUSPECTS if by_b.get(p) or by_b.get(p.replace("-", "_"))], by_b


def _answer_imports(r: Mapping[str, Any]) -> str:
    start, imp = _perf(r, "startup_s"), _perf(r, "import_s")
    ia, ib = r["imports"]["a"] or {}, r["imports"]["b"] or {}
    imported, by_b = _imported_suspects(r)
    text = (
        "**1. More packages = more imports = slower start-up.** "
        f"Import time: {_ratio_text(imp)}; time to ready: {_ratio_text(start)}. "
        + (f"Medians: imports OLD {ia.get('total_s', 0):.2f} s, NEW {ib.get('total_s', 0):.2f} s. " if ia and ib else "")
        + (
            "Of the suspected packages, NEW's program imports "
            + ", ".join(f"{p} ({by_b.get(p) or by_b.get(p.replace('-', '_'))} ms)" for p in imported)
            + "."
            if imported
            else "NEW's program imports none of the suspected extra packages (onnx, onnxruntime, julius, "
            "resampy, pydub, samplerate, huggingface_hub) at start: installed is not imported, so they "
            "cannot slow its start-up or load their libraries into it."
        )
    )  # fmt: skip
    ra, rb = _median(r, "a", "peak_rss_mb"), _median(r, "b", "peak_rss_mb")
    if ra is not None and rb is not None:
        text += f" Peak memory of the separation process: OLD {ra:.0f} MB, NEW {rb:.0f} MB (medians)."
    return text


def _answer_conflicts(r: Mapping[str, Any], doctor_new: Mapping[str, Any] | None) -> str:
    loaded = r["openmp_loaded"]
    files_a = sorted(o["path"].rsplit("/", 1)[-1] for o in loaded["a"] or [])
    files_b = sorted(o["path"].rsplit("/", 1)[-1] for o in loaded["b"] or [])
    disk_b = [f["path"].rsplit("/", 1)[-1] for f in r["b"]["openmp_files"].get("runtimes", [])]
    spin_new = "spinning-threads" in _doctor_ids(doctor_new)
    two_new = "two-openmp-runtimes" in _doctor_ids(doctor_new)
    imported, _ = _imported_suspects(r)
    return (
        "**2. Package conflicts; onnxruntime might conflict with PyTorch's threading.** "
        f"OpenMP runtimes loaded: OLD {', '.join(files_a) or 'none'}; NEW {', '.join(files_b) or 'none'}"
        + (" (the same)" if files_a == files_b else " (they differ)")
        + ". "
        + (
            f"On disk NEW has {len(disk_b)} ({', '.join(disk_b)}): a venv is not fixed by the OpenMP stage "
            "(`builder build` links the others to torch's copy), but only what the program imports loads. "
            if len(disk_b) > len(files_b)
            else ""
        )
        + "`builder doctor` on NEW "
        + ("names two OpenMP runtimes in one process" if two_new else "finds one OpenMP runtime")
        + " and "
        + ("names threads still spinning after the job" if spin_new else "no thread of another library still busy after the job")
        + ". "
        + (
            "onnxruntime is installed in NEW but the program never imports it, so it cannot touch torch's "
            "threads here; a program that does create an onnxruntime session gets it named by the doctor "
            "when its pool spins (`spinning-threads`)."
            if "onnxruntime" not in imported
            else "onnxruntime is imported by NEW's program: see the doctor's causes above."
        )
    )  # fmt: skip


ANSWER_INSTALLER = (
    "**3. Installation method (uv vs pip).** Not answered by this report: both sides were installed "
    "by builder with uv from hash-pinned locks (see *Install method*), so the installer does not "
    "differ here. Installed from the same wheels (same versions, same hashes), the installer "
    "cannot change the code that runs; `make bench-install` measures uv against pip for install "
    "time only."
)
ANSWER_NOT_HERE = (
    "**What cannot be answered on Linux.** The by-hand pair ran on an Intel Mac: torch 2.2.2 with "
    "Intel's libiomp5 beside scikit-learn's libomp (here both sides load GNU libgomp from torch), "
    "KMP_AFFINITY and KMP_BLOCKTIME (libgomp ignores them), diffq, torchvision and onnx2torch "
    "(no Linux wheels that fit: excluded in the profiles), and their 44–48 s target on their own "
    "recording. Those need the mac-intel profiles run on an Intel Mac (`builder compare "
    "minimal-mac-intel extended-mac-intel` there)."
)


def _interop_answer(doctor_new: Mapping[str, Any] | None) -> str:
    icost = _interop_cost(doctor_new)
    if not icost:
        if "interop-threads" in _doctor_ids(doctor_new):
            return "The doctor names NEW's inter-op threads as a cause (cost not measured). "
        return "The doctor does not name NEW's inter-op threads on this machine. "
    return (
        f"The doctor names NEW's inter-op threads ({_doctor_ids(doctor_new).count('interop-threads')} "
        f"cause) and measured {icost['before']} → {icost['after']} {icost['unit']} with {icost['with_fix']} "
        f"({icost['runs']}): "
        + (
            "the fix made the job faster. "
            if (icost.get("ratio") or 0) > 1
            else "the fix did not make the job faster in that single run, so on this machine the named "
            "cause is a setting outside the rule, not a measured slowdown. "
        )
    )


def _answer_threading(r: Mapping[str, Any], doctor_new: Mapping[str, Any] | None) -> str:
    threading = {t["setting"]: t for t in r["threading"]}
    interop = threading.get("inter-op threads") or {}
    precision = threading.get("matmul precision") or {}
    return (
        '**The threading section\'s "IDENTICAL".** It is not: inter-op threads '
        f"OLD {interop.get('a')}, NEW {interop.get('b')}; matmul precision OLD {precision.get('a')}, "
        f"NEW {precision.get('b')}. "
        + _interop_answer(doctor_new)
        + "The headline difference is the sum of the inter-op threads, the precision and the packages; "
        "this report does not split the precision's share from the packages' (a compare of NEW against "
        'NEW with `runtime.matmul-precision = "high"` would).'
    )


def answers(
    r: Mapping[str, Any], doctor_old: Mapping[str, Any] | None, doctor_new: Mapping[str, Any] | None
) -> list[str]:
    """The by-hand hypotheses, each answered from the measured figures or said to be unanswerable here."""
    return [
        _answer_slower(r),
        _answer_imports(r),
        _answer_conflicts(r, doctor_new),
        ANSWER_INSTALLER,
        _answer_threading(r, doctor_new),
        ANSWER_NOT_HERE,
    ]


def _header(r: Mapping[str, Any], meta: Mapping[str, Any]) -> list[str]:
    s, a, b = r["settings"], r["a"], r["b"]
    lines = [
        "# Environment comparison, measured: OLD (minimal, inter-op 4, precision high) vs NEW "
        "(extended, inter-op far above the cores, precision highest)",
        "",
        f"- Date: {meta['date']}; machine: {meta['machine']}.",
        f"- Command: `{meta['command']}` ({meta.get('duration', '?')}).",
        f"- Load: {meta['load']}.",
        f"- OLD = `{a['runtime']['profile'] or a['runtime']['label']}`, NEW = "
        f"`{b['runtime']['profile'] or b['runtime']['label']}` ({meta.get('profiles', '')}); both installed "
        f"as venvs by builder. {meta.get('venv_note', '')}".rstrip(),
        f"- Workload: `stems bench`, model `{s['model']}`, {s['seconds']:g} s of generated audio per run; "
        f"{s['repeat']} rounds, {s['order']}, after one warm-up run of each; CI: {s['ci']}.",
        *([f"- {line}" for line in meta.get("notes") or []]),
        "",
        "This is the document `reference/environment-comparison-by-hand.md` wrote by hand, with each "
        "section measured. Its hypotheses are answered at the end.",
        "",
    ]
    return lines


def _performance(r: Mapping[str, Any]) -> list[str]:
    lines = [
        "## Performance results",
        "",
        f"**Headline ({METRICS[r['verdict_metric']][0] if r.get('verdict_metric') else '-'}): NEW vs OLD: "
        f"{named(r['verdict'])}**",
        "",
    ]
    if r.get("caveat"):
        lines += [f"*{named(r['caveat'][0].upper() + r['caveat'][1:])}*", ""]
    if r.get("startup"):
        lines += [named(r["startup"][0].upper() + r["startup"][1:]), ""]
    rows = []
    for m, p in r["performance"].items():
        sa, sb = r["summary"]["a"].get(m, {}), r["summary"]["b"].get(m, {})
        ci = f"{p['ci_low']:.3f}–{p['ci_high']:.3f}" if p.get("ci_low") is not None else None
        rows.append([
            p["label"], f"{sa.get('median')} (IQR {sa.get('iqr')})", f"{sb.get('median')} (IQR {sb.get('iqr')})",
            p.get("ratio"), ci, named(p["verdict"]["text"]),
        ])  # fmt: skip
    lines += table(["metric (s)", "OLD median", "NEW median", "NEW/OLD", ci_header(r), "verdict"], rows)
    res = [m for m in ("rtf", "cores_busy", "peak_rss_mb", "os_threads") if m in r["summary"]["a"]]
    if res:
        lines += ["", "Resources (medians):", ""]
        lines += table(
            ["metric", "OLD", "NEW"], [[METRICS[m][0], _median(r, "a", m), _median(r, "b", m)] for m in res]
        )
    for side, name in (("a", "OLD"), ("b", "NEW")):
        lines += [f"\n- flag {name}: {f}" for f in r["flags"][side]]
    return lines


def _packages(r: Mapping[str, Any], meta: Mapping[str, Any]) -> list[str]:
    a, b = r["a"], r["b"]
    va, vb = _versions(r)
    lines = ["", "## Package versions", "", "### Core packages", ""]
    core = [["Python", a.get("python"), b.get("python")]] + [[p, va.get(p), vb.get(p)] for p in CORE]
    lines += table(
        ["package", "OLD", "NEW", "status"],
        [[n, x, y, "same" if x == y else "**differs**"] for n, x, y in core],
    )
    lines += ["", "### Extra packages in NEW", ""]
    lines += table(
        ["package", "OLD", "NEW"],
        [
            [p, va.get(_key(p)) or "not installed", vb.get(_key(p)) or f"not installed{_excluded(meta, p)}"]
            for p in EXTRAS
        ],
    )
    only_b = r["packages"]["only_in_b"]
    size = sum(int(p.get("size_b") or 0) for p in only_b)
    lines += [
        "",
        f"NEW carries {len(only_b)} packages OLD does not ({human_size(size)}), OLD "
        f"{len(r['packages']['only_in_a'])} that NEW does not; {len(r['packages']['same'])} are the same "
        f"version, {len(r['packages']['different_version'])} differ. Total: OLD {human_size(a['total_bytes'])} "
        f"in {a['files']} files, NEW {human_size(b['total_bytes'])} in {b['files']} files. Largest only in NEW: "
        + ", ".join(f"{p['name']} {p['b']} ({human_size(p['size_b'])})" for p in only_b[:12])
        + ".",
    ]
    keys = sorted(set(a["install"]) | set(b["install"]))
    lines += ["", "## Install method", ""]
    lines += table(
        ["", "OLD", "NEW"], [[k, _fmt(a["install"].get(k)), _fmt(b["install"].get(k))] for k in keys]
    )
    return lines


def _openmp(
    r: Mapping[str, Any], doctor_old: Mapping[str, Any] | None, doctor_new: Mapping[str, Any] | None
) -> list[str]:
    rows = []
    for side, name, d in (("a", "OLD", doctor_old), ("b", "NEW", doctor_new)):
        files = r[side]["openmp_files"].get("runtimes", [])
        rows.append(
            [name, "on disk", "; ".join(f"{f['family']} {f['path']}" + _links(f) for f in files) or "none"]
        )
        loaded = "; ".join(f"{o['family']} {o['path']}" for o in r["openmp_loaded"][side]) or "none"
        rows.append([name, "loaded (selftest)", loaded])
        if d is not None:
            pools = d["figures"].get("openmp") or []
            text = "; ".join(
                f"{o['path']}" + (f" ({o['threads']} threads)" if o.get("threads") else "") for o in pools
            )
            rows.append([name, "pools (doctor, in the job)", text or "none"])
    lines = ["", "## OpenMP configuration", "", *table(["", "", "runtimes"], rows)]
    lines += ["", "## Threading configuration", ""]
    lines += table(
        ["setting", "OLD", "NEW", ""],
        [[t["setting"], t["a"], t["b"], "same" if t["same"] else "**differs**"] for t in r["threading"]],
    )
    return lines


def _imports(r: Mapping[str, Any]) -> list[str]:
    imp = r["imports"]
    lines = ["", "## Imports", ""]
    if imp["a"] and imp["b"]:
        lines += [
            f"Total import time (`-X importtime`, median): OLD {imp['a']['total_s']:.3f} s, NEW "
            f"{imp['b']['total_s']:.3f} s. Largest differences by top-level package (self time, ms):",
            "",
        ]
        lines += table(
            ["package", "OLD ms", "NEW ms", "NEW − OLD ms"],
            [[d["package"], d["a_ms"], d["b_ms"], f"{d['diff_ms']:+.1f}"] for d in imp["top_differences"]],
        )
    else:
        lines.append("No per-module import times (frozen programs ignore `-X importtime`).")
    if r.get("attribution"):
        lines += ["", "Where the difference comes from (compare):", ""]
        lines += ["- " + _A.sub("OLD", _B.sub("NEW", x)) for x in r["attribution"]]
    return lines


def render(
    r: Mapping[str, Any],
    doctor_old: Mapping[str, Any] | None,
    doctor_new: Mapping[str, Any] | None,
    meta: Mapping[str, Any],
) -> str:
    """The seed report as Markdown (pure), section by section."""
    lines = _header(r, meta) + _performance(r) + _packages(r, meta) + _openmp(r, doctor_old, doctor_new)
    lines += _imports(r)
    lines += ["", "## Named causes (`builder doctor`)", "", "### OLD", "", *_causes(doctor_old)]
    lines += ["", "### NEW", "", *_causes(doctor_new)]
    lines += ["", "## The hypotheses, answered", ""]
    for ans in answers(r, doctor_old, doctor_new):
        lines += [ans, ""]
    if meta.get("reports"):
        lines.append(f"The compare's own reports (Markdown, JSON, HTML): `{meta['reports']}`.")
    return "\n".join(lines).rstrip() + "\n"


def _excluded(meta: Mapping[str, Any], package: str) -> str:
    why = (meta.get("excluded") or {}).get(package)
    return f" (excluded: {why})" if why else ""


def _fmt(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items()) or "—"
    return "—" if value is None or value == "" else str(value)


def _links(f: Mapping[str, Any]) -> str:
    others = [n for n in f.get("links", []) if n != f["path"]]
    return f" (+{len(others)} symlink{'s' if len(others) > 1 else ''})" if others else ""


def load_line(before: Sequence[float], after: Sequence[float], cpus: int) -> str:
    """How busy the machine was, in words (pure): load averages before and after the run."""
    # the run itself keeps about `cpus` threads busy, and the 15-minute figure remembers earlier work:
    # other jobs show as load before the run, or as load well beyond the run's own after it
    shared = before[0] > 0.5 * cpus or after[0] > 1.5 * cpus
    return (
        f"load average {before[0]:.2f} before, {after[0]:.2f} after (1-min; 15-min {after[2]:.2f}) on {cpus} CPUs"
        + (
            " — SHARED: other jobs ran on this machine during the measurements, so absolute times are "
            "inflated and noisy; the interleaved rounds keep the ratios fair"
            if shared
            else ""
        )
    )
