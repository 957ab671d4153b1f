"""The pipeline's openmp stage: audit -> fix -> verify, returning the manifest's record."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from builder.errors import CheckError
from builder.fsutil import atomic_write_text
from builder.log import Log
from builder.openmp.apply import apply_plan
from builder.openmp.audit import audit
from builder.openmp.plan import describe, plan_fix
from builder.openmp.verify import openmp_packages, verify
from builder.stages.install import InstallResult
from builder.venvs import existing_venv_python

OPENMP_RECORD = ".builder-openmp.json"  # in the venv: what the stage found and changed


def openmp_stage(venv: Path, log: Log, *, measure_before: bool = True) -> dict[str, Any]:
    """Fix duplicate OpenMP runtimes in a native venv and prove one is loaded.

    `measure_before` also runs the probe before the fix (when there is something to fix), so the
    manifest records how many runtimes loaded before and after. Raises CheckError when the plan is
    refused or when the fixed environment still loads more than one runtime.
    """
    record: dict[str, Any] = {}
    python = existing_venv_python(venv)
    with log.step("openmp: audit"):
        report = audit(venv)
        packages = openmp_packages(report)
        record["audit"] = report.to_json()
        log.line(
            f"    {len(report.runtimes)} runtime file(s); primary {report.primary} ({report.primary_reason})"
        )
    plan = plan_fix(report)
    record["plan"] = plan.to_json()
    if measure_before and plan.actions:
        with log.step("openmp: measure before the fix"):
            before = verify(python, packages)
            record["loaded_before"] = before.max_runtimes
            log.line(f"    up to {before.max_runtimes} runtime(s) loaded")
    with log.step("openmp: fix"):
        for line in describe(plan):
            log.line(f"    {line}")
        changes = apply_plan(plan)  # raises CheckError on a refusal, before changing anything
        record["changes"] = [c.to_json() for c in changes]
    with log.step("openmp: verify"):
        result = verify(python, packages)
        record["verify"] = result.to_json()
        record["loaded_after"] = result.max_runtimes
        for o in result.orders:
            log.line(
                f"    import {' -> '.join(o.order)}: {len(o.runtimes)} runtime(s)"
                + (f"; {o.problems[0]}" if o.problems else "")
            )
    if result.max_runtimes > 1:
        raise CheckError(
            f"{venv}: {result.max_runtimes} OpenMP runtimes still load after the fix",
            hint="see the openmp record in the build log",
        )
    result.raise_if_failed()
    return record


def openmp_stage_cached(inst: InstallResult, log: Log) -> dict[str, Any]:
    """The stage for the build: a reused venv keeps the record of its earlier fix."""
    record_path = inst.venv / OPENMP_RECORD
    if inst.reused and record_path.is_file():
        record: dict[str, Any] = json.loads(record_path.read_text())
        log.line(
            f"==> openmp: venv unchanged, fixed and verified earlier ({record.get('loaded_after')} runtime loaded)"
        )
        return record
    record = openmp_stage(inst.venv, log)
    atomic_write_text(record_path, json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record
