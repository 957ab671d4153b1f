"""Every file stems reads, fed hostile bytes: one `stems: error:` line with its documented code.

Runtime configs fail before torch is imported, so those cases run the real program
(`python -m runtime_entry`) cheaply; model configs, checkpoints and audio are fuzzed in-process
(seeded, each reader only ever raises its own StemsError), then checked once more through the
program. Special files (a FIFO, /dev/zero, a folder) are refused before any read: each run has
a timeout, so a blocking read fails the test instead of hanging it.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import yaml

from runtime_entry import config
from runtime_entry.audio import probe, read_blocks
from runtime_entry.checkpoint import read_state_dict
from runtime_entry.errors import (
    CheckpointError,
    InputError,
    ModelConfigError,
    RuntimeConfigError,
    StemsError,
)
from runtime_entry.models import build_model, resolve_spec
from runtime_entry.models.spec import PRESETS

from .conftest import assert_one_line, run_stems
from .fuzz import mutations

POSIX_ONLY = pytest.mark.skipif(sys.platform == "win32", reason="FIFOs and /dev/zero are POSIX")


def _fuzz(
    valid: bytes, target: Path, read: Callable[[], object], allowed: type[StemsError], seed: int, cases: int
) -> int:
    refused = 0
    for label, data in mutations(valid, seed, cases):
        target.write_bytes(data)
        try:
            read()
        except allowed as exc:
            assert "\n" not in str(exc) and str(target) in str(exc), (label, str(exc))
            refused += 1
        except Exception as exc:  # the point of the test: name the case that escaped
            raise AssertionError(f"{label}: {type(exc).__name__}: {exc}") from exc
    return refused


# -- in-process fuzzing, one test per reader ---------------------------------------------------


def test_fuzzed_runtime_configs_are_runtime_config_errors(tmp_path: Path) -> None:
    path = tmp_path / "runtime.json"
    valid = json.dumps(
        {
            "profile": "p",
            "threads": 2,
            "interop_threads": 1,
            "matmul_precision": "high",
            "env": {"KMP_BLOCKTIME": "1"},
        }
    ).encode()
    environ = {config.CONFIG_ENV: str(path)}
    refused = _fuzz(valid, path, lambda: config.resolve(environ=environ), RuntimeConfigError, 11, 300)
    assert refused > 250


def test_fuzzed_yaml_model_configs_are_model_config_errors(tmp_path: Path) -> None:
    path = tmp_path / "model.yaml"
    valid = yaml.safe_dump(PRESETS["tiny"]).encode()
    path.write_bytes(valid)
    assert resolve_spec(str(path)).chunk_size == resolve_spec("tiny").chunk_size  # the valid one loads
    _fuzz(valid, path, lambda: resolve_spec(str(path)), ModelConfigError, 12, 200)


def test_fuzzed_checkpoints_are_checkpoint_errors(tmp_path: Path) -> None:
    path = tmp_path / "model.ckpt"
    torch.save(build_model(resolve_spec("tiny")).state_dict(), path)
    valid = path.read_bytes()
    refused = _fuzz(valid, path, lambda: read_state_dict(path), CheckpointError, 13, 60)
    assert refused > 40


def test_fuzzed_audio_files_are_input_errors_or_read_whole(tmp_path: Path, wav: Path) -> None:
    valid = wav.read_bytes()
    target = tmp_path / "fuzzed.wav"

    def read() -> None:
        info = probe(target)
        assert sum(b.shape[1] for b in read_blocks(info)) == info.frames  # damage: padded, never short

    _fuzz(valid, target, read, InputError, 14, 150)


# -- runtime configs and runtime flags through the program (they fail before torch loads) -------

RUNTIME_CONFIGS: dict[str, tuple[bytes, str]] = {
    "a JSON list": (b"[1, 2]", "expected object"),
    "not UTF-8": (b"\xff\xfe{}", "not UTF-8"),
    "NUL bytes": (b'{"threads": 2}\0', "not valid JSON"),
    "nested too deeply": (b"[" * 100_000, "nested too deeply"),
    "an env name with '='": (b'{"env": {"A=B": "1"}}', "env.A=B"),
    "an env name starting with a digit": (b'{"env": {"1A": "1"}}', "env.1A"),
    "an env value with NUL": (b'{"env": {"A": "x\\u0000y"}}', "env.A"),
    "an env value that is a number": (b'{"env": {"A": 1}}', "env.A"),
    "a thread variable in env": (b'{"env": {"OMP_NUM_THREADS": "1"}}', "env.OMP_NUM_THREADS"),
    "threads of a million": (b'{"threads": 1000000}', "per CPU"),
    "threads as a word": (b'{"threads": "many"}', "threads"),
    "threads NaN": (b'{"threads": NaN}', "threads"),
}


@pytest.mark.parametrize("case", sorted(RUNTIME_CONFIGS))
def test_a_bad_runtime_config_is_one_line_at_start(tmp_path: Path, case: str) -> None:
    data, needle = RUNTIME_CONFIGS[case]
    path = tmp_path / "runtime.json"
    path.write_bytes(data)
    proc = run_stems("selftest", "--json", env={"STEMS_RUNTIME_CONFIG": str(path)}, timeout=60)
    assert_one_line(proc, RuntimeConfigError.exit_code, str(path), needle)


@POSIX_ONLY
@pytest.mark.parametrize("kind", ["fifo", "/dev/zero", "folder", "missing"])
def test_a_runtime_config_that_is_not_a_file_is_refused_at_once(tmp_path: Path, kind: str) -> None:
    path = {
        "fifo": tmp_path / "fifo",
        "/dev/zero": Path("/dev/zero"),
        "folder": tmp_path,
        "missing": tmp_path / "no.json",
    }[kind]
    if kind == "fifo":
        os.mkfifo(path)
    proc = run_stems("selftest", "--json", env={"STEMS_RUNTIME_CONFIG": str(path)}, timeout=60)
    assert_one_line(proc, RuntimeConfigError.exit_code, str(path))


THREAD_SETTINGS: dict[str, tuple[list[str], dict[str, str], str]] = {
    "--threads 100000": (["--threads", "100000"], {}, "--threads: 100000 is more than 4 per CPU"),
    "--threads 0": (["--threads", "0"], {}, "--threads"),
    "--interop-threads 10**9": (["--interop-threads", str(10**9)], {}, "--interop-threads"),
    "STEMS_THREADS=abc": ([], {"STEMS_THREADS": "abc"}, "STEMS_THREADS"),
    "STEMS_THREADS=1e9": ([], {"STEMS_THREADS": "1e9"}, "STEMS_THREADS"),
    "STEMS_MATMUL_PRECISION=fast": ([], {"STEMS_MATMUL_PRECISION": "fast"}, "matmul precision"),
}


@pytest.mark.parametrize("case", sorted(THREAD_SETTINGS))
def test_thread_counts_are_bounded_with_the_reason(case: str) -> None:
    flags, env, needle = THREAD_SETTINGS[case]
    proc = run_stems("selftest", *flags, env=env, timeout=60)
    assert_one_line(proc, RuntimeConfigError.exit_code, needle)


def test_the_thread_limit_is_4_per_cpu() -> None:
    assert config.max_threads() == 4 * (os.cpu_count() or 1)
    assert config.resolve(threads=config.max_threads(), environ={}).threads == config.max_threads()
    with pytest.raises(RuntimeConfigError, match="per CPU"):
        config.resolve(threads=config.max_threads() + 1, environ={})


# -- model configs, checkpoints and inputs through `stems separate` ----------------------------


def _nan_checkpoint(tmp: Path) -> Path:
    state = build_model(resolve_spec("tiny")).state_dict()
    key = next(k for k, v in state.items() if v.is_floating_point())
    state[key] = state[key].clone()
    state[key].view(-1)[0] = float("nan")
    path = tmp / "nan.ckpt"
    torch.save(state, path)
    return path


def _file(data: bytes, name: str) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        path = tmp / name
        path.write_bytes(data)
        return path

    return make


def _fifo_at(name: str) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        path = tmp / name
        os.mkfifo(path)
        return path

    return make


SEPARATE_CASES: dict[str, tuple[str, Callable[[Path], Path], int, str]] = {
    # what is bad, the flag it goes to, how to make it, the code, a word of the message
    "YAML of random bytes": ("--model", _file(bytes(range(256)) * 3, "m.yaml"), 4, "not UTF-8"),
    "YAML of the wrong shape": ("--model", _file(b"model: 3\n", "m.yaml"), 4, "'model:' section"),
    "YAML with a list for a number": (
        "--model",
        _file(yaml.safe_dump({**PRESETS["tiny"], "audio": {"chunk_size": [1]}}).encode(), "m.yaml"),
        4,
        "chunk_size",
    ),
    "YAML as a FIFO": ("--model", _fifo_at("m.yaml"), 4, "not a regular file"),
    "an empty checkpoint": ("--checkpoint", _file(b"", "e.ckpt"), 5, "empty file"),
    "a checkpoint of junk": (
        "--checkpoint",
        _file(b"\x01\x02junk" * 50, "j.ckpt"),
        5,
        "not a readable PyTorch checkpoint",
    ),
    "a truncated checkpoint": (
        "--checkpoint",
        lambda tmp: _file(_nan_checkpoint(tmp).read_bytes()[:5000], "t.ckpt")(tmp),
        5,
        "t.ckpt",
    ),
    "NaN weights": ("--checkpoint", _nan_checkpoint, 5, "NaN or infinite"),
    "a checkpoint as a FIFO": ("--checkpoint", _fifo_at("f.ckpt"), 5, "not a regular file"),
    "input as a FIFO": ("IN", _fifo_at("in.wav"), 3, "not a regular file"),
    "input /dev/zero": ("IN", lambda tmp: Path("/dev/zero"), 3, "not a regular file"),
    "input a folder": ("IN", lambda tmp: tmp, 3, "folder"),
    "input of random bytes": ("IN", _file(bytes(range(256)) * 8, "r.wav"), 3, "not a readable audio file"),
}


@POSIX_ONLY
@pytest.mark.parametrize("case", sorted(SEPARATE_CASES))
def test_separate_refuses_bad_files_in_one_line(tmp_path: Path, wav: Path, out: Path, case: str) -> None:
    flag, make, code, needle = SEPARATE_CASES[case]
    bad = make(tmp_path)
    before = wav.read_bytes()
    args = [bad if flag == "IN" else wav, "-o", out, "--model", "tiny"]
    if flag != "IN":
        args = (
            [wav, "-o", out, "--model", "tiny", flag, bad]
            if flag == "--checkpoint"
            else [wav, "-o", out, "--model", bad]
        )
    proc = run_stems("separate", *args, "-q", timeout=120)
    assert_one_line(proc, code, str(bad), needle)
    assert wav.read_bytes() == before and not any(out.rglob("*.wav"))  # input untouched, no stem written


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["separate"], "the following arguments are required: IN, -o/--output"),
        (
            ["separate", "x.wav", "-o", "out", "--overlap", "zz"],
            "argument --overlap: invalid int value: 'zz'",
        ),
        (["nosuch"], "invalid choice: 'nosuch'"),
        ([], "the following arguments are required: command"),
    ],
)
def test_a_usage_error_is_one_line_naming_the_help(argv: list[str], needle: str) -> None:
    proc = run_stems(*argv)
    assert proc.returncode == 2 and proc.stdout == "", proc
    assert proc.stderr.count("\n") == 1 and "usage:" not in proc.stderr, proc.stderr
    assert needle in proc.stderr and proc.stderr.rstrip().endswith("--help`)"), proc.stderr
