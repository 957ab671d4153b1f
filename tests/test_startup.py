"""`builder --help` starts without the heavy libraries that only some commands use: LIEF (a binary
parsed), cyclonedx (an SBOM written or checked). Each cost 0.1-1 s of every command's start-up."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAZY = ("lief", "cyclonedx", "packageurl")


def test_builder_help_imports_no_lazy_library() -> None:
    run = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "builder", "--help"],
        capture_output=True, text=True, cwd=ROOT, timeout=120, check=True,
    )  # fmt: skip
    imported = {line.rsplit("|", 1)[-1].strip() for line in run.stderr.splitlines() if "|" in line}
    assert "builder.artifact.sbom" in imported  # reached through the build stages, as before
    assert sorted(m for m in imported if m.split(".")[0] in LAZY) == []
