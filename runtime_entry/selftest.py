"""`stems selftest`: what this process really runs with, as one JSON object."""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

from . import __version__, config
from .contract import REPORTED_ENV
from .openmp_loaded import loaded_openmp

# What the contract reports of each pool threadpoolctl finds (selftest.schema.json `threadpools`).
POOL_KEYS = ("user_api", "internal_api", "prefix", "filepath", "version", "num_threads")


def threadpools() -> list[dict[str, object]]:
    """The native thread pools loaded in this process (OpenMP, BLAS), as threadpoolctl finds them:
    the same inventory on Linux, macOS and Windows (it asks the dynamic loader, not /proc)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # a runtime without threadpoolctl: the check stage says so
        return []
    pools = [{k: pool.get(k) for k in POOL_KEYS} for pool in threadpool_info()]
    # Load order varies from run to run; a stable order keeps the packaged selftest.json reproducible.
    return sorted(pools, key=lambda p: (str(p["user_api"]), str(p["prefix"]), str(p["filepath"])))


def report(cfg: config.RuntimeConfig) -> dict[str, object]:
    started = time.perf_counter()
    import numpy
    import torch

    import_seconds = time.perf_counter() - started
    # What OpenMP read from the environment at load time, before we touch it:
    # equal to the requested count only if the variables were set before import.
    threads_at_import = torch.get_num_threads()
    config.apply_to_torch(cfg)
    a = torch.randn(256, 256)
    # "high"/"medium" may compute fp32 matmuls in bf16 (AMX): allow that rounding, not garbage.
    tol = 1e-5 if cfg.matmul_precision == "highest" else 2e-2
    ok = bool(torch.allclose(a @ torch.eye(256), a, rtol=tol, atol=tol))
    versions: dict[str, str | None] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
    }
    for optional in ("soundfile", "scipy", "yaml"):
        try:
            versions[optional] = __import__(optional).__version__
        except ImportError:
            versions[optional] = None
    return {
        "program": "stems",
        "version": __version__,
        "frozen": bool(getattr(sys, "frozen", False)),
        "executable": sys.executable,
        "platform": {"system": platform.system(), "machine": platform.machine()},
        "profile": cfg.profile,
        "config_source": cfg.source,
        "versions": versions,
        "threads": {
            "requested": cfg.threads,
            "at_import": threads_at_import,
            "torch": torch.get_num_threads(),
            "interop": torch.get_num_interop_threads(),
        },
        "matmul_precision": torch.get_float32_matmul_precision(),
        "env": {k: os.environ[k] for k in sorted({*REPORTED_ENV, *cfg.env}) if k in os.environ},
        "openmp": loaded_openmp(),
        "threadpools": threadpools(),
        "matmul_ok": ok,
        "torch_import_seconds": round(import_seconds, 3),
    }


def run(args: argparse.Namespace, cfg: config.RuntimeConfig) -> int:
    from .cli_common import print_json

    data = report(cfg)
    if args.json:
        print_json(data)
    else:
        for key, value in data.items():
            print(f"{key}: {value}")
    return 0 if data["matmul_ok"] else 1
