"""`builder doctor`: say why a runtime is slow.

The runtime's own doctor (runtime_doctor, inside the frozen program) plus what only builder can do.
The steps: take the figures (measure/take/doctor_run.py: the workload in the app's environment,
watched from outside and by the probe), judge them with the one rule book (runtime_doctor.rules,
the same the runtime's doctor uses, and measure/judge/doctor_threads.py for the per-thread
samples), then, where a fix is a variable builder can set from outside, run the workload again
with it: the cost is the measured difference. measure/show/doctor.py renders the result.
"""

from __future__ import annotations

from typing import Any

from builder.log import Log
from builder.measure.judge.doctor_threads import thread_rows
from builder.measure.take.doctor_run import (
    LINGER_S,
    Watched,
    Workload,
    app_environment,
    first_json,
    job_seconds,
    machine_facts,
    own_workload,
    run_facts,
    run_job,
)
from builder.measure.take.runner import run_monitored
from builder.measure.take.subject import Subject
from runtime_doctor.rules import Cause, find_causes

SCHEMA = "runtime-builder/doctor/1"  # builder/schemas/doctor.schema.json


def _selftest(rt: Subject, work: Workload, log: Log) -> dict[str, Any] | None:
    if work.program is not None or own_workload(rt, work) is not None:
        return None
    with log.step(f"selftest of {rt.label} in the app's environment"):
        st = run_monitored(
            rt.command("selftest", "--json"), env=app_environment(rt), timeout=work.timeout,
            stall=work.timeout, inherit_env=True,
        )  # fmt: skip
    return first_json(st.stdout)


def _what(rt: Subject, work: Workload) -> str:
    own = own_workload(rt, work)
    if work.program:
        return str(work.program)
    if own:
        return f"the profile's [bench].command: {own.describe()['command']}"
    return f"stems bench, model {work.model}, {work.seconds:g} s of audio"


def gather(rt: Subject, work: Workload, w: Watched, selftest: dict[str, Any] | None) -> dict[str, Any]:
    """Every fact the rule book reads, as plain data (also the report's figures)."""
    f = {**machine_facts(), **run_facts(rt, work, w, selftest)}
    own = own_workload(rt, work)
    f["workload"] = {
        "program": str(work.program) if work.program else None,
        "command": own.describe()["command"] if own else None,
        "model": None if work.program or own else work.model,
        "seconds_of_audio": own.seconds if own else None if work.program else work.seconds,
    }
    probe = w.probe or {}
    lingered = probe.get("linger_started") if probe.get("linger_s") else None
    f["thread_rows"] = thread_rows(
        w.res.samples, f["cpu_mask"], w.probe, linger_at=w.since_start(lingered) if lingered else None,
        main_tid=w.res.pid,
    )  # fmt: skip
    return f


def measure_cost(rt: Subject, work: Workload, c: Cause, before: float, log: Log) -> dict[str, Any]:
    """The workload again with the cause's fix applied from outside: what it saves, one run each."""
    if not (work.cost and c["rerun"]):
        why = (
            "the fix is not a variable the doctor can set from outside"
            if not c["rerun"]
            else "not asked for (--no-cost)"
        )
        return {"measured": False, "why": why}
    extra, drop = c["rerun"].get("extra", {}), c["rerun"].get("drop", [])
    change = ", ".join([f"{k}={v}" for k, v in extra.items()] + [f"without {k}" for k in drop])
    with log.step(f"measure the cost of {c['id']}: the workload again with {change}"):
        fixed, unit = job_seconds(run_job(rt, work, extra=extra, drop=drop))
    return {
        "measured": True,
        "with_fix": change,
        "before": before,
        "after": fixed,
        "unit": unit,
        "ratio": round(before / fixed, 2) if fixed else None,
        "runs": "one run each (for an interval: `builder compare` of the two settings)",
    }


def diagnose(rt: Subject, work: Workload | None = None, *, log: Log | None = None) -> dict[str, Any]:
    work = work or Workload()
    log = log or Log()
    selftest = _selftest(rt, work, log)
    with log.step(f"run the workload ({_what(rt, work)}), watched"):
        w = run_job(rt, work, linger=LINGER_S)
    # busy neighbours are the runtime's doctor's to judge (its calibration against the fingerprint);
    # here, where timings of a whole workload on a shared machine are noisy, a busy machine is a note
    facts = {**gather(rt, work, w, selftest), "others_busy_cores": None}
    causes, notes = find_causes(facts)
    for c in causes:
        c["cost"] = measure_cost(rt, work, c, facts["job_seconds"], log)
    return {
        "schema": SCHEMA,
        "runtime": rt.describe(),
        "verdict": "no problem found"
        if not causes
        else f"{len(causes)} cause(s) found: " + ", ".join(c["id"] for c in causes),
        "causes": causes,
        "notes": notes,
        "figures": facts,
    }
