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
from .cli_common import AddFlags, json_line
from .errors import Cancelled, StemsError, UsageError, as_stems_error
from .interrupts import INTERRUPTS

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
# every request type's keys: anything else is a bad_request naming the key
REQUEST_KEYS = {
    "separate": JOB_KEYS,
    "load": LOAD_KEYS,
    "ping": {"type", "id"},
    "cancel": {"type", "id", "job"},
    "shutdown": {"type", "id", "now"},
}
MAX_LINE = 1 << 20  # a request is a few hundred bytes; a longer line is refused, not parsed
PROGRESS_INTERVAL = 0.25
POLL_INTERVAL = 0.2  # how often an idle job loop looks for SIGINT/SIGTERM


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


def check_path(msg: dict[str, Any], key: str, *, required: bool) -> None:
    """A path key: a non-empty string without NUL bytes (no file system takes one)."""
    value = msg.get(key)
    if value is None and not required:
        return
    if not isinstance(value, str) or not value:
        raise UsageError(f"'{key}' must be a non-empty path string" + ("" if required else " when given"))
    if "\0" in value:
        raise UsageError(f"'{key}' holds a NUL byte, which no file name can hold")


def _error(job_id: Any, code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"type": "error", "id": job_id, "error": {"code": code, "message": message, **extra}}


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
        # Job-id bookkeeping, shared by the reader thread and the job loop (under `state`):
        # `active` holds the ids queued or running, `cancelled` only ids that are in `active`.
        # An id leaves both when its job ends in any way, so a finished id may be used again, a
        # cancel of an unknown or finished id is refused (and cannot doom a later job with that
        # id), and a second job with an id still active is refused (`duplicate_id`).
        self.state = threading.Lock()
        self.active: set[str] = set()
        self.cancelled: set[str] = set()
        self.running: str | None = None
        self.stopping = threading.Event()

    # -- output ------------------------------------------------------------
    def send(self, msg: dict[str, Any]) -> None:
        line = json_line(msg)
        with self.lock:
            self.out.write(line + "\n")
            self.out.flush()

    def error(self, job_id: Any, code: str, message: str, **extra: Any) -> None:
        self.send(_error(job_id, code, message, **extra))

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
    def lines(self) -> Iterator[bytes | str]:
        """Raw request lines: bytes from a real stdin, decoded strictly below (a text layer would
        turn invalid UTF-8 into lone surrogates, which strict JSON clients reject in the answer)."""
        buffer = getattr(self.inp, "buffer", None)
        if buffer is None:
            yield from self.inp
            return
        while raw := buffer.readline(MAX_LINE + 1):
            if len(raw) > MAX_LINE and not raw.endswith(b"\n"):
                while (rest := buffer.readline(MAX_LINE)) and not rest.endswith(b"\n"):
                    pass  # skip the rest of the over-long line
            yield raw

    def parse(self, raw: bytes | str) -> dict[str, Any] | None:
        """One request line as a JSON object, or None after answering why it is not one."""
        if isinstance(raw, bytes):
            if len(raw) > MAX_LINE:
                self.error(None, "bad_request", f"request line longer than {MAX_LINE} bytes")
                return None
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                self.error(None, "bad_request", f"request is not valid UTF-8 (byte {exc.start})")
                return None
        line = raw.strip()
        if not line:
            return None
        try:
            msg = json.loads(line)
        except json.JSONDecodeError as exc:
            self.error(None, "bad_request", f"invalid JSON: {exc.msg} at column {exc.colno}")
            return None
        except RecursionError:
            self.error(None, "bad_request", "invalid JSON: nested too deeply")
            return None
        if not isinstance(msg, dict):
            self.error(None, "bad_request", "each line must be a JSON object")
            return None
        try:  # "\ud800" is valid JSON but not Unicode: it could not be answered as UTF-8
            json.dumps(msg, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            self.error(
                None, "bad_request", "request holds a lone surrogate (\\ud800-\\udfff): not valid UTF-8"
            )
            return None
        return msg

    def check_request(self, msg: dict[str, Any]) -> tuple[str, Any] | None:
        """(type, id) of a well-formed request, or None after answering what is wrong."""
        kind, job_id = msg.get("type"), msg.get("id")
        if job_id is not None and not isinstance(job_id, str):
            self.error(None, "bad_request", f"'id' must be a string, got {type(job_id).__name__}")
            return None
        if not isinstance(kind, str) or kind not in REQUEST_KEYS:
            self.error(job_id, "bad_request", f"unknown request type {kind!r} ({', '.join(REQUEST_KEYS)})")
            return None
        try:
            self.check_keys(msg, REQUEST_KEYS[kind])
        except UsageError as exc:
            self.error(job_id, exc.code, f"{kind}: {exc}")
            return None
        return kind, job_id

    def read_loop(self) -> None:
        for raw in self.lines():
            msg = self.parse(raw)
            checked = None if msg is None else self.check_request(msg)
            if msg is None or checked is None:
                continue
            kind, job_id = checked
            if kind == "ping":
                with self.state:
                    running = self.running
                self.send({"type": "pong", "id": job_id, "running": running, "queued": self.jobs.qsize()})
            elif kind == "cancel":
                self.cancel(job_id, msg.get("job"))
            elif kind == "shutdown":
                now = msg.get("now", False)
                if not isinstance(now, bool):
                    self.error(job_id, "bad_request", "shutdown: 'now' must be true or false")
                    continue
                # in order: jobs already queued run first, unless "now": true
                if now:
                    self.stopping.set()
                    with self.state:
                        self.cancelled |= self.active
                self.jobs.put({"type": "_shutdown", "id": job_id})
                return
            else:  # separate, load
                if not job_id:
                    self.error(job_id, "bad_request", f"a {kind} request needs a non-empty string 'id'")
                    continue
                self.accept(job_id, msg)
        self.jobs.put(None)  # end of input

    def accept(self, job_id: str, msg: dict[str, Any]) -> None:
        """Queue a job, or answer at once why not. Under `state`, so that once the worker stops
        (`stopping`), every job it accepted is in the queue for `drain` to answer."""
        with self.state:
            duplicate = job_id in self.active
            stopping = self.stopping.is_set() or INTERRUPTS.event.is_set()
            if not duplicate and not stopping:
                self.active.add(job_id)
                self.jobs.put(msg)
        if duplicate:
            self.error(
                job_id,
                "duplicate_id",
                f"a job with id {job_id!r} is already queued or running; ids may be reused once it ends",
            )
        elif stopping:
            self.error(job_id, Cancelled.code, "the worker is stopping; the job was not started")

    def cancel(self, request_id: str | None, target: Any) -> None:
        if not isinstance(target, str) or not target:
            self.error(request_id, "bad_request", "cancel needs 'job': the id of the job to cancel")
            return
        with self.state:
            known = target in self.active
            if known:
                self.cancelled.add(target)
            running = self.running == target
        if not known:
            self.error(
                request_id,
                "unknown_job",
                f"no job {target!r} is queued or running (unknown, or already ended)",
            )
            return
        self.send({"type": "cancelling", "id": request_id, "job": target, "running": running})

    # -- jobs (main thread) ---------------------------------------------------
    def check_keys(self, msg: dict[str, Any], allowed: set[str]) -> None:
        for key in msg:
            if key not in allowed:
                hint = difflib.get_close_matches(key, sorted(allowed), n=1)
                raise UsageError(
                    f"unknown key {key!r}" + (f"; perhaps you meant {hint[0]!r}?" if hint else "")
                )

    def run_job(self, msg: dict[str, Any]) -> dict[str, Any]:
        """Run one job; returns its final answer (sent once the id is free again)."""
        from .audio import check_output_format
        from .engine import separate_file

        job_id = msg["id"]
        if msg["type"] == "load":
            self.check_keys(msg, LOAD_KEYS)
            for key in ("model", "checkpoint"):
                check_path(msg, key, required=False)
            loaded = self.engine.load(msg.get("model"), msg.get("checkpoint"))
            return {"type": "loaded", "id": job_id, "model": loaded.describe()}
        self.check_keys(msg, JOB_KEYS)
        for key in ("input", "output", "model", "checkpoint"):
            check_path(msg, key, required=key in ("input", "output"))
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
            should_stop=lambda: job_id in self.cancelled or INTERRUPTS.event.is_set(),
        )
        warnings = result.get("warnings")
        for warning in warnings if isinstance(warnings, list) else []:
            print(f"stems: warning: job {job_id}: {warning}", file=sys.stderr)
        return {"type": "done", "id": job_id, "result": result}

    def serve(self) -> int:
        """Run the jobs in order until `shutdown`, the end of stdin, or SIGINT/SIGTERM: then the
        running job stops before its next batch, every queued one is answered `cancelled`, and
        Interrupted goes up to the CLI (one line, exit 128 + the signal's number)."""
        reader = threading.Thread(target=self.read_loop, name="stems-worker-stdin", daemon=True)
        reader.start()
        while not INTERRUPTS.event.is_set():
            try:  # a timeout, not a plain get: a signal is noticed even while idle (and on Windows)
                msg = self.jobs.get(timeout=POLL_INTERVAL)
            except queue.Empty:
                continue
            if msg is None:
                return 0
            if msg["type"] == "_shutdown":
                self.drain("worker is shutting down")
                self.send({"type": "bye", "id": msg.get("id")})
                return 0
            self.send(self.run_one(msg))
        with self.state:
            self.stopping.set()  # from here the reader answers new jobs itself
        self.drain(f"the worker was interrupted by {INTERRUPTS.signal_name}; the job was not started")
        raise INTERRUPTS.error()

    def run_one(self, msg: dict[str, Any]) -> dict[str, Any]:
        """A queued job's final answer (its id is free again when this returns)."""
        import gc

        job_id = msg["id"]
        with self.state:
            start = job_id not in self.cancelled and not self.stopping.is_set()
            start = start and not INTERRUPTS.event.is_set()
            if start:
                self.running = job_id
            else:
                self.active.discard(job_id)
                self.cancelled.discard(job_id)
        if not start:
            return _error(job_id, Cancelled.code, "cancelled before it started")
        try:
            return self.run_job(msg)
        except Cancelled as exc:
            why = f"interrupted by {INTERRUPTS.signal_name}" if INTERRUPTS.event.is_set() else str(exc)
            return _error(job_id, exc.code, f"{why}; partial outputs removed")
        except StemsError as exc:
            return _error(job_id, exc.code, str(exc))
        except Exception as exc:  # noqa: BLE001 - a bug must not kill the worker
            known = as_stems_error(exc)  # an allocation failure is out_of_memory, not a bug
            if known is not None:
                return _error(job_id, known.code, str(known))
            return _error(job_id, "internal", f"{type(exc).__name__}: {exc}")
        finally:
            # the id is free before its final answer leaves: a client that reuses it at once
            # must not be told it is a duplicate
            with self.state:
                self.running = None
                self.active.discard(job_id)
                self.cancelled.discard(job_id)
            gc.collect()

    def drain(self, why: str) -> None:
        while True:
            try:
                msg = self.jobs.get_nowait()
            except queue.Empty:
                return
            if msg and msg.get("type") in ("separate", "load"):
                with self.state:
                    self.active.discard(msg["id"])
                    self.cancelled.discard(msg["id"])
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
