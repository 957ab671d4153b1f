"""Model specs: presets and MSST-style YAML configs, resolved into frozen dataclasses.

Pure Python (pyyaml only, imported lazily): nothing here imports torch, so a
config error is reported before torch is even loaded.

A config is read the way msst's inference reads it (msst/_inference.py and
msst/utils/model_utils.py `demix`):
- `model:` the constructor arguments; an unknown key is an error, as in msst (whose
  constructors raise TypeError); a key omitted gets msst's default;
- the model type is `training.model_type`, else our top-level `model_type:` (what
  msst takes from its command line), else inferred (`num_bands` -> Mel-Band RoFormer);
- `inference.chunk_size` before `audio.chunk_size`; `inference.num_overlap`,
  `inference.batch_size`, `inference.normalize`;
- `audio.sample_rate` (default 44100), `audio.num_channels`;
- `training.instruments` and `training.target_instrument`.
Every other key of `audio:` and `inference:` is one that msst reads only for training
or for other model types (NO_EFFECT_ON_INFERENCE); anything else there is refused.
Under `training:` and any other section (augmentations, losses, lora), every key
other than those above configures training: msst's inference never reads them.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ModelConfigError
from ..files import file_problem, problem_text
from ..outputs import bad_file_name, name_key

BS_ROFORMER = "bs_roformer"
MEL_BAND_ROFORMER = "mel_band_roformer"
KINDS = (BS_ROFORMER, MEL_BAND_ROFORMER)

# The 62 bands of the BS-RoFormer paper (sum 1025 = n_fft 2048 // 2 + 1).
DEFAULT_FREQS_PER_BANDS = (2,) * 24 + (4,) * 12 + (12,) * 8 + (24,) * 8 + (48,) * 8 + (128, 129)

# Constructor arguments and their defaults, exactly as msst 0.1.0's classes
# (msst/models/bs_roformer/{bs,mel_band}_roformer.py). A Python callable (the two
# *_window_fn) cannot come from a config file: only null is accepted for stft_window_fn.
_COMMON: dict[str, Any] = {
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
    "stft_window_fn": None,
    "zero_dc": True,
    "multi_stft_resolution_loss_weight": 1.0,
    "multi_stft_resolutions_window_sizes": (4096, 2048, 1024, 512, 256),
    "multi_stft_hop_size": 147,
    "multi_stft_normalized": False,
    "multi_stft_window_fn": None,
    "mlp_expansion_factor": 4,
    "use_torch_checkpoint": False,
    "skip_connection": False,
    "use_pope": False,
    # not an msst option: audio-separator's configs carry it (see NO_EFFECT_ON_INFERENCE)
    "sage_attention": False,
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

# The one list of keys that are accepted and have no effect on inference, with the reason.
# tests/engine/test_msst_options.py checks that each really changes nothing.
NO_EFFECT_ON_INFERENCE: dict[str, str] = {
    "model.attn_dropout": "dropout: active in training only",
    "model.ff_dropout": "dropout: active in training only",
    "model.use_torch_checkpoint": "activation checkpointing: saves memory in training only",
    "model.multi_stft_resolution_loss_weight": "multi-resolution STFT loss: training only",
    "model.multi_stft_resolutions_window_sizes": "multi-resolution STFT loss: training only",
    "model.multi_stft_hop_size": "multi-resolution STFT loss: training only",
    "model.multi_stft_normalized": "multi-resolution STFT loss: training only",
    "model.multi_stft_window_fn": "multi-resolution STFT loss: training only",
    "model.dim_freqs_in": "unused by msst's code as well (the bands define the inputs)",
    "model.sage_attention": "audio-separator's kernel choice (not msst's): the fused attention kernel,"
    " same result as flash_attn",
    "audio.n_fft": "read by MDX23C models and training only",
    "audio.hop_length": "read by MDX23C models and training only",
    "audio.dim_f": "read by MDX23C models and training only",
    "audio.dim_t": "read by MDX23C models and training only",
    "audio.min_mean_abs": "training data selection only",
    "inference.dim_t": "read by older MDX23C inference only",
    "training.use_amp": "CUDA autocast in msst: no effect on a CPU",
    "training.samplerate": "read by HTDemucs only",
    "training.segment": "read by HTDemucs only",
}
AUDIO_KEYS = ("chunk_size", "sample_rate", "num_channels")
INFERENCE_KEYS = ("chunk_size", "num_overlap", "batch_size", "normalize")
_REQUIRED = ("dim", "depth")


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    name: str
    kind: str
    params: dict[str, Any]
    instruments: tuple[str, ...]  # the stems produced (training.target_instrument alone, when set)
    sample_rate: int
    chunk_size: int
    num_overlap: int = 2
    batch_size: int = 1
    normalize: bool = False
    num_channels: int | None = None  # audio.num_channels: the channels msst feeds and writes
    stem_ids: tuple[int, ...] | None = None  # the mask estimators to run (target_instrument)
    source: str = "preset"

    @property
    def audio_channels(self) -> int:
        return 2 if self.params.get("stereo") else 1


def _close(key: str, allowed: list[str]) -> str:
    match = difflib.get_close_matches(key, allowed, n=1)
    return f" Perhaps you meant {match[0]!r}?" if match else ""


def _tupled(value: Any) -> Any:
    return tuple(_tupled(v) for v in value) if isinstance(value, list | tuple) else value


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


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
    if model.get("stft_window_fn") is not None:
        raise ModelConfigError(
            f"{where}: model key 'stft_window_fn' must be null (a Python callable cannot come from a config)"
        )
    params = {**defaults, **{k: _tupled(v) for k, v in model.items()}}
    params.pop("multi_stft_window_fn")  # training only, and a callable: the class default stays
    for key in ("dim", "depth", "heads", "dim_head", "num_stems", "stft_n_fft", "stft_hop_length"):
        if not _positive_int(params[key]):
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

    def python_tuple(loader: Any, node: Any) -> tuple[Any, ...]:
        return tuple(loader.construct_sequence(node))

    # MSST configs write tuples as `!!python/tuple`; read them as data, run no code.
    Loader.add_constructor("tag:yaml.org,2002:python/tuple", python_tuple)
    return yaml, Loader


def load_yaml(path: Path) -> ModelSpec:
    yaml, loader = _yaml_loader()
    try:
        text = path.read_bytes().decode("utf-8")
        data = yaml.load(text, Loader=loader)
    except OSError as exc:
        raise ModelConfigError(f"{path}: cannot read model config: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ModelConfigError(
            f"{path}: not a YAML model config: not UTF-8 text (byte {exc.start})"
        ) from None
    except yaml.YAMLError as exc:
        raise ModelConfigError(
            f"Failed to parse {path}: {(str(exc).strip() or 'YAMLError').splitlines()[0]}"
        ) from None
    except RecursionError:
        raise ModelConfigError(f"{path}: not a YAML model config: nested too deeply") from None
    if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
        raise ModelConfigError(f"{path}: expected a mapping with a 'model:' section")
    try:
        return spec_from_config(data, name=path.stem, source=str(path))
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError) as exc:
        # a value of a type no check above expected (a list for a number...): still one line
        raise ModelConfigError(
            f"{path}: not a model config this runtime can read ({type(exc).__name__}: {exc})"[:400]
        ) from None


def _section(data: dict[str, Any], name: str, where: str, known: tuple[str, ...]) -> dict[str, Any]:
    section = data.get(name) or {}
    if not isinstance(section, dict):
        raise ModelConfigError(f"{where}: '{name}:' must be a mapping")
    allowed = [*known, *(k.split(".", 1)[1] for k in NO_EFFECT_ON_INFERENCE if k.startswith(name + "."))]
    if name != "training":
        for key in section:
            if key not in allowed:
                raise ModelConfigError(f"{where}: unknown key {name}.{key}.{_close(str(key), allowed)}")
    return section


def _check_instrument_names(names: tuple[str, ...], where: str) -> None:
    """Each instrument names a stem's file: a plain file name, once (outputs.py's rules)."""
    seen: dict[str, str] = {}
    for name in names:
        if (why := bad_file_name(name)) is not None:
            raise ModelConfigError(
                f"{where}: training.instruments: {name!r} cannot be a stem's file name ({why})"
            )
        if (key := name_key(name)) in seen:
            raise ModelConfigError(
                f"{where}: training.instruments: {seen[key]!r} and {name!r} would be one file; name each stem once"
            )
        seen[key] = name


def _instruments(
    training: dict[str, Any], num_stems: int, where: str
) -> tuple[tuple[str, ...], tuple[int, ...] | None]:
    """The stems produced and the mask estimators to run, as msst's demix chooses them."""
    configured = tuple(str(i) for i in training.get("instruments") or ())
    target = training.get("target_instrument")
    if not configured:
        if target:
            raise ModelConfigError(f"{where}: training.target_instrument needs training.instruments")
        configured = tuple(f"stem{i}" for i in range(num_stems))
    _check_instrument_names(configured, where)
    if target:
        if not isinstance(target, str) or target not in configured:
            raise ModelConfigError(
                f"{where}: training.target_instrument {target!r} is not one of training.instruments "
                f"({', '.join(configured)})"
            )
        if num_stems == len(configured):  # one head per instrument: run only the target's
            return (target,), (configured.index(target),)
        if num_stems == 1:  # a model trained on the target alone
            return (target,), None
        raise ModelConfigError(
            f"{where}: the model has num_stems={num_stems}: with training.target_instrument it must be 1 "
            f"or the number of training.instruments ({len(configured)})"
        )
    if len(configured) != num_stems:
        raise ModelConfigError(
            f"{where}: {len(configured)} instruments ({', '.join(configured)}) "
            f"but the model has num_stems={num_stems}"
        )
    return configured, None


def spec_from_config(data: dict[str, Any], *, name: str, source: str) -> ModelSpec:
    where = source
    model = dict(data["model"])
    audio = _section(data, "audio", where, AUDIO_KEYS)
    inference = _section(data, "inference", where, INFERENCE_KEYS)
    training = _section(data, "training", where, ())
    kind = (
        training.get("model_type")
        or data.get("model_type")
        or (MEL_BAND_ROFORMER if "num_bands" in model else BS_ROFORMER)
    )
    params = resolve_model_params(kind, model, where)
    instruments, stem_ids = _instruments(training, params["num_stems"], where)
    sample_rate = audio.get("sample_rate", 44100)
    if not _positive_int(sample_rate):
        raise ModelConfigError(f"{where}: audio.sample_rate must be a positive integer, got {sample_rate!r}")
    chunk_key = "inference.chunk_size" if "chunk_size" in inference else "audio.chunk_size"
    chunk_size = inference["chunk_size"] if "chunk_size" in inference else audio.get("chunk_size")
    if not isinstance(chunk_size, int) or not _positive_int(chunk_size) or chunk_size < params["stft_n_fft"]:
        raise ModelConfigError(f"{where}: {chunk_key} must be an integer >= stft_n_fft, got {chunk_size!r}")
    num_overlap = inference.get("num_overlap", 2)
    batch_size = inference.get("batch_size", 1)
    for key, value in (("inference.num_overlap", num_overlap), ("inference.batch_size", batch_size)):
        if not _positive_int(value):
            raise ModelConfigError(f"{where}: {key} must be a positive integer, got {value!r}")
    if num_overlap > chunk_size:
        raise ModelConfigError(
            f"{where}: inference.num_overlap {num_overlap} exceeds the chunk size {chunk_size}"
        )
    normalize = inference.get("normalize", False)
    if not isinstance(normalize, bool):
        raise ModelConfigError(f"{where}: inference.normalize must be true or false, got {normalize!r}")
    num_channels = audio.get("num_channels")
    channels = 2 if params["stereo"] else 1
    if num_channels is not None and num_channels not in (1, channels):
        raise ModelConfigError(
            f"{where}: audio.num_channels must be 1 or the model's {channels} channel(s), got {num_channels!r}"
        )
    return ModelSpec(
        name=name,
        kind=kind,
        params=params,
        instruments=instruments,
        sample_rate=sample_rate,
        chunk_size=chunk_size,
        num_overlap=num_overlap,
        batch_size=batch_size,
        normalize=normalize,
        num_channels=num_channels,
        stem_ids=stem_ids,
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
    # The 4-stem BS-RoFormer structure at dim 128, depth 2, STFT 1024/256: real matmul work that two
    # threads share (about 0.2 s per 1 s chunk on 2 cores), a few hundred times less than the full
    # model. builder's default benchmark workload: big enough to measure threads, small enough to
    # repeat in fresh processes.
    "small": {
        "model_type": BS_ROFORMER,
        "model": {
            "dim": 128,
            "depth": 2,
            "stereo": True,
            "num_stems": 4,
            "time_transformer_depth": 1,
            "freq_transformer_depth": 1,
            "freqs_per_bands": (1,) + (4,) * 8 + (8,) * 4 + (16,) * 4 + (48,) * 8,
            "dim_head": 32,
            "heads": 4,
            "dim_freqs_in": 513,
            "stft_n_fft": 1024,
            "stft_hop_length": 256,
            "stft_win_length": 1024,
            "mask_estimator_depth": 2,
            "mlp_expansion_factor": 2,
        },
        "audio": {"chunk_size": 44100, "sample_rate": 44100},
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
    problem = file_problem(path)
    if path.suffix.lower() in (".yaml", ".yml") or problem is None or problem[0] != "missing":
        if problem is not None:  # a FIFO, a device or a folder: never read (a read could block)
            text = problem_text(
                problem, missing="model config not found", holds="a model config is a .yaml file"
            )
            raise ModelConfigError(f"{path}: {text}")
        return load_yaml(path)
    raise ModelConfigError(
        f"unknown model {model!r}: give a preset ({', '.join(PRESETS)}) or a .yaml config.{_close(model, list(PRESETS))}"
    )
