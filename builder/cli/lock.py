"""`builder lock`: resolve profiles into locks/P.lock for their targets."""

from __future__ import annotations

import os
from pathlib import Path

import click

from builder.cli.common import emit_json
from builder.cli.params import CheckedPath
from builder.errors import InputError, ModifiedLockError, StaleLockError
from builder.fsutil import remove_dead_temps
from builder.log import Log
from builder.paths import Project
from builder.profile import Profile, load_all, load_profile
from builder.stages import lock as lock_mod
from builder.wheelhouse import Wheelhouse, find_wheelhouse


@click.command("lock")
@click.option("--profile", "names", multiple=True, help="Profile to lock (repeatable).")
@click.option("--all", "all_", is_flag=True, help="Lock every profile.")
@click.option(
    "--check",
    is_flag=True,
    help="Only check the locks: exit 9 when one is stale, 12 when one was edited by hand.",
)
@click.option(
    "--upgrade",
    is_flag=True,
    help="Resolve the newest versions that fit; without it a relock keeps the current lock's pins where they still fit.",
)
@click.option("--wheelhouse", type=CheckedPath(path_type=Path), help="Folder of wheels (e.g. CPU torch).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def lock(
    project: Project,
    names: tuple[str, ...],
    all_: bool,
    check: bool,
    upgrade: bool,
    wheelhouse: Path | None,
    as_json: bool,
) -> None:
    """Resolve profiles for their targets into locks/P.lock (any target, from any host)."""
    if all_ == bool(names):
        raise InputError("give --profile P or --all")
    selected = load_all(project.profiles) if all_ else [load_profile(n, project.profiles) for n in names]
    log = Log()
    for leftover in remove_dead_temps(project.locks):  # a killed `builder lock`'s half-written lock
        log.line(f"removed {leftover} (the temporary file of a `builder lock` that was killed)")
    if check:
        results = [_check_one(profile, project.lock_path(profile.name), log) for profile in selected]
    else:
        wh = find_wheelhouse(wheelhouse)
        results = [_write_one(p, project.lock_path(p.name), wh, upgrade, log) for p in selected]
    if as_json:
        emit_json(lock_mod.lock_document(results))
    _raise_for(results, everything=all_)


def _check_one(profile: Profile, path: Path, log: Log) -> lock_mod.LockStatus:
    """The lock's status, resolving nothing: fresh, stale, modified or missing."""
    if not os.path.lexists(path):  # a FIFO or folder there is a damaged lock, not none
        log.line(f"{'MISSING':<8} {path}: not locked yet")
        return lock_mod.LockStatus(profile=profile.name, lock=path, status="missing")
    try:
        lock_mod.check_lock(profile, path)
    except StaleLockError as exc:
        status = "modified" if isinstance(exc, ModifiedLockError) else "stale"
        log.line(f"{status.upper():<8} {exc.one_line()}")
        return lock_mod.LockStatus(profile=profile.name, lock=path, status=status, reason=exc.one_line())
    log.line(f"{'fresh':<8} {path}")
    return lock_mod.LockStatus(profile=profile.name, lock=path, status="fresh")


def _write_one(
    profile: Profile, path: Path, wh: Wheelhouse | None, upgrade: bool, log: Log
) -> lock_mod.LockStatus:
    with log.step(f"lock {profile.name} for {profile.target.uv_platform}, Python {profile.python}"):
        locked = lock_mod.compile_lock(profile, path, wh, upgrade=upgrade)
    log.line(f"  {len(locked.pins)} packages pinned with hashes -> {path}")
    return lock_mod.LockStatus(profile=profile.name, lock=path, status="written", packages=len(locked.pins))


def _raise_for(results: list[lock_mod.LockStatus], *, everything: bool) -> None:
    """The check's verdict: a hand edit first (its own exit code), then stale, then missing locks."""
    modified = [r.reason for r in results if r.status == "modified"]
    stale = [r.reason for r in results if r.status == "stale"]
    missing = [r.profile for r in results if r.status == "missing"]
    if modified:
        raise ModifiedLockError(
            f"{len(modified)} of {len(results)} locks were modified; first: {modified[0]}"
        )
    if stale:
        raise StaleLockError(f"{len(stale)} of {len(results)} locks are stale; first: {stale[0]}")
    if missing:
        raise StaleLockError(
            f"{len(missing)} of {len(results)} profiles have no lock yet ({', '.join(missing[:4])}"
            + (", ..." if len(missing) > 4 else "")
            + ")",
            hint=f"lock them: run `{lock_command(missing, everything=everything and len(missing) == len(results))}`",
        )


def lock_command(names: list[str], *, everything: bool) -> str:
    """The command that writes the locks of `names` (pure)."""
    return "builder lock --all" if everything else "builder lock " + " ".join(f"--profile {n}" for n in names)
