"""Config keys read the way msst's inference reads them, each with its effect checked.

For every key msst's inference reads in `audio:`, `inference:` and `training:`, a file is
separated twice with one model: by our engine (`separate_file`, the config read by
`spec_from_config`) and by msst's own `separate_audio` (msst._inference: channel
preparation, normalisation, demix, target stem) given the same config as a ConfigDict.
The outputs must agree to float32 rounding.
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch
from ml_collections import ConfigDict  # type: ignore[import-untyped]
from msst._inference import separate_audio

from runtime_entry.engine import LoadedModel, separate_file
from runtime_entry.errors import ModelConfigError
from runtime_entry.models import build_model
from runtime_entry.models.spec import NO_EFFECT_ON_INFERENCE, PRESETS, spec_from_config

TINY: dict[str, Any] = copy.deepcopy(PRESETS["tiny"])
TINY_MEL: dict[str, Any] = copy.deepcopy(PRESETS["tiny_mel"])


def with_keys(base: dict[str, Any], **sections: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(base)
    for name, values in sections.items():
        section = data.setdefault(name, {})
        for key, value in values.items():
            if value is None:
                section.pop(key, None)
            else:
                section[key] = value
    return data


def write_mix(path: Path, frames: int, channels: int, rate: int, *, offset: float = 0.0) -> Path:
    rng = np.random.default_rng(frames + channels)
    sf.write(
        str(path),
        (0.2 * rng.standard_normal((frames, channels)) + offset).astype(np.float32),
        rate,
        subtype="FLOAT",
    )
    return path


def ours(data: dict[str, Any], mix: Path, out: Path) -> tuple[LoadedModel, dict[str, np.ndarray]]:
    spec = spec_from_config(data, name="cfg", source="cfg.yaml")
    loaded = LoadedModel(
        spec=spec, model=build_model(spec), checkpoint=None, checkpoint_sha256=None, load_seconds=0.0
    )
    result = separate_file(loaded, mix, out)
    outputs: dict[str, str] = result["outputs"]  # type: ignore[assignment]
    return loaded, {
        name: sf.read(path, dtype="float32", always_2d=True)[0].T for name, path in outputs.items()
    }


def msst(loaded: LoadedModel, data: dict[str, Any], mix: Path) -> dict[str, np.ndarray]:
    audio, _ = sf.read(str(mix), dtype="float32", always_2d=True)
    args = argparse.Namespace(
        disable_detailed_pbar=True,
        model_type=loaded.spec.kind,
        bigshifts=1,
        use_tta=False,
        extract_instrumental=False,
    )
    with torch.inference_mode():
        return separate_audio(loaded.model, args, ConfigDict(data), "cpu", audio.T)


def assert_same_stems(got: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert list(got) == list(expected)
    for name in expected:
        want = np.atleast_2d(expected[name])
        assert got[name].shape == want.shape, name
        np.testing.assert_allclose(got[name], want, rtol=0, atol=2e-6 * max(float(np.abs(want).max()), 1e-3))


@pytest.fixture(autouse=True)
def highest() -> Any:
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    yield
    torch.set_float32_matmul_precision(before)


CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    # id: (config, file: frames/channels/rate/offset)
    "audio.chunk_size": (with_keys(TINY, audio={"chunk_size": 8192}), {}),
    "inference.chunk_size alone": (
        with_keys(TINY, audio={"chunk_size": None}, inference={"chunk_size": 8192}),
        {},
    ),
    "inference.chunk_size before audio.chunk_size": (
        with_keys(TINY, audio={"chunk_size": 16384}, inference={"chunk_size": 8192}),
        {},
    ),
    "inference.num_overlap": (with_keys(TINY, inference={"num_overlap": 4}), {}),
    "inference.batch_size": (with_keys(TINY, inference={"batch_size": 3}), {}),
    "inference.normalize": (with_keys(TINY, inference={"normalize": True}), {"offset": 0.3}),
    "training.instruments": (with_keys(TINY, training={"instruments": ["a", "b", "c", "d"]}), {}),
    "training.target_instrument": (with_keys(TINY, training={"target_instrument": "other"}), {}),
    "training.target_instrument, one-stem model": (
        with_keys(
            TINY_MEL, model={**TINY_MEL["model"], "num_stems": 1}, training={"target_instrument": "other"}
        ),
        {},
    ),
    "training.model_type": (
        with_keys(TINY_MEL, training={"model_type": "mel_band_roformer"}),
        {},
    ),
    "audio.sample_rate": (with_keys(TINY, audio={"sample_rate": 32000}), {"rate": 32000}),
    "audio.num_channels 1": (with_keys(TINY, audio={"num_channels": 1}), {}),
    "audio.num_channels 2, mono file": (with_keys(TINY, audio={"num_channels": 2}), {"channels": 1}),
    "no audio.num_channels, mono file": (TINY, {"channels": 1}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_separation_equals_msst_inference(case: str, tmp_path: Path) -> None:
    data, file = CASES[case]
    data = {k: v for k, v in data.items() if k != "model_type"} if "training.model_type" in case else data
    mix = write_mix(
        tmp_path / "mix.wav",
        file.get("frames", 30000),
        file.get("channels", 2),
        file.get("rate", 44100),
        offset=file.get("offset", 0.0),
    )
    loaded, got = ours(data, mix, tmp_path / "out")
    assert_same_stems(got, msst(loaded, data, mix))


def test_inference_chunk_size_wins_over_audio_chunk_size() -> None:
    spec = spec_from_config(
        CASES["inference.chunk_size before audio.chunk_size"][0], name="c", source="c.yaml"
    )
    assert spec.chunk_size == 8192


def test_normalize_changes_the_output_of_an_offset_signal(tmp_path: Path) -> None:
    mix = write_mix(tmp_path / "mix.wav", 30000, 2, 44100, offset=0.3)
    _, plain = ours(TINY, mix, tmp_path / "a")
    _, normalized = ours(with_keys(TINY, inference={"normalize": True}), mix, tmp_path / "b")
    assert not np.allclose(plain["drums"], normalized["drums"], atol=1e-3)


def test_training_model_type_comes_before_the_top_level_one_and_the_guess() -> None:
    data = with_keys(TINY_MEL, training={"model_type": "mel_band_roformer"})
    data["model_type"] = "bs_roformer"
    assert spec_from_config(data, name="c", source="c.yaml").kind == "mel_band_roformer"
    data = with_keys(TINY, training={"model_type": "mel_band_roformer"})
    data["model"] = {k: v for k, v in data["model"].items() if k != "freqs_per_bands"}
    data.pop("model_type")
    assert spec_from_config(data, name="c", source="c.yaml").kind == "mel_band_roformer"


def test_sample_rate_defaults_to_44100_as_msst_not_to_the_model_key() -> None:
    data = with_keys(TINY_MEL, audio={"sample_rate": None}, model={**TINY_MEL["model"], "sample_rate": 32000})
    assert spec_from_config(data, name="c", source="c.yaml").sample_rate == 44100


def test_target_instrument_not_among_the_instruments_is_an_error_naming_it() -> None:
    with pytest.raises(ModelConfigError, match=r"training.target_instrument 'flute' is not one of"):
        spec_from_config(with_keys(TINY, training={"target_instrument": "flute"}), name="c", source="c.yaml")


def test_unknown_audio_or_inference_key_is_refused_with_a_suggestion() -> None:
    with pytest.raises(
        ModelConfigError, match=r"c.yaml: unknown key audio.chunksize. Perhaps you meant 'chunk_size'"
    ):
        spec_from_config(with_keys(TINY, audio={"chunksize": 8192}), name="c", source="c.yaml")
    with pytest.raises(
        ModelConfigError, match=r"unknown key inference.normalise. Perhaps you meant 'normalize'"
    ):
        spec_from_config(with_keys(TINY, inference={"normalise": True}), name="c", source="c.yaml")


@pytest.mark.parametrize("entry", [e for e in NO_EFFECT_ON_INFERENCE if not e.startswith("model.")])
def test_config_keys_listed_as_no_effect_on_inference_change_nothing(entry: str) -> None:
    section, key = entry.split(".", 1)
    plain = spec_from_config(TINY, name="c", source="c.yaml")
    assert spec_from_config(with_keys(TINY, **{section: {key: 7}}), name="c", source="c.yaml") == plain
