"""Inspect a venv, a site-packages folder or a dist: Python, platform, packages by size.

A dist's packages are the manifest's: every package the freeze bundled, also one that PyInstaller
keeps only in its PYZ archive (pure Python, no file of its own on disk, listed with size 0). A
frozen folder without a manifest (a team's own freeze, builder's build/P/frozen) is sized from its
files on disk, by top-level entry under `_internal` (builder/artifact/contributors.py): torch is listed
even where PyInstaller kept no dist-info for it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.artifact.contributors import Contributor, frozen_contributors
from builder.artifact.manifest import MANIFEST, read_manifest, read_site_packages
from builder.errors import InputError
from builder.fsutil import iter_files
from builder.schemas import tagged
from builder.venvs import site_packages_of


@dataclass(frozen=True, kw_only=True)
class Inspection:
    """`builder inspect`: what a venv, site-packages folder, frozen folder or dist holds."""

    path: Path
    kind: str  # venv | site-packages | frozen | dist
    python: str | None
    platform: str | None
    packages: tuple[Contributor, ...]  # largest first
    total_bytes: int
    files: int
    profile: str | None = None  # a dist's

    def to_json(self) -> dict[str, Any]:
        return tagged(
            "inspect",
            {
                "path": str(self.path),
                "kind": self.kind,
                "profile": self.profile,
                "python": self.python,
                "platform": self.platform,
                "packages": [p.to_json() for p in self.packages],
                "total_bytes": self.total_bytes,
                "files": self.files,
            },
        )


def tree_totals(root: Path) -> tuple[int, int]:
    """Bytes and file count under root (symlinks counted as themselves)."""
    size = count = 0
    for path in iter_files(root):
        count += 1
        size += path.lstat().st_size
    return size, count


def _wheel_platform(site_packages: Path) -> str:
    """The first platform-specific tag among installed wheels (e.g. manylinux_2_28_x86_64)."""
    for wheel in sorted(site_packages.glob("*.dist-info/WHEEL")):
        for line in wheel.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("Tag:") and not line.endswith("-any"):
                return line.split("-")[-1]
    return "any"


def _python_of_frozen(internal: Path) -> str | None:
    """The Python a frozen folder carries, from its library's name (libpython3.11.so.1.0, python311.dll)."""
    for lib in sorted(internal.glob("*ython3*")):
        found = re.match(r"(?:lib)?[Pp]ython3\.?(\d+)", lib.name)
        if found:
            return f"3.{found.group(1)}"
    return None


def _python_of_venv(venv: Path, site_packages: Path) -> str:
    cfg = venv / "pyvenv.cfg"
    if cfg.is_file():
        for line in cfg.read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition("=")
            if key.strip() in ("version_info", "version"):
                return value.strip()
    return site_packages.parent.name.removeprefix("python")


def _frozen_internal(path: Path) -> Path | None:
    """PyInstaller's `_internal` folder of a frozen folder, or of a dist's one program folder."""
    if (path / "_internal").is_dir():
        return path / "_internal"
    found = sorted(p for p in path.glob("*/_internal") if p.is_dir())
    return found[0] if len(found) == 1 else None


def inspect_path(path: Path) -> Inspection:
    if os.path.lexists(path / MANIFEST):  # read_manifest names a broken link, a folder, a FIFO
        return _inspect_dist(path)
    internal = _frozen_internal(path)
    if (path / "pyvenv.cfg").is_file():
        site = site_packages_of(path)
        kind, root = "venv", path
    elif any(path.glob("*.dist-info")):
        site, kind, root = path, "site-packages", path
    elif internal is not None:
        site, kind, root = internal, "frozen", path  # no manifest: the dist-info folders PyInstaller copied
    else:
        raise InputError(
            f"{path}: not a venv (no pyvenv.cfg), site-packages folder (no *.dist-info), dist (no {MANIFEST}) "
            "or frozen folder (no _internal)"
        )
    size, count = tree_totals(root)
    if kind == "frozen":
        folder = site.parent  # the program's folder: its executable beside _internal
        rows = frozen_contributors(folder)
    else:
        packages = sorted(read_site_packages(site), key=lambda p: (-p.size, p.name.lower()))
        rows = [Contributor(name=p.name, version=p.version, size=p.size, files=p.files) for p in packages]
    return Inspection(
        path=path,
        kind=kind,
        python=_python_of_frozen(site) if kind == "frozen" else _python_of_venv(path, site),
        platform=_wheel_platform(site),
        packages=tuple(rows),
        total_bytes=size,
        files=count,
    )


def _inspect_dist(dist: Path) -> Inspection:
    manifest = read_manifest(dist)
    owner: dict[str, tuple[str, str]] = {}
    for pkg in manifest.get("packages", []):
        for top in pkg["top_level"]:
            owner[top] = (pkg["name"], pkg["version"])
    sizes: dict[tuple[str, str | None], list[int]] = {}
    for entry in manifest["files"]:
        parts = entry["path"].split("/")
        # stems/_internal/<top>/... is where PyInstaller puts each package's files
        top = parts[2] if len(parts) > 3 and parts[1] == "_internal" else parts[-1]
        top = top.removesuffix(".py")
        name, version = owner.get(top, (f"({top})", None))
        acc = sizes.setdefault((name, version), [0, 0])
        acc[0] += entry.get("size", 0)
        acc[1] += 1
    # A bundled package with no file of its own lives only in the PYZ archive inside the program
    # (pure Python). A manifest from before the "bundled" mark counts each package in, as the SBOM does.
    for pkg in manifest.get("packages", []):
        if pkg.get("bundled", True):
            sizes.setdefault((pkg["name"], pkg["version"]), [0, 0])
    rows = sorted(
        (Contributor(name=n, version=v, size=s, files=c) for (n, v), (s, c) in sizes.items()),
        key=lambda r: (-r.size, r.name.lower()),
    )
    return Inspection(
        path=dist,
        kind="dist",
        profile=manifest.get("profile"),
        python=manifest.get("python"),
        platform=manifest.get("target", {}).get("platform"),
        packages=tuple(rows),
        total_bytes=manifest["totals"]["bytes"],
        files=manifest["totals"]["files"],
    )


def human_size(n: float) -> str:
    """Decimal units (1 MB = 10^6 bytes), the units every budget and goal here is stated in."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def render(info: Inspection) -> str:
    lines = [
        f"{info.path} ({info.kind}{', profile ' + info.profile if info.profile else ''})",
        f"Python {info.python}, platform {info.platform}",
        f"{sum(1 for p in info.packages if p.version)} packages, "
        f"{human_size(info.total_bytes)} in {info.files} files",
        "",
    ]
    width = max((len(p.name) for p in info.packages), default=10)
    for p in info.packages:
        lines.append(f"  {p.name:<{width}}  {p.version or '':<14} {human_size(p.size):>10}")
    if info.kind == "frozen":
        lines.append(
            "  (sized from the files on disk, by top-level entry of _internal; no version: no dist-info kept)"
        )
    if info.kind == "dist":
        lines.append("  (names in parentheses: files PyInstaller added that no package's RECORD lists;")
        lines.append("   0 B: pure Python kept only in PyInstaller's PYZ archive, inside the program file)")
    return os.linesep.join(lines)
