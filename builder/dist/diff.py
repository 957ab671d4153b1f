"""Compare two builds file by file and say why each differing file differs.

Used by `make check-repro` (two clean builds of one profile) and `builder diff`.
"""

from __future__ import annotations

import struct
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from builder.dist.manifest import read_manifest

TIMESTAMP_WINDOW = 3 * 24 * 3600  # an int this close to "now" is most likely a build time


@dataclass(frozen=True, kw_only=True)
class Difference:
    path: str
    why: str


def diff_dists(a: Path, b: Path) -> list[Difference]:
    """Every file whose manifest entry differs between dist a and dist b, with a reason."""
    fa = {e["path"]: e for e in read_manifest(a)["files"]}
    fb = {e["path"]: e for e in read_manifest(b)["files"]}
    out = []
    for path in sorted(fa.keys() | fb.keys()):
        ea, eb = fa.get(path), fb.get(path)
        if ea == eb:
            continue
        if ea is None or eb is None:
            out.append(Difference(path=path, why=f"only in {'B' if ea is None else 'A'}"))
        elif "link" in ea or "link" in eb:
            out.append(Difference(path=path, why=f"symlink {ea.get('link')} vs {eb.get('link')}"))
        else:
            out.append(
                Difference(path=path, why=explain((a / path).read_bytes(), (b / path).read_bytes(), path))
            )
    return out


def explain(x: bytes, y: bytes, name: str) -> str:
    """A short reason two files differ: sizes, kind of file, first differing offset, timestamp hint (pure)."""
    kind = _kind(x, name)
    if len(x) != len(y):
        head = f"{kind}: size {len(x)} vs {len(y)}"
    else:
        head = f"{kind}: same size"
    offset = next((i for i, (p, q) in enumerate(zip(x, y, strict=False)) if p != q), min(len(x), len(y)))
    detail = f"first difference at byte {offset}"
    if _looks_like_timestamp(x, y, offset):
        detail += " (an embedded timestamp)"
    elif kind == "Python bytecode" and offset < 16:
        detail += " (the .pyc header: source mtime/size or hash)"
    return f"{head}, {detail}"


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


def report(a: Path, b: Path) -> dict[str, Any]:
    diffs = diff_dists(a, b)
    return {"a": str(a), "b": str(b), "differing": len(diffs), "files": [asdict(d) for d in diffs]}
