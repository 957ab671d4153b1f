"""The probe: the text of the frozen program's runtime hook (builder reads it, never runs it).

The freeze writes this file's text, followed by one call of `install(...)`, as a PyInstaller
runtime hook: it runs before the program's first line, so it can

- export the profile's settings (runtime.json beside the program) before anything imports
  torch: `OMP_NUM_THREADS`, `MKL_NUM_THREADS` and `[runtime].env` (for `stems`, its own
  config module does this in the hook before this part);
- see torch's import (an `__import__` wrapper): the threads right after it, and for a program
  that knows nothing of runtime-builder, apply the intra-op and inter-op threads and the matmul
  precision there, before its own code runs;
- time every import (self and cumulative, the way `-X importtime` does, which a frozen program
  ignores);
- record the thread and affinity variables the process started with (what its parent gave it)
  and their values at torch's import, and every later `set_num_threads` /
  `set_num_interop_threads` call (how often thread settings were applied, and when);
- with `RUNTIME_BUILDER_PROBE=PATH`, write at exit what the process ran with, following
  `runtime_entry/contract/probe.schema.json`; then, with `RUNTIME_BUILDER_PROBE_LINGER=SECONDS`,
  keep the process alive that long with the main thread asleep: the job is over, so a thread
  still burning CPU then belongs to something else (a spinning pool), which `builder doctor` sees;
- with `RUNTIME_BUILDER_DOCTOR=PATH`, write the doctor's report at exit (runtime_doctor.inprocess),
  and with `RUNTIME_BUILDER_FINGERPRINT=PATH` the build's fingerprint.

This is the only in-process probe: `builder doctor` puts the same text, as sitecustomize, in front
of a venv's process.

Stdlib only, and torch and threadpoolctl only when the program itself loaded torch: the hook
must not change what it measures. Nothing here may raise into the program.
"""

from __future__ import annotations

import atexit
import builtins
import json
import os
import platform
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from runtime_doctor.host import WATCHED_ENV, cpu_mask

PROBE_ENV = "RUNTIME_BUILDER_PROBE"
LINGER_ENV = "RUNTIME_BUILDER_PROBE_LINGER"
DOCTOR_ENV = "RUNTIME_BUILDER_DOCTOR"
FINGERPRINT_ENV = "RUNTIME_BUILDER_FINGERPRINT"
# Libraries that run thread pools of their own beside torch's.
POOL_LIBRARIES = ("onnxruntime", "tensorflow", "numba", "sklearn", "mkl", "jax", "cv2")
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
CONFIG_NAME = "runtime.json"
CONFIG_ENV = "STEMS_RUNTIME_CONFIG"
# outrank runtime.json, as they do for stems: `builder tune` tries candidates with them
SETTINGS_ENV = {"threads": "STEMS_THREADS", "interop_threads": "STEMS_INTEROP_THREADS",
                "matmul_precision": "STEMS_MATMUL_PRECISION"}  # fmt: skip
REPORTED_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "KMP_AFFINITY", "KMP_BLOCKTIME", "KMP_DUPLICATE_LIB_OK")
POOL_KEYS = ("user_api", "internal_api", "prefix", "filepath", "version", "num_threads")
SLOWEST = 15

_state: dict[str, Any] = {
    "started": time.perf_counter(),
    "settings": {},
    "config_source": "defaults",
    "at_import": None,
    "torch_import_s": None,
    "applied": False,
    "problems": [],
    # what the parent gave the process, before anything here or in the program changes it
    "env_at_start": {k: os.environ[k] for k in WATCHED_ENV if k in os.environ},
    "cpu_mask_at_start": cpu_mask(),
    "env_at_import": None,
    "settings_calls": [],
}
_imports: dict[str, list[float]] = {}  # module -> [cumulative s, self s]
_stack: list[float] = []  # children's time of each import in progress
_original_import = builtins.__import__


def _cpus() -> int:
    """The CPUs the process started with: an OpenMP runtime may pin the main thread at torch's
    import (GOMP_CPU_AFFINITY), and the thread count is not to follow that pin."""
    at_start = _state.get("cpu_mask_at_start")
    if at_start:
        return len(at_start)
    return os.cpu_count() or 1


def _read_settings() -> dict[str, Any]:
    return {**_read_config(), **_settings_from_env()}


def _read_config() -> dict[str, Any]:
    path = os.environ.get(CONFIG_ENV)
    candidate = Path(path) if path else Path(sys.executable).resolve().parent / CONFIG_NAME
    if not candidate.is_file():
        return {}
    try:
        data = json.loads(candidate.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        _state["problems"].append(f"{candidate}: unreadable: {exc}")
        return {}
    _state["config_source"] = str(candidate)
    return data if isinstance(data, dict) else {}


def _settings_from_env() -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, name in SETTINGS_ENV.items():
        value = os.environ.get(name, "").strip()
        if not value:
            continue
        if key != "matmul_precision" and value != "auto":
            try:
                found[key] = int(value)
            except ValueError:
                _state["problems"].append(f"{name}={value!r}: not a whole number (or auto)")
                continue
        else:
            found[key] = value
    if found:
        _state["config_source"] += " + " + ", ".join(SETTINGS_ENV[k] for k in found)
    return found


def _requested_threads(settings: dict[str, Any]) -> int:
    value = settings.get("threads", "auto")
    return _cpus() if value in (None, "auto") else int(value)


def export_settings(settings: dict[str, Any]) -> None:
    """The profile's variables and the thread count, before torch is imported (inherited ones lose)."""
    env = {str(k): str(v) for k, v in (settings.get("env") or {}).items()}
    os.environ.update({**env, **dict.fromkeys(THREAD_ENV, str(_requested_threads(settings)))})


def _torch_ready() -> bool:
    """torch is imported and done initialising (imports from inside torch's own __init__ are not)."""
    torch = sys.modules.get("torch")
    spec = getattr(torch, "__spec__", None)
    return hasattr(torch, "get_num_threads") and not getattr(spec, "_initializing", False)


def _record_call(name: str, original: Any) -> Any:
    def wrapper(n: int) -> Any:
        at = round(time.perf_counter() - _state["started"], 3)
        _state["settings_calls"].append({"call": name, "value": int(n), "at_s": at})
        return original(n)

    return wrapper


def _torch_loaded(apply: bool) -> None:
    torch: Any = sys.modules["torch"]
    _state["at_import"] = int(torch.get_num_threads())
    _state["env_at_import"] = {k: os.environ[k] for k in WATCHED_ENV if k in os.environ}
    timing = _imports.get("torch")
    _state["torch_import_s"] = timing[0] if timing else None
    settings = _state["settings"]
    if apply:
        try:
            torch.set_num_threads(_requested_threads(settings))
            torch.set_num_interop_threads(int(settings.get("interop_threads", 1)))
            torch.set_float32_matmul_precision(str(settings.get("matmul_precision", "highest")))
            _state["applied"] = True
        except (RuntimeError, ValueError) as exc:  # a setting torch refuses: reported, never raised
            _state["problems"].append(f"applying the runtime settings: {exc}")
    # the program's own calls from here on (the hook's above are not the program's)
    torch.set_num_threads = _record_call("set_num_threads", torch.set_num_threads)
    torch.set_num_interop_threads = _record_call("set_num_interop_threads", torch.set_num_interop_threads)


def _timed_import(
    name: str,
    globals: Mapping[str, object] | None = None,
    locals: Mapping[str, object] | None = None,
    fromlist: Sequence[str] | None = (),
    level: int = 0,
) -> ModuleType:
    if level == 0 and name in sys.modules:
        return _original_import(name, globals, locals, fromlist, level)
    full = name
    if level and globals:
        package = str(globals.get("__package__") or "")
        base = package.rsplit(".", level - 1)[0] if level > 1 else package
        full = f"{base}.{name}" if name else base
    new = full not in sys.modules
    start = time.perf_counter()
    _stack.append(0.0)
    try:
        return _original_import(name, globals, locals, fromlist, level)
    finally:
        children = _stack.pop()
        spent = time.perf_counter() - start
        if _stack:
            _stack[-1] += spent
        if new and full in sys.modules:
            _imports[full] = [spent, spent - children]
        if _state["at_import"] is None and _torch_ready():
            _torch_loaded(_state["apply"])


def _threadpools() -> list[dict[str, Any]]:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        _state["problems"].append("threadpoolctl is not in the program: no thread pool inventory")
        return []
    pools = [{k: pool.get(k) for k in POOL_KEYS} for pool in threadpool_info()]
    # Load order varies from run to run: a stable order, so two probes of one program compare.
    return sorted(pools, key=lambda p: (str(p["user_api"]), str(p["prefix"]), str(p["filepath"])))


def _version(module: str) -> str | None:
    found = sys.modules.get(module)
    value = getattr(found, "__version__", None) if found is not None else None
    return str(value) if value is not None else None


def report() -> dict[str, Any]:
    """What the process runs with now, and what it ran with when torch was imported."""
    torch: Any = sys.modules.get("torch")
    settings = _state["settings"]
    loaded = torch is not None and _torch_ready()
    if loaded and _state["at_import"] is None:
        _torch_loaded(False)  # imported through importlib only: seen now
    slowest = sorted(_imports.items(), key=lambda kv: -kv[1][1])[:SLOWEST]
    by_package: dict[str, float] = {}
    for module, (_cumulative, own) in _imports.items():
        top = module.split(".")[0]
        by_package[top] = by_package.get(top, 0.0) + own
    versions: dict[str, str | None] = {"python": platform.python_version()}
    versions.update({m: _version(m) for m in ("torch", "numpy", "onnxruntime", "librosa", "soundfile")})
    return {
        "probe": 1,
        "program": Path(sys.executable if getattr(sys, "frozen", False) else sys.argv[0]).name,
        "frozen": bool(getattr(sys, "frozen", False)),
        "executable": sys.executable,
        "argv": list(sys.argv[1:]),
        "platform": {"system": platform.system(), "machine": platform.machine()},
        "profile": settings.get("profile"),
        "config_source": _state["config_source"],
        "settings_applied_by": "probe" if _state["applied"] else "program",
        "torch_imported": loaded,
        "versions": versions,
        "threads": {
            "requested": _requested_threads(settings),
            "at_import": _state["at_import"],
            "torch": int(torch.get_num_threads()) if loaded else None,
            "interop": int(torch.get_num_interop_threads()) if loaded else None,
        },
        "matmul_precision": str(torch.get_float32_matmul_precision()) if loaded else None,
        "env": {
            k: os.environ[k] for k in sorted({*REPORTED_ENV, *(settings.get("env") or {})}) if k in os.environ
        },
        "threadpools": _threadpools() if loaded else [],
        "imports": {
            "total_s": round(sum(v[1] for v in _imports.values()), 4),
            "torch_s": round(_state["torch_import_s"], 4) if _state["torch_import_s"] is not None else None,
            "modules": len(_imports),
            "by_package": {
                k: round(v, 4) for k, v in sorted(by_package.items(), key=lambda kv: -kv[1]) if v >= 5e-4
            },
            "slowest": [
                {"module": m, "self_s": round(v[1], 4), "cumulative_s": round(v[0], 4)} for m, v in slowest
            ],
        },
        "wall_s": round(time.perf_counter() - _state["started"], 4),
        "env_at_start": dict(_state["env_at_start"]),
        "env_at_import": _state["env_at_import"],
        "cpu_mask_at_start": _state["cpu_mask_at_start"],
        "settings_calls": list(_state["settings_calls"]),
        "libraries_loaded": sorted(m for m in POOL_LIBRARIES if m in sys.modules),
        "problems": list(_state["problems"]),
    }


def _linger_s() -> float:
    try:
        return max(0.0, float(os.environ.get(LINGER_ENV) or 0))
    except ValueError:
        return 0.0


def _write_probe() -> None:
    target = os.environ.get(PROBE_ENV)
    if not target:
        return
    try:
        linger = _linger_s()
        doc = {**report(), "linger_s": linger, "linger_started": time.time()}
        text = json.dumps(doc, indent=1, sort_keys=True) + "\n"
        # builder's temporary-name pattern (fsutil.TEMP_NAME), spelled out: this hook runs without builder
        tmp = Path(target).with_name(f".{Path(target).name}.builder-tmp-{os.getpid()}-probe")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)  # whole or absent: a reader never sees half a probe
    except Exception as exc:  # noqa: BLE001 - at exit nothing may raise; say why on stderr instead
        sys.stderr.write(f"runtime-builder probe: not written: {exc}\n")
        return
    if linger > 0:
        time.sleep(linger)


def _write_doctor() -> None:
    """The doctor's report (RUNTIME_BUILDER_DOCTOR) or the build's fingerprint, from this process."""
    doctor, fingerprint = os.environ.get(DOCTOR_ENV), os.environ.get(FINGERPRINT_ENV)
    if not (doctor or fingerprint):
        return
    try:
        from runtime_doctor import inprocess

        inprocess.at_exit(report(), doctor=doctor, fingerprint=fingerprint)
    except Exception as exc:  # noqa: BLE001 - at exit nothing may raise; say why on stderr instead
        sys.stderr.write(f"runtime-builder doctor: not written: {exc}\n")


def install(*, export: bool, apply_torch: bool) -> None:
    """Read runtime.json, export its settings (when the program does not), watch imports, probe at exit."""
    _state["settings"] = _read_settings()
    _state["apply"] = apply_torch
    if export:
        export_settings(_state["settings"])
    builtins.__import__ = _timed_import
    atexit.register(_write_probe)  # atexit runs the last registered first: the doctor, then the probe
    atexit.register(_write_doctor)
