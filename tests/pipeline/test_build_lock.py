"""One build of a profile at a time: a live holder is waited for or refused, a dead one recovered."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import assert_one_line_error, run_builder

from builder.errors import BusyError
from builder.locking import exclusive
from builder.log import Log

HOLD = """
import sys, time
from pathlib import Path
from builder.locking import exclusive
from builder.log import Log
with exclusive(Path(sys.argv[1]), what="a build of x", wait=True, log=Log()):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _holder(lock: Path, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen(  # a real process holding the lock (it has said so when this returns)
        [sys.executable, "-c", HOLD, str(lock), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    proc.stdout.close()
    assert line == "held"
    return proc


def test_a_second_holder_is_refused_with_no_wait(tmp_path: Path) -> None:
    lock = tmp_path / ".build.lock"
    proc = _holder(lock, 30)
    try:
        with pytest.raises(BusyError, match=f"pid {proc.pid}"):
            with exclusive(lock, what="a build of x", wait=False, log=Log()):
                pass
        assert lock.exists()  # the refused one left the holder's lock alone
    finally:
        proc.kill()
        proc.wait()


def test_a_second_holder_waits_until_the_first_is_done(tmp_path: Path) -> None:
    lock = tmp_path / ".build.lock"
    proc = _holder(lock, 2)
    started = time.monotonic()
    with exclusive(lock, what="a build of x", wait=True, log=Log()):
        assert time.monotonic() - started >= 1.5  # it waited for the holder's 2 s
    assert not lock.exists()
    proc.wait()


def test_a_lock_left_by_a_killed_build_is_recovered(tmp_path: Path) -> None:
    lock = tmp_path / ".build.lock"
    proc = _holder(lock, 60)
    proc.kill()
    proc.wait()
    assert lock.exists()  # SIGKILL left it behind
    with exclusive(lock, what="a build of x", wait=False, log=Log()):
        assert lock.read_text().count(str(os.getpid())) == 1
    assert not lock.exists()


def test_build_refuses_while_another_build_of_the_profile_runs(root: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    lock = work / "minimal-linux-x86_64" / ".build.lock"
    lock.parent.mkdir(parents=True)
    proc = _holder(lock, 60)
    try:
        result = run_builder(
            "--root",
            root,
            "build",
            "--no-wait",
            "--out",
            tmp_path / "dist",
            env={"BUILDER_WORK_DIR": str(work)},
        )
        assert_one_line_error(result, BusyError.exit_code, "already running", str(proc.pid))
        assert sorted(p.name for p in lock.parent.iterdir()) == [".build.lock"]  # nothing touched
    finally:
        proc.kill()
        proc.wait()


def test_build_checks_out_before_any_stage(root: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = run_builder(
        "--root", root, "build", "--out", blocker / "dist", env={"BUILDER_WORK_DIR": str(tmp_path)}
    )
    assert_one_line_error(result, 10, "--out", "cannot write there")
    assert "==> install" not in result.stderr
