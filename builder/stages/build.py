"""`builder build`: lock check -> install -> openmp -> freeze -> check -> smoke bench -> package.

This module only sequences the stages (each in its own module of builder/stages/) and logs
them. Every stage writes to a temporary folder that is renamed into place, so a killed build
leaves the previous dist/P/ whole. Unchanged inputs skip the work: the venv is reused when the
lock is, and the whole build is reported "up to date" when the dist was made from the same inputs.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from builder.dist.contributors import Contributor, frozen_contributors
from builder.dist.inspect import human_size, inspect_path, tree_totals
from builder.dist.manifest import MANIFEST, SUMS, read_manifest
from builder.errors import BudgetError, CheckError, InputError
from builder.fsutil import require_writable_dir, safe_output_dir
from builder.locking import exclusive
from builder.log import Log
from builder.measure.budget import enforce
from builder.paths import Project
from builder.profile import Profile, load_profile
from builder.stages import freeze_reuse
from builder.stages.check import check
from builder.stages.fingerprint import fingerprint_line, take_fingerprint
from builder.stages.freeze import FreezePlan, FreezeResult, freeze, plan_freeze
from builder.stages.inputs import freeze_inputs_hash, inputs_hash
from builder.stages.install import InstallResult, install, require_native
from builder.stages.lock import check_lock, read_lock
from builder.stages.openmp import openmp_stage_cached
from builder.stages.package import manifest_body, package_stage
from builder.stages.smoke import smoke_bench
from builder.stages.trace import log_trace_missed, trace_stage, traced
from builder.tools import process, uv
from builder.venvs import site_packages_of
from builder.wheelhouse import find_wheelhouse

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
    """The frozen folder against bench.max-size-mb (decimal MB, 10**6 bytes) and bench.max-files;
    over either, the error names the folder's largest contributors (torch with or without dist-info)."""
    budget = profile.bench
    over_size = budget.max_size_mb is not None and size > budget.max_size_mb * 1e6
    over_files = budget.max_files is not None and files > budget.max_files
    if not (over_size or over_files):
        return
    rows = frozen_contributors(folder)
    if over_size:
        raise BudgetError(
            f"{profile.name}: frozen folder is {size / 1e6:.0f} MB, over the budget of {budget.max_size_mb:g} MB; "
            f"largest: {largest_text(rows)}",
            hint=f"raise bench.max-size-mb in {profile.path.name}, or leave out what the program never "
            "uses with freeze.excludes (modules) and freeze.drop (files)",
        )
    raise BudgetError(
        f"{profile.name}: frozen folder has {files} files, over the budget of {budget.max_files}; "
        f"most files: {largest_text(rows, by='files')}",
        hint=f"raise bench.max-files in {profile.path.name}, or drop more with freeze.drop",
    )


def largest_text(rows: list[Contributor], n: int = 10, *, by: str = "size") -> str:
    """The `n` largest contributors in one line: "torch 402.1 MB, numpy 35.0 MB, ..." (pure)."""
    if by == "files":
        ranked = sorted(rows, key=lambda r: (-r.files, r.name.lower()))[:n]
        return ", ".join(f"{r.name} {r.files}" for r in ranked)
    return ", ".join(f"{r.name} {human_size(r.size)}" for r in rows[:n])


def dist_summary(dist: Path) -> dict[str, Any]:
    """Size, file count and hashes of a packaged dist, read back from disk."""
    manifest = read_manifest(dist)
    archive = dist / f"{dist.name}.tar.xz"
    sha_file = archive.with_name(archive.name + ".sha256")
    return {
        "size_bytes": manifest["totals"]["bytes"],
        "files": manifest["totals"]["files"],
        "sha256": "sha256:" + hashlib.sha256((dist / SUMS).read_bytes()).hexdigest(),
        "archive": str(archive) if archive.is_file() else None,
        "archive_bytes": archive.stat().st_size if archive.is_file() else None,
        "archive_sha256": "sha256:" + sha_file.read_text().split()[0] if sha_file.is_file() else None,
        "zip": str(dist / f"{dist.name}.zip") if (dist / f"{dist.name}.zip").is_file() else None,
    }


def _up_to_date(dist: Path, key: str) -> bool:
    try:
        return (dist / SUMS).is_file() and read_manifest(dist).get("inputs_hash") == key
    except (OSError, json.JSONDecodeError, InputError):  # a damaged dist is rebuilt, not an error
        return False


def _freeze_or_reuse(
    profile: Profile,
    plan: FreezePlan,
    inst: InstallResult,
    lock_hash: str,
    project: Project,
    work: Path,
    epoch: int,
    force: bool,
    log: Log,
) -> FreezeResult:
    """The frozen folder a failed try left, when the freeze's inputs are the same; else a new freeze.
    ([bench] is not among them: changing a budget or the check's command never re-freezes.)"""
    out = work / "frozen"
    key = freeze_inputs_hash(project.root, profile, plan, lock_hash, inst.python)
    kept = None if force else freeze_reuse.reusable(out, key)
    if kept is not None:
        log.line(f"    reused {kept.folder} (frozen from the same inputs by an earlier try)")
        return kept
    freeze_reuse.forget(out)
    frozen = freeze(profile, plan, inst.python.absolute(), work, out, epoch=epoch, log=log)
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
) -> dict[str, Any]:
    """Build a profile's dist; every check that needs no work runs before the first stage."""
    profile = load_profile(profile_name, project.profiles)
    require_native(profile, "build")
    uv.find_python(profile.python)  # fail before any work when the interpreter is missing
    lock_path = project.lock_path(profile.name)
    check_lock(profile, lock_path)
    lock = read_lock(lock_path)
    wh = find_wheelhouse(wheelhouse)
    work = (project.work / profile.name).resolve()
    dist = (out / profile.name).resolve()
    require_writable_dir(out, "--out")
    safe_output_dir(dist, "--out")

    # One build of a profile at a time: a second one would clobber this one's scratch folders.
    with exclusive(work / ".build.lock", what=f"a build of {profile.name}", wait=wait, log=log):
        with log.step("install"):
            inst = install(profile, lock, work / "venv", wh)
            log.line(f"    venv {'reused (lock unchanged)' if inst.reused else 'created'}: {inst.venv}")
            for pkg, where in inst.sources.items():
                log.line(f"    {pkg} {lock.pins[pkg].version} from {where}")

        openmp_record = openmp_stage_cached(inst, log)
        trace = trace_stage(profile, inst, project.root, work, lock.hash(), log) if traced(profile) else None
        plan = plan_freeze(profile, site_packages_of(inst.venv), project.root, work, trace)
        for kept in plan.kept:
            log.line(
                f"    kept {kept.module}: the workload imports it (exclude {kept.exclude!r} of profile "
                f"{kept.origin} lifted)"
            )
        key = inputs_hash(project.root, profile, plan, lock.hash(), inst.python)
        up_to_date = not force and _up_to_date(dist, key)
        if up_to_date:
            log.line(f"==> freeze, check, package: up to date ({dist} was built from the same inputs)")
        else:
            epoch = source_date_epoch(project, lock_path)
            with log.step("freeze"):
                frozen = _freeze_or_reuse(profile, plan, inst, lock.hash(), project, work, epoch, force, log)
                size, files = tree_totals(frozen.folder)
                log.line(f"    {human_size(size)} in {files} files ({frozen.stripped} libraries stripped)")
                if trace is not None:
                    log_trace_missed(frozen.trace_missed, log)
                check_size_budget(profile, frozen.folder, size, files)
            program = frozen.folder / (plan.program + profile.target.exe_suffix)
            with log.step("check"):
                selftest = check(program, profile, lock, trace.outputs if trace else None)
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
            with log.step("bench (smoke)"):
                smoke = smoke_bench(program, profile, project=project)
                med = {k: (v or {}).get("median") for k, v in smoke["summary"].items()}
                job = smoke["runtime"].get("workload")
                log.line(
                    (
                        f"    job {med.get('total_s')} s ({job['input']}), imports {med.get('import_s')} s"
                        if job
                        else f"    ready {med.get('startup_s')} s, separation {med.get('separation_s')} s "
                        "(tiny model, 1 s of audio)"
                    )
                    + f", peak {med.get('peak_rss_mb')} MB"
                    + (f"; flags: {', '.join(smoke['flags'])}" if smoke["flags"] else "")
                )
                enforce(smoke)
            with log.step("fingerprint"):
                fingerprint = take_fingerprint(program, profile, project, smoke)
                log.line("    " + fingerprint_line(fingerprint))
            with log.step("package"):
                body = manifest_body(
                    profile,
                    lock=lock,
                    lock_path=lock_path,
                    inputs_hash=key,
                    epoch=epoch,
                    inst=inst,
                    frozen=frozen,
                    openmp_record=openmp_record,
                    runtime_config=plan.runtime_config,
                    python_version=selftest["versions"]["python"],
                    trace=trace,
                )
                packaged = package_stage(
                    frozen,
                    dist,
                    body,
                    selftest=selftest,
                    smoke=smoke,
                    epoch=epoch,
                    log=log,
                    fingerprint=fingerprint,
                )
                freeze_reuse.forget(work / "frozen")  # its folder is the dist's now
                for path in (packaged.archive, packaged.zip):
                    if path is not None:
                        log.line(f"    {path.name}: {human_size(path.stat().st_size)}")
                for row in inspect_path(dist)["packages"][:8]:
                    log.line(f"    {human_size(row['size']):>10}  {row['name']} {row['version'] or ''}")
        summary = dist_summary(dist)
        selftest = json.loads((dist / "selftest.json").read_text())
        name = profile.program.name
        if not (dist / name / (name + profile.target.exe_suffix)).is_file():
            raise CheckError(f"{dist}: packaged folder has no {name} program")
        return {
            "profile": profile.name,
            "target": profile.target.name,
            "artifact": str(dist),
            "program": str(dist / name / (name + profile.target.exe_suffix)),
            "manifest": str(dist / MANIFEST),
            **summary,
            "up_to_date": up_to_date,
            "venv_reused": inst.reused,
            "sources": inst.sources,
            "stages_seconds": log.durations,
            "selftest": {
                "threads": selftest["threads"],
                "matmul_precision": selftest["matmul_precision"],
                "openmp": selftest["openmp"],
                # what threadpoolctl saw loaded: the proof of one OpenMP pool at the profile's threads
                "threadpools": selftest.get("threadpools", []),
                "versions": selftest["versions"],
            },
        }
