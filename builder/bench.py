"""Bench: run a runtime (venv or frozen dist) in fresh processes and measure it.

builder never imports torch: each run starts the runtime twice, as a user's app would,
and reads its JSON.
  1. a startup probe, `selftest --json` under `-X importtime` (venvs): time to ready
     (process start to the first JSON line), import time by module, threads, OpenMP;
  2. `bench --json`: separation wall time, real-time factor, seconds per chunk.
Around both, builder itself measures what the runtime cannot lie about: process wall
time, CPU time and peak memory (wait4), the OS threads it ran (/proc), and it kills a
process that stops making progress (no CPU time and no output) or runs past a limit.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import click

from .errors import BudgetError, CheckError, InputError, ToolError
from .log import Log
from .manifest import MANIFEST
from .paths import Project, find_project
from .profile import Profile

DEFAULT_MODEL = "tiny"
DEFAULT_SECONDS = 1.0
DEFAULT_TIMEOUT = 600.0
DEFAULT_STALL = 60.0
# A run is "single-threaded" when it keeps fewer cores than this busy with >= 2 threads asked for.
SINGLE_THREAD_CORES = 1.25
TOP_MODULES = 15
# Inherited variables that would change what the runtime does; builder sets what it means to.
SCRUBBED_ENV_PREFIXES = ("STEMS_", "OMP_", "MKL_", "KMP_", "PYTHON")
CONFIG_NAME = "runtime.json"

# Per-run metrics, in seconds unless named otherwise: key -> (label, unit, lower is better)
METRICS: dict[str, tuple[str, str]] = {
    "startup_s": ("time to ready (selftest JSON)", "s"),
    "import_s": ("import time (all modules)", "s"),
    "separation_s": ("separation wall time", "s"),
    "total_s": ("bench process wall time", "s"),
    "rtf": ("real-time factor (wall / audio)", "x"),
    "seconds_per_chunk": ("seconds per chunk", "s"),
    "cores_busy": ("CPU cores busy during separation", "cores"),
    "peak_rss_mb": ("peak memory (bench process)", "MB"),
    "os_threads": ("OS threads (max seen)", ""),
}
# What `--metric` names in compare/bisect/tune mean.
METRIC_ALIASES = {"wall": "separation_s", "import": "import_s", "startup": "startup_s", "total": "total_s"}


# --- the runtime under test ---------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Runtime:
    """How to start one runtime: a venv (`python -m runtime_entry`) or a dist's `stems`."""

    label: str
    kind: str  # venv | dist
    path: Path  # the venv, or the dist folder
    argv: tuple[str, ...]  # program and arguments before the stems command
    env: Mapping[str, str] = field(default_factory=dict)
    profile: str | None = None
    importtime: bool = True  # PyInstaller programs ignore -X importtime / PYTHONPROFILEIMPORTTIME
    settings: str | None = None  # where runtime settings come from when not from a config file

    def command(self, *args: str, importtime: bool = False) -> list[str]:
        if importtime and self.kind == "venv":
            return [self.argv[0], "-X", "importtime", *self.argv[1:], *args]
        return [*self.argv, *args]

    def with_env(self, **extra: str) -> Runtime:
        return replace(self, env={**self.env, **extra})

    def describe(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "kind": self.kind,
            "path": str(self.path),
            "profile": self.profile,
            "command": shlex.join(self.argv),
            "settings": self.settings,
        }


def _venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def venv_runtime(
    venv: Path, project: Project, *, label: str | None = None, profile: str | None = None
) -> Runtime:
    venv = venv.absolute()
    env = {"PYTHONPATH": str(project.root)}
    # A venv has no program folder: its runtime config (as `builder tune` writes it) sits in the venv.
    if (venv / CONFIG_NAME).is_file():
        env["STEMS_RUNTIME_CONFIG"] = str(venv / CONFIG_NAME)
    if profile is None and venv.name == "venv" and (project.profiles / f"{venv.parent.name}.toml").is_file():
        profile = venv.parent.name
    settings = None
    if profile is not None and "STEMS_RUNTIME_CONFIG" not in env:
        settings = f"profile {profile} [runtime] (as STEMS_* variables)"
        # A profile's venv runs with the profile's runtime settings, as its frozen program would.
        from .profile import load_profile

        rs = load_profile(profile, project.profiles).runtime
        env.update(
            {
                **rs.env,
                "STEMS_THREADS": str(rs.threads),
                "STEMS_INTEROP_THREADS": str(rs.interop_threads),
                "STEMS_MATMUL_PRECISION": rs.matmul_precision,
            }
        )
    return Runtime(
        label=label or _short(venv), kind="venv", path=venv,
        argv=(str(_venv_python(venv)), "-m", "runtime_entry"), env=env, profile=profile, settings=settings,
    )  # fmt: skip


def dist_runtime(dist: Path, *, label: str | None = None) -> Runtime:
    dist = dist.absolute()
    program = dist / "stems" / ("stems.exe" if sys.platform == "win32" else "stems")
    if not program.is_file():
        raise InputError(f"{dist}: a dist without stems/{program.name}")
    profile = None
    if (dist / MANIFEST).is_file():
        profile = json.loads((dist / MANIFEST).read_text(encoding="utf-8")).get("profile")
    return Runtime(
        label=label or _short(dist),
        kind="dist",
        path=dist,
        argv=(str(program),),
        profile=profile,
        importtime=False,
    )


def program_runtime(program: Path, project: Project) -> Runtime:
    """A venv's python or a frozen `stems` program (what the build pipeline has in hand)."""
    program = program.absolute()
    if program.name.startswith("python"):
        venv = program.parent.parent
        return venv_runtime(venv, project)
    if program.parent.name == "stems" and (program.parent.parent / MANIFEST).is_file():
        return dist_runtime(program.parent.parent)
    return Runtime(
        label=_short(program.parent), kind="dist", path=program.parent, argv=(str(program),), importtime=False
    )


def _short(path: Path) -> str:
    parts = path.parts
    return "/".join(parts[-2:]) if path.name in ("venv", "stems") else path.name


def resolve_runtime(
    spec: str | Path,
    project: Project,
    *,
    label: str | None = None,
    log: Log | None = None,
    wheelhouse: Path | None = None,
) -> Runtime:
    """A venv, a dist, a frozen folder, or a profile name (its build/P/venv, installed if needed)."""
    path = Path(spec)
    if path.exists():
        if (path / "pyvenv.cfg").is_file():
            return venv_runtime(path, project, label=label)
        if (path / MANIFEST).is_file() or (path / "stems" / "stems").is_file():
            return dist_runtime(path, label=label)
        if (path / "stems").is_file() and (path / "_internal").is_dir():
            return replace(program_runtime(path / "stems", project), label=label or path.name)
        raise InputError(f"{path}: not a venv (pyvenv.cfg), a dist (manifest.json) or a frozen stems folder")
    if (project.profiles / f"{spec}.toml").is_file():
        return profile_runtime(str(spec), project, log=log, wheelhouse=wheelhouse, label=label)
    raise InputError(
        f"{spec}: no such path and no profile of that name in {project.profiles}",
        hint="give a venv, a dist folder or a profile name",
    )


def profile_runtime(
    name: str,
    project: Project,
    *,
    log: Log | None = None,
    wheelhouse: Path | None = None,
    label: str | None = None,
) -> Runtime:
    """The profile's venv under build/, installed from its lock (reused while the lock is unchanged)."""
    from .install import install
    from .lock import check_lock, read_lock
    from .profile import load_profile
    from .wheelhouse import find_wheelhouse

    profile = load_profile(name, project.profiles)
    lock_path = project.lock_path(name)
    check_lock(profile, lock_path)
    venv = project.work / name / "venv"
    with (log or Log()).step(f"install {name} (reused when its lock is unchanged)"):
        install(profile, read_lock(lock_path), venv, find_wheelhouse(wheelhouse))
    return venv_runtime(venv, project, label=label or name, profile=name)


# --- one monitored process ----------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ProcessResult:
    argv: tuple[str, ...]
    returncode: int | None
    stdout: str
    stderr: str
    wall_s: float
    first_output_s: float | None  # process start to the first stdout line
    cpu_s: float | None
    peak_rss_mb: float | None
    os_threads: int | None  # most threads seen at once
    killed: str | None  # why it was killed (hang), or None


def _clean_env(extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUBBED_ENV_PREFIXES)}
    env.update(extra)
    return env


def _proc_sample(pid: int) -> tuple[int | None, float | None]:
    """(threads, cpu seconds) of a live process from /proc; (None, None) elsewhere."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        # after "(comm)": state is fields[0]; utime 11, stime 12, num_threads 17
        return int(fields[17]), (int(fields[11]) + int(fields[12])) / ticks
    except (OSError, ValueError, IndexError):
        return None, None


def run_monitored(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    timeout: float = DEFAULT_TIMEOUT,
    stall: float = DEFAULT_STALL,
    cwd: Path | None = None,
) -> ProcessResult:
    """Run a runtime process to its end, or kill it (and its group) when it hangs.

    A hang is no stdout/stderr output and no CPU time for `stall` seconds (a deadlock,
    a sleep), or a run longer than `timeout` (a spin). The one place builder runs a runtime.
    """
    argv = tuple(str(a) for a in argv)
    if os.environ.get("BUILDER_VERBOSE"):
        print("+ " + shlex.join(argv), file=sys.stderr)
    start = time.perf_counter()
    try:
        proc = subprocess.Popen(
            argv,
            env=_clean_env(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
    except OSError as exc:
        raise ToolError(f"runtime: cannot start {argv[0]}: {exc.strerror}") from None
    out: list[str] = []
    err: list[str] = []
    marks = {"first": None, "last": time.perf_counter()}

    def pump(stream: Any, sink: list[str], is_stdout: bool) -> None:
        for line in stream:
            now = time.perf_counter()
            if is_stdout and marks["first"] is None and line.strip():
                marks["first"] = now
            marks["last"] = now
            sink.append(line)

    readers = [
        threading.Thread(target=pump, args=(proc.stdout, out, True), daemon=True),
        threading.Thread(target=pump, args=(proc.stderr, err, False), daemon=True),
    ]
    for r in readers:
        r.start()
    max_threads: int | None = None
    last_cpu, last_cpu_change = -1.0, time.perf_counter()
    killed = None
    status = rusage = None
    while True:
        pid_done, st, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid_done:
            status, rusage = st, ru
            break
        now = time.perf_counter()
        threads, cpu = _proc_sample(proc.pid)
        if threads is not None:
            max_threads = max(max_threads or 0, threads)
        if cpu is not None and cpu > last_cpu + 0.005:
            last_cpu, last_cpu_change = cpu, now
        idle_since = max(marks["last"], last_cpu_change)  # type: ignore[type-var]
        if now - start > timeout:
            killed = f"still running after {timeout:.0f} s (limit)"
        elif now - idle_since > stall:
            killed = f"no output and no CPU time for {stall:.0f} s (hung)"
        if killed:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            _, status, rusage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.05)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    for r in readers:
        r.join(timeout=5)
    for stream in (proc.stdout, proc.stderr):
        stream.close()  # type: ignore[union-attr]
    first = marks["first"]
    return ProcessResult(
        argv=argv, returncode=None if killed else proc.returncode, stdout="".join(out), stderr="".join(err),
        wall_s=wall, first_output_s=(first - start) if first is not None else None,  # type: ignore[operator]
        cpu_s=(rusage.ru_utime + rusage.ru_stime) if rusage else None,
        peak_rss_mb=round(rusage.ru_maxrss / 1024, 1) if rusage and sys.platform != "darwin"
        else (round(rusage.ru_maxrss / 1048576, 1) if rusage else None),
        os_threads=max_threads, killed=killed,
    )  # fmt: skip


# --- parsing what the runtime printed ------------------------------------------------


def parse_importtime(stderr: str) -> list[dict[str, Any]]:
    """`-X importtime` lines -> [{module, self_us, cumulative_us, depth}] in import order (pure).

    >>> parse_importtime("import time: self [us] | cumulative | imported package\\n"
    ...                  "import time:       472 |        472 |     yaml._yaml\\n"
    ...                  "import time:       309 |      20639 | yaml\\n")[1]
    {'module': 'yaml', 'self_us': 309, 'cumulative_us': 20639, 'depth': 0}
    """
    rows = []
    for line in stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        parts = line[len("import time:") :].split("|")
        if len(parts) != 3:
            continue
        try:
            self_us, cum_us = int(parts[0]), int(parts[1])
        except ValueError:
            continue  # the header line
        name = parts[2].rstrip()
        depth = (len(name) - len(name.lstrip(" ")) - 1) // 2
        rows.append({"module": name.strip(), "self_us": self_us, "cumulative_us": cum_us, "depth": depth})
    return rows


def import_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Total import time, the slowest modules (self time) and time per top-level package."""
    by_package: dict[str, int] = {}
    for r in rows:
        top = r["module"].split(".")[0]
        by_package[top] = by_package.get(top, 0) + r["self_us"]
    slowest = sorted(rows, key=lambda r: -r["self_us"])[:TOP_MODULES]
    return {
        "total_s": round(sum(r["cumulative_us"] for r in rows if r["depth"] == 0) / 1e6, 4),
        "modules": len(rows),
        "slowest_modules": [
            {
                "module": r["module"],
                "self_ms": round(r["self_us"] / 1000, 2),
                "cumulative_ms": round(r["cumulative_us"] / 1000, 2),
            }
            for r in slowest
        ],
        "by_package_ms": {
            k: round(v / 1000, 2) for k, v in sorted(by_package.items(), key=lambda kv: -kv[1]) if v >= 500
        },
    }


def _json_line(res: ProcessResult, what: str) -> dict[str, Any]:
    for line in res.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                break
    errors = [ln for ln in res.stderr.splitlines() if not ln.startswith("import time:")]
    tail = " | ".join(ln.strip() for ln in errors[-3:] if ln.strip()) or "(no output)"
    raise ToolError(
        f"runtime {what} printed no JSON (exit {res.returncode}): {tail}",
        hint="a runtime built before `stems bench` existed needs a rebuild"
        if "invalid choice" in tail
        else None,
    )


# --- one measured run ----------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    seconds: float = DEFAULT_SECONDS
    model: str = DEFAULT_MODEL
    timeout: float = DEFAULT_TIMEOUT
    stall: float = DEFAULT_STALL
    startup: bool = True  # the selftest probe (time to ready, imports, OpenMP)
    separation: bool = True  # the bench process


def _probe(
    rt: Runtime, argv: list[str], what: str, opts: RunOptions, run: dict[str, Any]
) -> tuple[Any, dict[str, Any] | None]:
    """Run one process of a run; on a hang or no JSON, note it in `run` and return None."""
    res = run_monitored(argv, env=rt.env, timeout=opts.timeout, stall=opts.stall)
    if res.killed:
        run["hung"] = f"{what}: {res.killed}"
        return res, None
    try:
        return res, _json_line(res, what)
    except ToolError as exc:
        run["failed"] = exc.one_line()
        return res, None


def measure_once(rt: Runtime, opts: RunOptions) -> dict[str, Any]:
    """One run: a startup probe and a bench process, each fresh. Never raises on a hang."""
    run: dict[str, Any] = {"hung": None}
    if opts.startup:
        res, st = _probe(
            rt, rt.command("selftest", "--json", importtime=rt.importtime), "selftest", opts, run
        )
        if st is None:
            return run
        imports = import_summary(parse_importtime(res.stderr)) if rt.importtime else None
        run.update({
            "startup_s": round(res.first_output_s or res.wall_s, 4),
            "import_s": imports["total_s"] if imports else st.get("torch_import_seconds"),
            "import_source": "-X importtime" if imports else "selftest torch_import_seconds (frozen program)",
            "imports": imports,
            "threads": st.get("threads"),
            "matmul_precision": st.get("matmul_precision"),
            "env": st.get("env"),
            "openmp_loaded": st.get("openmp"),
            "versions": st.get("versions"),
            "config_source": st.get("config_source"),
        })  # fmt: skip
    if opts.separation:
        args = ["bench", "--json", "--model", opts.model, "--seconds", f"{opts.seconds:g}"]
        res, b = _probe(rt, rt.command(*args), "bench", opts, run)
        if b is None:
            return run
        threads = (b.get("threads") or {}).get("intra_op")
        cores = b.get("cpu_cores_busy")
        run.update({
            "separation_s": b.get("wall_seconds"),
            "total_s": round(res.wall_s, 4),
            "rtf": b.get("realtime_factor"),
            "seconds_per_chunk": b.get("seconds_per_chunk"),
            "chunks": b.get("chunks"),
            "cores_busy": cores,
            "cpu_utilisation": b.get("cpu_utilisation"),
            "process_cpu_s": round(res.cpu_s, 3) if res.cpu_s is not None else None,
            "peak_rss_mb": res.peak_rss_mb or b.get("peak_rss_mb"),
            "os_threads": res.os_threads,
            "bench_threads": b.get("threads"),
            "bench_precision": b.get("matmul_precision"),
            "single_threaded": bool(threads and threads >= 2 and cores is not None and cores < SINGLE_THREAD_CORES),
        })  # fmt: skip
    return run


# --- statistics over runs -------------------------------------------------------------


def spread(values: Sequence[float]) -> dict[str, float | int | None]:
    vals = sorted(v for v in values if v is not None)
    if not vals:
        return {"n": 0, "median": None, "min": None, "max": None, "iqr": None}
    q = statistics.quantiles(vals, n=4, method="inclusive") if len(vals) >= 2 else [vals[0]] * 3
    return {
        "n": len(vals),
        "median": round(statistics.median(vals), 4),
        "min": round(vals[0], 4),
        "max": round(vals[-1], 4),
        "iqr": round(q[2] - q[0], 4),
    }


def usable(run: Mapping[str, Any]) -> bool:
    return not run.get("hung") and not run.get("failed")


def summarise(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    good = [r for r in runs if usable(r)]
    return {
        m: spread([r[m] for r in good if r.get(m) is not None])
        for m in METRICS
        if any(r.get(m) is not None for r in good)
    }


def median_imports(runs: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """Median import time per package and per module over the runs that have them."""
    per = [r["imports"] for r in runs if r.get("imports")]
    if not per:
        return None
    pkgs = sorted({p for i in per for p in i["by_package_ms"]})
    by_pkg = {p: round(statistics.median([i["by_package_ms"].get(p, 0.0) for i in per]), 2) for p in pkgs}
    mods: dict[str, list[float]] = {}
    for i in per:
        for m in i["slowest_modules"]:
            mods.setdefault(m["module"], []).append(m["self_ms"])
    slowest = sorted(
        ((m, statistics.median(v + [0.0] * (len(per) - len(v)))) for m, v in mods.items()),
        key=lambda kv: -kv[1],
    )[:TOP_MODULES]
    return {
        "total_s": round(statistics.median([i["total_s"] for i in per]), 4),
        "by_package_ms": dict(sorted(by_pkg.items(), key=lambda kv: -kv[1])),
        "slowest_modules": [{"module": m, "self_ms": round(v, 2)} for m, v in slowest],
    }


# --- budget ---------------------------------------------------------------------------


def size_of(rt: Runtime) -> dict[str, Any] | None:
    from .inspect import inspect_path

    try:
        info = inspect_path(rt.path)
    except (InputError, FileNotFoundError):
        return None
    return {"bytes": info["total_bytes"], "files": info["files"]}


def check_budget(
    summary: Mapping[str, Any],
    size: Mapping[str, Any] | None,
    profile: Profile | None,
    *,
    shipped: bool = True,
) -> dict[str, Any]:
    """Each budget the profile sets, with the measured median (or size) and whether it is met."""
    checks = []
    if profile is not None:
        b = profile.bench
        pairs = [
            ("max-startup-seconds", b.max_startup_seconds, (summary.get("startup_s") or {}).get("median")),
            (
                "max-seconds-per-chunk",
                b.max_seconds_per_chunk,
                (summary.get("seconds_per_chunk") or {}).get("median"),
            ),
            # size budgets are for what ships: a dist, not a venv
            ("max-size-mb", b.max_size_mb, round(size["bytes"] / 2**20, 1) if size and shipped else None),
            ("max-files", b.max_files, size["files"] if size and shipped else None),
        ]
        for key, limit, value in pairs:
            if limit is not None and value is not None:
                checks.append({"budget": key, "limit": limit, "measured": value, "ok": value <= limit})
    return {
        "profile": profile.name if profile else None,
        "checks": checks,
        "ok": all(c["ok"] for c in checks),
    }


# --- the benchmark --------------------------------------------------------------------


def bench_runtime(
    rt: Runtime,
    *,
    repeat: int = 3,
    opts: RunOptions | None = None,
    warmup: bool = True,
    log: Log | None = None,
    profile: Profile | None = None,
) -> dict[str, Any]:
    """Warm-up, then `repeat` measured runs, each in fresh processes; summary, flags and budget."""
    opts = opts or RunOptions()
    log = log or Log()
    if warmup:
        log.line(f"    {rt.label}: warm-up run (not counted)")
        measure_once(rt, opts)
    runs = []
    for i in range(repeat):
        run = measure_once(rt, opts)
        run["index"] = i
        runs.append(run)
        log.line(f"    {rt.label}: run {i + 1}/{repeat}: {describe_run(run)}")
    return result_of(rt, runs, opts, profile)


def result_of(
    rt: Runtime, runs: list[dict[str, Any]], opts: RunOptions, profile: Profile | None
) -> dict[str, Any]:
    summary = summarise(runs)
    hung = [r for r in runs if r.get("hung")]
    first = next((r for r in runs if usable(r)), {})
    failed = [r for r in runs if r.get("failed")]
    flags: list[str] = []
    if hung:
        flags.append(f"hung: {len(hung)} of {len(runs)} runs killed ({hung[0]['hung']})")
    if failed:
        flags.append(f"failed: {len(failed)} of {len(runs)} runs printed no JSON ({failed[0]['failed']})")
    single = [r for r in runs if r.get("single_threaded")]
    if single:
        t = first.get("bench_threads") or {}
        flags.append(
            f"single-threaded: {len(single)} of {len(runs)} runs kept < {SINGLE_THREAD_CORES} cores busy "
            f"with {t.get('intra_op')} threads asked for"
            + (
                " (a model this small may not use more: try --model bs_roformer_4stem)"
                if opts.model.startswith("tiny")
                else ""
            )
        )
    loaded = first.get("openmp_loaded") or []
    if len(loaded) > 1:
        flags.append(f"openmp: {len(loaded)} OpenMP runtimes loaded in one process")
    size = size_of(rt)
    return {
        "runtime": rt.describe(),
        "settings": {
            "repeat": len(runs),
            "model": opts.model,
            "seconds": opts.seconds,
            "timeout": opts.timeout,
            "stall": opts.stall,
        },
        "summary": summary,
        "imports": median_imports(runs),
        "threads": first.get("threads"),
        "matmul_precision": first.get("matmul_precision"),
        "env": first.get("env"),
        "openmp_loaded": loaded,
        "versions": first.get("versions"),
        "config_source": first.get("config_source"),
        "size": size,
        "flags": flags,
        "budget": check_budget(summary, size, profile, shipped=rt.kind == "dist"),
        "runs": runs,
    }


def describe_run(run: Mapping[str, Any]) -> str:
    if run.get("hung"):
        return f"KILLED: {run['hung']}"
    if run.get("failed"):
        return f"FAILED: {run['failed']}"
    bits = []
    if run.get("startup_s") is not None:
        bits.append(f"ready {run['startup_s']:.2f} s")
    if run.get("import_s") is not None:
        bits.append(f"imports {run['import_s']:.2f} s")
    if run.get("separation_s") is not None:
        bits.append(f"separation {run['separation_s']:.2f} s (RTF {run['rtf']})")
        bits.append(f"{run['cores_busy']} cores busy, {run['peak_rss_mb']} MB, {run['os_threads']} threads")
    if run.get("single_threaded"):
        bits.append("SINGLE-THREADED")
    return ", ".join(bits)


def render(result: Mapping[str, Any]) -> str:
    """The human-readable bench report."""
    rt = result["runtime"]
    s = result["settings"]
    lines = [
        f"{rt['label']} ({rt['kind']}{', profile ' + rt['profile'] if rt['profile'] else ''}): "
        f"{s['repeat']} runs, model {s['model']}, {s['seconds']:g} s of audio"
    ]
    for key, st in result["summary"].items():
        label, unit = METRICS[key]
        lines.append(
            f"  {label:<36} median {st['median']:>9.3f} {unit:<5} "
            f"(min {st['min']:.3f}, max {st['max']:.3f}, IQR {st['iqr']:.3f}, n={st['n']})"
        )
    t = result.get("threads") or {}
    if t:
        lines.append(
            f"  threads: {t.get('torch')} intra-op (at import {t.get('at_import')}), {t.get('interop')} "
            f"inter-op; matmul precision {result.get('matmul_precision')}; config {result.get('config_source')}"
        )
    omp = result.get("openmp_loaded") or []
    lines.append("  OpenMP loaded: " + (", ".join(f"{o['family']} {o['path']}" for o in omp) or "none"))
    imp = result.get("imports")
    if imp:
        lines.append(f"  slowest imports (self time, median of runs; total {imp['total_s']:.2f} s):")
        for m in imp["slowest_modules"]:
            lines.append(f"    {m['self_ms']:>8.1f} ms  {m['module']}")
    for c in result["budget"]["checks"]:
        lines.append(
            f"  budget {c['budget']}: {c['measured']} <= {c['limit']}: {'ok' if c['ok'] else 'OVER BUDGET'}"
        )
    for f in result["flags"]:
        lines.append(f"  FLAG {f}")
    return "\n".join(lines)


def smoke_bench(
    program_or_python: Path,
    profile: Profile | None,
    *,
    project: Project | None = None,
    seconds: float = 1.0,
    model: str = DEFAULT_MODEL,
    timeout: float = 300.0,
) -> dict[str, Any]:
    """The build pipeline's short form: no warm-up, one run, the profile's budget. Never raises on budget.

    `program_or_python` is a dist's stems program or a venv's python. The result's
    `budget.ok` and `flags` say whether the runtime passed; the caller stores it as bench.json.
    """
    rt = program_runtime(Path(program_or_python), project or find_project())
    opts = RunOptions(seconds=seconds, model=model, timeout=timeout, stall=min(DEFAULT_STALL, timeout))
    return bench_runtime(rt, repeat=1, opts=opts, warmup=False, log=Log(), profile=profile)


def profile_for(rt: Runtime, project: Project, name: str | None) -> Profile | None:
    from .profile import load_profile

    name = name or rt.profile
    if name and (project.profiles / f"{name}.toml").is_file():
        return load_profile(name, project.profiles)
    return None


def enforce(result: Mapping[str, Any]) -> None:
    """Raise after the report is out: over budget (11), or runs that hung (8)."""
    over = [c for c in result["budget"]["checks"] if not c["ok"]]
    if over:
        c = over[0]
        raise BudgetError(
            f"{result['runtime']['label']}: over budget: {c['budget']} is {c['limit']}, "
            f"measured {c['measured']}" + (f" (and {len(over) - 1} more)" if len(over) > 1 else "")
        )
    hung = [r for r in result["runs"] if r.get("hung")]
    if hung:
        raise CheckError(
            f"{result['runtime']['label']}: {len(hung)} of {len(result['runs'])} runs hung and were "
            f"killed: {hung[0]['hung']}"
        )
    failed = [r for r in result["runs"] if r.get("failed")]
    if failed:
        raise CheckError(
            f"{result['runtime']['label']}: {len(failed)} of {len(result['runs'])} runs failed: "
            f"{failed[0]['failed']}"
        )


# --- click ------------------------------------------------------------------------------


def common_options(f: Callable[..., Any]) -> Callable[..., Any]:
    for opt in reversed(
        [
            click.option(
                "--repeat",
                type=click.IntRange(1, 1000),
                default=3,
                show_default=True,
                help="Measured runs (each in fresh processes), after one warm-up.",
            ),
            click.option(
                "--seconds",
                type=click.FloatRange(0.1),
                default=DEFAULT_SECONDS,
                show_default=True,
                help="Length of the generated audio each bench run separates.",
            ),
            click.option(
                "--model",
                default=DEFAULT_MODEL,
                show_default=True,
                help="Model preset or MSST .yaml (bs_roformer_4stem is the real 4-stem size).",
            ),
            click.option(
                "--timeout",
                type=click.FloatRange(1),
                default=DEFAULT_TIMEOUT,
                show_default=True,
                help="Kill a runtime process running longer than this (seconds).",
            ),
            click.option(
                "--stall",
                type=click.FloatRange(0.5),
                default=DEFAULT_STALL,
                show_default=True,
                help="Kill a runtime process with no output and no CPU time for this long (seconds).",
            ),
        ]
    ):
        f = opt(f)
    return f


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


@click.command("bench")
@click.argument("path")
@common_options
@click.option(
    "--profile", "profile_name", help="Profile whose [bench] budget applies (default: the runtime's)."
)
@click.option(
    "--wheelhouse", type=click.Path(path_type=Path), help="Wheel folder, when PATH is a profile to install."
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@click.pass_obj
def bench(
    project: Project | None,
    path: str,
    repeat: int,
    seconds: float,
    model: str,
    timeout: float,
    stall: float,
    profile_name: str | None,
    wheelhouse: Path | None,
    as_json: bool,
) -> None:
    """Benchmark a venv, a dist or a profile: time to ready, imports, separation, CPU, memory, threads.

    Exits 11 when a median is over the profile's [bench] budget, 8 when a run hung.
    """
    project = project or find_project()
    log = Log()
    rt = resolve_runtime(path, project, log=log, wheelhouse=wheelhouse)
    profile = profile_for(rt, project, profile_name)
    opts = RunOptions(seconds=seconds, model=model, timeout=timeout, stall=stall)
    with log.step(f"bench {rt.label}: warm-up + {repeat} runs"):
        result = bench_runtime(rt, repeat=repeat, opts=opts, log=log, profile=profile)
    if as_json:
        emit_json(result)
    else:
        click.echo(render(result))
    enforce(result)
