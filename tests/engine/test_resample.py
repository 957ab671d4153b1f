"""The streaming resampler: filtered (no aliases), exact lengths, blocks equal one call."""

from __future__ import annotations

import numpy as np
import pytest

from runtime_entry.audio import Resampler, resample


def _rms_db(x: np.ndarray, ref: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(x.astype(np.float64) ** 2)) / np.sqrt(np.mean(ref**2))))


def test_a_tone_above_the_targets_nyquist_is_attenuated_by_at_least_100_db():
    rate = 48000
    t = np.arange(2 * rate) / rate
    full_scale = np.sin(2 * np.pi * 1000 * t).astype(np.float32)[None]
    above = np.sin(2 * np.pi * 23000 * t).astype(np.float32)[None]  # 44.1 kHz's Nyquist is 22.05 kHz
    edge = 4410  # leave out the filter's start and end
    ref = resample(full_scale, rate, 44100)[0, edge:-edge]
    alias = resample(above, rate, 44100)[0, edge:-edge]
    assert abs(np.sqrt(np.mean(ref**2)) - np.sqrt(0.5)) < 1e-3  # the in-band tone keeps its level
    assert _rms_db(alias, ref) <= -100.0


@pytest.mark.parametrize(
    ("rate_in", "rate_out"), [(48000, 44100), (44100, 48000), (22050, 44100), (8000, 44100)]
)
@pytest.mark.parametrize("frames", [1, 7, 1000, 48001, 200_003])
def test_output_has_ceil_length_and_blocks_give_the_same_samples_as_one_call(rate_in, rate_out, frames):
    x = np.random.default_rng(frames).standard_normal((3, frames)).astype(np.float32)
    whole = resample(x, rate_in, rate_out)
    assert whole.shape == (3, -(-frames * rate_out // rate_in)) and whole.dtype == np.float32
    r = Resampler(rate_in, rate_out, 3)
    parts = [r.process(x[:, i : i + 4097]) for i in range(0, frames, 4097)] + [r.flush()]
    assert all(p.flags.c_contiguous for p in parts)
    np.testing.assert_array_equal(np.concatenate(parts, axis=1), whole)


def test_a_song_length_signal_is_resampled_in_blocks_that_keep_up_with_the_input():
    # bounded memory: each block's output follows its input closely, nothing waits for the end
    rate_in, rate_out, block = 48000, 44100, 1 << 16
    r = Resampler(rate_in, rate_out, 2)
    fed = out = 0
    rng = np.random.default_rng(0)
    for _ in range(60):  # about 80 s of stereo
        out += r.process(rng.standard_normal((2, block)).astype(np.float32)).shape[1]
        fed += block
        assert fed * rate_out / rate_in - out < 4096
    out += r.flush().shape[1]
    assert out == r.out_length(fed)


def test_equal_rates_pass_blocks_through_untouched():
    x = np.ones((2, 10), dtype=np.float32)
    r = Resampler(44100, 44100, 2)
    assert r.identity and r.process(x) is x and r.flush().shape == (2, 0)
