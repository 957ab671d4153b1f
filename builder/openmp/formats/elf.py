"""ELF (Linux): DT_NEEDED, DT_RPATH/DT_RUNPATH with $ORIGIN, dynamic symbols with GNU versions."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from builder.errors import InputError
from builder.openmp.formats import Dependencies, Import, Resolved, SearchContext, Symbols, text

if TYPE_CHECKING:
    import lief
_ORIGIN = re.compile(r"\$(ORIGIN\b|\{ORIGIN\})")


def expand_origin(entry: str, binary: Path) -> Path:
    """`$ORIGIN` is the folder of the object that holds the entry.

    >>> expand_origin("$ORIGIN/../../scikit_learn.libs", Path("/sp/sklearn/ext/a.so")).as_posix()
    '/sp/sklearn/ext/../../scikit_learn.libs'
    """
    return Path(_ORIGIN.sub(binary.parent.as_posix(), entry))


def search_dirs(deps: Dependencies, binary: Path) -> list[tuple[Path, str]]:
    """glibc's order for one object: DT_RPATH only when there is no DT_RUNPATH, then DT_RUNPATH.

    (LD_LIBRARY_PATH and the system folders come between/after; they are not part of the tree.)
    """
    dirs: list[tuple[Path, str]] = []
    if not deps.runpath:
        dirs += [(expand_origin(e, binary), "rpath") for e in deps.rpath]
    dirs += [(expand_origin(e, binary), "runpath") for e in deps.runpath]
    return dirs


class ElfFormat:
    name = "elf"

    def sniff(self, head: bytes) -> bool:
        return head[:4] == b"\x7fELF"

    def _parse(self, path: Path, *, symbols: bool) -> lief.ELF.Binary:
        from builder.openmp.formats.lieflib import lief

        config = lief.ELF.ParserConfig()
        config.parse_symtab_symbols = False
        config.parse_relocations = False
        config.parse_notes = False
        config.parse_overlay = False
        config.parse_dyn_symbols = symbols
        config.parse_symbol_versions = symbols
        binary = lief.ELF.parse(str(path), config)
        if binary is None:
            raise InputError(f"{path}: not a readable ELF file")
        return binary

    def dependencies(self, path: Path) -> tuple[Dependencies, ...]:
        from builder.openmp.formats.lieflib import lief

        tag = lief.ELF.DynamicEntry.TAG
        b = self._parse(path, symbols=False)
        needed: list[str] = []
        rpath: list[str] = []
        runpath: list[str] = []
        soname: str | None = None
        for entry in b.dynamic_entries:
            if entry.tag == tag.NEEDED and isinstance(entry, lief.ELF.DynamicEntryLibrary):
                needed.append(text(entry.name))
            elif entry.tag == tag.RPATH and isinstance(entry, lief.ELF.DynamicEntryRpath):
                rpath += [p for p in text(entry.rpath).split(":") if p]
            elif entry.tag == tag.RUNPATH and isinstance(entry, lief.ELF.DynamicEntryRunPath):
                runpath += [p for p in text(entry.runpath).split(":") if p]
            elif entry.tag == tag.SONAME and isinstance(entry, lief.ELF.DynamicSharedObject):
                soname = text(entry.name)
        arch = b.header.machine_type.name.lower()
        return (
            Dependencies(
                format=self.name,
                arch=arch,
                needed=tuple(needed),
                rpath=tuple(rpath),
                runpath=tuple(runpath),
                soname=soname,
            ),
        )

    def symbols(self, path: Path, arch: str) -> Symbols:
        from builder.openmp.formats.lieflib import lief

        b = self._parse(path, symbols=True)
        # A versioned import names its version; the verneed entry names the file that must define it.
        version_file = {
            text(aux.name): text(req.name)
            for req in b.symbols_version_requirement
            for aux in req.get_auxiliary_symbols()
        }
        imports: list[Import] = []
        exports: set[tuple[str, str | None]] = set()
        for sym in b.dynamic_symbols:
            name = text(sym.name)
            if not name:
                continue
            sv = sym.symbol_version
            aux = sv.symbol_version_auxiliary if sv is not None and sv.has_auxiliary_version else None
            version = text(aux.name) if aux is not None else None
            if sym.shndx == 0:  # undefined: an import
                weak = sym.binding == lief.ELF.Symbol.BINDING.WEAK
                imports.append(
                    Import(name=name, version=version, library=version_file.get(version or ""), weak=weak)
                )
            elif sym.binding in (lief.ELF.Symbol.BINDING.GLOBAL, lief.ELF.Symbol.BINDING.WEAK):
                exports.add((name, version))
                exports.add((name, None))  # an unversioned import binds to any version
        defines = {
            text(aux.name)
            for d in b.symbols_version_definition
            if not d.flags & 1  # VER_FLG_BASE names the file itself, not a version
            for aux in list(d.auxiliary_symbols)[:1]
        }
        return Symbols(
            imports=tuple(imports),
            exports=frozenset(exports),
            needs_versions=frozenset((f, v) for v, f in version_file.items()),
            defines_versions=frozenset(defines),
        )

    def resolve(self, binary: Path, deps: Dependencies, request: str, ctx: SearchContext) -> Resolved | None:
        return resolve(binary, deps, request, ctx)


def resolve(binary: Path, deps: Dependencies, request: str, ctx: SearchContext) -> Resolved | None:
    if "/" in request:
        candidate = expand_origin(request, binary)
        return Resolved(path=candidate, how="path") if ctx.exists(candidate) else None
    for folder, how in search_dirs(deps, binary):
        candidate = folder / request
        if ctx.exists(candidate):
            return Resolved(path=candidate, how=how)
    # glibc reuses an already loaded object whose DT_SONAME equals the request.
    hits = (ctx.by_name or {}).get(request.lower(), ())
    if len(hits) == 1:
        return Resolved(path=hits[0], how="soname")
    return None


FORMAT = ElfFormat()
