"""Our streaming demix against msst's `demix` (msst.utils.model_utils), sample for sample.

Both run the same model on the same random audio, so any difference is the chunking:
overlaps 1, 2 and 4, batch sizes 1 and 2 (msst decides fades per batch), inputs shorter
than one chunk, shorter than the padding, and several chunks long.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from ml_collections import ConfigDict  # type: ignore[import-untyped]
from msst.utils.model_utils import demix as msst_demix

from runtime_entry.demix import demix_array
from runtime_entry.models import ModelSpec, build_model, resolve_spec


@pytest.fixture(scope="module")
def tiny_model() -> tuple[ModelSpec, torch.nn.Module]:
    spec = resolve_spec("tiny")
    return spec, build_model(spec)


def msst_config(spec: ModelSpec, **sections: dict[str, Any]) -> ConfigDict:
    data: dict[str, Any] = {
        "audio": {"chunk_size": spec.chunk_size},
        "inference": {"num_overlap": spec.num_overlap, "batch_size": spec.batch_size},
        "training": {"instruments": list(spec.instruments)},
    }
    for name, values in sections.items():
        data[name] = {**data[name], **values}
    return ConfigDict(data)


def msst_stems(config: ConfigDict, model: torch.nn.Module, mix: np.ndarray) -> np.ndarray:
    # msst's demix takes the mix as an array despite its hint, and returns {stem: array} here
    out = msst_demix(config, model, mix, torch.device("cpu"), "bs_roformer")  # type: ignore[arg-type]
    assert isinstance(out, dict)
    return np.stack(list(out.values()))


# 16384-sample chunks: 3000 is under half a chunk (zero-padded), 12000 over half a chunk but
# too short for the border padding, 40000 several chunks (padded when overlapping).
@pytest.mark.parametrize("frames", [3000, 12000, 40000])
@pytest.mark.parametrize("overlap", [1, 2, 4])
@pytest.mark.parametrize("batch", [1, 2])
def test_demix_equals_msst_demix(
    tiny_model: tuple[ModelSpec, torch.nn.Module], frames: int, overlap: int, batch: int
) -> None:
    spec, model = tiny_model
    mix = 0.3 * np.random.default_rng(frames + overlap).standard_normal((2, frames)).astype(np.float32)
    config = msst_config(spec, inference={"num_overlap": overlap, "batch_size": batch})
    expected = msst_stems(config, model, mix)
    got = demix_array(
        model, mix, chunk_size=spec.chunk_size, num_overlap=overlap, batch_size=batch, num_stems=4
    )
    assert got.shape == expected.shape == (4, 2, frames)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6 * float(np.abs(expected).max()))
    # the first and last samples are where the fades and the padding differ most
    np.testing.assert_allclose(got[..., :10], expected[..., :10], rtol=0, atol=1e-6)
    np.testing.assert_allclose(got[..., -10:], expected[..., -10:], rtol=0, atol=1e-6)


def test_target_instrument_runs_one_head_as_msst(tiny_model: tuple[ModelSpec, torch.nn.Module]) -> None:
    spec, model = tiny_model
    mix = 0.3 * np.random.default_rng(7).standard_normal((2, 40000)).astype(np.float32)
    config = msst_config(spec, training={"target_instrument": "bass"})
    expected = msst_stems(config, model, mix)
    got = demix_array(
        model, mix, chunk_size=spec.chunk_size, num_overlap=2, batch_size=2, num_stems=1, stem_ids=[1]
    )
    assert got.shape == expected.shape == (1, 2, 40000)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6 * float(np.abs(expected).max()))
