"""No function in builder/ or runtime_entry/ is over 60 lines (issue 22, point 7): a longer one is
split into named steps. Lines as the source spans them, from `def` to the last line of the body
(decorators and the docstring included)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 60


def long_functions(source: str, name: str) -> list[str]:
    """`name:line function (N lines)` for each function of `source` over LIMIT lines.

    >>> long_functions("def f():\\n" + "    x = 1\\n" * 60, "m.py")
    ['m.py:1 f (61 lines)']
    >>> long_functions("async def g():\\n" + "    pass\\n" * 59, "m.py")
    []
    """
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            assert node.end_lineno is not None
            lines = node.end_lineno - node.lineno + 1
            if lines > LIMIT:
                found.append(f"{name}:{node.lineno} {node.name} ({lines} lines)")
    return found


def test_the_count_is_from_def_to_the_last_line() -> None:
    assert long_functions("def f():\n" + "    x = 1\n" * 60, "m.py") == ["m.py:1 f (61 lines)"]
    assert long_functions("def f():\n" + "    x = 1\n" * 59, "m.py") == []
    nested = "def outer():\n    def inner():\n" + "        x = 1\n" * 61 + "    return inner\n"
    assert [f.split()[1] for f in long_functions(nested, "m.py")] == ["outer", "inner"]


def test_no_function_over_60_lines() -> None:
    found = []
    for top in ("builder", "runtime_entry"):
        for path in sorted((ROOT / top).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            found += long_functions(path.read_text(encoding="utf-8"), rel)
    assert not found, f"{len(found)} functions over {LIMIT} lines:\n" + "\n".join(found)
