"""The contract between builder and stems: JSON Schema files and shared constants, read from this folder.

builder reads the same files by path (it never imports runtime_entry); the freeze bundles the folder
beside the program. Pure stdlib: the frozen program has no jsonschema, so `problems` checks the
subset of JSON Schema these files use (type, enum, const, required, properties,
additionalProperties, propertyNames, items, minimum, oneOf, pattern).
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

FOLDER = Path(__file__).resolve().parent


@cache
def load(name: str) -> dict[str, Any]:
    """A contract file by name: `shared` or a schema such as `runtime`, `selftest`, `bench`, `worker-ready`."""
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
_SHARED_LIB = re.compile(SHARED["shared_library_pattern"], re.IGNORECASE)
_FAMILIES = tuple(
    (f["id"], f["name"], re.compile(f["file_pattern"], re.IGNORECASE)) for f in SHARED["openmp_families"]
)


def openmp_family(file_name: str) -> tuple[str, str] | None:
    """(id, display name) of the OpenMP runtime a file name belongs to, or None.

    >>> openmp_family("libgomp-e985bcbb.so.1.0.0"), openmp_family("vcomp140d.dll")
    (('gnu', 'GNU libgomp'), ('msvc', 'MSVC vcomp'))
    >>> openmp_family("libompitrace.so"), openmp_family("libgomp.py")
    (None, None)
    """
    if not _SHARED_LIB.search(file_name):
        return None
    for fid, name, pattern in _FAMILIES:
        if pattern.match(file_name):
            return fid, name
    return None


_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def _is(value: Any, kind: str) -> bool:
    if isinstance(value, bool) and kind in ("integer", "number"):
        return False
    return isinstance(value, _TYPES[kind])


def problems(value: Any, schema: dict[str, Any], where: str = "") -> list[str]:
    """Every way `value` breaks `schema`, each as 'key: what was expected' (empty when it conforms)."""
    at = where or "(top level)"
    if "oneOf" in schema:
        if not any(not problems(value, s, where) for s in schema["oneOf"]):
            return [
                f"{at}: expected {schema.get('description') or 'one of the allowed forms'}, got {value!r}"
            ]
        return []
    if "const" in schema and value != schema["const"]:
        return [f"{at}: expected {schema['const']!r}, got {value!r}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{at}: expected one of {', '.join(map(repr, schema['enum']))}, got {value!r}"]
    kinds = schema.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if not any(_is(value, k) for k in kinds):
            return [f"{at}: expected {' or '.join(kinds)}, got {type(value).__name__} {value!r}"]
    out: list[str] = []
    if isinstance(value, str) and "pattern" in schema and not re.search(schema["pattern"], value):
        return [
            f"{at}: expected {schema.get('description') or 'a match of ' + schema['pattern']}, got {value!r}"
        ]
    if isinstance(value, (int, float)) and not isinstance(value, bool) and "minimum" in schema:
        if value < schema["minimum"]:
            out.append(f"{at}: expected at least {schema['minimum']}, got {value!r}")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in value:
                out.append(f"{where + '.' if where else ''}{key}: missing")
        extra = schema.get("additionalProperties", True)
        names = dict(schema.get("propertyNames", {}))
        forbidden = names.pop("not", None)  # forms used: pattern, and not/enum
        for key, item in value.items():
            path = f"{where}.{key}" if where else str(key)
            if forbidden is not None and not problems(key, forbidden, path):
                out.append(f"{path}: not allowed here")
            elif names and (bad := problems(key, names, path)):
                out.append(f"{path!r}: not a valid name: {bad[0].split(': ', 1)[1]}")
            if key in props:
                out += problems(item, props[key], path)
            elif extra is False:
                allowed = ", ".join(sorted(props)) or "none"
                out.append(f"{path}: unknown key (allowed: {allowed})")
            elif isinstance(extra, dict):
                out += problems(item, extra, path)
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            out += problems(item, schema["items"], f"{where}[{i}]")
    return out
