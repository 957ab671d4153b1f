"""The minimum-macOS reader on the real macOS wheels the mac targets lock (installed here with uv's
--python-platform, never run): what the check stage holds a mac bundle to.

Slow: a few hundred MB from PyPI the first time, from uv's cache after.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from builder.artifact import macos
from builder.openmp.frozen import plan_relinks
from builder.targets import TARGETS
from builder.tools import uv

pytestmark = pytest.mark.slow


def install(target: Path, name: str, python: str, *requirements: str) -> Path:
    t = TARGETS[name]
    uv.run(
        ["pip", "install", "--quiet", "--python-platform", t.uv_platform, "--python-version", python,
         "--only-binary", ":all:", "--target", str(target), *requirements],
        env=t.resolver_env(),
    )  # fmt: skip
    return target


def slices(folder: Path) -> Counter[tuple[str, str | None, str | None]]:
    return Counter(
        (s.arch, macos.show(s.minos) if s.minos else None, s.command)
        for path in macos.macho_files(folder)
        for s in macos.read_slices(path)
    )


def test_mac_arm_torch_needs_the_targets_14_0_and_a_lower_minimum_fails(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    root = install(tmp_path_factory.mktemp("mac-arm"), "mac-arm", "3.11", "torch==2.13.0", "scikit-learn")
    torch = slices(root / "torch")
    assert set(torch) <= {("arm64", v, "build_version") for v in ("11.0", "12.0", "13.0", "14.0")}
    assert torch[("arm64", "14.0", "build_version")] > 0  # torch's own libraries: the target's 14.0
    assert macos.min_version_problems(root / "torch", TARGETS["mac-arm"].macos_min or "") == []
    too_new = macos.min_version_problems(root / "torch", "13.0")
    assert any(p.startswith("lib/libtorch_cpu.dylib (arm64) needs macOS 14.0") for p in too_new), too_new[:5]
    assert macos.unsigned(root / "torch") == []  # arm64: the linker signs every image
    # torch and scikit-learn each ship their own LLVM libomp (different builds): the venv fix must
    # make one a link before the freeze; the frozen-folder pass only merges byte-identical copies.
    assert plan_relinks(root) == (("sklearn/.dylibs/libomp.dylib", "torch/lib/libomp.dylib"), ())


def test_mac_intel_torch_2_2_2_fits_the_targets_11_0_with_legacy_load_commands(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    root = install(tmp_path_factory.mktemp("mac-intel"), "mac-intel", "3.10", "torch==2.2.2", "numpy<2")
    torch = slices(root / "torch") + slices(root / "functorch")
    assert {(arch, command) for arch, _, command in torch} == {("x86_64", "version_min")}  # pre-10.14 SDK
    assert macos.min_version_problems(root / "torch", TARGETS["mac-intel"].macos_min or "") == []
    assert macos.min_version_problems(root / "functorch", "10.13") == [
        ".dylibs/libiomp5.dylib (x86_64) needs macOS 10.13.6, newer than the declared minimum 10.13"
    ]
    assert macos.unsigned(root / "torch")  # x86_64 wheels come unsigned: PyInstaller signs them
