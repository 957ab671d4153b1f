"""Shared fixtures. Slow tests (real uv resolves, real builds) always run last."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.get_closest_marker("slow") is not None)


@pytest.fixture
def root() -> Path:
    return ROOT


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project of the repository's profiles and locks, in a folder a test may change."""
    shutil.copytree(ROOT / "profiles", tmp_path / "profiles")
    shutil.copytree(ROOT / "locks", tmp_path / "locks")
    return tmp_path


@pytest.fixture
def profiles(project: Path) -> Path:
    return project / "profiles"


@pytest.fixture
def entry_project(tmp_path: Path) -> Path:
    """A project of the repository's profiles and its runtime_entry sources, to change and rehash."""
    shutil.copytree(
        ROOT / "runtime_entry", tmp_path / "runtime_entry", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copytree(ROOT / "profiles", tmp_path / "profiles")
    return tmp_path


@pytest.fixture(scope="session")
def frozen_minimal(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """`builder build` of minimal-linux-x86_64, once per session: its --json result, its log and the
    out folder. The one freeze of stems the suite makes; every test of a frozen dist shares it."""
    import json

    from helpers import run_builder

    out = tmp_path_factory.mktemp("dist")
    proc = run_builder("build", "--profile", "minimal-linux-x86_64", "--out", out, "--json", "--force")
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    result["_stderr"] = proc.stderr
    result["_out"] = out
    return result
