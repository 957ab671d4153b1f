"""Audio I/O in blocks: soundfile reading, soxr's streaming resampler, safe writers.

Nothing here holds a whole file: readers yield blocks, the resampler keeps a few
filter lengths of history, writers append.
"""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import numpy as np
import numpy.typing as npt

# a plain top-level import, so that the freeze's analysis bundles it (librosa, which also
# depends on it, is excluded from the frozen program)
import soxr

from .errors import InputError, OutputError, UsageError
from .files import file_problem

Array = npt.NDArray[np.float32]


@dataclass(frozen=True, kw_only=True)
class OutputFormat:
    container: str  # libsndfile's major format
    sample_formats: tuple[str, ...]  # allowed --sample-format values, the default first


# --sample-format value -> libsndfile subtype
SAMPLE_FORMATS = {"pcm16": "PCM_16", "pcm24": "PCM_24", "float": "FLOAT"}
FORMATS = {
    "wav": OutputFormat(container="WAV", sample_formats=("float", "pcm24", "pcm16")),
    "flac": OutputFormat(container="FLAC", sample_formats=("pcm24", "pcm16")),
}
BLOCK = 1 << 16
SALVAGE = 1024  # frames per read once a damaged stream has failed a read
# what soundfile raises for unreadable or unwritable audio: LibsndfileError (a RuntimeError),
# TypeError/ValueError for what it cannot even open, OSError from the file system
SF_ERRORS = (RuntimeError, TypeError, ValueError, OSError)


def check_output_format(fmt: str, sample_format: str | None) -> str:
    """The libsndfile subtype for a format and sample format (None: the format's default)."""
    if fmt not in FORMATS:
        raise UsageError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    allowed = FORMATS[fmt].sample_formats
    if sample_format is None:
        return SAMPLE_FORMATS[allowed[0]]
    if sample_format not in allowed:
        known = "" if sample_format in SAMPLE_FORMATS else f"one of {', '.join(SAMPLE_FORMATS)}; "
        raise UsageError(
            f"sample format {sample_format!r} is not available for {fmt} ({known}{fmt} takes {', '.join(allowed)})"
        )
    return SAMPLE_FORMATS[sample_format]


def sf_name(path: str | Path) -> str | bytes:
    """The name to hand soundfile: on POSIX the file system's bytes, so that a name that is not
    UTF-8 (held in Python as surrogate escapes) opens too; soundfile would encode it strictly."""
    return str(path) if sys.platform == "win32" else os.fsencode(path)


def _soundfile() -> ModuleType:
    try:
        import soundfile
    except (ImportError, OSError) as exc:  # OSError: libsndfile missing
        raise InputError(f"audio I/O needs soundfile/libsndfile: {exc}") from None
    return cast(ModuleType, soundfile)


class Warnings(list[str]):
    """What a job noticed about damaged input or output; each message once, in order."""

    def add(self, message: str) -> None:
        if message not in self:
            self.append(message)


@dataclass(frozen=True, kw_only=True)
class AudioInfo:
    path: str
    frames: int
    samplerate: int
    channels: int
    format: str
    damage: str | None = None  # what libsndfile found wrong in the header (a truncated file)

    @property
    def seconds(self) -> float:
        return self.frames / self.samplerate if self.samplerate else 0.0


def probe(path: str | Path) -> AudioInfo:
    sf = _soundfile()
    path = Path(path)
    # a FIFO or a device: libsndfile would block or read forever
    if (problem := file_problem(path)) is not None:
        kind, text = problem
        hint = {"folder": "is a folder, not an audio file", "special": f"{text}; give an audio file"}
        raise InputError(f"{path}: {hint.get(kind, text)}")
    try:
        info = sf.info(sf_name(path))
    except SF_ERRORS as exc:
        raise InputError(f"{path}: not a readable audio file ({_first_line(exc)})") from None
    if info.frames <= 0 or info.samplerate <= 0 or info.channels <= 0:
        raise InputError(f"{path}: empty or invalid audio (frames={info.frames}, rate={info.samplerate})")
    # libsndfile reads what is there and notes "data : 176400 (should be 88178)" for a file
    # whose header announces more than it holds (a cut download, a killed recorder)
    damaged = [ln.strip() for ln in str(getattr(info, "extra_info", "")).splitlines() if "(should be" in ln]
    damage = next((ln for ln in damaged if ln.startswith("data")), damaged[0] if damaged else None)
    return AudioInfo(
        path=str(path),
        frames=int(info.frames),
        samplerate=int(info.samplerate),
        channels=int(info.channels),
        format=str(info.format),
        damage=damage,
    )


def truncation_note(info: AudioInfo) -> str | None:
    if info.damage is None:
        return None
    return (
        f"{info.path}: truncated or damaged file (header: {info.damage}); "
        f"separated the {info.seconds:.2f} s that could be read"
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def read_blocks(info: AudioInfo, block: int = BLOCK, warnings: Warnings | None = None) -> Iterator[Array]:
    """(channels, n) float32 blocks of the whole file, in order: `info.frames` frames in all.

    Damage is said in `warnings`, never used silently: NaN or infinite samples become 0, and
    a decoder that stops early (a truncated FLAC) is followed by silence up to the announced
    length. A file of which not one frame decodes is an InputError."""
    sf = _soundfile()
    warnings = Warnings() if warnings is None else warnings
    got = 0
    step = block
    failure: str | None = None
    try:
        with sf.SoundFile(sf_name(info.path)) as fh:
            while got < info.frames:
                try:
                    data = fh.read(min(step, info.frames - got), dtype="float32", always_2d=True)
                except SF_ERRORS as exc:
                    if step == SALVAGE:
                        failure = _first_line(exc)
                        break
                    # a damaged stream fails the whole read: go back and take what decodes, in small steps
                    step = SALVAGE
                    try:
                        fh.seek(got)
                    except SF_ERRORS:
                        failure = _first_line(exc)
                        break
                    continue
                if not len(data):
                    break
                out = np.ascontiguousarray(data.T)
                finite = np.isfinite(out)
                if not finite.all():  # said at once: a consumer may never ask past the last block
                    first = got + int(np.argmin(finite.all(axis=0)))
                    warnings.add(
                        f"{info.path}: NaN or infinite samples replaced by silence (the first at frame {first})"
                    )
                    out[~finite] = 0.0
                got += out.shape[1]
                yield out
    except InputError:
        raise
    except SF_ERRORS as exc:  # opening failed
        raise InputError(f"{info.path}: read failed after {got} frames ({_first_line(exc)})") from None
    if got == 0:
        raise InputError(
            f"{info.path}: no audio frames could be decoded" + (f" ({failure})" if failure else "")
        )
    if got < info.frames:
        warnings.add(
            f"{info.path}: truncated: decoding stopped after {got} of {info.frames} frames"
            + (f" ({failure})" if failure else "")
            + "; the rest is silence in the stems"
        )
        missing = info.frames - got
        while missing > 0:
            n = min(block, missing)
            missing -= n
            yield np.zeros((info.channels, n), dtype=np.float32)


def adapt_channels(block: Array, channels: int) -> Array:
    """Mono -> duplicated, many -> the mean (mono models). More channels than a stereo model
    takes are refused before any read (engine.check_channels), never cut."""
    have = block.shape[0]
    if have == channels:
        return block
    if channels == 1:
        return cast(Array, block.mean(axis=0, keepdims=True))
    if have == 1:
        return np.repeat(block, channels, axis=0)
    raise ValueError(f"{have} channels for a model of {channels}: refused before reading")


class Resampler:
    """Streaming resampler (sr_in -> sr_out) on soxr's ResampleStream, quality HQ.

    HQ is soxr's 20-bit setting: an alias of a tone above the target's Nyquist comes out
    about 135 dB down (make bench-resample), and its state is a few filter lengths,
    whatever the input's length. Blocks are (rows, n) float32; feeding them through
    `process` then `flush` gives the same samples as one call on the whole signal, and
    exactly `out_length(n)` = ceil(n * sr_out / sr_in) of them (soxr gives the rounded
    count: the last sample, when one is missing, is a zero).
    """

    def __init__(self, sr_in: int, sr_out: int, rows: int) -> None:
        g = math.gcd(sr_in, sr_out)
        self.up, self.down = sr_out // g, sr_in // g
        self.rows = rows
        self.total_in = 0
        self.total_out = 0
        self._stream: Any = None
        if not self.identity:
            self._stream = soxr.ResampleStream(sr_in, sr_out, rows, dtype="float32", quality="HQ")

    @property
    def identity(self) -> bool:
        return self.up == self.down

    def out_length(self, n_in: int) -> int:
        return -(-n_in * self.up // self.down)

    def _emit(self, frames_first: Array, limit: int) -> Array:
        # soxr works on (frames, channels); never hand out more than `limit` in all
        n = min(frames_first.shape[0], limit - self.total_out)
        self.total_out += n
        return np.ascontiguousarray(frames_first[:n].T)

    def process(self, block: Array) -> Array:
        if self.identity:
            return block
        self.total_in += block.shape[1]
        frames_first = np.ascontiguousarray(block.T, dtype=np.float32)
        out = self._stream.resample_chunk(frames_first, last=False)
        return self._emit(out, self.out_length(self.total_in))

    def flush(self) -> Array:
        if self.identity:
            return np.zeros((self.rows, 0), dtype=np.float32)
        out = self._stream.resample_chunk(np.zeros((0, self.rows), dtype=np.float32), last=True)
        want = self.out_length(self.total_in)
        missing = want - self.total_out - out.shape[0]
        if missing > 0:
            out = np.concatenate([out, np.zeros((missing, self.rows), dtype=np.float32)])
        return self._emit(out, want)


def resample(x: Array, sr_in: int, sr_out: int) -> Array:
    r = Resampler(sr_in, sr_out, x.shape[0])
    if r.identity:
        return x
    return np.concatenate([r.process(x), r.flush()], axis=1)


class MixReader:
    """The input again, read in step with the outputs: the instrumental is mix minus one stem,
    at the input's rate, so a second reader follows the writers frame by frame."""

    def __init__(self, info: AudioInfo, to_output: Callable[[Array], Array]) -> None:
        sf = _soundfile()
        self.info = info
        self.to_output = to_output
        self.got = 0
        try:
            self.fh = sf.SoundFile(sf_name(info.path))
        except SF_ERRORS as exc:
            raise InputError(f"{info.path}: not a readable audio file ({_first_line(exc)})") from None

    def read(self, n: int) -> Array:
        """The next n frames as (channels, n) in the outputs' channel layout."""
        try:
            data = self.fh.read(n, dtype="float32", always_2d=True)
        except SF_ERRORS:  # a truncated file: read_blocks said so, and gave silence there too
            data = np.zeros((0, self.info.channels), dtype=np.float32)
        if len(data) < n:  # a decoder that gives fewer frames than it announced
            data = np.concatenate([data, np.zeros((n - len(data), data.shape[1]), dtype=np.float32)])
        data = np.where(np.isfinite(data), data, np.float32(0.0))
        self.got += n
        return self.to_output(np.ascontiguousarray(data.T))

    def close(self) -> None:
        self.fh.close()


class StemWriter:
    """Writes one output to a temporary name beside it; `commit_all` renames a job's outputs into place."""

    def __init__(
        self,
        path: Path,
        samplerate: int,
        channels: int,
        fmt: str,
        protect: list[Path],
        *,
        sample_format: str | None = None,
    ) -> None:
        sf = _soundfile()
        subtype = check_output_format(fmt, sample_format)
        container = FORMATS[fmt].container
        self.path = path
        for p in protect:
            if _same_file(p, path):
                raise OutputError(f"{path}: refusing to write over the input {p}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"{path.parent}: cannot create output folder ({exc.strerror or exc})") from None
        self.tmp = temp_name(path, "partial")
        self.previous: Path | None = None
        try:
            self.fh = sf.SoundFile(
                sf_name(self.tmp),
                "w",
                samplerate=samplerate,
                channels=channels,
                format=container,
                subtype=subtype,
            )
        except SF_ERRORS as exc:
            raise OutputError(f"{path}: cannot write ({_first_line(exc)})") from None
        self.frames = 0

    def write(self, block: Array) -> None:
        # PCM subtypes: libsndfile clips samples beyond full scale (it does not wrap)
        try:
            self.fh.write(np.ascontiguousarray(block.T))
        except SF_ERRORS as exc:
            raise OutputError(f"{self.path}: write failed ({_first_line(exc)})") from None
        self.frames += block.shape[1]

    def close(self) -> None:
        try:
            self.fh.close()
        except SF_ERRORS as exc:
            raise OutputError(f"{self.path}: write failed ({_first_line(exc)})") from None

    def rename(self) -> None:
        """Move the finished stem into place; a file already there is kept aside (`previous`)
        until the whole job is in place, so that a failure can put it back."""
        try:
            if os.path.lexists(self.path):
                self.previous = temp_name(self.path, "previous")
                os.replace(self.path, self.previous)
            os.replace(self.tmp, self.path)
        except OSError as exc:
            self.take_back(renamed=False)
            raise OutputError(f"{self.path}: cannot rename into place ({exc.strerror or exc})") from None

    def take_back(self, *, renamed: bool = True) -> None:
        """Undo `rename`: the stem this job wrote goes, the file it replaced comes back."""
        try:
            if renamed:
                self.path.unlink()
            if self.previous is not None:
                os.replace(self.previous, self.path)
                self.previous = None
        except OSError:
            pass

    def forget_previous(self) -> None:
        if self.previous is not None:
            try:
                self.previous.unlink()
            except OSError:
                pass

    def abort(self) -> None:
        try:
            self.fh.close()
        except SF_ERRORS:
            pass
        try:
            self.tmp.unlink()
        except OSError:
            pass


# Every temporary name stems writes, one pattern: `.<stem>.<pid>.partial.<fmt>` (a stem being
# written) and `.<stem>.<pid>.previous.<fmt>` (the file a stem replaced, kept until the job's
# every stem is in place).
TEMPORARY = re.compile(r"^\.(?P<stem>.+)\.(?P<pid>\d+)\.(?P<kind>partial|previous)\.(?P<fmt>[a-z0-9]+)$")


def temp_name(path: Path, kind: str) -> Path:
    """A temporary name beside `path`: hidden, with the writer's pid (see TEMPORARY)."""
    return path.with_name(f".{path.stem}.{os.getpid()}.{kind}.{path.suffix[1:]}")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # our own leftovers: a job in this process that is not running now
    if sys.platform == "win32":
        import ctypes

        kernel32 = ctypes.windll.kernel32
        handle = kernel32.OpenProcess(0x00100000, False, pid)  # SYNCHRONIZE
        if not handle:
            return False
        try:
            return bool(kernel32.WaitForSingleObject(handle, 0) == 0x102)  # WAIT_TIMEOUT: running
        finally:
            kernel32.CloseHandle(handle)
    else:
        try:
            os.kill(pid, 0)  # signal 0: a liveness probe (on Windows os.kill would terminate)
        except ProcessLookupError:
            return False
        except OSError:  # EPERM: alive, someone else's
            return True
        return True


def remove_leftovers(folder: Path) -> list[Path]:
    """Clean up after runs killed in `folder` (writers whose pid is gone): a partial stem is
    removed; a `previous` file is put back where it was when nothing took its place (the run
    died between the two renames), and removed when its stem was replaced."""
    removed: list[Path] = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for entry in entries:
        m = TEMPORARY.match(entry.name)
        if m is None or _pid_alive(int(m.group("pid"))) or entry.is_dir():
            continue
        stem = folder / f"{m.group('stem')}.{m.group('fmt')}"
        try:
            if m.group("kind") == "previous" and not os.path.lexists(stem):
                os.replace(entry, stem)
            else:
                entry.unlink()
                removed.append(entry)
        except OSError:
            pass
    return removed


def commit_all(writers: list[StemWriter]) -> None:
    """Rename every finished stem into place, or none: targets are checked first, and a rename
    that still fails takes back the ones already renamed, putting back the files they replaced.
    On failure no temporary file stays, and no file that was there before is lost."""
    renamed: list[StemWriter] = []
    try:
        for w in writers:
            w.close()
        for w in writers:
            if w.path.is_dir() or (w.path.exists() and not w.path.is_file()):
                raise OutputError(f"{w.path}: cannot write the stem: a folder or special file has its name")
        for w in writers:
            w.rename()
            renamed.append(w)
    except BaseException:
        for w in reversed(renamed):
            w.take_back()
        for w in writers:
            w.abort()
        raise
    for w in writers:
        w.forget_previous()


def _same_file(a: Path, b: Path) -> bool:
    try:
        if b.exists() and os.path.samefile(a, b):
            return True
    except OSError:
        pass
    return a.resolve() == b.resolve()
