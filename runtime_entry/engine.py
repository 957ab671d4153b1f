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
from .demix import Normalization, demix_stream, normalization_stats, plan
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


@dataclass(frozen=True, kw_only=True)
class Job:
    """One separation, decided before any audio is read: the model's settings (with the
    job's overrides), the input's facts, the stems asked for and the layout they are written in."""

    spec: ModelSpec
    info: AudioInfo
    input_path: Path
    target: Path  # the job's folder: out_dir/<input name>
    chosen: tuple[int, ...]  # the stems written, in order
    left_out: int | None  # the stem the instrumental leaves out (None: no instrumental)
    computed: tuple[int, ...]  # the stems taken from the model: chosen, and left_out
    out_channels: int

    @property
    def channels(self) -> int:
        return self.spec.audio_channels

    @property
    def names(self) -> list[str]:
        """The files written, as stem names: the chosen stems, then `instrumental`."""
        return [self.spec.instruments[i] for i in self.chosen] + (
            [] if self.left_out is None else ["instrumental"]
        )

    def model_layout(self, block: np.ndarray) -> np.ndarray:
        """Input channels as the model takes them: audio.num_channels 1 downmixes first."""
        if self.spec.num_channels == 1 and block.shape[0] > 1:
            block = block.mean(axis=0, keepdims=True)
        return adapt_channels(block, self.channels)

    def written_layout(self, block: np.ndarray) -> np.ndarray:
        """Input channels as the stems are written (the mix the instrumental is taken from)."""
        block = self.model_layout(block)
        return block[:1] if self.out_channels == 1 else block


def plan_job(
    loaded: LoadedModel,
    input_path: str | Path,
    out_dir: str | Path,
    *,
    stems: list[str] | None,
    instrumental: bool | str,
    batch_size: int | None,
    overlap: int | None,
) -> Job:
    """Every refusal of the arguments and of the input's header, before any output is made."""
    spec = with_overrides(loaded.spec, batch_size=batch_size, overlap=overlap)
    chosen = select_stems(spec, stems)
    left_out = instrumental_stem(spec, instrumental)
    computed = chosen if left_out is None or left_out in chosen else [*chosen, left_out]
    target = job_folder(out_dir, input_path)
    info = probe(input_path)
    check_channels(info, spec)
    # as msst: audio.num_channels 1 downmixes first, 2 writes stereo even from mono; without
    # it a mono file is fed duplicated and written as the first output channel
    out_channels = spec.num_channels or (1 if info.channels == 1 else spec.audio_channels)
    return Job(
        spec=spec,
        info=info,
        input_path=Path(input_path),
        target=target,
        chosen=tuple(chosen),
        left_out=left_out,
        computed=tuple(computed),
        out_channels=out_channels,
    )


@dataclass
class Peaks:
    """The loudest sample seen in the input and in the written stems (full scale 1.0)."""

    input: float = 0.0
    output: float = 0.0

    def silence_note(self, input_path: str | Path) -> str | None:
        if self.input > AUDIBLE and self.output < SILENT:
            return (
                f"{input_path}: every stem is silent although the input is not (input peak "
                f"{self.input:.3g}): the model's weights may be damaged or untrained"
            )
        return None


def model_blocks(job: Job, to_model: Resampler, warnings: Warnings, peaks: Peaks) -> Iterator[np.ndarray]:
    """The input, block by block, in the model's channels and at its rate."""
    for block in read_blocks(job.info, warnings=warnings):
        if block.size:
            peaks.input = max(peaks.input, float(np.abs(block).max()))
        out = to_model.process(job.model_layout(block))
        if out.shape[1]:
            yield out
    tail = to_model.flush()
    if tail.shape[1]:
        yield tail


class StemSink:
    """Takes the model's stems block by block at its rate, brings them back to the input's
    rate and writes them (the instrumental: the mix minus one stem); counts the frames written."""

    def __init__(self, job: Job, writers: list[StemWriter], mix: MixReader | None, peaks: Peaks) -> None:
        self.job = job
        self.writers = writers
        self.mix = mix
        self.peaks = peaks
        self.back = Resampler(job.spec.sample_rate, job.info.samplerate, len(job.computed) * job.channels)
        self.written = 0

    def take(self, block: np.ndarray) -> None:
        """A block of the model's output, (stems, channels, m): the stems computed go back."""
        sel = block[list(self.job.computed)]  # (k, channels, m)
        out = self.back.process(sel.reshape(len(self.job.computed) * self.job.channels, -1))
        if out.shape[1]:
            self.write(out.reshape(len(self.job.computed), self.job.channels, -1))

    def write(self, block: np.ndarray) -> None:
        job, chosen = self.job, len(self.job.chosen)
        n = min(block.shape[-1], job.info.frames - self.written)
        if n <= 0:
            return
        layout = [stem[:1, :n] if job.out_channels == 1 else stem[:, :n] for stem in block]
        for data in layout[:chosen]:
            if data.size:
                self.peaks.output = max(self.peaks.output, float(np.abs(data).max()))
        for w, data in zip(self.writers[:chosen], layout[:chosen], strict=True):
            w.write(data)
        if self.mix is not None and job.left_out is not None:
            self.writers[-1].write(self.mix.read(n) - layout[job.computed.index(job.left_out)])
        self.written += n

    def finish(self) -> None:
        """The resampler's tail, then every frame of the input must have been written."""
        tail = self.back.flush()
        if tail.shape[1]:
            self.write(tail.reshape(len(self.job.computed), self.job.channels, -1))
        if self.written != self.job.info.frames:
            raise RuntimeError(f"wrote {self.written} frames, expected {self.job.info.frames}")


def stem_writers(job: Job, loaded: LoadedModel, fmt: str, sample_format: str | None) -> Iterator[StemWriter]:
    """One writer per file, opened one at a time (the caller keeps each, to abort it on failure)."""
    for name in job.names:
        writer = StemWriter(
            job.target / f"{name}.{fmt}",
            job.info.samplerate,
            job.out_channels,
            fmt,
            protect=[job.input_path],
            sample_format=sample_format,
        )
        if loaded.untrained:
            writer.fh.comment = untrained_note(loaded)
        yield writer


def write_stems(
    loaded: LoadedModel,
    job: Job,
    *,
    fmt: str,
    sample_format: str | None,
    normalization: Normalization | None,
    warnings: Warnings,
    peaks: Peaks,
    progress: Progress | None,
    should_stop: Callable[[], bool] | None,
) -> tuple[int, dict[str, str]]:
    """Run the model over the input and write every stem, or none: (chunks, files by name)."""
    to_model = Resampler(job.info.samplerate, job.spec.sample_rate, job.channels)
    model_len = to_model.out_length(job.info.frames) if not to_model.identity else job.info.frames
    writers: list[StemWriter] = []
    mix: MixReader | None = None
    remove_leftovers(job.target)  # partial stems of a killed run into this folder
    try:
        for writer in stem_writers(job, loaded, fmt, sample_format):  # each kept as soon as it is open
            writers.append(writer)
        if job.left_out is not None:
            mix = MixReader(job.info, job.written_layout)
        sink = StemSink(job, writers, mix, peaks)
        chunks = demix_stream(
            loaded.model,
            model_blocks(job, to_model, warnings, peaks),
            model_len,
            chunk_size=job.spec.chunk_size,
            num_overlap=job.spec.num_overlap,
            batch_size=job.spec.batch_size,
            num_stems=len(job.spec.instruments),
            channels=job.channels,
            sink=sink.take,
            progress=progress,
            should_stop=should_stop,
            stem_ids=job.spec.stem_ids,
            normalization=normalization,
        )
        sink.finish()
        commit_all(writers)  # every stem, or none
    except BaseException:
        for w in writers:
            w.abort()
        raise
    finally:
        if mix is not None:
            mix.close()
    return chunks, {name: str(w.path) for name, w in zip(job.names, writers, strict=True)}


def normalization_of(job: Job, warnings: Warnings, peaks: Peaks) -> Normalization | None:
    """inference.normalize needs the whole signal's statistics: one reading pass before the run."""
    if not job.spec.normalize:
        return None
    first_pass = Resampler(job.info.samplerate, job.spec.sample_rate, job.channels)
    return normalization_stats(model_blocks(job, first_pass, warnings, peaks))


def job_result(
    job: Job,
    loaded: LoadedModel,
    input_path: str | Path,
    *,
    outputs: dict[str, str],
    chunks: int,
    seconds: float,
    warnings: Warnings,
) -> dict[str, object]:
    info = job.info
    return {
        "input": str(input_path),
        "outputs": outputs,
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
    job = plan_job(
        loaded,
        input_path,
        out_dir,
        stems=stems,
        instrumental=instrumental,
        batch_size=batch_size,
        overlap=overlap,
    )
    warnings = Warnings()
    if note := truncation_note(job.info):
        warnings.add(note)
    peaks = Peaks()
    started = time.perf_counter()
    chunks, outputs = write_stems(
        loaded,
        job,
        fmt=fmt,
        sample_format=sample_format,
        normalization=normalization_of(job, warnings, peaks),
        warnings=warnings,
        peaks=peaks,
        progress=progress,
        should_stop=should_stop,
    )
    seconds = time.perf_counter() - started
    if note := peaks.silence_note(input_path):
        warnings.add(note)
    return job_result(
        job, loaded, input_path, outputs=outputs, chunks=chunks, seconds=seconds, warnings=warnings
    )


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
