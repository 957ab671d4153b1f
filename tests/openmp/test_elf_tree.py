"""The whole audit -> plan -> fix on a tiny real ELF tree (built with gcc), and glibc's view of it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import assert_schema

from builder.cli.openmp import openmp
from builder.errors import CheckError, ForeignTargetError
from builder.openmp import apply_plan, audit, plan_fix

# Load both "packages" with the real dynamic loader and count the distinct OpenMP files it mapped.
MAPPED = r"""
import ctypes, os, sys
for lib in sys.argv[1:]:
    ctypes.CDLL(lib)
files = set()
for line in open("/proc/self/maps"):
    parts = line.split()
    if len(parts) >= 6 and "gomp" in parts[5]:
        files.add(parts[4])  # the inode: one per mapped file, whatever the name
print(len(files))
"""


def mapped_runtimes(tree: Path, order: list[str]) -> int:
    libs = {"torch": tree / "torch/lib/libtorch_cpu.so", "sklearn": tree / "sklearn/_ext.so"}
    out = subprocess.run(
        [sys.executable, "-c", MAPPED, *(str(libs[o]) for o in order)],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout)


def test_audit_finds_both_copies_and_the_primary(elf_tree: Path) -> None:
    report = audit(elf_tree)
    assert report.kind == "folder" and report.formats == ("elf",)
    assert [r.path for r in report.runtimes] == [
        "scikit_learn.libs/libgomp-abc12345.so.1.0.0",
        "torch/lib/libgomp.so.1",
    ]
    assert {r.family for r in report.runtimes} == {"gnu"}
    assert all(r.sha256.startswith("sha256:") and r.size > 0 for r in report.runtimes)
    assert report.torch_core == "torch/lib/libtorch_cpu.so"
    assert report.primary == "torch/lib/libgomp.so.1"
    hows = {(ld.binary, ld.how) for ld in report.loads}
    assert hows == {("sklearn/_ext.so", "rpath"), ("torch/lib/libtorch_cpu.so", "runpath")}
    json.dumps(report.to_json())


def test_fix_symlinks_and_the_loader_maps_one_copy(elf_tree: Path) -> None:
    assert mapped_runtimes(elf_tree, ["torch", "sklearn"]) == 2
    plan = plan_fix(audit(elf_tree))
    assert plan.ok and len(plan.actions) == 1
    action = plan.actions[0]
    assert action.path == "scikit_learn.libs/libgomp-abc12345.so.1.0.0"
    assert action.link == "../torch/lib/libgomp.so.1" and action.symbols_checked == 2
    changes = apply_plan(plan)
    assert [c.path for c in changes] == [action.path]
    dup = elf_tree / action.path
    assert dup.is_symlink() and os.readlink(dup) == "../torch/lib/libgomp.so.1"
    assert mapped_runtimes(elf_tree, ["torch", "sklearn"]) == 1
    assert mapped_runtimes(elf_tree, ["sklearn", "torch"]) == 1
    # Idempotent: the copy is now a name of the primary; nothing left to plan or change.
    after = audit(elf_tree)
    assert len(after.runtimes) == 1 and action.path in after.runtimes[0].names
    assert plan_fix(after).actions == ()
    assert apply_plan(plan) == ()
    json.dumps(plan.to_json()), json.dumps([c.to_json() for c in changes])


def test_stale_plan_changes_nothing(elf_tree: Path, snapshot) -> None:
    plan = plan_fix(audit(elf_tree))
    (elf_tree / plan.actions[0].path).write_bytes(b"\x7fELF changed")
    before = snapshot(elf_tree)
    with pytest.raises(CheckError, match="changed since the plan"):
        apply_plan(plan)
    assert snapshot(elf_tree) == before


def test_missing_symbol_refuses_with_reason(lean_elf_tree: Path, snapshot) -> None:
    plan = plan_fix(audit(lean_elf_tree))
    assert not plan.ok and plan.actions == ()
    reason = plan.refusals[0].reason
    assert "GOMP_parallel@GOMP_4.0" in reason and "version GOMP_4.0" in reason and "sklearn/_ext.so" in reason
    before = snapshot(lean_elf_tree)
    with pytest.raises(CheckError, match="refused"):
        apply_plan(plan)
    assert snapshot(lean_elf_tree) == before


def test_cli_dry_run_touches_nothing_and_fix_is_idempotent(elf_tree: Path, snapshot) -> None:
    runner = CliRunner()
    before = snapshot(elf_tree)
    result = runner.invoke(openmp, [str(elf_tree), "--fix", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "dry run" in result.output and "by symlink -> ../torch/lib/libgomp.so.1" in result.output
    assert snapshot(elf_tree) == before
    result = runner.invoke(openmp, [str(elf_tree), "--fix", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert_schema(data, "openmp")
    assert len(data["changes"]) == 1 and len(data["after"]["runtimes"]) == 1
    again = json.loads(runner.invoke(openmp, [str(elf_tree), "--fix", "--json"]).output)
    assert_schema(again, "openmp")
    assert again["changes"] == [] and again["plan"]["actions"] == []


def test_cli_verify_needs_a_venv(elf_tree: Path) -> None:
    result = CliRunner().invoke(openmp, [str(elf_tree), "--verify"])
    assert isinstance(result.exception, ForeignTargetError)
