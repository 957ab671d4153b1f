"""Code that runs on Windows and macOS uses nothing those systems lack, checked on this Linux machine.

- `resource`, `fcntl`, `termios`, `pwd` and `grp` do not exist on Windows: a fresh interpreter
  in which our code cannot import them imports every module of builder/ and runtime_entry/, and
  runs `python -m runtime_entry --help` and `selftest --json`. The block holds for imports made
  by our modules; the standard library and third-party packages choose their own platform
  modules (psutil imports `resource` in its Linux backend only).
- `/proc` exists only on Linux: every "/proc" path in our code sits in a `sys.platform` Linux branch.
(mypy --platform win32/darwin/linux in `make lint` checks the os/signal APIs.)
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("builder", "runtime_entry")
POSIX_ONLY = ("resource", "fcntl", "termios", "pwd", "grp")

# Installed first in the child interpreter: our modules cannot import a POSIX-only module.
BLOCKER = textwrap.dedent(
    f"""
    import importlib.abc, os, sys
    BLOCKED = {POSIX_ONLY!r}
    OURS = tuple(os.path.join({str(ROOT)!r}, p) + os.sep for p in {PACKAGES!r})

    class NoPosixOnlyModules(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] not in BLOCKED:
                return None
            frame = sys._getframe(1)
            while frame is not None and (
                frame.f_code.co_filename.startswith("<frozen") or "importlib" in frame.f_code.co_filename
            ):
                frame = frame.f_back
            if frame is not None and frame.f_code.co_filename.startswith(OURS):
                raise ModuleNotFoundError(
                    f"{{name}} does not exist on Windows (imported by {{frame.f_code.co_filename}})", name=name
                )
            return None

    # The finder sees imports that load a module; a module that something else loaded first
    # (psutil's Linux backend loads resource) is handed out by __import__ without asking it.
    import builtins
    _import = builtins.__import__

    def guarded_import(name, globals=None, locals=None, fromlist=(), level=0):
        importer = (globals or {{}}).get("__name__", "")
        if level == 0 and name.partition(".")[0] in BLOCKED and importer.partition(".")[0] in {PACKAGES!r}:
            raise ModuleNotFoundError(f"{{name}} does not exist on Windows (imported by {{importer}})", name=name)
        return _import(name, globals, locals, fromlist, level)

    builtins.__import__ = guarded_import
    for loaded in [m for m in sys.modules if m.partition(".")[0] in BLOCKED]:
        del sys.modules[loaded]
    sys.meta_path.insert(0, NoPosixOnlyModules())
    """
)

IMPORT_ALL = textwrap.dedent(
    """
    import importlib, pkgutil
    names = []
    for top in ("builder", "runtime_entry"):
        pkg = importlib.import_module(top)
        for info in pkgutil.walk_packages(pkg.__path__, top + "."):
            if info.name.rpartition(".")[2] != "__main__":  # running it is the next test's business
                importlib.import_module(info.name)
                names.append(info.name)
    print(len(names))
    """
)


def _python(code: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STEMS_", "OMP_", "MKL_"))}
    return subprocess.run(
        [sys.executable, "-c", BLOCKER + code, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT)},
    )


def _stems(*args: str) -> subprocess.CompletedProcess[str]:
    run = "import runpy\nsys.argv[0] = 'stems'\nrunpy.run_module('runtime_entry', run_name='__main__', alter_sys=True)\n"
    return _python(run, *args)


def test_every_module_imports_without_posix_only_modules() -> None:
    proc = _python(IMPORT_ALL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert int(proc.stdout.strip()) > 80  # every module, not an early stop


def test_the_blocker_catches_our_own_import() -> None:
    # a module one of ours imports that nothing has loaded yet (the finder) ...
    fresh = "import runtime_entry.errors as m\nexec(compile('import fcntl', m.__file__, 'exec'), vars(m))"
    proc = _python(fresh)
    assert proc.returncode != 0 and "fcntl does not exist on Windows" in proc.stderr, proc.stderr
    # ... and one that a third-party package loaded first (the import hook)
    cached = "import psutil, runtime_entry.errors as m\nexec('import resource', vars(m))"
    proc = _python(cached)
    assert proc.returncode != 0 and "resource does not exist on Windows" in proc.stderr, proc.stderr


def test_stems_help_runs_without_posix_only_modules() -> None:
    proc = _stems("--help")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "selftest" in proc.stdout and "bench" in proc.stdout


def test_stems_selftest_runs_without_posix_only_modules() -> None:
    proc = _stems("selftest", "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report["matmul_ok"] and any(p["user_api"] == "openmp" for p in report["threadpools"])


def _linux_only(test: ast.expr) -> bool:
    """`sys.platform == "linux"` or `sys.platform.startswith("linux")`: what mypy --platform reads."""
    text = ast.unparse(test)
    return text in ('sys.platform == "linux"', "sys.platform == 'linux'") or text.startswith(
        ("sys.platform.startswith('linux')", 'sys.platform.startswith("linux")')
    )


def _proc_paths_outside_linux_branches(source: str, name: str) -> list[str]:
    tree = ast.parse(source)
    parents: dict[ast.AST, ast.AST] = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[child] = node
    wrong = []
    for node in ast.walk(tree):
        texts = []
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            texts = [node.value]
        if not any(t.startswith("/proc") for t in texts):
            continue
        if isinstance(parents.get(node), ast.Expr):  # a docstring or comment-like string
            continue
        child, up = node, parents.get(node)
        while up is not None and not (isinstance(up, ast.If) and _linux_only(up.test) and child in up.body):
            child, up = up, parents.get(up)
        if up is None:
            wrong.append(f"{name}:{node.lineno}")
    return wrong


def test_proc_is_read_only_in_linux_branches() -> None:
    wrong = [
        w
        for pkg in PACKAGES
        for p in sorted((ROOT / pkg).rglob("*.py"))
        for w in _proc_paths_outside_linux_branches(p.read_text(encoding="utf-8"), str(p.relative_to(ROOT)))
    ]
    assert not wrong, "/proc outside a sys.platform linux branch: " + ", ".join(wrong)


def test_the_proc_check_sees_an_unguarded_read() -> None:
    unguarded = 'import sys\nif sys.platform != "win32":\n    X = open("/proc/self/maps")\n'
    assert _proc_paths_outside_linux_branches(unguarded, "x.py") == ["x.py:3"]
    elsewhere = 'import sys\nif sys.platform == "linux":\n    pass\nelse:\n    X = open(f"/proc/{1}/stat")\n'
    assert _proc_paths_outside_linux_branches(elsewhere, "x.py") == ["x.py:5"]
    guarded = 'import sys\nif sys.platform.startswith("linux"):\n    X = open(f"/proc/{1}/stat")\n'
    assert _proc_paths_outside_linux_branches(guarded, "x.py") == []


def test_make_lint_runs_mypy_for_every_target_system_and_ci_runs_make_lint() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = makefile.split("\nlint:", 1)[1].split("\n\n", 1)[0]
    platforms = makefile.split("MYPY_PLATFORMS :=", 1)[1].split("\n", 1)[0].split()
    assert sorted(platforms) == ["darwin", "linux", "win32"]
    assert "mypy --platform $$p" in recipe and "$(MYPY_PLATFORMS)" in recipe and "exit 1" in recipe
    assert "make lint" in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
