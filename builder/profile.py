"""Profiles: `profiles/*.toml` read, validated and resolved into frozen dataclasses.

Reading is split in three pure steps so each failure names its file and key:
  parse (TOML -> dict) -> validate (dict against SCHEMA) -> merge (`extends` chain).
The rest of builder only ever sees `Profile`.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from builder.errors import ProfileError
from builder.targets import TARGETS, Target

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

PRECISIONS = ("highest", "high", "medium")

# --- the schema: the allowed keys, their types and defaults -------------------

Check = Callable[[Any], str | None]  # returns what was expected, or None when fine


def _str(v: Any) -> str | None:
    return None if isinstance(v, str) else "a string"


def _str_list(v: Any) -> str | None:
    ok = isinstance(v, list) and all(isinstance(x, str) for x in v)
    return None if ok else "a list of strings"


def _str_table(v: Any) -> str | None:
    ok = isinstance(v, dict) and all(isinstance(x, str) for x in v.values())
    return None if ok else "a table of strings"


def _threads(v: Any) -> str | None:
    if v == "auto" or (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
        return None
    return 'a positive integer or "auto"'


def _bool(v: Any) -> str | None:
    return None if isinstance(v, bool) else "true or false"


def _pos_int(v: Any) -> str | None:
    ok = isinstance(v, int) and not isinstance(v, bool) and v >= 1
    return None if ok else "a positive integer"


def _pos_number(v: Any) -> str | None:
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
    return None if ok else "a positive number"


def _precision(v: Any) -> str | None:
    return None if v in PRECISIONS else "one of " + ", ".join(f'"{p}"' for p in PRECISIONS)


def _python_version(v: Any) -> str | None:
    ok = isinstance(v, str) and re.fullmatch(r"3\.\d+", v) is not None
    return None if ok else 'a Python version like "3.11"'


TOP_LEVEL: dict[str, Check] = {"description": _str, "extends": _str}
SCHEMA: dict[str, dict[str, Check]] = {
    "target": {"name": _str, "python": _python_version},
    "packages": {
        "requirements": _str_list,
        "only-binary": _str_list,
        # package -> why it is left out for this target (shown by `builder profiles`)
        "excluded": _str_table,
        # packages that must come from a wheelhouse or `indexes.torch-index`, never PyPI
        "from-wheelhouse": _str_list,
    },
    "indexes": {
        "index-url": _str,
        "extra-index-urls": _str_list,
        "find-links": _str_list,
        "torch-index": _str,
    },
    "runtime": {
        "threads": _threads,
        "interop-threads": _pos_int,
        "matmul-precision": _precision,
        "env": _str_table,
    },
    "freeze": {"excludes": _str_list, "drop": _str_list, "strip": _bool, "keep-sources": _bool},
    "bench": {
        "max-startup-seconds": _pos_number,
        "max-seconds-per-chunk": _pos_number,
        "max-size-mb": _pos_number,
        "max-files": _pos_int,
    },
}
REQUIRED = ("description", "target.name", "target.python")


# --- resolved settings --------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Indexes:
    index_url: str = "https://pypi.org/simple"
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    torch_index: str | None = None


@dataclass(frozen=True, kw_only=True)
class RuntimeSettings:
    threads: int | str = "auto"
    interop_threads: int = 1
    matmul_precision: str = "highest"
    env: Mapping[str, str] = field(default_factory=dict)

    def environment(self, host_threads: int) -> dict[str, str]:
        """Variables set before torch is imported (profile's env wins)."""
        n = str(self.resolved_threads(host_threads))
        env = {"OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n}
        env.update(self.env)
        return env

    def resolved_threads(self, host_threads: int) -> int:
        return host_threads if self.threads == "auto" else int(self.threads)


@dataclass(frozen=True, kw_only=True)
class FreezeSettings:
    excludes: tuple[str, ...] = ()  # modules PyInstaller leaves out
    drop: tuple[str, ...] = ()  # fnmatch patterns on paths inside the bundle
    strip: bool = False  # strip --strip-unneeded ELF libraries (Linux targets)
    keep_sources: bool = False  # keep torch's .py files beside the PYZ archive


@dataclass(frozen=True, kw_only=True)
class BenchBudget:
    max_startup_seconds: float | None = None
    max_seconds_per_chunk: float | None = None
    max_size_mb: float | None = None
    max_files: int | None = None


@dataclass(frozen=True, kw_only=True)
class Profile:
    name: str
    path: Path
    description: str
    extends: str | None
    chain: tuple[str, ...]  # this profile first, then what it extends
    target: Target
    python: str
    requirements: tuple[str, ...]
    only_binary: tuple[str, ...]
    excluded: Mapping[str, str]
    from_wheelhouse: tuple[str, ...]
    indexes: Indexes
    runtime: RuntimeSettings
    freeze: FreezeSettings
    bench: BenchBudget

    def lock_inputs(self) -> dict[str, Any]:
        """Everything that changes what `uv pip compile` resolves, and nothing else."""
        return {
            "target": self.target.uv_platform,
            "macos-min": self.target.macos_min,
            "python": self.python,
            "requirements": sorted(self.requirements),
            "only-binary": sorted(self.only_binary),
            "from-wheelhouse": sorted(self.from_wheelhouse),
            "indexes": asdict(self.indexes),
        }

    def lock_hash(self) -> str:
        blob = json.dumps(self.lock_inputs(), sort_keys=True, separators=(",", ":"))
        return "sha256:" + hashlib.sha256(blob.encode()).hexdigest()

    def requirement_names(self) -> list[str]:
        return [canonicalize_name(Requirement(r).name) for r in self.requirements]

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "extends": self.extends,
            "target": self.target.name,
            "platform": self.target.uv_platform,
            "python": self.python,
            "packages": len(self.requirements),
            "excluded": dict(self.excluded),
            "lock_hash": self.lock_hash(),
        }


# --- parse and validate (pure) ------------------------------------------------


def parse_toml(text: str, path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path}: invalid TOML: {exc}") from None


def _suggest(word: str, choices: list[str]) -> str | None:
    close = difflib.get_close_matches(word, choices, n=1)
    return f"did you mean '{close[0]}'?" if close else None


def validate(raw: dict[str, Any], path: Path) -> None:
    """Raise ProfileError for the first unknown key, wrong type or missing key."""
    allowed = list(TOP_LEVEL) + list(SCHEMA)
    for key, value in raw.items():
        if key in TOP_LEVEL:
            _check(TOP_LEVEL[key], value, key, path)
        elif key in SCHEMA:
            if not isinstance(value, dict):
                raise ProfileError(f"{path}: key '{key}' must be a table, got {_show(value)}")
            for sub, subvalue in value.items():
                if sub not in SCHEMA[key]:
                    raise ProfileError(
                        f"{path}: unknown key '{key}.{sub}'",
                        hint=_suggest(sub, list(SCHEMA[key])) or f"allowed: {', '.join(SCHEMA[key])}",
                    )
                _check(SCHEMA[key][sub], subvalue, f"{key}.{sub}", path)
        else:
            raise ProfileError(f"{path}: unknown key '{key}'", hint=_suggest(key, allowed))
    for reqs_key in ("requirements",):
        for req in raw.get("packages", {}).get(reqs_key, []):
            try:
                Requirement(req)
            except InvalidRequirement as exc:
                raise ProfileError(
                    f"{path}: key 'packages.{reqs_key}': invalid requirement '{req}': {exc}"
                ) from None
    name = raw.get("target", {}).get("name")
    if name is not None and name not in TARGETS:
        raise ProfileError(
            f"{path}: key 'target.name': unknown target '{name}'",
            hint=_suggest(name, list(TARGETS)) or f"known: {', '.join(sorted(TARGETS))}",
        )


def _check(check: Check, value: Any, key: str, path: Path) -> None:
    expected = check(value)
    if expected:
        raise ProfileError(f"{path}: key '{key}' must be {expected}, got {_show(value)}")


def _show(value: Any) -> str:
    kind = {bool: "boolean", int: "integer", float: "number", str: "string"}
    return f"{kind.get(type(value), type(value).__name__)} {value!r}"


def merge(parent: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """Child settings win; requirements and excludes add to the parent's.

    A child requirement for a package the parent already names replaces it, so
    an extended profile can re-pin. `extends` and `description` are not inherited.
    """
    out: dict[str, Any] = {k: dict(v) for k, v in parent.items() if k in SCHEMA}
    for section, values in child.items():
        if section not in SCHEMA:
            out[section] = values
            continue
        merged = out.setdefault(section, {})
        for key, value in values.items():
            if (section, key) == ("packages", "requirements"):
                merged[key] = _merge_requirements(merged.get(key, []), value)
            elif (section, key) in {
                ("freeze", "excludes"),
                ("freeze", "drop"),
                ("packages", "from-wheelhouse"),
            }:
                merged[key] = list(dict.fromkeys([*merged.get(key, []), *value]))
            elif isinstance(value, dict):
                merged[key] = {**merged.get(key, {}), **value}
            else:
                merged[key] = value
    return out


def _merge_requirements(parent: list[str], child: list[str]) -> list[str]:
    child_names = {canonicalize_name(Requirement(r).name) for r in child}
    kept = [r for r in parent if canonicalize_name(Requirement(r).name) not in child_names]
    return kept + child


# --- loading from disk --------------------------------------------------------


def profile_names(profiles_dir: Path) -> list[str]:
    return sorted(p.stem for p in profiles_dir.glob("*.toml"))


def _read_raw(
    name: str, profiles_dir: Path, referrer: tuple[Path, str] | None
) -> tuple[Path, dict[str, Any]]:
    path = profiles_dir / f"{name}.toml"
    if not path.is_file():
        known = profile_names(profiles_dir)
        hint = _suggest(name, known) or (f"known: {', '.join(known)}" if known else None)
        if referrer:
            raise ProfileError(
                f"{referrer[0]}: key '{referrer[1]}': no profile '{name}' in {profiles_dir}", hint=hint
            )
        raise ProfileError(f"no profile '{name}' in {profiles_dir}", hint=hint)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{path}: cannot read: {exc}") from None
    raw = parse_toml(text, path)
    validate(raw, path)
    return path, raw


def load_profile(name: str, profiles_dir: Path) -> Profile:
    path, raw = _read_raw(name, profiles_dir, None)
    chain = [name]
    merged_parents: list[dict[str, Any]] = []
    current_path, current = path, raw
    while "extends" in current:
        parent_name = current["extends"]
        if parent_name in chain:
            cycle = " -> ".join([*chain, parent_name])
            raise ProfileError(f"{current_path}: key 'extends': circular extends {cycle}")
        current_path, current = _read_raw(parent_name, profiles_dir, (current_path, "extends"))
        chain.append(parent_name)
        merged_parents.append(current)
    settings: dict[str, Any] = {}
    for layer in reversed([raw, *merged_parents]):
        settings = merge(settings, layer)
    for dotted in REQUIRED:
        section, _, key = dotted.partition(".")
        present = raw.get(section) if not key else settings.get(section, {}).get(key)
        if present is None:
            raise ProfileError(f"{path}: missing required key '{dotted}'")
    return _resolve(name, path, raw, tuple(chain), settings)


def _resolve(
    name: str, path: Path, raw: dict[str, Any], chain: tuple[str, ...], s: dict[str, Any]
) -> Profile:
    pk, ix, rt = s.get("packages", {}), s.get("indexes", {}), s.get("runtime", {})
    requirements = tuple(pk.get("requirements", []))
    names = {canonicalize_name(Requirement(r).name) for r in requirements}
    excluded = pk.get("excluded", {})
    both = sorted(names & {canonicalize_name(n) for n in excluded})
    if both:
        raise ProfileError(
            f"{path}: key 'packages.excluded': '{both[0]}' is both required and excluded",
            hint="remove it from one of the two",
        )
    bench = s.get("bench", {})
    fz = s.get("freeze", {})
    return Profile(
        name=name,
        path=path,
        description=raw["description"],
        extends=raw.get("extends"),
        chain=chain,
        target=TARGETS[s["target"]["name"]],
        python=s["target"]["python"],
        requirements=requirements,
        only_binary=tuple(pk.get("only-binary", [":all:"])),
        excluded=dict(excluded),
        from_wheelhouse=tuple(pk.get("from-wheelhouse", [])),
        indexes=Indexes(
            index_url=ix.get("index-url", Indexes.index_url),
            extra_index_urls=tuple(ix.get("extra-index-urls", [])),
            find_links=tuple(ix.get("find-links", [])),
            torch_index=ix.get("torch-index"),
        ),
        runtime=RuntimeSettings(
            threads=rt.get("threads", "auto"),
            interop_threads=rt.get("interop-threads", 1),
            matmul_precision=rt.get("matmul-precision", "highest"),
            env=dict(rt.get("env", {})),
        ),
        freeze=FreezeSettings(
            excludes=tuple(fz.get("excludes", [])),
            drop=tuple(fz.get("drop", [])),
            strip=fz.get("strip", False),
            keep_sources=fz.get("keep-sources", False),
        ),
        bench=BenchBudget(
            max_startup_seconds=bench.get("max-startup-seconds"),
            max_seconds_per_chunk=bench.get("max-seconds-per-chunk"),
            max_size_mb=bench.get("max-size-mb"),
            max_files=bench.get("max-files"),
        ),
    )


def load_all(profiles_dir: Path) -> list[Profile]:
    names = profile_names(profiles_dir)
    if not names:
        raise ProfileError(f"no profiles (*.toml) in {profiles_dir}")
    return [load_profile(n, profiles_dir) for n in names]
