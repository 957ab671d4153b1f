"""The doctor inside a runtime: this process's facts, the calibration, the build's fingerprint, the
rule book, the report. `stems doctor` calls `diagnose`; any frozen program's hook calls `at_exit`
(RUNTIME_BUILDER_DOCTOR=FILE, or at build time RUNTIME_BUILDER_FINGERPRINT=FILE).

`probe` is the probe's document (probe.schema.json: what the process started with, its threads at
torch's import, the program's thread-setting calls, the pools); `fingerprint` the dist's
fingerprint.json (fingerprint.schema.json in the contract).
"""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from runtime_doctor import host, report, rules
from runtime_doctor.calibrate import calibrate

FINGERPRINT_NAME = "fingerprint.json"
FINGERPRINT_SCHEMA = "runtime-builder/fingerprint/1"


def own_threads(mask_at_start: list[int] | None) -> list[dict[str, Any]]:
    """Each thread of this process and its CPU affinity (Linux); pinned: fewer CPUs than the
    process started with."""
    if sys.platform == "linux":
        rows = []
        for tid in sorted(int(t) for t in os.listdir("/proc/self/task")):
            try:
                aff = sorted(os.sched_getaffinity(tid))
            except OSError:
                continue
            pinned = mask_at_start is not None and len(aff) < len(mask_at_start)
            rows.append({"tid": tid, "affinity": aff, "pinned": pinned, "cores_after_job": None})
        return rows
    else:
        return []


def read_fingerprint(executable: Path) -> dict[str, Any] | None:
    folder = report.dist_folder(executable)
    path = folder / FINGERPRINT_NAME if folder else executable.parent / FINGERPRINT_NAME
    try:
        doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if doc.get("schema") == FINGERPRINT_SCHEMA else None


def measure() -> tuple[dict[str, Any] | None, float | None]:
    """The calibration, and the cores other processes kept busy while it ran; no calibration in a
    process that never imported torch (a program's `--help`): the hook must not load it there."""
    if "torch" not in sys.modules:
        return None, None
    watch = host.BusyWatch()
    cal = calibrate()
    return cal, watch.others()


def _build_facts(fp: Mapping[str, Any] | None) -> dict[str, Any]:
    if not fp:
        return {}
    cal, machine = fp.get("calibration") or {}, fp.get("machine") or {}
    return {
        "build_isa": machine.get("isa"),
        "build_calibration_s": cal.get("total_s"),
        "build_usable_threads": min(int(cal.get("threads") or 1), int(machine.get("usable_cpus") or 1)),
        "build_imports_torch_s": (fp.get("imports") or {}).get("torch_s"),
        "build": {k: machine.get(k) for k in ("cpu_model", "cores", "isa", "memory_mb")},
    }


def facts(
    probe: Mapping[str, Any],
    fp: Mapping[str, Any] | None,
    cal: Mapping[str, Any] | None,
    others: float | None,
) -> dict[str, Any]:
    """Every fact the rule book reads, from inside this process."""
    cal = cal or {}
    machine = host.machine()
    mask = probe.get("cpu_mask_at_start") or machine["cpu_mask"]
    usable = host.usable_cpus(machine["cores"], mask, machine["cgroup_quota_cores"])
    threads = probe.get("threads") or {}
    return {
        "machine": machine,
        "host_cpus": machine["cores"],
        "cpu_mask": mask,
        "cgroup_quota_cores": machine["cgroup_quota_cores"],
        "usable_cpus": usable,
        "threads": cal.get("threads") or (probe.get("threads") or {}).get("torch"),
        "threads_requested": threads.get("requested"),
        "threads_at_import": threads.get("at_import"),
        "interop": cal.get("interop"),
        "precision": cal.get("precision"),
        "env_parent": dict(probe.get("env_at_start") or {}),
        "env_at_import": probe.get("env_at_import"),
        "settings_calls": probe.get("settings_calls"),
        "openmp": rules.openmp_pools(probe.get("threadpools")),
        "libraries_loaded": probe.get("libraries_loaded") or [],
        "thread_rows": own_threads(mask),
        "stems": probe.get("config_source", "defaults") != "defaults",
        "load_average": host.load_average(),
        "others_busy_cores": others,
        "translation": host.translation(),
        "isa": machine["isa"],
        "memory": host.memory(),
        "power": host.power(),
        "imports_torch_s": (probe.get("imports") or {}).get("torch_s"),
        "calibration": dict(cal) or None,
        "calibration_s": cal.get("total_s"),
        **_build_facts(fp),
    }


def secrets() -> dict[str, str]:
    """What redaction replaces: this user's home, name, and the host's name."""
    found = {str(Path.home()): "~", socket.gethostname(): "<host>"}
    user = os.environ.get("USER") or os.environ.get("USERNAME") or ""
    if user and user not in ("root",):
        found[user] = "<user>"
    return found


def diagnose(probe: Mapping[str, Any], *, executable: Path, redacted: bool = True) -> dict[str, Any]:
    """The report of this process: the calibration run now, judged against the build's fingerprint."""
    fp = read_fingerprint(executable)
    cal, others = measure()
    f = facts(probe, fp, cal, others)
    causes, notes = rules.find_causes(f)
    doc = {
        "schema": report.SCHEMA,
        "program": str(probe.get("program") or executable.name),
        "runtime": report.identity(executable, probe.get("profile")),
        "verdict": "no problem found"
        if not causes
        else f"{len(causes)} cause(s) found: " + ", ".join(c["id"] for c in causes),
        "causes": [{k: c[k] for k in ("id", "title", "evidence", "fix")} for c in causes],
        "notes": notes,
        "closing": rules.explained(f),
        "figures": f,
        "redacted": redacted,
    }
    # the identity is the build's (profile, a hash, a date): never rewritten, so that it matches the build
    return {**report.redact(doc, secrets()), "runtime": doc["runtime"]} if redacted else doc


def make_fingerprint(probe: Mapping[str, Any]) -> dict[str, Any]:
    """What the build records of its machine, settings and calibration (fingerprint.schema.json)."""
    cal, _ = measure()
    machine = host.machine()
    threads = probe.get("threads") or {}
    return {
        "schema": FINGERPRINT_SCHEMA,
        "machine": {
            k: machine[k] for k in ("system", "arch", "cpu_model", "cores", "usable_cpus", "isa", "memory_mb")
        },
        "settings": {
            "threads": cal["threads"] if cal else threads.get("requested"),
            "interop": cal["interop"] if cal else threads.get("interop"),
            "precision": cal["precision"] if cal else probe.get("matmul_precision"),
            "openmp": sorted({Path(o["path"]).name for o in rules.openmp_pools(probe.get("threadpools"))}),
        },
        "calibration": cal,
        "imports": {"torch_s": (probe.get("imports") or {}).get("torch_s")},
        "smoke": None,
    }


def write(path: str, text: str) -> None:
    """Whole or absent: a temporary name in the same folder, renamed."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.builder-tmp-{os.getpid()}-doctor")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, target)


def at_exit(probe: Mapping[str, Any], *, doctor: str | None, fingerprint: str | None) -> None:
    """The hook's switch: the report (text, and JSON beside it as FILE.json) and/or the fingerprint."""
    exe = Path(sys.executable)
    if fingerprint:
        write(fingerprint, json.dumps(make_fingerprint(probe), indent=1, sort_keys=True) + "\n")
    if doctor:
        doc = diagnose(
            probe, executable=exe, redacted=os.environ.get("RUNTIME_BUILDER_DOCTOR_UNREDACTED") != "1"
        )
        write(doctor, report.render_text(doc))
        write(doctor + ".json", json.dumps(doc, indent=1, sort_keys=True) + "\n")
