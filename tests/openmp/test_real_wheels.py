"""Real wheels: CPU torch + scikit-learn on Linux (fixed and verified), Intel-Mac torch 2.2.2 audited here.

Slow: they install hundreds of MB (from uv's cache after the first run; never --no-cache).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import assert_schema

from builder.cli.openmp import openmp
from builder.errors import ForeignTargetError
from builder.log import Log
from builder.openmp import audit, plan_fix, verify
from builder.openmp.verify import openmp_packages
from builder.stages.openmp import openmp_stage
from builder.tools import uv
from builder.venvs import existing_venv_python as venv_python
from builder.wheelhouse import find_wheelhouse

pytestmark = pytest.mark.slow

LINUX_TORCH = "torch==2.13.0+cpu"


@pytest.fixture(scope="module")
def linux_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wheelhouse = find_wheelhouse(None) or find_wheelhouse(Path("/opt/wheels"))
    assert wheelhouse is not None, "a wheelhouse with the CPU torch wheel is needed (BUILDER_WHEELHOUSE)"
    venv = tmp_path_factory.mktemp("openmp") / "venv"
    uv.run(["venv", "--python", "python3.11", str(venv)])
    uv.run(
        [
            "pip",
            "install",
            "--python",
            str(venv / "bin" / "python"),
            "--find-links",
            str(wheelhouse.path),
            LINUX_TORCH,
            "scikit-learn",
            "threadpoolctl",
        ]
    )
    return venv


@pytest.fixture(scope="module")
def mac_intel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("openmp") / "mac-intel"
    uv.run(
        [
            "pip",
            "install",
            "--python-platform",
            "x86_64-apple-darwin",
            "--python-version",
            "3.10",
            "--only-binary",
            ":all:",
            "--target",
            str(target),
            "torch==2.2.2",
            "scikit-learn",
        ],
        env={"MACOSX_DEPLOYMENT_TARGET": "11.0"},
    )
    return target


def test_linux_duplicate_found_fixed_verified(linux_venv: Path) -> None:
    report = audit(linux_venv)
    sp = "lib/python3.11/site-packages/"
    assert report.primary == sp + "torch/lib/libgomp.so.1"
    dup = [r.path for r in report.duplicates]
    assert len(dup) == 1 and dup[0].startswith(sp + "scikit_learn.libs/libgomp-")
    assert openmp_packages(report) == ("torch", "sklearn")

    # Before: two runtimes in every import order, and a limit set through torch misses sklearn's.
    before = verify(venv_python(linux_venv), ("torch", "sklearn"))
    assert [len(o.runtimes) for o in before.orders] == [2, 2]
    assert all(o.torch_limit_seen is False for o in before.orders)
    assert not before.ok

    record = openmp_stage(linux_venv, Log())
    assert record["loaded_before"] == 2 and record["loaded_after"] == 1
    assert [c["path"] for c in record["changes"]] == dup
    assert os.readlink(linux_venv / dup[0]) == "../torch/lib/libgomp.so.1"
    for order in record["verify"]["orders"]:
        assert order["problems"] == [] and len(order["runtimes"]) == 1
        assert order["limit_1_seen"] == {"runtimes": [1], "torch": 1, "sklearn": 1}
        assert order["torch_limit_seen"] is True
    json.dumps(record)

    # The command: a second --fix changes nothing; --verify passes.
    result = CliRunner().invoke(openmp, [str(linux_venv), "--fix", "--verify", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert_schema(data, "openmp")
    assert data["changes"] == [] and all(not o["problems"] for o in data["verify"]["orders"])


def test_mac_intel_plan_from_linux_and_dry_run(mac_intel: Path, snapshot) -> None:
    report = audit(mac_intel)
    assert report.formats == ("macho",)
    assert report.torch_core == "torch/lib/libtorch_cpu.dylib"
    assert report.primary == "functorch/.dylibs/libiomp5.dylib"
    families = {r.path: r.family for r in report.runtimes}
    assert families["sklearn/.dylibs/libomp.dylib"] == "llvm" and families[report.primary] == "intel"
    assert report.users("sklearn/.dylibs/libomp.dylib")  # sklearn's extensions load it

    plan = plan_fix(report)
    assert plan.ok
    actions = {a.path: a for a in plan.actions}
    assert actions["sklearn/.dylibs/libomp.dylib"].link == "../../functorch/.dylibs/libiomp5.dylib"
    assert actions["sklearn/.dylibs/libomp.dylib"].symbols_checked > 0
    assert any("codesign" in n for n in plan.notes)

    before = snapshot(mac_intel)
    result = CliRunner().invoke(openmp, [str(mac_intel), "--fix", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "primary: functorch/.dylibs/libiomp5.dylib" in result.output
    assert "replace sklearn/.dylibs/libomp.dylib" in result.output
    assert snapshot(mac_intel) == before

    foreign = CliRunner().invoke(openmp, [str(mac_intel), "--verify"])
    assert isinstance(foreign.exception, ForeignTargetError)


def _fat(thin: bytes, count: int) -> bytes:
    """A universal (fat) Mach-O holding `count` copies of a thin slice, as lipo lays it out."""
    align = 12
    header = (0xCAFEBABE).to_bytes(4, "big") + count.to_bytes(4, "big")
    cputype, subtype = (int.from_bytes(thin[i : i + 4], "little") for i in (4, 8))
    offset, slices, body = 1 << align, b"", b""
    for _ in range(count):
        slices += b"".join(v.to_bytes(4, "big") for v in (cputype, subtype, offset, len(thin), align))
        pad = (-len(thin)) % (1 << align)
        body += thin + b"\0" * pad
        offset += len(thin) + pad
    head = header + slices
    return head + b"\0" * ((1 << align) - len(head)) + body


def test_fat_macho_reads_every_slice(mac_intel: Path, tmp_path: Path) -> None:
    from builder.openmp.formats import macho, sniff

    fat = tmp_path / "libomp.dylib"
    fat.write_bytes(_fat((mac_intel / "sklearn/.dylibs/libomp.dylib").read_bytes(), 2))
    assert sniff(fat) is macho.FORMAT
    slices = macho.FORMAT.dependencies(fat)
    assert [s.arch for s in slices] == ["x86_64", "x86_64"]
    assert all("/usr/lib/libSystem.B.dylib" in s.needed for s in slices)
    assert ("___kmpc_fork_call", None) in macho.FORMAT.symbols(fat, "x86_64").exports
