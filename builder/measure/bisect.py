"""Bisect: which of B's extra packages make B slower than A.

B is A plus packages (minimal vs extended). Intermediate environments are A's exact
packages plus a subset of B's extras (with the extras that subset depends on), installed
with uv from its cache; each is measured against A in interleaved rounds. A subset that is
not slower is cleared whole; a slower one is split in two, down to single packages; a single package is named only when a
second measurement confirms it. Each test is the compare decision (measure/judge/sequential.py): a
subset that cannot be decided within its budget is reported as undecided, never cleared.
Environments are kept under build/bisect/ and reused by their package set.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from email.parser import HeaderParser
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from builder.errors import InputError
from builder.fsutil import atomic_write_text, staged_dir
from builder.log import Log
from builder.measure.bench import (
    METRIC_ALIASES,
    METRICS,
    RunOptions,
    one_round,
    usable,
    warm_up,
)
from builder.measure.judge.sequential import SEQUENTIAL, fixed_plan, run_rounds
from builder.measure.take.subject import Runtime
from builder.paths import Project
from builder.tools import uv
from builder.venvs import site_packages_of, venv_python

STAMP = ".bisect-stamp.json"
STEP_TIME_S = 120.0  # each test's budget when rounds are sequential (no --repeat)


# --- what is installed ---------------------------------------------------------------


def installed(venv: Path) -> dict[str, dict[str, Any]]:
    """name -> {name, version, requires (canonical names, markers evaluated)} from dist-info METADATA."""
    out: dict[str, dict[str, Any]] = {}
    for meta_path in sorted(site_packages_of(venv).glob("*.dist-info/METADATA")):
        meta = HeaderParser().parsestr(meta_path.read_text(encoding="utf-8", errors="replace"))
        requires = set()
        for raw in meta.get_all("Requires-Dist") or []:
            try:
                req = Requirement(raw)
            except InvalidRequirement:
                continue
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                requires.add(canonicalize_name(req.name))
        name = canonicalize_name(meta.get("Name", meta_path.parent.name.split("-")[0]))
        out[name] = {
            "name": meta.get("Name", name),
            "version": meta.get("Version", "?"),
            "requires": sorted(requires),
        }
    return out


def extras_of(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """B's packages that A lacks or has at another version (pure)."""
    return sorted(n for n, p in b.items() if n not in a or a[n]["version"] != p["version"])


def closure(subset: Sequence[str], b: Mapping[str, Any], extras: Sequence[str]) -> list[str]:
    """The subset plus the extras it needs (transitively), so every package in it can import (pure)."""
    want, todo = set(subset), list(subset)
    extra_set = set(extras)
    while todo:
        for dep in b[todo.pop()]["requires"]:
            if dep in extra_set and dep not in want:
                want.add(dep)
                todo.append(dep)
    return sorted(want)


# --- intermediate environments ----------------------------------------------------------


def _base_python(venv: Path) -> Path:
    py = venv_python(venv)
    return py.resolve() if py.exists() else py


def build_env(
    a_rt: Runtime,
    a_pkgs: Mapping[str, Any],
    b_pkgs: Mapping[str, Any],
    subset: Sequence[str],
    *,
    work: Path,
    find_links: Sequence[Path],
    log: Log,
) -> tuple[Runtime, bool]:
    """A's packages + `subset` at B's versions, in a venv reused by its package set. (runtime, built?)"""
    pins = {n: a_pkgs[n]["version"] for n in a_pkgs} | {n: b_pkgs[n]["version"] for n in subset}
    lines = sorted(f"{b_pkgs.get(n, a_pkgs.get(n))['name']}=={v}" for n, v in pins.items())
    key = hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]
    venv = work / key
    stamp: dict[str, Any] = {"pins": lines, "python": str(_base_python(a_rt.path))}
    built = False
    if not ((venv / STAMP).is_file() and json.loads((venv / STAMP).read_text()) == stamp):
        with staged_dir(venv) as tmp:
            uv.run(["venv", "--quiet", "--relocatable", "--python", stamp["python"], str(tmp)])
            req = tmp / "requirements.txt"
            req.write_text("\n".join(lines) + "\n", encoding="utf-8")
            args = [
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--python",
                str(venv_python(tmp)),
                "-r",
                str(req),
                *[f"--find-links={p}" for p in find_links],
            ]
            # Everything is in uv's cache when A and B were installed on this machine: try offline first.
            if uv.run([*args, "--offline"], check=False).returncode != 0:
                uv.run(args)
            atomic_write_text(tmp / STAMP, json.dumps(stamp, indent=2) + "\n")
        built = True
    rt = replace(
        a_rt,
        label="A+" + ",".join(b_pkgs[n]["name"] for n in subset),
        path=venv,
        argv=(str(venv_python(venv)), *a_rt.argv[1:]),
    )
    log.line(f"    {'built' if built else 'reused'} {venv.name}: A + {', '.join(subset)}")
    return rt, built


# --- the search ---------------------------------------------------------------------------


def bisect_runtimes(
    a: Runtime,
    b: Runtime,
    project: Project,
    *,
    metric: str = "startup",
    threshold: float = 0.05,
    repeat: int | None = 3,
    step_time_s: float = STEP_TIME_S,
    opts: RunOptions | None = None,
    find_links: Sequence[Path] = (),
    log: Log | None = None,
) -> dict[str, Any]:
    log = log or Log()
    if a.kind != "venv" or b.kind != "venv":
        raise InputError(
            "bisect needs venvs or profiles for A and B (a frozen dist cannot be re-installed)",
            hint="pass the profiles' venvs, e.g. build/P/venv, or the profile names",
        )
    key = METRIC_ALIASES[metric]
    base = opts or RunOptions()
    opts = replace(
        base, startup=key in ("startup_s", "import_s"), separation=key in ("separation_s", "total_s")
    )
    plan = fixed_plan(repeat) if repeat else SEQUENTIAL
    if opts.seconds is None:  # the workload sized once, from A and B, for every step
        opts, _ = warm_up((a, b), opts, log) if opts.separation else (replace(opts, seconds=1.0), [])
    a_pkgs, b_pkgs = installed(a.path), installed(b.path)
    extras = extras_of(a_pkgs, b_pkgs)
    removed = sorted(set(a_pkgs) - set(b_pkgs))
    work = project.work / "bisect"
    counts = {"builds": 0, "reused": 0, "tests": 0, "runs": 0}
    steps: list[dict[str, Any]] = []

    def measure(rt: Runtime, what: str, subset: Sequence[str], confirm: bool = False) -> dict[str, Any]:
        counts["tests"] += 1
        step_plan = fixed_plan(2 * repeat) if repeat and confirm else plan

        def one(i: int) -> tuple[tuple[float | None, float | None], float]:
            t0 = time.monotonic()
            ra, rx = one_round(a, rt, i, opts=opts, log=log)
            counts["runs"] += 2 * (int(opts.startup) + int(opts.separation))
            return (
                ra.get(key) if usable(ra) else None,
                rx.get(key) if usable(rx) else None,
            ), time.monotonic() - t0

        out = run_rounds(one, step_plan, budget_s=step_time_s, min_effect=threshold, what=what)
        d = out.decision
        call = d["verdict"]["call"]
        step = {
            "test": counts["tests"],
            "packages": list(subset),
            "label": rt.label,
            **{k: v for k, v in d.items() if k != "verdict"},
            "rounds": out.rounds,
            "verdict": d["verdict"]["text"] + (f"; {out.settle}" if out.settle else ""),
            "call": call,
            "slower": call == "slower",
            # neither slower nor inside the band: never cleared as if it were the same
            "undecided": call not in ("slower", "faster", "same"),
        }
        steps.append(step)
        log.line(f"==> test {counts['tests']}: {rt.label}: {step['verdict']}")
        return step

    log.line(
        f"==> bisect on {METRICS[key][0]}: {len(extras)} packages in B beyond A: {', '.join(extras) or 'none'}"
    )
    whole = measure(b, "B", extras)
    result: dict[str, Any] = {
        "a": a.describe(),
        "b": b.describe(),
        "metric": key,
        "threshold": threshold,
        "repeat": repeat,
        "mode": f"fixed: {repeat} rounds per test"
        if repeat
        else f"sequential: each test until decided, up to {step_time_s:g} s",
        "extras": [{"name": b_pkgs[n]["name"], "version": b_pkgs[n]["version"]} for n in extras],
        "removed_in_b": removed,
        "b_vs_a": whole,
        "culprits": [],
        "steps": steps,
        "counts": counts,
    }
    result["undecided"] = []
    if whole["undecided"]:
        result["conclusion"] = (
            f"undecided: cannot tell whether B is slower than A on {METRICS[key][0]} within the budget "
            f"({whole['verdict']}): nothing bisected"
        )
        return result
    if not whole["slower"]:
        result["conclusion"] = (
            f"B is not slower than A on {METRICS[key][0]} ({whole['verdict']}): nothing to bisect"
        )
        return result

    def search(subset: list[str]) -> list[dict[str, Any]]:
        env_pkgs = closure(subset, b_pkgs, extras)
        rt, built = build_env(a, a_pkgs, b_pkgs, env_pkgs, work=work, find_links=find_links, log=log)
        counts["builds" if built else "reused"] += 1
        step = measure(rt, "A+" + ",".join(subset), env_pkgs)
        if step["undecided"]:
            result["undecided"].append({"packages": list(subset), "verdict": step["verdict"]})
        if not step["slower"]:
            return []
        if len(subset) == 1:
            # A single package is named only if a second measurement agrees (noise happens).
            step = measure(rt, "A+" + subset[0], env_pkgs, confirm=True)
            if step["undecided"]:
                result["undecided"].append({"packages": list(subset), "verdict": step["verdict"]})
            if not step["slower"]:
                return []
            return [
                {
                    "package": b_pkgs[subset[0]]["name"],
                    "version": b_pkgs[subset[0]]["version"],
                    "with": [p for p in env_pkgs if p != subset[0]],
                    "ratio": step["ratio"],
                    "ci_low": step["ci_low"],
                    "ci_high": step["ci_high"],
                    "effect": step["verdict"],
                }
            ]
        half = len(subset) // 2
        return search(subset[:half]) + search(subset[half:])

    half = len(extras) // 2
    culprits = search(extras[:half]) + search(extras[half:]) if len(extras) > 1 else []
    if len(extras) == 1:
        culprits = [
            {
                "package": b_pkgs[extras[0]]["name"],
                "version": b_pkgs[extras[0]]["version"],
                "with": [],
                "ratio": whole["ratio"],
                "ci_low": whole["ci_low"],
                "ci_high": whole["ci_high"],
                "effect": whole["verdict"],
            }
        ]
    result["culprits"] = culprits
    if culprits:
        names = "; ".join(f"{c['package']} {c['version']}: {c['effect']}" for c in culprits)
        result["conclusion"] = f"responsible: {names}"
    else:
        result["conclusion"] = (
            "no single package reproduces B's slowdown on its own: it needs a combination, "
            "or comes from settings (see `builder compare`)"
        )
    if result["undecided"]:
        result["conclusion"] += "; undecided within the budget (neither cleared nor named): " + ", ".join(
            "+".join(u["packages"]) for u in result["undecided"]
        )
    result["conclusion"] += (
        f"; {counts['builds']} builds ({counts['reused']} reused), {counts['tests']} tests, "
        f"{counts['runs']} runtime processes"
    )
    return result


def render(result: Mapping[str, Any]) -> str:
    lines = [
        f"bisect {result['a']['label']} -> {result['b']['label']} on {METRICS[result['metric']][0]} "
        f"(threshold {result['threshold'] * 100:.0f}%, {result.get('mode') or str(result['repeat']) + ' rounds per test'})",
        f"B's extra packages: {', '.join(e['name'] + ' ' + e['version'] for e in result['extras']) or 'none'}",
    ]
    for s in result["steps"]:
        lines.append(f"  test {s['test']}: {s['label']}: {s['verdict']}")
    lines.append(result["conclusion"])
    return "\n".join(lines)
