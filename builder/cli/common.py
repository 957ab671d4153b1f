"""What several commands share: the --json printer, the measurement options, resolving a runtime argument."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from builder.errors import InputError
from builder.log import Log
from builder.measure.take.runner import DEFAULT_STALL, DEFAULT_TIMEOUT
from builder.measure.take.runs import DECISION_MODEL, DEFAULT_MODEL, DEFAULT_SECONDS
from builder.measure.take.subject import Subject, resolve_path, venv_subject
from builder.oserror import os_error
from builder.paths import Project
from builder.profile import Profile, load_profile
from builder.stages.install import install
from builder.stages.lock import check_lock, read_lock
from builder.targets import host_target
from builder.wheelhouse import find_wheelhouse


def emit_json(data: Any) -> None:
    """The one --json printer: sorted keys, two-space indent, paths and dates as strings."""
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def resolve_runtime(
    spec: str,
    project: Project,
    *,
    label: str | None = None,
    log: Log | None = None,
    wheelhouse: Path | None = None,
) -> Subject:
    """A venv, a dist, a frozen folder, or a profile name (its build/P/venv, installed if needed)."""
    path = Path(spec)
    if path.exists():
        return resolve_path(path, project, label=label)
    if os.path.lexists(path):  # a broken link or a loop: say so, not "no such path"
        try:
            os.stat(path)
        except OSError as exc:
            raise os_error(exc, path) from None
    if os.path.lexists(project.profiles / f"{spec}.toml"):  # load_profile names a broken one
        return profile_runtime(spec, project, log=log, wheelhouse=wheelhouse, label=label)
    raise InputError(
        f"{spec}: no such path and no profile of that name in {project.profiles}",
        hint="give a venv, a dist folder or a profile name",
    )


def profile_for(rt: Subject, project: Project, name: str | None) -> Profile | None:
    name = name or rt.profile
    if name and (project.profiles / f"{name}.toml").is_file():
        return load_profile(name, project.profiles)
    return None


def profile_runtime(
    name: str,
    project: Project,
    *,
    log: Log | None = None,
    wheelhouse: Path | None = None,
    label: str | None = None,
) -> Subject:
    """The profile's venv under build/, installed from its lock (reused while the lock is unchanged)."""

    profile = load_profile(name, project.profiles)
    lock_path = project.lock_path(name)
    check_lock(profile, lock_path)
    venv = project.work / name / "venv"
    with (log or Log()).step(f"install {name} (reused when its lock is unchanged)"):
        install(profile, read_lock(lock_path), venv, find_wheelhouse(wheelhouse))
    return venv_subject(venv, project, label=label or name, profile=name)


def measure_options(*, decides: bool) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--repeat, --seconds, --model, --timeout, --stall; `decides` (compare, bisect, tune): rounds
    until decided within --time unless --repeat fixes them, the small model on audio sized by time."""
    repeat_help = (
        "Fixed number of interleaved rounds (default: rounds until decided, within --time)."
        if decides
        else "Measured runs (each in fresh processes), after one warm-up."
    )
    seconds_help = "Length of the generated audio each bench run separates" + (
        " (default: sized from the warm-up runs, ~2.5 s of separation per run)." if decides else "."
    )
    options = [
        click.option("--repeat", type=click.IntRange(1, 1000), default=None if decides else 5,
                     show_default=not decides, help=repeat_help),
        click.option("--seconds", type=click.FloatRange(0.1), default=None if decides else DEFAULT_SECONDS,
                     show_default=not decides, help=seconds_help),
        click.option("--model", default=DECISION_MODEL if decides else DEFAULT_MODEL, show_default=True,
                     help="Model preset or MSST .yaml (small: a real structure at small size; "
                     "bs_roformer_4stem is the real 4-stem size)."),
        click.option("--timeout", type=click.FloatRange(1), default=DEFAULT_TIMEOUT, show_default=True,
                     help="Kill a runtime process running longer than this (seconds)."),
        click.option("--stall", type=click.FloatRange(0.5), default=DEFAULT_STALL, show_default=True,
                     help="Kill a runtime process with no output and no CPU time for this long (seconds)."),
    ]  # fmt: skip

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        for opt in reversed(options):
            f = opt(f)
        return f

    return decorate


common_options = measure_options(decides=False)
decision_options = measure_options(decides=True)


def time_option(default: float, help: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--time, the budget a decision may take (compare, bisect, tune): each says what it times."""
    return click.option(
        "--time", "time_s", type=click.FloatRange(10), default=default, show_default=True, help=help
    )


def default_profile() -> str:
    target = host_target()
    if target is None:
        raise InputError("this host is not a known target; pass --profile", hint="see `builder profiles`")
    return f"minimal-{target.name}"
