"""The release workflow: valid for actionlint, and its matrix is `builder matrix --json`."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from builder.matrix import release_matrix
from builder.profile import load_all
from builder.targets import TARGETS
from release.helpers import run_cli

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "release.yml"


def workflow() -> dict[str, Any]:
    return yaml.safe_load(WORKFLOW.read_text())


def build_job_text() -> str:
    """Every string in the build job (names, expressions, run scripts), one per line."""

    def strings(node: Any) -> list[str]:
        if isinstance(node, dict):
            return [s for k, v in node.items() for s in (str(k), *strings(v))]
        if isinstance(node, list):
            return [s for v in node for s in strings(v)]
        return [str(node)]

    return "\n".join(strings(workflow()["jobs"]["build"]))


def actionlint() -> str:
    found = shutil.which("actionlint", path=str(Path(sys.executable).parent)) or shutil.which("actionlint")
    assert found, "actionlint is not installed: `make dev` installs it with the test extras"
    return found


def test_release_workflow_passes_actionlint() -> None:
    proc = subprocess.run(
        [actionlint(), "-no-color", str(WORKFLOW)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_would_catch_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / ".github" / "workflows" / "release.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(
        WORKFLOW.read_text().replace("needs.matrix.outputs.include", "needs.matrix.outputs.nope")
    )
    proc = subprocess.run(
        [actionlint(), "-no-color", str(broken)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode != 0 and "nope" in proc.stdout


def test_matrix_json_is_every_profile_with_its_targets_runner_and_python() -> None:
    proc = run_cli("--root", ROOT, "matrix", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    profiles = load_all(ROOT / "profiles")
    assert rows == release_matrix(profiles)
    assert [r["profile"] for r in rows] == sorted(p.name for p in profiles)
    for row in rows:
        assert row["runner"] == TARGETS[row["target"]].runner
    assert {r["runner"] for r in rows} == {t.runner for t in TARGETS.values()}  # every target is built


def test_matrix_text_lists_every_profile_with_its_runner() -> None:
    proc = run_cli("--root", ROOT, "matrix")
    assert proc.returncode == 0, proc.stderr
    for profile in load_all(ROOT / "profiles"):
        line = next(line for line in proc.stdout.splitlines() if line.startswith(profile.name + " "))
        assert profile.target.runner in line and profile.python in line


def test_workflow_matrix_is_the_output_of_builder_matrix_json() -> None:
    jobs = workflow()["jobs"]
    producer = next(s for s in jobs["matrix"]["steps"] if "builder matrix --json" in s.get("run", ""))
    output = re.search(r'echo "(\w+)<<', producer["run"])
    assert output and "$GITHUB_OUTPUT" in producer["run"]
    assert jobs["matrix"]["outputs"][output[1]] == f"${{{{ steps.{producer['id']}.outputs.{output[1]} }}}}"
    build = jobs["build"]
    assert build["needs"] == "matrix"
    assert build["strategy"]["matrix"] == {
        "include": f"${{{{ fromJSON(needs.matrix.outputs.{output[1]}) }}}}"
    }
    assert build["runs-on"] == "${{ matrix.runner }}"
    setup = next(s for s in build["steps"] if s.get("uses", "").startswith("actions/setup-python"))
    assert setup["with"]["python-version"] == "${{ matrix.python }}"
    # Every matrix key the build job reads is in every entry builder prints.
    used = set(re.findall(r"(?<![.\w])matrix\.(\w+)", build_job_text()))
    for row in release_matrix(load_all(ROOT / "profiles")):
        assert used <= set(row), used - set(row)


def test_workflow_builds_checks_and_uploads_every_release_file() -> None:
    text = build_job_text()
    for command in (
        "make dev",
        'builder lock --profile "$PROFILE" --check',
        'builder build --profile "$PROFILE" --json',
        'builder verify "dist/$PROFILE"',
        '"$program" selftest --json',
        '"$program" bench --json',
        'builder sbom "dist/$PROFILE"',
    ):
        assert command in text, command
    upload = next(
        s
        for s in workflow()["jobs"]["build"]["steps"]
        if s.get("uses", "").startswith("actions/upload-artifact")
    )
    assert upload["with"]["path"] == "release/" and upload["with"]["if-no-files-found"] == "error"
    for name in (".manifest.json", ".cdx.json", ".bench.json", ".selftest.json", ".tar.gz"):
        assert f"release/$PROFILE{name}" in text, name
