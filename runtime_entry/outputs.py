"""Where a job's stems go, `OUT/<folder>/<stem>.<fmt>`, decided from names alone before any work.

The rules (README "The runtime program", docs/worker-protocol.md):
- `<folder>` is the input's file name without its last extension (`song.flac` -> `song`). A
  name that would not be a folder of its own inside OUT, one that is empty or only dots
  (`..`, and `...wav`, whose name without `.wav` is `..`), is refused (bad_input, exit 3):
  it would write into OUT itself or into its parent.
- Two inputs of one `stems separate` whose folders have the same name, compared as macOS and
  Windows compare file names (case and Unicode normalisation aside), are refused before any
  work (usage, exit 2): the second would replace the first's stems.
- A stem's file name is the model's instrument name: a plain name (no path separator, no
  control character, not empty or only dots), each one once, compared the same way.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from pathlib import Path

from .errors import InputError, UsageError


def name_key(name: str) -> str:
    """Two names with the same key are one file on a case-insensitive file system."""
    return unicodedata.normalize("NFC", name).casefold()


def bad_file_name(name: str) -> str | None:
    """Why `name` cannot be one file inside a folder, or None when it can."""
    if not name.strip("."):
        return "it is empty or only dots" if name else "it is empty"
    if "/" in name or "\\" in name:
        return "it holds a path separator"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        return "it holds a control character"
    return None


def folder_name(input_path: str | Path) -> str:
    """The name of the input's folder under OUT (see the module's rules)."""
    name = Path(input_path).stem
    if not name.strip("."):
        raise InputError(
            f"{input_path}: its name without the extension is {name!r}, which names no folder of its own "
            "under the output folder (it would write into the output folder or its parent); "
            "rename or link the file"
        )
    return name


def job_folder(out_dir: str | Path, input_path: str | Path) -> Path:
    """OUT/<folder>: always a direct child of OUT."""
    out = Path(out_dir)
    folder = out / folder_name(input_path)
    assert folder.parent == out and folder.name not in ("", ".", ".."), folder  # by construction
    return folder


def check_distinct_folders(inputs: Sequence[str]) -> None:
    """Refuse, before any work, inputs that would write into the same folder."""
    seen: dict[str, str] = {}
    for path in inputs:
        key = name_key(folder_name(path))
        if key in seen:
            raise UsageError(
                f"{seen[key]} and {path} would both write into the output folder's "
                f"{folder_name(path)!r} (one folder per input name, case aside); "
                "separate them in two calls with different -o folders, or rename one"
            )
        seen[key] = path


def check_stem_names(names: Sequence[str], where: str) -> None:
    """Each stem name a plain file name, once (case aside): else UsageError naming it."""
    seen: set[str] = set()
    for name in names:
        key = name_key(name)
        if key in seen:
            raise UsageError(f"{where}: stem {name!r} is named twice; name each stem once")
        seen.add(key)
