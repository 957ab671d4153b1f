"""`stems worker`: JSON lines; bad jobs get structured errors and the worker goes on."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf


def test_worker_says_ready_answers_ping_and_runs_a_job(worker, write_audio, tmp_path):
    wav = write_audio("song.wav", seconds=0.8)
    w = worker("--model", "tiny")
    ready = w.recv()
    assert ready["type"] == "ready" and ready["protocol"] == 1
    assert ready["versions"]["torch"] and ready["threads"]["intra_op"] == 2
    assert [m["name"] for m in ready["models"]] == ["tiny"] and ready["models"][0]["untrained"] is True
    w.send({"type": "ping", "id": "p1"})
    assert w.recv() == {"type": "pong", "id": "p1", "running": None, "queued": 0}
    w.send(
        {"type": "separate", "id": "j1", "input": str(wav), "output": str(tmp_path / "o"), "model": "tiny"}
    )
    done, events = w.until("j1")
    assert done["type"] == "done", done
    assert events and events[-1]["type"] == "progress" and events[-1]["done"] == events[-1]["total"]
    assert done["result"]["untrained"] is True
    assert sf.info(done["result"]["outputs"]["vocals"]).frames == sf.info(str(wav)).frames
    w.send({"type": "shutdown", "id": "s"})
    assert w.recv() == {"type": "bye", "id": "s"}
    assert w.close() == 0


def test_bad_jobs_get_structured_errors_and_the_worker_goes_on(worker, write_audio, tmp_path):
    wav = write_audio("ok.wav", seconds=0.4)
    corrupt = tmp_path / "corrupt.flac"
    corrupt.write_bytes(b"fLaC" + bytes(100))
    out = str(tmp_path / "o")
    w = worker()
    assert w.recv()["type"] == "ready"
    bad = {
        "missing": ({"input": str(tmp_path / "nope.wav"), "output": out}, "bad_input"),
        "corrupt": ({"input": str(corrupt), "output": out}, "bad_input"),
        "params": ({"input": str(wav), "output": out, "batch_size": "two"}, "bad_request"),
        "typo": ({"input": str(wav), "output": out, "stem": ["vocals"]}, "bad_request"),
        "stem": ({"input": str(wav), "output": out, "stems": ["piano"]}, "bad_request"),
        "unwritable": ({"input": str(wav), "output": str(wav / "x")}, "bad_output"),
        "model": ({"input": str(wav), "output": out, "model": "nope"}, "bad_model_config"),
    }
    for job_id, (params, code) in bad.items():
        w.send({"type": "separate", "id": job_id, "model": "tiny", **params})
        answer, _ = w.until(job_id)
        assert answer["type"] == "error" and answer["error"]["code"] == code, answer
        assert answer["error"]["message"]
    w.send("{not json")
    assert w.recv()["error"]["code"] == "bad_request"
    w.send({"type": "dance", "id": "d"})
    assert w.recv()["error"]["code"] == "bad_request"
    w.send({"type": "separate", "id": "good", "input": str(wav), "output": out, "model": "tiny"})
    assert w.until("good")[0]["type"] == "done"


def test_cancel_stops_a_running_job_and_the_next_job_runs(worker, write_audio, tmp_path):
    long = write_audio("long.wav", seconds=8)
    short = write_audio("short.wav", seconds=0.3)
    w = worker("--model", "tiny")
    assert w.recv()["type"] == "ready"
    w.send(
        {
            "type": "separate",
            "id": "long",
            "input": str(long),
            "output": str(tmp_path / "o"),
            "model": "tiny",
            "batch_size": 1,
        }
    )
    while w.recv()["type"] != "progress":
        pass
    w.send({"type": "cancel", "id": "c", "job": "long"})
    answer, events = w.until("long")
    assert answer["type"] == "error" and answer["error"]["code"] == "cancelled"
    assert {"type": "cancelling", "id": "c", "job": "long", "running": True} in events
    assert not (tmp_path / "o" / "long").exists() or not any((tmp_path / "o" / "long").iterdir())
    w.send(
        {
            "type": "separate",
            "id": "next",
            "input": str(short),
            "output": str(tmp_path / "o"),
            "model": "tiny",
        }
    )
    assert w.until("next")[0]["type"] == "done"


def _soak(worker, write_audio, tmp_path, jobs: int, seconds: float = 0.3, model: str = "tiny") -> list[int]:
    """`jobs` jobs, one in five bad (of several kinds), a ping before every 10th and a cancel
    right after every 7th; the worker's RSS (psutil, any platform) after each one."""
    import psutil

    wav = write_audio("soak.wav", seconds=seconds)
    expected = sf.read(str(wav))[0]
    w = worker("--model", model)
    proc = psutil.Process(w.recv()["pid"])
    bad_kinds = [
        {"input": str(tmp_path / "missing.wav")},
        {"overlap": -1},
        {"format": "mp4"},
        {"stems": "vocals"},
        {"stem": ["vocals"]},
        {"checkpoint": str(wav)},
    ]
    rss = []
    for n in range(jobs):
        job = {
            "type": "separate",
            "id": f"j{n}",
            "input": str(wav),
            "output": str(tmp_path / f"o{n % 3}"),
            "model": model,
        }
        bad = n % 5 == 4
        if bad:
            job.update(bad_kinds[n // 5 % len(bad_kinds)])
        if n % 10 == 0:
            w.send({"type": "ping", "id": f"p{n}"})
        w.send(job)
        cancelled = n % 7 == 3 and not bad
        if cancelled:
            w.send({"type": "cancel", "id": f"c{n}", "job": f"j{n}"})
        answer, events = w.until(f"j{n}")
        if bad:
            assert answer["type"] == "error" and answer["error"]["code"] != "internal", answer
        elif cancelled and answer["type"] == "error":
            assert answer["error"]["code"] == "cancelled", answer
        else:
            assert answer["type"] == "done", answer
            stems = [sf.read(p)[0] for p in answer["result"]["outputs"].values()]
            assert all(s.shape == expected.shape and np.isfinite(s).all() for s in stems)
        if n % 10 == 0:
            assert any(e["type"] == "pong" and e["id"] == f"p{n}" for e in events), events
        rss.append(proc.memory_info().rss)
    assert proc.is_running()
    leftovers = [p for p in tmp_path.rglob("*") if ".partial" in p.name]
    assert leftovers == []  # nothing half-written in any output folder
    return rss


def test_worker_soak_of_jobs_with_20_percent_bad_ones(worker, write_audio, tmp_path):
    rss = _soak(worker, write_audio, tmp_path, jobs=15)
    assert rss[-1] < rss[4] * 1.25 + 20_000_000


def _mini_model(tmp_path):
    """`tiny` made smaller still (2 stems, dim 16, 2048-sample chunks): the soak is about the
    worker's bookkeeping and memory, and 1000 jobs must fit in minutes on 2 busy cores."""
    import copy

    import yaml

    from runtime_entry.models.spec import PRESETS

    config = copy.deepcopy(PRESETS["tiny"])
    config["model"].update(
        num_stems=2, dim=16, heads=1, freqs_per_bands=list(config["model"]["freqs_per_bands"])
    )
    config["audio"]["chunk_size"] = 2048
    config["inference"] = {"batch_size": 1, "num_overlap": 1}
    config["training"] = {"instruments": ["vocals", "other"]}
    path = tmp_path / "mini.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.slow
def test_worker_soak_of_1000_jobs_keeps_memory_flat(worker, write_audio, tmp_path):
    import time

    started = time.monotonic()
    rss = _soak(worker, write_audio, tmp_path, jobs=1000, seconds=0.05, model=str(_mini_model(tmp_path)))
    warm = rss[100]  # after warm-up: allocator pools and caches filled
    print(
        f"soak: 1000 jobs in {time.monotonic() - started:.0f} s; RSS after warm-up {warm / 1e6:.1f} MB, "
        f"max after {max(rss[100:]) / 1e6:.1f} MB, last {rss[-1] / 1e6:.1f} MB"
    )
    assert max(rss[100:]) < warm * 1.10, [r // 1_000_000 for r in rss[::50]]


def test_jobs_choose_the_sample_format_and_ask_for_the_instrumental(worker, write_audio, tmp_path):
    wav = write_audio("mix.wav", seconds=0.4)
    out = str(tmp_path / "o")
    w = worker("--model", "tiny")
    assert w.recv()["type"] == "ready"
    job = {"type": "separate", "input": str(wav), "output": out, "model": "tiny", "stems": ["drums"]}
    w.send({**job, "id": "a", "format": "flac", "sample_format": "pcm16", "instrumental": True})
    done, _ = w.until("a")
    assert done["type"] == "done", done
    assert sorted(done["result"]["outputs"]) == ["drums", "instrumental"]
    assert {sf.info(p).subtype for p in done["result"]["outputs"].values()} == {"PCM_16"}
    w.send({**job, "id": "b", "sample_format": "pcm24", "instrumental": "bass"})
    done, _ = w.until("b")
    assert done["type"] == "done" and sf.info(done["result"]["outputs"]["instrumental"]).subtype == "PCM_24"
    bad = {
        "c": {"format": "flac", "sample_format": "float"},
        "d": {"sample_format": "pcm8"},
        "e": {"instrumental": 3},
        "f": {"instrumental": "piano"},
    }
    messages = {}
    for job_id, params in bad.items():
        w.send({**job, "id": job_id, **params})
        answer, _ = w.until(job_id)
        assert answer["type"] == "error" and answer["error"]["code"] == "bad_request", answer
        messages[job_id] = answer["error"]["message"]
    assert messages["c"] == "sample format 'float' is not available for flac (flac takes pcm24, pcm16)"


# Runs the worker with an audit hook that, whenever a finished stem is renamed into place
# (inside a job), prints from C (libc printf, flushed) and from Python.
NOISY_WORKER = """
import ctypes, ctypes.util, sys
libc = ctypes.CDLL(ctypes.util.find_library("c"))
printf, fflush = libc.printf, libc.fflush
def noise(event, args):
    if event == "os.rename":
        printf(b"C printf inside a job\\n")
        fflush(None)
        print("python print inside a job")
sys.addaudithook(noise)
from runtime_entry.main import main
sys.exit(main(["worker", "--model", "tiny"]))
"""


def test_printing_from_c_inside_a_job_cannot_corrupt_the_protocol(write_audio, tmp_path):
    import json
    import subprocess
    import sys

    from .conftest import ROOT, stems_env

    wav = write_audio("song.wav", seconds=0.3)
    job = {"type": "separate", "id": "j", "input": str(wav), "output": str(tmp_path / "o"), "model": "tiny"}
    requests = json.dumps(job) + "\n" + json.dumps({"type": "shutdown", "id": "s"}) + "\n"
    r = subprocess.run(
        [sys.executable, "-c", NOISY_WORKER],
        cwd=ROOT,
        env=stems_env(),
        input=requests,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    messages = [json.loads(line) for line in r.stdout.splitlines()]  # every line is JSON
    assert [m["type"] for m in messages if m["type"] != "progress"] == ["ready", "done", "bye"]
    assert r.stderr.count("C printf inside a job") == 4  # one per stem: the hook did run
    assert r.stderr.count("python print inside a job") == 4
