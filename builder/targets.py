"""The platforms runtime-builder can lock for, and which one this host is."""

from __future__ import annotations

import platform
import sys
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Target:
    name: str
    uv_platform: str  # what `uv pip compile --python-platform` takes
    sys_platform: str  # sys.platform on the target
    machines: tuple[str, ...]  # platform.machine() spellings on the target
    runner: str  # GitHub Actions runner that builds it natively
    description: str
    # Oldest macOS the runtime supports; uv picks wheels for it via MACOSX_DEPLOYMENT_TARGET.
    macos_min: str | None = None

    def resolver_env(self) -> dict[str, str]:
        return {"MACOSX_DEPLOYMENT_TARGET": self.macos_min} if self.macos_min else {}

    def is_host(self) -> bool:
        return sys.platform == self.sys_platform and platform.machine() in self.machines

    @property
    def exe_suffix(self) -> str:
        return ".exe" if self.sys_platform == "win32" else ""


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target(
            name="mac-intel",
            uv_platform="x86_64-apple-darwin",
            sys_platform="darwin",
            machines=("x86_64",),
            runner="macos-15-intel",  # GitHub retired macos-13 in December 2025
            description="Intel Mac",
            macos_min="11.0",
        ),
        Target(
            name="mac-arm",
            uv_platform="aarch64-apple-darwin",
            sys_platform="darwin",
            machines=("arm64",),
            runner="macos-14",
            description="Apple Silicon Mac",
            macos_min="14.0",  # torch >= 2.10 ships macosx_14_0_arm64 wheels only
        ),
        Target(
            name="windows-x86_64",
            uv_platform="x86_64-pc-windows-msvc",
            sys_platform="win32",
            machines=("AMD64", "x86_64"),
            runner="windows-2022",
            description="Windows x64",
        ),
        Target(
            name="linux-x86_64",
            uv_platform="x86_64-manylinux_2_28",
            sys_platform="linux",
            machines=("x86_64",),
            runner="ubuntu-24.04",
            description="Linux x86_64 (glibc 2.28+)",
        ),
    )
}


def host_target() -> Target | None:
    for target in TARGETS.values():
        if target.is_host():
            return target
    return None
