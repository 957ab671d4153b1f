"""The worker's protocol under hostile clients: strict requests, exact ids, sound id bookkeeping.

Each sequence of cancel, queue, reuse and duplicate has its own test. A long job (seconds of
audio, one chunk per batch) keeps the worker busy while the others are queued behind it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from engine.conftest import tone

from .conftest import partials


def _strict(msg: dict) -> dict:
    """What a strict JSON client accepts: every string is valid Unicode (no lone surrogates)."""
    json.dumps(msg, ensure_ascii=False).encode("utf-8")
    return msg


def _job(job_id: str, wav: Path, out: Path, **extra: object) -> dict:
    return {"type": "separate", "id": job_id, "input": str(wav), "output": str(out), "model": "tiny", **extra}


@pytest.fixture
def long_wav(tmp_path: Path) -> Path:
    path = tmp_path / "long.wav"
    sf.write(str(path), tone(4.0, 44100), 44100)
    return path


@pytest.fixture
def ready(worker):
    w = worker("--model", "tiny")
    assert w.recv()["type"] == "ready"
    return w


def _final(w, job_id: str) -> dict:
    return _strict(w.until(job_id)[0])


@pytest.mark.parametrize(
    "request_",
    [
        {"type": "ping", "id": "r", "bogus": 1},
        {"type": "cancel", "id": "r", "job": "x", "bogus": 1},
        {"type": "shutdown", "id": "r", "bogus": 1},
        {"type": "load", "id": "r", "model": "tiny", "bogus": 1},
        {"type": "separate", "id": "r", "input": "a.wav", "output": "o", "bogus": 1},
    ],
    ids=["ping", "cancel", "shutdown", "load", "separate"],
)
def test_every_request_type_refuses_unknown_keys(ready, request_: dict) -> None:
    ready.send(request_)
    answer = _strict(ready.recv())
    assert answer["type"] == "error" and answer["id"] == "r", answer
    assert answer["error"]["code"] == "bad_request" and "'bogus'" in answer["error"]["message"]
    ready.send({"type": "ping", "id": "after"})  # the worker goes on (shutdown was refused too)
    assert ready.recv()["type"] == "pong"


def test_ids_come_back_exactly_as_given(ready) -> None:
    for job_id in ["jöb-ü-🎵", "", " spaced ", 'a\\b"c', "x" * 500]:
        ready.send({"type": "ping", "id": job_id})
        assert _strict(ready.recv()) == {"type": "pong", "id": job_id, "running": None, "queued": 0}


BAD_LINES = {
    "invalid UTF-8": (b'{"type": "ping", "id": "\xff\xfe"}\n', "not valid UTF-8"),
    "a lone surrogate escape": (b'{"type": "ping", "id": "\\ud800"}\n', "lone surrogate"),
    "an id that is a number": (b'{"type": "ping", "id": 7}\n', "'id' must be a string"),
    "JSON nested too deeply": (b"[" * 100_000 + b"\n", "invalid JSON"),
    "NUL in a line": (b'{"type": "ping",\0 "id": "n"}\n', "invalid JSON"),
    "shutdown now not a boolean": (b'{"type": "shutdown", "id": "s", "now": "yes"}\n', "'now'"),
    "a separate job without id": (
        b'{"type": "separate", "input": "a", "output": "b"}\n',
        "non-empty string 'id'",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_LINES))
def test_bad_request_lines_are_one_structured_error(ready, case: str) -> None:
    line, needle = BAD_LINES[case]
    assert ready.proc.stdin is not None
    ready.proc.stdin.flush()
    ready.proc.stdin.buffer.write(line)
    ready.proc.stdin.buffer.flush()
    answer = _strict(ready.recv())
    assert answer["type"] == "error" and answer["error"]["code"] == "bad_request", answer
    assert needle in answer["error"]["message"], answer
    ready.send({"type": "ping", "id": "after"})
    assert ready.recv()["type"] == "pong"


# -- id bookkeeping: one test per sequence ---------------------------------------------------


def test_a_cancel_of_an_unknown_id_is_refused_and_a_later_job_with_that_id_runs(ready, wav, out) -> None:
    ready.send({"type": "cancel", "id": "c", "job": "later"})
    answer = _strict(ready.recv())
    assert answer["type"] == "error" and answer["error"]["code"] == "unknown_job", answer
    ready.send(_job("later", wav, out))
    assert _final(ready, "later")["type"] == "done"  # before the fix: "cancelled before it started"


def test_an_id_can_be_reused_after_its_job_ended(ready, wav, out, tmp_path) -> None:
    ready.send(_job("same", wav, out))
    assert _final(ready, "same")["type"] == "done"
    ready.send(_job("same", tmp_path / "missing.wav", out))
    assert _final(ready, "same")["error"]["code"] == "bad_input"
    ready.send({"type": "cancel", "id": "c", "job": "same"})  # it has ended: nothing to cancel
    assert ready.recv()["error"]["code"] == "unknown_job"
    ready.send(_job("same", wav, out))
    assert _final(ready, "same")["type"] == "done"


def test_a_duplicate_id_while_queued_or_running_is_refused(ready, long_wav, wav, out) -> None:
    ready.send(_job("run", long_wav, out, batch_size=1))
    while ready.recv()["type"] != "progress":
        pass
    ready.send(_job("run", wav, out))  # the same id while it runs
    ready.send(_job("queued", wav, out))
    ready.send(_job("queued", wav, out))  # the same id while it is queued
    refused = []
    while len(refused) < 2:
        msg = _strict(ready.recv())
        if msg["type"] == "error":
            refused.append((msg["id"], msg["error"]["code"]))
    assert refused == [("run", "duplicate_id"), ("queued", "duplicate_id")]
    assert _final(ready, "run")["type"] == "done"  # the first of each still runs, once
    assert _final(ready, "queued")["type"] == "done"
    ready.send({"type": "ping", "id": "p"})
    assert ready.recv() == {"type": "pong", "id": "p", "running": None, "queued": 0}


def test_a_cancelled_queued_job_never_starts_and_its_id_can_be_reused(ready, long_wav, wav, out) -> None:
    ready.send(_job("run", long_wav, out, batch_size=1))
    while ready.recv()["type"] != "progress":
        pass
    ready.send(_job("queued", wav, out))
    ready.send({"type": "cancel", "id": "c1", "job": "queued"})
    ready.send({"type": "cancel", "id": "c2", "job": "run"})
    answers = {}
    while len(answers) < 2:
        msg = _strict(ready.recv())
        if msg["type"] == "cancelling":
            answers[msg["job"]] = msg["running"]
    assert answers == {"queued": False, "run": True}
    assert _final(ready, "run")["error"]["code"] == "cancelled"
    queued = _final(ready, "queued")
    assert queued["error"] == {"code": "cancelled", "message": "cancelled before it started"}
    for job_id in ("queued", "run"):  # both ids are free again
        ready.send(_job(job_id, wav, out))
        assert _final(ready, job_id)["type"] == "done"
    assert partials(out) == []


def test_a_job_on_damaged_input_answers_done_with_warnings(ready, tmp_path, out) -> None:
    audio = tone(0.4, 44100)
    audio[10] = np.nan
    path = tmp_path / "nan.wav"
    sf.write(str(path), audio, 44100, subtype="FLOAT")
    ready.send(_job("n", path, out))
    done = _final(ready, "n")
    assert done["type"] == "done"
    assert done["result"]["warnings"] == [
        f"{path}: NaN or infinite samples replaced by silence (the first at frame 10)"
    ]
