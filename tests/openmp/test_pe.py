"""PE: imports are read from a real Windows executable; Windows duplicates are audited, never fixed."""

from __future__ import annotations

import dataclasses
import importlib.util
import shutil
from pathlib import Path

import pytest

from builder.openmp import audit, plan_fix
from builder.openmp.formats import pe, sniff


@pytest.fixture
def real_exe() -> Path:
    # setuptools ships real PE launchers (cli-64.exe) on every platform.
    spec = importlib.util.find_spec("setuptools")
    assert spec and spec.origin
    return Path(spec.origin).parent / "cli-64.exe"


def test_pe_imports(real_exe: Path) -> None:
    assert sniff(real_exe) is pe.FORMAT
    (deps,) = pe.FORMAT.dependencies(real_exe)
    assert deps.format == "pe" and deps.arch == "amd64"
    assert "KERNEL32.dll" in deps.needed
    imports = pe.FORMAT.symbols(real_exe, "amd64").imports
    assert any(i.library == "KERNEL32.dll" and i.name == "CreateFileA" for i in imports)


def test_windows_duplicates_are_audit_only(real_exe: Path, tmp_path: Path) -> None:
    # Stand-ins with Windows names: the audit sees them as runtimes; the plan must not touch them.
    for rel in ("torch/lib/libiomp5md.dll", "sklearn/.libs/vcomp140.dll"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(real_exe, tmp_path / rel)
    report = audit(tmp_path)
    assert {r.family for r in report.runtimes} == {"intel", "msvc"}
    plan = plan_fix(report)
    assert plan.actions == () and len(plan.refusals) == 2  # no torch core here: no primary either
    report = dataclasses.replace(report, primary="torch/lib/libiomp5md.dll")
    plan = plan_fix(report)
    assert plan.actions == ()
    assert [r.path for r in plan.refusals] == ["sklearn/.libs/vcomp140.dll"]
    assert "audit only" in plan.refusals[0].reason and any("Windows" in n for n in plan.notes)
