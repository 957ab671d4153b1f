"""The subject: the runtime under test, and how to start a venv's `python -m runtime_entry` or a dist's program.

builder never imports torch: it starts the runtime as a user's app would and reads its JSON.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from builder.artifact.manifest import MANIFEST, read_manifest
from builder.contract import CONFIG_ENV, CONFIG_NAME, SETTINGS_ENV
from builder.errors import InputError
from builder.fsutil import atomic_write_text
from builder.measure.take.workload import Workload, workload_of
from builder.paths import Project
from builder.profile import Profile, load_profile
from builder.program.entry import launcher_name, resolve_program, runtime_config, venv_launcher
from builder.venvs import site_packages_of, venv_python


@dataclass(frozen=True, kw_only=True)
class Subject:
    """How to start one runtime: a venv (`python -m runtime_entry`) or a dist's `stems`."""

    label: str
    kind: str  # venv | dist
    path: Path  # the venv, or the dist folder
    argv: tuple[str, ...]  # program and arguments before the stems command
    env: Mapping[str, str] = field(default_factory=dict)
    profile: str | None = None
    importtime: bool = True  # PyInstaller programs ignore -X importtime / PYTHONPROFILEIMPORTTIME
    settings: str | None = None  # where runtime settings come from when not from a config file
    workload: Workload | None = None  # the profile's [bench].command; None: stems measures itself

    def command(self, *args: str, importtime: bool = False) -> list[str]:
        if importtime and self.kind == "venv":
            return [self.argv[0], "-X", "importtime", *self.argv[1:], *args]
        return [*self.argv, *args]

    def with_env(self, **extra: str) -> Subject:
        return replace(self, env={**self.env, **extra})

    def describe(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "kind": self.kind,
            "path": str(self.path),
            "profile": self.profile,
            "command": shlex.join(self.argv),
            "settings": self.settings,
            "workload": self.workload.describe() if self.workload else None,
        }


def venv_subject(
    venv: Path, project: Project, *, label: str | None = None, profile: str | None = None
) -> Subject:
    venv = venv.absolute()
    env = {"PYTHONPATH": str(project.runtime_entry_path())}
    # A venv has no program folder: its runtime config (as `builder tune` writes it) sits in the venv.
    if (venv / CONFIG_NAME).is_file():
        env[CONFIG_ENV] = str(venv / CONFIG_NAME)
    if profile is None and venv.name == "venv" and (project.profiles / f"{venv.parent.name}.toml").is_file():
        profile = venv.parent.name
    settings = None
    prof = load_profile(profile, project.profiles) if profile is not None else None
    if prof is not None and not prof.program.bundled:
        return _program_venv_subject(venv, project, prof, env, label=label)
    if prof is not None and CONFIG_ENV not in env:
        settings = f"profile {profile} [runtime] (as STEMS_* variables)"
        # A profile's venv runs with the profile's runtime settings, as its frozen program would.
        rs = prof.runtime
        env.update(
            {
                **rs.env,
                SETTINGS_ENV["threads"]: str(rs.threads),
                SETTINGS_ENV["interop_threads"]: str(rs.interop_threads),
                SETTINGS_ENV["matmul_precision"]: rs.matmul_precision,
            }
        )
    return Subject(
        label=label or _short(venv), kind="venv", path=venv,
        argv=(str(venv_python(venv)), "-m", "runtime_entry"), env=env, profile=profile, settings=settings,
    )  # fmt: skip


def _program_venv_subject(
    venv: Path, project: Project, profile: Profile, env: dict[str, str], *, label: str | None
) -> Subject:
    """A profile's own program ([program]) run from its venv the way its freeze runs it: the probe's
    hook first, with runtime.json's settings, then the entry; measured by the profile's [bench]."""
    workload = workload_of(profile, project.root)
    if workload is None:
        raise InputError(
            f"{profile.path}: a venv of {profile.program.describe()} has no workload to measure",
            hint="give the profile a [bench] command (see `builder init`)",
        )
    entry = resolve_program(profile, site_packages_of(venv), project.root)
    # builder's own files, shared by every venv of the profile (bisect's included)
    folder = project.work / ".programs" / profile.name
    launcher, config = folder / launcher_name(entry.name), folder / CONFIG_NAME
    for path, text in ((launcher, venv_launcher(entry)), (config, json.dumps(runtime_config(profile)))):
        if not (path.is_file() and path.read_text(encoding="utf-8") == text):
            atomic_write_text(path, text)
    env = {k: v for k, v in env.items() if k != "PYTHONPATH"}
    env.setdefault(CONFIG_ENV, str(config))  # a venv's own runtime.json (`builder tune`) wins
    if entry.pathex:
        env["PYTHONPATH"] = os.pathsep.join(str(p) for p in entry.pathex)
    return Subject(
        label=label or _short(venv), kind="venv", path=venv, argv=(str(venv_python(venv)), str(launcher)),
        env=env, profile=profile.name, importtime=False, workload=workload,
        settings=f"profile {profile.name} [runtime] ({CONFIG_ENV}, read by the probe's hook)",
    )  # fmt: skip


def dist_subject(dist: Path, *, label: str | None = None, project: Project | None = None) -> Subject:
    dist = dist.absolute()
    # The one bounded reader; a frozen folder without a manifest is a dist too.
    manifest = read_manifest(dist) if os.path.lexists(dist / MANIFEST) else {}
    name = (manifest.get("program") or {}).get("name", "stems")  # [program].name
    program = dist / name / (f"{name}.exe" if sys.platform == "win32" else name)
    if not program.is_file():
        raise InputError(f"{dist}: a dist without {name}/{program.name}")
    profile = manifest.get("profile")
    workload = None
    # the workload is the profile's, with the project's files (config, checkpoint, input)
    if project is not None and profile and (project.profiles / f"{profile}.toml").is_file():
        workload = workload_of(load_profile(profile, project.profiles), project.root)
    return Subject(
        label=label or _short(dist),
        kind="dist",
        path=dist,
        argv=(str(program),),
        profile=profile,
        importtime=False,
        workload=workload,
    )


def program_subject(program: Path, project: Project) -> Subject:
    """A venv's python or a frozen `stems` program (what the build pipeline has in hand)."""
    program = program.absolute()
    if program.name.startswith("python"):
        venv = program.parent.parent
        return venv_subject(venv, project)
    if program.parent.name == "stems" and (program.parent.parent / MANIFEST).is_file():
        return dist_subject(program.parent.parent)
    return Subject(
        label=_short(program.parent), kind="dist", path=program.parent, argv=(str(program),), importtime=False
    )


def frozen_subject(folder: Path, project: Project | None, *, label: str | None = None) -> Subject:
    """A frozen program's folder (its executable beside `_internal`), whatever the program's name:
    the profile its runtime.json names gives the workload, when the project has that profile."""
    folder = folder.absolute()
    program = folder / (folder.name + (".exe" if sys.platform == "win32" else ""))
    try:
        profile = json.loads((folder / CONFIG_NAME).read_text(encoding="utf-8")).get("profile")
    except (OSError, ValueError, AttributeError):  # a team's own freeze has no runtime.json
        profile = None
    workload = None
    if project is not None and isinstance(profile, str) and (project.profiles / f"{profile}.toml").is_file():
        workload = workload_of(load_profile(profile, project.profiles), project.root)
    return Subject(
        label=label or folder.name, kind="dist", path=folder, argv=(str(program),),
        profile=profile if isinstance(profile, str) else None, importtime=False, workload=workload,
    )  # fmt: skip


def frozen_folder(path: Path) -> bool:
    """A PyInstaller onedir folder: `_internal` and the executable named like the folder."""
    exe = path / (path.name + (".exe" if sys.platform == "win32" else ""))
    return (path / "_internal").is_dir() and exe.is_file()


def _short(path: Path) -> str:
    parts = path.parts
    return "/".join(parts[-2:]) if path.name in ("venv", "stems") else path.name


def resolve_path(path: Path, project: Project, *, label: str | None = None) -> Subject:
    """A venv, a dist or a frozen folder on disk."""
    if (path / "pyvenv.cfg").is_file():
        return venv_subject(path, project, label=label)
    if (path / MANIFEST).is_file() or (path / "stems" / "stems").is_file():
        return dist_subject(path, label=label, project=project)
    if frozen_folder(path.absolute()):
        return frozen_subject(path, project, label=label)
    raise InputError(
        f"{path}: not a venv (pyvenv.cfg), a dist (manifest.json) or a frozen program's folder "
        "(_internal beside an executable named like the folder)"
    )
