"""The rule book: the facts of one run -> the causes that slow it, each with evidence and fix (pure).

One rule per cause; `find_causes` runs them all. `builder doctor` (facts from its watch of the
process) and the runtime's own doctor (facts from inside the process, and the build's fingerprint)
feed the same keys; a fact one side cannot see is absent or None, and its rule stays silent.

Facts read (all optional unless said): usable_cpus (required), host_cpus, cpu_mask,
cgroup_quota_cores, threads, threads_requested, interop, env_parent (thread variables the process
started with), env_at_import (at torch's import), settings_calls, openmp ([{path, threads}]),
libraries_loaded, thread_rows ([{tid, affinity, pinned, cores_after_job}]), stems (settings come
from a profile: the fix names its keys), load_average, others_busy_cores, translation, isa,
build_isa, precision, memory, power, imports_torch_s, build_imports_torch_s, calibration_s,
build_calibration_s, build_usable_threads.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

Facts = Mapping[str, Any]
Cause = dict[str, Any]

# The runtime's own settings variables (runtime_entry/contract/shared.json `settings_env`; a test
# holds the two equal: this module cannot read the contract, which a team's program does not carry).
SETTINGS_ENV = {"threads": "STEMS_THREADS", "interop_threads": "STEMS_INTEROP_THREADS",
                "matmul_precision": "STEMS_MATMUL_PRECISION"}  # fmt: skip
# A thread using at least this share of a core after the job is "still busy". An idle pool uses
# ~0 (onnxruntime without spinning: 0.015 cores); a spinning thread takes a whole core on a quiet
# machine and still ~0.27 of one on a 2-core machine with a load average of 11.
BUSY_AFTER = 0.1
# Inter-op threads "far above" the cores: more than this many times the usable CPUs.
INTEROP_FACTOR = 2
# Other processes "keep the cores busy" when they take at least this share of the usable cores
# (and BUSY_OTHERS_MIN cores at least) while the runtime is measured, and (with a fingerprint)
# the calibration ran SLOWED_BEYOND times slower than the cores and instruction sets explain.
BUSY_OTHERS_SHARE, BUSY_OTHERS_MIN, SLOWED_BEYOND = 0.4, 0.75, 1.3
# Memory: pressure when less than this share is available, or swap in use beyond this many MB.
AVAILABLE_SHARE = 0.1
SWAP_USED_MB = 512
# Imports "far slower" than the build's: this many times, and at least this many seconds more.
SLOW_IMPORT_FACTOR, SLOW_IMPORT_EXTRA_S = 3.0, 2.0
# What a missing instruction set costs the fp32 kernels, roughly (the closing figure's M):
# AVX2 -> SSE halves the vector width, AVX-512 -> AVX2 halves it again (less in practice).
ISA_COST = {"avx2": 2.0, "avx512": 1.5, "neon": 2.0}
# Instruction sets that only the reduced precisions ("high", "medium": bf16 matmuls) use.
BF16_ISA = ("avx512_bf16", "amx", "arm_bf16")
PINNING = ("GOMP_CPU_AFFINITY", "KMP_AFFINITY", "OMP_PROC_BIND", "OMP_PLACES")
UNPINNED = {"OMP_PROC_BIND": ("false",), "KMP_AFFINITY": ("disabled", "none"), "OMP_PLACES": ("",)}
THREAD_HINTS = {  # library in the process -> what its spinning threads are and how to stop them
    "onnxruntime": (
        "an onnxruntime session's intra-op threads (onnxruntime spins its pool between runs by default)",
        "create the session with `so.add_session_config_entry('session.intra_op.allow_spinning', '0')` "
        "and `so.intra_op_num_threads` = the runtime's threads (a session option: no profile key or "
        "environment variable turns it off)",
    ),
}


def cause(
    cid: str, title: str, evidence: list[str], fix: str, *, rerun: Mapping[str, Any] | None = None
) -> Cause:
    """One cause. `rerun` says how builder can apply the fix from outside to measure its cost."""
    return {
        "id": cid,
        "title": title,
        "evidence": evidence,
        "fix": fix,
        "rerun": dict(rerun or {}),
        "cost": None,
    }


Finding = tuple[list[Cause], list[str]]


def _interop(f: Facts) -> Finding:
    usable, interop, stems = int(f["usable_cpus"]), f.get("interop"), bool(f.get("stems"))
    if interop is None or interop <= max(2, INTEROP_FACTOR * usable):
        return [], []
    return [cause(
        "interop-threads",
        f"inter-op threads ({interop}) far above the {usable} usable CPUs",
        [f"torch.get_num_interop_threads() = {interop}; usable CPUs = {usable}",
         "each inter-op thread can run its own intra-op work: they compete for the same cores"],
        "set `runtime.interop-threads = 1` in the profile (or STEMS_INTEROP_THREADS=1); "
        f"at most {usable} on this machine" if stems else
        "call torch.set_num_interop_threads(1) before any parallel work",
        rerun={"extra": {SETTINGS_ENV["interop_threads"]: "1"}} if stems else None,
    )], []  # fmt: skip


def _pinning_active(name: str, value: str) -> bool:
    return value.strip().lower() not in UNPINNED.get(name, ())


def _env_at_import(f: Facts) -> Mapping[str, str]:
    return f.get("env_at_import") or f.get("env_parent") or {}


def _pinning(f: Facts) -> Finding:
    rows, mask = f.get("thread_rows") or [], f.get("cpu_mask")
    pinned = [r for r in rows if r.get("pinned")]
    gnu = any("gomp" in str(o.get("path", "")).lower() for o in f.get("openmp") or [])
    for name in PINNING:
        value = _env_at_import(f).get(name)
        if value is None or not _pinning_active(name, value):
            continue
        if pinned:
            cpus = sorted({c for r in pinned for c in r["affinity"]})
            fix_var, fix_value = (
                ("KMP_AFFINITY", "disabled") if name == "KMP_AFFINITY" else ("OMP_PROC_BIND", "false")
            )
            bind = (
                " (OMP_PROC_BIND takes precedence over GOMP_CPU_AFFINITY)"
                if name == "GOMP_CPU_AFFINITY"
                else ""
            )
            return [cause(
                "affinity-pinning",
                f"{name}={value} pins the OpenMP threads",
                [f"{name}={value} in the environment at torch's import",
                 f"{len(pinned)} of {len(rows)} threads pinned to CPU(s) {cpus} of the allowed {mask}"],
                f"remove {name} from the environment the app starts the runtime with, or set "
                f"`runtime.env.{fix_var} = \"{fix_value}\"` in the profile" + bind,
                rerun={"extra": {fix_var: fix_value}},
            )], []  # fmt: skip
        if name.startswith("KMP_") and gnu:
            return [], [
                f"{name}={value} is set but the OpenMP loaded here (GNU libgomp) ignores it; under Intel "
                f'or LLVM OpenMP (the macOS builds) it pins threads: set `runtime.env.{name} = "disabled"`'
            ]
    return [], []


def _cpu_limit(f: Facts) -> Finding:
    """Fewer usable CPUs than the machine has (a mask, a quota), or more threads than usable CPUs."""
    usable, threads, mask, quota = (
        int(f["usable_cpus"]),
        f.get("threads"),
        f.get("cpu_mask"),
        f.get("cgroup_quota_cores"),
    )
    host = f.get("host_cpus") or 0
    limit = []
    if mask is not None and len(mask) < host:
        limit.append(f"CPU affinity mask {mask} ({len(mask)} of {host} CPUs)")
    if quota is not None and quota < host:
        limit.append(f"cgroup CPU quota {quota:g} cores (cpu.max or cpu.cfs_quota_us)")
    if threads is None or threads <= usable:
        return ([cause(
            "cpu-limit", f"the process may use {usable} of the machine's {host} CPUs",
            [*limit, f"torch intra-op threads = {threads}"],
            "start the runtime without the limit: the app's (or its launcher's) CPU mask (taskset, "
            "start /affinity, a job object) or the container's CPU quota (--cpus)",
        )], []) if limit else ([], [])  # fmt: skip
    stems = bool(f.get("stems"))
    fix = (
        f"set `runtime.threads = \"auto\"` (the CPUs the process may use) or `runtime.threads = {usable}`"
        + ("; `auto` does not see a cgroup quota: give the number" if quota else "")
        if stems else f"set OMP_NUM_THREADS={usable} (or torch.set_num_threads({usable})) for this runtime"
    )  # fmt: skip
    var = SETTINGS_ENV["threads"] if stems else "OMP_NUM_THREADS"
    return [cause(
        "cpu-limit",
        f"{threads} threads on {usable} usable CPU(s)",
        [f"torch intra-op threads = {threads}", *(limit or [f"usable CPUs = {usable}"]),
         "more compute threads than CPUs: OpenMP threads wait on each other at every barrier"],
        fix,
        rerun={"extra": {var: str(usable)}},
    )], []  # fmt: skip


def _inherited_omp(f: Facts) -> Finding:
    usable, threads = int(f["usable_cpus"]), f.get("threads")
    parent = (f.get("env_parent") or {}).get("OMP_NUM_THREADS")
    at_import = _env_at_import(f).get("OMP_NUM_THREADS")
    calls = f.get("settings_calls") or []
    raised = any(c["call"] == "set_num_threads" and c["value"] > 1 for c in calls)
    if parent == "1" and usable >= 2 and threads == 1 and at_import == "1" and not raised:
        if f.get("threads_requested") == 1:
            return [], ["the runtime runs 1 thread because its own settings ask for 1 (runtime.threads)"]
        return [cause(
            "inherited-omp-num-threads",
            "OMP_NUM_THREADS=1 inherited from the parent and never overridden",
            ["OMP_NUM_THREADS=1 in the environment the process started with",
             f"still 1 at torch's import; torch ran {threads} thread on {usable} usable CPUs",
             "no torch.set_num_threads call raised it"],
            "remove OMP_NUM_THREADS from the environment the app starts the worker with, or export "
            "it in the program before torch's import; a runtime built by builder does that from "
            "`runtime.threads` (its runtime hook overwrites OMP_NUM_THREADS)",
            rerun={"drop": ["OMP_NUM_THREADS"]},
        )], []  # fmt: skip
    if parent is not None and at_import not in (None, parent):
        return [], [
            f"OMP_NUM_THREADS={parent} inherited from the parent; the runtime overwrote it with "
            f"{at_import} before torch's import (as it should)"
        ]
    return [], []


def _two_openmp(f: Facts) -> Finding:
    omp = f.get("openmp") or []
    if len(omp) <= 1:
        return [], []
    sizes = [f"{o['path']} ({o['threads']} threads)" if o.get("threads") else str(o["path"]) for o in omp]
    return [cause(
        "two-openmp-runtimes",
        f"{len(omp)} OpenMP runtimes loaded in one process",
        ["loaded: " + "; ".join(sizes),
         "each keeps its own thread pool: thread limits set on one are ignored by the other, and "
         "their threads compete (or crash, 'OMP: Error #15', with Intel's)"],
        "apply the OpenMP fix: `builder openmp VENV --fix` (`builder build` applies it), then check "
        "with `builder openmp VENV --verify`",
    )], []  # fmt: skip


def _spinning(f: Facts) -> Finding:
    busy = [r for r in f.get("thread_rows") or [] if (r.get("cores_after_job") or 0) >= BUSY_AFTER]
    if not busy:
        return [], []
    loaded = f.get("libraries_loaded") or []
    libs = [lib for lib in loaded if lib in THREAD_HINTS]
    what, fix = THREAD_HINTS[libs[0]] if libs else (
        "threads of another library in the process (loaded: "
        + (", ".join(loaded) or "none of the known pool libraries") + ")",
        "find the library that starts them and stop its pool after use or turn its spin-wait off",
    )  # fmt: skip
    cores, usable = round(sum(r["cores_after_job"] for r in busy), 2), int(f["usable_cpus"])
    return [cause(
        "spinning-threads",
        f"{len(busy)} thread(s) still busy after the job: {what}",
        [f"after the job ended, {len(busy)} thread(s) used {cores} cores with the main thread asleep "
         f"(threads {', '.join(str(r['tid']) for r in busy)})",
         f"that is {cores / usable:.0%} of the {usable} usable CPUs taken from torch while both run"],
        fix,
    )], []  # fmt: skip


def _busy(f: Facts) -> Finding:
    usable, others, load = int(f["usable_cpus"]), f.get("others_busy_cores"), f.get("load_average")
    closing = explained(f)
    # with the build's fingerprint, only when the calibration also ran slower than cores and ISA explain
    slowed = closing is None or closing["slower"] >= SLOWED_BEYOND * closing["explained"]
    if others is not None and slowed and _others_busy(f):
        return [cause(
            "busy-cores",
            f"other processes kept {others:g} of the {usable} usable cores busy",
            [f"while it was measured, the machine's busy CPU time less the runtime's own was "
             f"{others:g} cores (/proc/stat)", *([f"load average {load:g}"] if load is not None else []),
             *([closing["text"]] if closing else [])],
            "close or pause what else runs (a build, a browser tab, another separation), or give the runtime "
            "fewer threads than cores so that it does not wait on them at every barrier",
        )], []  # fmt: skip
    if others is None and load is not None and load > (f.get("host_cpus") or usable):
        return [], [
            f"the machine was busy (load average {load:g} on {f.get('host_cpus')} CPUs): cores busy and the "
            "measured costs are noisy; causes are named from settings, masks, pools and threads, not timings"
        ]
    return [], []


def _reapplied(f: Facts) -> Finding:
    values = [c["value"] for c in f.get("settings_calls") or [] if c["call"] == "set_num_threads"]
    if len(values) <= 2:
        return [], []
    return [cause(
        "settings-reapplied",
        f"torch.set_num_threads called {len(values)} times",
        [f"values {values}; each call after parallel work has started rebuilds the OpenMP pool"],
        "apply thread settings once, before torch's import (`runtime.threads`; the runtime hook exports "
        "OMP_NUM_THREADS), and not again per job",
    )], []  # fmt: skip


def _translated(f: Facts) -> Finding:
    t = f.get("translation")
    if not t:
        return [], []
    if t["kind"] == "rosetta":
        return [cause(
            "translated", "an x86_64 runtime running under Rosetta 2 on Apple Silicon",
            [t["evidence"], "every instruction is translated; AVX is not available to translated code"],
            "ship the arm64 runtime (the macos-arm64 profile) to Apple Silicon Macs; the app picks the dist "
            "by `platform.machine()` of a native process, or `sysctl hw.optional.arm64`",
        )], []  # fmt: skip
    return [cause(
        "translated", "an x86_64 runtime emulated on Windows on Arm",
        [t["evidence"], "every instruction is emulated"],
        "build and ship a windows-arm64 runtime for Arm machines",
    )], []  # fmt: skip


def _missing_isa(f: Facts) -> Finding:
    have, build = f.get("isa"), f.get("build_isa")
    if have is None or not build:
        return [], []
    missing = [i for i in build if i not in have]
    precision = f.get("precision") or "highest"
    costly = [i for i in missing if i in ISA_COST or (i in BF16_ISA and precision != "highest")]
    if not costly:
        return [], ([f"instruction sets {missing} of the build machine are missing here; unused at precision "
                     f"{precision!r}"] if missing else [])  # fmt: skip
    return [cause(
        "missing-isa",
        f"this CPU lacks {', '.join(costly)}, which the build machine had",
        [f"build machine: {', '.join(build)}; this machine: {', '.join(have) or 'none of them'}",
         f"matmul precision {precision!r}: "
         + ("bf16 kernels fall back to fp32" if set(costly) & set(BF16_ISA) else "vector kernels run narrower")],
        "nothing to set: the kernels pick what the CPU has. Budget for it (the closing figure says how much) "
        "or, for bf16 precision on a CPU without it, use `runtime.matmul-precision = \"highest\"`",
    )], []  # fmt: skip


def _memory(f: Facts) -> Finding:
    mem = f.get("memory")
    if not mem or not mem.get("total_mb"):
        return [], []
    low = mem["available_mb"] < AVAILABLE_SHARE * mem["total_mb"]
    swapping = mem.get("swap_used_mb", 0) > SWAP_USED_MB
    if not (low or swapping):
        return [], []
    return [cause(
        "memory-pressure",
        f"{mem['available_mb']} MB of {mem['total_mb']} MB available" + (f", {mem['swap_used_mb']} MB swapped" if swapping else ""),
        ["/proc/meminfo MemAvailable, SwapTotal - SwapFree",
         "the model and its activations page in and out: every chunk waits on the disk"],
        "close what holds the memory, or separate with a smaller chunk / model",
    )], []  # fmt: skip


def _power(f: Facts) -> Finding:
    p = f.get("power") or {}
    limit = p.get("cpu_speed_limit")
    if limit is not None and limit < 100:
        return [cause(
            "power-limited", f"the OS limits the CPU to {limit}% of its speed",
            [f"CPU_Speed_Limit = {limit} ({p.get('source')})", "thermal or power management throttles the cores"],
            "let the machine cool, plug it in, turn off low-power mode",
        )], []  # fmt: skip
    if p.get("on_battery"):
        return [], ["on battery: the OS may lower the CPU's speed"]
    return [], []


def _others_busy(f: Facts) -> bool:
    others = f.get("others_busy_cores")
    return others is not None and others >= max(BUSY_OTHERS_MIN, BUSY_OTHERS_SHARE * int(f["usable_cpus"]))


def _slow_imports(f: Facts) -> Finding:
    now, then = f.get("imports_torch_s"), f.get("build_imports_torch_s")
    if now is None or not then or now < max(SLOW_IMPORT_FACTOR * then, then + SLOW_IMPORT_EXTRA_S):
        return [], []
    if _others_busy(f):  # the cores were taken: busy-cores explains a slow import too
        return [], [f"importing torch took {now:.1f} s ({then:.1f} s at the build), with the cores busy"]
    return [cause(
        "slow-imports", f"importing torch took {now:.1f} s, {now / then:.0f}x the build machine's {then:.1f} s",
        [f"torch import {now:.2f} s here, {then:.2f} s at the build", "slow or scanned storage (antivirus, network drive)"],
        "install the runtime on a local disk, and exclude its folder from on-access scanning",
    )], []  # fmt: skip


RULES: tuple[Callable[[Facts], Finding], ...] = (
    _interop, _pinning, _cpu_limit, _inherited_omp, _two_openmp, _spinning, _busy, _reapplied,
    _translated, _missing_isa, _memory, _power, _slow_imports,
)  # fmt: skip


def find_causes(f: Facts) -> tuple[list[Cause], list[str]]:
    """The causes the facts show, and notes (things seen that are not slowing this runtime)."""
    causes: list[Cause] = []
    notes: list[str] = []
    for rule in RULES:
        found, said = rule(f)
        causes += found
        notes += said
    return causes, notes


def openmp_files(pools: Iterable[Mapping[str, Any]] | None) -> list[tuple[str, Mapping[str, Any]]]:
    """(real path, its first pool) of each OpenMP runtime file loaded, in threadpoolctl's order: one
    inventory for the doctor and for builder (pure but for realpath: one file reached by two links
    is one runtime, as the loader sees it).

    >>> [(path, pool["num_threads"]) for path, pool in openmp_files([
    ...     {"user_api": "openmp", "filepath": "/a/libgomp.so.1", "num_threads": 2},
    ...     {"user_api": "blas", "filepath": "/a/libopenblas.so"},
    ...     {"user_api": "openmp", "filepath": "/a/libgomp.so.1", "num_threads": 4}])]
    [('/a/libgomp.so.1', 2)]
    """
    seen: dict[str, Mapping[str, Any]] = {}
    for p in pools or []:
        if p.get("user_api") == "openmp" and p.get("filepath"):
            seen.setdefault(os.path.realpath(str(p["filepath"])), p)
    return list(seen.items())


def openmp_pools(pools: Iterable[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """OpenMP runtimes loaded, one per real file, as the doctor reports them: {path, threads, api}."""
    return [
        {"path": k, "threads": v.get("num_threads"), "api": v.get("internal_api")}
        for k, v in openmp_files(pools)
    ]


def explained(f: Facts) -> dict[str, Any] | None:
    """The closing figure: how much slower the calibration runs here than at the build (N), against
    what the usable cores and the missing instruction sets explain (M). None without a fingerprint."""
    now, then = f.get("calibration_s"), f.get("build_calibration_s")
    if not now or not then:
        return None
    build_threads = int(f.get("build_usable_threads") or 1)
    here = min(int(f.get("threads") or f["usable_cpus"]), int(f["usable_cpus"]))
    pinned = {c for r in f.get("thread_rows") or [] if r.get("pinned") for c in r.get("affinity") or []}
    if pinned:  # threads pinned onto fewer CPUs run on those alone
        here = min(here, len(pinned))
    m = max(1.0, build_threads / max(1, here))
    missing = [i for i in f.get("build_isa") or [] if i not in (f.get("isa") or [])]
    for isa in missing:
        m *= ISA_COST.get(isa, 1.0)
    n = now / then
    return {
        "slower": round(n, 2),
        "explained": round(m, 2),
        "text": f"this machine runs the calibration {n:.2f}x slower than the build machine, against the "
        f"{m:.2f}x its cores ({here} used here, {build_threads} at the build) and instruction sets "
        f"({', '.join(missing) or 'none missing'}) explain",
    }
