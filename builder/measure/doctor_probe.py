"""The doctor's in-process probe: copied as `sitecustomize.py` into a folder put first on the
PYTHONPATH of the venv process the doctor watches (builder reads this file, never imports it).

It records what only the process itself can see, and writes it as JSON at exit to the path in
`BUILDER_DOCTOR_PROBE`:
- the thread and affinity variables the process started with (what the parent gave it), and
  their values when torch was imported (after the program's own settings);
- torch's threads right after its import, and every later `set_num_threads` /
  `set_num_interop_threads` call (how often thread settings were applied, and when);
- at exit: torch's threads, the OpenMP/BLAS pools (threadpoolctl, when the venv has it) and
  which libraries known to start thread pools of their own are loaded.
Then, with `BUILDER_DOCTOR_LINGER=SECONDS`, the main thread sleeps that long before exiting:
the job is over, so a thread still burning CPU then belongs to something else (a spinning pool).

Stdlib only, and nothing here may raise into the program.
"""

from __future__ import annotations

import atexit
import builtins
import json
import os
import sys
import time
from typing import Any

PROBE_ENV = "BUILDER_DOCTOR_PROBE"
LINGER_ENV = "BUILDER_DOCTOR_LINGER"
WATCHED_ENV = (
    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_PROC_BIND", "OMP_PLACES",
    "OMP_WAIT_POLICY", "GOMP_CPU_AFFINITY", "GOMP_SPINCOUNT", "KMP_AFFINITY", "KMP_BLOCKTIME",
    "KMP_DUPLICATE_LIB_OK", "STEMS_THREADS", "STEMS_INTEROP_THREADS",
)  # fmt: skip
# Libraries that run thread pools of their own beside torch's.
POOL_LIBRARIES = ("onnxruntime", "tensorflow", "numba", "sklearn", "mkl", "jax", "cv2")

_state: dict[str, Any] = {
    "env_at_start": {k: os.environ[k] for k in WATCHED_ENV if k in os.environ},
    "torch_preloaded": "torch" in sys.modules,  # a .pth imported it before this probe ran
    "torch_import": None,
    "settings_calls": [],
}
_t0 = time.time()
_original_import = builtins.__import__
_depth = [0]


def _record_call(name: str, original: Any) -> Any:
    def wrapper(n: int) -> Any:
        _state["settings_calls"].append({"call": name, "value": n, "at_s": round(time.time() - _t0, 3)})
        return original(n)

    return wrapper


def _torch_loaded(torch: Any) -> None:
    try:
        _state["torch_import"] = {
            "at_s": round(time.time() - _t0, 3),
            "threads": torch.get_num_threads(),
            "env": {k: os.environ[k] for k in WATCHED_ENV if k in os.environ},
        }
        torch.set_num_threads = _record_call("set_num_threads", torch.set_num_threads)
        torch.set_num_interop_threads = _record_call("set_num_interop_threads", torch.set_num_interop_threads)
    except Exception as exc:  # noqa: BLE001  (the probe must never break the program)
        _state["probe_error"] = repr(exc)


def _import(name: str, *args: Any, **kwargs: Any) -> Any:
    _depth[0] += 1
    try:
        return _original_import(name, *args, **kwargs)
    finally:
        _depth[0] -= 1
        if _depth[0] == 0 and _state["torch_import"] is None:
            torch = sys.modules.get("torch")
            if torch is not None and hasattr(torch, "get_num_threads"):
                _torch_loaded(torch)
                builtins.__import__ = _original_import


def _at_exit() -> None:
    path = os.environ.get(PROBE_ENV)
    out = dict(_state)
    try:
        torch = sys.modules.get("torch")
        if torch is not None and hasattr(torch, "get_num_threads"):
            out["torch_at_exit"] = {
                "threads": torch.get_num_threads(),
                "interop": torch.get_num_interop_threads(),
            }
        out["libraries_loaded"] = sorted(m for m in POOL_LIBRARIES if m in sys.modules)
        try:
            from threadpoolctl import threadpool_info

            out["pools"] = [
                {k: p.get(k) for k in ("user_api", "internal_api", "filepath", "version", "num_threads")}
                for p in threadpool_info()
            ]
        except ImportError:
            out["pools"] = None
        linger = float(os.environ.get(LINGER_ENV) or 0)
        out["linger_s"] = linger
        out["linger_started"] = time.time()
        if path:
            with open(path, "w", encoding="utf-8") as fh:
                json.dump(out, fh)
        if linger > 0:
            time.sleep(linger)
    except Exception as exc:  # noqa: BLE001
        sys.stderr.write(f"doctor probe: {exc!r}\n")


if os.environ.get(PROBE_ENV):
    if not _state["torch_preloaded"]:
        builtins.__import__ = _import
    else:
        _torch_loaded(sys.modules["torch"])
    atexit.register(_at_exit)
