"""A frozen program's folder of any name is a runtime: its runtime.json names the profile whose
[bench].command is the workload; a program other than stems without one is one line, not `bench`."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import assert_one_line_error, run_builder, team_profile

from builder.measure.take.subject import resolve_path
from builder.paths import Project


def _project_with_a_frozen_sep(tmp_path: Path) -> Path:
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles/p.toml").write_text(team_profile("app/separate.py"))
    folder = tmp_path / "build/p/frozen/sep"
    (folder / "_internal").mkdir(parents=True)
    (folder / "sep").write_text("#!/bin/sh\nexit 0\n")
    (folder / "sep").chmod(0o755)
    (folder / "runtime.json").write_text(json.dumps({"profile": "p", "threads": 2}))
    return folder


def test_a_frozen_folder_of_any_program_is_a_runtime_with_its_profiles_workload(tmp_path: Path) -> None:
    folder = _project_with_a_frozen_sep(tmp_path)
    rt = resolve_path(folder, Project(root=tmp_path))
    assert rt.argv == (str(folder / "sep"),) and rt.profile == "p" and rt.kind == "dist"
    assert rt.workload is not None and rt.workload.command == ("{program}", "{input}", "{output}")


def test_doctor_of_a_frozen_program_without_its_workload_says_where_to_run_it(tmp_path: Path) -> None:
    folder = _project_with_a_frozen_sep(tmp_path)
    (tmp_path / "profiles/p.toml").unlink()  # elsewhere: the profile that built it is not here
    (tmp_path / "profiles/q.toml").write_text(team_profile("app/separate.py"))
    proc = run_builder("doctor", folder, root=tmp_path)
    assert_one_line_error(proc, 10, "no workload for sep (profile p)", "--root")
