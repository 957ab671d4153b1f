"""Engine test helpers: real audio files written in the test, the `tiny` preset, the CLI in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def tone(seconds: float, rate: int, channels: int = 2, seed: int = 0) -> np.ndarray:
    """(frames, channels) float32: harmonics plus a little noise, distinct per channel."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    cols = [
        sum(0.2 / k * np.sin(2 * np.pi * (220 + 30 * c) * k * t) for k in range(1, 4))
        for c in range(channels)
    ]
    return (np.stack(cols, axis=1) + 0.01 * rng.standard_normal((t.size, channels))).astype(np.float32)


@pytest.fixture
def write_audio(tmp_path: Path):
    import soundfile as sf

    def write(name: str, seconds: float = 1.0, rate: int = 44100, channels: int = 2, **kw) -> Path:
        path = tmp_path / name
        sf.write(str(path), tone(seconds, rate, channels), rate, **kw)
        return path

    return write


def stems_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEMS_")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["STEMS_THREADS"] = "2"
    return env


def run_stems(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runtime_entry", *args],
        cwd=ROOT,
        env=stems_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def stems():
    return run_stems


@pytest.fixture(scope="session")
def tiny():
    import torch

    from runtime_entry.models import build_model, resolve_spec

    torch.set_num_threads(2)
    spec = resolve_spec("tiny")
    return spec, build_model(spec)


class WorkerProc:
    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "runtime_entry", "worker", *args],
            cwd=ROOT,
            env=stems_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )

    def send(self, msg: dict | str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((msg if isinstance(msg, str) else json.dumps(msg)) + "\n")
        self.proc.stdin.flush()

    def recv(self) -> dict:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, f"worker closed stdout; stderr: {self.proc.stderr.read() if self.proc.stderr else ''}"
        return json.loads(line)

    def until(self, job_id: str) -> tuple[dict, list[dict]]:
        """Read until the final answer (done/error/loaded) for job_id; return it and the events before."""
        seen = []
        while True:
            msg = self.recv()
            if msg.get("id") == job_id and msg["type"] in ("done", "error", "loaded"):
                return msg, seen
            seen.append(msg)

    def close(self) -> int:
        if self.proc.poll() is None:
            try:
                self.send({"type": "shutdown", "id": "bye"})
            except BrokenPipeError:
                pass
            try:
                self.proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.communicate()
        return self.proc.returncode


@pytest.fixture
def worker():
    procs: list[WorkerProc] = []

    def start(*args: str) -> WorkerProc:
        w = WorkerProc(*args)
        procs.append(w)
        return w

    yield start
    for w in procs:
        w.close()
