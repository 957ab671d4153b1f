"""The profile schema table: the one source of validation, dataclass defaults, JSON Schema and docs."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import jsonschema
import pytest
from helpers import assert_one_line_error, run_builder

from builder.errors import ProfileError
from builder.profile import load_all, load_profile
from builder.profile.load import parse_toml, profile_names
from builder.profile.model import SECTION_TYPES
from builder.profile.schema import KEYS, SECTIONS, default, json_schema, keys_of, reference_markdown

PROFILE = """\
description = "test"
[target]
name = "linux-x86_64"
python = "3.11"
"""


def test_each_section_dataclass_has_exactly_the_tables_keys_and_defaults() -> None:
    for section in SECTIONS:
        if section == "target":
            continue  # resolved into Profile.target / Profile.python
        fields = {f.name: f for f in dataclasses.fields(SECTION_TYPES[section])}
        assert set(fields) == {k.field for k in keys_of(section)}, section
        instance = SECTION_TYPES[section]()
        for key in keys_of(section):
            want = default(key.dotted)
            assert getattr(instance, key.field) == (want if want is not None else None), key.dotted


def test_every_shipped_profile_file_validates_against_the_exported_json_schema(root: Path) -> None:
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    for path in sorted((root / "profiles").glob("*.toml")):
        jsonschema.validate(parse_toml(path.read_text(), path), schema)


def test_the_json_schema_rejects_what_the_loader_rejects(tmp_path: Path) -> None:
    schema = json_schema()
    bad = {
        "description": "x",
        "runtime": {"threads": 0, "matmul-precision": "fast"},
        "freeze": {"strp": True},
    }
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(bad))
    assert len(errors) >= 3


def test_profiles_schema_prints_the_json_schema(root: Path) -> None:
    proc = run_builder("--root", root, "profiles", "--schema")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == json_schema()


def test_the_readme_profile_reference_is_the_generated_table(root: Path) -> None:
    readme = (root / "README.md").read_text()
    assert reference_markdown() in readme, "regenerate it with: python -m builder.profile"


def test_bases_are_extended_but_never_listed_or_built(root: Path) -> None:
    assert "_base" not in profile_names(root / "profiles")
    minimal = load_profile("minimal-linux-x86_64", root / "profiles")
    assert minimal.chain[-1] == "_base"
    assert minimal.freeze.strip and "torch._inductor" in minimal.freeze.excludes


def test_every_profile_has_its_size_and_file_budget_at_the_release_goal(root: Path) -> None:
    for profile in load_all(root / "profiles"):
        assert profile.bench.max_size_mb == 500, profile.name
        assert profile.bench.max_files == 1200, profile.name


@pytest.mark.parametrize("var", ["OMP_NUM_THREADS", "MKL_NUM_THREADS"])
def test_a_thread_variable_in_runtime_env_is_an_error_naming_both_keys(tmp_path: Path, var: str) -> None:
    (tmp_path / "p.toml").write_text(PROFILE + f'[runtime]\nthreads = 4\nenv = {{ {var} = "1" }}\n')
    with pytest.raises(ProfileError) as err:
        load_profile("p", tmp_path)
    assert f"runtime.env.{var}" in err.value.one_line() and "runtime.threads" in err.value.one_line()


@pytest.mark.parametrize(
    ("section", "text", "expected"),
    [
        ("runtime", "threads = 100000", "threads' must be a whole number from 1 to 1024"),
        ("runtime", "interop-threads = 1000000000", "interop-threads' must be a whole number from 1 to 1024"),
        ("bench", "max-size-mb = inf", "max-size-mb' must be a positive finite number"),
        ("bench", "max-size-mb = nan", "max-size-mb' must be a positive finite number"),
        ("runtime", 'env = { "A=B" = "1" }', "runtime.env' must be a table of environment variables"),
    ],
)
def test_absurd_values_are_refused_with_the_key(
    tmp_path: Path, section: str, text: str, expected: str
) -> None:
    (tmp_path / "p.toml").write_text(PROFILE + f"[{section}]\n{text}\n")
    with pytest.raises(ProfileError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        load_profile("p", tmp_path)


def test_a_python_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    (tmp_path / "p.toml").write_text(PROFILE.replace('"3.11"', '"3.99"'))
    with pytest.raises(ProfileError, match=r"target\.python"):
        load_profile("p", tmp_path)


def test_a_profile_name_that_is_a_path_is_refused_in_one_line(root: Path) -> None:
    proc = run_builder("--root", root, "lock", "--check", "--profile", "../outside")
    assert_one_line_error(proc, 2, "is not a name")


def test_every_key_has_a_description_and_a_known_merge_rule() -> None:
    for key in KEYS:
        assert key.doc and key.merge in {"replace", "add", "update", "requirements", "excludes"}, key.dotted


def test_the_schema_module_prints_the_reference(root: Path) -> None:
    import subprocess

    proc = subprocess.run(
        [sys.executable, "-m", "builder.profile"], capture_output=True, text=True, cwd=root, check=True
    )
    assert proc.stdout == reference_markdown()
