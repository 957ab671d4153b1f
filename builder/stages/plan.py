"""A build's plan: the profile resolved once into every fact the stages need.

`builder build` names a profile; this turns it, once, into the program, the workloads, the paths
and the inputs (the lock, the wheelhouse) of one build, with the project's folder. The stages
receive the plan and re-derive nothing: no stage loads a profile, finds the project's folder
again or resolves the program or its workload a second time (tests/pipeline/test_plan.py).
The program entry is the one fact that needs the installed venv (its console scripts and
packages), so it is resolved once after the install stage, by `program_of`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from builder.measure.take.workload import Workload, workload_of
from builder.paths import Project
from builder.profile import Profile, load_profile
from builder.program.entry import ProgramEntry, resolve_program
from builder.stages.install import InstallResult, require_native
from builder.stages.lock import Lock, check_lock, read_lock
from builder.tools import uv
from builder.venvs import site_packages_of
from builder.wheelhouse import Wheelhouse, find_wheelhouse


@dataclass(frozen=True, kw_only=True)
class BuildPlan:
    """One build of one profile, resolved: what every stage reads instead of the profile's files."""

    profile: Profile
    project: Project  # its root holds profiles/: the profile's relative paths are named from it
    lock_path: Path
    lock: Lock
    lock_hash: str  # of the lock file: a key of the trace, the freeze and the dist
    wheelhouse: Wheelhouse | None
    work: Path  # build/<profile>/: the venv, the trace, PyInstaller's scratch, the frozen folder
    dist: Path  # <out>/<profile>/
    workload: Workload | None  # [bench].command; None where stems measures itself
    check_workload: (
        Workload | None
    )  # [bench].check-command (`{program} --help` for a program other than stems)

    @property
    def root(self) -> Path:
        return self.project.root

    @property
    def venv(self) -> Path:
        return self.work / "venv"

    @property
    def traced(self) -> bool:
        """A program other than stems with a workload is traced (stems' own imports are known)."""
        return not self.profile.program.bundled and self.workload is not None


def resolve_plan(project: Project, profile_name: str, *, out: Path, wheelhouse: Path | None) -> BuildPlan:
    """The named profile's plan, after what this host needs to build it: the target is the host's
    and its Python is there (each one error line, before any other check)."""
    profile = load_profile(profile_name, project.profiles)
    require_native(profile, "build")
    uv.find_python(profile.python)
    return plan_build(project, profile, out=out, wheelhouse=wheelhouse)


def plan_build(project: Project, profile: Profile, *, out: Path, wheelhouse: Path | None) -> BuildPlan:
    """The profile's lock (StaleLockError when stale), its workloads (ProfileError when a file
    they name is missing) and the build's folders; reads files, writes nothing."""
    lock_path = project.lock_path(profile.name)
    check_lock(profile, lock_path)
    lock = read_lock(lock_path)
    return BuildPlan(
        profile=profile,
        project=project,
        lock_path=lock_path,
        lock=lock,
        lock_hash=lock.hash(),
        wheelhouse=find_wheelhouse(wheelhouse),
        work=(project.work / profile.name).resolve(),
        dist=(out / profile.name).resolve(),
        workload=workload_of(profile, project.root),
        check_workload=workload_of(profile, project.root, check=True),
    )


def program_of(plan: BuildPlan, inst: InstallResult) -> ProgramEntry:
    """The program the freeze turns into an executable, resolved against the installed venv."""
    return resolve_program(plan.profile, site_packages_of(inst.venv), plan.root)
