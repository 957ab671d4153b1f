"""`stems worker`: JSON lines on stdin/stdout, models kept loaded between jobs.

See docs/worker-protocol.md. stdout carries only protocol messages, protected at the
file-descriptor level: the protocol writes to a duplicate of fd 1, and fd 1 itself then
points to stderr, so a library's print or a C printf lands in the log, not in the
protocol. A bad job is answered with a structured error and the
worker goes on; only `shutdown` or the end of stdin stops it.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import json
import os
import queue
import sys
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TextIO

from . import __version__, config
from .cli_common import AddFlags
from .errors import Cancelled, StemsError, UsageError

if TYPE_CHECKING:
    from .cli_common import SubParsers

PROTOCOL = 1
JOB_KEYS = {
    "type",
    "id",
    "input",
    "output",
    "model",
    "checkpoint",
    "stems",
    "format",
    "sample_format",
    "instrumental",
    "batch_size",
    "overlap",
}
LOAD_KEYS = {"type", "id", "model", "checkpoint"}
PROGRESS_INTERVAL = 0.25


def add_parser(sub: SubParsers, add_runtime_flags: AddFlags, /) -> None:
    p = sub.add_parser("worker", help="serve separation jobs as JSON lines on stdin/stdout")
    p.add_argument("--model", default=None, help="preload this model (preset or .yaml)")
    p.add_argument("--checkpoint", default=None, help="weights for the preloaded model")
    p.add_argument("--cache-size", type=int, default=2, help="models kept loaded (default 2)")
    add_runtime_flags(p)


@contextlib.contextmanager
def protocol_stdout() -> Iterator[TextIO]:
    """A text stream on a duplicate of fd 1 for the protocol; meanwhile fd 1 and sys.stdout
    point to stderr, so that nothing else written to "stdout", by Python or by C, can put a
    stray line into the protocol."""
    sys.stdout.flush()
    saved = sys.stdout
    out_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    # newline="\n": one protocol line is one "\n"-terminated line on every platform
    stream = os.fdopen(out_fd, "w", encoding="utf-8", buffering=1, newline="\n")
    try:
        yield stream
    finally:
        stream.flush()
        os.dup2(out_fd, 1)
        stream.close()
        sys.stdout = saved


class Worker:
    def __init__(
        self,
        cfg: config.RuntimeConfig,
        cache_size: int,
        out: TextIO | None = None,
        inp: TextIO | None = None,
    ) -> None:
        from .engine import Engine

        self.cfg = cfg
        self.engine = Engine(cache_size=cache_size)
        self.out = out or sys.stdout
        self.inp = inp or sys.stdin
        self.lock = threading.Lock()
        self.jobs: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.cancelled: set[str] = set()
        self.running: str | None = None
        self.stopping = threading.Event()

    # -- output ------------------------------------------------------------
    def send(self, msg: dict[str, Any]) -> None:
        line = json.dumps(msg, sort_keys=True)
        with self.lock:
            self.out.write(line + "\n")
            self.out.flush()

    def error(self, job_id: Any, code: str, message: str, **extra: Any) -> None:
        self.send({"type": "error", "id": job_id, "error": {"code": code, "message": message, **extra}})

    def ready(self) -> None:
        import torch

        from .engine import torch_versions

        self.send(
            {
                "type": "ready",
                "protocol": PROTOCOL,
                "version": __version__,
                "pid": os.getpid(),
                "versions": torch_versions(),
                "threads": {
                    "intra_op": torch.get_num_threads(),
                    "inter_op": torch.get_num_interop_threads(),
                    "requested": self.cfg.threads,
                },
                "matmul_precision": torch.get_float32_matmul_precision(),
                "models": self.engine.cached(),
            }
        )

    # -- input (reader thread) ----------------------------------------------
    def read_loop(self) -> None:
        for raw in self.inp:
            line = raw.strip()
            if not line:
                continue
            try:
                msg = json.loads(line)
            except json.JSONDecodeError as exc:
                self.error(None, "bad_request", f"invalid JSON: {exc.msg} at column {exc.colno}")
                continue
            if not isinstance(msg, dict):
                self.error(None, "bad_request", "each line must be a JSON object")
                continue
            kind, job_id = msg.get("type"), msg.get("id")
            if kind == "ping":
                self.send(
                    {"type": "pong", "id": job_id, "running": self.running, "queued": self.jobs.qsize()}
                )
            elif kind == "cancel":
                target = msg.get("job")
                if not isinstance(target, str):
                    self.error(job_id, "bad_request", "cancel needs 'job': the id of the job to cancel")
                    continue
                self.cancelled.add(target)
                self.send(
                    {"type": "cancelling", "id": job_id, "job": target, "running": self.running == target}
                )
            elif kind == "shutdown":
                # in order: jobs already queued run first, unless "now": true
                if msg.get("now"):
                    self.stopping.set()
                    if self.running:
                        self.cancelled.add(self.running)
                self.jobs.put({"type": "_shutdown", "id": job_id})
                return
            elif kind in ("separate", "load"):
                if not isinstance(job_id, str) or not job_id:
                    self.error(job_id, "bad_request", f"a {kind} request needs a non-empty string 'id'")
                    continue
                self.jobs.put(msg)
            else:
                self.error(
                    job_id,
                    "bad_request",
                    f"unknown request type {kind!r} (separate, load, cancel, ping, shutdown)",
                )
        self.jobs.put(None)  # end of input

    # -- jobs (main thread) ---------------------------------------------------
    def check_keys(self, msg: dict[str, Any], allowed: set[str]) -> None:
        for key in msg:
            if key not in allowed:
                hint = difflib.get_close_matches(key, sorted(allowed), n=1)
                raise UsageError(
                    f"unknown key {key!r}" + (f"; perhaps you meant {hint[0]!r}?" if hint else "")
                )

    def run_job(self, msg: dict[str, Any]) -> None:
        from .audio import check_output_format
        from .engine import separate_file

        job_id = msg["id"]
        if msg["type"] == "load":
            self.check_keys(msg, LOAD_KEYS)
            loaded = self.engine.load(msg.get("model"), msg.get("checkpoint"))
            self.send({"type": "loaded", "id": job_id, "model": loaded.describe()})
            return
        self.check_keys(msg, JOB_KEYS)
        for key in ("input", "output"):
            if not isinstance(msg.get(key), str) or not msg[key]:
                raise UsageError(f"'{key}' must be a non-empty path string")
        for key in ("batch_size", "overlap"):
            if msg.get(key) is not None and (not isinstance(msg[key], int) or isinstance(msg[key], bool)):
                raise UsageError(f"'{key}' must be an integer")
        stems = msg.get("stems")
        if stems is not None and (not isinstance(stems, list) or not all(isinstance(s, str) for s in stems)):
            raise UsageError("'stems' must be a list of stem names")
        fmt, sample_format = msg.get("format", "wav"), msg.get("sample_format")
        if not isinstance(fmt, str) or not (sample_format is None or isinstance(sample_format, str)):
            raise UsageError("'format' and 'sample_format' must be strings")
        check_output_format(fmt, sample_format)
        instrumental = msg.get("instrumental", False)
        if not isinstance(instrumental, bool) and not (isinstance(instrumental, str) and instrumental):
            raise UsageError("'instrumental' must be true, false or the name of the stem to leave out")
        loaded = self.engine.load(msg.get("model"), msg.get("checkpoint"))
        last = [0.0]

        def progress(done: int, total: int) -> None:
            now = time.monotonic()
            if done == total or now - last[0] >= PROGRESS_INTERVAL:
                last[0] = now
                self.send({"type": "progress", "id": job_id, "done": done, "total": total, "unit": "chunks"})

        result = separate_file(
            loaded,
            msg["input"],
            msg["output"],
            stems=stems,
            fmt=fmt,
            sample_format=sample_format,
            instrumental=instrumental,
            batch_size=msg.get("batch_size"),
            overlap=msg.get("overlap"),
            progress=progress,
            should_stop=lambda: job_id in self.cancelled,
        )
        self.send({"type": "done", "id": job_id, "result": result})

    def serve(self) -> int:
        import gc

        reader = threading.Thread(target=self.read_loop, name="stems-worker-stdin", daemon=True)
        reader.start()
        while True:
            msg = self.jobs.get()
            if msg is None:
                return 0
            if msg["type"] == "_shutdown":
                self.drain("worker is shutting down")
                self.send({"type": "bye", "id": msg.get("id")})
                return 0
            job_id = msg["id"]
            if job_id in self.cancelled or self.stopping.is_set():
                self.error(job_id, Cancelled.code, "cancelled before it started")
                continue
            self.running = job_id
            try:
                self.run_job(msg)
            except StemsError as exc:
                self.error(job_id, exc.code, str(exc))
            except MemoryError:
                self.error(job_id, "out_of_memory", "out of memory")
            except Exception as exc:  # noqa: BLE001 - a bug must not kill the worker
                self.error(job_id, "internal", f"{type(exc).__name__}: {exc}")
            finally:
                self.running = None
                self.cancelled.discard(job_id)
                gc.collect()

    def drain(self, why: str) -> None:
        while True:
            try:
                msg = self.jobs.get_nowait()
            except queue.Empty:
                return
            if msg and msg.get("type") in ("separate", "load"):
                self.error(msg.get("id"), Cancelled.code, why)


def run(args: argparse.Namespace, cfg: config.RuntimeConfig) -> int:
    if args.cache_size < 1:
        raise UsageError("--cache-size must be at least 1")
    with protocol_stdout() as out:  # before torch loads: its libraries may print too
        config.apply_to_torch(cfg)
        worker = Worker(cfg, args.cache_size, out=out)
        if args.model or args.checkpoint:
            worker.engine.load(args.model, args.checkpoint)
        worker.ready()
        return worker.serve()
