"""Our BS-RoFormer and Mel-Band RoFormer against msst's own classes, option by option.

msst (ZFTurbo's Music-Source-Separation-Training, installed without dependencies by
`make dev-engine`) is the code the community trains with: for every constructor option
of both models, a config that omits it and a config that sets it to a value other than
msst's default must give msst's output (float32, within 1e-5 of the output's peak).
A missing msst is an import error here, never a skip.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch
from msst.models.bs_roformer.bs_roformer import BSRoformer as MsstBSRoformer
from msst.models.bs_roformer.mel_band_roformer import MelBandRoformer as MsstMelBandRoformer

from runtime_entry.models import build_model
from runtime_entry.models.roformer import BSRoformer, MelBandRoformer
from runtime_entry.models.spec import (
    BS_ROFORMER,
    MEL_BAND_ROFORMER,
    MODEL_DEFAULTS,
    NO_EFFECT_ON_INFERENCE,
    spec_from_config,
)

MSST_CLASSES: dict[str, type[torch.nn.Module]] = {
    BS_ROFORMER: MsstBSRoformer,
    MEL_BAND_ROFORMER: MsstMelBandRoformer,
}
OURS_ONLY = {"sage_attention"}  # audio-separator's option; msst's classes refuse it
FRAMES = 4000  # not a multiple of the hop, so that match_input_audio_length matters

_TINY = {
    "dim": 32,
    "depth": 1,
    "stereo": True,
    "num_stems": 2,
    "time_transformer_depth": 1,
    "freq_transformer_depth": 1,
    "dim_head": 16,
    "heads": 2,
    "dim_freqs_in": 129,
    "stft_n_fft": 256,
    "stft_hop_length": 64,
    "stft_win_length": 256,
    "mlp_expansion_factor": 2,
}
BASE: dict[str, dict[str, Any]] = {
    BS_ROFORMER: {**_TINY, "freqs_per_bands": (1,) + (4,) * 8 + (8,) * 4 + (16,) * 4},
    MEL_BAND_ROFORMER: {**_TINY, "num_bands": 8},
}
# Omitting one of these alone gives an inconsistent STFT/band layout: they go together.
_COUPLED = {
    "stft_n_fft",
    "stft_win_length",
    "stft_hop_length",
    "freqs_per_bands",
    "num_bands",
    "dim_freqs_in",
}

# A value other than msst's default for every option (with what it needs to matter).
NON_DEFAULT: dict[str, dict[str, Any]] = {
    "dim": {"dim": 48},
    "depth": {"depth": 2},
    "stereo": {"stereo": True},
    "num_stems": {"num_stems": 3},
    "time_transformer_depth": {"time_transformer_depth": 1},
    "freq_transformer_depth": {"freq_transformer_depth": 1},
    "linear_transformer_depth": {"linear_transformer_depth": 1},
    "freqs_per_bands": {"freqs_per_bands": (1,) + (8,) * 16},
    "num_bands": {"num_bands": 12},
    "dim_head": {"dim_head": 32},
    "heads": {"heads": 2},
    "attn_dropout": {"attn_dropout": 0.3},
    "ff_dropout": {"ff_dropout": 0.3},
    "flash_attn": {"flash_attn": False},
    "dim_freqs_in": {"dim_freqs_in": 129},
    "sample_rate": {"sample_rate": 32000},
    "stft_n_fft": {"stft_n_fft": 256},
    "stft_hop_length": {"stft_hop_length": 100},
    "stft_win_length": {"stft_win_length": 200},
    "stft_normalized": {"stft_normalized": True},
    "stft_window_fn": {"stft_window_fn": torch.hamming_window},
    "zero_dc": {"zero_dc": False},
    "mask_estimator_depth": {"mask_estimator_depth": 3},
    "multi_stft_resolution_loss_weight": {"multi_stft_resolution_loss_weight": 0.5},
    "multi_stft_resolutions_window_sizes": {"multi_stft_resolutions_window_sizes": (1024, 512)},
    "multi_stft_hop_size": {"multi_stft_hop_size": 64},
    "multi_stft_normalized": {"multi_stft_normalized": True},
    "multi_stft_window_fn": {"multi_stft_window_fn": torch.hamming_window},
    "match_input_audio_length": {"match_input_audio_length": True},
    "mlp_expansion_factor": {"mlp_expansion_factor": 1},
    "use_torch_checkpoint": {"use_torch_checkpoint": True},
    "skip_connection": {"skip_connection": True, "depth": 3},
    "use_pope": {"use_pope": True},
}


def msst_options(kind: str) -> dict[str, inspect.Parameter]:
    params = dict(inspect.signature(MSST_CLASSES[kind].__init__).parameters)
    params.pop("self")
    return params


def cases() -> Iterator[Any]:
    for kind in (BS_ROFORMER, MEL_BAND_ROFORMER):
        for key in sorted(msst_options(kind)):
            for how in ("omitted", "set"):
                yield pytest.param(kind, key, how, id=f"{kind}-{key}-{how}")


def config_for(kind: str, key: str, how: str) -> dict[str, Any]:
    model = dict(BASE[kind])
    if how == "omitted":
        if key in ("dim", "depth"):  # required: "omitted" is the base value
            return model
        drop = {key} | (_COUPLED if key in _COUPLED else set())
        return {k: v for k, v in model.items() if k not in drop}
    if kind == MEL_BAND_ROFORMER and key == "stft_win_length":
        # msst's Mel-Band RoFormer fails at construction unless win_length == n_fft
        return {**model, "stft_win_length": model["stft_n_fft"]}
    return {**model, **NON_DEFAULT[key]}


def perturbed_state(model: torch.nn.Module, seed: int = 1) -> dict[str, torch.Tensor]:
    """msst's initial weights with every norm gain, bias and PoPE bias moved off its
    initial constant, so that a weight read from the wrong place shows."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for k, v in model.state_dict().items():
        if v.is_floating_point() and not k.endswith(("rotary_embed.freqs", "inv_freqs")):
            v = v + 0.2 * torch.randn(v.shape, generator=g)
        state[k] = v
    return state


def mix_for(model_params: dict[str, Any], seed: int = 2) -> torch.Tensor:
    channels = 2 if model_params.get("stereo") else 1
    return 0.3 * torch.randn(2, channels, FRAMES, generator=torch.Generator().manual_seed(seed))


def rel_error(ours: torch.Tensor, ref: torch.Tensor) -> float:
    return float((ours - ref).abs().max() / ref.abs().max())


def snr_db(ours: torch.Tensor, ref: torch.Tensor) -> float:
    noise = float((ours.double() - ref.double()).pow(2).sum())
    return 10 * math.log10(float(ref.double().pow(2).sum()) / max(noise, 1e-30))


@pytest.fixture
def highest() -> Iterator[None]:
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    yield
    torch.set_float32_matmul_precision(before)


def build_pair(
    kind: str, model_cfg: dict[str, Any], *, perturb: bool = True
) -> tuple[torch.nn.Module, torch.nn.Module]:
    """msst's model as msst's get_model_from_config builds it (Class(**config.model)), and ours:
    through our config reading when the options can come from a file, else the class itself."""
    torch.manual_seed(0)
    ref = MSST_CLASSES[kind](**model_cfg).eval()
    if any(callable(v) for v in model_cfg.values()):
        ours_cls: Callable[..., torch.nn.Module] = BSRoformer if kind == BS_ROFORMER else MelBandRoformer
        ours = ours_cls(**model_cfg).eval()
    else:
        cfg = {"model": model_cfg, "training": {"model_type": kind}, "audio": {"chunk_size": 16384}}
        ours = build_model(spec_from_config(cfg, name="t", source="test.yaml"))
    state = perturbed_state(ref) if perturb else ref.state_dict()
    ref.load_state_dict(state, strict=True)
    ours.load_state_dict(state, strict=True)
    return ours, ref


def test_we_know_every_msst_option_with_msst_default_and_a_non_default_value() -> None:
    for kind in (BS_ROFORMER, MEL_BAND_ROFORMER):
        options = msst_options(kind)
        assert set(options) == set(MODEL_DEFAULTS[kind]) - OURS_ONLY, kind
        for key, param in options.items():
            assert key in NON_DEFAULT, f"no non-default value to test {key}"
            if param.default is not inspect.Parameter.empty and not callable(param.default):
                assert MODEL_DEFAULTS[kind][key] == param.default, (kind, key)
                assert NON_DEFAULT[key][key] != param.default, (kind, key)


@pytest.mark.parametrize(("kind", "key", "how"), list(cases()))
@pytest.mark.usefixtures("highest")
def test_float32_output_equals_msst(kind: str, key: str, how: str) -> None:
    model_cfg = config_for(kind, key, how)
    ours, ref = build_pair(kind, model_cfg)
    x = mix_for(model_cfg)
    with torch.inference_mode():
        expected, got = ref(x), ours(x)
    assert got.shape == expected.shape
    assert rel_error(got, expected) <= 1e-5


@pytest.mark.parametrize("kind", [BS_ROFORMER, MEL_BAND_ROFORMER])
def test_active_stem_ids_run_only_the_chosen_heads_as_msst(kind: str, highest: None) -> None:
    model_cfg = {**BASE[kind], "num_stems": 3}
    ours, ref = build_pair(kind, model_cfg)
    x = mix_for(model_cfg)
    with torch.inference_mode():
        for ids in ([1], [2, 0]):
            expected, got = ref(x, active_stem_ids=ids), ours(x, active_stem_ids=ids)
            assert got.shape == expected.shape
            assert rel_error(got, expected) <= 1e-5


@pytest.mark.parametrize("kind", [BS_ROFORMER, MEL_BAND_ROFORMER])
def test_default_precision_keeps_40_db_snr_against_msst_float32(kind: str) -> None:
    # msst's own initial weights, as the benchmark's seeded models (the perturbed gains of the
    # other tests are harsher on bf16 than trained or initial weights: about 38-42 dB)
    model_cfg = {**BASE[kind], "depth": 2}
    ours, ref = build_pair(kind, model_cfg, perturb=False)
    x = mix_for(model_cfg)
    before = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("highest")
        with torch.inference_mode():
            expected = ref(x)
        torch.set_float32_matmul_precision("high")  # what the shipped profiles set
        with torch.inference_mode():
            got = ours(x)
    finally:
        torch.set_float32_matmul_precision(before)
    assert snr_db(got, expected) >= 40


@pytest.mark.parametrize("kind", [BS_ROFORMER, MEL_BAND_ROFORMER])
def test_keys_listed_as_no_effect_on_inference_change_nothing(kind: str, highest: None) -> None:
    base = {**BASE[kind], "flash_attn": False}  # sage_attention's effect would show against this
    ours, _ = build_pair(kind, base)
    x = mix_for(base)
    with torch.inference_mode():
        expected = ours(x)
    for entry in NO_EFFECT_ON_INFERENCE:
        section, key = entry.split(".", 1)
        if section != "model" or key not in MODEL_DEFAULTS[kind]:
            continue
        value = NON_DEFAULT[key][key] if key in NON_DEFAULT else True
        if callable(value):
            variant: torch.nn.Module = (BSRoformer if kind == BS_ROFORMER else MelBandRoformer)(
                **{**base, key: value}
            )
        else:
            cfg = {
                "model": {**base, key: value},
                "training": {"model_type": kind},
                "audio": {"chunk_size": 16384},
            }
            variant = build_model(spec_from_config(cfg, name="t", source="test.yaml"))
        variant.load_state_dict(ours.state_dict(), strict=True)
        with torch.inference_mode():
            assert rel_error(variant(x), expected) <= 1e-6, entry
