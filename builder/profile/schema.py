"""The profile schema, once: every key with its type, default, merge rule and description.

Validation (`check`), the resolved dataclasses' defaults (profile/model.py), `builder profiles
--schema` (JSON Schema for editors) and the README's profile reference are all derived from
KEYS. Pure: no file access.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from builder.contract import PRECISIONS, THREAD_ENV

# Above this many threads per CPU a setting is a typo, not a tuning (and libgomp fails oddly).
MAX_THREADS = 1024


@dataclass(frozen=True, kw_only=True)
class Kind:
    """A value type: what it must be (for messages), how to check it, and its JSON Schema."""

    expected: str
    ok: Callable[[Any], bool]
    json: dict[str, Any]


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _env_table(v: Any) -> bool:
    return isinstance(v, dict) and all(
        isinstance(k, str)
        and isinstance(x, str)
        and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k)
        and "\0" not in x
        for k, x in v.items()
    )


STR = Kind(expected="a string", ok=lambda v: isinstance(v, str), json={"type": "string"})
STR_LIST = Kind(
    expected="a list of strings",
    ok=lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
    json={"type": "array", "items": {"type": "string"}},
)
STR_TABLE = Kind(
    expected="a table of strings",
    ok=lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values()),
    json={"type": "object", "additionalProperties": {"type": "string"}},
)
ENV_TABLE = Kind(
    expected='a table of environment variables (NAME = "value", names of letters, digits and _)',
    ok=_env_table,
    json={
        "type": "object",
        "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
        "additionalProperties": {"type": "string"},
    },
)
BOOL = Kind(expected="true or false", ok=lambda v: isinstance(v, bool), json={"type": "boolean"})
THREADS = Kind(
    expected=f'a whole number from 1 to {MAX_THREADS} or "auto"',
    ok=lambda v: v == "auto" or (_is_int(v) and 1 <= v <= MAX_THREADS),
    json={"oneOf": [{"type": "integer", "minimum": 1, "maximum": MAX_THREADS}, {"const": "auto"}]},
)
COUNT = Kind(
    expected=f"a whole number from 1 to {MAX_THREADS}",
    ok=lambda v: _is_int(v) and 1 <= v <= MAX_THREADS,
    json={"type": "integer", "minimum": 1, "maximum": MAX_THREADS},
)
POS_INT = Kind(
    expected="a positive whole number",
    ok=lambda v: _is_int(v) and v >= 1,
    json={"type": "integer", "minimum": 1},
)
POS_NUMBER = Kind(
    expected="a positive finite number",
    ok=lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < math.inf,
    json={"type": "number", "exclusiveMinimum": 0},
)
PRECISION = Kind(
    expected="one of " + ", ".join(f'"{p}"' for p in PRECISIONS),
    ok=lambda v: v in PRECISIONS,
    json={"enum": list(PRECISIONS)},
)
PYTHON = Kind(
    expected='a Python version like "3.11" (3.8 to 3.14)',
    ok=lambda v: isinstance(v, str) and re.fullmatch(r"3\.(8|9|1[0-4])", v) is not None,
    json={"type": "string", "pattern": r"^3\.(8|9|1[0-4])$"},
)

MACOS_VERSION = Kind(
    expected='a macOS version like "11.0" or "10.15"',
    ok=lambda v: isinstance(v, str) and re.fullmatch(r"1\d(\.\d+){0,2}|2\d(\.\d+){0,2}", v) is not None,
    json={"type": "string", "pattern": r"^(1|2)\d(\.\d+){0,2}$"},
)


@dataclass(frozen=True, kw_only=True)
class Key:
    section: str  # "" for top-level keys
    name: str
    kind: Kind
    default: Any  # None: no default (optional, or required)
    doc: str
    required: bool = False
    # How a child profile's value combines with the one it extends:
    #   replace: the child's wins; add: lists joined, duplicates dropped; excludes: added, and
    #   "!name" takes back the parent's exclude `name`; requirements: joined, a
    #   child requirement for a package the parent names replaces it; update: tables merged
    merge: str = "replace"
    inherited: bool = True

    @property
    def dotted(self) -> str:
        return f"{self.section}.{self.name}" if self.section else self.name

    @property
    def field(self) -> str:
        return self.name.replace("-", "_")


KEYS: tuple[Key, ...] = (
    Key(section="", name="description", kind=STR, default=None, required=True, inherited=False,
        doc="what this runtime is for (required in every profile that is built)"),
    Key(section="", name="extends", kind=STR, default=None, inherited=False,
        doc="a profile to inherit from (a name in profiles/; names starting with `_` are bases, never built)"),
    Key(section="target", name="name", kind=STR, default=None, required=True,
        doc="one of mac-intel, mac-arm, windows-x86_64, linux-x86_64"),
    Key(section="target", name="python", kind=PYTHON, default=None, required=True,
        doc="the target's Python, major.minor"),
    Key(section="packages", name="requirements", kind=STR_LIST, default=(), merge="requirements",
        doc="PEP 508 requirements; added to the parent's, and a same-named one replaces the parent's"),
    Key(section="packages", name="only-binary", kind=STR_LIST, default=(":all:",),
        doc="uv's --only-binary: wheels only, never a source build"),
    Key(section="packages", name="from-wheelhouse", kind=STR_LIST, default=(), merge="add",
        doc="packages that must come from a wheelhouse or indexes.torch-index, never PyPI"),
    Key(section="packages", name="excluded", kind=STR_TABLE, default={}, merge="update",
        doc="package = why it is left out of this target's resolution (uv's --excludes: not installed even "
            "when a dependency asks for it; shown by `builder profiles` and in the lock)"),
    Key(section="packages", name="overrides", kind=STR_LIST, default=(), merge="requirements",
        doc="uv's --override: requirements that replace what any package pins (relax an upstream pin that must give way)"),
    Key(section="indexes", name="index-url", kind=STR, default="https://pypi.org/simple", doc="the main index"),
    Key(section="indexes", name="extra-index-urls", kind=STR_LIST, default=(), doc="more indexes"),
    Key(section="indexes", name="find-links", kind=STR_LIST, default=(), doc="folders or pages of wheels"),
    Key(section="indexes", name="torch-index", kind=STR, default=None,
        doc="where from-wheelhouse packages come from when there is no wheelhouse"),
    Key(section="program", name="name", kind=STR, default="stems",
        doc="the frozen executable's name"),
    Key(section="program", name="console-script", kind=STR, default=None,
        doc="freeze this console script of a package in the lock instead of the bundled `stems`"),
    Key(section="program", name="function", kind=STR, default=None,
        doc="freeze a `module:function` instead of the bundled `stems` (its return value is the exit code)"),
    Key(section="program", name="script", kind=STR, default=None,
        doc="freeze a script of the project (a path relative to the project folder)"),
    Key(section="program", name="datas", kind=STR_LIST, default=(), merge="add",
        doc="project files or folders bundled beside the program, at the same relative path"),
    Key(section="program", name="collect", kind=STR_LIST, default=(), merge="add",
        doc="packages whose every submodule is bundled (code that imports by name at run time)"),
    Key(section="runtime", name="threads", kind=THREADS, default="auto",
        doc='intra-op threads; "auto" = the CPUs this process may use'),
    Key(section="runtime", name="interop-threads", kind=COUNT, default=1, doc="inter-op threads"),
    Key(section="runtime", name="matmul-precision", kind=PRECISION, default="highest",
        doc="torch float32 matmul precision"),
    Key(section="runtime", name="env", kind=ENV_TABLE, default={}, merge="update",
        doc="variables exported before torch is imported (not the thread variables: see threads)"),
    Key(section="freeze", name="excludes", kind=STR_LIST, default=(), merge="excludes",
        doc="modules PyInstaller must leave out (with their submodules); `\"!name\"` takes back an exclude "
            "of a profile this one extends. A module the workload is seen to import is never left out: "
            "an inherited exclude of it is lifted, one this profile sets itself is an error"),
    Key(section="freeze", name="drop", kind=STR_LIST, default=(), merge="add",
        doc="fnmatch patterns of files inside the bundle that nothing opens"),
    Key(section="freeze", name="trace-add", kind=STR_LIST, default=(), merge="add",
        doc="what the traced freeze bundles besides what the workload touched: module:NAME, "
            "file:PATH and library:PATH (relative to site-packages, globs allowed), metadata:DISTRIBUTION"),
    Key(section="freeze", name="trace-ignore", kind=STR_LIST, default=(), merge="add",
        doc="what the traced freeze leaves out of what the workload touched: KIND:PATTERN "
            "(fnmatch; kinds as for trace-add)"),
    Key(section="freeze", name="strip", kind=BOOL, default=False,
        doc="strip --strip-unneeded ELF libraries (Linux targets)"),
    Key(section="freeze", name="keep-sources", kind=BOOL, default=False,
        doc="keep torch's .py files beside the PYZ archive"),
    Key(section="freeze", name="macos-min-version", kind=MACOS_VERSION, default=None,
        doc="mac targets: the oldest macOS the runtime supports (at least the target's; default: the target's); "
            "the check fails when a bundled binary needs a newer one"),
    Key(section="freeze", name="codesign-identity", kind=STR, default=None,
        doc="mac targets: the codesign identity PyInstaller signs every binary with (hardened runtime); "
            "none: ad-hoc signing"),
    Key(section="freeze", name="entitlements", kind=STR, default=None,
        doc="mac targets: the entitlements file for signing, relative to the project folder; "
            "none: builder's default (builder/data/entitlements.plist)"),
    Key(section="bench", name="max-startup-seconds", kind=POS_NUMBER, default=None,
        doc="time to ready budget (median), seconds"),
    Key(section="bench", name="max-seconds-per-chunk", kind=POS_NUMBER, default=None,
        doc="separation budget (median seconds per chunk of the benchmarked model)"),
    Key(section="bench", name="max-size-mb", kind=POS_NUMBER, default=None,
        doc="frozen folder budget in decimal MB (10^6 bytes); the build fails above it"),
    Key(section="bench", name="max-files", kind=POS_INT, default=None,
        doc="frozen folder budget in files; the build fails above it"),
    Key(section="bench", name="command", kind=STR, default=None,
        doc="the workload: a command line starting with {program}; placeholders {input} (a WAV file), "
            "{input_dir} (a folder holding only it), {output} (an empty folder), {config}, {checkpoint}, "
            "{seconds}, {rate}, {channels}; none: stems' own `bench` (the tiny model)"),
    Key(section="bench", name="tolerance", kind=POS_NUMBER, default=None,
        doc="the check compares the frozen program's outputs with the venv's run of [bench].command: "
            "WAV samples may differ by this much (full scale 1.0); none: the same bytes"),
    Key(section="bench", name="check-command", kind=STR, default=None,
        doc="what the check stage runs with the probe on, for a program other than stems "
            "(same placeholders; none: `{program} --help`)"),
    Key(section="bench", name="input-seconds", kind=POS_NUMBER, default=4,
        doc="length of the generated input audio, seconds"),
    Key(section="bench", name="input-rate", kind=POS_INT, default=44100, doc="its sample rate, Hz"),
    Key(section="bench", name="input-channels", kind=POS_INT, default=2, doc="its channels"),
    Key(section="bench", name="input-file", kind=STR, default=None,
        doc="a WAV file of the project to use instead of generated audio (relative to the project folder)"),
    Key(section="bench", name="config", kind=STR, default=None,
        doc="a file or folder of the project that {config} names (e.g. a model config), relative to the project folder"),
    Key(section="bench", name="checkpoint", kind=STR, default=None,
        doc="a file or folder of the project that {checkpoint} names (e.g. model weights, a model folder), "
            "relative to the project folder"),
)  # fmt: skip

BY_DOTTED: dict[str, Key] = {k.dotted: k for k in KEYS}
SECTIONS: tuple[str, ...] = tuple(dict.fromkeys(k.section for k in KEYS if k.section))
TOP_LEVEL: tuple[str, ...] = tuple(k.name for k in KEYS if not k.section)
# Keys whose value, in [runtime].env, would fight the runtime's own thread setting.
THREAD_VARIABLES = THREAD_ENV


def keys_of(section: str) -> tuple[Key, ...]:
    return tuple(k for k in KEYS if k.section == section)


def default(dotted: str) -> Any:
    """A key's default, for the dataclasses (lists become tuples there)."""
    value = BY_DOTTED[dotted].default
    return tuple(value) if isinstance(value, list) else value


def json_schema() -> dict[str, Any]:
    """The profile format as JSON Schema (draft 2020-12), for editors (`builder profiles --schema`)."""

    def prop(k: Key) -> dict[str, Any]:
        out = {**k.kind.json, "description": k.doc}
        if k.default not in (None, (), {}):
            out["default"] = list(k.default) if isinstance(k.default, tuple) else k.default
        return out

    properties: dict[str, Any] = {k.name: prop(k) for k in KEYS if not k.section}
    for section in SECTIONS:
        properties[section] = {
            "type": "object",
            "additionalProperties": False,
            "properties": {k.name: prop(k) for k in keys_of(section)},
        }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://runtime-builder.invalid/profile.schema.json",
        "title": "runtime-builder profile (profiles/NAME.toml)",
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
    }


def reference_markdown() -> str:
    """The README's profile reference table (a test keeps the README equal to this)."""
    lines = ["| key | type | default | what it is |", "|---|---|---|---|"]
    for k in KEYS:
        if k.required:
            shown = "required"
        elif k.default in (None, (), {}):
            shown = "—"
        else:
            value = list(k.default) if isinstance(k.default, tuple) else k.default
            shown = f"`{json.dumps(value)}`"
        merge = {"add": " Added to the parent's.", "update": " Merged with the parent's.",
                 "excludes": " Added to the parent's.",
                 "requirements": ""}.get(k.merge, "")  # fmt: skip
        lines.append(f"| `{k.dotted}` | {k.kind.expected} | {shown} | {k.doc}.{merge} |")
    return "\n".join(lines) + "\n"
