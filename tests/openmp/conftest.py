"""Fixtures for the OpenMP tests: a tiny real ELF tree built with gcc, file snapshots."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "openmp"


def _builder():
    spec = importlib.util.spec_from_file_location("make_elf_tree", FIXTURES / "make_elf_tree.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def elf_tree(tmp_path: Path) -> Path:
    if not sys.platform.startswith("linux"):
        pytest.fail("the ELF fixture tree needs gcc on Linux")
    return _builder().build(tmp_path / "tree")


@pytest.fixture
def lean_elf_tree(tmp_path: Path) -> Path:
    return _builder().build(tmp_path / "lean", lean_primary=True)


@pytest.fixture(name="snapshot")
def snapshot_fixture():
    return snapshot


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under root with what a change would alter: type, link text, content hash, mtime."""
    out = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            p = Path(dirpath) / name
            st = p.lstat()
            if p.is_symlink():
                out[str(p)] = ("link", os.readlink(p), st.st_mtime_ns)
            else:
                out[str(p)] = ("file", hashlib.sha256(p.read_bytes()).hexdigest(), st.st_mtime_ns, st.st_size)
    return out
