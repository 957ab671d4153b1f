"""The contract with the runtime program, read by path from `runtime_entry/contract/`.

builder never imports runtime_entry (which would import torch in some of its modules); it reads
the same JSON files that stems reads and validates what a runtime prints against them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from builder.errors import CheckError

FOLDER = Path(__file__).resolve().parent.parent / "runtime_entry" / "contract"


@cache
def load(name: str) -> dict[str, Any]:
    """`shared` (the constants) or a schema: `runtime`, `selftest`, `bench`, `worker-ready`."""
    file = FOLDER / (f"{name}.json" if name == "shared" else f"{name}.schema.json")
    data: dict[str, Any] = json.loads(file.read_text(encoding="utf-8"))
    return data


SHARED = load("shared")
CONFIG_NAME: str = SHARED["config_name"]
CONFIG_ENV: str = SHARED["config_env"]
PRECISIONS: tuple[str, ...] = tuple(SHARED["precisions"])
THREAD_ENV: tuple[str, ...] = tuple(SHARED["thread_env"])
SETTINGS_ENV: dict[str, str] = dict(SHARED["settings_env"])
REPORTED_ENV: tuple[str, ...] = tuple(SHARED["reported_env"])
SHARED_LIBRARY = re.compile(SHARED["shared_library_pattern"], re.IGNORECASE)
OPENMP_FAMILIES: tuple[tuple[str, str, re.Pattern[str]], ...] = tuple(
    (f["id"], f["name"], re.compile(f["file_pattern"], re.IGNORECASE)) for f in SHARED["openmp_families"]
)


def violations(document: Any, schema: str) -> list[str]:
    """Every way `document` breaks the named schema, as 'path: message' (empty when it conforms)."""
    import jsonschema  # here: its import (format checkers) costs 0.3-4 s, and most commands never validate

    validator = jsonschema.Draft202012Validator(load(schema))
    out = []
    for error in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path))):
        path = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        out.append(f"{path}: {error.message}")
    return out


def require(document: Any, schema: str, *, what: str) -> None:
    """Raise CheckError naming the first violation: a runtime that drifted from the contract."""
    found = violations(document, schema)
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise CheckError(
            f"{what} does not follow {schema}.schema.json: {found[0]}{more}",
            hint="builder and the runtime disagree on the contract: rebuild the runtime with this builder",
        )


# Inherited variables that change what a runtime does (its settings, OpenMP, MKL, Python's own):
# a measured or checked runtime gets only what builder means to give it.
SCRUBBED_PREFIXES = ("STEMS_", "OMP_", "MKL_", "KMP_", "GOMP_", "PYTHON")


def runtime_environment(extra: Mapping[str, str], base: Mapping[str, str]) -> dict[str, str]:
    """The one rule for the environment of a runtime that builder runs: `base` without the
    inherited runtime settings, plus `extra`."""
    env = {k: v for k, v in base.items() if not k.startswith(SCRUBBED_PREFIXES)}
    env.update(extra)
    return env
