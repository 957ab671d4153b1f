"""The pipeline's openmp stage: audit -> fix -> verify, returning the manifest's record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import CheckError
from ..log import Log
from .apply import apply_plan
from .audit import audit
from .plan import describe, plan_fix
from .verify import openmp_packages, venv_python, verify


def openmp_stage(venv: Path, log: Log, *, measure_before: bool = True) -> dict[str, Any]:
    """Fix duplicate OpenMP runtimes in a native venv and prove one is loaded.

    `measure_before` also runs the probe before the fix (when there is something to fix), so the
    manifest records how many runtimes loaded before and after. Raises CheckError when the plan is
    refused or when the fixed environment still loads more than one runtime.
    """
    record: dict[str, Any] = {}
    python = venv_python(venv)
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
