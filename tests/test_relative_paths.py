"""Committed files name paths relative to the project: no report, profile or docstring carries
the absolute path of the checkout it was made in (issue 22, point 8).

tests/ is left out: its inputs are absolute paths on purpose (a profile's absolute checkpoint
must be refused; a captured PyInstaller log is parsed as it was printed).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXEMPT = ("tests/",)
# A machine's home or work folders; and any absolute path that continues with a folder of this
# project (examples/msst/..., build/P/venv, dist/P, .bench/...): the checkout's path on some machine.
HOMES = r"/work/|/home/[\w.-]+/|/Users/[\w.-]+/|/root/|[A-Za-z]:[\\/]Users[\\/]"


def project_folders() -> list[str]:
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    tops = {f.split("/", 1)[0] for f in tracked if "/" in f}
    return sorted(tops | {"build", "dist", ".bench", ".repro", ".venv"})


def leaks(text: str, root: Path, folders: list[str]) -> list[str]:
    """The absolute checkout paths in `text`.

    >>> leaks("A: `/work/main/build/m/venv`; B: build/e/venv", Path("/x"), ["build"])
    ['/work/main/build/m/venv']
    >>> leaks("--find-links /srv/wheels, under flock /tmp/heavy.lock", Path("/x"), ["build"])
    []
    >>> leaks('"path": "/srv/ci/checkout/examples/msst/job/a.yaml"', Path("/x"), ["examples"])
    ['/srv/ci/checkout/examples/msst/job/a.yaml']
    """
    names = "|".join(re.escape(f) for f in folders)
    pattern = re.compile(
        rf"(?<![\w.~$}}])(?:{re.escape(root.as_posix())}|{HOMES}|(?:/[\w.+-]+)+/(?:{names})/)[^\s\"'`<>),;]*"
    )
    return [m.group(0) for m in pattern.finditer(text)]


def test_the_pattern_finds_the_checkout_and_spares_other_paths() -> None:
    folders = project_folders()
    assert "examples" in folders and "dist" in folders
    assert leaks(f"made in {ROOT}/docs/x.md", ROOT, folders)
    assert leaks("C:\\Users\\ana\\proj\\dist\\p", ROOT, folders)
    assert not leaks(
        "site-packages/torch/lib/libgomp.so.1 and /usr/lib/python3/dist-packages/x", ROOT, folders
    )


def test_no_committed_text_file_names_an_absolute_checkout_path() -> None:
    folders = project_folders()
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    found = []
    for name in files:
        path = ROOT / name
        if not name or name.startswith(EXEMPT) or not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:  # a binary file (a screenshot, a wheel)
            continue
        found += [f"{name}: {hit}" for hit in leaks(data.decode("utf-8", "replace"), ROOT, folders)]
    assert not found, f"{len(found)} absolute paths of a checkout:\n" + "\n".join(found[:20])


def test_a_report_for_sharing_names_paths_relative_to_the_project(tmp_path: Path) -> None:
    from builder.relpaths import project_relative

    root = tmp_path / "checkout"
    report = {
        "runtime": {"path": f"{root}/build/p/venv", "command": [f"{root}/dist/p/stems/stems", "bench"]},
        "error": f"{root}/examples/x.yaml: not a file",
        "elsewhere": f"{tmp_path}/checkout-2/dist/p",
        "n": 3,
    }
    shared = project_relative(report, root)
    assert shared == {
        "runtime": {"path": "build/p/venv", "command": ["dist/p/stems/stems", "bench"]},
        "error": "examples/x.yaml: not a file",
        "elsewhere": f"{tmp_path}/checkout-2/dist/p",
        "n": 3,
    }
    assert not leaks(str(shared["runtime"]) + str(shared["error"]), root, project_folders())
