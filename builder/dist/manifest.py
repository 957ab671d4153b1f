"""Package: dist/P/ with the frozen folder, manifest.json and SHA256SUMS.

The manifest says what went in (profile, lock, tool versions, installed
packages, OpenMP changes) and lists every file with its size and SHA-256, so
`builder verify` and `builder inspect` can work from the dist alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass
from email.parser import HeaderParser
from pathlib import Path
from typing import Any

from builder.dist.archive import write_archive, write_zip
from builder.fsutil import atomic_write_text, iter_files, sha256_file, staged_dir

MANIFEST = "manifest.json"
SUMS = "SHA256SUMS"
SCHEMA = 1


@dataclass(frozen=True, kw_only=True)
class InstalledPackage:
    name: str
    version: str
    size: int  # bytes of the files its RECORD lists, as installed
    files: int
    top_level: tuple[str, ...]  # first path parts inside site-packages


def read_site_packages(site_packages: Path) -> list[InstalledPackage]:
    """Every distribution in a site-packages folder, from its METADATA and RECORD."""
    out = []
    for info in sorted(site_packages.glob("*.dist-info")):
        meta_path = info / "METADATA"
        if not meta_path.is_file():
            continue
        meta = HeaderParser().parsestr(meta_path.read_text(encoding="utf-8", errors="replace"))
        size = files = 0
        tops: set[str] = set()
        record = info / "RECORD"
        lines = record.read_text(encoding="utf-8", errors="replace").splitlines() if record.is_file() else []
        for line in lines:
            rel = line.rsplit(",", 2)[0].strip('"')
            if not rel:
                continue
            path = site_packages / rel
            try:
                size += path.lstat().st_size
                files += 1
            except OSError:
                continue
            first = Path(rel).parts[0]
            if first not in ("..", "__pycache__") and not first.endswith(".dist-info"):
                tops.add(first.removesuffix(".py"))
        out.append(
            InstalledPackage(
                name=meta.get("Name", info.name),
                version=meta.get("Version", "?"),
                size=size,
                files=files,
                top_level=tuple(sorted(tops)),
            )
        )
    return out


def file_entries(root: Path, skip: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    for path in iter_files(root):
        rel = path.relative_to(root).as_posix()
        if rel in skip:
            continue
        if path.is_symlink():
            entries.append({"path": rel, "link": os.readlink(path)})
        else:
            entries.append({"path": rel, "size": path.stat().st_size, "sha256": sha256_file(path)})
    return entries


def sums_text(entries: list[dict[str, Any]]) -> str:
    """sha256sum's format, so `sha256sum -c SHA256SUMS` works without builder."""
    return "".join(f"{e['sha256'].removeprefix('sha256:')}  {e['path']}\n" for e in entries if "sha256" in e)


@dataclass(frozen=True, kw_only=True)
class PackageResult:
    dist: Path
    size: int
    files: int
    sha256: str  # of SHA256SUMS, which covers every file
    archive: Path | None = None
    archive_size: int | None = None
    archive_sha256: str | None = None
    zip: Path | None = None  # P.zip beside P.tar.xz: the same entries
    zip_sha256: str | None = None


def package(
    frozen: Path,
    dist: Path,
    manifest: dict[str, Any],
    extra_files: dict[str, str],
    *,
    archive_epoch: int | None,
    reports: dict[str, str] | None = None,
) -> PackageResult:
    """Move the frozen folder into a staged dist, write manifest, sums and archive; rename into place.

    The archives (`P.tar.xz` and `P.zip`, each holding everything else in dist/P as `P/...`)
    and their `.sha256` files are written inside the staged folder, so dist/P and its archive
    always belong together. `reports` (measurements of this build run, e.g. bench.json)
    are named in the manifest but neither hashed nor archived: timings differ from run
    to run, and the payload must not.
    """
    reports = reports or {}
    with staged_dir(dist) as tmp:
        target = tmp / frozen.name
        try:
            os.replace(frozen, target)
        except OSError:  # another filesystem
            shutil.copytree(frozen, target, symlinks=True)
        for name, text in extra_files.items():
            atomic_write_text(tmp / name, text)
        entries = file_entries(tmp)
        body = {
            "schema": SCHEMA,
            **manifest,
            "reports": sorted(reports),
            "totals": {"files": len(entries), "bytes": sum(e.get("size", 0) for e in entries)},
            "files": entries,
        }
        atomic_write_text(tmp / MANIFEST, json.dumps(body, indent=2, sort_keys=True) + "\n")
        sums = sums_text(entries) + f"{sha256_file(tmp / MANIFEST).removeprefix('sha256:')}  {MANIFEST}\n"
        atomic_write_text(tmp / SUMS, sums)
        archive = archive_sha = zipped = zip_sha = None
        if archive_epoch is not None:
            archive, zipped = tmp / f"{dist.name}.tar.xz", tmp / f"{dist.name}.zip"
            # Each archive leaves out the other and its .sha256: both hold the same entries.
            sides = [archive, zipped, *(a.with_name(a.name + ".sha256") for a in (archive, zipped))]
            archive_sha = write_archive(tmp, archive, archive_epoch, arcname=dist.name, skip=sides)
            zip_sha = write_zip(tmp, zipped, archive_epoch, arcname=dist.name, skip=sides)
            for written, digest in ((archive, archive_sha), (zipped, zip_sha)):
                atomic_write_text(
                    tmp / f"{written.name}.sha256", f"{digest.removeprefix('sha256:')}  {written.name}\n"
                )
        for name, text in reports.items():
            atomic_write_text(tmp / name, text)
    return PackageResult(
        dist=dist,
        size=body["totals"]["bytes"],
        files=len(entries),
        sha256="sha256:" + hashlib.sha256(sums.encode()).hexdigest(),
        archive=dist / archive.name if archive else None,
        archive_size=(dist / archive.name).stat().st_size if archive else None,
        archive_sha256=archive_sha,
        zip=dist / zipped.name if zipped else None,
        zip_sha256=zip_sha,
    )


def read_manifest(dist: Path) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads((dist / MANIFEST).read_text(encoding="utf-8"))
    return manifest


def packages_json(packages: list[InstalledPackage], bundled: frozenset[str]) -> list[dict[str, Any]]:
    """The venv's packages, each marked with whether any of its top-level names went into the program."""
    return [
        {**asdict(p), "bundled": any(t in bundled for t in p.top_level)}
        for p in sorted(packages, key=lambda p: p.name.lower())
    ]
