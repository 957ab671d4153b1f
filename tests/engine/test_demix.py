"""Overlap-add demix: the community algorithm, in bounded memory; the streaming resampler."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from runtime_entry.audio import Resampler, resample
from runtime_entry.demix import demix_array, demix_stream


def community_demix(model, mix, chunk_size, num_overlap, batch_size, num_stems):
    """The MSST `demix` (generic mode) algorithm, written out plainly over the whole array."""
    mix = torch.tensor(mix)
    fade, step = chunk_size // 10, chunk_size // num_overlap
    border = chunk_size - step
    n0 = mix.shape[-1]
    window = torch.ones(chunk_size)
    window[-fade:] = torch.linspace(1, 0, fade)
    window[:fade] = torch.linspace(0, 1, fade)
    padded = n0 > 2 * border and border > 0
    if padded:
        mix = F.pad(mix, (border, border), mode="reflect")
    result = torch.zeros((num_stems, *mix.shape))
    counter = torch.zeros((num_stems, *mix.shape))
    i, batch, where = 0, [], []
    with torch.inference_mode():
        while i < mix.shape[1]:
            part = mix[:, i : i + chunk_size]
            n = part.shape[-1]
            part = F.pad(part, (0, chunk_size - n), mode="reflect" if n > chunk_size // 2 else "constant")
            batch.append(part)
            where.append((i, n))
            i += step
            if len(batch) >= batch_size or i >= mix.shape[1]:
                out = model(torch.stack(batch))
                w = window.clone()
                if i - step == 0:
                    w[:fade] = 1
                elif i >= mix.shape[1]:
                    w[-fade:] = 1
                for j, (s, n) in enumerate(where):
                    result[..., s : s + n] += out[j, ..., :n] * w[:n]
                    counter[..., s : s + n] += w[:n]
                batch, where = [], []
    est = np.nan_to_num((result / counter).numpy(), nan=0.0)
    return est[..., border:-border] if padded else est


@pytest.mark.parametrize(("frames", "overlap"), [(40000, 2), (5000, 2), (30001, 4), (20000, 1)])
def test_demix_equals_the_community_overlap_add(tiny, frames, overlap):
    spec, model = tiny
    mix = np.random.default_rng(frames).standard_normal((2, frames)).astype(np.float32) * 0.3
    ours = demix_array(model, mix, chunk_size=spec.chunk_size, num_overlap=overlap, batch_size=1, num_stems=4)
    ref = community_demix(model, mix, spec.chunk_size, overlap, 1, 4)
    assert ours.shape == ref.shape == (4, 2, frames)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-6)


def test_batched_chunks_give_the_same_result_as_one_at_a_time(tiny):
    spec, model = tiny
    mix = np.random.default_rng(1).standard_normal((2, 60000)).astype(np.float32) * 0.3
    one = demix_array(model, mix, chunk_size=spec.chunk_size, num_overlap=2, batch_size=1, num_stems=4)
    three = demix_array(model, mix, chunk_size=spec.chunk_size, num_overlap=2, batch_size=3, num_stems=4)
    np.testing.assert_allclose(one, three, rtol=0, atol=1e-5)


def test_demix_reads_and_writes_as_it_goes_so_memory_does_not_grow_with_length(tiny):
    spec, model = tiny
    frames, block = 400_000, 4096
    rng = np.random.default_rng(2)
    consumed = [0]
    lag = []  # how far input reading ran ahead of output writing, at every output block
    emitted = [0]

    def blocks():
        for start in range(0, frames, block):
            n = min(block, frames - start)
            consumed[0] += n
            yield rng.standard_normal((2, n)).astype(np.float32) * 0.1

    def sink(out):
        emitted[0] += out.shape[-1]
        lag.append(consumed[0] - emitted[0])

    demix_stream(
        model,
        blocks(),
        frames,
        chunk_size=spec.chunk_size,
        num_overlap=2,
        batch_size=2,
        num_stems=4,
        channels=2,
        sink=sink,
    )
    assert emitted[0] == frames
    assert len(lag) > 20  # written progressively, not at the end
    assert max(lag) <= 4 * spec.chunk_size + block  # a few chunks in flight, whatever the length


def test_streaming_resampler_matches_one_shot_and_keeps_a_tone():
    rate_in, rate_out = 48000, 44100
    t = np.arange(rate_in) / rate_in
    x = np.stack([np.sin(2 * np.pi * 1000 * t), np.cos(2 * np.pi * 500 * t)]).astype(np.float32)
    whole = resample(x, rate_in, rate_out)
    assert whole.shape == (2, 44100)
    r = Resampler(rate_in, rate_out, 2)
    parts = [r.process(x[:, i : i + 3001]) for i in range(0, x.shape[1], 3001)] + [r.flush()]
    np.testing.assert_array_equal(np.concatenate(parts, axis=1), whole)
    t2 = np.arange(whole.shape[1]) / rate_out
    np.testing.assert_allclose(whole[0, 500:-500], np.sin(2 * np.pi * 1000 * t2[500:-500]), atol=2e-3)
    back = resample(whole, rate_out, rate_in)
    assert back.shape == x.shape
    np.testing.assert_allclose(back[:, 500:-500], x[:, 500:-500], atol=3e-3)
