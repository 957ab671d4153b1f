"""Check a program that knows nothing of runtime-builder, by its probe.

The freeze's runtime hook writes the probe (`RUNTIME_BUILDER_PROBE=PATH`, probe.schema.json)
when the program exits. The check runs the program once with its check command, reads the probe,
and compares it with the profile the way `stems selftest` is compared: threads right after
torch's import (the proof that the variables were set before torch loaded), threads, inter-op
threads and precision after, the environment, torch's version, and one OpenMP runtime whose
pool runs the profile's threads.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from builder.contract import require, runtime_environment
from builder.errors import CheckError
from builder.measure.take.workload import Workload
from builder.openmp.pools import loaded_runtimes, openmp_pools
from builder.stages.outputs import missing_from, without_probe_frames
from builder.tools import process

PROBE_ENV = "RUNTIME_BUILDER_PROBE"


def run_probe(
    argv: Sequence[str],
    *,
    cwd: Path | None = None,
    timeout: float = 300,
    extra_env: dict[str, str] | None = None,
    allow_missing: bool = False,
) -> tuple[dict[str, Any], subprocess.CompletedProcess[str]]:
    """Run `argv` (a frozen program and its arguments) once and return its probe, checked against the
    contract (`allow_missing`: an empty probe when the program wrote none, for the caller to judge)."""
    with tempfile.TemporaryDirectory(prefix="builder-probe-") as tmp:
        target = Path(tmp) / "probe.json"
        # Inherited thread variables would hide whether the program's hook sets its own.
        env = runtime_environment({PROBE_ENV: str(target), **(extra_env or {})}, os.environ)
        proc = process.run(
            list(argv), tool=Path(argv[0]).name, timeout=timeout, check=False, env=env, inherit=False, cwd=cwd
        )
        if not target.is_file() and allow_missing:
            return {}, proc
        if not target.is_file():
            raise CheckError(
                f"{argv[0]} wrote no probe (exit {proc.returncode}): {process.last_lines(proc.stderr)}",
                hint="a program frozen by an older builder has no probe: rebuild it",
            )
        probe: dict[str, Any] = json.loads(target.read_text(encoding="utf-8"))
    require(probe, "probe", what=f"{argv[0]} probe")
    return probe, proc


def openmp_of(probe: dict[str, Any]) -> list[dict[str, str]]:
    """The loaded OpenMP runtimes as {path, family}, one per file (threadpoolctl's pools)."""
    return loaded_runtimes(probe.get("threadpools", []))


def compare_probe(probe: dict[str, Any], want: dict[str, Any]) -> list[str]:
    """Every way the probe differs from what the profile asks (pure); `want` as check.expected gives it."""
    if not probe["torch_imported"]:
        return ["the program never imported torch while it ran its check command (nothing to check)"]
    problems = []
    t = probe["threads"]
    if t["at_import"] != want["threads"]:
        problems.append(f"threads at torch import {t['at_import']} != {want['threads']} "
                        "(thread variables not set before torch loaded)")  # fmt: skip
    if t["torch"] != want["threads"]:
        problems.append(f"torch.get_num_threads() {t['torch']} != {want['threads']}")
    if t["interop"] != want["interop"]:
        problems.append(f"interop threads {t['interop']} != {want['interop']}")
    if probe["matmul_precision"] != want["matmul_precision"]:
        problems.append(f"matmul precision {probe['matmul_precision']!r} != {want['matmul_precision']!r}")
    for key, value in want["env"].items():
        if probe["env"].get(key) != value:
            problems.append(f"env {key}={probe['env'].get(key)!r}, expected {value!r}")
    if "KMP_DUPLICATE_LIB_OK" in probe["env"]:
        problems.append("KMP_DUPLICATE_LIB_OK is set: it hides duplicate OpenMP runtimes")
    if want["torch"] and probe["versions"].get("torch") != want["torch"]:
        problems.append(f"torch {probe['versions'].get('torch')} != locked {want['torch']}")
    openmp = openmp_of(probe)
    if len(openmp) > 1:
        problems.append(f"{len(openmp)} OpenMP runtimes loaded: " + ", ".join(o["path"] for o in openmp))
    for pool in openmp_pools(probe["threadpools"]):
        if pool["num_threads"] != want["threads"]:
            problems.append(
                f"the OpenMP pool {pool['prefix']} runs {pool['num_threads']} threads, expected {want['threads']}"
            )
    problems += [f"probe: {p}" for p in probe["problems"]]
    return problems


def summary(probe: dict[str, Any]) -> dict[str, Any]:
    """What the build keeps of a probe (selftest.json of the dist): no timings, no paths of this run."""
    return {
        "program": probe["program"],
        "source": "probe",
        "settings_applied_by": probe["settings_applied_by"],
        "versions": probe["versions"],
        "threads": probe["threads"],
        "matmul_precision": probe["matmul_precision"],
        "env": probe["env"],
        "openmp": openmp_of(probe),
        "threadpools": probe["threadpools"],
    }


def check_probe(program: Path, workload: Workload, want: dict[str, Any], profile_name: str) -> dict[str, Any]:
    """Run the check command ([bench].check-command, default `{program} --help`) with the probe on;
    CheckError listing every difference from the profile."""
    with tempfile.TemporaryDirectory(prefix="builder-check-") as tmp:
        argv = workload.render([str(program)], Path(tmp))
        probe, proc = run_probe(argv, cwd=Path(tmp))
    if proc.returncode != 0:
        missing = missing_from(proc.stderr, program.parent)
        if missing:
            raise CheckError(
                f"{shlex.join(argv)} failed (exit {proc.returncode}): the freeze lacks "
                + ", ".join(m for m, _ in missing),
                hint="add freeze.trace-add = ["
                + ", ".join(f'"{e}"' for _, e in missing)
                + "] to the profile",
            )
        raise CheckError(
            f"{shlex.join(argv)} failed (exit {proc.returncode}): "
            f"{process.last_lines(without_probe_frames(proc.stderr))}",
            hint="the check command ([bench].check-command, else `{program} --help`) must run to the end",
        )
    problems = compare_probe(probe, want)
    if problems:
        raise CheckError(f"{program} does not match {profile_name}: " + "; ".join(problems))
    return summary(probe)
