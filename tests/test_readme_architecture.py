"""The README's architecture is the code (issue 22, point 8): read from the tree and from the
README's "## Architecture" block, every package and every top-level module of builder/ and
runtime_entry/ has an entry with its job, every module of a package is named in its package's
entry, and no entry names something that is gone.

The block's shape: a root (`builder/`) at the margin; each entry on a line indented by exactly
two spaces, starting with its path relative to the root (`mutex.py`, `measure/report/`); its
job on that line and on the lines below indented further.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROOTS = ("builder", "runtime_entry")


def architecture_block(readme: str) -> str:
    section = readme.split("\n## Architecture\n", 1)[1].split("\n## ", 1)[0]
    return section.split("```", 2)[1]


def entries(block: str) -> dict[str, str]:
    """'builder/measure/' or 'builder/mutex.py' -> the entry's text (its job)."""
    found: dict[str, str] = {}
    root = key = None
    for line in block.splitlines():
        if re.match(r"\S", line):
            root, key = line.split()[0].rstrip("/"), None
        elif re.match(r"  \S", line) and root is not None:
            head, _, job = line.strip().partition(" ")
            key = f"{root}/{head}"
            found[key] = job
        elif key is not None and line.strip():
            found[key] += " " + line.strip()
    return found


def packages(top: str) -> list[Path]:
    return sorted(p.parent for p in (ROOT / top).rglob("__init__.py") if p.parent != ROOT / top)


def problems(block: str) -> list[str]:
    listed = entries(block)
    wrong = []
    for top in ROOTS:
        for module in sorted((ROOT / top).glob("*.py")):
            key = f"{top}/{module.name}"
            if module.name != "__init__.py" and not listed.get(key, "").strip():
                wrong.append(f"{key}: no entry with its job")
        for pkg in packages(top):
            key = pkg.relative_to(ROOT).as_posix() + "/"
            if key not in listed:
                wrong.append(f"{key}: no entry")
                continue
            for module in sorted(pkg.glob("*.py")):
                if module.name != "__init__.py" and not re.search(
                    rf"\b{re.escape(module.stem)}\b", listed[key]
                ):
                    wrong.append(f"{key}{module.name}: not named in its package's entry")
    wrong += [f"{key}: listed, but not in the tree" for key in listed if not (ROOT / key).exists()]
    return wrong


def test_every_package_and_module_is_in_the_readme_architecture() -> None:
    block = architecture_block((ROOT / "README.md").read_text(encoding="utf-8"))
    wrong = problems(block)
    assert not wrong, "README.md ## Architecture is out of date:\n" + "\n".join(wrong)


def test_a_missing_or_stale_entry_is_found() -> None:
    block = architecture_block((ROOT / "README.md").read_text(encoding="utf-8"))
    without_mutex = "\n".join(line for line in block.splitlines() if not line.startswith("  mutex.py"))
    assert problems(without_mutex) == ["builder/mutex.py: no entry with its job"]
    stale = block.replace("  mutex.py ", "  locking.py ")
    assert "builder/locking.py: listed, but not in the tree" in problems(stale)
    unnamed = block.replace("contributors (", "(")
    assert "builder/artifact/contributors.py: not named in its package's entry" in problems(unnamed)
