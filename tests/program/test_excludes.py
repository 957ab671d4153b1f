"""freeze.excludes: a child takes back a parent's exclude with "!name"; a module the workload
imports is never excluded (an inherited exclude is lifted, the profile's own is one error line)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import assert_one_line_error, run_builder

from builder.errors import ProfileError
from builder.profile import load_profile
from builder.profile.excludes import judge_excludes, refusal
from builder.stages.freeze import lift_excludes, plan_freeze
from builder.stages.trace import Trace

BASE = '[freeze]\nexcludes = ["scipy", "scipy.io", "PIL", "librosa", "torch._dynamo"]\n'
CHILD = """\
description = "c"
extends = "_base"
[target]
name = "linux-x86_64"
python = "3.11"
[program]
name = "sep"
script = "sep_app.py"
[freeze]
excludes = {excludes}
"""


def _project(tmp_path: Path, excludes: str) -> Path:
    (tmp_path / "profiles").mkdir(exist_ok=True)
    (tmp_path / "profiles/_base.toml").write_text(BASE)
    (tmp_path / "profiles/c.toml").write_text(CHILD.format(excludes=excludes))
    (tmp_path / "sep_app.py").write_text("import scipy\n")
    (tmp_path / "site").mkdir(exist_ok=True)
    return tmp_path


def test_a_child_takes_back_a_parents_exclude_and_each_exclude_knows_its_profile(tmp_path: Path) -> None:
    profile = load_profile("c", _project(tmp_path, '["!scipy", "numba"]') / "profiles")
    # "!scipy" takes back scipy and scipy.io; what the child adds is its own
    assert profile.freeze.excludes == ("PIL", "librosa", "torch._dynamo", "numba")
    assert dict(profile.exclude_origins) == {
        "PIL": "_base", "librosa": "_base", "torch._dynamo": "_base", "numba": "c",
    }  # fmt: skip
    spec = plan_freeze(profile, tmp_path / "site", tmp_path, tmp_path / "build/c").files["sep.spec"]
    assert "excludes=['PIL', 'librosa', 'torch._dynamo', 'numba']" in spec


def test_a_take_back_of_nothing_the_parents_exclude_is_one_line_with_a_suggestion(tmp_path: Path) -> None:
    proc = run_builder("profiles", root=_project(tmp_path, '["!scipyy"]'))
    assert_one_line_error(proc, 2, "c.toml", "'freeze.excludes'", "'!scipyy'", "did you mean '!scipy'?")


def test_an_import_of_the_workload_lifts_an_inherited_exclude_and_keeps_the_rest() -> None:
    origins = {"scipy": "_base", "PIL": "_base", "torch._dynamo": "_base", "numba": "c"}
    j = judge_excludes(origins, ["numpy", "scipy.signal", "torch", "torch._dynamo.eval_frame"], profile="c")
    assert j.excludes == ("PIL", "numba")
    assert [(c.module, c.exclude, c.origin) for c in j.kept] == [
        ("scipy.signal", "scipy", "_base"),
        ("torch._dynamo.eval_frame", "torch._dynamo", "_base"),
    ]
    assert j.refused == () and refusal(j, Path("c.toml")) is None
    # a module beside an exclude, or its parent package, is not under it
    assert judge_excludes({"torch._dynamo": "_base"}, ["torch", "torch._dynamo_x"], profile="c").kept == ()


def test_the_profiles_own_exclude_of_an_imported_module_is_one_line_naming_all_three() -> None:
    j = judge_excludes({"scipy": "_base", "numba": "c"}, ["numba.core", "scipy"], profile="c")
    err = refusal(j, Path("profiles/c.toml"))
    assert isinstance(err, ProfileError) and err.exit_code == 2
    line = err.one_line()
    assert "profiles/c.toml: key 'freeze.excludes'" in line and "imports numba.core" in line
    assert "exclude 'numba' set by profile c" in line and "\n" not in line


def test_the_freeze_plan_given_the_workloads_imports_keeps_them(tmp_path: Path) -> None:
    profile = load_profile("c", _project(tmp_path, '["numba"]') / "profiles")
    plan = plan_freeze(profile, tmp_path / "site", tmp_path, tmp_path / "build/c", imported={"scipy", "json"})
    # scipy is imported: its inherited exclude is lifted; scipy.io is not: it stays left out
    assert "excludes=['scipy.io', 'PIL', 'librosa', 'torch._dynamo', 'numba']" in plan.files["sep.spec"]
    assert [(c.module, c.exclude, c.origin) for c in plan.kept] == [("scipy", "scipy", "_base")]
    with pytest.raises(ProfileError, match="imports numba, which the exclude 'numba' set by profile c"):
        plan_freeze(profile, tmp_path / "site", tmp_path, tmp_path / "build/c", imported={"numba"})


def test_a_lifted_exclude_puts_the_traced_modules_under_it_back_into_the_freeze() -> None:
    trace = Trace(
        modules=("demucs",),
        files=(),
        metadata=(),
        libraries=(),
        excluded=("scipy", "scipy.signal", "numba", "scipy-1.15.0.dist-info"),
    )
    lifted = lift_excludes(trace, ["numba", "PIL"])
    assert lifted.modules == ("demucs", "scipy", "scipy.signal")
    # numba is still excluded; metadata folders are not modules
    assert lifted.excluded == ("numba", "scipy-1.15.0.dist-info")
