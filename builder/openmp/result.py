"""What `builder openmp` produces: the audit, and the plan, changes, audit after and verification
when asked for; `to_json` is the --json document (builder/schemas/openmp.schema.json)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from builder.openmp.model import AuditReport, Change, Plan
from builder.openmp.verify import VerifyReport
from builder.schemas import tagged


@dataclass(frozen=True, kw_only=True)
class OpenMPResult:
    audit: AuditReport
    plan: Plan | None = None  # --fix or --dry-run
    changes: tuple[Change, ...] | None = None  # --fix
    after: AuditReport | None = None  # --fix: the tree audited again
    verify: VerifyReport | None = None  # --verify

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"audit": self.audit.to_json()}
        if self.plan is not None:
            body["plan"] = self.plan.to_json()
        if self.changes is not None:
            body["changes"] = [c.to_json() for c in self.changes]
        if self.after is not None:
            body["after"] = self.after.to_json()
        if self.verify is not None:
            body["verify"] = self.verify.to_json()
        return tagged("openmp", body)
