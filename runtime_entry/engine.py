"""The separation engine shared by `stems separate`, `stems worker` and `stems bench`.

Imports torch at module level: import it only after config.prepare_environment.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import __version__
from .audio import (
    AudioInfo,
    MixReader,
    Resampler,
    StemWriter,
    Warnings,
    adapt_channels,
    check_output_format,
    commit_all,
    probe,
    read_blocks,
    remove_leftovers,
    truncation_note,
)
from .checkpoint import load_checkpoint
from .demix import demix_stream, normalization_stats, plan
from .errors import InputError, UsageError
from .models import DEFAULT_SEED, ModelSpec, build_model, resolve_spec
from .outputs import check_stem_names, job_folder

Progress = Callable[[int, int], None]
# peaks (full scale 1.0): an input above AUDIBLE whose stems all stay under SILENT is reported
AUDIBLE = 1e-4  # -80 dBFS
SILENT = 1e-6  # -120 dBFS


@dataclass
class LoadedModel:
    spec: ModelSpec
    model: nn.Module
    checkpoint: str | None
    checkpoint_sha256: str | None
    load_seconds: float

    @property
    def untrained(self) -> bool:
        return self.checkpoint is None

    def describe(self) -> dict[str, object]:
        return {
            "name": self.spec.name,
            "kind": self.spec.kind,
            "source": self.spec.source,
            "instruments": list(self.spec.instruments),
            "sample_rate": self.spec.sample_rate,
            "chunk_size": self.spec.chunk_size,
            "checkpoint": self.checkpoint,
            "checkpoint_sha256": self.checkpoint_sha256,
            "untrained": self.untrained,
            "seed": DEFAULT_SEED if self.untrained else None,
            "parameters": sum(p.numel() for p in self.model.parameters()),
        }


class Engine:
    """Keeps loaded models (a few, most recent first) between jobs."""

    def __init__(self, cache_size: int = 2) -> None:
        self.cache_size = cache_size
        self._models: dict[tuple[object, ...], LoadedModel] = {}

    def cached(self) -> list[dict[str, object]]:
        return [m.describe() for m in self._models.values()]

    def load(self, model: str | None, checkpoint: str | None = None) -> LoadedModel:
        spec = resolve_spec(model)
        ck = str(Path(checkpoint).resolve()) if checkpoint else None
        try:  # a path that cannot be stat'ed is said by load_checkpoint, which reads it
            stamp = Path(ck).stat().st_mtime_ns if ck else None
        except (OSError, ValueError):
            stamp = None
        key = (spec.name, spec.source, ck, stamp)
        if key in self._models:
            hit = self._models.pop(key)
            self._models[key] = hit
            return hit
        started = time.perf_counter()
        net = build_model(spec)
        sha = None
        if checkpoint:
            sha = load_checkpoint(net, checkpoint).sha256
        loaded = LoadedModel(
            spec=spec,
            model=net,
            checkpoint=ck,
            checkpoint_sha256=sha,
            load_seconds=time.perf_counter() - started,
        )
        self._models[key] = loaded
        while len(self._models) > self.cache_size:
            self._models.pop(next(iter(self._models)))
        return loaded


def untrained_note(loaded: LoadedModel) -> str:
    return (
        f"UNTRAINED: model {loaded.spec.name} has seeded random weights (seed {DEFAULT_SEED}); "
        "the output is not a real separation"
    )


def with_overrides(spec: ModelSpec, *, batch_size: int | None, overlap: int | None) -> ModelSpec:
    if batch_size is not None and batch_size < 1:
        raise UsageError(f"batch size must be a positive integer, got {batch_size}")
    if overlap is not None and not 1 <= overlap <= spec.chunk_size:
        raise UsageError(f"overlap must be between 1 and the chunk size, got {overlap}")
    return replace(spec, batch_size=batch_size or spec.batch_size, num_overlap=overlap or spec.num_overlap)


def select_stems(spec: ModelSpec, stems: list[str] | None) -> list[int]:
    """The stems to write: None for all; an empty list or a stem named twice is refused."""
    if stems is None:
        return list(range(len(spec.instruments)))
    if not stems:
        raise UsageError(
            f"the stem list is empty; name at least one of {', '.join(spec.instruments)}, or leave it out for all"
        )
    check_stem_names(stems, "stems")
    out = []
    for name in stems:
        if name not in spec.instruments:
            raise UsageError(f"unknown stem {name!r}; model {spec.name} has: {', '.join(spec.instruments)}")
        out.append(spec.instruments.index(name))
    return out


def check_channels(info: AudioInfo, spec: ModelSpec) -> None:
    """Mono and stereo go to a stereo model as they are (mono duplicated), and anything to a model
    that mixes to mono (audio.num_channels 1); more channels than a stereo model takes are refused:
    which of them are left and right is not known, and dropping some would lose them silently."""
    if spec.audio_channels > 1 and spec.num_channels != 1 and info.channels > spec.audio_channels:
        raise InputError(
            f"{info.path}: {info.channels} channels, but model {spec.name} takes at most "
            f"{spec.audio_channels}; mix it down to stereo first (for example `ffmpeg -i IN -ac 2 OUT.wav`)"
        )


def instrumental_stem(spec: ModelSpec, instrumental: bool | str) -> int | None:
    """The stem the instrumental leaves out: the one named, else msst's --extract_instrumental
    choice (vocals, else the first stem); None for no instrumental."""
    if not instrumental:
        return None
    if "instrumental" in spec.instruments:
        raise UsageError(f"model {spec.name} has an 'instrumental' stem already; choose it with stems")
    if isinstance(instrumental, str):
        return select_stems(spec, [instrumental])[0]
    return spec.instruments.index("vocals") if "vocals" in spec.instruments else 0


def separate_file(
    loaded: LoadedModel,
    input_path: str | Path,
    out_dir: str | Path,
    *,
    stems: list[str] | None = None,
    fmt: str = "wav",
    sample_format: str | None = None,
    instrumental: bool | str = False,
    batch_size: int | None = None,
    overlap: int | None = None,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict[str, object]:
    """Separate one file into `out_dir/<input name>/<stem>.<fmt>`; returns what was written.
    With `instrumental`, also `instrumental.<fmt>`: the mix minus one stem (see instrumental_stem)."""
    check_output_format(fmt, sample_format)
    spec = with_overrides(loaded.spec, batch_size=batch_size, overlap=overlap)
    chosen = select_stems(spec, stems)
    left_out = instrumental_stem(spec, instrumental)
    computed = chosen if left_out is None or left_out in chosen else [*chosen, left_out]
    target = job_folder(out_dir, input_path)
    info = probe(input_path)
    check_channels(info, spec)
    warnings = Warnings()
    if note := truncation_note(info):
        warnings.add(note)
    peaks = {"in": 0.0, "out": 0.0}
    started = time.perf_counter()
    channels = spec.audio_channels
    to_model = Resampler(info.samplerate, spec.sample_rate, channels)
    model_len = to_model.out_length(info.frames) if not to_model.identity else info.frames
    # as msst: audio.num_channels 1 downmixes first, 2 writes stereo even from mono; without
    # it a mono file is fed duplicated and written as the first output channel
    out_channels = spec.num_channels or (1 if info.channels == 1 else channels)
    back = Resampler(spec.sample_rate, info.samplerate, len(computed) * channels)

    def model_blocks(to_model: Resampler) -> Iterator[np.ndarray]:
        for block in read_blocks(info, warnings=warnings):
            if block.size:
                peaks["in"] = max(peaks["in"], float(np.abs(block).max()))
            if spec.num_channels == 1 and block.shape[0] > 1:
                block = block.mean(axis=0, keepdims=True)
            out = to_model.process(adapt_channels(block, channels))
            if out.shape[1]:
                yield out
        tail = to_model.flush()
        if tail.shape[1]:
            yield tail

    # inference.normalize needs the whole signal's statistics: one reading pass before the run
    norm = None
    if spec.normalize:
        norm = normalization_stats(model_blocks(Resampler(info.samplerate, spec.sample_rate, channels)))

    def mix_layout(block: np.ndarray) -> np.ndarray:  # the input as the stems are written
        if spec.num_channels == 1 and block.shape[0] > 1:
            block = block.mean(axis=0, keepdims=True)
        block = adapt_channels(block, channels)
        return block[:1] if out_channels == 1 else block

    names = [spec.instruments[i] for i in chosen] + ([] if left_out is None else ["instrumental"])
    writers: list[StemWriter] = []
    mix: MixReader | None = None
    written = 0
    remove_leftovers(target)  # partial stems of a killed run into this folder
    try:
        for name in names:
            writers.append(
                StemWriter(
                    target / f"{name}.{fmt}",
                    info.samplerate,
                    out_channels,
                    fmt,
                    protect=[Path(input_path)],
                    sample_format=sample_format,
                )
            )
        if left_out is not None:
            mix = MixReader(info, mix_layout)
        if loaded.untrained:
            for w in writers:
                w.fh.comment = untrained_note(loaded)

        def write(block: np.ndarray) -> None:
            nonlocal written
            block = block[:, :, :] if block.ndim == 3 else block
            n = min(block.shape[-1], info.frames - written)
            if n <= 0:
                return
            layout = [stem[:1, :n] if out_channels == 1 else stem[:, :n] for stem in block]
            for data in layout[: len(chosen)]:
                if data.size:
                    peaks["out"] = max(peaks["out"], float(np.abs(data).max()))
            for w, data in zip(writers[: len(chosen)], layout[: len(chosen)], strict=True):
                w.write(data)
            if mix is not None and left_out is not None:
                writers[-1].write(mix.read(n) - layout[computed.index(left_out)])
            written += n

        def sink(block: np.ndarray) -> None:
            sel = block[computed]  # (k, channels, m)
            out = back.process(sel.reshape(len(computed) * channels, -1))
            if out.shape[1]:
                write(out.reshape(len(computed), channels, -1))

        chunks = demix_stream(
            loaded.model,
            model_blocks(to_model),
            model_len,
            chunk_size=spec.chunk_size,
            num_overlap=spec.num_overlap,
            batch_size=spec.batch_size,
            num_stems=len(spec.instruments),
            channels=channels,
            sink=sink,
            progress=progress,
            should_stop=should_stop,
            stem_ids=spec.stem_ids,
            normalization=norm,
        )
        tail = back.flush()
        if tail.shape[1]:
            write(tail.reshape(len(computed), channels, -1))
        if written != info.frames:
            raise RuntimeError(f"wrote {written} frames, expected {info.frames}")
        commit_all(writers)  # every stem, or none
    except BaseException:
        for w in writers:
            w.abort()
        raise
    finally:
        if mix is not None:
            mix.close()
    seconds = time.perf_counter() - started
    if peaks["in"] > AUDIBLE and peaks["out"] < SILENT:
        warnings.add(
            f"{input_path}: every stem is silent although the input is not (input peak "
            f"{peaks['in']:.3g}): the model's weights may be damaged or untrained"
        )
    return {
        "input": str(input_path),
        "outputs": {name: str(w.path) for name, w in zip(names, writers, strict=True)},
        "frames": info.frames,
        "sample_rate": info.samplerate,
        "audio_seconds": round(info.seconds, 3),
        "seconds": round(seconds, 3),
        "realtime_factor": round(seconds / info.seconds, 4) if info.seconds else None,
        "chunks": chunks,
        "model": loaded.spec.name,
        "untrained": loaded.untrained,
        "version": __version__,
        "warnings": list(warnings),
    }


def chunk_count(spec: ModelSpec, frames: int, samplerate: int) -> int:
    r = Resampler(samplerate, spec.sample_rate, 1)
    n = frames if r.identity else r.out_length(frames)
    return len(plan(n, spec.chunk_size, spec.num_overlap).starts)


def torch_versions() -> dict[str, object]:
    import platform

    import numpy

    out: dict[str, object] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
    }
    try:
        import soundfile

        out["soundfile"] = soundfile.__version__
        out["libsndfile"] = soundfile.__libsndfile_version__
    except (ImportError, OSError):
        out["soundfile"] = None
    return out
