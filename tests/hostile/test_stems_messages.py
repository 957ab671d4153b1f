"""Runtime messages: allocation failures, channel counts and file names that are not UTF-8.

Fast cases in-process (the `tiny` preset, real files, a real failed allocation); the program
itself where its exit code and stdout's bytes are the point (slow: a torch import each).
"""

from __future__ import annotations

import copy
import json
import os
import sys
from pathlib import Path

import pytest
import soundfile as sf
import torch
import yaml
from engine.conftest import tone

from runtime_entry.cli_common import json_line, strict_text
from runtime_entry.engine import Engine, LoadedModel, separate_file
from runtime_entry.errors import InputError, OutOfMemory, as_stems_error
from runtime_entry.models.spec import PRESETS

from .conftest import assert_one_line, run_stems

POSIX_ONLY = pytest.mark.skipif(sys.platform == "win32", reason="file names of arbitrary bytes are POSIX")


@pytest.fixture(scope="module")
def tiny_model() -> LoadedModel:
    return Engine().load("tiny")


def _wav(path: Path, channels: int = 2) -> Path:
    sf.write(os.fsencode(path), tone(0.2, 44100, channels), 44100, format="WAV", subtype="FLOAT")
    return path


# -- more channels than the model takes: refused, never cut to 2 ---------------------------------


@pytest.mark.parametrize("channels", [3, 6, 8])
def test_more_channels_than_a_stereo_model_takes_are_refused(
    tiny_model: LoadedModel, tmp_path: Path, channels: int
) -> None:
    wav = _wav(tmp_path / "multi.wav", channels)
    with pytest.raises(InputError, match=f"{channels} channels, but model tiny takes at most 2"):
        separate_file(tiny_model, wav, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# -- allocation failures are out_of_memory --------------------------------------------------------


def test_a_failed_torch_allocation_is_out_of_memory() -> None:
    with pytest.raises(RuntimeError) as caught:
        torch.empty(2**42, dtype=torch.float32)  # 16 TiB: refused by the allocator, not the OS killer
    known = as_stems_error(caught.value)
    assert isinstance(known, OutOfMemory) and known.code == "out_of_memory" and known.exit_code == 7
    assert "an allocation of 16384.0 GiB failed" in str(known), str(known)


def test_a_memory_error_is_out_of_memory() -> None:
    with pytest.raises(MemoryError) as caught:
        bytearray(2**62)
    assert isinstance(as_stems_error(caught.value), OutOfMemory)


def test_other_runtime_errors_stay_bugs() -> None:
    assert as_stems_error(RuntimeError("shape mismatch")) is None
    assert as_stems_error(ValueError("can't allocate memory")) is None  # only allocators' errors


@pytest.mark.slow
def test_separate_that_cannot_allocate_exits_7_in_one_line(tmp_path: Path) -> None:
    huge = copy.deepcopy(PRESETS["tiny"])
    huge["model"]["dim"] = 2**40
    huge["model"]["freqs_per_bands"] = list(huge["model"]["freqs_per_bands"])
    config = tmp_path / "huge.yaml"
    config.write_text(yaml.safe_dump(huge))
    proc = run_stems("separate", _wav(tmp_path / "song.wav"), "-o", tmp_path / "out", "--model", config, "-q")
    assert_one_line(proc, OutOfMemory.exit_code, "out of memory: an allocation of")
    assert not (tmp_path / "out").exists()


# -- file names that are not UTF-8: read, written, and escaped in JSON ----------------------------

LATIN1 = os.fsdecode(b"caf\xe9")  # 'caf\udce9' in Python: a byte that is not UTF-8


def test_strict_text_escapes_each_undecodable_byte_as_backslash_x() -> None:
    assert strict_text({"input": f"/m/{LATIN1}.wav", LATIN1: [LATIN1, 1]}) == {
        "input": "/m/caf\\xe9.wav",
        "caf\\xe9": ["caf\\xe9", 1],
    }
    assert strict_text("\ud800 ok é") == "\\ud800 ok é"  # a lone surrogate of another origin


def test_json_lines_are_valid_utf8_with_no_lone_surrogate() -> None:
    line = json_line({"input": LATIN1, "text": "é🎵"})
    assert json.loads(line.encode("utf-8").decode("utf-8", errors="strict")) == {
        "input": "caf\\xe9",
        "text": "é🎵",
    }
    assert "\\udc" not in line


@POSIX_ONLY
def test_an_input_whose_name_is_not_utf8_is_separated(tiny_model: LoadedModel, tmp_path: Path) -> None:
    wav = _wav(tmp_path / f"{LATIN1}.wav")
    result = separate_file(tiny_model, wav, tmp_path / "out", stems=["vocals"])
    assert os.listdir(os.fsencode(tmp_path / "out")) == [b"caf\xe9"]
    assert sf.info(os.fsencode(str(result["outputs"]["vocals"]))).frames == 8820  # type: ignore[index]


@POSIX_ONLY
@pytest.mark.slow
def test_separate_json_names_a_non_utf8_file_with_a_documented_escape(tmp_path: Path) -> None:
    wav = _wav(tmp_path / f"{LATIN1}.wav")
    proc = run_stems("separate", wav, "-o", tmp_path / "out", "--model", "tiny", "-q", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)  # run_stems decodes stdout as UTF-8: strict here
    assert result["input"] == str(tmp_path / "caf\\xe9.wav")
    assert result["outputs"]["vocals"] == str(tmp_path / "out" / "caf\\xe9" / "vocals.wav")
    assert os.path.exists(os.fsencode(tmp_path / "out" / LATIN1 / "vocals.wav"))
