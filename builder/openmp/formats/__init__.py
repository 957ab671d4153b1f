"""Binary formats behind one Protocol: read dependencies, search paths and symbols without running anything.

One module per format (ELF, Mach-O, PE), all read with LIEF (imported when a file is parsed, see
lieflib). Each also resolves a dependency request the way its platform's loader does, against the
audited tree only: a foreign target's system folders are not on this host, so a request found
nowhere in the tree is reported, not guessed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


def text(value: str | bytes) -> str:
    """LIEF's names are typed str | bytes; binaries with undecodable names come back as bytes."""
    return value if isinstance(value, str) else value.decode("utf-8", "surrogateescape")


@dataclass(frozen=True, kw_only=True)
class Dependencies:
    """What one binary (one architecture slice of it) asks the loader for."""

    format: str  # elf, macho, pe
    arch: str
    needed: tuple[str, ...]  # DT_NEEDED / LC_LOAD_*DYLIB / PE imports, as written
    rpath: tuple[str, ...] = ()  # DT_RPATH / LC_RPATH, as written
    runpath: tuple[str, ...] = ()  # DT_RUNPATH
    soname: str | None = None  # DT_SONAME / LC_ID_DYLIB


@dataclass(frozen=True, kw_only=True)
class Import:
    name: str
    version: str | None = None  # GNU symbol version (ELF)
    library: str | None = None  # the request it binds to, when the format says (verneed, ordinal, PE)
    weak: bool = False  # a missing weak import is allowed by the loader


@dataclass(frozen=True, kw_only=True)
class Symbols:
    imports: tuple[Import, ...]
    exports: frozenset[tuple[str, str | None]]  # (name, version); unversioned as (name, None)
    # GNU versioning: glibc refuses to load when a version that a file must define is missing,
    # even if no symbol uses it.
    needs_versions: frozenset[tuple[str, str]] = frozenset()  # (file as requested, version)
    defines_versions: frozenset[str] = frozenset()

    def provides(self, imp: Import) -> bool:
        return (imp.name, imp.version) in self.exports


@dataclass(frozen=True, kw_only=True)
class SearchContext:
    """What the loader would see, for one audited tree."""

    root: Path
    exists: Callable[[Path], bool]
    executable_dir: Path | None = None  # @executable_path (a frozen app's folder)
    dll_dirs: tuple[Path, ...] = ()  # folders packages add with os.add_dll_directory
    by_name: Mapping[str, tuple[Path, ...]] | None = None  # lower-cased file/soname -> runtime paths


@dataclass(frozen=True, kw_only=True)
class Resolved:
    path: Path  # the path the loader opens (may be a symlink)
    how: str


class BinaryFormat(Protocol):
    name: str

    def sniff(self, head: bytes) -> bool:
        """True when the first 8 bytes of a file are this format's magic."""
        ...

    def dependencies(self, path: Path) -> tuple[Dependencies, ...]:
        """One record per architecture slice."""
        ...

    def symbols(self, path: Path, arch: str) -> Symbols: ...

    def resolve(
        self, binary: Path, deps: Dependencies, request: str, ctx: SearchContext
    ) -> Resolved | None: ...


def _formats() -> tuple[BinaryFormat, ...]:
    from builder.openmp.formats import elf, macho, pe

    return (elf.FORMAT, macho.FORMAT, pe.FORMAT)


ALL_FORMATS: tuple[BinaryFormat, ...] = _formats()
BY_NAME: dict[str, BinaryFormat] = {f.name: f for f in ALL_FORMATS}


def sniff(path: Path) -> BinaryFormat | None:
    try:
        with path.open("rb") as fh:
            head = fh.read(8)
    except OSError:
        return None
    return next((f for f in ALL_FORMATS if f.sniff(head)), None)
