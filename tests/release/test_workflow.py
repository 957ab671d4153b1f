"""The release workflow: valid for actionlint (with ShellCheck over its scripts), fast tests on every
runner OS before any build, the build matrix is `builder matrix --json`, and the build jobs check
the packaged program against its profile, bench it and upload both archives."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from helpers import assert_schema

from builder.matrix import release_matrix
from builder.profile import load_all, load_profile
from builder.stages.lock import read_lock
from builder.targets import TARGETS
from release.helpers import run_cli

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "release.yml"


def workflow() -> dict[str, Any]:
    return yaml.safe_load(WORKFLOW.read_text())


def build_job_text(job: str = "build") -> str:
    """Every string in a job (names, expressions, run scripts), one per line."""

    def strings(node: Any) -> list[str]:
        if isinstance(node, dict):
            return [s for k, v in node.items() for s in (str(k), *strings(v))]
        if isinstance(node, list):
            return [s for v in node for s in strings(v)]
        return [str(node)]

    return "\n".join(strings(workflow()["jobs"][job]))


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


def test_actionlint_runs_shellcheck_over_the_run_scripts(tmp_path: Path) -> None:
    """An unquoted variable in a run script is a ShellCheck finding (SC2086), so ShellCheck ran."""
    assert shutil.which("shellcheck"), (
        "ShellCheck is not installed: `make test` installs it (Debian's package)"
    )
    broken = tmp_path / ".github" / "workflows" / "release.yml"
    broken.parent.mkdir(parents=True)
    text = WORKFLOW.read_text()
    assert 'builder verify "dist/$PROFILE"' in text
    broken.write_text(text.replace('builder verify "dist/$PROFILE"', "builder verify dist/$PROFILE"))
    proc = subprocess.run(
        [actionlint(), "-no-color", str(broken)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode != 0 and "SC2086" in proc.stdout, proc.stdout


def test_fast_tests_run_on_every_targets_runner_before_any_build() -> None:
    jobs = workflow()["jobs"]
    test = jobs["test"]
    rows = test["strategy"]["matrix"]["include"]
    assert test["runs-on"] == "${{ matrix.runner }}"
    assert sorted(r["runner"] for r in rows) == sorted({t.runner for t in TARGETS.values()})
    assert set(jobs["build"]["needs"]) == {"matrix", "test"}
    text = build_job_text("test")
    assert '-m pytest -m "not slow"' in text and "-r tests/requirements-engine.txt" in text
    assert "--override .overrides.txt" in text and "msst==0.1.0" in text


def test_each_test_runner_gets_its_targets_python_and_locked_torch() -> None:
    """The test job runs with what the target's minimal profile locks, so the runner tests that."""
    rows = {r["runner"]: r for r in workflow()["jobs"]["test"]["strategy"]["matrix"]["include"]}
    for target in TARGETS.values():
        profile = load_profile(f"minimal-{target.name}", ROOT / "profiles")
        pins = read_lock(ROOT / "locks" / f"{profile.name}.lock").pins
        row = rows[target.runner]
        assert row["python"] == profile.python, target.name
        assert f"torch=={pins['torch'].version}" in row["overrides"].split(), target.name
        if pins["numpy"].version.startswith("1."):  # numpy<2 targets pin it too
            assert f"numpy=={pins['numpy'].version}" in row["overrides"].split(), target.name


def test_matrix_json_is_every_profile_with_its_targets_runner_and_python() -> None:
    proc = run_cli("--root", ROOT, "matrix", "--json")
    assert proc.returncode == 0, proc.stderr
    document = json.loads(proc.stdout)
    assert_schema(document, "matrix")
    rows = document["include"]
    profiles = load_all(ROOT / "profiles")
    assert rows == [r.to_json() for r in release_matrix(profiles)]
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
    assert "matrix" in build["needs"]
    assert build["strategy"]["matrix"] == {
        "include": f"${{{{ fromJSON(needs.matrix.outputs.{output[1]}).include }}}}"
    }
    assert build["runs-on"] == "${{ matrix.runner }}"
    setup = next(s for s in build["steps"] if s.get("uses", "").startswith("actions/setup-python"))
    assert setup["with"]["python-version"] == "${{ matrix.python }}"
    # Every matrix key the build job reads is in every entry builder prints.
    used = set(re.findall(r"(?<![.\w])matrix\.(\w+)", build_job_text()))
    for row in release_matrix(load_all(ROOT / "profiles")):
        assert used <= set(row.to_json()), used - set(row.to_json())


def test_workflow_builds_checks_and_uploads_every_release_file() -> None:
    text = build_job_text()
    for command in (
        "make dev",
        'builder lock --profile "$PROFILE" --check',
        'builder build --profile "$PROFILE" --json',
        'builder verify "dist/$PROFILE"',
        'python scripts/release_check.py "$PROFILE" "$program"',
        'builder bench "dist/$PROFILE" --repeat 3 --json',
        'builder sbom "dist/$PROFILE"',
        '"dist/$PROFILE/$PROFILE.tar.xz" "dist/$PROFILE/$PROFILE.zip"',
        'cp "$archive" "$archive.sha256" release/',
    ):
        assert command in text, command
    upload = next(
        s
        for s in workflow()["jobs"]["build"]["steps"]
        if s.get("uses", "").startswith("actions/upload-artifact")
    )
    assert upload["with"]["path"] == "release/" and upload["with"]["if-no-files-found"] == "error"
    for name in (".manifest.json", ".cdx.json", ".bench.json", ".selftest.json"):
        assert f"release/$PROFILE{name}" in text, name
    # the script the build job runs exists and judges with the build's own check stage
    script = (ROOT / "scripts" / "release_check.py").read_text()
    assert "from builder.stages.check import check" in script
