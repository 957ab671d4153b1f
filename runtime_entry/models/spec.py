"""Model specs: presets and MSST-style YAML configs, resolved into frozen dataclasses.

Pure Python (pyyaml only, imported lazily): nothing here imports torch, so a
config error is reported before torch is even loaded.

A YAML file has the sections of ZFTurbo's Music-Source-Separation-Training
configs: `model:` (constructor arguments), `audio:` (chunk_size, sample_rate),
`inference:` (batch_size, num_overlap) and `training:` (instruments,
target_instrument). The model kind is `model_type:` at the top level when
present, else inferred (`num_bands` -> Mel-Band RoFormer, else BS-RoFormer).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ModelConfigError

BS_ROFORMER = "bs_roformer"
MEL_BAND_ROFORMER = "mel_band_roformer"
KINDS = (BS_ROFORMER, MEL_BAND_ROFORMER)

# The 62 bands of the BS-RoFormer paper (sum 1025 = n_fft 2048 // 2 + 1).
DEFAULT_FREQS_PER_BANDS = (2,) * 24 + (4,) * 12 + (12,) * 8 + (24,) * 8 + (48,) * 8 + (128, 129)

# Constructor arguments and their defaults, as in the community code. Keys that
# only matter for training (losses, checkpointing) are accepted and have no
# effect on inference; everything else changes the computation and is honoured.
_COMMON = {
    "dim": None,
    "depth": None,
    "stereo": False,
    "num_stems": 1,
    "time_transformer_depth": 2,
    "freq_transformer_depth": 2,
    "linear_transformer_depth": 0,
    "dim_head": 64,
    "heads": 8,
    "attn_dropout": 0.0,
    "ff_dropout": 0.0,
    "flash_attn": True,
    "dim_freqs_in": 1025,
    "stft_n_fft": 2048,
    "stft_hop_length": 512,
    "stft_win_length": 2048,
    "stft_normalized": False,
    "mlp_expansion_factor": 4,
    "skip_connection": False,
    "zero_dc": False,
    # kernel choice only: mapped to torch scaled_dot_product_attention
    "sage_attention": False,
    # training only
    "use_torch_checkpoint": False,
    "multi_stft_resolution_loss_weight": 1.0,
    "multi_stft_resolutions_window_sizes": (4096, 2048, 1024, 512, 256),
    "multi_stft_hop_size": 147,
    "multi_stft_normalized": False,
}
MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    BS_ROFORMER: {**_COMMON, "freqs_per_bands": DEFAULT_FREQS_PER_BANDS, "mask_estimator_depth": 2},
    MEL_BAND_ROFORMER: {
        **_COMMON,
        "num_bands": 60,
        "sample_rate": 44100,
        "mask_estimator_depth": 1,
        "match_input_audio_length": False,
        "attn_dropout": 0.1,
        "ff_dropout": 0.1,
    },
}
TRAINING_ONLY = frozenset(
    {
        "use_torch_checkpoint",
        "multi_stft_resolution_loss_weight",
        "multi_stft_resolutions_window_sizes",
        "multi_stft_hop_size",
        "multi_stft_normalized",
        "attn_dropout",
        "ff_dropout",
    }
)
_REQUIRED = ("dim", "depth")


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    name: str
    kind: str
    params: dict[str, Any]
    instruments: tuple[str, ...]
    sample_rate: int
    chunk_size: int
    num_overlap: int = 2
    batch_size: int = 1
    source: str = "preset"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def audio_channels(self) -> int:
        return 2 if self.params.get("stereo") else 1


def _close(key: str, allowed: list[str]) -> str:
    match = difflib.get_close_matches(key, allowed, n=1)
    return f" Perhaps you meant {match[0]!r}?" if match else ""


def _tupled(value: Any) -> Any:
    return tuple(_tupled(v) for v in value) if isinstance(value, list | tuple) else value


def resolve_model_params(kind: str, model: dict[str, Any], where: str) -> dict[str, Any]:
    if kind not in MODEL_DEFAULTS:
        raise ModelConfigError(f"{where}: unknown model type {kind!r} (expected one of {', '.join(KINDS)})")
    defaults = MODEL_DEFAULTS[kind]
    for key in model:
        if key not in defaults:
            raise ModelConfigError(
                f"{where}: unknown {kind} model key {key!r}.{_close(key, sorted(defaults))}"
            )
    for key in _REQUIRED:
        if model.get(key) is None:
            raise ModelConfigError(f"{where}: model key {key!r} is required")
    params = {**defaults, **{k: _tupled(v) for k, v in model.items()}}
    for key in ("dim", "depth", "heads", "dim_head", "num_stems", "stft_n_fft", "stft_hop_length"):
        if not isinstance(params[key], int) or params[key] < 1:
            raise ModelConfigError(
                f"{where}: model key {key!r} must be a positive integer, got {params[key]!r}"
            )
    if kind == BS_ROFORMER:
        bands = params["freqs_per_bands"]
        n_freqs = params["stft_n_fft"] // 2 + 1
        if not isinstance(bands, tuple) or len(bands) < 2 or sum(bands) != n_freqs:
            raise ModelConfigError(
                f"{where}: freqs_per_bands must be 2 or more band sizes summing to {n_freqs} "
                f"(stft_n_fft // 2 + 1), got {sum(bands) if isinstance(bands, tuple) else bands!r}"
            )
    return params


def _yaml_loader() -> Any:
    try:
        import yaml
    except ImportError:  # pragma: no cover - pyyaml is in every profile
        raise ModelConfigError("reading a YAML model config needs pyyaml, which is missing") from None

    class Loader(yaml.SafeLoader):
        pass

    # MSST configs write tuples as `!!python/tuple`; read them as data, run no code.
    Loader.add_constructor(
        "tag:yaml.org,2002:python/tuple", lambda loader, node: tuple(loader.construct_sequence(node))
    )
    return yaml, Loader


def load_yaml(path: Path) -> ModelSpec:
    yaml, loader = _yaml_loader()
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
    except OSError as exc:
        raise ModelConfigError(f"{path}: cannot read model config: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ModelConfigError(f"Failed to parse {path}: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
        raise ModelConfigError(f"{path}: expected a mapping with a 'model:' section")
    return spec_from_config(data, name=path.stem, source=str(path))


def spec_from_config(data: dict[str, Any], *, name: str, source: str) -> ModelSpec:
    where = source
    model = dict(data["model"])
    kind = data.get("model_type") or (MEL_BAND_ROFORMER if "num_bands" in model else BS_ROFORMER)
    params = resolve_model_params(kind, model, where)
    audio = data.get("audio") or {}
    inference = data.get("inference") or {}
    training = data.get("training") or {}
    target = training.get("target_instrument")
    if target:
        instruments = (target,) if isinstance(target, str) else tuple(target)
    else:
        instruments = tuple(training.get("instruments") or ())
    if not instruments:
        instruments = tuple(f"stem{i}" for i in range(params["num_stems"]))
    if len(instruments) != params["num_stems"]:
        raise ModelConfigError(
            f"{where}: {len(instruments)} instruments ({', '.join(instruments)}) "
            f"but the model has num_stems={params['num_stems']}"
        )
    sample_rate = int(audio.get("sample_rate", params.get("sample_rate", 44100)))
    chunk_size = audio.get("chunk_size")
    if not isinstance(chunk_size, int) or chunk_size < params["stft_n_fft"]:
        raise ModelConfigError(
            f"{where}: audio.chunk_size must be an integer >= stft_n_fft, got {chunk_size!r}"
        )
    num_overlap = inference.get("num_overlap", 2)
    batch_size = inference.get("batch_size", 1)
    for key, value in (("inference.num_overlap", num_overlap), ("inference.batch_size", batch_size)):
        if not isinstance(value, int) or value < 1:
            raise ModelConfigError(f"{where}: {key} must be a positive integer, got {value!r}")
    return ModelSpec(
        name=name,
        kind=kind,
        params=params,
        instruments=instruments,
        sample_rate=sample_rate,
        chunk_size=chunk_size,
        num_overlap=num_overlap,
        batch_size=batch_size,
        source=source,
    )


PRESETS: dict[str, dict[str, Any]] = {
    # The MUSDB18 4-stem BS-RoFormer architecture (DESIGN.md "Separation engine").
    "bs_roformer_4stem": {
        "model_type": BS_ROFORMER,
        "model": {
            "dim": 384,
            "depth": 8,
            "stereo": True,
            "num_stems": 4,
            "time_transformer_depth": 1,
            "freq_transformer_depth": 1,
            "linear_transformer_depth": 0,
            "freqs_per_bands": DEFAULT_FREQS_PER_BANDS,
            "dim_head": 64,
            "heads": 8,
            "attn_dropout": 0.1,
            "ff_dropout": 0.1,
            "flash_attn": True,
            "dim_freqs_in": 1025,
            "stft_n_fft": 2048,
            "stft_hop_length": 441,
            "stft_win_length": 2048,
            "stft_normalized": False,
            "mask_estimator_depth": 2,
            "mlp_expansion_factor": 2,
        },
        "audio": {"chunk_size": 485100, "sample_rate": 44100},
        "inference": {"batch_size": 1, "num_overlap": 2},
        "training": {"instruments": ["drums", "bass", "other", "vocals"]},
    },
    # Same structure, a few thousand times less compute: for tests.
    "tiny": {
        "model_type": BS_ROFORMER,
        "model": {
            "dim": 32,
            "depth": 1,
            "stereo": True,
            "num_stems": 4,
            "time_transformer_depth": 1,
            "freq_transformer_depth": 1,
            "freqs_per_bands": (1,) + (4,) * 8 + (8,) * 4 + (16,) * 4,
            "dim_head": 16,
            "heads": 2,
            "dim_freqs_in": 129,
            "stft_n_fft": 256,
            "stft_hop_length": 64,
            "stft_win_length": 256,
            "mask_estimator_depth": 2,
            "mlp_expansion_factor": 2,
        },
        "audio": {"chunk_size": 16384, "sample_rate": 44100},
        "inference": {"batch_size": 2, "num_overlap": 2},
        "training": {"instruments": ["drums", "bass", "other", "vocals"]},
    },
    "tiny_mel": {
        "model_type": MEL_BAND_ROFORMER,
        "model": {
            "dim": 32,
            "depth": 1,
            "stereo": True,
            "num_stems": 2,
            "time_transformer_depth": 1,
            "freq_transformer_depth": 1,
            "num_bands": 8,
            "dim_head": 16,
            "heads": 2,
            "dim_freqs_in": 129,
            "stft_n_fft": 256,
            "stft_hop_length": 64,
            "stft_win_length": 256,
            "mask_estimator_depth": 1,
            "mlp_expansion_factor": 2,
        },
        "audio": {"chunk_size": 16384, "sample_rate": 44100},
        "inference": {"batch_size": 1, "num_overlap": 2},
        "training": {"instruments": ["vocals", "other"]},
    },
}


def resolve_spec(model: str | None) -> ModelSpec:
    """A preset name or a path to an MSST YAML config (default: bs_roformer_4stem)."""
    model = model or "bs_roformer_4stem"
    if model in PRESETS:
        return spec_from_config(PRESETS[model], name=model, source="preset")
    path = Path(model)
    if path.suffix.lower() in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise ModelConfigError(f"{path}: model config not found")
        return load_yaml(path)
    raise ModelConfigError(
        f"unknown model {model!r}: give a preset ({', '.join(PRESETS)}) or a .yaml config.{_close(model, list(PRESETS))}"
    )
