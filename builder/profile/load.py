"""Profiles read from `profiles/*.toml`, validated against the schema table and resolved.

Three pure steps, so each failure names its file and key:
  parse (TOML -> dict) -> validate (dict against KEYS) -> merge (the `extends` chain) -> resolve.
The rest of builder only ever sees `Profile`.
"""

from __future__ import annotations

import codecs
import difflib
import os
import re
import sys
import unicodedata
from dataclasses import replace
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from builder.bounds import MAX_PROFILE_BYTES, check_toml, over_digit_limit, read_bounded
from builder.errors import LimitError, ProfileError
from builder.profile.excludes import apply_layer, unmatched_take_backs
from builder.profile.model import SECTION_TYPES, Profile
from builder.profile.schema import BY_DOTTED, KEYS, SECTIONS, THREAD_VARIABLES, TOP_LEVEL, Key, keys_of
from builder.targets import TARGETS, Target

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

# Bases (shared blocks other profiles extend) are named `_...`; they are never built or listed.
BASE_PREFIX = "_"
NAME = re.compile(r"[A-Za-z0-9._-]{1,100}")


def parse_toml(text: str, path: Path) -> dict[str, Any]:
    """The TOML's table, after its shape is bounded (tomllib is quadratic in a key's dotted parts)."""
    check_toml(text, path)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path}: invalid TOML: {exc}") from None
    except ValueError as exc:  # an integer over Python's digit limit (sys.get_int_max_str_digits)
        raise LimitError(f"{path}: {over_digit_limit(exc) or exc}") from None
    except RecursionError:  # the shape check bounds nesting; this is the belt to its braces
        raise LimitError(f"{path}: nested too deeply to parse") from None


def decode_profile(data: bytes, path: Path) -> str:
    """UTF-8 text; a leading byte-order mark (Windows editors write one) is accepted and dropped."""
    try:
        return data.removeprefix(codecs.BOM_UTF8).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProfileError(
            f"{path}: cannot read: not UTF-8 text (byte {exc.start})", hint="a profile is UTF-8 TOML"
        ) from None


def _suggest(word: str, choices: list[str]) -> str | None:
    close = difflib.get_close_matches(word, choices, n=1)
    return f"did you mean '{close[0]}'?" if close else None


def _show(value: Any) -> str:
    kind = {bool: "boolean", int: "integer", float: "number", str: "string"}
    return f"{kind.get(type(value), type(value).__name__)} {value!r}"


def _check(key: Key, value: Any, path: Path) -> None:
    if not key.kind.ok(value):
        raise ProfileError(f"{path}: key '{key.dotted}' must be {key.kind.expected}, got {_show(value)}")
    found = control_character(value, key.dotted)
    if found is not None:
        where, char = found
        raise ProfileError(
            f"{path}: key '{where}' holds a control character (U+{ord(char):04X}); "
            "profile strings are written into locks, manifests, SBOMs and specs, one line each",
            hint="use one line of printable text (no newline, tab or NUL)",
        )


# Control characters and line/paragraph separators: each would break a line of a lock, a manifest,
# an SBOM or a spec (str.splitlines splits on all of them).
_UNSAFE_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})


def control_character(value: Any, where: str) -> tuple[str, str] | None:
    """The first (key path, character) of a control character in a string, list or table (pure)."""
    if isinstance(value, str):
        char = next((c for c in value if unicodedata.category(c) in _UNSAFE_CATEGORIES), None)
        return (where, char) if char is not None else None
    if isinstance(value, list):
        for n, item in enumerate(value):
            if found := control_character(item, f"{where}[{n}]"):
                return found
    if isinstance(value, dict):
        for name, item in value.items():
            if control_character(name, where) is not None:
                return control_character(name, f"{where} (a name in it)")
            if found := control_character(item, f"{where}.{name}"):
                return found
    return None


def validate(raw: dict[str, Any], path: Path) -> None:
    """Raise ProfileError for the first unknown key, wrong type, bad requirement or unknown target."""
    allowed = [*TOP_LEVEL, *SECTIONS]
    for name, value in raw.items():
        if name in TOP_LEVEL:
            _check(BY_DOTTED[name], value, path)
        elif name in SECTIONS:
            if not isinstance(value, dict):
                raise ProfileError(f"{path}: key '{name}' must be a table, got {_show(value)}")
            names = [k.name for k in keys_of(name)]
            for sub, subvalue in value.items():
                if sub not in names:
                    raise ProfileError(
                        f"{path}: unknown key '{name}.{sub}'",
                        hint=_suggest(sub, names) or f"allowed: {', '.join(names)}",
                    )
                _check(BY_DOTTED[f"{name}.{sub}"], subvalue, path)
        else:
            raise ProfileError(f"{path}: unknown key '{name}'", hint=_suggest(name, allowed))
    for key in ("requirements", "overrides"):
        for req in raw.get("packages", {}).get(key, []):
            try:
                Requirement(req)
            except InvalidRequirement as exc:
                raise ProfileError(
                    f"{path}: key 'packages.{key}': invalid requirement '{req}': {exc}"
                ) from None
    _validate_program(raw.get("program", {}), path)
    _validate_indexes(raw.get("indexes", {}), path)
    _validate_paths(raw, path)
    target = raw.get("target", {}).get("name")
    if target is not None and target not in TARGETS:
        raise ProfileError(
            f"{path}: key 'target.name': unknown target '{target}'",
            hint=_suggest(target, list(TARGETS)) or f"known: {', '.join(sorted(TARGETS))}",
        )


_FUNCTION = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")
PROGRAM_ENTRIES = ("console-script", "function", "script")


# Keys that name files of the project: relative to the project folder (the one holding profiles/),
# so that one profile works on every machine of a team and on every runner of the release matrix.
PATH_KEYS = ("program.script", "program.datas", "bench.input-file", "bench.config", "bench.checkpoint",
             "freeze.entitlements")  # fmt: skip


def project_path_problem(value: str) -> str | None:
    """Why `value` is not a path inside the project, relative to its folder, or None (pure)."""
    if (
        PurePosixPath(value).is_absolute()
        or PureWindowsPath(value).is_absolute()
        or PureWindowsPath(value).drive
    ):
        return "is an absolute path, which exists on one machine only"
    if value.startswith("~"):
        return "starts with ~, a home folder of one machine"
    if ".." in PurePosixPath(value.replace("\\", "/")).parts:
        return "leaves the project (..)"
    return None


def _validate_paths(raw: dict[str, Any], path: Path) -> None:
    for dotted in PATH_KEYS:
        section, _, name = dotted.partition(".")
        value = raw.get(section, {}).get(name)
        for item in value if isinstance(value, list) else [value] if value is not None else []:
            problem = project_path_problem(item)
            if problem:
                raise ProfileError(
                    f"{path}: key '{dotted}' must be a path inside the project, relative to its folder: "
                    f"{item!r} {problem}",
                    hint="write it relative to the folder holding profiles/ (a symlink there may point "
                    "to a folder elsewhere on each machine)",
                )


def _validate_program(program: dict[str, Any], path: Path) -> None:
    """[program]: one entry at most, each in its own form (where it exists is checked at freeze)."""
    named = [k for k in PROGRAM_ENTRIES if k in program]
    if len(named) > 1:
        raise ProfileError(
            f"{path}: keys 'program.{named[0]}' and 'program.{named[1]}' both name the program",
            hint="keep one of them",
        )
    if "function" in program and not _FUNCTION.fullmatch(program["function"]):
        raise ProfileError(
            f"{path}: key 'program.function' must be 'module:function', got {program['function']!r}",
            hint='e.g. function = "my_app.worker:main"',
        )
    if "name" in program and not NAME.fullmatch(program["name"]):
        raise ProfileError(
            f"{path}: key 'program.name' must be a file name of letters, digits, '.', '_' and '-', "
            f"got {program['name']!r}"
        )


_INDEX_URL = re.compile(r"(https?|file)://[^\s/]*/\S*")


def _validate_indexes(indexes: dict[str, Any], path: Path) -> None:
    """An index is a URL: uv takes anything else for a relative path and reports every
    package 'not found', which reads like a resolution failure."""
    for key in ("index-url", "extra-index-urls", "torch-index"):
        value = indexes.get(key)
        for url in value if isinstance(value, list) else [value] if value is not None else []:
            if not _INDEX_URL.fullmatch(url):
                raise ProfileError(
                    f"{path}: key 'indexes.{key}' must be an http(s):// or file:// URL, got {url!r}",
                    hint='e.g. "https://pypi.org/simple"',
                )


def merge(parent: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """The child's settings over the parent's, by each key's merge rule (see schema.Key.merge).

    `extends` and `description` are not inherited.
    """
    out: dict[str, Any] = {k: dict(v) for k, v in parent.items() if k in SECTIONS}
    for section, values in child.items():
        if section not in SECTIONS:
            out[section] = values
            continue
        merged = out.setdefault(section, {})
        for name, value in values.items():
            rule = BY_DOTTED[f"{section}.{name}"].merge
            if rule == "requirements":
                merged[name] = _merge_requirements(merged.get(name, []), value)
            elif rule == "excludes":  # "!name" takes back a parent's exclude
                merged[name] = list(apply_layer(dict.fromkeys(merged.get(name, []), ""), value, ""))
            elif rule == "add":
                merged[name] = list(dict.fromkeys([*merged.get(name, []), *value]))
            elif rule == "update":
                merged[name] = {**merged.get(name, {}), **value}
            else:
                merged[name] = value
    return out


def _merge_requirements(parent: list[str], child: list[str]) -> list[str]:
    child_names = {canonicalize_name(Requirement(r).name) for r in child}
    kept = [r for r in parent if canonicalize_name(Requirement(r).name) not in child_names]
    return kept + child


def profile_names(profiles_dir: Path) -> list[str]:
    """The profiles that are built: every `*.toml` but the `_` bases."""
    return sorted(p.stem for p in profiles_dir.glob("*.toml") if not p.stem.startswith(BASE_PREFIX))


def _read_raw(
    name: str, profiles_dir: Path, referrer: tuple[Path, str] | None
) -> tuple[Path, dict[str, Any]]:
    where = f"{referrer[0]}: key '{referrer[1]}': " if referrer else ""
    if not NAME.fullmatch(name) or name.startswith("."):
        raise ProfileError(
            f"{where}profile name {name!r} is not a name",
            hint="use letters, digits, '.', '_' and '-' (at most 100); profiles live in profiles/",
        )
    path = profiles_dir / f"{name}.toml"
    if not os.path.lexists(path):  # a broken link or a loop is there: read_bounded names it
        known = profile_names(profiles_dir)
        hint = _suggest(name, known) or (f"known: {', '.join(known)}" if known else None)
        raise ProfileError(f"{where}no profile '{name}' in {profiles_dir}", hint=hint)
    text = decode_profile(read_bounded(path, "profile", MAX_PROFILE_BYTES, wrong_kind=ProfileError), path)
    raw = parse_toml(text, path)
    validate(raw, path)
    return path, raw


def load_profile(name: str, profiles_dir: Path) -> Profile:
    path, raw = _read_raw(name, profiles_dir, None)
    chain = [name]
    paths = [path]
    layers = [raw]
    current_path, current = path, raw
    while "extends" in current:
        parent_name = current["extends"]
        if parent_name in chain:
            cycle = " -> ".join([*chain, parent_name])
            raise ProfileError(f"{current_path}: key 'extends': circular extends {cycle}")
        current_path, current = _read_raw(parent_name, profiles_dir, (current_path, "extends"))
        chain.append(parent_name)
        paths.append(current_path)
        layers.append(current)
    settings: dict[str, Any] = {}
    for layer in reversed(layers):
        settings = merge(settings, layer)
    origins = exclude_origins(list(zip(chain, paths, layers, strict=True)))
    # The program is named once: the nearest profile that names an entry replaces its parents'.
    nearest: dict[str, Any] = next(
        (layer["program"] for layer in layers if set(layer.get("program", {})) & set(PROGRAM_ENTRIES)), {}
    )
    for entry in PROGRAM_ENTRIES:
        if entry not in nearest:
            settings.get("program", {}).pop(entry, None)
    for key in KEYS:
        if key.required:
            present = raw.get(key.name) if not key.section else settings.get(key.section, {}).get(key.name)
            if present is None:
                raise ProfileError(f"{path}: missing required key '{key.dotted}'")
    return replace(resolve(name, path, raw, tuple(chain), settings), exclude_origins=origins)


def exclude_origins(layers: list[tuple[str, Path, dict[str, Any]]]) -> dict[str, str]:
    """freeze.excludes of a chain (this profile first) as exclude -> the profile that set it; a
    "!name" that takes back nothing its parents exclude is a ProfileError naming its file."""
    origins: dict[str, str] = {}
    for name, path, raw in reversed(layers):
        items = raw.get("freeze", {}).get("excludes", [])
        stray = unmatched_take_backs(origins, items)
        if stray:
            close = difflib.get_close_matches(stray[0][1:], list(origins), n=1)
            raise ProfileError(
                f"{path}: key 'freeze.excludes': {stray[0]!r} takes back an exclude that no profile it "
                "extends sets",
                hint=f"did you mean '!{close[0]}'?" if close else "remove it",
            )
        origins = apply_layer(origins, items, name)
    return origins


def _section(section: str, values: dict[str, Any]) -> Any:
    """One table resolved into its dataclass; keys left out take the table's defaults."""
    kwargs = {}
    for key in keys_of(section):
        if key.name in values:
            v = values[key.name]
            kwargs[key.field] = tuple(v) if isinstance(v, list) else dict(v) if isinstance(v, dict) else v
    return SECTION_TYPES[section](**kwargs)


def resolve(name: str, path: Path, raw: dict[str, Any], chain: tuple[str, ...], s: dict[str, Any]) -> Profile:
    """Settings (merged, validated) into a Profile, refusing combinations that contradict each other."""
    packages = _section("packages", s.get("packages", {}))
    names = {canonicalize_name(Requirement(r).name) for r in packages.requirements}
    both = sorted(names & {canonicalize_name(n) for n in packages.excluded})
    if both:
        raise ProfileError(
            f"{path}: key 'packages.excluded': '{both[0]}' is both required and excluded",
            hint="remove it from one of the two",
        )
    wheelhouse_only = {canonicalize_name(n) for n in packages.from_wheelhouse}
    for req in map(Requirement, packages.requirements):
        if req.url and canonicalize_name(req.name) in wheelhouse_only:
            raise ProfileError(
                f"{path}: key 'packages.requirements': '{req.name} @ {req.url}' is a direct URL, "
                f"but {req.name} is in packages.from-wheelhouse and must come from a wheelhouse",
                hint=f"require it by version, e.g. {req.name}==2.13.0+cpu",
            )
    runtime = _section("runtime", s.get("runtime", {}))
    clash = sorted(set(runtime.env) & set(THREAD_VARIABLES))
    if clash:
        raise ProfileError(
            f"{path}: key 'runtime.env.{clash[0]}' conflicts with key 'runtime.threads'",
            hint=f"set the thread count with runtime.threads (it sets {', '.join(THREAD_VARIABLES)}); "
            f"remove {clash[0]} from runtime.env",
        )
    freeze = _section("freeze", s.get("freeze", {}))
    _check_macos_min(freeze.macos_min_version, TARGETS[s["target"]["name"]], path)
    return Profile(
        name=name,
        path=path,
        description=raw["description"],
        extends=raw.get("extends"),
        chain=chain,
        target=TARGETS[s["target"]["name"]],
        python=s["target"]["python"],
        packages=packages,
        indexes=_section("indexes", s.get("indexes", {})),
        runtime=runtime,
        freeze=freeze,
        bench=_section("bench", s.get("bench", {})),
        program=_section("program", s.get("program", {})),
    )


def _check_macos_min(value: str | None, target: Target, path: Path) -> None:
    """freeze.macos-min-version: only for mac targets, and never below the target's own minimum
    (the lock resolves wheels for that one; torch's decide it)."""
    if value is None:
        return
    if target.macos_min is None:
        raise ProfileError(
            f"{path}: key 'freeze.macos-min-version' is for mac targets, not {target.name}",
            hint="remove it from this profile",
        )
    as_tuple = [tuple(int(x) for x in (v + ".0.0").split(".")[:3]) for v in (value, target.macos_min)]
    if as_tuple[0] < as_tuple[1]:
        raise ProfileError(
            f"{path}: key 'freeze.macos-min-version' is {value}, below {target.name}'s minimum {target.macos_min}",
            hint=f"use {target.macos_min} or later (the locked wheels need it), or leave the key out",
        )


def load_all(profiles_dir: Path) -> list[Profile]:
    names = profile_names(profiles_dir)
    if not names:
        raise ProfileError(f"no profiles (*.toml) in {profiles_dir}")
    return [load_profile(n, profiles_dir) for n in names]
