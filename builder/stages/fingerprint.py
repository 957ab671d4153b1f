"""Fingerprint stage: what the build machine is and how fast it runs the calibration, for the dist.

The frozen program itself takes it: its runtime hook answers RUNTIME_BUILDER_FINGERPRINT=FILE at
exit (runtime_doctor.inprocess.make_fingerprint: the machine, the settings in force, the fixed
torch kernels timed). stems runs `selftest`; any other program its profile's workload (else its
check command). builder adds the smoke bench's figures and validates the document against the
contract (fingerprint.schema.json). The runtime's doctor compares a user's machine with it.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from builder.contract import require
from builder.errors import CheckError
from builder.measure.take.runner import run_monitored
from builder.measure.take.workload import run_workload
from builder.stages.plan import BuildPlan

FINGERPRINT_ENV = "RUNTIME_BUILDER_FINGERPRINT"
FINGERPRINT_NAME = "fingerprint.json"
TIMEOUT = 600.0


def smoke_figures(smoke: Mapping[str, Any]) -> dict[str, Any]:
    """The smoke bench's medians (pure): the workload's own figure beside the fixed kernels'."""
    med = {k: (v or {}).get("median") for k, v in (smoke.get("summary") or {}).items()}
    return {"medians": med, "workload": (smoke.get("runtime") or {}).get("workload")}


def take_fingerprint(program: Path, plan: BuildPlan, smoke: Mapping[str, Any]) -> dict[str, Any]:
    """Run the frozen program once with the hook's fingerprint switch on; the document it wrote."""
    with tempfile.TemporaryDirectory(prefix="builder-fingerprint-") as tmp:
        target = Path(tmp) / FINGERPRINT_NAME
        env = {FINGERPRINT_ENV: str(target)}
        workload = None if plan.profile.program.bundled else (plan.workload or plan.check_workload)
        if workload is not None:
            res, _ = run_workload([str(program)], env, workload, Path(tmp), timeout=TIMEOUT, stall=TIMEOUT)
        else:
            res = run_monitored([str(program), "selftest", "--json"], env=env, timeout=TIMEOUT, stall=TIMEOUT)
        if not target.is_file():
            tail = " | ".join(ln for ln in res.stderr.splitlines()[-3:] if ln.strip()) or "(no output)"
            raise CheckError(f"fingerprint: {program.name} wrote none (exit {res.returncode}): {tail}")
        doc: dict[str, Any] = json.loads(target.read_text(encoding="utf-8"))
    doc["smoke"] = smoke_figures(smoke)
    require(doc, "fingerprint", what=f"{program.name}'s fingerprint")
    return doc


def fingerprint_line(doc: Mapping[str, Any]) -> str:
    """The build log's line for the fingerprint (pure)."""
    machine, cal = doc["machine"], doc["calibration"]
    isa = ", ".join(machine["isa"]) or "none known"
    if not cal:
        return f"{machine['cpu_model']}: instruction sets {isa}; no calibration (the program never imported torch)"
    return (f"{machine['cpu_model']}: calibration {cal['total_s']} s (matmul {cal['matmul_s']} s, attention "
            f"{cal['attention_s']} s, {cal['threads']} threads), instruction sets {isa}")  # fmt: skip
