"""Which OpenMP runtimes are mapped into this process, read from the OS: /proc on Linux, dyld on
macOS, the module list on Windows. The second witness beside threadpoolctl's inventory
(selftest `threadpools`), which the check stage relies on; one branch per system."""

from __future__ import annotations

import ctypes
import os
import sys

from .contract import openmp_family


def family(path: str) -> str | None:
    """The display name of the OpenMP family a loaded file belongs to (the contract's table)."""
    found = openmp_family(os.path.basename(path))
    return found[1] if found else None


def loaded_libraries() -> list[str]:
    if sys.platform.startswith("linux"):
        paths: set[str] = set()
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                parts = line.split(maxsplit=5)
                if len(parts) == 6 and parts[5].startswith("/"):
                    paths.add(parts[5].strip())
        return sorted(paths)
    elif sys.platform == "darwin":
        dyld = ctypes.CDLL(None)
        dyld._dyld_image_count.restype = ctypes.c_uint32
        dyld._dyld_get_image_name.restype = ctypes.c_char_p
        dyld._dyld_get_image_name.argtypes = [ctypes.c_uint32]
        return sorted(dyld._dyld_get_image_name(i).decode() for i in range(dyld._dyld_image_count()))
    elif sys.platform == "win32":
        from ctypes import wintypes

        psapi, kernel32 = ctypes.WinDLL("psapi"), ctypes.WinDLL("kernel32")
        proc = kernel32.GetCurrentProcess()
        modules = (wintypes.HMODULE * 2048)()
        needed = wintypes.DWORD()
        psapi.EnumProcessModules(proc, modules, ctypes.sizeof(modules), ctypes.byref(needed))
        out = []
        buf = ctypes.create_unicode_buffer(1024)
        for handle in modules[: needed.value // ctypes.sizeof(wintypes.HMODULE)]:
            kernel32.GetModuleFileNameW(handle, buf, 1024)
            out.append(buf.value)
        return sorted(out)
    else:
        return []


def loaded_openmp() -> list[dict[str, str]]:
    """One entry per distinct OpenMP file mapped (real paths, so a symlinked copy counts once)."""
    seen: dict[str, dict[str, str]] = {}
    for path in loaded_libraries():
        fam = family(path)
        if fam:
            real = os.path.realpath(path)
            seen.setdefault(real, {"path": real, "family": fam})
    return list(seen.values())
