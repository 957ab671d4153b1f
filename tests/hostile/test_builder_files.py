"""Every file builder reads, fed hostile bytes: one `error:` line naming the file, a documented code.

In-process fuzzing (seeded, hundreds of cases, a second or two) proves that each reader raises
only its own BuilderError; the CLI cases prove the line and the exit code users see. Special
files (a FIFO, a device, a folder) are refused without a blocking read: every CLI run has a
timeout, so a read that blocks fails the test instead of hanging it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import assert_one_line_error, run_builder
from release.helpers import make_dist

from builder.artifact.inspect import inspect_path
from builder.artifact.manifest import MANIFEST, SUMS, read_manifest, read_site_packages
from builder.artifact.verify import verify_dist
from builder.errors import BuilderError, InputError, LimitError, ProfileError, StaleLockError
from builder.profile import load_profile
from builder.stages.lock import check_lock, read_lock

from .fuzz import mutations

NAME = "minimal-linux-x86_64"


def cli(*args: str | Path, capsys: pytest.CaptureFixture[str]) -> subprocess.CompletedProcess[str]:
    """builder's real entry point (`main`, where errors become lines and codes), in this process:
    a subprocess costs seconds of imports per case. Special files use `run_builder` instead,
    where a blocking read would hit the timeout rather than hang the suite."""
    from builder.cli import main

    capsys.readouterr()
    try:
        main([str(a) for a in args])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    else:  # main always exits
        raise AssertionError("builder.cli.main returned")
    out = capsys.readouterr()
    return subprocess.CompletedProcess(list(args), code, out.out, out.err)


POSIX_ONLY = pytest.mark.skipif(sys.platform == "win32", reason="os.mkfifo is POSIX-only")
CASES = 120  # per reader; each case is a file write and a parse


def _one_line(exc: BuilderError, needle: str) -> None:
    text = f"error: {exc.one_line()}"
    assert "\n" not in text and needle in text, text


def _fuzz(
    valid: bytes,
    target: Path,
    read: Callable[[], object],
    allowed: type[BuilderError] | tuple[type[BuilderError], ...],
    seed: int,
) -> int:
    """Write each mutation to `target` and read it: it parses or raises `allowed`, never anything else."""
    refused = 0
    for label, data in mutations(valid, seed, CASES):
        target.write_bytes(data)
        try:
            read()
        except allowed as exc:
            _one_line(exc, target.name)
            refused += 1
        except Exception as exc:  # the point of the test: name the case that escaped
            raise AssertionError(f"{label}: {type(exc).__name__}: {exc}") from exc
    return refused


def _site_packages(tmp: Path) -> Path:
    site = tmp / "site"
    info = site / "pkg-1.0.dist-info"
    info.mkdir(parents=True)
    (site / "pkg").mkdir()
    (site / "pkg" / "__init__.py").write_text("x = 1\n")
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pkg\nVersion: 1.0\n")
    (info / "RECORD").write_text("pkg/__init__.py,sha256=abc,6\npkg-1.0.dist-info/RECORD,,\n")
    return site


# -- in-process fuzzing, one test per reader ---------------------------------------------------


def test_fuzzed_manifests_are_refused_by_every_reader_in_one_line(tmp_path: Path) -> None:
    dist = make_dist(tmp_path)
    path = dist / MANIFEST
    valid = path.read_bytes()
    refused = _fuzz(
        valid, path, lambda: (read_manifest(dist), verify_dist(dist), inspect_path(dist)), InputError, 1
    )
    assert refused > CASES * 0.8  # almost every mutation is caught by the reader, not later


def test_fuzzed_records_and_metadata_are_refused_in_one_line(tmp_path: Path) -> None:
    site = _site_packages(tmp_path)
    info = site / "pkg-1.0.dist-info"
    for name, seed in (("RECORD", 2), ("METADATA", 3)):
        valid = (info / name).read_bytes()
        _fuzz(valid, info / name, lambda: read_site_packages(site), InputError, seed)
        (info / name).write_bytes(valid)
    assert read_site_packages(site)[0].files == 2  # the module and RECORD itself


def test_fuzzed_sha256sums_is_one_difference_never_an_exception(tmp_path: Path) -> None:
    dist = make_dist(tmp_path)
    valid = (dist / SUMS).read_bytes()
    for label, data in mutations(valid, 4, CASES):
        (dist / SUMS).write_bytes(data)
        report = verify_dist(dist)
        assert not report.ok or data == valid, label
    (dist / SUMS).write_bytes(b"\xff\xfe\x00 not text")
    report = verify_dist(dist)
    assert [d.path for d in report.sums] == [SUMS] and "UTF-8" in str(report.sums[0].expected)


def test_fuzzed_locks_are_stale_or_modified_never_an_exception(project: Path) -> None:
    lock = project / "locks" / f"{NAME}.lock"
    profile = load_profile(NAME, project / "profiles")
    valid = lock.read_bytes()
    refused = _fuzz(valid, lock, lambda: (read_lock(lock), check_lock(profile, lock)), StaleLockError, 5)
    assert refused >= CASES  # no mutation of a lock passes the check as fresh


def test_fuzzed_profiles_are_profile_errors_never_an_exception(project: Path) -> None:
    path = project / "profiles" / f"{NAME}.toml"
    valid = path.read_bytes()
    shapes = [b"target = 3\n", b"[target]\nname = [1]\n", b'extends = "../x"\n', b"description = 1e999\n"]
    for data in shapes:
        path.write_bytes(data)
        with pytest.raises(ProfileError) as info:
            load_profile(NAME, project / "profiles")
        _one_line(info.value, "")
    # A mutation nested past builder's bound is refused before parsing, as LimitError (exit 24).
    _fuzz(valid, path, lambda: load_profile(NAME, project / "profiles"), (ProfileError, LimitError), 6)


# -- the CLI: one line, the documented code ----------------------------------------------------


def _manifest_case(content: bytes | str | Callable[[Path], None]) -> Callable[[Path], list[str | Path]]:
    def setup(tmp: Path) -> list[str | Path]:
        dist = make_dist(tmp)
        path = dist / MANIFEST
        if callable(content):
            path.unlink()
            content(path)
        else:
            path.write_bytes(content.encode() if isinstance(content, str) else content)
        return ["verify", dist]

    return setup


_VALID = json.dumps(
    {
        "files": [{"path": "stems/stems", "size": 1, "sha256": "sha256:" + "0" * 64}],
        "totals": {"files": 1, "bytes": 1},
    }
)


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _folder(path: Path) -> None:
    path.mkdir()


MANIFEST_CASES = {
    "random bytes": (b"\x93\x11\xfe\xff" * 40, "not UTF-8"),
    "NUL bytes": (b'{"files": [\0]}', "invalid JSON"),
    "truncated JSON": ('{"files": [{"path": "stems/stems", "si', "invalid JSON"),
    "a JSON list": ("[1, 2, 3]", "expected a JSON object"),
    "files not a list": ('{"files": {"a": 1}}', "files: expected a list"),
    "a path outside the dist": (
        _VALID.replace("stems/stems", "../../etc/passwd"),
        "files[0].path: expected a relative path inside the dist",
    ),
    "an absolute path": (_VALID.replace("stems/stems", "/etc/passwd"), "files[0].path"),
    "a short sha256": (_VALID.replace("0" * 64, "0" * 10), "files[0].sha256"),
    "a negative size": (_VALID.replace('"size": 1', '"size": -1'), "files[0].size"),
    "no totals": (_VALID.replace(', "totals": {"files": 1, "bytes": 1}', ""), "totals"),
    "reports not a list": (_VALID[:-1] + ', "reports": 7}', "reports"),
    "profile not a string": (_VALID[:-1] + ', "profile": ["x"]}', "profile"),
}


@pytest.mark.parametrize("case", sorted(MANIFEST_CASES))
def test_verify_refuses_a_damaged_manifest_in_one_line(
    tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    content, needle = MANIFEST_CASES[case]
    args = _manifest_case(content)(tmp_path)
    proc = cli(*args, capsys=capsys)
    assert_one_line_error(proc, InputError.exit_code, MANIFEST, needle)


@POSIX_ONLY
@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_a_manifest_that_is_a_special_file_is_refused_at_once(tmp_path: Path, kind: str) -> None:
    args = _manifest_case(_fifo if kind == "fifo" else _folder)(tmp_path)
    proc = run_builder(*args, timeout=60)
    assert_one_line_error(proc, InputError.exit_code, MANIFEST, "not a regular file")


@pytest.mark.parametrize("command", ["inspect", "diff"])
def test_inspect_and_diff_refuse_a_damaged_manifest_in_one_line(
    tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    dist = make_dist(tmp_path)
    (dist / MANIFEST).write_text('{"files": "everything"}')
    args = [dist] if command == "inspect" else [dist, dist]
    proc = cli(command, *args, capsys=capsys)
    assert_one_line_error(proc, InputError.exit_code, MANIFEST, "files: expected a list")


@POSIX_ONLY
@pytest.mark.parametrize("special", ["fifo", "/dev/zero"])
def test_verify_refuses_a_special_file_as_the_dist(tmp_path: Path, special: str) -> None:
    target: Path = Path(special)
    if special == "fifo":
        target = tmp_path / "dist.fifo"
        os.mkfifo(target)
    proc = run_builder("verify", target, timeout=60)
    assert_one_line_error(proc, InputError.exit_code, str(target), "not a folder")


@POSIX_ONLY
def test_verify_reports_a_fifo_in_place_of_a_file_without_reading_it(tmp_path: Path) -> None:
    dist = make_dist(tmp_path)
    victim = dist / "stems" / "_internal" / "other.so"
    victim.unlink()
    os.mkfifo(victim)
    proc = run_builder("verify", dist, timeout=60)
    assert proc.returncode == 8 and "Traceback" not in proc.stderr, proc.stderr
    assert "stems/_internal/other.so" in proc.stdout + proc.stderr
    assert "not a regular file" in proc.stdout + proc.stderr


def test_verify_reports_sha256sums_of_random_bytes_as_one_difference(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dist = make_dist(tmp_path)
    (dist / SUMS).write_bytes(os.urandom(300) + b"\0")
    proc = cli("verify", dist, capsys=capsys)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 8 and "Traceback" not in out, out
    assert [ln for ln in out.splitlines() if ln.startswith(SUMS)] == [
        f"{SUMS}  {SUMS}  (UTF-8 lines 'HEX  PATH' -> "
        + next(ln for ln in out.splitlines() if ln.startswith(SUMS)).split("-> ")[1]
    ]


RECORD_CASES = {
    "random bytes": (b"\xc3\x28\xa0\xa1" * 30, "not UTF-8"),
    "a NUL byte": (b"pkg/__init__.py,sha256=abc,6\n\0,,\n", "NUL"),
    "two fields": (b"pkg/__init__.py,6\n", "expected 3 fields"),
    "a huge field": (b'"' + b"a" * 200_000 + b'",,\n', "RECORD"),
}


@pytest.mark.parametrize("case", sorted(RECORD_CASES))
def test_inspect_refuses_a_damaged_record_in_one_line(
    tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    data, needle = RECORD_CASES[case]
    site = _site_packages(tmp_path)
    (site / "pkg-1.0.dist-info" / "RECORD").write_bytes(data)
    proc = cli("inspect", site, capsys=capsys)
    assert_one_line_error(proc, InputError.exit_code, "RECORD", needle)


def test_inspect_refuses_metadata_that_is_not_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = _site_packages(tmp_path)
    (site / "pkg-1.0.dist-info" / "METADATA").write_bytes(b"Name: \xff\xfe\0")
    proc = cli("inspect", site, capsys=capsys)
    assert_one_line_error(proc, InputError.exit_code, "METADATA", "not UTF-8")


LOCK_CASES = {
    "NUL in the body": (lambda t: t.replace(b"\ntqdm==", b"\n\0tqdm=="), 12, "not a lock"),
    "truncated": (lambda t: t[: len(t) // 2], 12, "modified"),
    "header only": (
        lambda t: b"".join(ln for ln in t.splitlines(keepends=True) if ln.startswith(b"#")),
        12,
        "modified",
    ),
    "not UTF-8": (lambda t: t.replace(b"tqdm", b"tq\xffdm", 1), 12, "not UTF-8"),
}


@pytest.mark.parametrize("case", sorted(LOCK_CASES))
def test_lock_check_refuses_a_damaged_lock_in_one_line(
    project: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    change, code, needle = LOCK_CASES[case]
    lock = project / "locks" / f"{NAME}.lock"
    lock.write_bytes(change(lock.read_bytes()))
    proc = cli("--root", project, "lock", "--check", "--profile", NAME, capsys=capsys)
    assert_one_line_error(proc, code, lock.name, needle)


@POSIX_ONLY
@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_a_lock_or_profile_that_is_a_special_file_is_refused_at_once(project: Path, kind: str) -> None:
    lock = project / "locks" / f"{NAME}.lock"
    lock.unlink()
    os.mkfifo(lock) if kind == "fifo" else lock.mkdir()
    proc = run_builder("--root", project, "lock", "--check", "--profile", NAME, timeout=60)
    assert_one_line_error(proc, 9, lock.name)
    profile = project / "profiles" / f"{NAME}.toml"
    profile.unlink()
    os.mkfifo(profile) if kind == "fifo" else profile.mkdir()
    proc = run_builder("--root", project, "lock", "--check", "--profile", NAME, timeout=60)
    assert_one_line_error(proc, ProfileError.exit_code, NAME)


PROFILE_CASES = {
    "random bytes": (b"\xfa\xfb\xfc" * 20, "cannot read"),
    "a NUL byte": (b'description = "a\0b"\n', NAME),
    "a wrong shape": (b"target = 3\n", "target"),
    "threads of 10**9": (None, "runtime.threads"),
}


@pytest.mark.parametrize("case", sorted(PROFILE_CASES))
def test_a_damaged_profile_is_one_line_exit_2(
    project: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    data, needle = PROFILE_CASES[case]
    path = project / "profiles" / f"{NAME}.toml"
    if data is None:
        data = path.read_bytes().replace(b'threads = "auto"', b"threads = 1000000000", 1)
    path.write_bytes(data)
    proc = cli("--root", project, "lock", "--check", "--profile", NAME, capsys=capsys)
    assert_one_line_error(proc, ProfileError.exit_code, needle)


def test_build_refuses_an_out_folder_it_cannot_create_before_any_stage(project: Path, tmp_path: Path) -> None:
    # /proc: root passes os.access there, so only a real probe finds it unwritable
    proc = run_builder(
        "--root", project, "build", "--profile", NAME, "--out", "/proc/no-such-folder/out",
        env={"BUILDER_WORK_DIR": str(tmp_path / "work")}, timeout=120,
    )  # fmt: skip
    assert_one_line_error(proc, InputError.exit_code, "--out", "cannot write there")
    assert "==> install" not in proc.stderr
