"""[program]: the bundled stems, a console script, a module:function or a project script; what is
not there is one error naming the profile key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import assert_one_line_error, run_builder

from builder.errors import ProfileError
from builder.profile import load_profile
from builder.program.entry import console_scripts, launcher_for, launcher_name
from builder.stages.freeze import plan_freeze
from builder.stages.inputs import inputs_hash

PROFILE = """\
description = "p"
[target]
name = "linux-x86_64"
python = "3.11"
[program]
name = "sep"
{program}
"""


def _project(tmp_path: Path, program: str) -> Path:
    (tmp_path / "profiles").mkdir(exist_ok=True)
    (tmp_path / "profiles/p.toml").write_text(PROFILE.format(program=program))
    site = tmp_path / "site"
    dist = site / "msst-0.1.0.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "entry_points.txt").write_text("[console_scripts]\nmsst-inference = msst.inference:main\n")
    (site / "msst").mkdir(exist_ok=True)
    (site / "msst/__init__.py").write_text("")
    (site / "msst/inference.py").write_text("def main():\n    return 0\n")
    return tmp_path


def _plan(project: Path):  # type: ignore[no-untyped-def]
    profile = load_profile("p", project / "profiles")
    return profile, plan_freeze(profile, project / "site", project, project / "build/p")


def test_a_console_script_of_a_locked_package_becomes_the_entry(tmp_path: Path) -> None:
    assert console_scripts(_project(tmp_path, "") / "site")["msst-inference"] == (
        "msst.inference:main",
        "msst",
    )
    _, plan = _plan(_project(tmp_path, 'console-script = "msst-inference"'))
    assert plan.program == "sep" and "sep.spec" in plan.files
    assert "from msst.inference import main as _entry" in plan.files[launcher_name("sep")]
    spec = plan.files["sep.spec"]
    assert "runtime_entry" not in spec and "'threadpoolctl'" not in spec  # not in this site-packages
    assert "RUNTIME_BUILDER_PROBE" in plan.files["pyi_rth_stems_threads.py"]


def test_a_function_and_a_script_of_the_project(tmp_path: Path) -> None:
    project = _project(tmp_path, 'function = "myapp.worker:Worker.run"')
    (project / "myapp").mkdir()
    (project / "myapp/__init__.py").write_text("")
    (project / "myapp/worker.py").write_text(
        "class Worker:\n    @staticmethod\n    def run():\n        return 0\n"
    )
    profile, plan = _plan(project)
    assert (
        "from myapp.worker import Worker as _entry" in plan.files[launcher_name("sep")]
        and "_entry.run()" in plan.files[launcher_name("sep")]
    )
    assert repr(str(project)) in plan.files["sep.spec"]  # the project's own modules are found
    before = inputs_hash(project, profile, plan, "sha256:l", Path(sys.executable))
    (project / "myapp/worker.py").write_text("class Worker:\n    run = staticmethod(lambda: 1)\n")
    assert inputs_hash(project, profile, _plan(project)[1], "sha256:l", Path(sys.executable)) != before

    (project / "profiles/p.toml").write_text(
        PROFILE.format(program='script = "app/sep.py"\ndatas = ["conf"]')
    )
    (project / "app").mkdir()
    (project / "app/sep.py").write_text("print('hi')\n")
    (project / "conf").mkdir()
    (project / "conf/model.yaml").write_text("a: 1\n")
    _, plan = _plan(project)
    assert (
        launcher_name("sep") not in plan.files and repr(str(project / "app/sep.py")) in plan.files["sep.spec"]
    )
    assert f"[{str(project / 'conf')!r}, 'conf']" in plan.files["sep.spec"]


@pytest.mark.parametrize(
    ("program", "key"),
    [
        ('console-script = "nope"', "program.console-script"),
        ('function = "nowhere.mod:main"', "program.function"),
        ('script = "app/missing.py"', "program.script"),
        ('datas = ["missing"]', "program.datas"),
    ],
)
def test_what_the_profile_names_but_is_not_there_is_one_error_naming_the_key(
    tmp_path: Path, program: str, key: str
) -> None:
    with pytest.raises(ProfileError) as err:
        _plan(_project(tmp_path, program))
    line = err.value.one_line()
    assert f"'{key}'" in line and "\n" not in line and str(tmp_path / "profiles/p.toml") in line


@pytest.mark.parametrize(
    ("program", "needle"),
    [
        ('console-script = "a"\nscript = "b.py"', "both name the program"),
        ('function = "no colon"', "module:function"),
        ('script = "../outside.py"', "inside the project"),
        ('console-script = "x"\nfunction = "a:b"', "both name the program"),
    ],
)
def test_a_bad_program_table_is_a_profile_error(tmp_path: Path, program: str, needle: str) -> None:
    proc = run_builder("profiles", root=_project(tmp_path, program))
    assert_one_line_error(proc, 2, needle)


def test_launchers_call_the_entry_and_exit_with_its_value() -> None:
    text = launcher_for("pkg.mod:cli.main", "console script x")
    assert "from pkg.mod import cli as _entry" in text and "sys.exit(_entry.main())" in text
    compile(text, "launcher", "exec")


def test_a_child_profile_that_names_its_program_replaces_the_parents_entry(tmp_path: Path) -> None:
    project = _project(tmp_path, 'console-script = "msst-inference"')
    (project / "profiles/child.toml").write_text(
        'description = "c"\nextends = "p"\n[program]\nscript = "app/x.py"\n'
    )
    child = load_profile("child", project / "profiles")
    assert child.program.script == "app/x.py" and child.program.console_script is None
    assert child.program.name == "sep"  # what it does not name is inherited


@pytest.mark.parametrize("name", ["msst", "msst-inference"])
def test_a_program_named_like_its_package_runs_the_package_not_its_launcher(
    tmp_path: Path, name: str
) -> None:
    # name = "msst" for msst's console script: a launcher msst.py would import itself, not msst
    project = _project(tmp_path, 'console-script = "msst-inference"')
    (project / "profiles/p.toml").write_text(
        PROFILE.replace('name = "sep"', f'name = "{name}"').format(
            program='console-script = "msst-inference"'
        )
    )
    (project / "site/msst/inference.py").write_text("def main():\n    return 3\n")
    _, plan = _plan(project)
    assert plan.program == name and f"{name}.spec" in plan.files
    (launcher,) = [
        n for n in plan.files if n.endswith(".py") and "RUNTIME_BUILDER_PROBE" not in plan.files[n]
    ]
    assert (
        launcher == launcher_name(name) and repr(str(plan.scratch / launcher)) in plan.files[f"{name}.spec"]
    )
    # run as PyInstaller's analysis and a venv resolve it: the script's folder first on sys.path
    plan.scratch.mkdir(parents=True)
    for file, text in plan.files.items():
        (plan.scratch / file).write_text(text)
    env = {**os.environ, "PYTHONPATH": str(project / "site")}
    proc = subprocess.run([sys.executable, plan.scratch / launcher], env=env, capture_output=True, text=True)
    assert proc.returncode == 3, proc.stderr  # msst.inference.main's value: the package ran
