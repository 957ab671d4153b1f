"""Profiles, locks, manifests and RECORDs are bounded in size and shape before they are parsed.

The issue's example: an 80 KB profile of one dotted key took 73 s of CPU in tomllib before its
one-line error. It must now fail in well under a second, and so must every other shape that
makes a parser slow or recurse; and no file builder itself writes or ships may come near a bound.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from release.helpers import make_dist

from builder.artifact.manifest import MANIFEST, SUMS, read_manifest, read_record
from builder.artifact.verify import VerifyReport, verify_dist
from builder.bounds import (
    MAX_DEPTH,
    MAX_KEY_PARTS,
    MAX_LOCK_BYTES,
    MAX_MANIFEST_BYTES,
    MAX_PROFILE_BYTES,
    MAX_RECORD_BYTES,
    json_depth,
    toml_shape,
)
from builder.errors import LimitError
from builder.profile import load_profile
from builder.stages.lock import read_lock

NAME = "minimal-linux-x86_64"
ROOT = Path(__file__).resolve().parents[2]


def _cpu(fn: object) -> tuple[float, BaseException | None]:
    start = time.process_time()
    try:
        fn()  # type: ignore[operator]
    except Exception as exc:
        return time.process_time() - start, exc
    return time.process_time() - start, None


def test_the_issues_80_kb_dotted_key_fails_in_under_a_second(profiles: Path) -> None:
    (profiles / f"{NAME}.toml").write_text("a" + ".a" * 40000 + " = 1\n")  # 80 KB, one key
    seconds, exc = _cpu(lambda: load_profile(NAME, profiles))
    assert isinstance(exc, LimitError) and seconds < 1.0, (seconds, exc)
    assert "\n" not in exc.one_line() and f"{NAME}.toml" in exc.one_line()


def test_a_dotted_key_under_the_size_bound_is_refused_by_its_shape_in_under_a_second(profiles: Path) -> None:
    # 60 KB: under the size bound, so only the shape check stands between it and ~40 s of tomllib
    (profiles / f"{NAME}.toml").write_text('description = "x"\n' + "a" + ".a" * 30000 + " = 1\n")
    seconds, exc = _cpu(lambda: load_profile(NAME, profiles))
    assert isinstance(exc, LimitError) and seconds < 1.0, (seconds, exc)
    assert "line 2" in str(exc) and f"more than {MAX_KEY_PARTS} parts" in str(exc)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("x = " + "[" * 2000 + "]" * 2000, "nested more than"),
        ("x = " + "{a = " * 2000 + "1" + "}" * 2000, "nested more than"),
        ("description = 1" + "0" * 5000, "digits"),
        ("#" * (MAX_PROFILE_BYTES + 1), "over 64 KB"),
    ],
    ids=["arrays", "inline tables", "digits", "size"],
)
def test_pathological_profiles_are_one_line_limit_errors(profiles: Path, text: str, needle: str) -> None:
    (profiles / f"{NAME}.toml").write_text(text)
    seconds, exc = _cpu(lambda: load_profile(NAME, profiles))
    assert isinstance(exc, LimitError) and needle in str(exc) and seconds < 1.0, (seconds, exc)


@pytest.mark.parametrize(
    ("text", "shape"),
    [
        ("[a.b]\nx = 1.5\n", (1, 2)),  # a float's dot is not a key's
        ("[[a.b.c]]\n", (2, 3)),  # an array of tables: two brackets, three parts
        ('x = "a.b.c.d.e [[[["\n', (0, 1)),  # dots and brackets in a string count for nothing
        ("x = 'a.b.c' # d.e.f.g [[\n", (0, 1)),  # nor in a literal string or a comment
        ('x = """\na.b.c.d\n[[[\n"""\ny.z = 1\n', (0, 2)),  # nor in a multi-line string
        ("x = [\n  1.5,\n  2.5,\n]\n", (1, 1)),  # a multi-line array's lines are not keys
        ("x = [{a.b.c = 1}, {d = 2}]\n", (2, 3)),  # inline tables' keys are keys
        ('"q.q".b.c = 1\n', (0, 3)),  # a quoted part is one part
    ],
)
def test_toml_shape_counts_keys_and_nesting_outside_strings(text: str, shape: tuple[int, int]) -> None:
    assert toml_shape(text)[:2] == shape


def test_every_shipped_profile_and_template_is_far_inside_the_bounds() -> None:
    files = [*(ROOT / "profiles").glob("*.toml"), *(ROOT / "builder").rglob("*.toml")]
    assert len(files) >= 9
    for path in files:
        text = path.read_text(encoding="utf-8")
        depth, parts, _ = toml_shape(text)
        assert len(text.encode()) * 8 < MAX_PROFILE_BYTES and depth * 4 <= MAX_DEPTH, path
        assert parts * 4 <= MAX_KEY_PARTS, path
    for lock in (ROOT / "locks").glob("*.lock"):
        assert lock.stat().st_size * 16 < MAX_LOCK_BYTES, lock


def test_json_depth_skips_strings_and_counts_real_nesting() -> None:
    assert json_depth('{"a": [1, {"b": "[[[[\\"]]"}]}')[0] == 3
    assert json_depth("[" * 100 + "]" * 100)[0] == 100


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested more than"),
        ('{"schema": 1, "x": ' + "1" * 5000 + "}", "digits"),
    ],
    ids=["deep", "digits"],
)
def test_pathological_manifests_are_limit_errors(tmp_path: Path, data: str, needle: str) -> None:
    dist = make_dist(tmp_path)
    (dist / MANIFEST).write_text(data)
    seconds, exc = _cpu(lambda: read_manifest(dist))
    assert isinstance(exc, LimitError) and needle in str(exc) and seconds < 1.0, (seconds, exc)
    assert MANIFEST in str(exc)


def test_a_real_manifest_is_read_as_before(tmp_path: Path) -> None:
    dist = make_dist(tmp_path)
    assert read_manifest(dist) == json.loads((dist / MANIFEST).read_text())


def test_a_lock_and_a_record_over_their_bounds_are_refused_before_reading(tmp_path: Path) -> None:
    lock, record = tmp_path / f"{NAME}.lock", tmp_path / "RECORD"
    for path, size in ((lock, MAX_LOCK_BYTES + 1), (record, MAX_RECORD_BYTES + 1)):
        with open(path, "wb") as fh:
            fh.truncate(size)  # sparse: refused from its size, never read
    for read, path in ((read_lock, lock), (read_record, record)):
        seconds, exc = _cpu(lambda: read(path))  # type: ignore[operator]  # noqa: B023
        assert isinstance(exc, LimitError) and path.name in str(exc) and seconds < 0.5, (seconds, exc)


def test_a_sha256sums_over_the_bound_is_one_difference_not_a_read(tmp_path: Path) -> None:
    dist = make_dist(tmp_path)
    with open(dist / SUMS, "wb") as fh:
        fh.truncate(MAX_MANIFEST_BYTES + 1)  # sparse: a read would take 64 MB of memory for nothing
    seconds, report = _cpu_result(lambda: verify_dist(dist))
    assert [d.path for d in report.sums] == [SUMS] and "over 65536 KB" in str(report.sums[0].found)
    assert seconds < 0.5


def _cpu_result(fn: Callable[[], VerifyReport]) -> tuple[float, VerifyReport]:
    start = time.process_time()
    result = fn()
    return time.process_time() - start, result
