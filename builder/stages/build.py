"""`builder build`: lock check -> install -> openmp -> freeze -> check -> smoke bench -> package.

This module only sequences the stages (each in its own module of builder/stages/) and logs
them. Every stage writes to a temporary folder that is renamed into place, so a killed build
leaves the previous dist/P/ whole. Unchanged inputs skip the work: the venv is reused when the
lock is, and the whole build is reported "up to date" when the dist was made from the same inputs
and passed its checks with the same [bench]; a change to [bench] alone re-runs the budgets, the check
and the smoke bench on that dist (builder/stages/checked.py), never the freeze or the package.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from builder.artifact.contributors import Contributor, frozen_contributors
from builder.artifact.inspect import human_size, inspect_path, tree_totals
from builder.artifact.manifest import MANIFEST, SUMS, read_manifest
from builder.errors import BudgetError, CheckError, InputError
from builder.fsutil import require_writable_dir, safe_output_dir
from builder.log import Log
from builder.measure.judge.bench import BenchResult, enforce
from builder.measure.judge.budget import size_checks
from builder.mutex import build_mutex
from builder.paths import Project
from builder.profile import Profile
from builder.stages import checked, freeze_reuse
from builder.stages.check import check
from builder.stages.checked import checks_hash
from builder.stages.fingerprint import fingerprint_line, take_fingerprint
from builder.stages.freeze import FreezePlan, FreezeResult, freeze, plan_freeze
from builder.stages.inputs import freeze_inputs_hash, inputs_hash
from builder.stages.install import InstallResult, install
from builder.stages.openmp import openmp_stage_cached
from builder.stages.package import manifest_body, package_stage
from builder.stages.plan import BuildPlan, program_of, resolve_plan
from builder.stages.result import SELFTEST_KEYS, BuildResult, dist_summary
from builder.stages.smoke import smoke_bench
from builder.stages.trace import Trace, log_trace_missed, trace_stage
from builder.tools import process
from builder.venvs import site_packages_of

DEFAULT_EPOCH = 315532800  # 1980-01-01, the earliest time a zip file can hold


def source_date_epoch(project: Project, lock_path: Path) -> int:
    """SOURCE_DATE_EPOCH, else the commit time of the lock (changes only when the lock does)."""
    if env := os.environ.get("SOURCE_DATE_EPOCH"):
        return int(env)
    proc = process.run(
        ["git", "log", "-1", "--format=%ct", "--", lock_path], tool="git", cwd=project.root, check=False
    )
    text = proc.stdout.strip()
    return int(text) if proc.returncode == 0 and text.isdigit() else DEFAULT_EPOCH


def check_size_budget(profile: Profile, folder: Path, size: int, files: int) -> None:
    """The frozen folder against bench.max-size-mb (decimal MB, 10**6 bytes) and bench.max-files
    (judge/budget.size_checks, the check bench makes of a dist); over either, the error names the
    folder's largest contributors (torch with or without dist-info)."""
    over = [c for c in size_checks(profile.bench, size, files) if not c.ok]
    if not over:
        return
    rows = frozen_contributors(folder)
    if over[0].budget == "max-size-mb":
        raise BudgetError(
            f"{profile.name}: frozen folder is {size / 1e6:.0f} MB, over the budget of {over[0].limit:g} MB; "
            f"largest: {largest_text(rows)}",
            hint=f"raise bench.max-size-mb in {profile.path.name}, or leave out what the program never "
            "uses with freeze.excludes (modules) and freeze.drop (files)",
        )
    raise BudgetError(
        f"{profile.name}: frozen folder has {files} files, over the budget of {over[0].limit:g}; "
        f"most files: {largest_text(rows, by='files')}",
        hint=f"raise bench.max-files in {profile.path.name}, or drop more with freeze.drop",
    )


def largest_text(rows: list[Contributor], n: int = 10, *, by: str = "size") -> str:
    """The `n` largest contributors in one line: "torch 402.1 MB, numpy 35.0 MB, ..." (pure)."""
    if by == "files":
        ranked = sorted(rows, key=lambda r: (-r.files, r.name.lower()))[:n]
        return ", ".join(f"{r.name} {r.files}" for r in ranked)
    return ", ".join(f"{r.name} {human_size(r.size)}" for r in rows[:n])


def _up_to_date(dist: Path, key: str) -> bool:
    try:
        return (dist / SUMS).is_file() and read_manifest(dist).get("inputs_hash") == key
    except (OSError, json.JSONDecodeError, InputError):  # a damaged dist is rebuilt, not an error
        return False


def _freeze_or_reuse(
    plan: BuildPlan, fplan: FreezePlan, inst: InstallResult, epoch: int, force: bool, log: Log
) -> FreezeResult:
    """The frozen folder a failed try left, when the freeze's inputs are the same; else a new freeze.
    ([bench] is not among them: changing a budget or the check's command never re-freezes.)"""
    profile, work = plan.profile, plan.work
    out = work / "frozen"
    key = freeze_inputs_hash(plan.root, profile, fplan, plan.lock_hash, inst.python)
    kept = None if force else freeze_reuse.reusable(out, key)
    if kept is not None:
        log.line(f"    reused {kept.folder} (frozen from the same inputs by an earlier try)")
        return kept
    freeze_reuse.forget(out)
    frozen = freeze(profile, fplan, inst.python.absolute(), work, out, epoch=epoch, log=log)
    freeze_reuse.save(out, key, frozen)
    return frozen


def build(
    project: Project,
    profile_name: str,
    *,
    wheelhouse: Path | None,
    out: Path,
    log: Log,
    force: bool = False,
    wait: bool = True,
) -> BuildResult:
    """Build a profile's dist; every check that needs no work runs before the first stage.
    The profile is resolved once, into the plan every stage receives (builder/stages/plan.py)."""
    plan = resolve_plan(project, profile_name, out=out, wheelhouse=wheelhouse)
    require_writable_dir(out, "--out")
    safe_output_dir(plan.dist, "--out")
    profile, lock = plan.profile, plan.lock
    # One build of a profile at a time: a second one would clobber this one's scratch folders.
    with build_mutex(plan.work / ".build.mutex", what=f"a build of {profile.name}", wait=wait, log=log):
        with log.step("install"):
            inst = install(profile, lock, plan.venv, plan.wheelhouse)
            log.line(f"    venv {'reused (lock unchanged)' if inst.reused else 'created'}: {inst.venv}")
            for pkg, where in inst.sources.items():
                log.line(f"    {pkg} {lock.pins[pkg].version} from {where}")
        openmp_record = openmp_stage_cached(inst, log)
        entry = program_of(plan, inst)
        trace = trace_stage(plan, inst, entry, log) if plan.traced else None
        fplan = plan_freeze(profile, site_packages_of(inst.venv), plan.root, plan.work, trace, entry=entry)
        _log_excludes(fplan, log)
        key = inputs_hash(plan.root, profile, fplan, plan.lock_hash, inst.python)
        checks = checks_hash(plan.root, profile)
        up_to_date = not force and _up_to_date(plan.dist, key)
        rechecked = up_to_date and not checked.is_checked(plan.work, key, checks)
        if up_to_date and not rechecked:
            log.line(f"==> freeze, check, package: up to date ({plan.dist} was built from the same inputs)")
        elif up_to_date:
            _recheck(plan, trace, log)
        else:
            _make_dist(plan, fplan, inst, trace, key, openmp_record, force=force, log=log)
        result = _result(plan, inst, up_to_date, rechecked, log)
        checked.save(plan.work, key, checks)
        return result


def _log_excludes(fplan: FreezePlan, log: Log) -> None:
    """What the judged excludes did to the traced workload's modules: lifted, or still left out."""
    for kept in fplan.kept:
        log.line(
            f"    kept {kept.module}: the workload imports it (exclude {kept.exclude!r} of profile "
            f"{kept.origin} lifted)"
        )
    if fplan.left_out:  # judged after the lifts above: what the trace saw that stays out
        more = len(fplan.left_out) - 8
        log.line(
            f"    seen by the trace, left out by freeze.excludes: {', '.join(fplan.left_out[:8])}"
            + (f" and {more} more" if more > 0 else "")
        )


def _recheck(plan: BuildPlan, trace: Trace | None, log: Log) -> None:
    """An up-to-date dist whose [bench] changed since its last passing check: the budgets, the
    check and the smoke bench run again on it (never the freeze or the package)."""
    profile = plan.profile
    log.line(
        f"==> freeze, package: up to date ({plan.dist} was built from the same inputs); [bench] "
        "changed since its last check: the check and the smoke bench run again"
    )
    name = profile.program.name
    program = plan.dist / name / (name + profile.target.exe_suffix)
    with log.step("budget"):
        check_size_budget(profile, program.parent, *tree_totals(program.parent))
    _check_and_smoke(program, plan, trace, log)


def _make_dist(
    plan: BuildPlan,
    fplan: FreezePlan,
    inst: InstallResult,
    trace: Trace | None,
    key: str,
    openmp_record: dict[str, Any],
    *,
    force: bool,
    log: Log,
) -> None:
    """Freeze (or reuse a frozen folder), check, smoke-bench and package into plan.dist."""
    profile = plan.profile
    epoch = source_date_epoch(plan.project, plan.lock_path)
    with log.step("freeze"):
        frozen = _freeze_or_reuse(plan, fplan, inst, epoch, force, log)
        size, files = tree_totals(frozen.folder)
        log.line(f"    {human_size(size)} in {files} files ({frozen.stripped} libraries stripped)")
        if trace is not None:
            log_trace_missed(frozen.trace_missed, log)
        check_size_budget(profile, frozen.folder, size, files)
    program = frozen.folder / (fplan.program + profile.target.exe_suffix)
    selftest, smoke = _check_and_smoke(program, plan, trace, log)
    with log.step("fingerprint"):
        fingerprint = take_fingerprint(program, plan, smoke.to_json())
        log.line("    " + fingerprint_line(fingerprint))
    with log.step("package"):
        body = manifest_body(
            profile,
            lock=plan.lock,
            lock_path=plan.lock_path,
            inputs_hash=key,
            epoch=epoch,
            inst=inst,
            frozen=frozen,
            openmp_record=openmp_record,
            runtime_config=fplan.runtime_config,
            python_version=selftest["versions"]["python"],
            trace=trace,
        )
        packaged = package_stage(
            frozen,
            plan.dist,
            body,
            selftest=selftest,
            smoke=smoke.to_json(),
            epoch=epoch,
            log=log,
            fingerprint=fingerprint,
        )
        freeze_reuse.forget(plan.work / "frozen")  # its folder is the dist's now
        for path in (packaged.archive, packaged.zip):
            if path is not None:
                log.line(f"    {path.name}: {human_size(path.stat().st_size)}")
        for row in inspect_path(plan.dist).packages[:8]:
            log.line(f"    {human_size(row.size):>10}  {row.name} {row.version or ''}")


def _check_and_smoke(
    program: Path, plan: BuildPlan, trace: Trace | None, log: Log
) -> tuple[dict[str, Any], BenchResult]:
    """The check (the workload frozen against the venv's run, or stems' selftest) and the smoke
    bench against the profile's budgets: (selftest, smoke)."""
    with log.step("check"):
        selftest = check(program, plan, trace.outputs if trace else None)
        _log_check(selftest, plan.profile, log)
    with log.step("bench (smoke)"):
        smoke = smoke_bench(program, plan)
        _log_smoke(smoke, log)
        enforce(smoke)
    return selftest, smoke


def _log_check(selftest: dict[str, Any], profile: Profile, log: Log) -> None:
    t = selftest["threads"]
    if "workload" in selftest:
        job = selftest["workload"]
        log.line(f"    workload: {job['outputs']} output file(s), the same as the venv's run")
    log.line(
        f"    {'selftest' if profile.program.bundled else 'probe'}: torch {selftest['versions']['torch']}, threads {t['torch']} "
        f"(at import {t['at_import']}), interop {t['interop']}, precision "
        f"{selftest['matmul_precision']}, OpenMP: "
        + (", ".join(Path(o["path"]).name for o in selftest["openmp"]) or "none")
    )


def _log_smoke(smoke: BenchResult, log: Log) -> None:
    med = {k: (v or {}).get("median") for k, v in smoke.summary.items()}
    job = smoke.runtime.get("workload")
    log.line(
        (
            f"    job {med.get('total_s')} s ({job['input']}), imports {med.get('import_s')} s"
            if job
            else f"    ready {med.get('startup_s')} s, separation {med.get('separation_s')} s "
            "(tiny model, 1 s of audio)"
        )
        + f", peak {med.get('peak_rss_mb')} MB"
        + (f"; flags: {', '.join(smoke.flags)}" if smoke.flags else "")
    )


def _result(plan: BuildPlan, inst: InstallResult, up_to_date: bool, rechecked: bool, log: Log) -> BuildResult:
    """The dist as it is on disk (built now or before), and how this build went."""
    dist, profile = plan.dist, plan.profile
    selftest = json.loads((dist / "selftest.json").read_text())
    name = profile.program.name
    program = dist / name / (name + profile.target.exe_suffix)
    if not program.is_file():
        raise CheckError(f"{dist}: packaged folder has no {name} program")
    return BuildResult(
        profile=profile.name,
        target=profile.target.name,
        artifact=dist,
        program=program,
        manifest=dist / MANIFEST,
        dist=dist_summary(dist),
        up_to_date=up_to_date,
        rechecked=rechecked,
        venv_reused=inst.reused,
        sources=inst.sources,
        stages_seconds=log.durations,
        selftest={k: selftest[k] for k in SELFTEST_KEYS},
        threadpools=tuple(selftest.get("threadpools", [])),
    )
