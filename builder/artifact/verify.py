"""`builder verify DIST`: re-check a packaged runtime against its manifest.json and SHA256SUMS.

Every file on disk is compared with the manifest (size, then SHA-256; symlink
targets), every manifest entry must be on disk, SHA256SUMS must say the same as
the manifest, and SHA256SUMS must carry the manifest's own hash. The archives
`P.tar.xz` and `P.zip` that packaging writes after the manifest (so they cannot be
listed in it) must each match its `.sha256` file. Anything else is a difference: nothing
under the dist is ignored. Works from the dist alone (any host, no builder state).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.artifact.manifest import MANIFEST, SUMS, read_manifest
from builder.bounds import MAX_MANIFEST_BYTES, read_bounded
from builder.errors import BuilderError, InputError
from builder.fsutil import sha256_file, walk
from builder.oserror import stat_path
from builder.schemas import tagged

SKIP = frozenset({MANIFEST, SUMS})


@dataclass(frozen=True, kw_only=True)
class Difference:
    path: str
    expected: str | None  # what the manifest (or SHA256SUMS) says
    found: str | None  # what is on disk

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "expected": self.expected, "found": self.found}


@dataclass(frozen=True, kw_only=True)
class VerifyReport:
    dist: Path
    checked: int  # manifest entries compared with the disk
    modified: tuple[Difference, ...]  # regular files whose size or SHA-256 differs (or became a link)
    added: tuple[str, ...]  # on disk, not in the manifest (empty folders end with "/")
    removed: tuple[str, ...]  # in the manifest, not on disk
    links: tuple[Difference, ...]  # symlinks whose target changed, or that became files
    sums: tuple[Difference, ...]  # SHA256SUMS disagrees with the manifest or with manifest.json

    @property
    def ok(self) -> bool:
        return not (self.modified or self.added or self.removed or self.links or self.sums)

    def summary(self) -> str:
        if self.ok:
            return f"{self.dist}: all {self.checked} files match {MANIFEST} and {SUMS}"
        return (
            f"{self.dist} differs from its manifest: {len(self.modified)} modified, {len(self.added)} added, "
            f"{len(self.removed)} removed, {len(self.links)} symlinks changed, "
            f"{len(self.sums)} {SUMS} mismatches"
        )

    def lines(self) -> list[str]:
        out = [f"modified  {d.path}  ({d.expected} -> {d.found})" for d in self.modified]
        out += [f"added     {p}" for p in self.added]
        out += [f"removed   {p}" for p in self.removed]
        out += [f"symlink   {d.path}  ({d.expected} -> {d.found})" for d in self.links]
        out += [f"{SUMS}  {d.path}  ({d.expected} -> {d.found})" for d in self.sums]
        return [*out, ("ok: " if self.ok else "FAILED: ") + self.summary()]

    def to_json(self) -> dict[str, Any]:
        return tagged(
            "verify",
            {
                "dist": str(self.dist),
                "ok": self.ok,
                "checked": self.checked,
                "modified": [d.to_json() for d in self.modified],
                "added": list(self.added),
                "removed": list(self.removed),
                "links": [d.to_json() for d in self.links],
                "sums": [d.to_json() for d in self.sums],
                "summary": self.summary(),
            },
        )


def _describe(entry: dict[str, Any]) -> str:
    if "link" in entry:
        return f"symlink to {entry['link']}"
    return f"{entry['size']} bytes {entry['sha256']}"


def _read_manifest(dist: Path) -> dict[str, Any]:
    if not stat.S_ISDIR(stat_path(dist).st_mode):  # a loop or a permission is named as such
        raise InputError(f"{dist}: not a folder", hint="give a dist folder, e.g. dist/minimal-linux-x86_64")
    return read_manifest(dist)  # the one reader: a damaged manifest is one line naming the key


def read_sums(path: Path) -> dict[str, str]:
    """SHA256SUMS as {path: "sha256:HEX"} (sha256sum's text and binary `*` forms); ValueError
    when it is not text at all."""
    out: dict[str, str] = {}
    try:
        # bounded like the manifest it lists (a line per file); an error is one difference
        text = read_bounded(path, SUMS, MAX_MANIFEST_BYTES).decode("utf-8")
    except BuilderError as exc:
        raise ValueError(exc.message.removeprefix(f"{path}: ")) from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text (byte {exc.start})") from None
    if "\0" in text:
        raise ValueError("it holds NUL bytes")
    for line in text.splitlines():
        if not line.strip():
            continue
        digest, _, name = line.partition(" ")
        name = name[1:] if name[:1] in (" ", "*") else name
        out[name] = "sha256:" + digest.lower()
    return out


def _walk(dist: Path) -> tuple[dict[str, Path], list[str]]:
    """Every file and symlink under dist by relative path, and every empty real folder."""
    found: dict[str, Path] = {}
    empty: list[str] = []
    for path in walk(dist):
        name = path.relative_to(dist).as_posix()
        if path.is_symlink() or not path.is_dir():
            found[name] = path
        elif not any(path.iterdir()):
            empty.append(name + "/")
    return found, sorted(empty)


def read_sha256_file(path: Path) -> str | None:
    """The digest in a one-line `HEX  NAME` file (sha256sum's format), or None if unreadable."""
    try:
        digest = path.read_text(encoding="utf-8").split()[0].lower()
    except (OSError, IndexError, UnicodeDecodeError):
        return None
    return "sha256:" + digest if len(digest) == 64 else None


ARCHIVE_SUFFIXES = (".tar.xz", ".zip")


def _check_archives(
    dist: Path, manifest: dict[str, Any], on_disk: dict[str, Path]
) -> tuple[list[Difference], frozenset[str], list[str]]:
    """Every archive format: its differences, the names it covers, its missing files."""
    diffs: list[Difference] = []
    names: frozenset[str] = frozenset()
    missing: list[str] = []
    for suffix in ARCHIVE_SUFFIXES:
        d, n, m = _check_archive(dist, manifest, on_disk, suffix)
        diffs, names, missing = diffs + d, names | n, missing + m
    return diffs, names, missing


def _check_archive(
    dist: Path, manifest: dict[str, Any], on_disk: dict[str, Path], suffix: str
) -> tuple[list[Difference], frozenset[str], list[str]]:
    """One archive and its .sha256 (written after the manifest): both or neither, and matching."""
    name = f"{manifest.get('profile') or dist.name}{suffix}"
    side = f"{name}.sha256"
    names = frozenset({name, side})
    has_archive, has_side = name in on_disk, side in on_disk
    if not has_archive and not has_side:
        return [], names, []
    if not has_side:
        return [], names, [side]
    if not has_archive:
        return [], names, [name]
    want = read_sha256_file(on_disk[side]) if on_disk[side].is_file() else None
    path = on_disk[name]
    if path.is_symlink():
        return [Difference(path=name, expected=want, found=f"symlink to {os.readlink(path)}")], names, []
    if not path.is_file():  # never read a FIFO or a device
        return [Difference(path=name, expected=want, found="not a regular file")], names, []
    found = sha256_file(path)
    if found != want:
        return [Difference(path=name, expected=f"{want} (from {side})", found=found)], names, []
    return [], names, []


def _entry_difference(rel: str, entry: dict[str, Any], path: Path) -> tuple[str, Difference] | None:
    """How one file on disk differs from its manifest entry: ("links" or "modified", what), or None."""
    if "link" in entry:
        found = f"symlink to {os.readlink(path)}" if path.is_symlink() else "not a symlink"
        if found != _describe(entry):
            return "links", Difference(path=rel, expected=_describe(entry), found=found)
        return None
    if path.is_symlink():
        return "modified", Difference(
            path=rel, expected=_describe(entry), found=f"symlink to {os.readlink(path)}"
        )
    if not path.is_file():  # a FIFO or a device is never read (a read could block forever)
        return "modified", Difference(path=rel, expected=_describe(entry), found="not a regular file")
    size = path.stat().st_size
    digest = sha256_file(path) if size == entry["size"] else "(not hashed)"
    if size != entry["size"] or digest != entry["sha256"]:
        return "modified", Difference(path=rel, expected=_describe(entry), found=f"{size} bytes {digest}")
    return None


def _sums_differences(dist: Path, entries: dict[str, dict[str, Any]]) -> list[Difference]:
    """SHA256SUMS against the manifest: every entry's hash, and the manifest's own."""
    sums: list[Difference] = []
    sums_path = dist / SUMS
    if not sums_path.is_file() or sums_path.is_symlink():
        return [Difference(path=SUMS, expected="a file listing every file's SHA-256", found="missing")]
    try:
        listed = read_sums(sums_path)
    except ValueError as exc:  # one difference, not one per file
        return [Difference(path=SUMS, expected="UTF-8 lines 'HEX  PATH'", found=str(exc))]
    manifest_hash = sha256_file(dist / MANIFEST)
    if listed.get(MANIFEST) != manifest_hash:
        sums.append(Difference(path=MANIFEST, expected=listed.get(MANIFEST), found=manifest_hash))
    for rel, entry in sorted(entries.items()):
        want = entry.get("sha256")
        if listed.get(rel) != want:
            sums.append(Difference(path=rel, expected=want or "not listed (symlink)", found=listed.get(rel)))
    for rel in sorted(set(listed) - set(entries) - {MANIFEST}):
        sums.append(Difference(path=rel, expected="not in the manifest", found=listed[rel]))
    return sums


def verify_dist(dist: Path) -> VerifyReport:
    """Compare a dist folder with its manifest.json and SHA256SUMS; report every difference."""
    manifest = _read_manifest(dist)
    entries = {e["path"]: e for e in manifest["files"]}
    on_disk, empty_dirs = _walk(dist)

    found: dict[str, list[Difference]] = {"modified": [], "links": []}
    removed: list[str] = []
    for rel, entry in sorted(entries.items()):
        path = on_disk.get(rel)
        if path is None:
            removed.append(rel)
        elif (difference := _entry_difference(rel, entry, path)) is not None:
            found[difference[0]].append(difference[1])

    archive_diffs, archive_names, archive_removed = _check_archives(dist, manifest, on_disk)
    modified = found["modified"] + archive_diffs
    removed += archive_removed
    # Reports (bench.json: timings of this build run) are named in the manifest, never hashed.
    reports = set(manifest.get("reports", []))
    added = sorted(rel for rel in on_disk if rel not in entries and rel not in SKIP | archive_names | reports)
    # An empty folder is not in the manifest, which lists files only: on disk, it was added.
    added += empty_dirs
    return VerifyReport(
        dist=dist,
        checked=len(entries),
        modified=tuple(modified),
        added=tuple(added),
        removed=tuple(removed),
        links=tuple(found["links"]),
        sums=tuple(_sums_differences(dist, entries)),
    )
