"""Apply a plan: each copy is swapped for its symlink in one rename, so no moment lacks the file."""

from __future__ import annotations

import os
from pathlib import Path

from builder.errors import CheckError
from builder.fsutil import sha256_file
from builder.openmp.model import Change, Plan


def apply_plan(plan: Plan) -> tuple[Change, ...]:
    """Apply every action; refuse the whole plan if it has a refusal. Idempotent."""
    if not plan.ok:
        first = plan.refusals[0]
        raise CheckError(
            f"OpenMP fix refused for {first.path}: {first.reason}",
            hint=f"{len(plan.refusals)} refusal(s); nothing was changed",
        )
    root = Path(plan.root)
    # Check everything first, change after: a stale plan changes nothing.
    for action in plan.actions:
        path = root / action.path
        if _already(path, root / action.primary):
            continue
        if path.is_symlink() or not path.is_file():
            raise CheckError(
                f"{path}: changed since the plan was made (no longer a file)", hint="audit again"
            )
        if sha256_file(path) != action.sha256_before:
            raise CheckError(f"{path}: content changed since the plan was made", hint="audit again")
    changes = []
    for action in plan.actions:
        path = root / action.path
        if _already(path, root / action.primary):
            continue
        tmp = path.with_name(f".{path.name}.openmp-tmp")
        tmp.unlink(missing_ok=True)
        os.symlink(action.link, tmp)
        os.replace(tmp, path)  # atomic: the old name points at the primary or at the old copy, never nothing
        changes.append(
            Change(
                kind=action.kind,
                path=action.path,
                link=action.link,
                sha256_before=action.sha256_before,
                size_before=action.size_before,
            )
        )
    return tuple(changes)


def _already(path: Path, primary: Path) -> bool:
    return path.is_symlink() and os.path.realpath(path) == os.path.realpath(primary)
