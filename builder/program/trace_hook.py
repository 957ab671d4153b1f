"""The trace: what a program touched while it ran its workload in its venv (builder reads this text,
never runs it; the traced freeze puts it first in the venv's launcher).

With `RUNTIME_BUILDER_TRACE=PATH`, it records, and writes at exit as JSON:

- every module in `sys.modules`, with the file it came from (imports by name through importlib,
  which PyInstaller's analysis of the code cannot follow);
- every file opened (the "open" audit event: data files, `importlib.resources`, and the
  `*.dist-info` files `importlib.metadata` reads);
- every shared library loaded: the "ctypes.dlopen" audit event, and on Linux the mapped files
  of the process (what extension modules pulled in through the dynamic loader).

builder keeps what lies under the venv's site-packages (builder/stages/trace.py). Stdlib only;
nothing here may raise into the program.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import sysconfig
from pathlib import Path
from typing import Any

TRACE_ENV = "RUNTIME_BUILDER_TRACE"
# extensions of files that are modules: the imports cover them
MODULE_SUFFIXES = (".py", ".pyc")

_startup: list[str] = []  # modules of the interpreter's start (site, .pth files), not the program's
_opened: set[str] = set()
_dlopened: set[str] = set()


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "open":
        path = args[0]
        if isinstance(path, (str, bytes, os.PathLike)):
            name = os.fsdecode(path)
            if not name.endswith(MODULE_SUFFIXES):
                _opened.add(name)
    elif event == "ctypes.dlopen" and args and isinstance(args[0], str):
        _dlopened.add(args[0])


def _mapped_files() -> list[str]:
    """Files mapped into the process: the shared libraries the loader brought in."""
    if sys.platform == "linux":
        found = set()
        try:
            with open("/proc/self/maps", encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    parts = line.split(None, 5)
                    if len(parts) == 6 and parts[5].startswith("/"):
                        found.add(parts[5].strip())
        except OSError:
            return []
        return sorted(found)
    else:  # elsewhere the dlopen audit events are the record
        return []


def _module_files() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name, module in list(sys.modules.items()):
        if type(module).__name__ == "_LazyModule":
            # importlib.util.LazyLoader's (librosa's `lazy.load("samplerate")`): any attribute read
            # would run the module now, at exit, and its code never ran during the workload
            continue
        try:  # the module's own dict: a module class's __getattr__ may run code or raise
            attrs = object.__getattribute__(module, "__dict__")
        except AttributeError:
            continue
        spec = attrs.get("__spec__")
        if spec is None or name.startswith("_runtime_builder") or name in ("__main__", "__mp_main__"):
            continue
        if type(spec.loader).__module__.startswith("_runtime_builder"):
            continue  # served by builder's own hook (the doctor's rule book): in every freeze already
        if attrs.get("__name__", name) != name:
            continue  # another name of a module (os.path is posixpath, _frozen_importlib importlib._bootstrap)
        origin = spec.origin if spec.has_location else None
        found[name] = origin
    return found


def snapshot() -> dict[str, Any]:
    """What the process touched so far (sorted, so two traces of one run compare)."""
    return {
        "trace": 1,
        "python": sys.version.split()[0],
        "prefix": sys.prefix,
        "stdlib": sorted({sysconfig.get_path("stdlib"), sysconfig.get_path("platstdlib")}),
        "modules": dict(sorted(_module_files().items())),
        "startup": _startup,
        "opened": sorted(p for p in _opened if os.path.isfile(p)),
        "dlopened": sorted(_dlopened),
        "mapped": _mapped_files(),
    }


def _write() -> None:
    target = os.environ.get(TRACE_ENV)
    if not target:
        return
    try:
        tmp = Path(f"{target}.tmp{os.getpid()}")
        tmp.write_text(json.dumps(snapshot(), indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, target)
    except Exception as exc:  # noqa: BLE001 - at exit nothing may raise; say why on stderr instead
        sys.stderr.write(f"runtime-builder trace: not written: {exc}\n")


def install() -> None:
    """Watch opens and loads from now on; write the trace at exit (only with RUNTIME_BUILDER_TRACE)."""
    if os.environ.get(TRACE_ENV):
        _startup[:] = sorted(sys.modules)
        sys.addaudithook(_audit)
        atexit.register(_write)
