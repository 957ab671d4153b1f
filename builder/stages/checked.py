"""What a dist was last checked against: its [bench] settings and the files they name.

A dist is made from the freeze's and packaging's inputs (`inputs_hash`), and [bench] is not among
them: a budget, a tolerance, the workload or its model shape only the check, the budgets and the
smoke bench. So a dist that is up to date is still checked again when [bench] changed since its
last check, without a new freeze or package. The record (`build/P/checked.json`) is written after
every check that passed; without it (a cleaned work folder) the next build checks again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

from builder.fsutil import atomic_write_text, content_digest
from builder.profile import Profile

RECORD = "checked.json"


def checks_hash(project_root: Path, profile: Profile) -> str:
    """[bench] as the profile sets it and the bytes of the files it names (a model folder by its files)."""
    bench = profile.bench
    digest = hashlib.sha256(json.dumps(asdict(bench), sort_keys=True).encode())
    for rel in (bench.input_file, bench.config, bench.checkpoint):
        path = project_root / rel if rel else None
        digest.update(content_digest(path) if path is not None and path.exists() else b"-")
    return "sha256:" + digest.hexdigest()


def is_checked(work: Path, dist_key: str, checks: str) -> bool:
    """True when the dist made from `dist_key` passed its checks with these [bench] settings."""
    try:
        data = json.loads((work / RECORD).read_text(encoding="utf-8"))
        return bool(data["inputs_hash"] == dist_key and data["checks_hash"] == checks)
    except (OSError, ValueError, KeyError, TypeError):  # no record or a damaged one: check again
        return False


def save(work: Path, dist_key: str, checks: str) -> None:
    atomic_write_text(work / RECORD, json.dumps({"inputs_hash": dist_key, "checks_hash": checks}) + "\n")
