"""Profiles: the shipped eight load, `extends` merges, and every kind of bad input is one clear line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers import assert_one_line_error, assert_schema, run_builder

from builder.errors import ProfileError
from builder.profile import load_all, load_profile, merge

PROFILE = """\
description = "test"
[target]
name = "linux-x86_64"
python = "3.11"
[packages]
requirements = ["numpy"]
"""


@pytest.fixture
def tmp_root(tmp_path: Path, root: Path) -> Path:
    (tmp_path / "profiles").mkdir()
    (tmp_path / "locks").mkdir()
    shutil.copytree(root / "runtime_entry", tmp_path / "runtime_entry")
    return tmp_path


def write(root: Path, name: str, text: str) -> Path:
    path = root / "profiles" / f"{name}.toml"
    path.write_text(text)
    return path


def test_the_eight_shipped_profiles_load(root: Path) -> None:
    profiles = {p.name: p for p in load_all(root / "profiles")}
    expected = {
        f"{kind}-{t}"
        for kind in ("minimal", "extended")
        for t in ("mac-intel", "mac-arm", "windows-x86_64", "linux-x86_64")
    }
    assert set(profiles) == expected
    mi = profiles["minimal-mac-intel"]
    assert mi.python == "3.10" and mi.target.uv_platform == "x86_64-apple-darwin"
    assert {"torch==2.2.2", "torchaudio==2.2.2", "numpy<2"} <= set(mi.requirements)


def test_extended_adds_to_minimal_and_keeps_its_settings(root: Path) -> None:
    minimal = load_profile("minimal-mac-intel", root / "profiles")
    extended = load_profile("extended-mac-intel", root / "profiles")
    assert set(minimal.requirements) < set(extended.requirements)
    assert {"onnxruntime", "diffq", "torchvision==0.17.2"} <= set(extended.requirements)
    assert extended.runtime == minimal.runtime and extended.python == "3.10"
    assert extended.chain == ("extended-mac-intel", "minimal-mac-intel", "_base")


def test_packages_without_a_wheel_are_excluded_visibly(root: Path) -> None:
    ext = load_profile("extended-linux-x86_64", root / "profiles")
    assert "diffq" in ext.excluded and "3.11" in ext.excluded["diffq"]
    assert "torchaudio" in ext.excluded  # inherited from minimal
    proc = run_builder("profiles", "--json")
    assert proc.returncode == 0, proc.stderr
    document = json.loads(proc.stdout)
    assert_schema(document, "profiles")
    rows = {r["name"]: r for r in document["profiles"]}
    assert "diffq" in rows["extended-linux-x86_64"]["excluded"]
    assert rows["minimal-linux-x86_64"]["packages"] == 14


def test_child_requirement_replaces_the_parents_pin() -> None:
    merged = merge(
        {"packages": {"requirements": ["torch==2.2.2", "numpy<2"]}},
        {"packages": {"requirements": ["torch==2.3.0", "onnx"]}},
    )
    assert merged["packages"]["requirements"] == ["numpy<2", "torch==2.3.0", "onnx"]


def test_lock_hash_ignores_runtime_settings_but_not_requirements(tmp_root: Path) -> None:
    write(tmp_root, "a", PROFILE)
    base = load_profile("a", tmp_root / "profiles").lock_hash()
    write(tmp_root, "a", PROFILE + "[runtime]\nthreads = 3\n")
    assert load_profile("a", tmp_root / "profiles").lock_hash() == base
    write(tmp_root, "a", PROFILE.replace('"numpy"', '"numpy<2"'))
    assert load_profile("a", tmp_root / "profiles").lock_hash() != base


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ('description = "x"\n[target\nname = 1', ["invalid TOML", "line 2"]),
        (PROFILE + "[runtime]\nthread = 2\n", ["unknown key 'runtime.thread'", "did you mean 'threads'"]),
        (PROFILE + "[runtim]\nthreads = 2\n", ["unknown key 'runtim'", "did you mean 'runtime'"]),
        (
            PROFILE + '[runtime]\nthreads = "four"\n',
            ["'runtime.threads' must be a whole number from 1 to 1024", "'four'"],
        ),
        (PROFILE.replace('["numpy"]', '"numpy"'), ["'packages.requirements' must be a list of strings"]),
        (
            PROFILE.replace("linux-x86_64", "linux-x86"),
            ["unknown target 'linux-x86'", "did you mean 'linux-x86_64'"],
        ),
        (PROFILE.replace('"numpy"', '"numpy>=>2"'), ["invalid requirement 'numpy>=>2'"]),
        (PROFILE + 'extends = "nope"\n', ["key 'extends'", "no profile 'nope'"]),
        (PROFILE.replace('description = "test"\n', ""), ["missing required key 'description'"]),
    ],
    ids=[
        "toml",
        "unknown-key",
        "unknown-section",
        "type",
        "list-type",
        "target",
        "requirement",
        "missing-extends",
        "missing-key",
    ],
)
def test_bad_profile_is_one_line_with_exit_2(tmp_root: Path, text: str, needles: list[str]) -> None:
    # extends must be top-level: put it before any table for the missing-extends case
    if text.endswith('extends = "nope"\n'):
        text = 'extends = "nope"\n' + text.removesuffix('extends = "nope"\n')
    path = write(tmp_root, "bad", text)
    proc = run_builder("profiles", root=tmp_root)
    line = assert_one_line_error(proc, ProfileError.exit_code, *needles)
    assert str(path) in line


def test_circular_extends_names_the_cycle(tmp_root: Path) -> None:
    write(tmp_root, "a", 'extends = "b"\n' + PROFILE)
    write(tmp_root, "b", 'extends = "a"\n' + PROFILE)
    proc = run_builder("profiles", root=tmp_root)
    assert_one_line_error(proc, ProfileError.exit_code, "circular extends", "a -> b -> a")


def test_unknown_profile_suggests_a_close_name(root: Path) -> None:
    proc = run_builder("lock", "--profile", "minimal-linux-x86", "--check")
    assert_one_line_error(
        proc, ProfileError.exit_code, "no profile 'minimal-linux-x86'", "minimal-linux-x86_64"
    )
