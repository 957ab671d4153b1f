"""`builder doctor`'s figures: the runtime's real workload, run in the environment an app gives it,
watched from outside (psutil: each thread's CPU time and affinity) and from inside (the probe).

The environment is builder's own, inherited, not scrubbed as bench and compare scrub it: what the
app passes down (OMP_NUM_THREADS=1, an affinity variable, a CPU mask) is often the cause. The
probe is the freeze's hook (builder/program/probe_hook.py): a frozen program carries it; a venv's
process gets the same text as sitecustomize. Its linger keeps the process alive a moment after
the job, so that threads still burning CPU show.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from builder.errors import InputError, ToolError
from builder.measure.take.runner import ProcessResult, run_monitored, tree_cpu_at
from builder.measure.take.subject import Subject
from builder.measure.take.workload import Workload as WorkloadCommand
from builder.measure.take.workload import run_workload
from builder.program.entry import probe_text
from builder.program.probe_hook import LINGER_ENV, PROBE_ENV
from runtime_doctor import host
from runtime_doctor.rules import openmp_pools

DEFAULT_MODEL = "tiny"
DEFAULT_SECONDS = 20.0  # tiny at 20 s of audio: ~55 chunks, 5-30 s on a 2-core machine
DEFAULT_TIMEOUT = 900.0
LINGER_S = 2.0  # how long the probe keeps the process alive after the job


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
    what the probe wrote at exit (probe.schema.json), and bench's JSON when the workload is stems bench."""

    res: ProcessResult
    probe: dict[str, Any] | None
    bench: dict[str, Any] | None = None

    def since_start(self, epoch: float) -> float:
        """A wall-clock time (the probe's time.time()) as seconds since the process started."""
        return epoch - (self.res.started_epoch or 0.0)


@contextmanager
def probe_folder() -> Iterator[Path]:
    """A folder holding the probe as sitecustomize.py, for a venv's process (a frozen one carries it)."""
    with tempfile.TemporaryDirectory(prefix="builder-doctor-probe-") as tmp:
        (Path(tmp) / "sitecustomize.py").write_text(probe_text(export=False, apply=False), encoding="utf-8")
        yield Path(tmp)


def app_environment(rt: Subject, extra: Mapping[str, str] = {}, drop: Sequence[str] = ()) -> dict[str, str]:
    """What the app would give the runtime: builder's environment, inherited as is, plus the
    runtime's own settings (a profile venv's STEMS_*), plus a fix being tried."""
    env = {**os.environ, **rt.env, **extra}
    for k in drop:
        env.pop(k, None)
    return env


def first_json(text: str) -> dict[str, Any] | None:
    for line in text.splitlines():
        if line.strip().startswith("{"):
            try:
                doc: dict[str, Any] = json.loads(line)
                return doc
            except json.JSONDecodeError:
                return None
    return None


def own_workload(rt: Subject, work: Workload) -> WorkloadCommand | None:
    """The profile's [bench].command (a program other than stems), unless --program replaces it."""
    return rt.workload if work.program is None else None


def _check_workload(rt: Subject, work: Workload) -> None:
    if (
        own_workload(rt, work) is None
        and work.program is None
        and rt.kind != "venv"
        and Path(rt.argv[0]).stem != "stems"
    ):
        # `stems bench` is stems' own workload; any other program's is its profile's [bench].command
        raise InputError(
            f"{rt.path}: builder found no workload for {Path(rt.argv[0]).name} (profile {rt.profile or 'unknown'})",
            hint="run doctor in the project whose profile built it (--root), so that the profile's "
            "[bench].command is the workload",
        )


def _launch(rt: Subject, work: Workload, env: dict[str, str], folder: Path) -> tuple[ProcessResult, Path]:
    """Start the workload with the probe on; returns the runner's result and the probe's path."""
    own = own_workload(rt, work)
    watch = {"timeout": work.timeout, "stall": work.timeout, "inherit_env": True, "thread_affinity": True}
    if own is not None:  # its input is generated in the folder, its output written there
        return run_workload(list(rt.argv), env, own, folder, **watch)  # type: ignore[arg-type]
    probe_path = folder / "probe.json"
    if work.program is not None:
        argv = [rt.argv[0], str(work.program)]
    else:
        argv = list(rt.command("bench", "--json", "--model", work.model, "--seconds", f"{work.seconds:g}"))
    if rt.kind == "venv":  # a frozen program carries the probe in its runtime hook
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(folder), env.get("PYTHONPATH")) if p)
    env[PROBE_ENV] = str(probe_path)
    return run_monitored(argv, env=env, **watch), probe_path  # type: ignore[arg-type]


def run_job(
    rt: Subject, work: Workload, *, extra: Mapping[str, str] = {}, drop: Sequence[str] = (), linger: float = 0
) -> Watched:
    """The workload once, watched, with the probe on."""
    _check_workload(rt, work)
    env = {**app_environment(rt, extra, drop), LINGER_ENV: f"{linger:g}"}
    with probe_folder() as folder:
        res, probe_path = _launch(rt, work, env, folder)
        probe = json.loads(probe_path.read_text()) if probe_path.is_file() else None
    if res.killed:
        raise ToolError(
            f"doctor: the workload {res.killed}", hint="pass --seconds with less audio or --timeout"
        )
    stems_bench = work.program is None and own_workload(rt, work) is None
    doc = first_json(res.stdout) if stems_bench else None
    if res.returncode != 0 or (stems_bench and doc is None):
        tail = " | ".join(ln.strip() for ln in res.stderr.splitlines()[-3:] if ln.strip()) or "(no output)"
        raise ToolError(f"doctor: the workload failed (exit {res.returncode}): {tail}")
    return Watched(res=res, probe=probe, bench=doc)


def job_seconds(w: Watched) -> tuple[float, str]:
    """The job's own time: bench's seconds per chunk, or a program's whole wall time."""
    if w.bench is not None and w.bench.get("seconds_per_chunk") is not None:
        return float(w.bench["seconds_per_chunk"]), "s/chunk"
    end = (w.probe or {}).get("linger_started")  # the program's end, before the probe's linger
    return round(w.since_start(end) if end else w.res.wall_s, 3), "s (program wall time)"


def cores_busy(w: Watched) -> tuple[float | None, str | None]:
    """Cores the job kept busy, and where the figure comes from: stems bench's own (its separation),
    else the runner's: the process's CPU seconds over the job's wall time, the job ending where the
    probe's linger starts (else at the process's end)."""
    if w.bench is not None and w.bench.get("cpu_cores_busy") is not None:
        return float(w.bench["cpu_cores_busy"]), "stems bench: its separation's CPU / wall seconds"
    end_epoch = (w.probe or {}).get("linger_started")
    end = w.since_start(end_epoch) if end_epoch else w.res.wall_s
    cpu = tree_cpu_at(w.res.samples, end) if end_epoch else w.res.cpu_s
    if cpu is None or end <= 0:
        return None, None
    until = "the probe's linger" if end_epoch else "its exit"
    return round(
        cpu / end, 2
    ), f"builder's psutil samples: the process's CPU / wall seconds, start to {until}"


def machine_facts() -> dict[str, Any]:
    """builder's own process's CPUs, which the workload inherits (the mask; Linux: the cgroup quota)."""
    mask = host.cpu_mask() if sys.platform != "darwin" else None
    if mask is None and sys.platform == "win32":
        try:
            mask = sorted(psutil.Process().cpu_affinity() or []) or None
        except (psutil.Error, OSError):
            mask = None
    quota = host.cgroup_quota()
    cpus = os.cpu_count() or 1
    return {"host_cpus": cpus, "cpu_mask": mask, "cgroup_quota_cores": quota,
            "usable_cpus": host.usable_cpus(cpus, mask, quota), "load_average": host.load_average()}  # fmt: skip


def run_facts(rt: Subject, work: Workload, w: Watched, selftest: Mapping[str, Any] | None) -> dict[str, Any]:
    """What the run shows, in the rule book's terms (runtime_doctor.rules)."""
    probe = w.probe or {}
    b_threads = (w.bench or {}).get("threads") or {}
    p_threads = probe.get("threads") or {}
    st_threads = (selftest or {}).get("threads") or {}
    seconds, unit = job_seconds(w)
    busy, busy_source = cores_busy(w)
    pools = probe.get("threadpools") or (selftest or {}).get("threadpools")
    return {
        "job_seconds": seconds,
        "job_unit": unit,
        "wall_s": round(w.res.wall_s, 2),
        "threads": b_threads.get("intra_op") or p_threads.get("torch") or st_threads.get("torch"),
        "threads_requested": st_threads.get("requested"),
        "threads_at_import": p_threads.get("at_import") or st_threads.get("at_import"),
        "interop": b_threads.get("inter_op") or p_threads.get("interop") or st_threads.get("interop"),
        "cores_busy": busy,
        "cores_busy_source": busy_source,
        "env_parent": host.watched_env(app_environment(rt)),
        "env_at_import": probe.get("env_at_import"),
        "settings_calls": probe.get("settings_calls") if w.probe else None,
        "probe": bool(w.probe),
        "openmp": openmp_pools(pools)
        if pools
        else [
            {"path": o.get("path"), "threads": None, "api": o.get("family")}
            for o in (selftest or {}).get("openmp") or []
        ],
        "libraries_loaded": probe.get("libraries_loaded") or [],
        "stems": work.program is None,
    }
