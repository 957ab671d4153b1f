"""The PyInstaller wrapper: a pinned PyInstaller kept outside the runtime's venv.

PyInstaller must run under the venv's interpreter (it freezes what that Python
imports) but must not become part of the venv, whose contents are the lock's.
So it is installed once per interpreter into a `--target` folder and put on
PYTHONPATH only for the freeze.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from pathlib import Path

from builder.fsutil import atomic_write_text, staged_dir
from builder.tools import process, uv

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
    python: Path, tool_folder: Path, args: Sequence[str | Path], env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return process.run(
        [python, "-m", "PyInstaller", *args],
        tool="PyInstaller",
        env={**env, "PYTHONPATH": str(tool_folder)},
    )
