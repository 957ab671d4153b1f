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
from builder.log import Log
from builder.mutex import build_mutex

HOLD = """
import sys, time
from pathlib import Path
from builder.mutex import build_mutex
from builder.log import Log
with build_mutex(Path(sys.argv[1]), what="a build of x", wait=True, log=Log()):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _holder(mutex: Path, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen(  # a real process holding the mutex (it has said so when this returns)
        [sys.executable, "-c", HOLD, str(mutex), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    proc.stdout.close()
    assert line == "held"
    return proc


def test_a_second_holder_is_refused_with_no_wait(tmp_path: Path) -> None:
    mutex = tmp_path / ".build.mutex"
    proc = _holder(mutex, 30)
    try:
        with pytest.raises(BusyError, match=f"pid {proc.pid}"):
            with build_mutex(mutex, what="a build of x", wait=False, log=Log()):
                pass
        assert mutex.exists()  # the refused one left the holder's mutex alone
    finally:
        proc.kill()
        proc.wait()


def test_a_second_holder_waits_until_the_first_is_done(tmp_path: Path) -> None:
    mutex = tmp_path / ".build.mutex"
    proc = _holder(mutex, 2)
    started = time.monotonic()
    with build_mutex(mutex, what="a build of x", wait=True, log=Log()):
        assert time.monotonic() - started >= 1.5  # it waited for the holder's 2 s
    assert not mutex.exists()
    proc.wait()


def test_a_mutex_left_by_a_killed_build_is_recovered(tmp_path: Path) -> None:
    mutex = tmp_path / ".build.mutex"
    proc = _holder(mutex, 60)
    proc.kill()
    proc.wait()
    assert mutex.exists()  # SIGKILL left it behind
    with build_mutex(mutex, what="a build of x", wait=False, log=Log()):
        assert mutex.read_text().count(str(os.getpid())) == 1
    assert not mutex.exists()


def test_build_refuses_while_another_build_of_the_profile_runs(root: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    mutex = work / "minimal-linux-x86_64" / ".build.mutex"
    mutex.parent.mkdir(parents=True)
    proc = _holder(mutex, 60)
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
        assert sorted(p.name for p in mutex.parent.iterdir()) == [".build.mutex"]  # nothing touched
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
