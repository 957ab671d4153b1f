"""Check: run the frozen program's `selftest --json` and compare it with the profile."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from builder.contract import require, runtime_environment
from builder.errors import CheckError
from builder.profile import Profile
from builder.stages.lock import Lock
from builder.tools import process


def host_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def run_selftest(program: Path, timeout: float = 300) -> dict[str, Any]:
    # Inherited values would hide whether the program sets its own (the bug we guard against).
    env = runtime_environment({}, os.environ)
    proc = process.run(
        [program, "selftest", "--json"],
        tool="stems selftest",
        timeout=timeout,
        check=False,
        env=env,
        inherit=False,
    )
    if proc.returncode != 0 and not proc.stdout.strip():
        raise CheckError(
            f"{program} selftest failed (exit {proc.returncode}): {process.last_lines(proc.stderr)}"
        )
    try:
        report: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        raise CheckError(
            f"{program} selftest printed no JSON: {process.last_lines(proc.stdout + proc.stderr)}"
        ) from None
    require(report, "selftest", what=f"{program} selftest")
    return report


def expected(profile: Profile, lock: Lock) -> dict[str, Any]:
    threads = profile.runtime.resolved_threads(host_cpus())
    env = profile.runtime.environment(threads)
    torch_pin = lock.pins.get("torch")
    return {
        "threads": threads,
        "interop": profile.runtime.interop_threads,
        "matmul_precision": profile.runtime.matmul_precision,
        "env": env,
        "torch": torch_pin.version if torch_pin else None,
    }


def compare(report: dict[str, Any], want: dict[str, Any]) -> list[str]:
    """Every way the selftest report differs from what the profile asks (pure)."""
    problems = []
    t = report.get("threads", {})
    if t.get("at_import") != want["threads"]:
        problems.append(f"threads at torch import {t.get('at_import')} != {want['threads']} "
                        "(thread variables not set before torch loaded)")  # fmt: skip
    if t.get("torch") != want["threads"]:
        problems.append(f"torch.get_num_threads() {t.get('torch')} != {want['threads']}")
    if t.get("interop") != want["interop"]:
        problems.append(f"interop threads {t.get('interop')} != {want['interop']}")
    if report.get("matmul_precision") != want["matmul_precision"]:
        problems.append(
            f"matmul precision {report.get('matmul_precision')!r} != {want['matmul_precision']!r}"
        )
    env = report.get("env", {})
    for key, value in want["env"].items():
        if env.get(key) != value:
            problems.append(f"env {key}={env.get(key)!r}, expected {value!r}")
    if "KMP_DUPLICATE_LIB_OK" in env:
        problems.append("KMP_DUPLICATE_LIB_OK is set: it hides duplicate OpenMP runtimes")
    if want["torch"] and report.get("versions", {}).get("torch") != want["torch"]:
        problems.append(f"torch {report.get('versions', {}).get('torch')} != locked {want['torch']}")
    openmp = report.get("openmp", [])
    if len(openmp) > 1:
        problems.append(f"{len(openmp)} OpenMP runtimes loaded: " + ", ".join(o["path"] for o in openmp))
    if not report.get("matmul_ok"):
        problems.append("the torch matmul check gave a wrong result")
    return problems


def check(program: Path, profile: Profile, lock: Lock) -> dict[str, Any]:
    report = run_selftest(program)
    problems = compare(report, expected(profile, lock))
    if problems:
        raise CheckError(f"{program} does not match {profile.name}: " + "; ".join(problems))
    return report
