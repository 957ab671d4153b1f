"""The layout that shows the pipeline: lower layers never import higher ones, commands live in cli/."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILDER = ROOT / "builder"

# Lowest first. A module may import its own layer or any lower one, never a higher one.
LAYERS = ("base", "tools", "openmp", "dist", "measure", "stages", "cli")


def layer_of(module: str) -> int:
    parts = module.split(".")
    if parts[0] != "builder" or len(parts) == 1:
        return 0
    if parts[1] == "__main__":
        return len(LAYERS) - 1
    return LAYERS.index(parts[1]) if parts[1] in LAYERS else 0


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def builder_imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            assert node.level == 0, f"{path}: relative import (builder uses absolute imports)"
            found.add(node.module)
    return {m for m in found if m.startswith("builder")}


def test_no_lower_layer_imports_a_higher_one() -> None:
    wrong = []
    for path in sorted(BUILDER.rglob("*.py")):
        me = module_name(path)
        for imported in builder_imports(path):
            if layer_of(imported) > layer_of(me):
                wrong.append(
                    f"{me} ({LAYERS[layer_of(me)]}) imports {imported} ({LAYERS[layer_of(imported)]})"
                )
    assert not wrong, "\n".join(wrong)


def _imports_click(path: Path) -> bool:
    for n in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(n, ast.Import) and any(a.name == "click" for a in n.names):
            return True
        if isinstance(n, ast.ImportFrom) and n.module == "click":
            return True
    return False


def test_click_lives_only_in_the_command_modules() -> None:
    users = [module_name(p) for p in sorted(BUILDER.rglob("*.py")) if _imports_click(p)]
    assert users and all(u.startswith("builder.cli") for u in users), users


def test_every_command_has_a_module_of_its_own_in_cli() -> None:
    from builder.cli import LazyGroup

    for name in LazyGroup.COMMANDS:
        assert (BUILDER / "cli" / f"{name}.py").is_file(), name


def test_every_build_stage_has_a_module_in_stages() -> None:
    for stage in ("lock", "install", "openmp", "freeze", "check", "smoke", "package", "build"):
        assert (BUILDER / "stages" / f"{stage}.py").is_file(), stage


DOCTOR = ROOT / "runtime_doctor"


def _top_imports(path: Path, *, module_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if module_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found


def test_the_rule_book_is_stdlib_only_and_imports_neither_side() -> None:
    """runtime_doctor is carried by every frozen program (the hook) and used by builder and stems:
    it may import the standard library and itself; torch only inside calibrate's function."""
    import sys

    wrong = []
    for path in sorted(DOCTOR.glob("*.py")):
        for top in _top_imports(path, module_level_only=False):
            allowed = top in sys.stdlib_module_names or top in ("runtime_doctor", "__future__")
            if top == "torch" and path.name == "calibrate.py":
                allowed = "torch" not in _top_imports(path, module_level_only=True)
            if not allowed:
                wrong.append(f"{path.name} imports {top}")
    assert not wrong, wrong


def test_the_runtime_never_imports_builder_and_both_may_use_the_rule_book() -> None:
    users = {"builder": False, "runtime_entry": False}
    for side in users:
        for path in sorted((ROOT / side).rglob("*.py")):
            tops = _top_imports(path, module_level_only=False)
            assert side == "builder" or "builder" not in tops, f"{path} imports builder"
            users[side] |= "runtime_doctor" in tops
    assert users == {"builder": True, "runtime_entry": True}, users
