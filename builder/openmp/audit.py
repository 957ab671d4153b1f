"""Static audit: every OpenMP runtime in a tree, who loads which copy, and which one torch loads."""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from builder.errors import InputError
from builder.fsutil import iter_files, sha256_file
from builder.openmp.formats import BY_NAME, Dependencies, SearchContext, sniff
from builder.openmp.model import AuditReport, Load, OpenMPLibrary, family_of

TORCH_CORE_NAMES = frozenset({"libtorch_cpu.so", "libtorch_cpu.dylib", "torch_cpu.dll"})


@dataclass(frozen=True, kw_only=True)
class Layout:
    """Where to look, and what the loader knows about the tree's place in a process."""

    root: Path
    kind: str
    scan: tuple[Path, ...]
    executable_dir: Path | None = None


def layout(path: Path) -> Layout:
    root = path.resolve()
    if not root.is_dir():
        raise InputError(
            f"{path}: not a folder", hint="give a venv, site-packages, a frozen folder or a --target folder"
        )
    if (root / "pyvenv.cfg").is_file():
        scan = sorted(root.glob("lib/python*/site-packages")) + sorted(root.glob("Lib/site-packages"))
        if not scan:
            raise InputError(f"{path}: a venv without site-packages")
        return Layout(root=root, kind="venv", scan=tuple(scan))
    if (root / "_internal").is_dir() or (root / "base_library.zip").is_file():
        # PyInstaller onedir: the executable sits in root, so @executable_path is root.
        return Layout(root=root, kind="frozen", scan=(root,), executable_dir=root)
    kind = "site-packages" if root.name == "site-packages" else "folder"
    return Layout(root=root, kind=kind, scan=(root,))


def _dll_dirs(scan: tuple[Path, ...]) -> tuple[Path, ...]:
    """Folders that packages add with os.add_dll_directory on Windows (torch, delvewheel)."""
    dirs: list[Path] = []
    for base in scan:
        dirs += [d for d in [base / "torch" / "lib"] if d.is_dir()]
        dirs += sorted(d for d in base.glob("*.libs") if d.is_dir())
        dirs += sorted(d for d in base.glob("*/.libs") if d.is_dir())
    return tuple(dirs)


def _walk(scan: tuple[Path, ...]) -> tuple[list[Path], list[Path]]:
    """(regular files, symlinks) under the scan folders, in a stable order; links are not followed."""
    files: list[Path] = []
    links: list[Path] = []
    for base in scan:
        for p in iter_files(base):
            if p.is_symlink():
                if not p.is_dir():  # a link to a folder is not a library
                    links.append(p)
            else:
                files.append(p)
    return files, links


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


Binaries = dict[Path, tuple[str, tuple[Dependencies, ...]]]


def _read_binaries(files: list[Path]) -> Binaries:
    """Every file with a binary format's magic, with its dependencies (one entry per slice)."""
    binaries: Binaries = {}
    for f in files:
        fmt = sniff(f)
        if fmt is None:
            continue
        try:
            binaries[f] = (fmt.name, fmt.dependencies(f))
        except Exception:  # noqa: BLE001 - a file with a magic but unreadable body is not a binary to us
            continue
    return binaries


def _libraries(
    files: list[Path], links: list[Path], binaries: Binaries, root: Path
) -> tuple[dict[Path, list[Path]], dict[Path, OpenMPLibrary]]:
    """Real files named like an OpenMP library, with every name (symlink) that reaches them."""
    names: dict[Path, list[Path]] = defaultdict(list)
    for p in [*files, *links]:
        if family_of(p.name) is None:
            continue
        real = Path(os.path.realpath(p))
        if real in binaries or (p.is_symlink() and real.exists() and sniff(real) is not None):
            names[real].append(p)
    libraries: dict[Path, OpenMPLibrary] = {}
    for real, ps in sorted(names.items()):
        family = family_of(real.name) or family_of(ps[0].name)
        assert family is not None
        libraries[real] = OpenMPLibrary(
            path=_rel(real, root),
            family=family,
            size=real.stat().st_size,
            sha256=sha256_file(real),
            names=tuple(sorted(_rel(p, root) for p in ps)),
        )
    return names, libraries


def _search_context(lay: Layout, names: dict[Path, list[Path]], binaries: Binaries) -> SearchContext:
    """What the loaders search: each library by its file names and its own soname."""
    by_name: dict[str, list[Path]] = defaultdict(list)
    for real, ps in names.items():
        keys = {p.name.lower() for p in ps}
        for dep in binaries.get(real, ("", ()))[1]:
            if dep.soname and "/" not in dep.soname:
                keys.add(dep.soname.lower())
        for key in keys:
            by_name[key].append(next((p for p in ps if p.name.lower() == key), real))
    return SearchContext(
        root=lay.root,
        exists=os.path.exists,
        executable_dir=lay.executable_dir,
        dll_dirs=_dll_dirs(lay.scan),
        by_name={k: tuple(v) for k, v in by_name.items()},
    )


def _loads(
    binaries: Binaries, libraries: dict[Path, OpenMPLibrary], ctx: SearchContext, root: Path
) -> tuple[set[Load], set[tuple[str, str]], Path | None]:
    """Which library each binary's OpenMP request reaches; the requests that reach none; torch's core."""
    loads: set[Load] = set()
    unresolved: set[tuple[str, str]] = set()
    torch_core: Path | None = None
    for binary, (fmt_name, slices) in binaries.items():
        if binary.name in TORCH_CORE_NAMES and torch_core is None:
            torch_core = binary
        fmt = BY_NAME[fmt_name]
        for deps in slices:
            for request in deps.needed:
                if family_of(request.rsplit("/", 1)[-1]) is None:
                    continue
                hit = fmt.resolve(binary, deps, request, ctx)
                found = Path(os.path.realpath(hit.path)) if hit else None
                if hit is None or found not in libraries:
                    unresolved.add((_rel(binary, root), request))
                    continue
                loads.add(
                    Load(
                        binary=_rel(binary, root),
                        arch=deps.arch,
                        request=request,
                        runtime=libraries[found].path,
                        via=_rel(Path(os.path.normpath(hit.path)), root),
                        how=hit.how,
                    )
                )
    return loads, unresolved, torch_core


def _primary(torch_core: Path | None, loads: set[Load], root: Path) -> tuple[str | None, str]:
    """The library torch's core loads (the one to keep), and why."""
    if torch_core is None:
        return None, "torch's core library (libtorch_cpu) is not in this tree"
    core = _rel(torch_core, root)
    core_loads = sorted({ld.runtime for ld in loads if ld.binary == core})
    if len(core_loads) == 1:
        return core_loads[0], f"loaded by {core}"
    if not core_loads:
        return None, f"{core} loads no OpenMP runtime found in this tree"
    return None, f"{core} loads several OpenMP runtimes: {', '.join(core_loads)}"


def audit(path: Path) -> AuditReport:
    lay = layout(path)
    root = lay.root
    files, links = _walk(lay.scan)
    binaries = _read_binaries(files)
    names, libraries = _libraries(files, links, binaries, root)
    loads, unresolved, torch_core = _loads(binaries, libraries, _search_context(lay, names, binaries), root)
    primary, reason = _primary(torch_core, loads, root)
    return AuditReport(
        root=root.as_posix(),
        kind=lay.kind,
        formats=tuple(sorted({fmt for fmt, _ in binaries.values()})),
        binaries=len(binaries),
        runtimes=tuple(libraries.values()),
        loads=tuple(sorted(loads, key=lambda ld: (ld.binary, ld.request, ld.arch))),
        torch_core=_rel(torch_core, root) if torch_core else None,
        primary=primary,
        primary_reason=reason,
        unresolved=tuple(sorted(unresolved)),
    )
