"""The PyInstaller wrapper: a pinned PyInstaller kept outside the runtime's venv.

PyInstaller must run under the venv's interpreter (it freezes what that Python
imports) but must not become part of the venv, whose contents are the lock's.
So it is installed once per interpreter into a `--target` folder and put on
PYTHONPATH only for the freeze.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from builder.fsutil import atomic_write_text, iter_files, staged_dir
from builder.log import Log
from builder.tools import process, uv
from builder.tools.pyinstaller_log import FreezeProgress

VERSION = "6.22.3"


def ensure(python: Path, tools_dir: Path) -> Path:
    """Install PyInstaller for `python` into tools_dir (once) and return the folder."""
    tag = process.run(
        [
            python,
            "-c",
            "import sys, platform; print(f'cp{sys.version_info[0]}{sys.version_info[1]}-{platform.machine()}')",
        ],
        tool="python",
    ).stdout.strip()
    folder = tools_dir / f"pyinstaller-{VERSION}-{tag}"
    stamp = folder / ".builder-complete"
    if stamp.is_file():
        return folder
    with staged_dir(folder) as tmp:
        uv.run([
            "pip", "install", "--quiet", "--python", str(python), "--target", str(tmp),
            "--only-binary=:all:", f"pyinstaller=={VERSION}",
        ])  # fmt: skip
        atomic_write_text(tmp / ".builder-complete", json.dumps({"pyinstaller": VERSION}) + "\n")
    return folder


def run(
    python: Path,
    tool_folder: Path,
    args: Sequence[str | Path],
    env: dict[str, str],
    *,
    log: Log | None = None,
    watch: Path | None = None,
    log_file: Path | None = None,
) -> None:
    """Run PyInstaller; its log (at INFO) streams into short progress lines on `log`, one per phase
    and, while a phase lasts, one every few seconds with the MB written under `watch` so far."""
    progress = FreezeProgress()

    def status() -> str:
        written = _bytes_under(watch) if watch is not None else 0
        return f"freeze: {progress.summary()}" + (f", {written / 1e6:.0f} MB written" if written else "")

    def on_line(line: str) -> None:
        if progress.feed(line) is not None and log is not None:
            log.progress("freeze", status(), now=True)

    def on_idle() -> None:
        if log is not None:
            log.progress("freeze", status())

    process.stream(
        [python, "-m", "PyInstaller", *args],
        tool="PyInstaller",
        env={**env, "PYTHONPATH": str(tool_folder)},
        on_line=on_line,
        on_idle=on_idle,
        idle_s=log.interval if log is not None else 60.0,
        log_file=log_file,
    )


def _bytes_under(folder: Path) -> int:
    """Bytes of the files under folder so far (it may be growing, or not there yet)."""
    try:
        return sum(p.stat().st_size for p in iter_files(folder) if not p.is_symlink())
    except OSError:
        return 0
