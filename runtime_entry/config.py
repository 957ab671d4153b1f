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


def config_path(environ: dict[str, str] | os._Environ[str]) -> Path | None:
    if env := environ.get(CONFIG_ENV):
        return Path(env)
    if getattr(sys, "frozen", False):
        candidate = Path(sys.executable).resolve().parent / CONFIG_NAME
        return candidate if candidate.is_file() else None
    return None


def _threads(value: Any, what: str) -> int:
    if value in (None, "auto"):
        return available_cpus()
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what}: expected a positive integer or 'auto', got {value!r}") from None
    if n < 1:
        raise ValueError(f"{what}: expected a positive integer or 'auto', got {value!r}")
    return n


def read_config(path: Path) -> dict[str, Any]:
    """A runtime.json, checked against the contract's runtime.schema.json (ValueError names the key)."""
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"{path}: unreadable runtime config: {exc}") from None
    found = problems(data, load("runtime"))
    if found:
        raise ValueError(
            f"{path}: runtime config: {found[0]} (see runtime_entry/contract/runtime.schema.json)"
        )
    cfg: dict[str, Any] = data
    return cfg


def resolve(
    *,
    threads: int | None = None,
    interop_threads: int | None = None,
    precision: str | None = None,
    environ: dict[str, str] | os._Environ[str] | None = None,
) -> RuntimeConfig:
    """Combine flags, STEMS_* variables and the config file (raises ValueError on bad values)."""
    env = os.environ if environ is None else environ
    file_cfg: dict[str, Any] = {}
    source = "defaults"
    path = config_path(env)
    if path is not None:
        file_cfg = read_config(path)
        source = str(path)
    t = threads if threads is not None else env.get(SETTINGS_ENV["threads"], file_cfg.get("threads", "auto"))
    i = (
        interop_threads
        if interop_threads is not None
        else env.get(SETTINGS_ENV["interop_threads"], file_cfg.get("interop_threads", 1))
    )
    p = precision or env.get(SETTINGS_ENV["matmul_precision"]) or file_cfg.get("matmul_precision", "highest")
    if p not in PRECISIONS:
        raise ValueError(f"matmul precision: expected one of {', '.join(PRECISIONS)}, got {p!r}")
    return RuntimeConfig(
        threads=_threads(t, "threads"),
        interop_threads=_threads(i, "interop threads"),
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
