"""Overlap-add demixing in bounded memory.

The chunking is msst's (`msst.utils.model_utils.demix`, generic mode), sample for
sample: chunks of `chunk_size`, step `chunk_size // num_overlap`, linear fades of
`chunk_size // 10`, reflect padding of `chunk_size - step` at both ends when the
signal is long enough, a short last chunk padded by reflection (zeros when shorter
than half a chunk), chunks run in batches, and the sum divided by the summed window.
Like msst, the fade exceptions go by batch: the batch whose last chunk starts at 0
has no fade-in, otherwise the batch that reaches the end has no fade-out, for every
chunk of that batch. With `inference.normalize` the input is standardised by the
mean and deviation of its mono mix and every stem scaled back.

Unlike that code, nothing grows with the file's length: input is pulled block by
block, and a sample is divided, un-padded and handed to the sink as soon as no
later chunk can touch it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .errors import Cancelled

Progress = Callable[[int, int], None]


@dataclass(frozen=True, kw_only=True)
class ChunkPlan:
    length: int  # model-rate samples of the signal
    chunk: int
    step: int
    fade: int
    pad: int  # reflect padding at each end (0 for short signals)

    @property
    def padded(self) -> int:
        return self.length + 2 * self.pad

    @property
    def starts(self) -> range:
        return range(0, self.padded, self.step)


def plan(length: int, chunk_size: int, num_overlap: int) -> ChunkPlan:
    step = chunk_size // num_overlap
    border = chunk_size - step
    pad = border if (length > 2 * border and border > 0) else 0
    return ChunkPlan(length=length, chunk=chunk_size, step=step, fade=chunk_size // 10, pad=pad)


@dataclass(frozen=True, kw_only=True)
class Normalization:
    """inference.normalize: (x - mean) / std on the way in, y * std + mean on the way out."""

    mean: float
    std: float


def normalization_stats(blocks: Iterable[np.ndarray]) -> Normalization:
    """Mean and (population) deviation of the mono mix of (channels, n) blocks, as msst's
    normalize_audio; a silent or non-finite signal keeps its scale (std 1)."""
    n, total, squares = 0, 0.0, 0.0
    for block in blocks:
        mono = block.astype(np.float64).mean(axis=0)
        n += mono.size
        total += float(mono.sum())
        squares += float(np.square(mono).sum())
    mean = total / n if n else 0.0
    std = math.sqrt(max(squares / n - mean * mean, 0.0)) if n else 1.0
    if not math.isfinite(std) or std <= float(np.finfo(np.float32).eps):
        std = 1.0
    return Normalization(mean=mean, std=std)


def base_window(chunk: int, fade: int) -> torch.Tensor:
    w = torch.ones(chunk)
    if fade > 0:
        w[-fade:] = torch.linspace(1, 0, fade)
        w[:fade] = torch.linspace(0, 1, fade)
    return w


class _Input:
    """Model-rate input pulled from a block iterator, kept only as far back as needed."""

    def __init__(self, blocks: Iterator[np.ndarray], channels: int) -> None:
        self.blocks = blocks
        self.buf = np.zeros((channels, 0), dtype=np.float32)
        self.start = 0
        self.exhausted = False

    @property
    def end(self) -> int:
        return self.start + self.buf.shape[1]

    def ensure(self, upto: int) -> None:
        parts = [self.buf]
        end = self.end
        while end < upto and not self.exhausted:
            try:
                b = next(self.blocks)
            except StopIteration:
                self.exhausted = True
                break
            parts.append(b)
            end += b.shape[1]
        if len(parts) > 1:
            self.buf = np.concatenate(parts, axis=1)

    def drop_before(self, index: int) -> None:
        n = index - self.start
        if n > 0:
            self.buf = self.buf[:, n:]
            self.start += n

    def gather(self, idx: np.ndarray) -> np.ndarray:
        return self.buf[:, idx - self.start]


def _reflect(o: np.ndarray, length: int) -> np.ndarray:
    o = np.where(o < 0, -o, o)
    return np.where(o >= length, 2 * (length - 1) - o, o)


def demix_stream(
    model: nn.Module,
    blocks: Iterator[np.ndarray],
    length: int,
    *,
    chunk_size: int,
    num_overlap: int,
    batch_size: int,
    num_stems: int,
    channels: int,
    sink: Callable[[np.ndarray], None],
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    stem_ids: Sequence[int] | None = None,
    normalization: Normalization | None = None,
) -> int:
    """Separate `length` model-rate samples arriving as (channels, n) blocks; hand
    (stems, channels, m) blocks of the result to `sink`, in order. Returns the chunk count.
    `stem_ids`: run only these mask estimators (msst's active_stem_ids); `num_stems` is then
    their count."""
    p = plan(length, chunk_size, num_overlap)
    starts = list(p.starts)
    total = len(starts)
    window = base_window(p.chunk, p.fade)
    src = _Input(blocks, channels)
    acc = torch.zeros(num_stems, channels, p.chunk)
    cnt = torch.zeros(p.chunk)
    acc_start = 0  # padded position of acc[..., 0]; everything before it has been emitted
    emitted = 0  # model-rate output samples handed to the sink

    def emit_until(pos: int) -> None:
        nonlocal acc, cnt, acc_start, emitted
        n = pos - acc_start
        if n <= 0:
            return
        out = acc[..., :n] / cnt[:n]
        out = torch.nan_to_num(out, nan=0.0)
        if normalization is not None:
            out = out * normalization.std + normalization.mean
        lo, hi = acc_start - p.pad, pos - p.pad  # output coordinates
        a, b = max(lo, 0), min(hi, p.length)
        if b > a:
            sink(out[..., a - lo : b - lo].numpy())
            emitted += b - a
        acc = torch.cat([acc[..., n:], torch.zeros(num_stems, channels, n)], dim=-1)
        cnt = torch.cat([cnt[n:], torch.zeros(n)])
        acc_start = pos

    done = 0
    with torch.inference_mode():
        for b0 in range(0, total, batch_size):
            batch_starts = starts[b0 : b0 + batch_size]
            parts, segs = [], []
            for i in batch_starts:
                seg = min(p.chunk, p.padded - i)
                o = _reflect(np.arange(i, i + seg) - p.pad, p.length)
                src.ensure(int(o.max()) + 1)
                part = torch.from_numpy(np.ascontiguousarray(src.gather(o)))
                if normalization is not None:
                    part = (part - normalization.mean) / normalization.std
                if seg < p.chunk:
                    mode = "reflect" if seg > p.chunk // 2 else "constant"
                    part = F.pad(part.unsqueeze(0), (0, p.chunk - seg), mode=mode).squeeze(0)
                parts.append(part)
                segs.append(seg)
            if should_stop is not None and should_stop():
                raise Cancelled("cancelled")
            batch = torch.stack(parts)
            out = model(batch) if stem_ids is None else model(batch, active_stem_ids=list(stem_ids))
            if out.ndim == 3:  # one stem: (b, s, t)
                out = out.unsqueeze(1)
            # msst decides the fades by batch (see the module docstring)
            w = window
            if p.fade and batch_starts[-1] == 0:
                w = window.clone()
                w[: p.fade] = 1
            elif p.fade and batch_starts[-1] + p.step >= p.padded:
                w = window.clone()
                w[-p.fade :] = 1
            for k, (i, seg) in enumerate(zip(batch_starts, segs, strict=True)):
                emit_until(i)
                acc[..., :seg] += out[k, ..., :seg] * w[:seg]
                cnt[:seg] += w[:seg]
                done += 1
            # input before the next chunk's reach is no longer needed
            nxt = batch_starts[-1] + p.step
            src.drop_before(max(0, min(nxt - p.pad, p.length - 1 - p.pad)))
            if progress is not None:
                progress(done, total)
        emit_until(p.padded)
    if emitted != p.length:
        raise RuntimeError(f"demix emitted {emitted} samples, expected {p.length}")
    return total


def demix_array(
    model: nn.Module,
    mix: np.ndarray,
    *,
    chunk_size: int,
    num_overlap: int,
    batch_size: int,
    num_stems: int,
    stem_ids: Sequence[int] | None = None,
    normalize: bool = False,
) -> np.ndarray:
    """Whole-array convenience wrapper: (channels, n) -> (stems, channels, n)."""
    outs: list[np.ndarray] = []
    norm = normalization_stats([mix]) if normalize else None
    demix_stream(
        model,
        iter([mix.astype(np.float32)]),
        mix.shape[1],
        chunk_size=chunk_size,
        num_overlap=num_overlap,
        batch_size=batch_size,
        num_stems=num_stems,
        channels=mix.shape[0],
        sink=outs.append,
        stem_ids=stem_ids,
        normalization=norm,
    )
    return np.concatenate(outs, axis=-1)
