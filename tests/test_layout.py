"""The layout that shows the pipeline: lower layers never import higher ones, commands live in cli/."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILDER = ROOT / "builder"

# Lowest first. A module may import its own layer or any lower one, never a higher one.
LAYERS = ("base", "tools", "openmp", "artifact", "measure", "stages", "cli")


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


# --- measure/'s three rooms -------------------------------------------------------------------

MEASURE = BUILDER / "measure"
ROOMS = ("take", "judge", "show")  # taking figures, judging them, showing them
# A room may import these rooms (its own included); "top" is measure/'s own modules, the commands'
# orchestration (run things, call judge), which rooms never import.
MAY_IMPORT = {"take": {"take"}, "judge": {"take", "judge"}, "show": {"take", "judge", "show"}}
# measure/'s top-level modules: one orchestrator per command (the doctor's rules are runtime_doctor/'s).
ORCHESTRATORS = {"__init__", "bench", "compare", "bisect", "tune", "doctor"}


def room_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[:2] != ["builder", "measure"]:
        return None
    return parts[2] if len(parts) > 2 and parts[2] in ROOMS else "top"


def _measure_files() -> list[Path]:
    return sorted(MEASURE.rglob("*.py"))


def test_measure_has_three_rooms_and_only_orchestrators_beside_them() -> None:
    for room in ROOMS:
        assert (MEASURE / room / "__init__.py").is_file(), room
    top = {p.stem for p in MEASURE.glob("*.py")}
    assert top <= ORCHESTRATORS, f"move into take/, judge/ or show/: {sorted(top - ORCHESTRATORS)}"
    folders = {p.parent.relative_to(MEASURE).parts[0] for p in MEASURE.glob("*/**/*.py")}
    assert folders == set(ROOMS), folders


def test_the_rooms_face_one_way_show_reads_judge_reads_take() -> None:
    wrong = []
    for path in _measure_files():
        me = room_of(module_name(path))
        if me == "top":
            continue
        for imported in builder_imports(path):
            them = room_of(imported)
            if them is not None and them not in MAY_IMPORT[str(me)]:
                wrong.append(f"{module_name(path)} ({me}) imports {imported} ({them})")
    assert not wrong, "\n".join(wrong)


def test_judge_takes_only_types_constants_and_the_metric_definitions_from_take() -> None:
    """judge is pure: what it imports from take are types and constants (and take/metrics.py's
    pure definitions of the figures), never a function that runs or reads anything."""
    import importlib
    import inspect
    import types

    wrong = []
    for path in sorted((MEASURE / "judge").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.ImportFrom) and room_of(node.module or "") == "take"):
                continue
            if node.module == "builder.measure.take.metrics":
                continue
            module = importlib.import_module(str(node.module))
            for alias in node.names:
                obj = getattr(module, alias.name)
                if not (inspect.isclass(obj) or isinstance(obj, types.GenericAlias) or not callable(obj)):
                    wrong.append(f"{module_name(path)} calls {node.module}.{alias.name}")
    assert not wrong, "\n".join(wrong)


def test_only_show_writes_html_in_measure() -> None:
    """Text, Markdown and HTML are show/'s: no other measure module escapes HTML (the doctor's page
    included: show/doctor.py)."""
    users = []
    for path in _measure_files():
        if room_of(module_name(path)) == "show":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "html":
                users.append(module_name(path))
            if isinstance(node, ast.Import) and any(a.name == "html" for a in node.names):
                users.append(module_name(path))
    assert not users, users


# --- one of each ----------------------------------------------------------------------------


def _sources_containing(needle: str) -> set[str]:
    return {module_name(p) for p in sorted(BUILDER.rglob("*.py")) if needle in p.read_text(encoding="utf-8")}


def test_one_function_names_an_openmp_family() -> None:
    """The contract's family patterns are read by openmp/model.py's family_of alone."""
    assert _sources_containing("OPENMP_FAMILIES") == {"builder.contract", "builder.openmp.model"}


def test_one_inventory_reads_threadpoolctls_openmp_pools() -> None:
    """threadpoolctl's pools are sorted into OpenMP runtimes, one per real file, by the rule book alone
    (runtime_doctor/rules.py: stdlib only, carried into every frozen program, so it cannot import
    builder); builder's openmp/pools.py is a view of it. openmp/verify.py's is a script run inside
    the program."""
    picks_openmp = re.compile(r"""user_api["']\]?\)?\s*==\s*["']openmp""")
    found = {
        module_name(p)
        for p in sorted([*BUILDER.rglob("*.py"), *DOCTOR.rglob("*.py")])
        if picks_openmp.search(p.read_text(encoding="utf-8"))
    }
    assert found == {"builder.openmp.verify", "runtime_doctor.rules"}, found
    assert "openmp_files" in (BUILDER / "openmp" / "pools.py").read_text(encoding="utf-8")


def test_one_check_reads_the_size_budget() -> None:
    """max-size-mb and max-files are judged by judge/budget.py alone (bench's and the build's)."""
    users = _sources_containing(".max_size_mb") | _sources_containing(".max_files")
    assert users == {"builder.measure.judge.budget"}, users


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
