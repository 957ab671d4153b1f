"""What a dist is made from, hashed: a different value means rebuild.

Nothing here is a hand-kept list. The program's side is what the freeze takes in (the generated
spec, hook and launcher, runtime.json, every file of `runtime_entry/` including the contract);
builder's side is every module of builder that the build stage imports, found by reading the
imports, so a new module that shapes the dist is hashed the day it is imported.
"""

from __future__ import annotations

import ast
import hashlib
import json
from dataclasses import asdict
from pathlib import Path

from builder import __version__
from builder.profile import Profile
from builder.stages.freeze import FreezePlan
from builder.tools import pyinstaller

BUILDER_DIR = Path(__file__).resolve().parent.parent
BUILD_MODULE = "builder.stages.build"
FREEZE_MODULE = "builder.stages.freeze"


def _module_file(name: str) -> Path | None:
    parts = name.split(".")[1:]
    if not parts:
        return BUILDER_DIR / "__init__.py"
    rel = Path(*parts)
    for candidate in (BUILDER_DIR / rel.with_suffix(".py"), BUILDER_DIR / rel / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports_of(path: Path, module: str) -> set[str]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}  # `from builder.tools import uv`
    return {m for m in found if m == "builder" or m.startswith("builder.")}


def builder_modules(root_module: str = BUILD_MODULE) -> list[Path]:
    """Every builder source file `root_module` imports, directly or not (read, never imported)."""
    seen: dict[str, Path] = {}
    todo = [root_module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = _module_file(name)
        if path is None:
            continue  # a name imported from a module, not a module
        seen[name] = path
        todo += sorted(_imports_of(path, name))
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(2, len(parts))]  # parents' __init__ run first
    return sorted(set(seen.values()))


def inputs_hash(project_root: Path, profile: Profile, plan: FreezePlan, lock_hash: str, python: Path) -> str:
    """What the dist is made from: the freeze's inputs and every builder module the build imports."""
    return _hash(project_root, profile, plan, lock_hash, python, BUILD_MODULE)


def freeze_inputs_hash(
    project_root: Path, profile: Profile, plan: FreezePlan, lock_hash: str, python: Path
) -> str:
    """What the frozen folder alone is made from: as `inputs_hash`, but of builder only the modules
    the freeze imports. [bench] is in neither (it shapes the check and the smoke bench, not the
    bundle), nor is the packaging code: a failed check, a budget or a packaging change re-runs
    what follows the freeze, never the freeze."""
    return _hash(project_root, profile, plan, lock_hash, python, FREEZE_MODULE)


def _hash(
    project_root: Path, profile: Profile, plan: FreezePlan, lock_hash: str, python: Path, root: str
) -> str:
    digest = hashlib.sha256()
    settings = {
        "builder": __version__,
        "pyinstaller": pyinstaller.VERSION,
        "lock": lock_hash,
        "python": str(python.resolve()),
        "freeze": asdict(profile.freeze),
        "target": profile.target.name,
    }
    digest.update(json.dumps(settings, sort_keys=True).encode())
    items = plan.digest_items(project_root)
    items += [
        (f"builder/{p.relative_to(BUILDER_DIR).as_posix()}", p.read_bytes()) for p in builder_modules(root)
    ]
    for name, data in items:
        digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return "sha256:" + digest.hexdigest()
