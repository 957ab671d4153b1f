"""Audio I/O in blocks: soundfile reading, a streaming polyphase resampler, safe writers.

Nothing here holds a whole file: readers yield blocks, the resampler keeps a few
filter lengths of history, writers append. numpy + soundfile only (no scipy).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputError, OutputError

FORMATS = {"wav": ("WAV", "FLOAT"), "flac": ("FLAC", "PCM_24")}
BLOCK = 1 << 16


def _soundfile():
    try:
        import soundfile
    except (ImportError, OSError) as exc:  # OSError: libsndfile missing
        raise InputError(f"audio I/O needs soundfile/libsndfile: {exc}") from None
    return soundfile


@dataclass(frozen=True, kw_only=True)
class AudioInfo:
    path: str
    frames: int
    samplerate: int
    channels: int
    format: str

    @property
    def seconds(self) -> float:
        return self.frames / self.samplerate if self.samplerate else 0.0


def probe(path: str | Path) -> AudioInfo:
    sf = _soundfile()
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not an audio file")
    try:
        info = sf.info(str(path))
    except Exception as exc:  # soundfile raises LibsndfileError / RuntimeError / TypeError
        raise InputError(f"{path}: not a readable audio file ({_first_line(exc)})") from None
    if info.frames <= 0 or info.samplerate <= 0 or info.channels <= 0:
        raise InputError(f"{path}: empty or invalid audio (frames={info.frames}, rate={info.samplerate})")
    return AudioInfo(
        path=str(path),
        frames=int(info.frames),
        samplerate=int(info.samplerate),
        channels=int(info.channels),
        format=str(info.format),
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def read_blocks(info: AudioInfo, block: int = BLOCK) -> Iterator[np.ndarray]:
    """(channels, n) float32 blocks of the whole file, in order."""
    sf = _soundfile()
    got = 0
    try:
        with sf.SoundFile(info.path) as fh:
            while True:
                data = fh.read(block, dtype="float32", always_2d=True)
                if not len(data):
                    break
                got += len(data)
                yield np.ascontiguousarray(data.T)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"{info.path}: read failed after {got} frames ({_first_line(exc)})") from None
    if got == 0:
        raise InputError(f"{info.path}: no audio frames could be decoded")


def adapt_channels(block: np.ndarray, channels: int) -> np.ndarray:
    """Mono -> duplicated, many -> first two (stereo models) or the mean (mono models)."""
    have = block.shape[0]
    if have == channels:
        return block
    if channels == 1:
        return block.mean(axis=0, keepdims=True)
    if have == 1:
        return np.repeat(block, channels, axis=0)
    return block[:channels]


class Resampler:
    """Streaming rational resampler (sr_in -> sr_out), Kaiser-windowed sinc like
    scipy's resample_poly (half-width 10 taps per phase, beta 5), zero-padded at
    both ends. Feeding blocks through `process` then `flush` gives the same
    samples as one call on the whole signal; output length ceil(n * up / down)."""

    def __init__(
        self, sr_in: int, sr_out: int, rows: int, *, half_width: int = 10, beta: float = 5.0
    ) -> None:
        g = math.gcd(sr_in, sr_out)
        self.up, self.down = sr_out // g, sr_in // g
        self.rows = rows
        up, down = self.up, self.down
        maxr = max(up, down)
        half = half_width * maxr
        m = np.arange(-half, half + 1, dtype=np.float64)
        h = np.sinc(m / maxr) / maxr * np.kaiser(2 * half + 1, beta)
        h = h / h.sum() * up
        self.jlo = -((half + up - 1) // up) - 1
        self.jhi = half // up + 1
        j = np.arange(self.jlo, self.jhi + 1)
        idx = j[None, :] * up + np.arange(up)[:, None] + half
        valid = (idx >= 0) & (idx <= 2 * half)
        self.table = np.where(valid, h[np.clip(idx, 0, 2 * half)], 0.0).astype(np.float32)  # (up, taps)
        self.j = j
        self.buf = np.zeros((rows, 0), dtype=np.float32)
        self.buf_start = 0  # absolute input index of buf[:, 0]
        self.total_in = 0
        self.next_out = 0

    @property
    def identity(self) -> bool:
        return self.up == self.down

    def out_length(self, n_in: int) -> int:
        return -(-n_in * self.up // self.down)

    def _produce(self, n_end: int) -> np.ndarray:
        outs = []
        while self.next_out < n_end:
            n1 = min(n_end, self.next_out + 32768)
            n = np.arange(self.next_out, n1, dtype=np.int64)
            q, r = np.divmod(n * self.down, self.up)
            src = q[:, None] - self.j[None, :] - self.buf_start  # (N, taps) buffer indices
            ok = (src >= 0) & (src < self.buf.shape[1])
            gathered = np.where(
                ok[None],
                self.buf[:, np.clip(src, 0, max(self.buf.shape[1] - 1, 0))] if self.buf.shape[1] else 0.0,
                0.0,
            )
            outs.append(np.einsum("cnt,nt->cn", gathered, self.table[r], dtype=np.float32))
            self.next_out = n1
        # keep only what the next output still needs
        q_next = (self.next_out * self.down) // self.up
        drop = q_next - self.jhi - self.buf_start
        if drop > 0:
            self.buf = self.buf[:, drop:]
            self.buf_start += drop
        return np.concatenate(outs, axis=1) if outs else np.zeros((self.rows, 0), dtype=np.float32)

    def process(self, block: np.ndarray) -> np.ndarray:
        if self.identity:
            return block
        self.buf = np.concatenate([self.buf, block.astype(np.float32, copy=False)], axis=1)
        self.total_in += block.shape[1]
        # output n is complete once input index q_n - jlo has arrived
        last_q = self.total_in - 1 + self.jlo
        n_end = (last_q * self.up) // self.down + 1 if last_q >= 0 else 0
        return self._produce(min(n_end, self.out_length(self.total_in)))

    def flush(self) -> np.ndarray:
        if self.identity:
            return np.zeros((self.rows, 0), dtype=np.float32)
        return self._produce(self.out_length(self.total_in))


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    r = Resampler(sr_in, sr_out, x.shape[0])
    if r.identity:
        return x
    return np.concatenate([r.process(x), r.flush()], axis=1)


class StemWriter:
    """Writes one output to a temporary name beside it; `commit` renames it into place."""

    def __init__(self, path: Path, samplerate: int, channels: int, fmt: str, protect: list[Path]) -> None:
        sf = _soundfile()
        container, subtype = FORMATS[fmt]
        self.path = path
        for p in protect:
            if _same_file(p, path):
                raise OutputError(f"{path}: refusing to write over the input {p}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"{path.parent}: cannot create output folder ({exc.strerror or exc})") from None
        self.tmp = path.with_name(f".{path.stem}.{os.getpid()}.partial.{fmt}")
        try:
            self.fh = sf.SoundFile(
                str(self.tmp),
                "w",
                samplerate=samplerate,
                channels=channels,
                format=container,
                subtype=subtype,
            )
        except Exception as exc:
            raise OutputError(f"{path}: cannot write ({_first_line(exc)})") from None
        self.frames = 0

    def write(self, block: np.ndarray) -> None:
        try:
            self.fh.write(np.ascontiguousarray(block.T))
        except Exception as exc:
            raise OutputError(f"{self.path}: write failed ({_first_line(exc)})") from None
        self.frames += block.shape[1]

    def commit(self) -> None:
        self.fh.close()
        try:
            os.replace(self.tmp, self.path)
        except OSError as exc:
            raise OutputError(f"{self.path}: cannot rename into place ({exc.strerror or exc})") from None

    def abort(self) -> None:
        try:
            self.fh.close()
        except Exception:
            pass
        try:
            self.tmp.unlink()
        except OSError:
            pass


def _same_file(a: Path, b: Path) -> bool:
    try:
        if b.exists() and os.path.samefile(a, b):
            return True
    except OSError:
        pass
    return a.resolve() == b.resolve()
