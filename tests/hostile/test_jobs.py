"""Jobs are all or nothing, killed jobs are cleaned up, and damaged input is said, not hidden."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from engine.conftest import ROOT, stems_env, tone

from runtime_entry.errors import OutputError
from runtime_entry.models import build_model, resolve_spec

from .conftest import assert_one_line, errors_of, partials, run_stems

STEMS = ["bass.wav", "drums.wav", "other.wav", "vocals.wav"]


def test_a_stem_that_cannot_be_written_leaves_no_stems_and_no_temp_files(wav: Path, out: Path) -> None:
    (out / "song" / "other.wav").mkdir(parents=True)  # a folder where one stem must go
    before = wav.read_bytes()
    proc = run_stems("separate", wav, "-o", out, "--model", "tiny", "-q")
    assert_one_line(proc, OutputError.exit_code, "other.wav")
    assert sorted(p.name for p in (out / "song").iterdir()) == ["other.wav"]  # only the folder
    assert partials(out) == [] and wav.read_bytes() == before


def test_a_killed_runs_leftovers_are_removed_by_the_next_run(tmp_path: Path, out: Path) -> None:
    long = tmp_path / "long.wav"
    sf.write(str(long), tone(6.0, 44100), 44100)
    args = [sys.executable, "-m", "runtime_entry", "separate", str(long), "-o", str(out)]
    args += ["--model", "tiny", "--batch-size", "1", "-q"]
    proc = subprocess.Popen(args, cwd=ROOT, env=stems_env(), stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while len(partials(out)) < 4 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
    finally:
        proc.kill()  # SIGKILL: no cleanup of its own can run
        proc.wait()
    left = partials(out)
    assert len(left) == 4, (left, proc.returncode)  # the killed run's temporary stems
    # the next run into that folder removes them, and writes every stem
    done = run_stems("separate", long, "-o", out, "--model", "tiny", "-q")
    assert done.returncode == 0, done.stderr
    assert partials(out) == []
    assert sorted(p.name for p in (out / "long").iterdir()) == STEMS


def test_a_truncated_wav_is_separated_with_a_warning(tmp_path: Path, out: Path) -> None:
    whole = tmp_path / "whole.wav"
    sf.write(str(whole), tone(1.0, 44100), 44100, subtype="PCM_16")
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole.read_bytes()[: 44 + 4 * 20000])
    proc = run_stems("separate", cut, "-o", out, "--model", "tiny", "-q", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert len(result["warnings"]) == 1 and "truncated" in result["warnings"][0]
    assert errors_of(proc) == [f"stems: warning: {result['warnings'][0]}"]
    assert sf.info(result["outputs"]["vocals"]).frames == sf.info(str(cut)).frames == 20000


def test_a_truncated_flac_gives_what_decodes_then_silence_with_a_warning(tmp_path: Path, out: Path) -> None:
    whole = tmp_path / "whole.flac"
    sf.write(str(whole), tone(1.0, 44100), 44100)
    cut = tmp_path / "cut.flac"
    cut.write_bytes(whole.read_bytes()[: len(whole.read_bytes()) // 2])
    proc = run_stems("separate", cut, "-o", out, "--model", "tiny", "-q", "--json", "--instrumental")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert len(result["warnings"]) == 1 and "decoding stopped after" in result["warnings"][0]
    stems = {k: sf.read(v)[0] for k, v in result["outputs"].items()}
    assert all(s.shape[0] == 44100 and np.isfinite(s).all() for s in stems.values())


def test_nan_and_inf_samples_are_zeroed_with_a_warning(tmp_path: Path, out: Path) -> None:
    audio = tone(0.5, 44100)
    audio[1000:1010] = np.nan
    audio[3000, 1] = np.inf
    path = tmp_path / "nan.wav"
    sf.write(str(path), audio, 44100, subtype="FLOAT")
    proc = run_stems("separate", path, "-o", out, "--model", "tiny", "-q", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["warnings"] == [
        f"{path}: NaN or infinite samples replaced by silence (the first at frame 1000)"
    ]
    assert all(np.isfinite(sf.read(p)[0]).all() for p in result["outputs"].values())


def test_silent_stems_from_an_audible_input_are_a_warning(tmp_path: Path, wav: Path, out: Path) -> None:
    state = build_model(resolve_spec("tiny")).state_dict()
    ckpt = tmp_path / "zeros.ckpt"
    torch.save({k: torch.zeros_like(v) for k, v in state.items()}, ckpt)
    proc = run_stems("separate", wav, "-o", out, "--model", "tiny", "--checkpoint", ckpt, "-q", "--json")
    assert proc.returncode == 0, proc.stderr
    warnings = json.loads(proc.stdout)["warnings"]
    assert len(warnings) == 1 and "every stem is silent although the input is not" in warnings[0]
    assert f"stems: warning: {warnings[0]}" in proc.stderr
    # a clean input and working weights: no warning at all
    clean = run_stems("separate", wav, "-o", out, "--model", "tiny", "-q", "--json")
    assert json.loads(clean.stdout)["warnings"] == []
