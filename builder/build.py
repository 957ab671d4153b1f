"""`builder build`: install -> openmp -> freeze -> check -> bench -> package, each stage timed.

Every stage writes to a temporary folder that is renamed into place, so a
killed build leaves the previous dist/P/ whole. Unchanged inputs skip the
work: the venv is reused when the lock is, and the whole build is reported
"up to date" when the dist was made from the same inputs.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from dataclasses import asdict
from pathlib import Path
from typing import Any

from . import __version__
from .bench import enforce, smoke_bench
from .check import check
from .errors import BudgetError, CheckError
from .freeze import PROGRAM, freeze, runtime_config
from .fsutil import atomic_write_text
from .inspect import human_size, inspect_path, tree_totals
from .install import InstallResult, install, require_native
from .lock import check_lock, read_lock
from .log import Log
from .manifest import (
    MANIFEST,
    SUMS,
    package,
    packages_json,
    read_manifest,
    read_site_packages,
    site_packages_of,
)
from .openmp.stage import openmp_stage
from .paths import Project
from .profile import Profile, load_profile
from .sbom import make_sbom
from .tools import process, pyinstaller, uv
from .wheelhouse import find_wheelhouse

SHAPES_THE_DIST = ("build.py", "freeze.py", "manifest.py", "archive.py", "sbom.py", "check.py", "fsutil.py")
DEFAULT_EPOCH = 315532800  # 1980-01-01, the earliest time a zip file can hold
SBOM_NAME = "sbom.cdx.json"
# Timings: kept out of the dist's hashed payload so two builds stay byte-identical.
VOLATILE_SELFTEST = ("torch_import_seconds",)
OPENMP_RECORD = ".builder-openmp.json"  # in the venv: what the openmp stage found and changed


def inputs_hash(project: Project, profile: Profile, lock_hash: str, python: Path) -> str:
    """Everything the dist is made from: a different value means rebuild."""
    digest = hashlib.sha256()
    settings = {
        "builder": __version__,
        "pyinstaller": pyinstaller.VERSION,
        "lock": lock_hash,
        "python": str(python.resolve()),
        "runtime": runtime_config(profile),
        "freeze": asdict(profile.freeze),
    }
    digest.update(json.dumps(settings, sort_keys=True).encode())
    # The program's sources, and the builder code that shapes the venv or the dist
    # (a changed packaging step is a changed input; a changed `compare` is not).
    builder_dir = Path(__file__).resolve().parent
    named = [(p.relative_to(project.root).as_posix(), p) for p in sorted(project.runtime_entry.rglob("*.py"))]
    dist_code = [builder_dir / n for n in SHAPES_THE_DIST] + sorted((builder_dir / "openmp").rglob("*.py"))
    named += [(f"builder/{p.relative_to(builder_dir).as_posix()}", p) for p in dist_code]
    for name, path in named:
        digest.update(name.encode())
        digest.update(path.read_bytes())
    return "sha256:" + digest.hexdigest()


def _openmp(inst: InstallResult, log: Log) -> dict[str, Any]:
    """Audit -> fix -> verify the venv; a reused venv keeps the record of its earlier fix."""
    record_path = inst.venv / OPENMP_RECORD
    if inst.reused and record_path.is_file():
        record: dict[str, Any] = json.loads(record_path.read_text())
        log.line(
            f"==> openmp: venv unchanged, fixed and verified earlier ({record.get('loaded_after')} runtime loaded)"
        )
        return record
    record = openmp_stage(inst.venv, log)
    atomic_write_text(record_path, json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record


def source_date_epoch(project: Project, lock_path: Path) -> int:
    """SOURCE_DATE_EPOCH, else the commit time of the lock (changes only when the lock does)."""
    if env := os.environ.get("SOURCE_DATE_EPOCH"):
        return int(env)
    proc = process.run(
        ["git", "log", "-1", "--format=%ct", "--", lock_path], tool="git", cwd=project.root, check=False
    )
    text = proc.stdout.strip()
    return int(text) if proc.returncode == 0 and text.isdigit() else DEFAULT_EPOCH


def check_size_budget(profile: Profile, size: int, files: int) -> None:
    budget = profile.bench
    if budget.max_size_mb is not None and size > budget.max_size_mb * 1e6:
        raise BudgetError(
            f"{profile.name}: frozen folder is {size / 1e6:.0f} MB, over the budget of {budget.max_size_mb:.0f} MB",
            hint=f"see the size report; raise bench.max-size-mb in {profile.path.name} or drop more in [freeze]",
        )
    if budget.max_files is not None and files > budget.max_files:
        raise BudgetError(
            f"{profile.name}: frozen folder has {files} files, over the budget of {budget.max_files}",
            hint=f"raise bench.max-files in {profile.path.name} or drop more in [freeze]",
        )


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
    }


def _up_to_date(dist: Path, key: str) -> bool:
    try:
        return (dist / SUMS).is_file() and read_manifest(dist).get("inputs_hash") == key
    except (OSError, json.JSONDecodeError):
        return False


def build(
    project: Project,
    profile_name: str,
    *,
    wheelhouse: Path | None,
    out: Path,
    log: Log,
    force: bool = False,
) -> dict[str, Any]:
    profile = load_profile(profile_name, project.profiles)
    require_native(profile, "build")
    uv.find_python(profile.python)  # fail before any work when the interpreter is missing
    lock_path = project.lock_path(profile.name)
    check_lock(profile, lock_path)
    lock = read_lock(lock_path)
    wh = find_wheelhouse(wheelhouse)
    work = (project.work / profile.name).resolve()
    dist = (out / profile.name).resolve()

    with log.step("install"):
        inst = install(profile, lock, work / "venv", wh)
        log.line(f"    venv {'reused (lock unchanged)' if inst.reused else 'created'}: {inst.venv}")
        for pkg, where in inst.sources.items():
            log.line(f"    {pkg} {lock.pins[pkg].version} from {where}")

    openmp_record = _openmp(inst, log)
    key = inputs_hash(project, profile, lock.hash(), inst.python)
    up_to_date = not force and _up_to_date(dist, key)
    if up_to_date:
        log.line(f"==> freeze, check, package: up to date ({dist} was built from the same inputs)")
    else:
        epoch = source_date_epoch(project, lock_path)
        with log.step("freeze"):
            frozen = freeze(
                profile,
                inst.python.absolute(),
                site_packages_of(inst.venv),
                project.root,
                work,
                work / "frozen",
                epoch=epoch,
            )
            size, files = tree_totals(frozen.folder)
            log.line(f"    {human_size(size)} in {files} files ({frozen.stripped} libraries stripped)")
            check_size_budget(profile, size, files)
        program = frozen.folder / (PROGRAM + profile.target.exe_suffix)
        with log.step("check"):
            selftest = check(program, profile, lock)
            t = selftest["threads"]
            log.line(
                f"    selftest: torch {selftest['versions']['torch']}, threads {t['torch']} "
                f"(at import {t['at_import']}), interop {t['interop']}, precision "
                f"{selftest['matmul_precision']}, OpenMP: "
                + (", ".join(Path(o["path"]).name for o in selftest["openmp"]) or "none")
            )
        with log.step("bench (smoke)"):
            smoke = smoke_bench(program, profile, project=project)
            med = {k: (v or {}).get("median") for k, v in smoke["summary"].items()}
            log.line(
                f"    ready {med.get('startup_s')} s, separation {med.get('separation_s')} s "
                f"(tiny model, 1 s of audio), peak {med.get('peak_rss_mb')} MB"
                + (f"; flags: {', '.join(smoke['flags'])}" if smoke["flags"] else "")
            )
            enforce(smoke)
        stored_selftest = {k: v for k, v in selftest.items() if k not in VOLATILE_SELFTEST}
        with log.step("package"):
            manifest_body = {
                "profile": profile.name,
                "profile_hash": profile.lock_hash(),
                "inputs_hash": key,
                "source_date_epoch": epoch,
                "lock": {"path": f"locks/{lock_path.name}", "sha256": lock.hash()},
                "target": {"name": profile.target.name, "platform": profile.target.uv_platform},
                "python": selftest["versions"]["python"],
                "tools": {
                    "builder": __version__,
                    "uv": uv.version(),
                    "pyinstaller": frozen.pyinstaller,
                    "host_python": platform.python_version(),
                },
                "sources": inst.sources,
                "openmp": openmp_record,
                "runtime": runtime_config(profile),
                "freeze": asdict(profile.freeze),
                "packages": packages_json(read_site_packages(site_packages_of(inst.venv)), frozen.bundled),
            }
            sbom = make_sbom(manifest_body)
            package(
                frozen.folder,
                dist,
                manifest_body,
                {
                    "selftest.json": json.dumps(stored_selftest, indent=2, sort_keys=True) + "\n",
                    SBOM_NAME: sbom,
                },
                archive_epoch=epoch,
                reports={"bench.json": json.dumps(smoke, indent=2, sort_keys=True) + "\n"},
            )
            for row in inspect_path(dist)["packages"][:8]:
                log.line(f"    {human_size(row['size']):>10}  {row['name']} {row['version'] or ''}")
    summary = dist_summary(dist)
    selftest = json.loads((dist / "selftest.json").read_text())
    if not (dist / PROGRAM / (PROGRAM + profile.target.exe_suffix)).is_file():
        raise CheckError(f"{dist}: packaged folder has no {PROGRAM} program")
    return {
        "profile": profile.name,
        "target": profile.target.name,
        "artifact": str(dist),
        "program": str(dist / PROGRAM / (PROGRAM + profile.target.exe_suffix)),
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
            "versions": selftest["versions"],
        },
    }
