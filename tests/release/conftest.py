"""Fixtures for the release tests: a tiny dist per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from release.helpers import make_dist


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    return make_dist(tmp_path)
