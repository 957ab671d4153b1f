"""The published JSON Schemas of builder's `--json` documents, one per command, for pipeline authors.

`builder/schemas/<command>.schema.json` (draft 2020-12, `$id` runtime-builder/<command>/<version>)
ships in the wheel. Every `--json` document names its schema in a top-level `"schema"` key, so a
pipeline can tell which version it reads; a change that renames or removes a key is a new version.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

FOLDER = Path(__file__).resolve().parent
VERSION = 1


def schema_id(command: str) -> str:
    """The `$id` of a command's schema, and the value of its documents' `"schema"` key (pure)."""
    return f"runtime-builder/{command}/{VERSION}"


def schema_path(command: str) -> Path:
    return FOLDER / f"{command}.schema.json"


def tagged(command: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """A command's --json document: its schema's id, then the body (pure)."""
    return {"schema": schema_id(command), **body}


@cache
def load(command: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(schema_path(command).read_text(encoding="utf-8"))
    return data


def violations(document: Any, command: str) -> list[str]:
    """Every way `document` breaks the command's schema, as 'path: message' (empty when it conforms)."""
    import jsonschema  # here: its import costs 0.3-4 s, and no command validates its own output

    validator = jsonschema.Draft202012Validator(load(command))
    found = sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))
    return [f"{'.'.join(str(p) for p in e.absolute_path) or '(top level)'}: {e.message}" for e in found]
