"""Package stage: the manifest's body, the SBOM and the dist (dist/P/ with its archive)."""

from __future__ import annotations

import json
import platform
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from builder import __version__
from builder.artifact.bundle import macos_minimum
from builder.artifact.inspect import tree_totals
from builder.artifact.manifest import PackageResult, package, packages_json, read_site_packages
from builder.artifact.sbom import make_sbom
from builder.log import Log
from builder.profile import Profile
from builder.stages.freeze import FreezeResult
from builder.stages.install import InstallResult
from builder.stages.lock import Lock
from builder.stages.trace import Trace
from builder.tools import uv
from builder.venvs import site_packages_of

SBOM_NAME = "sbom.cdx.json"
# Timings: kept out of the dist's hashed payload so two builds stay byte-identical.
VOLATILE_SELFTEST = ("torch_import_seconds",)


def target_json(profile: Profile) -> dict[str, str]:
    """The manifest's target; mac targets add `macos_min`, the oldest macOS the bundle declares
    (no .app is made, so there is no Info.plist; the check stage holds every binary to it)."""
    out = {"name": profile.target.name, "platform": profile.target.uv_platform}
    minimum = macos_minimum(profile)
    return {**out, "macos_min": minimum} if minimum else out


def manifest_body(
    profile: Profile,
    *,
    lock: Lock,
    lock_path: Path,
    inputs_hash: str,
    epoch: int,
    inst: InstallResult,
    frozen: FreezeResult,
    openmp_record: Mapping[str, Any],
    runtime_config: Mapping[str, object],
    python_version: str,
    trace: Trace | None = None,
) -> dict[str, Any]:
    """What the manifest says about the build, apart from the files (pure but for reading the venv)."""
    return {
        "profile": profile.name,
        "profile_hash": profile.lock_hash(),
        "inputs_hash": inputs_hash,
        "source_date_epoch": epoch,
        "lock": {"path": f"locks/{lock_path.name}", "sha256": lock.hash()},
        "target": target_json(profile),
        "python": python_version,
        "tools": {
            "builder": __version__,
            "uv": uv.version(),
            "pyinstaller": frozen.pyinstaller,
            "host_python": platform.python_version(),
        },
        "sources": inst.sources,
        "overrides": list(profile.packages.overrides),  # pins the profile forced over upstream ones
        "program": {"name": profile.program.name, "entry": profile.program.describe()},
        # the venv's fix, and what the freeze left: one real file per runtime, copies relinked
        "openmp": {**openmp_record, **({"frozen": frozen.openmp.to_json()} if frozen.openmp else {})},
        "runtime": dict(runtime_config),
        "freeze": asdict(profile.freeze),
        # the traced freeze: what the workload touched, and what of it PyInstaller's analysis missed
        **(
            {"trace": {**trace.summary(), "added_to_pyinstaller": dict(frozen.trace_missed)}} if trace else {}
        ),
        "packages": packages_json(read_site_packages(site_packages_of(inst.venv)), frozen.bundled),
    }


def package_stage(
    frozen: FreezeResult,
    dist: Path,
    body: dict[str, Any],
    *,
    selftest: Mapping[str, Any],
    smoke: Mapping[str, Any],
    epoch: int,
    log: Log | None = None,
    fingerprint: Mapping[str, Any] | None = None,
) -> PackageResult:
    """The dist, with MB read and written per archive on `log` while the archives are written."""
    total = tree_totals(frozen.folder)[0]
    stored_selftest = {k: v for k, v in selftest.items() if k not in VOLATILE_SELFTEST}
    return package(
        frozen.folder,
        dist,
        body,
        {
            "selftest.json": json.dumps(stored_selftest, indent=2, sort_keys=True) + "\n",
            SBOM_NAME: make_sbom(body),
        },
        archive_epoch=epoch,
        # the fingerprint holds this run's timings: a report beside the manifest, like bench.json
        reports={
            "bench.json": json.dumps(smoke, indent=2, sort_keys=True) + "\n",
            **(
                {"fingerprint.json": json.dumps(fingerprint, indent=2, sort_keys=True) + "\n"}
                if fingerprint
                else {}
            ),
        },
        progress=archive_progress(log, total) if log is not None else None,
    )


def archive_progress(log: Log, total: int) -> Callable[[str, int, int], None]:
    """A progress callback that prints, per archive, MB read of `total` and MB written (sparse)."""

    def report(name: str, read: int, written: int) -> None:
        log.progress(
            name, f"{name}: {read / 1e6:.0f} of {total / 1e6:.0f} MB read, {written / 1e6:.0f} MB written"
        )

    return report
