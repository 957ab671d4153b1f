"""The freeze proves itself: the frozen program's workload outputs against the venv's, and what a
failed frozen run lacks.

The trace stage ran `[bench].command` in the venv and kept its output folder; the check runs the
same command with the frozen program. The two must hold the same files; a WAV file the same
frames and channels, and samples equal or within `[bench].tolerance`; any other file the same
bytes. A frozen run that fails is read for what the freeze left out (a module, a data file,
a library, a distribution's metadata), with the `freeze.trace-add` entry that puts it in.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path

from builder.fsutil import iter_files


@dataclass(frozen=True, kw_only=True)
class Audio:
    frames: int
    channels: int
    rate: int
    samples: tuple[float, ...]  # interleaved, full scale 1.0


def read_wav(path: Path) -> Audio | None:
    """PCM (8-32 bit) or IEEE float WAV as floats; None when it is not a WAV this reads."""
    data = path.read_bytes()
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    fmt, body, pos = None, None, 12
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        chunk = data[pos + 8 : pos + 8 + size]
        if cid == b"fmt ":
            fmt = struct.unpack("<HHIIHH", chunk[:16])
        elif cid == b"data":
            body = chunk
        pos += 8 + size + (size & 1)
    if fmt is None or body is None:
        return None
    tag, channels, rate, _rate_bytes, _align, bits = fmt
    if tag == 0xFFFE and len(data) > 0:  # WAVE_FORMAT_EXTENSIBLE: the subformat's tag
        tag = 3 if bits == 32 and _is_float_extensible(data) else 1
    width = bits // 8
    n = len(body) // width
    samples: tuple[float, ...] | list[float]
    if tag == 3 and width in (4, 8):
        samples = struct.unpack(f"<{n}{'f' if width == 4 else 'd'}", body[: n * width])
    elif tag == 1 and width in (1, 2, 3, 4):
        samples = _pcm(body, width, n)
    else:
        return None
    return Audio(frames=n // max(channels, 1), channels=channels, rate=rate, samples=tuple(samples))


def _is_float_extensible(data: bytes) -> bool:
    at = data.find(b"fmt ")
    return at >= 0 and data[at + 8 + 24 : at + 8 + 26] == b"\x03\x00"


def _pcm(body: bytes, width: int, n: int) -> list[float]:
    if width == 1:
        return [(b - 128) / 128 for b in body[:n]]
    if width == 3:
        scale = float(1 << 23)
        return [int.from_bytes(body[i : i + 3], "little", signed=True) / scale for i in range(0, n * 3, 3)]
    code = {2: "h", 4: "i"}[width]
    scale = float(1 << (8 * width - 1))
    return [s / scale for s in struct.unpack(f"<{n}{code}", body[: n * width])]


def _files(folder: Path) -> dict[str, Path]:
    return {p.relative_to(folder).as_posix(): p for p in iter_files(folder)} if folder.is_dir() else {}


def compare_outputs(venv: Path, frozen: Path, tolerance: float | None) -> list[str]:
    """Every way the frozen run's output folder differs from the venv run's (reads both; no side effects)."""
    want, got = _files(venv), _files(frozen)
    problems = [
        f"{name}: written by the venv's run, missing from the frozen program's"
        for name in sorted(set(want) - set(got))
    ]
    problems += [f"{name}: written by the frozen program only" for name in sorted(set(got) - set(want))]
    for name in sorted(set(want) & set(got)):
        problem = compare_file(want[name], got[name], tolerance)
        if problem:
            problems.append(f"{name}: {problem}")
    return problems


def compare_file(venv: Path, frozen: Path, tolerance: float | None) -> str | None:
    a, b = venv.read_bytes(), frozen.read_bytes()
    if a == b:
        return None
    wa, wb = read_wav(venv), read_wav(frozen)
    if wa is None or wb is None:
        return (
            f"{len(b)} bytes differ from the venv's {len(a)} bytes"
            if len(a) != len(b)
            else "same size, other bytes"
        )
    if (wa.frames, wa.channels, wa.rate) != (wb.frames, wb.channels, wb.rate):
        return (f"{wb.frames} frames x {wb.channels} channels at {wb.rate} Hz, the venv's "
                f"{wa.frames} x {wa.channels} at {wa.rate} Hz")  # fmt: skip
    if wa.samples == wb.samples:  # other bytes around them: libsndfile's PEAK chunk holds the write time
        return None
    worst = max((abs(x - y) for x, y in zip(wa.samples, wb.samples, strict=True)), default=0.0)
    if tolerance is None:
        return f"samples differ (max abs diff {worst:.3g}; [bench].tolerance allows a difference)"
    if worst > tolerance:
        return f"samples differ by up to {worst:.3g}, over [bench].tolerance = {tolerance:g}"
    return None


# What a frozen run says when the freeze left something out, and the trace-add entry that adds it.
MISSING = (
    (re.compile(r"ModuleNotFoundError: No module named '([\w.]+)'"), "module", "module {0}"),
    (re.compile(r"PackageNotFoundError: (?:No package metadata was found for )?([\w.-]+)"), "metadata",
     "the metadata of distribution {0}"),
    (re.compile(r"(?:OSError|ImportError): ([^\s:]+\.(?:so[.\d]*|dylib|dll)): cannot open shared object file"),
     "library", "library {0}"),
    (re.compile(r"(?:FileNotFoundError|OSError): \[Errno 2\] No such file or directory: '([^']+)'"), "file",
     "file {0}"),
)  # fmt: skip


def missing_from(stderr: str, folder: Path) -> list[tuple[str, str]]:
    """(what is missing, the freeze.trace-add entry that adds it), from a frozen run's stderr (pure).

    A missing file or library is named relative to the frozen program's folder, where it should
    have been (PyInstaller's `_internal/` layout mirrors site-packages)."""
    found: dict[str, tuple[str, str]] = {}
    for pattern, kind, what in MISSING:
        for match in pattern.finditer(stderr):
            value = match.group(1)
            if kind in ("file", "library"):
                value = _inside(value, folder)
                if value is None:
                    continue
            entry = f"{kind}:{value}"
            found.setdefault(entry, (what.format(value), entry))
    return list(found.values())


def _inside(path: str, folder: Path) -> str | None:
    p = Path(path)
    if not p.is_absolute():
        return p.name if "/" not in path else path
    for base in (folder / "_internal", folder):
        try:
            return p.relative_to(base).as_posix()
        except ValueError:
            continue
    return None


def without_probe_frames(stderr: str) -> str:
    """stderr without the frames of builder's own hooks: a traceback names the program's code (pure)."""
    lines = stderr.splitlines()
    kept = []
    skip = False
    for line in lines:
        if line.startswith('  File "<runtime-builder '):
            skip = True  # its frame, and the source line under it
            continue
        if skip and line.startswith("    "):
            skip = False
            continue
        skip = False
        kept.append(line)
    return "\n".join(kept)
