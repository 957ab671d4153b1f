"""Compare two builds file by file, as they are on disk, and say why each differing file differs.

Used by `make check-repro` (two clean builds of one profile) and `builder diff`. The manifests
are checked (each side must be a dist) but never trusted for the comparison: every entry under
both dists is compared as it is now. Regular files by size and SHA-256, symlinks by their
target text (never followed), folders by being there. A FIFO, a device or a socket is reported
and never opened; an entry that cannot be read is reported, not raised. The measurements a
manifest names as `reports` (bench.json) are left out: they differ from run to run by design.
"""

from __future__ import annotations

import os
import stat
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.artifact.manifest import read_manifest
from builder.fsutil import DIST_RECORDS, sha256_file
from builder.schemas import tagged

TIMESTAMP_WINDOW = 3 * 24 * 3600  # an int this close to "now" is most likely a build time
EXPLAIN_LIMIT = 64 << 20  # bytes of each file read to find the first difference; beyond it, sizes and hashes


@dataclass(frozen=True, kw_only=True)
class Difference:
    path: str
    why: str

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "why": self.why}


@dataclass(frozen=True, kw_only=True)
class DiffReport:
    """`builder diff`: every entry that differs between dists `a` and `b`."""

    a: Path
    b: Path
    files: tuple[Difference, ...]

    def to_json(self) -> dict[str, Any]:
        return tagged(
            "diff",
            {"a": str(self.a), "b": str(self.b), "differing": len(self.files),
             "files": [d.to_json() for d in self.files]},
        )  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class Entry:
    """One entry of a dist as it is on disk: what it is, and what two of them are compared by."""

    kind: str  # "file" | "symlink" | "folder" | "FIFO" | "device" | "socket" | "unreadable"
    size: int = 0
    sha256: str = ""
    link: str = ""
    error: str = ""

    def describe(self) -> str:
        if self.kind == "symlink":
            return f"symlink -> {self.link}"
        if self.kind == "unreadable":
            return f"unreadable ({self.error})"
        return self.kind


SPECIAL = ("FIFO", "device", "socket")


def _entry(path: Path) -> Entry:
    """lstat, never follow; hash only a regular file (a FIFO would block, a device never end)."""
    try:
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode):
            return Entry(kind="symlink", link=os.readlink(path))
        if stat.S_ISDIR(mode):
            return Entry(kind="folder")
        if stat.S_ISREG(mode):
            return Entry(kind="file", size=path.lstat().st_size, sha256=sha256_file(path))
    except OSError as exc:
        return Entry(kind="unreadable", error=exc.strerror or str(exc))
    if stat.S_ISFIFO(mode):
        return Entry(kind="FIFO")
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return Entry(kind="device")
    return Entry(kind="socket" if stat.S_ISSOCK(mode) else "unreadable", error="unknown file type")


def on_disk(root: Path) -> dict[str, Entry]:
    """Every entry under root by relative POSIX path; symlinked folders are entries, not walked."""
    out: dict[str, Entry] = {}
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            names = sorted(os.listdir(folder))
        except OSError as exc:
            out[folder.relative_to(root).as_posix()] = Entry(
                kind="unreadable", error=exc.strerror or str(exc)
            )
            continue
        for name in names:
            path = folder / name
            entry = _entry(path)
            out[path.relative_to(root).as_posix()] = entry
            if entry.kind == "folder":
                stack.append(path)
    return out


def _read_head(path: Path) -> bytes:
    with path.open("rb") as fh:
        return fh.read(EXPLAIN_LIMIT)


def _why(a: Path, b: Path, path: str, ea: Entry | None, eb: Entry | None) -> str | None:
    """Why entry `path` differs between dist a and dist b, or None when it does not (reads only regular files)."""
    if ea is None or eb is None:
        side, other = ("B", eb) if ea is None else ("A", ea)
        assert other is not None
        return f"only in {side}" + ("" if other.kind == "file" else f" ({other.describe()})")
    if ea.kind in SPECIAL or eb.kind in SPECIAL or "unreadable" in (ea.kind, eb.kind):
        return f"{ea.describe()} vs {eb.describe()} (not a regular file: never opened)"
    if ea.kind != eb.kind:
        return f"{ea.describe()} vs {eb.describe()}"
    if ea == eb:
        return None
    if ea.kind == "symlink":
        return f"symlink {ea.link} vs {eb.link}"
    try:
        reason = explain(_read_head(a / path), _read_head(b / path), path, sizes=(ea.size, eb.size))
    except OSError as exc:
        return f"{ea.sha256} vs {eb.sha256} (cannot read to explain: {exc.strerror or exc})"
    return reason


def diff_dists(a: Path, b: Path) -> list[Difference]:
    """Every entry that differs between dist a and dist b as they are on disk, with a reason."""
    ma, mb = read_manifest(a), read_manifest(b)  # each side must be a dist; its records are not trusted
    measured = {*ma.get("reports", []), *mb.get("reports", [])}
    da, db = on_disk(a), on_disk(b)
    out = []
    for path in sorted(da.keys() | db.keys()):
        if path in measured:
            continue
        why = _why(a, b, path, da.get(path), db.get(path))
        if why is not None:
            out.append(Difference(path=path, why=why))
    if any(d.path.split("/")[0] not in DIST_RECORDS for d in out):
        out = [
            Difference(path=d.path, why=f"{d.why} (a record of the files that differ)")
            if d.path in DIST_RECORDS else d
            for d in out
        ]  # fmt: skip
    return out


def explain(x: bytes, y: bytes, name: str, sizes: tuple[int, int] | None = None) -> str:
    """A short reason two files differ: sizes, kind of file, first differing offset, timestamp hint (pure).

    `x` and `y` may be the first bytes only; `sizes` are then the files' whole sizes."""
    kind = _kind(x, name)
    size_x, size_y = sizes or (len(x), len(y))
    if size_x != size_y:
        head = f"{kind}: size {size_x} vs {size_y}"
    else:
        head = f"{kind}: same size"
    offset = first_difference(x, y)
    if offset == min(len(x), len(y)) and size_x == size_y and len(x) < size_x:
        return f"{head}, sha256 differs after the first {len(x)} bytes"
    detail = f"first difference at byte {offset}"
    if _looks_like_timestamp(x, y, offset):
        detail += " (an embedded timestamp)"
    elif kind == "Python bytecode" and offset < 16:
        detail += " (the .pyc header: source mtime/size or hash)"
    return f"{head}, {detail}"


def first_difference(x: bytes, y: bytes, block: int = 4096) -> int:
    """The first offset where x and y differ, or the shorter length (pure; block-wise, not byte by byte)."""
    n = min(len(x), len(y))
    start = next((i for i in range(0, n, block) if x[i : i + block] != y[i : i + block]), n)
    return next((i for i in range(start, min(start + block, n)) if x[i] != y[i]), n)


def _kind(data: bytes, name: str) -> str:
    if data[:4] == b"\x7fELF":
        return "ELF binary"
    if data[:4] in (b"\xcf\xfa\xed\xfe", b"\xca\xfe\xba\xbe"):
        return "Mach-O binary"
    if data[:2] == b"MZ":
        return "PE binary"
    if name.endswith(".pyc"):
        return "Python bytecode"
    if data[:4] == b"PK\x03\x04":
        return "zip archive"
    return "file"


def _looks_like_timestamp(x: bytes, y: bytes, offset: int) -> bool:
    now = time.time()
    for start in range(max(0, offset - 3), offset + 1):
        for data in (x, y):
            chunk = data[start : start + 4]
            if len(chunk) == 4 and abs(struct.unpack("<I", chunk)[0] - now) < TIMESTAMP_WINDOW:
                return True
    return False


def report(a: Path, b: Path) -> DiffReport:
    return DiffReport(a=a, b=b, files=tuple(diff_dists(a, b)))
