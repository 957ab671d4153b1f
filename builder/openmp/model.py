"""Records of an OpenMP audit, plan and fix. Frozen, JSON-able, paths relative to the audited root."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import PurePath
from typing import TYPE_CHECKING, Any, ClassVar, Literal, cast

from builder.contract import OPENMP_FAMILIES, SHARED_LIBRARY

Family = Literal["gnu", "llvm", "intel", "msvc"]
# The families and their file names (libgomp-e985bcbb.so.1.0.0, libiomp5md.dll, vcomp140.dll,
# libomp140.x86_64.dll ...) are the contract's, shared with the runtime's own report.
FAMILY_NAMES: dict[str, str] = {fid: name for fid, name, _ in OPENMP_FAMILIES}


def family_of(file_name: str) -> Family | None:
    """The OpenMP family a file belongs to, or None: the one function that names it (a file name,
    or a path, whose last part is taken, as threadpoolctl and the OS report loaded files).

    >>> family_of("libgomp-e985bcbb.so.1.0.0"), family_of("libiomp5md.dll"), family_of("/usr/lib/libomp.dylib")
    ('gnu', 'intel', 'llvm')
    >>> family_of("vcomp140.dll"), family_of("libompitrace.so"), family_of("libgomp.py")
    ('msvc', None, None)
    """
    name = re.split(r"[\\/]", file_name)[-1]
    if not SHARED_LIBRARY.search(name):
        return None
    for family, _, pattern in OPENMP_FAMILIES:
        if pattern.match(name):
            return cast(Family, family)
    return None


def family_name(file_name: str) -> str | None:
    """The family's display name (the contract's), as reports print it: 'GNU libgomp' ...

    >>> family_name("libgomp-a34b3233.so.1.0.0"), family_name("libgompx.so")
    ('GNU libgomp', None)
    """
    family = family_of(file_name)
    return FAMILY_NAMES[family] if family else None


def _plain(value: Any) -> Any:
    if isinstance(value, PurePath):
        return value.as_posix()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class JsonRecord:
    if TYPE_CHECKING:
        # Every subclass is a dataclass; this makes the mixin one for asdict's signature.
        __dataclass_fields__: ClassVar[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        plain: dict[str, Any] = _plain(asdict(self))
        return plain


@dataclass(frozen=True, kw_only=True)
class OpenMPLibrary(JsonRecord):
    """One OpenMP library file on disk (a real file; symlinks to it are listed in `names`).

    Not "Runtime": that is the program under test. The JSON keys (`runtimes`, a load's `runtime`)
    stay as published.
    """

    path: str  # real path, relative to the audited root
    family: Family
    size: int
    sha256: str
    names: tuple[str, ...]  # every path in the tree that is, or links to, this file

    @property
    def family_name(self) -> str:
        return FAMILY_NAMES[self.family]


@dataclass(frozen=True, kw_only=True)
class Load(JsonRecord):
    """`binary` asks for `request` and the loader finds `runtime` (a real path) by `how`."""

    binary: str
    arch: str
    request: str
    runtime: str
    via: str  # the path that satisfied the request (may be a symlink to `runtime`)
    how: str  # runpath, rpath, loader_path, rpath-entry, same-dir, dll-dir, soname, name


@dataclass(frozen=True, kw_only=True)
class AuditReport(JsonRecord):
    root: str
    kind: str  # venv, site-packages, frozen, folder
    formats: tuple[str, ...]  # binary formats seen: elf, macho, pe
    binaries: int  # binaries read
    runtimes: tuple[OpenMPLibrary, ...]
    loads: tuple[Load, ...]  # only loads of OpenMP runtimes
    torch_core: str | None  # libtorch_cpu / torch_cpu.dll
    primary: str | None  # the runtime torch_core loads
    primary_reason: str
    unresolved: tuple[tuple[str, str], ...]  # (binary, request) OpenMP requests found nowhere in the tree

    def library(self, path: str) -> OpenMPLibrary:
        return next(r for r in self.runtimes if r.path == path)

    def users(self, runtime_path: str) -> tuple[str, ...]:
        return tuple(sorted({load.binary for load in self.loads if load.runtime == runtime_path}))

    @property
    def duplicates(self) -> tuple[OpenMPLibrary, ...]:
        return tuple(r for r in self.runtimes if r.path != self.primary)


ActionKind = Literal["symlink"]


@dataclass(frozen=True, kw_only=True)
class Action(JsonRecord):
    """Replace `path` by a relative symlink `link` (-> primary), keeping the file name."""

    kind: ActionKind
    path: str
    link: str
    primary: str
    users: tuple[str, ...]
    symbols_checked: int
    sha256_before: str
    size_before: int


@dataclass(frozen=True, kw_only=True)
class Refusal(JsonRecord):
    path: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class Plan(JsonRecord):
    root: str
    primary: str | None
    actions: tuple[Action, ...]
    refusals: tuple[Refusal, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.refusals

    @property
    def empty(self) -> bool:
        return not self.actions


@dataclass(frozen=True, kw_only=True)
class Change(JsonRecord):
    kind: ActionKind
    path: str
    link: str
    sha256_before: str
    size_before: int
