"""What `builder build` produces: the dist, read back from disk, and how the build went.

`BuildResult.to_json` is the `builder build --json` document (builder/schemas/build.schema.json).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.artifact.manifest import SUMS, read_manifest
from builder.schemas import tagged

# What the result keeps of the program's own report (selftest.json): the proof of its settings.
SELFTEST_KEYS = ("threads", "matmul_precision", "openmp", "versions")


@dataclass(frozen=True, kw_only=True)
class DistSummary:
    """Size, file count and hashes of a packaged dist."""

    size_bytes: int
    files: int
    sha256: str  # of SHA256SUMS, which covers every file
    archive: Path | None
    archive_bytes: int | None
    archive_sha256: str | None
    zip: Path | None

    def to_json(self) -> dict[str, Any]:
        return {
            "size_bytes": self.size_bytes,
            "files": self.files,
            "sha256": self.sha256,
            "archive": str(self.archive) if self.archive else None,
            "archive_bytes": self.archive_bytes,
            "archive_sha256": self.archive_sha256,
            "zip": str(self.zip) if self.zip else None,
        }


def dist_summary(dist: Path) -> DistSummary:
    """Size, file count and hashes of a packaged dist, read back from disk."""
    manifest = read_manifest(dist)
    archive = dist / f"{dist.name}.tar.xz"
    sha_file = archive.with_name(archive.name + ".sha256")
    zip_path = dist / f"{dist.name}.zip"
    return DistSummary(
        size_bytes=manifest["totals"]["bytes"],
        files=manifest["totals"]["files"],
        sha256="sha256:" + hashlib.sha256((dist / SUMS).read_bytes()).hexdigest(),
        archive=archive if archive.is_file() else None,
        archive_bytes=archive.stat().st_size if archive.is_file() else None,
        archive_sha256="sha256:" + sha_file.read_text().split()[0] if sha_file.is_file() else None,
        zip=zip_path if zip_path.is_file() else None,
    )


@dataclass(frozen=True, kw_only=True)
class BuildResult:
    profile: str
    target: str
    artifact: Path  # the dist folder
    program: Path  # the executable inside it
    manifest: Path
    dist: DistSummary
    up_to_date: bool  # nothing was frozen: the dist was built from the same inputs
    rechecked: bool = False  # up to date, but [bench] changed: checked and smoke-benched again
    venv_reused: bool
    sources: Mapping[str, str]  # package -> where it came from (the special ones: a wheelhouse)
    stages_seconds: Mapping[str, float]
    # the program's report (the runtime's contract: selftest or probe), SELFTEST_KEYS of it
    selftest: Mapping[str, Any]
    # what threadpoolctl saw loaded: the proof of one OpenMP pool at the profile's threads
    threadpools: tuple[Mapping[str, Any], ...]

    def to_json(self) -> dict[str, Any]:
        return tagged(
            "build",
            {
                "profile": self.profile,
                "target": self.target,
                "artifact": str(self.artifact),
                "program": str(self.program),
                "manifest": str(self.manifest),
                **self.dist.to_json(),
                "up_to_date": self.up_to_date,
                "rechecked": self.rechecked,
                "venv_reused": self.venv_reused,
                "sources": dict(self.sources),
                "stages_seconds": dict(self.stages_seconds),
                "selftest": {**self.selftest, "threadpools": list(self.threadpools)},
            },
        )
