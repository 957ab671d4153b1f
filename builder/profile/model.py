"""Resolved profiles: frozen dataclasses, one per section, with the schema table's defaults."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from builder.contract import THREAD_ENV
from builder.profile.schema import default
from builder.targets import Target


@dataclass(frozen=True, kw_only=True)
class Packages:
    requirements: tuple[str, ...] = default("packages.requirements")
    only_binary: tuple[str, ...] = default("packages.only-binary")
    from_wheelhouse: tuple[str, ...] = default("packages.from-wheelhouse")
    excluded: Mapping[str, str] = field(default_factory=dict)
    overrides: tuple[str, ...] = default("packages.overrides")


@dataclass(frozen=True, kw_only=True)
class Indexes:
    index_url: str = default("indexes.index-url")
    extra_index_urls: tuple[str, ...] = default("indexes.extra-index-urls")
    find_links: tuple[str, ...] = default("indexes.find-links")
    torch_index: str | None = default("indexes.torch-index")


@dataclass(frozen=True, kw_only=True)
class RuntimeSettings:
    threads: int | str = default("runtime.threads")
    interop_threads: int = default("runtime.interop-threads")
    matmul_precision: str = default("runtime.matmul-precision")
    env: Mapping[str, str] = field(default_factory=dict)

    def environment(self, host_threads: int) -> dict[str, str]:
        """Variables set before torch is imported: the profile's env and the thread variables."""
        return {**self.env, **dict.fromkeys(THREAD_ENV, str(self.resolved_threads(host_threads)))}

    def resolved_threads(self, host_threads: int) -> int:
        return host_threads if self.threads == "auto" else int(self.threads)


@dataclass(frozen=True, kw_only=True)
class FreezeSettings:
    excludes: tuple[str, ...] = default("freeze.excludes")
    drop: tuple[str, ...] = default("freeze.drop")
    trace_add: tuple[str, ...] = default("freeze.trace-add")
    trace_ignore: tuple[str, ...] = default("freeze.trace-ignore")
    strip: bool = default("freeze.strip")
    keep_sources: bool = default("freeze.keep-sources")
    macos_min_version: str | None = default("freeze.macos-min-version")
    codesign_identity: str | None = default("freeze.codesign-identity")
    entitlements: str | None = default("freeze.entitlements")


@dataclass(frozen=True, kw_only=True)
class BenchBudget:
    max_startup_seconds: float | None = default("bench.max-startup-seconds")
    max_seconds_per_chunk: float | None = default("bench.max-seconds-per-chunk")
    max_size_mb: float | None = default("bench.max-size-mb")  # decimal MB, 10**6 bytes
    max_files: int | None = default("bench.max-files")
    # the workload (none: stems' own bench); paths are relative to the project folder
    command: str | None = default("bench.command")
    check_command: str | None = default("bench.check-command")
    tolerance: float | None = default("bench.tolerance")
    input_seconds: float = default("bench.input-seconds")
    input_rate: int = default("bench.input-rate")
    input_channels: int = default("bench.input-channels")
    input_file: str | None = default("bench.input-file")
    config: str | None = default("bench.config")
    checkpoint: str | None = default("bench.checkpoint")


@dataclass(frozen=True, kw_only=True)
class ProgramSettings:
    """What the freeze turns into an executable: the bundled `stems` unless one entry is named."""

    name: str = default("program.name")
    console_script: str | None = default("program.console-script")
    function: str | None = default("program.function")
    script: str | None = default("program.script")
    datas: tuple[str, ...] = default("program.datas")
    collect: tuple[str, ...] = default("program.collect")

    @property
    def bundled(self) -> bool:
        """True for the bundled `stems` (no entry named): the selftest contract applies."""
        return not (self.console_script or self.function or self.script)

    def describe(self) -> str:
        if self.console_script:
            return f"console script {self.console_script}"
        if self.function:
            return f"function {self.function}"
        if self.script:
            return f"script {self.script}"
        return "bundled stems"


# The dataclass each table of a profile resolves into (the schema test checks they match KEYS).
SECTION_TYPES: dict[str, type] = {
    "packages": Packages,
    "indexes": Indexes,
    "program": ProgramSettings,
    "runtime": RuntimeSettings,
    "freeze": FreezeSettings,
    "bench": BenchBudget,
}


@dataclass(frozen=True, kw_only=True)
class Profile:
    name: str
    path: Path
    description: str
    extends: str | None
    chain: tuple[str, ...]  # this profile first, then what it extends
    target: Target
    python: str
    packages: Packages
    indexes: Indexes
    runtime: RuntimeSettings
    freeze: FreezeSettings
    bench: BenchBudget
    program: ProgramSettings = field(default_factory=ProgramSettings)
    # freeze.excludes -> the profile of the chain that set it (a conflict names the file to change)
    exclude_origins: Mapping[str, str] = field(default_factory=dict)

    @property
    def requirements(self) -> tuple[str, ...]:
        return self.packages.requirements

    @property
    def only_binary(self) -> tuple[str, ...]:
        return self.packages.only_binary

    @property
    def from_wheelhouse(self) -> tuple[str, ...]:
        return self.packages.from_wheelhouse

    @property
    def excluded(self) -> Mapping[str, str]:
        return self.packages.excluded

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
            # only when set: locks of profiles without overrides keep their hash
            **({"overrides": sorted(self.packages.overrides)} if self.packages.overrides else {}),
            **({"excluded": sorted(self.excluded)} if self.excluded else {}),
        }

    def lock_hash(self) -> str:
        blob = json.dumps(self.lock_inputs(), sort_keys=True, separators=(",", ":"))
        return "sha256:" + hashlib.sha256(blob.encode()).hexdigest()

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
            "overrides": list(self.packages.overrides),
            "program": {"name": self.program.name, "entry": self.program.describe()},
            "lock_hash": self.lock_hash(),
        }
