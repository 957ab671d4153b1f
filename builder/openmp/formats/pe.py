"""PE (Windows): import tables and exports.

The Windows loader looks a DLL up by base name (case-insensitive): a module with that name already
in the process is reused, else the dependent's folder, the folders added by os.add_dll_directory
(torch/lib, delvewheel's <dist>.libs), the system, PATH. There is no rpath to read.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from builder.errors import InputError
from builder.openmp.formats import Dependencies, Import, Resolved, SearchContext, Symbols, text

if TYPE_CHECKING:
    import lief


class PeFormat:
    name = "pe"

    def sniff(self, head: bytes) -> bool:
        return head[:2] == b"MZ"

    def _parse(self, path: Path, *, symbols: bool) -> lief.PE.Binary:
        from builder.openmp.formats.lieflib import lief

        config = lief.PE.ParserConfig()
        config.parse_signature = False
        config.parse_rsrc = False
        config.parse_reloc = False
        config.parse_exports = symbols
        binary = lief.PE.parse(str(path), config)
        if binary is None:
            raise InputError(f"{path}: not a readable PE file")
        return binary

    def dependencies(self, path: Path) -> tuple[Dependencies, ...]:
        b = self._parse(path, symbols=False)
        needed = tuple(text(imp.name) for imp in b.imports)
        export = b.get_export() if b.has_exports else None
        name = text(export.name) if export is not None else None
        return (
            Dependencies(format=self.name, arch=b.header.machine.name.lower(), needed=needed, soname=name),
        )

    def symbols(self, path: Path, arch: str) -> Symbols:
        b = self._parse(path, symbols=True)
        imports = tuple(
            Import(
                name=text(entry.name) if not entry.is_ordinal else f"#{entry.ordinal}", library=text(imp.name)
            )
            for imp in b.imports
            for entry in imp.entries
        )
        exports: set[tuple[str, str | None]] = set()
        export = b.get_export() if b.has_exports else None
        if export is not None:
            for entry in export.entries:
                exports.add((text(entry.name) or f"#{entry.ordinal}", None))
        return Symbols(imports=imports, exports=frozenset(exports))

    def resolve(self, binary: Path, deps: Dependencies, request: str, ctx: SearchContext) -> Resolved | None:
        return resolve(binary, deps, request, ctx)


def resolve(binary: Path, deps: Dependencies, request: str, ctx: SearchContext) -> Resolved | None:
    for folder, how in [(binary.parent, "same-dir"), *((d, "dll-dir") for d in ctx.dll_dirs)]:
        hit = _find_nocase(folder, request, ctx)
        if hit is not None:
            return Resolved(path=hit, how=how)
    # A DLL of that base name anywhere in the tree is reused once something has loaded it.
    hits = (ctx.by_name or {}).get(request.lower(), ())
    if len(hits) == 1:
        return Resolved(path=hits[0], how="name")
    return None


def _find_nocase(folder: Path, name: str, ctx: SearchContext) -> Path | None:
    if ctx.exists(folder / name):
        return folder / name
    for candidate in (ctx.by_name or {}).get(name.lower(), ()):
        if candidate.parent == folder:
            return candidate
    return None


FORMAT = PeFormat()
