"""The process runner and monitor (builder/measure/take/runner.py): psutil figures that agree with the
kernel's own accounting, a whole process tree killed on a hang, and the single-thread alarm."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from builder.measure.bench import bench_runtime
from builder.measure.judge.bench import single_thread_diagnosis
from builder.measure.take.runner import Sample, run_monitored, window
from builder.measure.take.runs import RunOptions
from builder.measure.take.subject import Subject

ROOT = Path(__file__).resolve().parents[1]

# Fixed work (not fixed time), so two runs use the same CPU time: 3 threads hash 640 MB each
# (hashlib releases the GIL: real parallel CPU time), with 256 MiB touched and held.
# At the end it reports what the kernel counted for itself. Peak memory is VmHWM, not
# ru_maxrss: Linux carries ru_maxrss over from the forking parent (pytest, often 700 MB).
WORKLOAD = textwrap.dedent(
    """
    import hashlib, json, resource, threading
    buf = bytearray(256 * 1024 * 1024)
    for i in range(0, len(buf), 4096):
        buf[i] = 1
    block = bytes(8 * 1024 * 1024)
    def work():
        h = hashlib.sha256()
        for _ in range(80):
            h.update(block)
    ts = [threading.Thread(target=work) for _ in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    with open("/proc/self/status") as fh:
        hwm_kb = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))
    print(json.dumps({"cpu_s": ru.ru_utime + ru.ru_stime, "maxrss_mb": hwm_kb / 1024}))
    """
)


OLD_WAY = textwrap.dedent(
    """
    import json, os, subprocess, sys, time
    proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
    most = 0
    while True:
        pid, _, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        try:
            with open(f"/proc/{proc.pid}/stat", encoding="ascii") as fh:
                most = max(most, int(fh.read().rsplit(")", 1)[1].split()[17]))
        except OSError:
            pass
        time.sleep(0.05)
    print(json.dumps([ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024, most]))
    """
)


def _old_way(argv: list[str]) -> tuple[float, float, int]:
    """What the runner did before psutil (Linux): threads from /proc/PID/stat, CPU and peak memory from wait4.

    It runs in a small launcher: Linux carries ru_maxrss over from a forking parent, and this
    test process may be large by the time it runs.
    """
    out = subprocess.run([sys.executable, "-c", OLD_WAY, *argv], capture_output=True, text=True, check=True)
    cpu, rss, most = json.loads(out.stdout)
    return float(cpu), float(rss), int(most)


def _close(a: float, b: float, rel: float = 0.10) -> bool:
    return abs(a - b) <= rel * max(a, b)


def test_psutil_figures_agree_with_proc_and_wait4_within_ten_percent() -> None:
    argv = [sys.executable, "-c", WORKLOAD]
    old_cpu, old_rss, old_threads = _old_way(argv)
    res = run_monitored(argv, env={}, timeout=120, stall=60)
    assert res.returncode == 0 and res.killed is None, res.stderr
    own = json.loads(res.stdout)
    assert res.cpu_s is not None and res.peak_rss_mb is not None and res.os_threads is not None
    # the same process: the kernel's count for itself at its end
    assert _close(res.cpu_s, own["cpu_s"]), (res.cpu_s, own)
    assert _close(res.peak_rss_mb, own["maxrss_mb"]), (res.peak_rss_mb, own)
    # the same workload, measured the old way
    assert _close(res.cpu_s, old_cpu), (res.cpu_s, old_cpu)
    assert _close(res.peak_rss_mb, old_rss), (res.peak_rss_mb, old_rss)
    assert res.os_threads == old_threads == 4  # the main thread and 3 workers
    # per-thread CPU time adds up (a thread's last 50 ms before it ends may be missed),
    # and the three workers did most of it
    assert len(res.thread_cpu_s) == 4 and _close(sum(res.thread_cpu_s), res.cpu_s, 0.15), res.thread_cpu_s
    assert sum(res.thread_cpu_s[:3]) > 0.6 * res.cpu_s, res.thread_cpu_s
    assert res.samples and res.samples[-1].cpu_s == res.cpu_s


def _tree(tmp_path: Path, child_code: str, parent_tail: str) -> list[str]:
    """A parent that starts a child (writing the child's pid to a file), then does `parent_tail`."""
    pidfile = tmp_path / "child.pid"
    parent = textwrap.dedent(
        f"""
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", {child_code!r}])
        open({str(pidfile)!r}, "w").write(str(child.pid))
        {parent_tail}
        """
    )
    return [sys.executable, "-c", parent]


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait_gone(pid: int, seconds: float = 5) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if _gone(pid):
            return True
        time.sleep(0.05)
    return False


def test_a_spinning_child_is_killed_with_its_parent_at_the_time_limit(tmp_path: Path) -> None:
    # The child spins, so the tree keeps using CPU: only the time limit can stop it.
    argv = _tree(tmp_path, "while True: pass", "time.sleep(3600)")
    res = run_monitored(argv, env={}, timeout=3, stall=60)
    assert res.killed == "still running after 3 s (limit)" and res.returncode is None
    assert res.cpu_s is not None and res.cpu_s > 0.5  # the child's CPU time counts for the tree
    child = int((tmp_path / "child.pid").read_text())
    assert _wait_gone(child), "the spinning child outlived the kill"


def test_a_tree_that_does_nothing_is_killed_as_hung(tmp_path: Path) -> None:
    argv = _tree(tmp_path, "import time; time.sleep(3600)", "child.wait()")
    t0 = time.monotonic()
    res = run_monitored(argv, env={}, timeout=60, stall=2)
    assert res.killed == "no output and no CPU time for 2 s (hung)"
    assert time.monotonic() - t0 < 20
    assert _wait_gone(int((tmp_path / "child.pid").read_text()))


def test_a_childs_cpu_time_counts_for_the_tree(tmp_path: Path) -> None:
    spin = "import time\nt = time.process_time()\nwhile time.process_time() - t < 1.5: pass"
    res = run_monitored(_tree(tmp_path, spin, "child.wait()"), env={}, timeout=60, stall=30)
    assert res.returncode == 0 and res.killed is None
    assert res.cpu_s is not None and res.cpu_s > 1.2, res.cpu_s


# --- figures over a window (pure) ---------------------------------------------------------


def _samples(per_thread: dict[int, float], seconds: float = 2.0, step: float = 0.05) -> list[Sample]:
    """Threads each busy a share of every second; the tree's CPU is their sum."""
    out = []
    for i in range(int(seconds / step) + 1):
        t = i * step
        cpu = {tid: share * t for tid, share in per_thread.items()}
        out.append(Sample(t=t, cpu_s=sum(cpu.values()), threads_cpu_s=cpu))
    return out


def test_window_counts_cores_and_the_threads_that_did_the_work() -> None:
    two = window(_samples({1: 0.05, 2: 0.95, 3: 0.9}), end=1.8, seconds=1.0)
    assert two is not None and two.cores_busy == 1.9 and two.busy_threads == 2
    assert two.thread_shares == (0.95, 0.9, 0.05)
    one = window(_samples({1: 1.0, 2: 0.01}), end=1.8, seconds=1.0)
    assert one is not None and one.cores_busy == 1.01 and one.busy_threads == 1


def test_window_outside_the_samples_is_none() -> None:
    s = _samples({1: 1.0})
    assert window(s, end=1.0, seconds=1.5) is None  # begins before the first sample
    assert window(s, end=2.5, seconds=1.0) is None
    assert window([], end=1.0, seconds=0.5) is None


def test_single_thread_diagnosis_names_busy_threads_and_small_pools() -> None:
    pools = [{"user_api": "openmp", "prefix": "libgomp", "num_threads": 1}]
    text = single_thread_diagnosis({"busy_threads": 1, "cores_busy": 0.98}, pools, 4)
    assert text == ": 1 thread did the work (cores busy 0.98); openmp pool libgomp runs 1 thread"
    shared = single_thread_diagnosis({"busy_threads": 2, "cores_busy": 1.0}, [], 2)
    assert "share one core" in shared


# --- the alarm on a real planted run --------------------------------------------------------


@pytest.mark.slow
def test_a_runtime_pinned_to_one_core_raises_the_single_thread_alarm() -> None:
    """Two threads asked for, one core allowed (taskset): the classic 'runs single-threaded'."""
    python = Path(sys.executable)
    rt = Subject(
        label="pinned", kind="venv", path=python.parent.parent,
        argv=("taskset", "-c", "0", str(python), "-m", "runtime_entry"),
        env={"PYTHONPATH": str(ROOT), "STEMS_THREADS": "2"}, importtime=False,
    )  # fmt: skip
    opts = RunOptions(seconds=2, model="tiny", timeout=300, stall=60, startup=True)
    result = bench_runtime(rt, repeat=1, opts=opts, warmup=False).to_json()
    run = result["runs"][0]
    assert not run.get("hung") and not run.get("failed"), run
    assert run["cores_busy_source"] == "builder (psutil)"
    assert run["cores_busy"] < 1.25 and run["single_threaded"], run
    assert run["bench_threads"]["intra_op"] == 2
    flag = next(f for f in result["flags"] if f.startswith("single-threaded: 1 of 1 runs"))
    assert "did the work" in flag, flag
    # threadpoolctl's inventory came with the run (selftest): torch's OpenMP pool, 2 threads
    omp = [p for p in run["threadpools"] if p["user_api"] == "openmp"]
    assert len(omp) == 1 and omp[0]["num_threads"] == 2


def test_the_callers_environment_as_is_each_threads_affinity_and_the_start_in_wall_clock() -> None:
    code = "import os, time; print(os.environ.get('BUILDER_TEST_KEPT'), os.getpid()); time.sleep(0.3)"
    before = time.time()
    res = run_monitored(
        [sys.executable, "-c", code], env={**os.environ, "BUILDER_TEST_KEPT": "as-is"}, timeout=60, stall=30,
        inherit_env=True, thread_affinity=True,
    )  # fmt: skip
    assert res.returncode == 0 and res.stdout.split() == ["as-is", str(res.pid)]
    assert res.started_epoch is not None and before <= res.started_epoch <= time.time()
    if sys.platform == "linux":
        assert res.samples[-1].threads_affinity.get(res.pid) == tuple(sorted(os.sched_getaffinity(0)))
    plain = run_monitored([sys.executable, "-c", "print(1)"], env={}, timeout=60, stall=30)
    assert plain.returncode == 0 and all(not s.threads_affinity for s in plain.samples)
