"""A writer killed mid-write leaves a temporary name of builder's one pattern; the next run removes it.

Real kills: a child process runs one of builder's writers on a large payload and gets SIGKILL as
soon as its temporary file appears (a write that won the race is retried with more bytes).
Nothing is simulated but the payload's size.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from builder.fsutil import TEMP_NAME, atomic_write_text, staged_dir

from .test_builder_files import cli

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX-only")
NAME = "minimal-linux-x86_64"

WRITERS = {
    "atomic write": (
        "from builder.fsutil import atomic_write_text as w; w(Path(sys.argv[1]) / 'out.json', 'x' * N)"
    ),
    "staged folder": (
        "from builder.fsutil import staged_dir\n"
        "with staged_dir(Path(sys.argv[1]) / 'P') as tmp:\n"
        "    (tmp / 'big').write_bytes(b'x' * N)\n    import time; time.sleep(30)"
    ),
    "tar.xz archive": (
        "from builder.artifact.archive import write_archive as w\n"
        "src = Path(sys.argv[1]).parent / 'src'; src.mkdir(exist_ok=True); (src / 'r').write_bytes(os.urandom(N // 4))\n"
        "w(src, Path(sys.argv[1]) / 'P.tar.xz', 0, arcname='P')"
    ),
    "zip archive": (
        "from builder.artifact.archive import write_zip as w\n"
        "src = Path(sys.argv[1]).parent / 'src'; src.mkdir(exist_ok=True); (src / 'r').write_bytes(os.urandom(N // 4))\n"
        "w(src, Path(sys.argv[1]) / 'P.zip', 0, arcname='P')"
    ),
}


def kill_mid_write(code: str, folder: Path, size: int = 16 << 20) -> list[str]:
    """Run `code` (with N = size bytes) against `folder`, SIGKILL it once a new hidden name appears
    there; return the names it left. Retried with a larger payload when the write finished first."""
    folder.mkdir(parents=True, exist_ok=True)
    before = set(os.listdir(folder))
    for _attempt in range(4):
        script = f"import os, sys\nfrom pathlib import Path\nN = {size}\n{code}\n"
        child = subprocess.Popen([sys.executable, "-c", script, str(folder)])
        deadline = time.monotonic() + 60
        try:
            while child.poll() is None and time.monotonic() < deadline:
                if any(n.startswith(".") for n in set(os.listdir(folder)) - before):
                    child.send_signal(signal.SIGKILL)
                    break
        finally:
            child.kill()
            child.wait()
        left = sorted(n for n in set(os.listdir(folder)) - before if n.startswith("."))
        if left:
            return left
        for name in set(os.listdir(folder)) - before:  # the write won the race: undo it, try a larger one
            shutil.rmtree(folder / name) if (folder / name).is_dir() else (folder / name).unlink()
        size *= 4
    raise AssertionError(f"the writer always finished before it could be killed ({size} bytes)")


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_every_writer_killed_mid_write_leaves_only_builders_pattern(tmp_path: Path, writer: str) -> None:
    left = kill_mid_write(WRITERS[writer], tmp_path / "out")
    assert left and all(TEMP_NAME.match(n) for n in left), left


@pytest.mark.parametrize("writer", ["atomic write", "tar.xz archive", "zip archive"])
def test_the_next_write_into_the_folder_removes_a_killed_writers_file(tmp_path: Path, writer: str) -> None:
    folder = tmp_path / "out"
    left = kill_mid_write(WRITERS[writer], folder)
    atomic_write_text(folder / "next.json", "{}\n")
    assert sorted(os.listdir(folder)) == ["next.json"], left


def test_the_next_staged_run_recovers_a_killed_one(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    with staged_dir(folder / "P") as tmp:
        (tmp / "good").write_text("v1")
    kill_mid_write(WRITERS["staged folder"], folder)
    with staged_dir(folder / "P") as tmp:
        (tmp / "good").write_text("v2")
    assert sorted(os.listdir(folder)) == ["P"] and (folder / "P" / "good").read_text() == "v2"


def test_a_killed_lock_write_is_removed_by_the_next_builder_lock(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lock = project / "locks" / f"{NAME}.lock"
    before = lock.read_bytes()
    code = (
        "from builder.fsutil import atomic_write_text as w\n"
        f"p = Path(sys.argv[1]) / '{lock.name}'; t = p.read_text(); w(p, t * (N // len(t) + 1))"
    )
    left = kill_mid_write(code, lock.parent)
    assert all(n.startswith(f".{lock.name}.builder-tmp-") for n in left), left
    proc = cli("--root", project, "lock", "--check", "--profile", NAME, capsys=capsys)
    assert proc.returncode == 0, proc.stderr
    assert f"removed {lock.parent / left[0]}" in proc.stderr
    assert not any(TEMP_NAME.match(n) for n in os.listdir(lock.parent))
    assert lock.read_bytes() == before


def test_builder_clean_removes_a_killed_writers_file_in_the_work_folder(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    work = project / "build" / NAME
    left = kill_mid_write(WRITERS["atomic write"], work)
    proc = cli("--root", project, "clean", "--out", project / "dist", capsys=capsys)
    assert proc.returncode == 0, proc.stderr
    assert all(str(work / n) in proc.stdout for n in left)
    assert os.listdir(work) == []
