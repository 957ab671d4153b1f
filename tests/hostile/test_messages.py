"""Wrong codes and unclear messages (issue 23, class 8, builder's side): the network has its own
exit code, a byte-order mark and a broken link are named as such, and a permission is never
"a stale lock"."""

from __future__ import annotations

import codecs
import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import assert_one_line_error, run_builder

from builder.cli import EXIT_USAGE, safety_net
from builder.errors import (
    AccessError,
    BuilderError,
    InputError,
    ModifiedLockError,
    NetworkError,
    ProfileError,
    ResolutionError,
    StaleLockError,
)
from builder.profile import load_profile
from builder.stages.lock import check_lock, condense_uv_error, read_lock
from builder.tools.uv import network_failure

from .privileges import IS_ROOT, preexec

NAME = "minimal-linux-x86_64"
ROOT = Path(__file__).resolve().parents[2]
UV_OUTPUT = Path(__file__).with_name("uv_output")  # uv 0.13.9's real stderr (see its README.txt)


# -- the network ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("capture", "url", "cause"),
    [
        ("connection-refused.txt", "http://127.0.0.1:9/simple/six/", "Connection refused"),
        ("connection-refused-no-retries.txt", "http://127.0.0.1:9/simple/six/", "Connection refused"),
        ("dns.txt", "http://no-such-host.invalid/simple/six/", "failed to lookup address"),
    ],
)
def test_uvs_real_network_failures_are_network_errors(
    project: Path, capture: str, url: str, cause: str
) -> None:
    stderr = (UV_OUTPUT / capture).read_text()
    assert network_failure(stderr) is not None
    err = condense_uv_error(stderr, load_profile(NAME, project / "profiles"))
    assert isinstance(err, NetworkError) and err.exit_code == 20
    assert url in err.one_line() and cause in err.one_line() and "unsatisfiable" not in err.one_line()


@pytest.mark.parametrize(
    ("capture", "kind", "needle"),
    [
        ("index-404.txt", ResolutionError, "indexes.index-url (https://pypi.org/simple)"),
        ("no-version.txt", ResolutionError, "no version of six==0.0.0.1"),
        ("find-links-missing.txt", InputError, "cannot read the wheel folder /nonexistent/wheels"),
    ],
)
def test_uvs_other_failures_stay_what_they_are(
    project: Path, capture: str, kind: type[Exception], needle: str
) -> None:
    stderr = (UV_OUTPUT / capture).read_text()
    assert network_failure(stderr) is None
    err = condense_uv_error(stderr, load_profile(NAME, project / "profiles"))
    assert type(err) is kind and needle in err.one_line(), err.one_line()


def _net_profile(project: Path, index: str) -> None:
    (project / "profiles" / "net.toml").write_text(
        'description = "an index"\n[target]\nname = "linux-x86_64"\npython = "3.11"\n'
        f'[packages]\nrequirements = ["six"]\n[indexes]\nindex-url = "{index}"\n'
    )


def test_lock_against_an_index_nobody_answers_exits_20(project: Path) -> None:
    # real uv, a real refused connection (port 9, discard); no retries keeps it under a second
    _net_profile(project, "http://127.0.0.1:9/simple")
    proc = run_builder(
        "--root", project, "lock", "--profile", "net", env={"UV_HTTP_RETRIES": "0"}, timeout=120
    )
    assert_one_line_error(
        proc, NetworkError.exit_code, "net.toml", "cannot reach a package index", "127.0.0.1:9"
    )
    assert not (project / "locks" / "net.lock").exists()


def test_an_index_url_that_is_not_a_url_is_a_profile_error(project: Path) -> None:
    _net_profile(project, "not a url")
    proc = run_builder("--root", project, "lock", "--profile", "net", timeout=120)
    assert_one_line_error(proc, ProfileError.exit_code, "key 'indexes.index-url'", "'not a url'")


# -- byte-order marks ----------------------------------------------------------------------------


def test_a_profile_with_a_bom_is_accepted_as_the_same_profile(project: Path) -> None:
    path = project / "profiles" / f"{NAME}.toml"
    before = load_profile(NAME, project / "profiles").lock_hash()
    path.write_bytes(codecs.BOM_UTF8 + path.read_bytes())
    assert load_profile(NAME, project / "profiles").lock_hash() == before
    proc = run_builder("--root", project, "lock", "--check", "--profile", NAME, timeout=120)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr  # its lock is fresh


def test_a_lock_with_a_bom_is_named_as_such(project: Path) -> None:
    lock = project / "locks" / f"{NAME}.lock"
    lock.write_bytes(codecs.BOM_UTF8 + lock.read_bytes())
    with pytest.raises(ModifiedLockError, match="byte-order mark"):
        check_lock(load_profile(NAME, project / "profiles"), lock)


# -- links ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("link_to", "needle"), [("gone.toml", "broken symlink"), (None, "symlink loop")])
def test_a_broken_or_looping_profile_link_is_not_no_such_profile(
    project: Path, link_to: str | None, needle: str
) -> None:
    path = project / "profiles" / f"{NAME}.toml"
    path.unlink()
    path.symlink_to(link_to or path.name)
    proc = run_builder("--root", project, "lock", "--check", "--profile", NAME, timeout=120)
    line = assert_one_line_error(proc, InputError.exit_code, f"{NAME}.toml", needle)
    assert "no profile" not in line


def test_a_broken_link_given_as_a_runtime_is_named(project: Path, tmp_path: Path) -> None:
    link = tmp_path / "my-dist"
    link.symlink_to(tmp_path / "deleted-dist")
    proc = run_builder("--root", project, "bench", link, timeout=120)
    line = assert_one_line_error(proc, InputError.exit_code, "my-dist", "broken symlink", "deleted-dist")
    assert "no such path and no profile" not in line


# -- permissions ---------------------------------------------------------------------------------

needs_bits = pytest.mark.skipif(
    sys.platform == "win32" or (IS_ROOT and not sys.platform.startswith("linux")),
    reason="permission bits: POSIX, and for root Linux's capabilities",
)


@needs_bits
def test_an_unreadable_lock_is_a_permission_error_not_a_stale_lock(project: Path) -> None:
    lock = project / "locks" / f"{NAME}.lock"
    lock.chmod(0)
    proc = subprocess.run(
        [sys.executable, "-m", "builder", "--root", str(project), "lock", "--check", "--profile", NAME],
        capture_output=True, text=True, timeout=120, **preexec(),  # type: ignore[call-overload]
    )  # fmt: skip
    line = assert_one_line_error(proc, AccessError.exit_code, lock.name, "permission denied")
    assert "stale" not in line


@needs_bits
def test_a_build_mutex_it_may_not_read_is_not_recovered_as_stale(tmp_path: Path) -> None:
    held = tmp_path / ".build.mutex"
    held.write_text('{"pid": 1}')
    held.chmod(0)
    code = (
        "from pathlib import Path\nfrom builder.mutex import build_mutex\nfrom builder.log import Log\n"
        "from builder.errors import AccessError\n"
        f"try:\n    with build_mutex(Path({str(held)!r}), what='a build', wait=False, log=Log()):\n"
        "        print('taken')\nexcept AccessError as exc:\n    print(exc.one_line())\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, **preexec(),  # type: ignore[call-overload]
    )  # fmt: skip
    assert "permission denied" in proc.stdout and "taken" not in proc.stdout, proc.stdout + proc.stderr
    assert "stale" not in proc.stdout + proc.stderr
    assert held.exists()  # never removed: it may be another user's running build


def test_read_lock_names_a_folder_where_the_lock_belongs(project: Path) -> None:
    lock = project / "locks" / f"{NAME}.lock"
    lock.unlink()
    lock.mkdir()
    with pytest.raises(StaleLockError, match="not a regular file") as info:
        read_lock(lock)
    assert os.fspath(lock) in str(info.value)


# -- the CLI's safety net: what no reader turned into a BuilderError ------------------------------


@pytest.mark.parametrize(
    ("exc", "code", "needle"),
    [
        (OSError(errno.ENOSPC, "No space left on device", "/out/x.json"), 23, "/out/x.json: no space left"),
        (OSError(errno.EROFS, "Read-only file system", "/ro/x"), 23, "/ro/x: read-only file system"),
        (PermissionError(errno.EACCES, "Permission denied", "/p"), 22, "/p: permission denied"),
        (OSError(errno.ELOOP, "Too many levels of symbolic links", "/l"), 10, "/l: symlink loop"),
        (IsADirectoryError(errno.EISDIR, "Is a directory", "/d"), 10, "/d: is a folder"),
        (NotADirectoryError(errno.ENOTDIR, "Not a directory", "/f/x"), 10, "/f/x: a part of the path"),
        (OSError(errno.EIO, "Input/output error", "/disk"), 21, "/disk: Input/output error (errno 5)"),
        (RecursionError("maximum recursion depth exceeded"), 24, "nested too deeply"),
        (MemoryError(), 24, "out of memory"),
        (
            ValueError(
                "Exceeds the limit (4300 digits) for integer string conversion; use sys.set_int_max_str_digits()"
            ),
            24,
            "4300 digits",
        ),
        (ValueError("something builder did not expect"), 1, "unexpected ValueError"),
    ],
)
def test_the_clis_safety_net_maps_each_kind_to_its_code(exc: Exception, code: int, needle: str) -> None:
    err = safety_net(exc)  # type: ignore[arg-type]
    assert (err.exit_code, needle in err.one_line()) == (code, True), err.one_line()
    assert "\n" not in err.one_line() and "sys.set_int_max_str_digits" not in err.one_line()


def _subclasses(cls: type[BuilderError]) -> list[type[BuilderError]]:
    return [cls, *(s for sub in cls.__subclasses__() for s in _subclasses(sub))]


def test_every_exit_code_is_in_the_readmes_table() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text[text.index("| exit | meaning |") :].split("\n\n")[0]
    documented = {int(row.split("|")[1]) for row in table.splitlines()[2:]}
    codes = {cls.exit_code for cls in _subclasses(BuilderError)} | {EXIT_USAGE, 130}
    assert codes <= documented, sorted(codes - documented)
