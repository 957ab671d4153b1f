"""What the check stage proves about a frozen folder beyond its selftest numbers.

- The OpenMP runtime the program loaded is the one real file of its runtime in the folder
  (builder/openmp/frozen.py made it so), not a system copy or a second file of the family.
- Mac targets: no bundled binary needs a macOS newer than the profile's minimum, every Mach-O
  is signed, and on a macOS host `codesign --verify` accepts them (builder/artifact/macos.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from builder.artifact import macos
from builder.openmp.frozen import loaded_problems
from builder.openmp.pools import loaded_runtimes
from builder.profile import Profile


def macos_minimum(profile: Profile) -> str | None:
    """The oldest macOS the runtime supports: freeze.macos-min-version, else the target's."""
    if profile.target.sys_platform != "darwin":
        return None
    return profile.freeze.macos_min_version or profile.target.macos_min


def loaded_openmp(report: Mapping[str, Any]) -> list[dict[str, str]]:
    """The selftest's loaded OpenMP files as {path, family}: threadpoolctl's pools where the report
    has them, else the OS's list of mapped files (`openmp`)."""
    loaded = loaded_runtimes(report.get("threadpools", []))
    if loaded:
        return loaded
    return [{"path": str(o.get("path")), "family": str(o.get("family"))} for o in report.get("openmp", [])]


def frozen_problems(folder: Path, report: Mapping[str, Any], profile: Profile) -> list[str]:
    """Every way the frozen folder breaks the one-runtime and macOS rules (empty when it keeps them)."""
    problems = []
    loaded = loaded_openmp(report)
    # How many runtimes are loaded is compare()'s to report; here, which file the one of them is.
    if len(loaded) == 1:
        problems += loaded_problems(folder, loaded)
    if profile.target.sys_platform == "darwin":
        problems += macos.bundle_problems(folder, macos_min=macos_minimum(profile))
    return problems
