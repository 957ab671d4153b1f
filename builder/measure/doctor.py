"""`builder doctor`: say why a runtime is slow.

The doctor runs the runtime's real workload (`stems bench`, or a program of your own) in the
environment the app would give it: builder's own environment inherited, not scrubbed as bench
and compare scrub it, since what the app passes down (OMP_NUM_THREADS=1, an affinity variable,
a CPU mask) is often the cause. Around that one process it samples, with psutil, each thread's
CPU time and (Linux) each thread's CPU affinity; it reads the process's CPU mask and (Linux)
the cgroup CPU quota; an in-process probe (venvs: measure/doctor_probe.py as sitecustomize)
records torch's threads at import, every later thread setting, the OpenMP/BLAS pools and,
after the job, keeps the process alive a moment so that threads still burning CPU show.

`find_causes` (pure) turns those facts into causes, each with its evidence and the fix, naming
the profile key or the variable. Where a fix can be applied from outside (a variable), the
workload is run again with it and the cost is the measured difference in seconds per chunk.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

import psutil

from builder.contract import SETTINGS_ENV
from builder.errors import InputError, ToolError
from builder.log import Log
from builder.measure.doctor_probe import WATCHED_ENV
from builder.measure.take.runner import ProcessResult, Sample, run_monitored, tree_cpu_at
from builder.measure.take.subject import Subject as Runtime  # the thing under test (renamed Subject)
from builder.measure.take.workload import Workload as WorkloadCommand
from builder.measure.take.workload import run_workload

DEFAULT_MODEL = "tiny"
DEFAULT_SECONDS = 20.0  # tiny at 20 s of audio: ~55 chunks, 5-30 s on a 2-core machine
DEFAULT_TIMEOUT = 900.0
LINGER_S = 2.0  # how long the probe keeps the process alive after the job
SETTLE_S = 0.3  # pools may spin a moment after their last task: not counted
PROBE_FILE = Path(__file__).with_name("doctor_probe.py")

# A thread using at least this share of a core after the job is "still busy". An idle pool uses
# ~0 (onnxruntime without spinning: 0.015 cores); a spinning thread takes a whole core on a quiet
# machine and still ~0.27 of one on a 2-core machine with a load average of 11.
BUSY_AFTER = 0.1
# Inter-op threads "far above" the cores: more than this many times the usable CPUs.
INTEROP_FACTOR = 2
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


@dataclass(frozen=True, kw_only=True)
class Workload:
    model: str = DEFAULT_MODEL
    seconds: float = DEFAULT_SECONDS
    program: Path | None = None  # a Python file run with the venv's interpreter instead of stems
    timeout: float = DEFAULT_TIMEOUT
    cost: bool = True  # rerun with each fix that a variable applies


@dataclass(frozen=True, kw_only=True)
class Watched:
    """One run of the workload: the runner's result (psutil samples, with each thread's affinity) and
    what the probe wrote at exit."""

    res: ProcessResult
    probe: dict[str, Any] | None

    def since_start(self, epoch: float) -> float:
        """A wall-clock time (the probe's time.time()) as seconds since the process started."""
        return epoch - (self.res.started_epoch or 0.0)


# --- the machine ------------------------------------------------------------------------


def cpu_mask() -> list[int] | None:
    """The CPUs this process may run on, which a child inherits (None on macOS: no affinity API)."""
    if sys.platform == "darwin":
        return None
    else:
        try:
            mask: list[int] = psutil.Process().cpu_affinity()
            return sorted(mask)
        except (psutil.Error, OSError):
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


def cgroup_quota() -> float | None:
    """This process's cgroup CPU quota in cores (Linux, cgroup v2), None when there is none."""
    if sys.platform == "linux":
        candidates = []
        try:
            for line in Path("/proc/self/cgroup").read_text().splitlines():
                if line.startswith("0::"):
                    candidates.append(Path("/sys/fs/cgroup") / line[3:].lstrip("/") / "cpu.max")
        except OSError:
            pass
        candidates.append(Path("/sys/fs/cgroup/cpu.max"))
        for path in candidates:
            try:
                return parse_cpu_max(path.read_text())
            except OSError:
                continue
        return None
    else:
        return None


# --- one run of the workload -------------------------------------------------------------


@contextmanager
def probe_folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="builder-doctor-probe-") as tmp:
        shutil.copyfile(PROBE_FILE, Path(tmp) / "sitecustomize.py")
        yield Path(tmp)


def app_environment(rt: Runtime, extra: Mapping[str, str] = {}, drop: Sequence[str] = ()) -> dict[str, str]:
    """What the app would give the runtime: builder's environment, inherited as is, plus the
    runtime's own settings (a profile venv's STEMS_*), plus a fix being tried."""
    env = {**os.environ, **rt.env, **extra}
    for k in drop:
        env.pop(k, None)
    return env


def _first_json(text: str) -> dict[str, Any] | None:
    for line in text.splitlines():
        if line.strip().startswith("{"):
            try:
                doc: dict[str, Any] = json.loads(line)
                return doc
            except json.JSONDecodeError:
                return None
    return None


# A frozen program built by builder has the freeze's own probe (its runtime hook): the doctor asks
# it for the same figures (threads at torch's import, pools, torch at exit), not for thread-setting
# calls or a linger, which that probe does not record.
FROZEN_PROBE_ENV = "RUNTIME_BUILDER_PROBE"


def from_frozen_probe(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The freeze's probe document (runtime_entry/contract/probe.schema.json) in the doctor's terms."""
    threads = doc.get("threads") or {}
    return {
        "env_at_start": None,
        "torch_import": {"threads": threads.get("at_import"), "env": doc.get("env") or {}}
        if doc.get("torch_imported")
        else None,
        "torch_at_exit": {"threads": threads.get("torch"), "interop": threads.get("interop")},
        "settings_calls": None,
        "pools": doc.get("threadpools"),
        "libraries_loaded": [],
        "source": "the frozen program's probe (RUNTIME_BUILDER_PROBE)",
    }


def own_workload(rt: Runtime, work: Workload) -> WorkloadCommand | None:
    """The profile's [bench].command (a program other than stems), unless --program replaces it."""
    return rt.workload if work.program is None else None


def run_job(
    rt: Runtime, work: Workload, *, extra: Mapping[str, str] = {}, drop: Sequence[str] = (), linger: float = 0
) -> tuple[Watched, dict[str, Any] | None]:
    """The workload once, watched; with the probe in a venv. Returns the watch and bench's JSON."""
    own = own_workload(rt, work)
    if own is None and work.program is None and rt.kind != "venv" and Path(rt.argv[0]).stem != "stems":
        # `stems bench` is stems' own workload; any other program's is its profile's [bench].command
        raise InputError(
            f"{rt.path}: builder found no workload for {Path(rt.argv[0]).name} (profile {rt.profile or 'unknown'})",
            hint="run doctor in the project whose profile built it (--root), so that the profile's "
            "[bench].command is the workload",
        )
    env = app_environment(rt, extra, drop)
    with probe_folder() as folder:
        # the app's environment as is, and each thread's affinity; a hang is only the time limit
        limit = work.timeout
        # the freeze's runtime hook (in a venv: the launcher that carries it) writes the probe
        hooked = own is not None or rt.kind != "venv"
        if own is not None:  # its input is generated in the folder, its output written there
            res, probe_path = run_workload(
                list(rt.argv),
                env,
                own,
                folder,
                timeout=limit,
                stall=limit,
                inherit_env=True,
                thread_affinity=True,
            )
        else:
            probe_path = folder / "probe.json"
            if work.program is not None:
                argv = [rt.argv[0], str(work.program)]
            else:
                argv = rt.command("bench", "--json", "--model", work.model, "--seconds", f"{work.seconds:g}")
            if not hooked:
                env["PYTHONPATH"] = os.pathsep.join(p for p in (str(folder), env.get("PYTHONPATH")) if p)
                env["BUILDER_DOCTOR_PROBE"] = str(probe_path)
                env["BUILDER_DOCTOR_LINGER"] = f"{linger:g}"
            else:
                env[FROZEN_PROBE_ENV] = str(probe_path)
            res = run_monitored(
                argv, env=env, timeout=limit, stall=limit, inherit_env=True, thread_affinity=True
            )
        probe = json.loads(probe_path.read_text()) if probe_path.is_file() else None
        if probe is not None and hooked:
            probe = from_frozen_probe(probe)
    if res.killed:
        raise ToolError(
            f"doctor: the workload {res.killed}", hint="pass --seconds with less audio or --timeout"
        )
    stems_bench = work.program is None and own is None
    doc = _first_json(res.stdout) if stems_bench else None
    if res.returncode != 0 or (stems_bench and doc is None):
        tail = " | ".join(ln.strip() for ln in res.stderr.splitlines()[-3:] if ln.strip()) or "(no output)"
        raise ToolError(f"doctor: the workload failed (exit {res.returncode}): {tail}")
    return Watched(res=res, probe=probe), doc


def job_seconds(w: Watched, bench: Mapping[str, Any] | None) -> tuple[float, str]:
    """The job's own time: bench's seconds per chunk, or a program's whole wall time."""
    if bench is not None and bench.get("seconds_per_chunk") is not None:
        return float(bench["seconds_per_chunk"]), "s/chunk"
    end = (w.probe or {}).get("linger_started")  # the program's end, before the probe's linger
    return round(w.since_start(end) if end else w.res.wall_s, 3), "s (program wall time)"


def cores_busy(w: Watched, bench: Mapping[str, Any] | None) -> tuple[float | None, str | None]:
    """Cores the job kept busy, and where the figure comes from: stems bench's own (its separation),
    else the runner's: the process's CPU seconds over the job's wall time, the job ending where the
    probe's linger starts (else at the process's end)."""
    if bench is not None and bench.get("cpu_cores_busy") is not None:
        return float(bench["cpu_cores_busy"]), "stems bench: its separation's CPU / wall seconds"
    end_epoch = (w.probe or {}).get("linger_started")
    end = w.since_start(end_epoch) if end_epoch else w.res.wall_s
    cpu = tree_cpu_at(w.res.samples, end) if end_epoch else w.res.cpu_s
    if cpu is None or end <= 0:
        return None, None
    until = "the probe's linger" if end_epoch else "its exit"
    return round(
        cpu / end, 2
    ), f"builder's psutil samples: the process's CPU / wall seconds, start to {until}"


# --- facts ------------------------------------------------------------------------------


def cores_after_job(
    samples: Sequence[Sample], linger_started: float, linger_s: float, main_tid: int | None
) -> dict[int, float]:
    """Each thread's cores over the probe's linger, from SETTLE_S after its start to its end (pure;
    times as the runner's samples give them, seconds since the process started).

    The job is over and the main thread asleep: a thread still on a CPU then is a spinning pool.
    A thread's rate runs from the window's first sample to the last one inside the linger that saw
    it. Samples taken after the linger, while the process exits, are left out: the exit stops
    threads (a spinning onnxruntime pool among them) and stretches the window with no CPU time.
    """
    begin, end = linger_started + SETTLE_S, linger_started + linger_s
    window = [s for s in samples if begin <= s.t <= end]
    if len(window) < 2:
        return {}
    first = window[0]
    after: dict[int, float] = {}
    for tid, c0 in first.threads_cpu_s.items():
        seen = [s for s in window[1:] if tid in s.threads_cpu_s]
        # the main thread is asleep in the probe by construction: not a candidate
        if tid != main_tid and seen and seen[-1].t > first.t:
            after[tid] = round((seen[-1].threads_cpu_s[tid] - c0) / (seen[-1].t - first.t), 2)
    return after


def thread_rows(w: Watched, mask: Sequence[int] | None) -> list[dict[str, Any]]:
    """Per thread: CPU seconds over the run, cores used after the job (probe linger), affinity."""
    samples = w.res.samples
    if not samples:
        return []
    last: dict[int, float] = {}
    aff: dict[int, tuple[int, ...]] = {}
    for s in samples:  # a thread that exited keeps its last figure
        last.update(s.threads_cpu_s)
        aff.update(s.threads_affinity)
    probe = w.probe or {}
    linger = probe.get("linger_started")
    linger_s = probe.get("linger_s", LINGER_S)
    after = cores_after_job(samples, w.since_start(linger), linger_s, w.res.pid) if linger else {}
    rows = []
    for tid in sorted(last):
        a = aff.get(tid)
        rows.append({
            "tid": tid,
            "cpu_s": round(last[tid], 2),
            "cores_after_job": after.get(tid),
            "affinity": list(a) if a is not None else None,
            "pinned": bool(a is not None and mask is not None and len(a) < len(mask)),
        })  # fmt: skip
    return rows


def openmp_pools(probe: Mapping[str, Any] | None, selftest: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """OpenMP runtimes loaded, one per real file: the probe's threadpoolctl pools (the workload's own
    process), else selftest's (`threadpools`, a frozen program), else selftest's list of files."""
    pools = (probe or {}).get("pools") or (selftest or {}).get("threadpools")
    if pools:
        seen: dict[str, dict[str, Any]] = {}
        for p in pools:
            if p.get("user_api") == "openmp" and p.get("filepath"):
                seen.setdefault(os.path.realpath(p["filepath"]), p)
        return [
            {"path": k, "threads": v.get("num_threads"), "api": v.get("internal_api")}
            for k, v in seen.items()
        ]
    return [
        {"path": o.get("path"), "threads": None, "api": o.get("family")}
        for o in (selftest or {}).get("openmp") or []
    ]


def gather(
    rt: Runtime,
    work: Workload,
    w: Watched,
    bench: Mapping[str, Any] | None,
    selftest: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """Everything find_causes reads, as plain data (also the report's figures)."""
    mask = cpu_mask()
    quota = cgroup_quota()
    usable = len(mask) if mask else (os.cpu_count() or 1)
    if quota is not None:
        usable = min(usable, max(1, int(quota + 0.999)))
    probe = w.probe or {}
    b_threads = (bench or {}).get("threads") or {}
    at_exit = probe.get("torch_at_exit") or {}
    st_threads = (selftest or {}).get("threads") or {}
    import_info = probe.get("torch_import") or {}
    seconds, unit = job_seconds(w, bench)
    busy, busy_source = cores_busy(w, bench)
    own = own_workload(rt, work)
    return {
        "runtime": rt.describe(),
        "workload": {
            "program": str(work.program) if work.program else None,
            "command": own.describe()["command"] if own else None,
            "model": None if work.program or own else work.model,
            "seconds_of_audio": own.seconds if own else None if work.program else work.seconds,
        },
        "job_seconds": seconds,
        "job_unit": unit,
        "wall_s": round(w.res.wall_s, 2),
        "host_cpus": os.cpu_count(),
        "cpu_mask": mask,
        "cgroup_quota_cores": quota,
        "usable_cpus": usable,
        "threads": b_threads.get("intra_op") or at_exit.get("threads") or st_threads.get("torch"),
        "threads_requested": st_threads.get("requested"),
        "threads_at_import": import_info.get("threads") or st_threads.get("at_import"),
        "interop": b_threads.get("inter_op") or at_exit.get("interop") or st_threads.get("interop"),
        "cores_busy": busy,
        "cores_busy_source": busy_source,
        "env_parent": {k: v for k, v in app_environment(rt).items() if k in WATCHED_ENV},
        "env_at_import": import_info.get("env") if import_info else None,
        "settings_calls": probe.get("settings_calls"),
        "probe": bool(w.probe),
        "probe_source": probe.get("source") or ("the doctor's probe" if w.probe else None),
        "openmp": openmp_pools(w.probe, selftest),
        "libraries_loaded": probe.get("libraries_loaded") or [],
        "thread_rows": thread_rows(w, mask),
        "stems": work.program is None,
        "load_average": round(psutil.getloadavg()[0], 2),
    }


# --- causes (pure) ---------------------------------------------------------------------


def _cause(
    cid: str, title: str, evidence: list[str], fix: str, *, rerun: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "id": cid,
        "title": title,
        "evidence": evidence,
        "fix": fix,
        "rerun": dict(rerun or {}),
        "cost": None,
    }


def _pinning_active(name: str, value: str) -> bool:
    return value.strip().lower() not in UNPINNED.get(name, ())


def find_causes(f: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """The causes the facts show, and notes (things seen that are not slowing this runtime)."""
    causes: list[dict[str, Any]] = []
    notes: list[str] = []
    usable = int(f["usable_cpus"])
    threads = f.get("threads")
    stems = bool(f.get("stems"))
    env_import = f.get("env_at_import") or f.get("env_parent") or {}
    rows = f.get("thread_rows") or []
    mask = f.get("cpu_mask")
    gnu = any("gomp" in str(o.get("path", "")).lower() for o in f.get("openmp") or [])

    interop = f.get("interop")
    if interop is not None and interop > max(2, INTEROP_FACTOR * usable):
        causes.append(_cause(
            "interop-threads",
            f"inter-op threads ({interop}) far above the {usable} usable CPUs",
            [f"torch.get_num_interop_threads() = {interop}; usable CPUs = {usable}",
             "each inter-op thread can run its own intra-op work: they compete for the same cores"],
            "set `runtime.interop-threads = 1` in the profile (or STEMS_INTEROP_THREADS=1); "
            f"at most {usable} on this machine" if stems else
            "call torch.set_num_interop_threads(1) before any parallel work",
            rerun={"extra": {SETTINGS_ENV["interop_threads"]: "1"}} if stems else None,
        ))  # fmt: skip

    pinned = [r for r in rows if r.get("pinned")]
    for name in PINNING:
        value = env_import.get(name)
        if value is None or not _pinning_active(name, value):
            continue
        if pinned:
            cpus = sorted({c for r in pinned for c in r["affinity"]})
            fix_var, fix_value = (
                ("KMP_AFFINITY", "disabled") if name == "KMP_AFFINITY" else ("OMP_PROC_BIND", "false")
            )
            causes.append(_cause(
                "affinity-pinning",
                f"{name}={value} pins the OpenMP threads",
                [f"{name}={value} in the environment at torch's import",
                 f"{len(pinned)} of {len(rows)} threads pinned to CPU(s) {cpus} of the allowed {mask}"],
                f"remove {name} from the environment the app starts the runtime with, or set "
                f"`runtime.env.{fix_var} = \"{fix_value}\"` in the profile"
                + (" (OMP_PROC_BIND takes precedence over GOMP_CPU_AFFINITY)" if name == "GOMP_CPU_AFFINITY" else ""),
                rerun={"extra": {fix_var: fix_value}},
            ))  # fmt: skip
            break
        if name.startswith("KMP_") and gnu:
            notes.append(
                f"{name}={value} is set but the OpenMP loaded here (GNU libgomp) ignores it; under Intel "
                f'or LLVM OpenMP (the macOS builds) it pins threads: set `runtime.env.{name} = "disabled"`'
            )

    if threads is not None and threads > usable:
        limit = []
        if mask is not None and len(mask) < (f.get("host_cpus") or 0):
            limit.append(f"CPU affinity mask {mask} ({len(mask)} of {f.get('host_cpus')} CPUs)")
        if f.get("cgroup_quota_cores") is not None:
            limit.append(f"cgroup CPU quota {f['cgroup_quota_cores']:g} cores (cpu.max)")
        causes.append(_cause(
            "cpu-limit",
            f"{threads} threads on {usable} usable CPU(s)",
            [f"torch intra-op threads = {threads}", *(limit or [f"usable CPUs = {usable}"]),
             "more compute threads than CPUs: OpenMP threads wait on each other at every barrier"],
            f"set `runtime.threads = \"auto\"` (the CPUs the process may use) or `runtime.threads = {usable}`"
            + ("; `auto` does not see a cgroup quota: give the number" if f.get("cgroup_quota_cores") else "")
            if stems else f"set OMP_NUM_THREADS={usable} (or torch.set_num_threads({usable})) for this runtime",
            rerun={"extra": {SETTINGS_ENV["threads"]: str(usable)}} if stems else {"extra": {"OMP_NUM_THREADS": str(usable)}},
        ))  # fmt: skip

    parent_omp = (f.get("env_parent") or {}).get("OMP_NUM_THREADS")
    calls = f.get("settings_calls") or []
    raised = any(c["call"] == "set_num_threads" and c["value"] > 1 for c in calls)
    if (
        parent_omp == "1"
        and usable >= 2
        and threads == 1
        and env_import.get("OMP_NUM_THREADS") == "1"
        and not raised
    ):
        if f.get("threads_requested") == 1:
            notes.append("the runtime runs 1 thread because its own settings ask for 1 (runtime.threads)")
        else:
            causes.append(_cause(
                "inherited-omp-num-threads",
                "OMP_NUM_THREADS=1 inherited from the parent and never overridden",
                ["OMP_NUM_THREADS=1 in the environment the process started with",
                 f"still 1 at torch's import; torch ran {threads} thread on {usable} usable CPUs",
                 "no torch.set_num_threads call raised it"],
                "remove OMP_NUM_THREADS from the environment the app starts the worker with, or export "
                "it in the program before torch's import; a runtime built by builder does that from "
                "`runtime.threads` (its runtime hook overwrites OMP_NUM_THREADS)",
                rerun={"drop": ["OMP_NUM_THREADS"]},
            ))  # fmt: skip
    elif parent_omp is not None and stems and env_import.get("OMP_NUM_THREADS") not in (None, parent_omp):
        notes.append(
            f"OMP_NUM_THREADS={parent_omp} inherited from the parent; the runtime overwrote it with "
            f"{env_import.get('OMP_NUM_THREADS')} before torch's import (as it should)"
        )

    omp = f.get("openmp") or []
    if len(omp) > 1:
        sizes = [f"{o['path']} ({o['threads']} threads)" if o.get("threads") else str(o["path"]) for o in omp]
        causes.append(_cause(
            "two-openmp-runtimes",
            f"{len(omp)} OpenMP runtimes loaded in one process",
            ["loaded: " + "; ".join(sizes),
             "each keeps its own thread pool: thread limits set on one are ignored by the other, and "
             "their threads compete (or crash, 'OMP: Error #15', with Intel's)"],
            "apply the OpenMP fix: `builder openmp VENV --fix` (`builder build` applies it), then check "
            "with `builder openmp VENV --verify`",
        ))  # fmt: skip

    busy = [r for r in rows if (r.get("cores_after_job") or 0) >= BUSY_AFTER]
    if busy:
        libs = [lib for lib in f.get("libraries_loaded") or [] if lib in THREAD_HINTS]
        what, fix = (
            THREAD_HINTS[libs[0]]
            if libs
            else (
                "threads of another library in the process (loaded: "
                + (", ".join(f.get("libraries_loaded") or []) or "none of the known pool libraries")
                + ")",
                "find the library that starts them and stop its pool after use or turn its spin-wait off",
            )
        )
        cores = round(sum(r["cores_after_job"] for r in busy), 2)
        causes.append(_cause(
            "spinning-threads",
            f"{len(busy)} thread(s) still busy after the job: {what}",
            [f"after the job ended, {len(busy)} thread(s) used {cores} cores with the main thread asleep "
             f"(threads {', '.join(str(r['tid']) for r in busy)})",
             f"that is {cores / usable:.0%} of the {usable} usable CPUs taken from torch while both run"],
            fix,
        ))  # fmt: skip

    load = f.get("load_average")
    if load is not None and load > (f.get("host_cpus") or usable):
        notes.append(
            f"the machine was busy (load average {load:g} on {f.get('host_cpus')} CPUs): cores busy and the "
            "measured costs are noisy; causes are named from settings, masks, pools and threads, not timings"
        )

    if len([c for c in calls if c["call"] == "set_num_threads"]) > 2:
        values = [c["value"] for c in calls if c["call"] == "set_num_threads"]
        causes.append(_cause(
            "settings-reapplied",
            f"torch.set_num_threads called {len(values)} times",
            [f"values {values}; each call after parallel work has started rebuilds the OpenMP pool"],
            "apply thread settings once, before torch's import (`runtime.threads`; the runtime hook exports "
            "OMP_NUM_THREADS), and not again per job",
        ))  # fmt: skip
    return causes, notes


# --- the diagnosis ---------------------------------------------------------------------


def diagnose(rt: Runtime, work: Workload | None = None, *, log: Log | None = None) -> dict[str, Any]:
    work = work or Workload()
    log = log or Log()
    selftest = None
    own = own_workload(rt, work)
    if work.program is None and own is None:
        with log.step(f"selftest of {rt.label} in the app's environment"):
            st = run_monitored(
                rt.command("selftest", "--json"), env=app_environment(rt), timeout=work.timeout,
                stall=work.timeout, inherit_env=True,
            )  # fmt: skip
            selftest = _first_json(st.stdout)
    what = (
        str(work.program) if work.program
        else f"the profile's [bench].command: {own.describe()['command']}" if own
        else f"stems bench, model {work.model}, {work.seconds:g} s of audio"
    )  # fmt: skip
    with log.step(f"run the workload ({what}), watched"):
        w, bench = run_job(rt, work, linger=LINGER_S)
    facts = gather(rt, work, w, bench, selftest)
    causes, notes = find_causes(facts)
    for c in causes:
        if not (work.cost and c["rerun"]):
            c["cost"] = {
                "measured": False,
                "why": "the fix is not a variable the doctor can set from outside"
                if not c["rerun"]
                else "not asked for (--no-cost)",
            }
            continue
        change = ", ".join([f"{k}={v}" for k, v in c["rerun"].get("extra", {}).items()]
                           + [f"without {k}" for k in c["rerun"].get("drop", [])])  # fmt: skip
        with log.step(f"measure the cost of {c['id']}: the workload again with {change}"):
            w2, b2 = run_job(rt, work, extra=c["rerun"].get("extra", {}), drop=c["rerun"].get("drop", ()))
        fixed, unit = job_seconds(w2, b2)
        c["cost"] = {
            "measured": True,
            "with_fix": change,
            "before": facts["job_seconds"],
            "after": fixed,
            "unit": unit,
            "ratio": round(facts["job_seconds"] / fixed, 2) if fixed else None,
            "runs": "one run each (for an interval: `builder compare` of the two settings)",
        }
    return {
        "runtime": rt.describe(),
        "verdict": "no problem found"
        if not causes
        else f"{len(causes)} cause(s) found: " + ", ".join(c["id"] for c in causes),
        "causes": causes,
        "notes": notes,
        "figures": {k: v for k, v in facts.items() if k not in ("runtime",)},
    }


def render(r: Mapping[str, Any]) -> str:
    f = r["figures"]
    lines = [f"doctor: {r['runtime']['label']} ({r['runtime']['kind']}): {r['verdict']}"]
    for i, c in enumerate(r["causes"], 1):
        lines.append(f"  {i}. [{c['id']}] {c['title']}")
        lines += [f"       evidence: {e}" for e in c["evidence"]]
        cost = c["cost"] or {}
        if cost.get("measured"):
            lines.append(
                f"       cost: {cost['before']} -> {cost['after']} {cost['unit']} with {cost['with_fix']} "
                f"({cost['ratio']}x; {cost['runs']})"
            )
        else:
            lines.append(f"       cost: not measured ({cost.get('why')})")
        lines.append(f"       fix: {c['fix']}")
    for n in r["notes"]:
        lines.append(f"  note: {n}")
    busy = [t for t in f["thread_rows"] if (t.get("cores_after_job") or 0) >= BUSY_AFTER]
    omp = "; ".join(
        f"{o['path']}" + (f" ({o['threads']} threads)" if o.get("threads") else "") for o in f["openmp"]
    )
    calls = f.get("settings_calls")
    lines += [
        "  figures:",
        f"    job: {f['job_seconds']} {f['job_unit']} ({f['wall_s']} s wall); cores busy {f.get('cores_busy')}"
        + (f" ({f['cores_busy_source']})" if f.get("cores_busy_source") else ""),
        f"    CPUs: {f['usable_cpus']} usable (host {f['host_cpus']}, mask {f['cpu_mask']}, "
        f"cgroup quota {f['cgroup_quota_cores'] if f['cgroup_quota_cores'] is not None else 'none'})",
        f"    threads: intra-op {f['threads']} (at torch import {f['threads_at_import']}, requested "
        f"{f['threads_requested']}), inter-op {f['interop']}; OS threads seen {len(f['thread_rows'])}, "
        f"pinned {sum(1 for t in f['thread_rows'] if t['pinned'])}",
        "    thread settings: "
        + (
            f"OMP_NUM_THREADS={(f.get('env_at_import') or {}).get('OMP_NUM_THREADS', 'unset')} at torch's import; "
            "after it "
            + (", ".join(f"{c['call']}({c['value']}) at {c['at_s']} s" for c in calls) or "no calls")
            if calls is not None
            else f"not recorded ({f['probe_source']} sees torch's import and exit, not the calls between)"
            if f.get("probe_source")
            else "not observed (the program wrote no probe)"
        ),
        f"    OpenMP loaded: {omp or 'none seen'}",
        f"    threads busy after the job: {len(busy)}"
        + ("" if f["probe"] else " (not observed: the program wrote no probe)"),
        "    environment given: "
        + (
            ", ".join(f"{k}={v}" for k, v in sorted(f["env_parent"].items()))
            or "no thread or affinity variables"
        ),
    ]
    return "\n".join(lines)


def render_html(r: Mapping[str, Any]) -> str:
    """One self-contained page: the verdict, each cause, the figures."""
    body = [f"<h1>builder doctor: {escape(r['runtime']['label'])}</h1>",
            f'<p id="verdict"><b>{escape(r["verdict"])}</b></p>']  # fmt: skip
    for c in r["causes"]:
        body.append(f'<section class="cause" id="{escape(c["id"])}"><h2>{escape(c["title"])}</h2><ul>')
        body += [f"<li>{escape(e)}</li>" for e in c["evidence"]]
        cost = c["cost"] or {}
        body.append(
            "<li>cost: "
            + escape(
                f"{cost['before']} → {cost['after']} {cost['unit']} with {cost['with_fix']} ({cost['ratio']}x)"
                if cost.get("measured") else f"not measured ({cost.get('why')})"
            )
            + f"</li></ul><p>fix: {escape(c['fix'])}</p></section>"
        )  # fmt: skip
    body += [f"<p class=note>note: {escape(n)}</p>" for n in r["notes"]]
    body.append("<h2>Figures</h2><pre>" + escape(render(r).split("  figures:\n", 1)[-1]) + "</pre>")
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>builder doctor</title>'
        "<style>body{font:15px system-ui;margin:2rem;max-width:60rem}.cause{border-left:4px solid #c33;"
        "padding-left:1rem}</style></head><body>" + "".join(body) + "</body></html>\n"
    )
