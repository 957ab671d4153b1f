"""Check: run the frozen program's `selftest --json` (stems), or its workload (any other program),
and compare it with the profile and, for a traced freeze, with the venv's run of the same workload."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from builder.artifact.bundle import frozen_problems
from builder.contract import require
from builder.errors import CheckError
from builder.measure.take.runner import DEFAULT_STALL, run_monitored
from builder.measure.take.workload import Workload
from builder.openmp.pools import openmp_pools
from builder.profile import Profile
from builder.stages.lock import Lock
from builder.stages.outputs import compare_outputs, missing_from, without_probe_frames
from builder.stages.plan import BuildPlan
from builder.stages.probe import check_probe, compare_probe, run_probe, summary
from builder.tools.process import last_lines


def host_cpus() -> int:
    if sys.platform == "linux":  # the CPUs this process may use (a container's limit), Linux only
        return len(os.sched_getaffinity(0))
    else:
        return os.cpu_count() or 1


def run_selftest(program: Path, timeout: float = 300) -> dict[str, Any]:
    # The runtime runner removes inherited thread variables: they would hide whether the
    # program sets its own (the bug we guard against). It kills the whole tree on a hang.
    res = run_monitored(
        [str(program), "selftest", "--json"], env={}, timeout=timeout, stall=min(DEFAULT_STALL, timeout)
    )
    if res.killed:
        raise CheckError(f"{program} selftest {res.killed}")
    if res.returncode != 0 and not res.stdout.strip():
        raise CheckError(f"{program} selftest failed (exit {res.returncode}): {last_lines(res.stderr)}")
    try:
        report: dict[str, Any] = json.loads(res.stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        raise CheckError(
            f"{program} selftest printed no JSON: {last_lines(res.stdout + res.stderr)}"
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
    problems += openmp_problems(report, want["threads"])
    if not report.get("matmul_ok"):
        problems.append("the torch matmul check gave a wrong result")
    return problems


def openmp_problems(report: dict[str, Any], threads: int) -> list[str]:
    """Exactly one OpenMP runtime, running the profile's threads (pure).

    threadpoolctl's inventory is the proof on every system; the OS's list of mapped files
    (`openmp`: /proc on Linux, dyld on macOS, the module list on Windows) is a second witness.
    """
    problems = []
    pools = openmp_pools(report.get("threadpools", []))
    if not pools:
        problems.append(
            "threadpoolctl found no OpenMP runtime in the program (torch loads one: is threadpoolctl in the lock?)"
        )
    elif len(pools) > 1:
        problems.append(
            f"{len(pools)} OpenMP runtimes loaded (threadpoolctl): " + ", ".join(p["filepath"] for p in pools)
        )
    else:
        n = pools[0].get("num_threads")
        if n != threads:
            problems.append(
                f"the OpenMP pool ({pools[0].get('prefix')}) runs {n} threads, expected {threads} "
                "(torch's setting did not reach the OpenMP runtime)"
            )
    mapped = report.get("openmp", [])
    if len(mapped) > 1:
        problems.append(
            f"{len(mapped)} OpenMP runtimes loaded (mapped files): " + ", ".join(o["path"] for o in mapped)
        )
    return problems


def check(program: Path, plan: BuildPlan, reference: Path | None = None) -> dict[str, Any]:
    """`reference`: the venv's outputs of [bench].command (the trace stage's), which the frozen
    program's run of the same workload must reproduce."""
    profile, want = plan.profile, expected(plan.profile, plan.lock)
    if not profile.program.bundled:  # a program that knows nothing of us: its probe is the report
        if reference is not None:
            assert plan.workload is not None  # a traced profile has a workload
            return check_workload(program, plan.workload, want, profile, reference)
        assert plan.check_workload is not None  # a program other than stems always has a check command
        return check_probe(program, plan.check_workload, want, profile.name)
    report = run_selftest(program)
    problems = compare(report, want)
    problems += frozen_problems(program.parent, report, profile)  # the loaded OpenMP file; macOS rules
    if problems:
        raise CheckError(f"{program} does not match {profile.name}: " + "; ".join(problems))
    return report


def check_workload(
    program: Path, workload: Workload, want: dict[str, Any], profile: Profile, reference: Path
) -> dict[str, Any]:
    """Run the workload with the frozen program, probe on: it must run to the end, write what the
    venv's run wrote, and match the profile's settings. A failure names what the freeze lacks."""
    with tempfile.TemporaryDirectory(prefix="builder-check-") as tmp:
        argv = workload.render([str(program)], Path(tmp))
        probe, proc = run_probe(argv, cwd=Path(tmp), timeout=1800, allow_missing=True)
        if proc.returncode != 0 or not probe:
            message, hint = _failure(program, profile, proc.returncode, proc.stderr)
            raise CheckError(message, hint=hint)
        problems = compare_outputs(reference, Path(tmp) / "output", profile.bench.tolerance)
        outputs = len([p for p in (Path(tmp) / "output").rglob("*") if p.is_file()])
    if problems:
        raise CheckError(
            f"{program}: the workload's outputs differ from the venv's run: " + "; ".join(problems[:5]),
            hint="the same program and inputs gave other outputs frozen: set [bench].tolerance in "
            f"{profile.path.name} if the difference is rounding",
        )
    problems = compare_probe(probe, want)
    if problems:
        raise CheckError(f"{program} does not match {profile.name}: " + "; ".join(problems))
    # no paths of this run: the report is stored in the dist, which two builds must give alike
    return {**summary(probe), "workload": {"outputs": outputs, "equal_to_venv": True}}


def _failure(program: Path, profile: Profile, code: int, stderr: str) -> tuple[str, str]:
    """The message and hint of a failed frozen run: what is missing and the key that adds it."""
    missing = missing_from(stderr, program.parent)
    tail = last_lines(without_probe_frames(stderr))
    if missing:
        what = ", ".join(m for m, _ in missing)
        entries = ", ".join(f'"{e}"' for _, e in missing)
        return (
            f"{program}: the workload failed frozen (exit {code}) where it ran in the venv: missing {what}",
            f"add freeze.trace-add = [{entries}] to {profile.path.name}",
        )
    return (
        f"{program}: the workload failed frozen (exit {code}) where it ran in the venv: {tail}",
        "the frozen run's stderr above says why; freeze.trace-add bundles a module, file or library by hand",
    )
