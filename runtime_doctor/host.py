"""The machine's facts, as the OS tells them: one reading function per fact, per OS.

Each reader is a thin platform branch around a pure parser that takes the text (or the values)
the OS documents, so that what cannot happen on the test machine (Rosetta, Windows on Arm, a
macOS thermal limit) is tested by feeding the parser what that OS would say. Stdlib only.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

# The variables that decide threads and their placement: the only environment values a report shows.
WATCHED_ENV = (
    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_PROC_BIND", "OMP_PLACES",
    "OMP_WAIT_POLICY", "GOMP_CPU_AFFINITY", "GOMP_SPINCOUNT", "KMP_AFFINITY", "KMP_BLOCKTIME",
    "KMP_DUPLICATE_LIB_OK", "STEMS_THREADS", "STEMS_INTEROP_THREADS", "STEMS_MATMUL_PRECISION",
)  # fmt: skip
# Instruction sets the engine's kernels use, by our name -> the flag names each OS gives them
# (Linux /proc/cpuinfo `flags` or arm64 `Features`, macOS `sysctl hw.optional.*`).
ENGINE_ISA = {
    "avx2": ("avx2", "hw.optional.avx2_0"),
    "avx512": ("avx512f", "hw.optional.avx512f"),
    "avx512_bf16": ("avx512_bf16",),
    "amx": ("amx_tile", "amx_bf16"),
    "neon": ("asimd", "hw.optional.neon", "hw.optional.AdvSIMD"),
    "arm_bf16": ("bf16", "hw.optional.arm.FEAT_BF16"),
}
IMAGE_FILE_MACHINE_ARM64 = 0xAA64  # IsWow64Process2's nativeMachine on Windows on Arm


def watched_env(env: Mapping[str, str]) -> dict[str, str]:
    return {k: env[k] for k in WATCHED_ENV if k in env}


# --- usable cores -----------------------------------------------------------------------------


def cpu_mask() -> list[int] | None:
    """The CPUs this process may run on (None where the OS has no affinity API: macOS)."""
    if sys.platform == "linux":
        return sorted(os.sched_getaffinity(0))
    else:
        return None


def parse_cpu_max(text: str) -> float | None:
    """cgroup v2 `cpu.max` ("QUOTA PERIOD" or "max PERIOD") as cores, None when unlimited.

    >>> parse_cpu_max("150000 100000\\n"), parse_cpu_max("max 100000")
    (1.5, None)
    """
    parts = text.split()
    if len(parts) != 2 or parts[0] == "max":
        return None
    try:
        return int(parts[0]) / int(parts[1])
    except (ValueError, ZeroDivisionError):
        return None


def parse_cfs(quota: str, period: str) -> float | None:
    """cgroup v1 `cpu.cfs_quota_us` (-1: unlimited) over `cpu.cfs_period_us`, as cores.

    >>> parse_cfs("50000\n", "100000\n"), parse_cfs("-1", "100000")
    (0.5, None)
    """
    try:
        q, p = int(quota), int(period)
    except ValueError:
        return None
    return q / p if q > 0 and p > 0 else None


def cgroup_files(proc_self_cgroup: str) -> list[tuple[Path, ...]]:
    """Where this process's CPU quota is, from /proc/self/cgroup (pure): v2 `cpu.max`, v1 the cpu
    controller's `cpu.cfs_quota_us` and `cpu.cfs_period_us`; the root's last."""
    found: list[tuple[Path, ...]] = []
    for line in proc_self_cgroup.splitlines():
        _, controllers, path = line.split(":", 2) if line.count(":") >= 2 else ("", "", "")
        if line.startswith("0::"):
            found.append((Path("/sys/fs/cgroup") / path.lstrip("/") / "cpu.max",))
        elif "cpu" in controllers.split(","):
            base = Path("/sys/fs/cgroup") / controllers / path.lstrip("/")
            found.append((base / "cpu.cfs_quota_us", base / "cpu.cfs_period_us"))
    return [*found, (Path("/sys/fs/cgroup/cpu.max"),)]


def cgroup_quota() -> float | None:
    """This process's cgroup CPU quota in cores (Linux, cgroup v2 or v1), None when there is none."""
    if sys.platform == "linux":
        try:
            places = cgroup_files(Path("/proc/self/cgroup").read_text())
        except OSError:
            places = cgroup_files("")
        for files in places:
            try:
                texts = [f.read_text() for f in files]
            except OSError:
                continue
            quota = parse_cpu_max(texts[0]) if len(texts) == 1 else parse_cfs(*texts)
            if quota is not None:
                return quota
        return None
    else:
        return None


def usable_cpus(host: int, mask: list[int] | None, quota: float | None) -> int:
    """The cores a process can keep busy: the mask, then the quota rounded up (pure)."""
    usable = len(mask) if mask else host
    return min(usable, max(1, int(quota + 0.999))) if quota is not None else usable


# --- the processor ----------------------------------------------------------------------------


def parse_cpuinfo(text: str) -> tuple[str | None, set[str]]:
    """Linux /proc/cpuinfo: the model name (x86 `model name`, arm64 `Model`/`CPU part`) and the flags."""
    model = None
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "model", "hardware") and model is None and not value.strip().isdigit():
            model = value.strip() or None
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
    return model, flags


def parse_sysctl(values: Mapping[str, str]) -> tuple[str | None, set[str]]:
    """macOS `sysctl` values: machdep.cpu.brand_string and each hw.optional.* that is 1."""
    flags = {k for k, v in values.items() if k.startswith("hw.optional.") and v.strip() == "1"}
    return values.get("machdep.cpu.brand_string"), flags


def engine_isa(flags: Iterable[str]) -> list[str]:
    """The instruction sets the engine uses, by our names, that these OS flags announce (pure)."""
    have = set(flags)
    return [name for name, names in ENGINE_ISA.items() if have & set(names)]


def _sysctl(*names: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in names:
        try:
            proc = subprocess.run(["sysctl", "-n", name], capture_output=True, text=True, timeout=5)
        except (OSError, subprocess.SubprocessError):
            continue
        if proc.returncode == 0:
            out[name] = proc.stdout.strip()
    return out


def processor() -> tuple[str | None, list[str]]:
    """(CPU model, engine instruction sets) of this machine, as far as the OS says."""
    if sys.platform == "linux":
        try:
            model, flags = parse_cpuinfo(Path("/proc/cpuinfo").read_text(errors="replace"))
        except OSError:
            return None, []
        return model, engine_isa(flags)
    elif sys.platform == "darwin":
        names = [n for names in ENGINE_ISA.values() for n in names if n.startswith("hw.")]
        model, flags = parse_sysctl(_sysctl("machdep.cpu.brand_string", *names))
        return model, engine_isa(flags)
    else:
        return platform.processor() or None, []


# --- memory -----------------------------------------------------------------------------------


def parse_meminfo(text: str) -> dict[str, int]:
    """Linux /proc/meminfo as MB: total, available, swap total, swap used."""
    kb: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        parts = value.split()
        if parts and parts[0].isdigit():
            kb[key.strip()] = int(parts[0])
    mb = {k: v // 1024 for k, v in kb.items()}
    return {
        "total_mb": mb.get("MemTotal", 0),
        "available_mb": mb.get("MemAvailable", mb.get("MemFree", 0)),
        "swap_total_mb": mb.get("SwapTotal", 0),
        "swap_used_mb": mb.get("SwapTotal", 0) - mb.get("SwapFree", 0),
    }


def memory() -> dict[str, int] | None:
    if sys.platform == "linux":
        try:
            return parse_meminfo(Path("/proc/meminfo").read_text())
        except OSError:
            return None
    else:
        return None


# --- translation ------------------------------------------------------------------------------


def rosetta(sysctl_proc_translated: str | None) -> bool | None:
    """macOS: `sysctl -n sysctl.proc_translated` is 1 under Rosetta 2, 0 native on Apple Silicon,
    and absent (an error) on an Intel Mac. None when unknown."""
    value = (sysctl_proc_translated or "").strip()
    return {"1": True, "0": False}.get(value)


def windows_emulated(native_machine: int | None, process_arch: str) -> bool | None:
    """Windows: IsWow64Process2's nativeMachine is IMAGE_FILE_MACHINE_ARM64 (0xAA64) on Windows on
    Arm; a process whose own architecture (PROCESSOR_ARCHITECTURE, platform.machine()) is then
    AMD64 or x86 runs emulated."""
    if native_machine is None:
        return None
    return native_machine == IMAGE_FILE_MACHINE_ARM64 and process_arch.upper() in ("AMD64", "X86", "I386")


def _windows_native_machine() -> int | None:
    if sys.platform == "win32":
        import ctypes
        from ctypes import wintypes

        process, native = wintypes.USHORT(), wintypes.USHORT()
        try:
            fn = ctypes.windll.kernel32.IsWow64Process2
            ok = fn(ctypes.windll.kernel32.GetCurrentProcess(), ctypes.byref(process), ctypes.byref(native))
        except (AttributeError, OSError):
            return None
        return int(native.value) if ok else None
    else:
        return None


def translation() -> dict[str, str] | None:
    """What translates this process's instructions, if anything: Rosetta 2 or Windows' emulation."""
    if sys.platform == "darwin":
        if rosetta(_sysctl("sysctl.proc_translated").get("sysctl.proc_translated")):
            return {"kind": "rosetta", "evidence": "sysctl.proc_translated = 1"}
        return None
    elif sys.platform == "win32":
        native = _windows_native_machine()
        if windows_emulated(native, platform.machine()):
            return {"kind": "windows-arm-emulation",
                    "evidence": f"IsWow64Process2 nativeMachine = 0x{native or 0:X} (ARM64), process {platform.machine()}"}  # fmt: skip
        return None
    else:
        return None


# --- power and thermal state ------------------------------------------------------------------


def parse_pmset_therm(text: str) -> int | None:
    """macOS `pmset -g therm`: the CPU_Speed_Limit percentage (100 = not limited), None if absent.

    >>> parse_pmset_therm("Note: No thermal warning level has been recorded\\nCPU_Speed_Limit \\t= 70\\n")
    70
    """
    m = re.search(r"CPU_Speed_Limit\s*=\s*(\d+)", text)
    return int(m.group(1)) if m else None


def parse_power_supplies(online: Mapping[str, str]) -> bool | None:
    """Linux /sys/class/power_supply/*/online of the mains supplies: on battery when none is 1."""
    if not online:
        return None
    return not any(v.strip() == "1" for v in online.values())


def power() -> dict[str, Any] | None:
    if sys.platform == "darwin":
        try:
            text = subprocess.run(["pmset", "-g", "therm"], capture_output=True, text=True, timeout=5).stdout
        except (OSError, subprocess.SubprocessError):
            return None
        return {"cpu_speed_limit": parse_pmset_therm(text), "source": "pmset -g therm"}
    elif sys.platform == "linux":
        online = {}
        for p in Path("/sys/class/power_supply").glob("*/online"):
            try:
                if (p.parent / "type").read_text().strip() == "Mains":
                    online[p.parent.name] = p.read_text()
            except OSError:
                continue
        battery = parse_power_supplies(online)
        return None if battery is None else {"on_battery": battery, "source": "/sys/class/power_supply"}
    else:
        return None


# --- other processes on the cores -------------------------------------------------------------


def parse_proc_stat(text: str) -> tuple[int, int]:
    """Linux /proc/stat's first line: (busy ticks, all ticks); iowait and idle are not busy."""
    fields = [int(x) for x in text.splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields[:8]) - idle, sum(fields[:8])


def others_busy_cores(busy_ticks: int, own_cpu_s: float, wall_s: float, hz: int) -> float:
    """Cores that other processes kept busy over a window: all busy ticks less this process's own
    CPU time, over the wall time (pure)."""
    if wall_s <= 0:
        return 0.0
    return max(0.0, round((busy_ticks / hz - own_cpu_s) / wall_s, 2))


class BusyWatch:
    """Around a piece of work: how many cores the machine's other processes kept busy (Linux)."""

    def __init__(self) -> None:
        self.start = self._sample()

    @staticmethod
    def _sample() -> tuple[float, float, int] | None:
        if sys.platform == "linux":
            try:
                busy, _ = parse_proc_stat(Path("/proc/stat").read_text())
            except (OSError, ValueError, IndexError):
                return None
            t = os.times()
            return time.perf_counter(), t.user + t.system, busy
        else:
            return None

    def others(self, children_cpu_s: float = 0.0) -> float | None:
        """Cores the rest of the machine kept busy since the start: all less this process's own CPU
        time, and less `children_cpu_s` (a child watched meanwhile, e.g. by `builder doctor`)."""
        end = self._sample()
        if self.start is None or end is None:
            return None
        hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        own = end[1] - self.start[1] + children_cpu_s
        return others_busy_cores(end[2] - self.start[2], own, end[0] - self.start[0], hz)


def load_average() -> float | None:
    if sys.platform == "win32":
        return None
    else:
        try:
            return round(os.getloadavg()[0], 2)
        except OSError:
            return None


def machine() -> dict[str, Any]:
    """The machine, as the fingerprint records it and the doctor compares it."""
    model, isa = processor()
    mem = memory()
    mask, quota = cpu_mask(), cgroup_quota()
    host = os.cpu_count() or 1
    return {
        "system": platform.system(),
        "arch": platform.machine(),
        "cpu_model": model,
        "cores": host,
        "cpu_mask": mask,
        "cgroup_quota_cores": quota,
        "usable_cpus": usable_cpus(host, mask, quota),
        "isa": isa,
        "memory_mb": mem["total_mb"] if mem else None,
    }
