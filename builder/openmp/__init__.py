"""OpenMP: audit any target's tree statically, fix duplicate runtimes safely, verify one runtime per process.

report = audit(path)           # every runtime, who loads which, the primary (the copy torch loads)
plan = plan_fix(report)        # symlink each other copy to the primary, after a symbol check
changes = apply_plan(plan)     # idempotent; plan and changes are JSON for the manifest
result = verify(python, pkgs)  # fresh subprocesses, one per import order (native target only)
"""

from __future__ import annotations

from builder.openmp.apply import apply_plan
from builder.openmp.audit import audit
from builder.openmp.plan import describe, plan_fix
from builder.openmp.verify import openmp_packages, verify

__all__ = ["apply_plan", "audit", "describe", "openmp_packages", "plan_fix", "verify"]
