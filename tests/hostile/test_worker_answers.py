"""Every bad request gets its own code, never `internal`: one worker serves every case in turn.

The worker is started once for the module (its torch import is the cost); each case is a
request and its final answer, checked against the contract's worker-answer schema.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest
import soundfile as sf
import yaml
from engine.conftest import WorkerProc, tone

from runtime_entry import contract
from runtime_entry.models.spec import PRESETS

LONG = "x" * 5000  # longer than any file name a system takes


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("answers")
    sf.write(str(root / "song.wav"), tone(0.2, 44100), 44100)
    sf.write(str(root / "eight.wav"), tone(0.2, 44100, channels=8), 44100)
    sf.write(str(root / "...wav"), tone(0.2, 44100), 44100, format="WAV")
    os.symlink(root / "gone.wav", root / "broken.wav")
    os.symlink(root / "loop-b.wav", root / "loop-a.wav")
    os.symlink(root / "loop-a.wav", root / "loop-b.wav")
    huge = copy.deepcopy(PRESETS["tiny"])  # a valid config whose layers no machine can hold
    huge["model"]["dim"] = 2**40  # its first layer alone: 4 TiB
    huge["model"]["freqs_per_bands"] = list(huge["model"]["freqs_per_bands"])
    (root / "huge.yaml").write_text(yaml.safe_dump(huge))
    return root


@pytest.fixture(scope="module")
def served():
    w = WorkerProc("--model", "tiny")
    assert w.recv()["type"] == "ready"
    yield w
    assert w.close() == 0


def _answer(w: WorkerProc, request: dict) -> dict:
    w.send(request)
    final, _ = w.until(request["id"])
    assert contract.problems(final, contract.load("worker-answer")) == [], final
    return final


def _job(files: Path, job_id: str, **keys: object) -> dict:
    return {
        "type": "separate",
        "id": job_id,
        "input": str(files / "song.wav"),
        "output": str(files / "out"),
        **keys,
    }


CASES: dict[str, tuple[dict, str, str]] = {
    # what is bad: (the request's keys, the code, a word of the message)
    "NUL in input": ({"input": "a\0b.wav"}, "bad_request", "'input' holds a NUL byte"),
    "NUL in output": ({"output": "o\0x"}, "bad_request", "'output' holds a NUL byte"),
    "NUL in model": ({"model": "m\0.yaml"}, "bad_request", "'model' holds a NUL byte"),
    "NUL in checkpoint": ({"checkpoint": "c\0k"}, "bad_request", "'checkpoint' holds a NUL byte"),
    "an empty model": ({"model": ""}, "bad_request", "'model' must be a non-empty path string"),
    "an empty checkpoint": ({"checkpoint": ""}, "bad_request", "'checkpoint' must be a non-empty"),
    "an empty stem list": ({"stems": []}, "bad_request", "stem list is empty"),
    "a stem twice": ({"stems": ["vocals", "vocals"]}, "bad_request", "named twice"),
    "an input name too long": ({"input": f"/{LONG}.wav"}, "bad_input", "too long"),
    "a checkpoint name too long": ({"checkpoint": f"/{LONG}.ckpt"}, "bad_checkpoint", "too long"),
    "a model config name too long": ({"model": f"/{LONG}.yaml"}, "bad_model_config", "too long"),
    "an output name too long": ({"output": f"/tmp/{LONG}"}, "bad_output", "/tmp/xxx"),
    "an input named only dots": ({"input": "{files}/...wav"}, "bad_input", "names no folder of its own"),
    "8 channels": ({"input": "{files}/eight.wav"}, "bad_input", "8 channels"),
    "a broken symbolic link": ({"input": "{files}/broken.wav"}, "bad_input", "broken symbolic link"),
    "a symbolic link loop": ({"input": "{files}/loop-a.wav"}, "bad_input", "symbolic link loop"),
    "a model too big to allocate": ({"model": "{files}/huge.yaml"}, "out_of_memory", "out of memory"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_bad_job_has_its_own_code(served: WorkerProc, files: Path, case: str) -> None:
    keys, code, needle = CASES[case]
    keys = {k: v.format(files=files) if isinstance(v, str) else v for k, v in keys.items()}
    answer = _answer(served, _job(files, case, **{"model": "tiny", **keys}))
    assert answer["type"] == "error" and answer["error"]["code"] == code, answer
    assert needle in answer["error"]["message"], answer
    inputs = ["...wav", "broken.wav", "eight.wav", "huge.yaml", "loop-a.wav", "loop-b.wav", "song.wav"]
    assert sorted(p.name for p in files.iterdir() if p.name != "out") == inputs  # nothing climbed out


def test_a_load_that_cannot_be_allocated_is_out_of_memory(served: WorkerProc, files: Path) -> None:
    answer = _answer(served, {"type": "load", "id": "huge", "model": str(files / "huge.yaml")})
    assert answer["error"]["code"] == "out_of_memory", answer
    assert "GiB" in answer["error"]["message"]
    assert _answer(served, {"type": "load", "id": "after", "model": "tiny"})["type"] == "loaded"


def test_a_stem_twice_keeps_the_earlier_stems(served: WorkerProc, files: Path) -> None:
    assert _answer(served, _job(files, "first", model="tiny"))["type"] == "done"
    song = files / "out" / "song"
    before = {p.name: p.read_bytes() for p in song.iterdir()}
    answer = _answer(served, _job(files, "twice", model="tiny", stems=["drums", "drums"]))
    assert answer["error"]["code"] == "bad_request"
    assert {p.name: p.read_bytes() for p in song.iterdir()} == before
