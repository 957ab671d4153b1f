"""Resolve once: `build` resolves the profile into a plan (builder/stages/plan.py) that the stages
receive; no stage loads a profile, finds the project again or resolves the program or its workload.

The count along a real build is in tests/pipeline/test_build_real.py
(`test_a_build_resolves_the_profile_once`); here, what every stage module may call, and the plan.
"""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

import pytest

from builder.errors import ProfileError
from builder.paths import Project
from builder.stages.plan import resolve_plan

ROOT = Path(__file__).resolve().parents[2]
STAGES = ROOT / "builder" / "stages"
PROFILE = "minimal-linux-x86_64"

# What turns a profile name or a profile into facts: only the plan calls them.
RESOLVERS = {"load_profile", "load_all", "find_project", "workload_of", "resolve_program"}


def _calls(path: Path) -> set[str]:
    """Every function a module calls by name, and every `X.path.parent.parent` it reads (pure)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            func = node.func
            found.add(func.id if isinstance(func, ast.Name) else getattr(func, "attr", ""))
        if (
            isinstance(node, ast.Attribute)
            and node.attr == "parent"
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "parent"
            and isinstance(node.value.value, ast.Attribute)
            and node.value.value.attr == "path"
        ):
            found.add(".path.parent.parent")  # the project's folder rebuilt from a profile's path
    return found


@pytest.mark.parametrize("stage", ["build", "check", "smoke", "trace", "install", "package", "openmp"])
def test_no_stage_rederives_a_profile_fact_or_the_project(stage: str) -> None:
    wrong = _calls(STAGES / f"{stage}.py") & (RESOLVERS | {".path.parent.parent"})
    assert not wrong, f"builder/stages/{stage}.py calls {sorted(wrong)}: take it from the BuildPlan"


def test_the_freeze_takes_the_builds_program_entry() -> None:
    # plan_freeze resolves the entry only for callers without a plan (tests, tools); the build
    # passes the one it resolved after install
    tree = ast.parse((STAGES / "build.py").read_text(encoding="utf-8"))
    calls = [
        n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "plan_freeze"
    ]
    assert calls and all(any(k.arg == "entry" for k in c.keywords) for c in calls)
    resolved = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") in
                ("resolve_plan", "program_of")]  # fmt: skip
    assert sorted(getattr(c.func, "id", "") for c in resolved) == ["program_of", "resolve_plan"]


def test_the_plan_holds_every_fact_the_stages_read(root: Path, tmp_path: Path) -> None:
    project = Project(root=root)
    plan = resolve_plan(project, PROFILE, out=tmp_path / "dist", wheelhouse=None)
    assert plan.profile.name == PROFILE and plan.root == root
    assert plan.lock_path == root / "locks" / f"{PROFILE}.lock"
    assert plan.lock_hash == "sha256:" + hashlib.sha256(plan.lock_path.read_bytes()).hexdigest()
    assert plan.dist == (tmp_path / "dist" / PROFILE).resolve() and plan.venv == plan.work / "venv"
    assert plan.work == (project.work / PROFILE).resolve()
    # stems measures itself: no workload, no check command, nothing traced
    assert (plan.workload, plan.check_workload, plan.traced) == (None, None, False)


def test_a_workloads_missing_file_is_refused_by_the_plan_before_any_stage(root: Path, tmp_path: Path) -> None:
    for sub in ("profiles", "locks"):
        (tmp_path / sub).mkdir()
    # [bench] is not part of the lock's profile hash: the committed lock stays fresh
    (tmp_path / "locks" / f"{PROFILE}.lock").write_bytes((root / "locks" / f"{PROFILE}.lock").read_bytes())
    (tmp_path / "profiles/_base.toml").write_text((root / "profiles/_base.toml").read_text())
    text = (root / "profiles" / f"{PROFILE}.toml").read_text()
    (tmp_path / "profiles" / f"{PROFILE}.toml").write_text(
        text + '\n[bench]\ncommand = "{program} bench --json"\ninput-file = "song.wav"\n'
    )
    with pytest.raises(ProfileError, match=r"bench.input-file.*song.wav"):
        resolve_plan(Project(root=tmp_path), PROFILE, out=tmp_path / "dist", wheelhouse=None)
