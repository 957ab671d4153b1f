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


class _Overlap:
    """The overlap-add accumulator: chunk outputs weighted by their windows, summed, and handed
    to the sink (divided by the summed weights) once no later chunk reaches them."""

    def __init__(
        self,
        p: ChunkPlan,
        num_stems: int,
        channels: int,
        sink: Callable[[np.ndarray], None],
        normalization: Normalization | None,
    ) -> None:
        self.p = p
        self.shape = (num_stems, channels)
        self.sink = sink
        self.normalization = normalization
        self.acc = torch.zeros(num_stems, channels, p.chunk)
        self.cnt = torch.zeros(p.chunk)
        self.acc_start = 0  # padded position of acc[..., 0]; everything before it has been emitted
        self.emitted = 0  # model-rate output samples handed to the sink

    def emit_until(self, pos: int) -> None:
        p, n = self.p, pos - self.acc_start
        if n <= 0:
            return
        out = torch.nan_to_num(self.acc[..., :n] / self.cnt[:n], nan=0.0)
        if self.normalization is not None:
            out = out * self.normalization.std + self.normalization.mean
        lo, hi = self.acc_start - p.pad, pos - p.pad  # output coordinates
        a, b = max(lo, 0), min(hi, p.length)
        if b > a:
            self.sink(out[..., a - lo : b - lo].numpy())
            self.emitted += b - a
        self.acc = torch.cat([self.acc[..., n:], torch.zeros(*self.shape, n)], dim=-1)
        self.cnt = torch.cat([self.cnt[n:], torch.zeros(n)])
        self.acc_start = pos

    def add(self, start: int, seg: int, out: torch.Tensor, w: torch.Tensor) -> None:
        """One chunk's output, starting at padded position `start`, `seg` samples of it real."""
        self.emit_until(start)
        self.acc[..., :seg] += out[..., :seg] * w[:seg]
        self.cnt[:seg] += w[:seg]


def _batch_input(
    p: ChunkPlan, src: _Input, batch_starts: list[int], normalization: Normalization | None
) -> tuple[torch.Tensor, list[int]]:
    """The chunks starting at `batch_starts`, reflected at the edges and padded to the chunk size."""
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
    return torch.stack(parts), segs


def _batch_window(p: ChunkPlan, window: torch.Tensor, batch_starts: list[int]) -> torch.Tensor:
    """msst decides the fades by batch (see the module docstring): none at the very ends."""
    if p.fade and batch_starts[-1] == 0:
        w = window.clone()
        w[: p.fade] = 1
        return w
    if p.fade and batch_starts[-1] + p.step >= p.padded:
        w = window.clone()
        w[-p.fade :] = 1
        return w
    return window


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
    window = base_window(p.chunk, p.fade)
    src = _Input(blocks, channels)
    overlap = _Overlap(p, num_stems, channels, sink, normalization)
    with torch.inference_mode():
        for b0 in range(0, len(starts), batch_size):
            batch_starts = starts[b0 : b0 + batch_size]
            batch, segs = _batch_input(p, src, batch_starts, normalization)
            if should_stop is not None and should_stop():
                raise Cancelled("cancelled")
            out = model(batch) if stem_ids is None else model(batch, active_stem_ids=list(stem_ids))
            if out.ndim == 3:  # one stem: (b, s, t)
                out = out.unsqueeze(1)
            w = _batch_window(p, window, batch_starts)
            for k, (i, seg) in enumerate(zip(batch_starts, segs, strict=True)):
                overlap.add(i, seg, out[k], w)
            # input before the next chunk's reach is no longer needed
            nxt = batch_starts[-1] + p.step
            src.drop_before(max(0, min(nxt - p.pad, p.length - 1 - p.pad)))
            if progress is not None:
                progress(b0 + len(batch_starts), len(starts))
        overlap.emit_until(p.padded)
    if overlap.emitted != p.length:
        raise RuntimeError(f"demix emitted {overlap.emitted} samples, expected {p.length}")
    return len(starts)


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
