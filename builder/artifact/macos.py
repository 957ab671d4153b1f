"""macOS bundles, read on any host: minimum OS versions, code signatures, the default entitlements.

Each Mach-O slice says the oldest macOS it runs on: LC_BUILD_VERSION's `minos` (macOS 10.14+
toolchains) or LC_VERSION_MIN_MACOSX's `version` (older ones). dyld refuses to load an image whose
minimum is newer than the running system, so a bundle is only as portable as its newest binary.
The frozen program declares the profile's minimum (manifest `target.macos_min`), and the check
stage fails when a bundled binary needs a newer one.

Signing: PyInstaller signs every collected binary (building/utils.py, process_collected_binary) and
the executable (building/api.py, EXE), ad-hoc (`codesign -s -`) when no identity is given, with the
hardened runtime and the entitlements file when one is. Anything that rewrites a Mach-O afterwards
breaks its signature, so builder's own post-freeze passes only swap whole files for symlinks, and
`changed_since` proves it against a snapshot taken right after PyInstaller.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from builder.errors import InputError
from builder.fsutil import iter_files, sha256_file
from builder.openmp.formats.macho import FORMAT
from builder.tools import process

# Shipped with builder: what a hardened-runtime torch program needs (see the file's comments).
DEFAULT_ENTITLEMENTS = Path(__file__).resolve().parents[1] / "data" / "entitlements.plist"
VERSION = re.compile(r"^\d+(\.\d+){0,2}$")


def parse_version(text: str) -> tuple[int, int, int]:
    """'14' / '10.15' / '10.9.1' as (major, minor, patch).

    >>> parse_version("10.15"), parse_version("14")
    ((10, 15, 0), (14, 0, 0))
    """
    if not VERSION.match(text):
        raise ValueError(f"not a macOS version: {text!r}")
    parts = [int(p) for p in text.split(".")]
    return (parts[0], parts[1] if len(parts) > 1 else 0, parts[2] if len(parts) > 2 else 0)


def show(version: tuple[int, ...]) -> str:
    """(11, 0, 0) -> '11.0'; (10, 9, 1) -> '10.9.1'."""
    major, minor, patch = (*version, 0, 0, 0)[:3]
    return f"{major}.{minor}" + (f".{patch}" if patch else "")


@dataclass(frozen=True, kw_only=True)
class Slice:
    arch: str  # arm64, x86_64
    minos: tuple[int, int, int] | None  # None: the slice declares no minimum
    command: str | None  # build_version or version_min
    signed: bool  # carries LC_CODE_SIGNATURE


def read_slices(path: Path) -> tuple[Slice, ...]:
    """Every slice of a thin or fat Mach-O, with its declared minimum macOS and whether it is signed."""
    from builder.openmp.formats.lieflib import lief

    fat = lief.MachO.parse(str(path), lief.MachO.ParserConfig.quick)
    if fat is None or fat.size == 0:
        raise InputError(f"{path}: not a readable Mach-O file")
    out = []
    for i in range(fat.size):
        b = fat.at(i)
        if b is None:
            continue
        minos: list[int] | None = None
        command = None
        build, legacy = b.build_version, b.version_min
        if build is not None:
            minos, command = list(build.minos), "build_version"
        elif legacy is not None:
            minos, command = list(legacy.version), "version_min"
        out.append(
            Slice(
                arch=b.header.cpu_type.name.lower(),
                minos=(minos[0], minos[1], minos[2]) if minos else None,
                command=command,
                signed=bool(b.has_code_signature),
            )
        )
    return tuple(out)


def is_macho(path: Path) -> bool:
    if path.is_symlink() or not path.is_file():
        return False
    with path.open("rb") as fh:
        return FORMAT.sniff(fh.read(8))


def macho_files(folder: Path) -> Iterator[Path]:
    """Every real Mach-O file under folder (symlinks are left to their targets)."""
    return (p for p in iter_files(folder) if is_macho(p))


def min_version_problems(folder: Path, minimum: str) -> list[str]:
    """Each bundled slice that needs a macOS newer than `minimum`, as a line naming file and versions."""
    floor = parse_version(minimum)
    problems = []
    for path in sorted(macho_files(folder)):
        for s in read_slices(path):
            if s.minos is not None and s.minos > floor:
                problems.append(
                    f"{path.relative_to(folder).as_posix()} ({s.arch}) needs macOS {show(s.minos)}, "
                    f"newer than the declared minimum {minimum}"
                )
    return problems


def unsigned(folder: Path) -> list[str]:
    """Mach-O files (and slices) without a code signature: arm64 macOS refuses to run them."""
    out = []
    for path in sorted(macho_files(folder)):
        archs = [s.arch for s in read_slices(path) if not s.signed]
        if archs:
            out.append(f"{path.relative_to(folder).as_posix()} ({', '.join(archs)})")
    return out


def snapshot(folder: Path) -> dict[str, str]:
    """SHA-256 of every real Mach-O file: the signed state right after PyInstaller."""
    return {p.relative_to(folder).as_posix(): sha256_file(p) for p in macho_files(folder)}


def changed_since(folder: Path, before: dict[str, str]) -> list[str]:
    """Mach-O files whose bytes differ from the snapshot (a symlink counts as the file it reaches)."""
    changed = []
    for rel, digest in sorted(before.items()):
        path = folder / rel
        if path.is_symlink() and path.resolve().is_file():
            target = path.resolve()
            if target.is_relative_to(folder.resolve()):
                key = target.relative_to(folder.resolve()).as_posix()
                if before.get(key) == digest and sha256_file(target) == digest:
                    continue
            changed.append(f"{rel} (now a link to another file)")
        elif not path.is_file():
            changed.append(f"{rel} (removed)")
        elif sha256_file(path) != digest:
            changed.append(f"{rel} (rewritten after signing)")
    for path in macho_files(folder):
        rel = path.relative_to(folder).as_posix()
        if rel not in before:
            changed.append(f"{rel} (added after signing)")
    return changed


def codesign_problems(folder: Path) -> list[str]:
    """`codesign --verify --strict` of every Mach-O (macOS hosts only: codesign exists nowhere else)."""
    return codesign_verify(sorted(macho_files(folder)) if sys.platform == "darwin" else [])


def codesign_verify(files: list[Path]) -> list[str]:
    problems = []
    for batch in range(0, len(files), 100):
        chunk = files[batch : batch + 100]
        proc = process.run(["codesign", "--verify", "--strict", *chunk], tool="codesign", check=False)
        if proc.returncode != 0:
            problems.append(f"codesign --verify failed: {process.last_lines(proc.stderr)}")
    return problems


def bundle_problems(folder: Path, *, macos_min: str | None) -> list[str]:
    """Everything wrong with a frozen macOS folder: too-new binaries, unsigned ones, bad signatures."""
    problems = []
    if macos_min is not None:
        problems += min_version_problems(folder, macos_min)
    missing = unsigned(folder)
    if missing:
        problems.append(f"{len(missing)} unsigned Mach-O file(s): " + ", ".join(missing[:5]))
    return problems + codesign_problems(folder)
