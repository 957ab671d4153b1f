"""How often `builder compare` with its defaults calls a planted one-thread slowdown "slower".

    make bench-compare-power                      # 10 compares -> docs/PERFORMANCE.md
    python benchmarks/compare_power.py --runs 3   # fewer, on a busy machine
    python benchmarks/compare_power.py --record tests/compare/fixtures/compare_noise.json --rounds 12

A is the host's minimal profile (its venv, installed from its lock by builder); B is the same
lock installed again with a runtime.json of `{"threads": 1}`: the runtime forced to one thread.
Each compare is `builder compare A B --json` with no other option, as a user would run it.
The table counts the verdicts and gives each run's ratio, interval, rounds and the machine's
load average before and after it.

--record adds a session to the noise fixture of tests/compare/test_power.py instead: the per-run
figures of `--rounds` interleaved rounds of A and B with the default workload (sized from the
warm-up, as compare does). Run it alone on the machine (`flock /tmp/heavy.lock ...` here).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from host import machine, write_section  # noqa: E402

from builder.fsutil import atomic_write_text  # noqa: E402
from builder.targets import host_target  # noqa: E402
from builder.tools.uv import uv_bin  # noqa: E402
from builder.wheelhouse import find_wheelhouse  # noqa: E402

WORK = ROOT / ".bench" / "compare-power"
BEGIN, END = "<!-- bench-compare-power:begin -->", "<!-- bench-compare-power:end -->"
FIGURES = (
    "chunk_s",
    "seconds_per_chunk",
    "separation_s",
    "startup_s",
    "total_s",
    "cores_busy",
    "chunk_times",
)


def profile_name() -> str:
    target = host_target()
    if target is None:
        raise SystemExit("this host is not a known target")
    return f"minimal-{target.name}"


def one_thread_venv(profile: str) -> Path:
    """The profile's lock installed into its own venv, with runtime.json forcing one thread."""
    venv = WORK / "one-thread" / "venv"
    if not (venv / "runtime.json").is_file():
        env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
        wh = find_wheelhouse(None)
        links = [f"--find-links={wh.path}"] if wh else []
        subprocess.run([uv_bin(), "venv", "--quiet", "--python", "3.11", str(venv)], check=True, env=env)
        subprocess.run(
            [uv_bin(), "pip", "sync", "--quiet", "--python", str(venv / "bin" / "python"), "--require-hashes",
             *links, str(ROOT / "locks" / f"{profile}.lock")],
            check=True, env=env,
        )  # fmt: skip
        atomic_write_text(venv / "runtime.json", json.dumps({"threads": 1}) + "\n")
    return venv


def builder(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "builder", "--root", str(ROOT), *args],
        capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )  # fmt: skip


def one_compare(profile: str, b: Path) -> dict[str, Any]:
    load = [round(os.getloadavg()[0], 2)]
    t0 = time.monotonic()
    proc = builder("compare", profile, str(b), "--json")
    load.append(round(os.getloadavg()[0], 2))
    row: dict[str, Any] = {"load": load, "wall_s": round(time.monotonic() - t0, 1)}
    if proc.returncode != 0 or not proc.stdout.strip():
        return {**row, "verdict": "error", "error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
    r = json.loads(proc.stdout)
    d = r["decision"]
    return {
        **row,
        **{k: d[k] for k in ("verdict", "ratio", "ci_low", "ci_high", "rounds", "stopped", "elapsed_s")},
        "text": r["verdict"],
        "seconds": r["settings"]["seconds"],
        "caveat": r.get("caveat"),
    }


def record(profile: str, b: Path, rounds: int, out: Path, command: str) -> None:
    """Per-run figures of interleaved rounds, through builder's own measuring functions."""
    from builder.log import Log
    from builder.measure.take.runs import RunOptions, one_round, warm_up
    from builder.measure.take.subject import venv_subject
    from builder.paths import find_project

    project = find_project(ROOT)
    builder("bench", profile, "--repeat", "1", "--json")  # installs the profile's venv if needed
    ra = venv_subject(project.work / profile / "venv", project, label=profile)
    rb = venv_subject(b, project, label="one-thread")
    log = Log()
    load = [round(os.getloadavg()[0], 2)]
    opts, _ = warm_up((ra, rb), RunOptions(seconds=None, model="small"), log)
    rows = []
    for i in range(rounds):
        t0 = time.monotonic()
        run_a, run_b = one_round(ra, rb, i, opts=opts, log=log)
        rows.append({
            "round_s": round(time.monotonic() - t0, 3),
            "a": {k: run_a.get(k) for k in FIGURES},
            "b": {k: run_b.get(k) for k in FIGURES},
        })  # fmt: skip
    load.append(round(os.getloadavg()[0], 2))
    doc = json.loads(out.read_text(encoding="utf-8")) if out.is_file() else {"sessions": []}
    doc["how"] = {
        "command": command,
        "machine": machine(),
        "a": f"{profile} venv (its [runtime]: threads auto = {os.cpu_count()} here)",
        "b": 'the same lock, runtime.json {"threads": 1}',
        "figures": "per run, as builder compare reads them (chunk_s: the median of the run's chunk times)",
        "note": "each session under flock /tmp/heavy.lock: no other heavy job; the machine's light load as it was",
    }
    doc["sessions"].append({
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "workload": f"stems bench --model {opts.model} --seconds {opts.seconds:g} (sized from the warm-up)",
        "load_average_before_after": load,
        "rounds": rows,
    })  # fmt: skip
    atomic_write_text(out, json.dumps(doc, indent=1) + "\n")


def render(doc: dict[str, Any]) -> str:
    rows = doc["rows"]
    counts = Counter(r["verdict"] for r in rows)
    tally = ", ".join(
        f"{k} {counts[k]}" for k in ("slower", "faster", "same", "inconclusive", "error") if counts[k]
    )
    lines = [
        BEGIN,
        "## `builder compare` with its defaults: a planted one-thread slowdown",
        "",
        f"{doc['date']}, {doc['machine']}. A = `{doc['profile']}` (threads auto), B = the same lock with "
        '`runtime.json` `{"threads": 1}`; each run is `builder compare A B --json` with no other option '
        "(sequential rounds, `--time 300`, the `small` model on audio sized from the warm-up). "
        f"Command: `{doc['command']}`.",
        "",
        f'**{counts["slower"]} of {len(rows)} runs said "slower"** ({tally}).',
        "",
        "| run | verdict | B/A | 95% CI | rounds | stopped | measuring (s) | audio (s) | load before → after |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(rows, 1):
        ci = f"{r['ci_low']:.2f}–{r['ci_high']:.2f}" if r.get("ci_low") is not None else "-"
        ratio = f"{r['ratio']:.2f}" if r.get("ratio") is not None else "-"
        lines.append(
            f"| {i} | {r['verdict']} | {ratio} | {ci} | {r.get('rounds', '-')} | {r.get('stopped', '-')} | "
            f"{r.get('elapsed_s', '-')} | {r.get('seconds', '-')} | {r['load'][0]} → {r['load'][1]} |"
        )
    if doc.get("note"):
        lines += ["", doc["note"]]
    return "\n".join([*lines, END]) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=10, help="compares to run (default 10)")
    ap.add_argument("--doc", type=Path, default=ROOT / "docs" / "PERFORMANCE.md")
    ap.add_argument("--json", type=Path, default=ROOT / ".bench" / "compare-power.json")
    ap.add_argument("--note", default="", help="a sentence under the table (how the machine was)")
    ap.add_argument("--from-json", action="store_true", help="measure nothing: re-render --json")
    ap.add_argument("--record", type=Path, help="write the noise fixture here instead")
    ap.add_argument("--rounds", type=int, default=12, help="rounds to record (with --record)")
    args = ap.parse_args(argv)
    if args.from_json:
        write_section(args.doc, render(json.loads(args.json.read_text(encoding="utf-8"))), BEGIN, END)
        return 0
    profile = profile_name()
    b = one_thread_venv(profile)
    if args.record:
        command = f"flock /tmp/heavy.lock python benchmarks/compare_power.py --record {args.record} --rounds {args.rounds}"
        record(profile, b, args.rounds, args.record, command)
        return 0
    rows = []
    for i in range(args.runs):
        rows.append(one_compare(profile, b))
        print(
            f"compare {i + 1}/{args.runs}: {rows[-1].get('text') or rows[-1].get('error')}", file=sys.stderr
        )
    doc = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "profile": profile,
        "command": f"make bench-compare-power  # = python benchmarks/compare_power.py --runs {args.runs}",
        "note": args.note,
        "rows": rows,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.json, json.dumps(doc, indent=1) + "\n")
    write_section(args.doc, render(doc), BEGIN, END)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
