"""`stems bench --json`: separate generated audio and report speed and resources."""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import __version__, config
from .cli_common import AddFlags

if TYPE_CHECKING:
    import numpy as np

    from .cli_common import SubParsers
    from .engine import LoadedModel


def add_parser(sub: SubParsers, add_runtime_flags: AddFlags, /) -> None:
    from .separate import add_model_flags

    p = sub.add_parser(
        "bench", help="separate generated audio; report real-time factor, s/chunk, CPU, memory"
    )
    add_model_flags(p)
    p.add_argument(
        "--seconds", type=float, default=None, help="length of the generated audio (default: 2 chunks)"
    )
    p.add_argument("--no-warmup", action="store_true", help="skip the untimed warm-up forward pass")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_runtime_flags(p)


def generated_audio(start: int, frames: int, sample_rate: int, seed: int = 0) -> np.ndarray:
    """Frames [start, start + frames) of a deterministic stereo test signal: harmonic
    tones, a pulse train and noise. Generated block by block, so a long benchmark
    file never has to exist in memory."""
    import numpy as np

    rng = np.random.default_rng([seed, start])
    t = (start + np.arange(frames)) / sample_rate
    tones = sum(0.1 / k * np.sin(2 * np.pi * 110 * k * t + k) for k in range(1, 6))
    pulse = 0.3 * (np.sin(2 * np.pi * 2 * t) > 0.995)
    noise = 0.02 * rng.standard_normal((2, frames))
    return (np.stack([tones + pulse, 0.8 * tones + pulse]) + noise).astype("float32")


def write_generated(path: str, seconds: float, sample_rate: int, block: int = 1 << 18) -> int:
    import soundfile

    total = int(seconds * sample_rate)
    with soundfile.SoundFile(path, "w", samplerate=sample_rate, channels=2, subtype="FLOAT") as fh:
        for start in range(0, total, block):
            fh.write(generated_audio(start, min(block, total - start), sample_rate).T)
    return total


def _peak_rss_mb() -> float | None:
    """Peak resident memory of this process; `resource` exists only on POSIX systems."""
    if sys.platform == "win32":
        import ctypes
        from ctypes import wintypes

        class Counters(ctypes.Structure):
            _fields_ = [("cb", wintypes.DWORD), ("PageFaultCount", wintypes.DWORD),
                        ("PeakWorkingSetSize", ctypes.c_size_t), ("WorkingSetSize", ctypes.c_size_t),
                        ("QuotaPeakPagedPoolUsage", ctypes.c_size_t), ("QuotaPagedPoolUsage", ctypes.c_size_t),
                        ("QuotaPeakNonPagedPoolUsage", ctypes.c_size_t),
                        ("QuotaNonPagedPoolUsage", ctypes.c_size_t), ("PagefileUsage", ctypes.c_size_t),
                        ("PeakPagefileUsage", ctypes.c_size_t)]  # fmt: skip

        counters = Counters()
        counters.cb = ctypes.sizeof(counters)
        kernel32, psapi = ctypes.WinDLL("kernel32"), ctypes.WinDLL("psapi")
        handle = kernel32.GetCurrentProcess()
        if not psapi.GetProcessMemoryInfo(handle, ctypes.byref(counters), counters.cb):
            return None
        peak_bytes: int = counters.PeakWorkingSetSize
        return round(peak_bytes / 1e6, 1)
    else:
        import resource

        peak: int = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
        return round(peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024, 1)


def chunk_times(marks: list[tuple[float, int]]) -> list[float]:
    """Seconds per chunk of each batch, from (time, chunks done) marks taken at the start and
    after every batch: the within-run figures whose median a noisy process cannot move much.

    >>> chunk_times([(0.0, 0), (0.5, 1), (1.25, 2), (2.25, 4)])
    [0.5, 0.75, 0.5, 0.5]
    """
    out: list[float] = []
    for (t0, d0), (t1, d1) in itertools.pairwise(marks):
        if d1 > d0:
            out += [(t1 - t0) / (d1 - d0)] * (d1 - d0)
    return out


def warm_up(loaded: LoadedModel) -> float:
    """One chunk through the model before the timed run; its seconds."""
    import torch

    spec = loaded.spec
    chunk = generated_audio(0, spec.chunk_size, spec.sample_rate)[: spec.audio_channels]
    t0 = time.perf_counter()
    with torch.inference_mode():
        loaded.model(torch.from_numpy(chunk).unsqueeze(0))
    return time.perf_counter() - t0


@dataclass(frozen=True)
class TimedRun:
    result: dict[str, object]  # separate_file's
    frames: int  # of the generated input
    marks: list[tuple[float, int]]  # (time, chunks done)
    cpu: float
    wall: float


def timed_separation(loaded: LoadedModel, args: argparse.Namespace, seconds: float) -> TimedRun:
    """Separate `seconds` of generated audio in a temporary folder, timing each chunk."""
    from .engine import separate_file

    spec = loaded.spec
    with tempfile.TemporaryDirectory(prefix="stems-bench-") as tmp:
        src = os.path.join(tmp, "bench.wav")
        frames = write_generated(src, seconds, spec.sample_rate)
        marks: list[tuple[float, int]] = []
        cpu0, wall0 = time.process_time(), time.perf_counter()
        marks.append((wall0, 0))
        result = separate_file(
            loaded,
            src,
            os.path.join(tmp, "out"),
            batch_size=args.batch_size,
            overlap=args.overlap,
            progress=lambda done, _total: marks.append((time.perf_counter(), done)),
        )
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return TimedRun(result=result, frames=frames, marks=marks, cpu=cpu, wall=wall)


def measure(args: argparse.Namespace, cfg: config.RuntimeConfig) -> dict[str, object]:
    import torch

    from .engine import Engine, chunk_count, torch_versions

    config.apply_to_torch(cfg)
    engine = Engine()
    t0 = time.perf_counter()
    loaded = engine.load(args.model, args.checkpoint)
    load_s = time.perf_counter() - t0
    spec = loaded.spec
    seconds = args.seconds or 2 * spec.chunk_size / spec.sample_rate
    warmup_s = None if args.no_warmup else warm_up(loaded)
    timed = timed_separation(loaded, args, seconds)
    result, frames, marks = timed.result, timed.frames, timed.marks
    cpu, wall = timed.cpu, timed.wall
    chunks = int(str(result["chunks"]))
    per_chunk = chunk_times(marks)
    threads = torch.get_num_threads()
    return {
        "program": "stems",
        "version": __version__,
        "model": loaded.describe(),
        "untrained": loaded.untrained,
        "audio_seconds": round(seconds, 3),
        "chunks": chunks,
        "expected_chunks": chunk_count(spec, frames, spec.sample_rate),
        "wall_seconds": round(wall, 3),
        "seconds_per_chunk": round(wall / max(chunks, 1), 3),
        "chunk_seconds": [round(t, 4) for t in per_chunk],
        "median_chunk_seconds": round(statistics.median(per_chunk), 4) if per_chunk else None,
        "realtime_factor": round(wall / seconds, 4),
        "cpu_seconds": round(cpu, 3),
        "cpu_utilisation": round(cpu / wall / threads, 3) if wall else None,
        "cpu_cores_busy": round(cpu / wall, 2) if wall else None,
        "peak_rss_mb": _peak_rss_mb(),
        "load_seconds": round(load_s, 3),
        "warmup_seconds": round(warmup_s, 3) if warmup_s is not None else None,
        "threads": {"intra_op": threads, "inter_op": torch.get_num_interop_threads()},
        "matmul_precision": torch.get_float32_matmul_precision(),
        "batch_size": args.batch_size or spec.batch_size,
        "num_overlap": args.overlap or spec.num_overlap,
        "env": {
            k: os.environ[k]
            for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "KMP_AFFINITY", "KMP_BLOCKTIME")
            if k in os.environ
        },
        "versions": torch_versions(),
    }


def run(args: argparse.Namespace, cfg: config.RuntimeConfig) -> int:
    from .cli_common import print_json

    data = measure(args, cfg)
    if args.json:
        print_json(data)
    else:
        for key, value in data.items():
            print(f"{key}: {value}")
    return 0
