"""builder's --json schemas (builder/schemas/) are published for pipeline authors: one per command
with --json, well-formed, strict (a renamed key fails), shipped in the wheel and linked from the README.

The real documents are validated where the tests already run each command (tests/helpers.py
`assert_schema`): build and inspect in tests/pipeline/test_build_real.py, clean in
tests/release/test_clean.py, diff in tests/hostile/test_diff_on_disk.py, init in
tests/program/test_init.py, inspect in tests/pipeline/test_contributors.py, lock in
tests/pipeline/test_lock.py, matrix in tests/release/test_workflow.py, openmp in
tests/openmp/test_elf_tree.py, profiles in tests/pipeline/test_profiles.py, verify in
tests/release/test_verify.py.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import click
import jsonschema
import pytest

from builder.cli import LazyGroup, cli
from builder.matrix import matrix_document, release_matrix
from builder.profile import load_all
from builder.schemas import FOLDER, load, schema_id, tagged, violations

if sys.version_info >= (3, 11):
    import tomllib
else:  # the macOS Intel runner's Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]

# Every command with --json today; a new one must be added here, and given a schema.
JSON_COMMANDS = (
    "bench", "bisect", "build", "clean", "compare", "diff", "doctor", "init", "inspect", "lock", "matrix",
    "openmp", "profiles", "tune", "verify",
)  # fmt: skip


def _json_commands() -> set[str]:
    ctx = click.Context(cli)
    found = set()
    for name in LazyGroup.COMMANDS:
        command = cli.get_command(ctx, name)
        assert command is not None, name
        if any("--json" in getattr(p, "opts", ()) for p in command.params):
            found.add(name)
    return found


def test_the_commands_with_json_are_the_known_ones() -> None:
    assert _json_commands() == set(JSON_COMMANDS)


@pytest.mark.parametrize("command", JSON_COMMANDS)
def test_every_command_with_json_publishes_its_schema(command: str) -> None:
    path = FOLDER / f"{command}.schema.json"
    assert path.is_file(), f"builder {command} --json has no schema: write {path.relative_to(ROOT)}"
    schema = json.loads(path.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == schema_id(command) == f"runtime-builder/{command}/1"
    # the document names its schema, and nothing but the schema's keys is allowed at the top
    assert schema["properties"]["schema"] == {**schema["properties"]["schema"], "const": schema["$id"]}
    assert "schema" in schema["required"] and schema["additionalProperties"] is False


@pytest.mark.parametrize("command", JSON_COMMANDS)
def test_the_readme_links_every_schema_for_pipeline_authors(command: str) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"(builder/schemas/{command}.schema.json)" in readme, command


def test_the_schemas_are_package_data_of_the_wheel() -> None:
    # the built wheel's contents: tests/program/test_init.py (slow); here, the rule that puts them there
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "*.schema.json" in data["builder.schemas"]


def _strictness_holes(node: Any, where: str = "") -> list[str]:
    """Objects with named properties that would accept a renamed key: no additionalProperties: false (pure)."""
    holes = []
    if isinstance(node, dict):
        if (
            node.get("type") == "object"
            and "properties" in node
            and node.get("additionalProperties") is not False
        ):
            holes.append(f"{where or '(top)'}: additionalProperties is not false")
        for key, value in node.items():
            holes += _strictness_holes(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            holes += _strictness_holes(value, f"{where}/{i}")
    return holes


# builder's own results (the measuring commands' documents carry runtime reports of their own)
STRICT = ("build", "clean", "diff", "init", "inspect", "lock", "matrix", "openmp", "profiles", "verify")


@pytest.mark.parametrize("command", STRICT)
def test_every_object_with_named_keys_refuses_unknown_ones(command: str) -> None:
    holes = _strictness_holes(load(command))
    assert not holes, holes


def test_a_renamed_key_in_a_real_document_fails_its_schema() -> None:
    document = matrix_document(
        release_matrix(load_all(ROOT / "profiles"))
    )  # what `builder matrix --json` prints
    assert violations(document, "matrix") == []
    renamed = {**document, "include": [{**document["include"][0]}, *document["include"][1:]]}
    renamed["include"][0]["os"] = renamed["include"][0].pop("runner")
    found = violations(renamed, "matrix")
    assert any("'runner' is a required property" in v for v in found), found
    assert any("'os' was unexpected" in v for v in found), found
    assert violations({**document, "schema": "runtime-builder/matrix/2"}, "matrix")  # another version
    untagged = {k: v for k, v in document.items() if k != "schema"}
    assert any("'schema' is a required property" in v for v in violations(untagged, "matrix"))


def test_a_document_names_its_schema() -> None:
    assert tagged("diff", {"a": "x"}) == {"schema": "runtime-builder/diff/1", "a": "x"}


def test_what_the_release_workflow_reads_of_builders_json_is_required_by_the_schemas() -> None:
    # the other side of the schemas: a pipeline that reads a key the schema does not promise breaks
    workflow = (ROOT / ".github/workflows/release.yml").read_text(encoding="utf-8")
    build_job = workflow[workflow.index("\n  build:") :]
    read = set(re.findall(r"json\.load\(open\('build\.json'\)\)\['(\w+)'\]", workflow))
    assert read and read <= set(load("build")["required"]), read
    used = set(re.findall(r"(?<![.\w])matrix\.(\w+)", build_job))
    include = load("matrix")["properties"]["include"]["items"]
    assert used and used <= set(include["required"]), used - set(include["required"])
