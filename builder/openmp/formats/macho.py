"""Mach-O (macOS), thin and fat: LC_LOAD_*DYLIB, LC_RPATH, @loader_path/@rpath/@executable_path."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from builder.errors import InputError
from builder.openmp.formats import Dependencies, Import, Resolved, SearchContext, Symbols, text

if TYPE_CHECKING:
    import lief

# Thin 32/64-bit in either byte order, and the fat header (0xcafebabe, also Java's class magic:
# a fat header's architecture count is small, a class file's version is not).
_THIN = {b"\xfe\xed\xfa\xce", b"\xce\xfa\xed\xfe", b"\xfe\xed\xfa\xcf", b"\xcf\xfa\xed\xfe"}
_FAT = {b"\xca\xfe\xba\xbe", b"\xca\xfe\xba\xbf"}
# Special two-level-namespace ordinals: 0 self, -1 main executable, -2 flat lookup, -3 weak lookup.
_SPECIAL_ORDINALS = {0, 0xFF, 0xFE, 0xFD, -1, -2, -3}


def expand(entry: str, binary: Path, executable_dir: Path | None) -> Path | None:
    """Expand @loader_path / @executable_path; None when the executable is unknown.

    >>> expand("@loader_path/../.dylibs/libomp.dylib", Path("/sp/sklearn/ext/a.so"), None).as_posix()
    '/sp/sklearn/ext/../.dylibs/libomp.dylib'
    >>> expand("@executable_path/x.dylib", Path("/a/b.so"), None) is None
    True
    """
    if entry.startswith("@loader_path"):
        return Path(binary.parent.as_posix() + entry[len("@loader_path") :])
    if entry.startswith("@executable_path"):
        if executable_dir is None:
            return None
        return Path(executable_dir.as_posix() + entry[len("@executable_path") :])
    return Path(entry)


class MachOFormat:
    name = "macho"

    def sniff(self, head: bytes) -> bool:
        if head[:4] in _THIN:
            return True
        return head[:4] in _FAT and 0 < int.from_bytes(head[4:8], "big") < 32

    def _parse(self, path: Path, *, symbols: bool) -> lief.MachO.FatBinary:
        from builder.openmp.formats.lieflib import lief

        config = lief.MachO.ParserConfig.deep if symbols else lief.MachO.ParserConfig.quick
        fat = lief.MachO.parse(str(path), config)
        if fat is None or fat.size == 0:
            raise InputError(f"{path}: not a readable Mach-O file")
        return fat

    def dependencies(self, path: Path) -> tuple[Dependencies, ...]:
        from builder.openmp.formats.lieflib import lief

        loads = _loads()
        out = []
        fat = self._parse(path, symbols=False)  # keep the parent alive: slices borrow from it
        for b in _slices(fat):
            dylibs = [c for c in b.commands if isinstance(c, lief.MachO.DylibCommand)]
            needed = tuple(text(c.name) for c in dylibs if c.command in loads)
            ids = [text(c.name) for c in dylibs if c.command == lief.MachO.LoadCommand.TYPE.ID_DYLIB]
            rpath = tuple(text(c.path) for c in b.commands if isinstance(c, lief.MachO.RPathCommand))
            out.append(
                Dependencies(
                    format=self.name,
                    arch=b.header.cpu_type.name.lower(),
                    needed=needed,
                    rpath=rpath,
                    soname=ids[0] if ids else None,
                )
            )
        return tuple(out)

    def symbols(self, path: Path, arch: str) -> Symbols:
        from builder.openmp.formats.lieflib import lief

        loads_cmd = _loads()
        fat = self._parse(path, symbols=True)
        b = next((s for s in _slices(fat) if s.header.cpu_type.name.lower() == arch), None)
        if b is None:
            raise InputError(f"{path}: no {arch} slice")
        # Two-level namespace: an import's ordinal (1-based) picks the dylib load command it binds to.
        loads = [
            text(c.name)
            for c in b.commands
            if isinstance(c, lief.MachO.DylibCommand) and c.command in loads_cmd
        ]
        imports = []
        for sym in b.imported_symbols:
            ordinal = sym.library_ordinal
            library = (
                loads[ordinal - 1] if ordinal not in _SPECIAL_ORDINALS and 0 < ordinal <= len(loads) else None
            )
            info = sym.binding_info if sym.has_binding_info else None
            weak = bool(info is not None and info.weak_import)
            imports.append(Import(name=text(sym.name), library=library, weak=weak))
        exports: frozenset[tuple[str, str | None]] = frozenset(
            (text(sym.name), None) for sym in b.exported_symbols
        )
        return Symbols(imports=tuple(imports), exports=exports)

    def resolve(self, binary: Path, deps: Dependencies, request: str, ctx: SearchContext) -> Resolved | None:
        return resolve(binary, deps, request, ctx)


def _loads() -> frozenset[lief.MachO.LoadCommand.TYPE]:
    """The load commands that make dyld open another dylib (LC_ID_DYLIB names the file itself)."""
    from builder.openmp.formats.lieflib import lief

    cmd = lief.MachO.LoadCommand.TYPE
    return frozenset(
        {cmd.LOAD_DYLIB, cmd.LOAD_WEAK_DYLIB, cmd.REEXPORT_DYLIB, cmd.LOAD_UPWARD_DYLIB, cmd.LAZY_LOAD_DYLIB}
    )


def _slices(fat: lief.MachO.FatBinary) -> list[lief.MachO.Binary]:
    slices = [fat.at(i) for i in range(fat.size)]
    return [s for s in slices if s is not None]


def resolve(binary: Path, deps: Dependencies, request: str, ctx: SearchContext) -> Resolved | None:
    """dyld's lookup for one request. @rpath tries the binary's own LC_RPATH entries in order.

    (dyld also tries the LC_RPATHs of the images that loaded this one; wheels do not rely on that.)
    """
    if request.startswith("@rpath/"):
        rest = request[len("@rpath/") :]
        for entry in deps.rpath:
            folder = expand(entry, binary, ctx.executable_dir)
            if folder is not None and ctx.exists(folder / rest):
                return Resolved(path=folder / rest, how="rpath-entry")
        return None
    candidate = expand(request, binary, ctx.executable_dir)
    if candidate is None:
        return None
    if request.startswith("@"):
        how = "loader_path" if request.startswith("@loader_path") else "executable_path"
        return Resolved(path=candidate, how=how) if ctx.exists(candidate) else None
    # An absolute install name refers to the target machine, not to this host; inside the tree only.
    try:
        candidate.relative_to(ctx.root)
    except ValueError:
        return None
    return Resolved(path=candidate, how="path") if ctx.exists(candidate) else None


FORMAT = MachOFormat()
