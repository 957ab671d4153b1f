"""The published schemas of bench, compare, bisect and tune (builder/schemas/), read by path as a
pipeline reads them, and the check every test of their documents makes."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

SCHEMAS = Path(__file__).resolve().parents[2] / "builder" / "schemas"
COMMANDS = ("bench", "compare", "bisect", "tune")


@cache
def validator(command: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMAS / f"{command}.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def schema_errors(doc: Any, command: str) -> list[str]:
    found = sorted(validator(command).iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    return [f"{'.'.join(map(str, e.absolute_path)) or '(top level)'}: {e.message}" for e in found]


def assert_follows_its_schema(doc: Any) -> str:
    """The document names its schema (runtime-builder/<command>/1) and follows it; the command."""
    command = str(doc.get("schema", "")).split("/")[1:2]
    assert doc.get("schema") == f"runtime-builder/{command[0] if command else '?'}/1", doc.get("schema")
    assert command[0] in COMMANDS, command
    errors = schema_errors(doc, command[0])
    assert not errors, "\n".join(errors[:10])
    return command[0]
