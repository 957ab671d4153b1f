"""Runtime settings, resolved before torch is imported. Pure stdlib on purpose.

Precedence, highest first: command-line flags, STEMS_* environment variables,
the runtime config file (`runtime.json` beside the frozen program, or
STEMS_RUNTIME_CONFIG), built-in defaults. OMP_NUM_THREADS and MKL_NUM_THREADS are
always overwritten with the resolved count: an inherited value (a parent process
that set 1) is the classic cause of a runtime that silently runs on one core.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .contract import CONFIG_ENV, CONFIG_NAME, PRECISIONS, SETTINGS_ENV, THREAD_ENV, load, problems
from .errors import RuntimeConfigError

__all__ = ["CONFIG_NAME", "PRECISIONS", "RuntimeConfig", "apply_to_torch", "prepare_environment", "resolve"]


@dataclass(frozen=True, kw_only=True)
class RuntimeConfig:
    threads: int
    interop_threads: int
    matmul_precision: str
    env: dict[str, str] = field(default_factory=dict)
    profile: str | None = None
    source: str = "defaults"

    def environment(self) -> dict[str, str]:
        # runtime.json cannot carry the thread variables (the contract forbids it): they come from threads.
        return {**self.env, **dict.fromkeys(THREAD_ENV, str(self.threads))}


def available_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


# More threads than this many per CPU only add contention, and a huge count fails inside
# OpenMP (libgomp aborts, some builds crash) instead of with a message: refused before torch.
THREADS_PER_CPU = 4
MAX_CONFIG_BYTES = 1 << 20  # a runtime config is a few hundred bytes


def max_threads() -> int:
    """The largest thread count accepted: THREADS_PER_CPU times the machine's logical CPUs."""
    return THREADS_PER_CPU * (os.cpu_count() or 1)


def config_path(environ: dict[str, str] | os._Environ[str]) -> Path | None:
    if env := environ.get(CONFIG_ENV):
        return Path(env)
    if getattr(sys, "frozen", False):
        candidate = Path(sys.executable).resolve().parent / CONFIG_NAME
        return candidate if candidate.exists() else None
    return None


def _threads(value: Any, what: str) -> int:
    if value in (None, "auto"):
        return available_cpus()
    expected = "expected a positive integer or 'auto'"
    if isinstance(value, (bool, float)):
        raise RuntimeConfigError(f"{what}: {expected}, got {value!r}")
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise RuntimeConfigError(f"{what}: {expected}, got {value!r}"[:300]) from None
    if n < 1:
        raise RuntimeConfigError(f"{what}: {expected}, got {value!r}")
    if n > max_threads():
        raise RuntimeConfigError(
            f"{what}: {n} is more than {THREADS_PER_CPU} per CPU ({max_threads()} on this machine's "
            f"{os.cpu_count() or 1} CPUs): more threads than that only slow a run down, and a huge "
            "count fails inside OpenMP"
        )
    return n


def read_config(path: Path) -> dict[str, Any]:
    """A runtime.json, checked against the contract's runtime.schema.json (RuntimeConfigError names the key)."""
    schema_ref = "see runtime_entry/contract/runtime.schema.json"
    if not path.exists():
        raise RuntimeConfigError(f"{path}: runtime config not found ({CONFIG_ENV} or {CONFIG_NAME})")
    if not path.is_file():  # a FIFO, a device or a folder: never read (a read could block forever)
        raise RuntimeConfigError(f"{path}: runtime config is not a regular file (a JSON object is expected)")
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise RuntimeConfigError(f"{path}: cannot read the runtime config: {exc.strerror or exc}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise RuntimeConfigError(f"{path}: runtime config over {MAX_CONFIG_BYTES} bytes; {schema_ref}")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise RuntimeConfigError(f"{path}: runtime config is not UTF-8 text (byte {exc.start})") from None
    except ValueError as exc:
        raise RuntimeConfigError(f"{path}: runtime config is not valid JSON ({exc})") from None
    except RecursionError:
        raise RuntimeConfigError(f"{path}: runtime config is nested too deeply; {schema_ref}") from None
    found = problems(data, load("runtime"))
    if found:
        raise RuntimeConfigError(f"{path}: runtime config: {found[0]} ({schema_ref})")
    cfg: dict[str, Any] = data
    return cfg


def resolve(
    *,
    threads: int | None = None,
    interop_threads: int | None = None,
    precision: str | None = None,
    environ: dict[str, str] | os._Environ[str] | None = None,
) -> RuntimeConfig:
    """Combine flags, STEMS_* variables and the config file (RuntimeConfigError on bad values)."""
    env = os.environ if environ is None else environ
    file_cfg: dict[str, Any] = {}
    source = "defaults"
    path = config_path(env)
    if path is not None:
        file_cfg = read_config(path)
        source = str(path)
        for key in ("threads", "interop_threads"):  # bounded even when a flag overrides it
            if key in file_cfg:
                _threads(file_cfg[key], f"{source}: {key}")

    def pick(flag: Any, flag_name: str, key: str, default: Any) -> tuple[Any, str]:
        """The value and where it came from, for a message that names the source."""
        if flag is not None:
            return flag, flag_name
        if SETTINGS_ENV[key] in env:
            return env[SETTINGS_ENV[key]], SETTINGS_ENV[key]
        if key in file_cfg:
            return file_cfg[key], f"{source}: {key}"
        return default, key

    t, t_from = pick(threads, "--threads", "threads", "auto")
    i, i_from = pick(interop_threads, "--interop-threads", "interop_threads", 1)
    p = precision or env.get(SETTINGS_ENV["matmul_precision"]) or file_cfg.get("matmul_precision", "highest")
    if p not in PRECISIONS:
        raise RuntimeConfigError(f"matmul precision: expected one of {', '.join(PRECISIONS)}, got {p!r}")
    return RuntimeConfig(
        threads=_threads(t, t_from),
        interop_threads=_threads(i, i_from),
        matmul_precision=p,
        env={str(k): str(v) for k, v in file_cfg.get("env", {}).items()},
        profile=file_cfg.get("profile"),
        source=source,
    )


def prepare_environment(cfg: RuntimeConfig) -> None:
    """Export thread variables. Must run before the first `import torch`."""
    if "torch" in sys.modules:
        raise RuntimeError("thread settings applied after torch was imported")
    os.environ.update(cfg.environment())


def apply_to_torch(cfg: RuntimeConfig) -> None:
    import torch

    torch.set_num_threads(cfg.threads)
    try:
        torch.set_num_interop_threads(cfg.interop_threads)
    except RuntimeError:
        pass  # already set in this process (the worker reconfigures); intra-op still applies
    torch.set_float32_matmul_precision(cfg.matmul_precision)
