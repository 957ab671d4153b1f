"""A frozen folder kept for the next try: a build that fails after the freeze (check, smoke bench,
budget, package) leaves it in the work folder, and the next build with the same freeze inputs
takes it as it is instead of freezing again.

The record beside the folder (`frozen.json`) holds the freeze's inputs hash and what the freeze
said (its FreezeResult); the package stage moves the folder into the dist, and a record without
its folder is ignored.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from builder.fsutil import atomic_write_text
from builder.openmp.frozen import FrozenOpenMP, Relink
from builder.stages.freeze import FreezeResult


def record_path(out: Path) -> Path:
    return out.parent / f"{out.name}.json"


def result_json(result: FreezeResult) -> dict[str, Any]:
    """FreezeResult as JSON, every field (the folder relative to the record)."""
    omp = result.openmp
    return {
        "program": result.folder.name,
        "pyinstaller": result.pyinstaller,
        "stripped": result.stripped,
        "bundled": sorted(result.bundled),
        "openmp": None
        if omp is None
        else {
            "runtimes": list(omp.runtimes),
            "relinked": [
                {"path": r.path, "link": r.link, "primary": r.primary, "sha256": r.sha256}
                for r in omp.relinked
            ],
            "applied": omp.applied,
        },
    }


def result_from_json(out: Path, data: dict[str, Any]) -> FreezeResult:
    omp = data["openmp"]
    return FreezeResult(
        folder=out / data["program"],
        pyinstaller=data["pyinstaller"],
        stripped=data["stripped"],
        bundled=frozenset(data["bundled"]),
        openmp=None
        if omp is None
        else FrozenOpenMP(
            runtimes=tuple(omp["runtimes"]),
            relinked=tuple(Relink(**r) for r in omp["relinked"]),
            applied=omp["applied"],
        ),
    )


def save(out: Path, key: str, result: FreezeResult) -> None:
    atomic_write_text(
        record_path(out), json.dumps({"freeze_inputs_hash": key, "result": result_json(result)}) + "\n"
    )


def forget(out: Path) -> None:
    record_path(out).unlink(missing_ok=True)


def reusable(out: Path, key: str) -> FreezeResult | None:
    """The frozen folder under `out` when it was frozen from the inputs `key` and is still there."""
    try:
        data = json.loads(record_path(out).read_text(encoding="utf-8"))
        if data["freeze_inputs_hash"] != key:
            return None
        result = result_from_json(out, data["result"])
    except (OSError, ValueError, KeyError, TypeError):  # no record, or a damaged one: freeze again
        return None
    return result if result.folder.is_dir() else None
