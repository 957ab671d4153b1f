"""uv's real resolver reports (tests/fixtures/uv, captured from uv pip compile) read into the package,
versions and target tag that have no wheel; `builder lock` turns them into NoWheelError (exit 4)."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.errors import NoWheelError
from builder.profile import load_profile
from builder.stages.lock import condense_uv_error
from builder.tools.uv_report import missing_wheel

REPORTS = Path(__file__).resolve().parents[1] / "fixtures" / "uv"


@pytest.mark.parametrize(
    ("report", "package", "versions", "tag", "available"),
    [
        ("no-wheel-platform-pinned", "triton", "3.0.0", "win_amd64", "triton 3.0.0 on manylinux_2_17_x86_64"),
        # two clauses (old versions lack cp311, new ones win_amd64): the last one closed the resolution
        (
            "no-wheel-platform-range",
            "triton",
            ">=2.0.0",
            "win_amd64",
            "triton 3.9.0 on manylinux_2_27_aarch64",
        ),
        ("no-wheel-sdist-only", "llvmlite", "<=0.36.0", None, None),
        # a dependency behind a marker (audio-separator's diffq): uv writes the marker in braces
        ("no-wheel-marker", "diffq", "0.2.1", "cp311", "diffq 0.2.1 on cp36m, cp37m, cp38, cp39"),
        (
            "no-wheel-transitive",
            "torch",
            ">=2.5.0",
            "macosx_13_0_x86_64",
            "torch 2.15.0 on manylinux_2_28_aarch64",
        ),
    ],
)
def test_a_real_uv_report_names_the_package_versions_and_tag_without_a_wheel(
    report: str, package: str, versions: str, tag: str | None, available: str | None
) -> None:
    found = missing_wheel((REPORTS / f"{report}.txt").read_text())
    assert found is not None
    assert (found.package, found.versions, found.tag) == (package, versions, tag)
    assert (found.available or "").startswith(available or ""), found.available
    assert (found.available is None) == (available is None)


def test_a_report_about_a_conflict_is_not_a_missing_wheel() -> None:
    text = "error: No solution found\n  cause: Because you require numpy<1 and numpy>2, we can conclude ..."
    assert missing_wheel(text) is None


@pytest.mark.parametrize("report", sorted(p.stem for p in REPORTS.glob("*.txt")))
def test_every_real_no_wheel_report_exits_4_with_a_suggestion(root: Path, report: str) -> None:
    profile = load_profile("minimal-windows-x86_64", root / "profiles")
    err = condense_uv_error((REPORTS / f"{report}.txt").read_text(), profile)
    assert isinstance(err, NoWheelError) and err.exit_code == 4
    line = err.one_line()
    assert "no wheel of" in line and "x86_64-pc-windows-msvc, Python" in line and "\n" not in line
    assert "packages.overrides" in line and "version" in line
