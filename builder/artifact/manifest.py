"""Package: dist/P/ with the frozen folder, manifest.json and SHA256SUMS.

The manifest says what went in (profile, lock, tool versions, installed
packages, OpenMP changes) and lists every file with its size and SHA-256, so
`builder verify` and `builder inspect` can work from the dist alone.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from email.parser import HeaderParser
from pathlib import Path
from typing import Any

from builder.artifact.archive import write_both
from builder.bounds import MAX_MANIFEST_BYTES, MAX_RECORD_BYTES, check_json, over_digit_limit, read_bounded
from builder.errors import InputError, LimitError
from builder.fsutil import atomic_write_text, iter_files, safe_output_dir, sha256_file, staged_dir
from builder.oserror import stat_path

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


def _read_text(path: Path, what: str) -> str:
    """A file of UTF-8 text without NUL bytes, else one InputError naming it and what was expected."""
    try:
        text = read_bounded(path, what.split(" (")[0], MAX_RECORD_BYTES).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not a {what}: not UTF-8 (byte {exc.start})") from None
    if "\0" in text:
        raise InputError(f"{path}: not a {what}: it holds NUL bytes")
    return text


def read_record(path: Path) -> list[str]:
    """The paths a RECORD lists (CSV rows of path, hash, size), checked (InputError names the file)."""
    text = _read_text(path, "RECORD (UTF-8 CSV rows: path,hash,size)")
    out = []
    try:
        for n, row in enumerate(csv.reader(text.splitlines()), start=1):
            if not row:
                continue
            if len(row) != 3 or not row[0]:
                raise InputError(
                    f"{path}: line {n}: not a RECORD row: expected 3 fields (path,hash,size), got {len(row)}"
                )
            out.append(row[0])
    except csv.Error as exc:  # e.g. a field over csv's size limit
        raise InputError(f"{path}: not a RECORD: {exc}") from None
    return out


def read_site_packages(site_packages: Path) -> list[InstalledPackage]:
    """Every distribution in a site-packages folder, from its METADATA and RECORD."""
    out = []
    for info in sorted(site_packages.glob("*.dist-info")):
        meta_path = info / "METADATA"
        if not meta_path.is_file():
            continue
        meta = HeaderParser().parsestr(_read_text(meta_path, "METADATA file (UTF-8 e-mail headers)"))
        size = files = 0
        tops: set[str] = set()
        record = info / "RECORD"
        for rel in read_record(record) if record.is_file() else []:
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


def write_archives(
    tmp: Path,
    archive: Path,
    zipped: Path,
    epoch: int,
    arcname: str,
    progress: Callable[[str, int, int], None] | None,
) -> tuple[str, str]:
    """Both archives of the staged folder, each with its `.sha256` file; their digests."""
    # Each archive leaves out the other and its .sha256: both hold the same entries.
    sides = [archive, zipped, *(a.with_name(a.name + ".sha256") for a in (archive, zipped))]
    archive_sha, zip_sha = write_both(
        tmp, archive, zipped, epoch, arcname=arcname, skip=sides, progress=progress
    )
    for written, digest in ((archive, archive_sha), (zipped, zip_sha)):
        atomic_write_text(
            tmp / f"{written.name}.sha256", f"{digest.removeprefix('sha256:')}  {written.name}\n"
        )
    return archive_sha, zip_sha


def package(
    frozen: Path,
    dist: Path,
    manifest: dict[str, Any],
    extra_files: dict[str, str],
    *,
    archive_epoch: int | None,
    reports: dict[str, str] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> PackageResult:
    """Move the frozen folder into a staged dist, write manifest, sums and archive; rename into place.

    The archives (`P.tar.xz` and `P.zip`, each holding everything else in dist/P as `P/...`)
    and their `.sha256` files are written inside the staged folder, so dist/P and its archive
    always belong together. `reports` (measurements of this build run, e.g. bench.json)
    are named in the manifest but neither hashed nor archived: timings differ from run
    to run, and the payload must not. `progress` hears (archive name, bytes read, bytes
    written) while the archives are written.
    """
    reports = reports or {}
    safe_output_dir(dist, "--out", MANIFEST)
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
            archive_sha, zip_sha = write_archives(tmp, archive, zipped, archive_epoch, dist.name, progress)
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


_SHA256 = re.compile(r"sha256:[0-9a-f]{64}")


def safe_relative(rel: object) -> bool:
    """A relative POSIX path that stays inside its folder: no NUL, no '..', not absolute (pure)."""
    if not isinstance(rel, str) or not rel or "\0" in rel or "\\" in rel or rel.startswith("/"):
        return False
    return ".." not in rel.split("/") and ":" not in rel.split("/")[0]


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def manifest_problem(data: object) -> str | None:
    """The first way `data` is not a manifest this builder writes, as 'key: expected ...' (pure)."""
    if not isinstance(data, dict):
        return f"(top level): expected a JSON object, got {type(data).__name__}"
    files = data.get("files")
    if not isinstance(files, list):
        return "files: expected a list of file entries"
    for n, e in enumerate(files):
        where = f"files[{n}]"
        if not isinstance(e, dict):
            return f"{where}: expected an object"
        if not safe_relative(e.get("path")):
            return f"{where}.path: expected a relative path inside the dist, got {e.get('path')!r:.80}"
        if "link" in e:
            if not isinstance(e["link"], str) or "\0" in e["link"]:
                return f"{where}.link: expected a symlink target (a string)"
        elif not (isinstance(e.get("sha256"), str) and _SHA256.fullmatch(e["sha256"])):
            return f"{where}.sha256: expected 'sha256:' and 64 hex digits"
        elif not _is_count(e.get("size")):
            return f"{where}.size: expected a whole number of bytes"
    totals = data.get("totals")
    if not (isinstance(totals, dict) and _is_count(totals.get("files")) and _is_count(totals.get("bytes"))):
        return "totals: expected {files, bytes} as whole numbers"
    reports = data.get("reports", [])
    if not (isinstance(reports, list) and all(safe_relative(r) for r in reports)):
        return "reports: expected a list of file names"
    for key in ("profile", "python", "inputs_hash"):
        if data.get(key) is not None and not isinstance(data[key], str):
            return f"{key}: expected a string"
    if not isinstance(data.get("target", {}), dict):
        return "target: expected an object"
    packages = data.get("packages", [])
    if not isinstance(packages, list):
        return "packages: expected a list"
    for n, pkg in enumerate(packages):
        if not (
            isinstance(pkg, dict)
            and isinstance(pkg.get("name"), str)
            and isinstance(pkg.get("version"), str)
            and isinstance(pkg.get("top_level"), list)
            and all(isinstance(t, str) for t in pkg["top_level"])
        ):
            return f"packages[{n}]: expected {{name, version, top_level: [names]}}"
    return None


def read_manifest(dist: Path) -> dict[str, Any]:
    """dist/manifest.json, checked: anything else is one InputError naming the file and the key."""
    path = dist / MANIFEST
    hint = "rebuild the dist with `builder build`; a damaged dist cannot be verified"
    if not os.path.lexists(path):
        stat_path(dist)  # a dist that is a loop, a broken link or forbidden: say that instead
        raise InputError(f"{path}: missing; {dist} is not a dist built by `builder build`")
    # read_bounded refuses a FIFO or a device from its stat: never a blocking read
    raw = read_bounded(path, "builder manifest", MAX_MANIFEST_BYTES)
    try:
        text = raw.decode("utf-8")
        check_json(text, path)
        data = json.loads(text)
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not a builder manifest: not UTF-8 (byte {exc.start})", hint=hint) from None
    except ValueError as exc:  # JSONDecodeError, NaN-like constants, integers over Python's digit limit
        if (digits := over_digit_limit(exc)) is not None:
            raise LimitError(f"{path}: {digits}") from None
        raise InputError(f"{path}: not a builder manifest: invalid JSON ({exc})", hint=hint) from None
    problem = manifest_problem(data)
    if problem is not None:
        raise InputError(f"{path}: not a builder manifest: {problem}", hint=hint)
    manifest: dict[str, Any] = data
    return manifest


def packages_json(packages: list[InstalledPackage], bundled: frozenset[str]) -> list[dict[str, Any]]:
    """The venv's packages, each marked with whether any of its top-level names went into the program."""
    return [
        {**asdict(p), "bundled": any(t in bundled for t in p.top_level)}
        for p in sorted(packages, key=lambda p: p.name.lower())
    ]
