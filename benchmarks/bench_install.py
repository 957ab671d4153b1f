"""Install-stage benchmark: builder's uv install vs `python -m venv` + `pip install -r`.

Both install the same lock (minimal profile of this host), both write bytecode,
both start with empty caches; runs are interleaved (uv, pip, uv, pip, ...) so
disk and network drift hit both sides alike. Then a rebuild with nothing
changed. Results go to docs/PERFORMANCE.md (section replaced in place).

    make bench-install            # 3 rounds
    python benchmarks/bench_install.py --rounds 5
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from host import machine  # noqa: E402

from builder.paths import Project  # noqa: E402
from builder.profile import load_profile  # noqa: E402
from builder.stages.install import install  # noqa: E402
from builder.stages.lock import read_lock, sources  # noqa: E402
from builder.targets import host_target  # noqa: E402
from builder.tools import uv  # noqa: E402
from builder.wheelhouse import find_wheelhouse  # noqa: E402

PERF = ROOT / "docs" / "PERFORMANCE.md"


def count_pyc(venv: Path) -> int:
    return sum(1 for _ in venv.rglob("*.pyc"))


def time_uv(profile, lock, wheelhouse, scratch: Path) -> tuple[float, int]:
    venv = scratch / "uv-venv"
    env_cache = scratch / "uv-cache"
    os.environ["UV_CACHE_DIR"] = str(env_cache)  # cold: an empty cache each run
    try:
        start = time.perf_counter()
        install(profile, lock, venv, wheelhouse)
        elapsed = time.perf_counter() - start
    finally:
        del os.environ["UV_CACHE_DIR"]
    pyc = count_pyc(venv)
    shutil.rmtree(venv)
    shutil.rmtree(env_cache, ignore_errors=True)
    return elapsed, pyc


def time_pip(profile, lock, wheelhouse, scratch: Path) -> tuple[float, int]:
    venv = scratch / "pip-venv"
    python = uv.find_python(profile.python)
    src = sources(profile, wheelhouse)
    start = time.perf_counter()
    subprocess.run([python, "-m", "venv", venv], check=True)
    # --isolated: only what we pass counts (no pip.conf extra indexes, no global constraints)
    subprocess.run(
        [venv / "bin/python", "-m", "pip", "install", "--isolated", "--quiet", "--no-cache-dir",
         "--disable-pip-version-check", "--require-hashes", "--only-binary=:all:",
         *src.args, "-r", lock.path],
        check=True,
    )  # fmt: skip
    elapsed = time.perf_counter() - start
    pyc = count_pyc(venv)
    shutil.rmtree(venv)
    return elapsed, pyc


def time_noop_build(profile_name: str) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "builder", "build", "--profile", profile_name],
        check=True,
        cwd=ROOT,
        capture_output=True,
    )
    return time.perf_counter() - start


def write_section(name: str, body: str) -> None:
    start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    text = (
        PERF.read_text()
        if PERF.exists()
        else "# Performance\n\nMeasured numbers, newest run of each benchmark.\n"
    )
    block = f"{start}\n{body.rstrip()}\n{end}"
    if start in text:
        before, rest = text.split(start, 1)
        text = before + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    PERF.parent.mkdir(exist_ok=True)
    PERF.write_text(text)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--profile", default=None)
    args = ap.parse_args()
    target = host_target()
    name = args.profile or f"minimal-{target.name if target else 'linux-x86_64'}"
    project = Project(root=ROOT)
    profile = load_profile(name, project.profiles)
    lock = read_lock(project.lock_path(name))
    wheelhouse = find_wheelhouse(None)
    uv_times, pip_times, pycs = [], [], set()
    with tempfile.TemporaryDirectory(
        prefix="bench-install-", dir=ROOT / "build" if (ROOT / "build").is_dir() else None
    ) as tmp:
        scratch = Path(tmp)
        for r in range(args.rounds):
            t, n_uv = time_uv(profile, lock, wheelhouse, scratch)
            uv_times.append(t)
            print(f"round {r + 1}: uv  {t:6.1f} s ({n_uv} .pyc)", flush=True)
            t, n_pip = time_pip(profile, lock, wheelhouse, scratch)
            pip_times.append(t)
            print(f"round {r + 1}: pip {t:6.1f} s ({n_pip} .pyc)", flush=True)
            pycs.add((n_uv, n_pip))
    # the no-change rebuild: a build whose dist is current (first call makes it so)
    time_noop_build(name)
    noop = [time_noop_build(name) for _ in range(args.rounds)]
    mu, mp, mn = statistics.median(uv_times), statistics.median(pip_times), statistics.median(noop)
    ratio = mp / mu
    print(f"median uv {mu:.1f} s, pip {mp:.1f} s: uv is {ratio:.2f}x faster; no-change build {mn:.2f} s")
    rows = "\n".join(
        f"| {i + 1} | {u:.1f} | {p:.1f} |" for i, (u, p) in enumerate(zip(uv_times, pip_times, strict=True))
    )
    body = f"""## Install stage: uv (builder) vs pip

- Date: {dt.date.today().isoformat()}; machine: {machine()}
- Command: `make bench-install` (`python benchmarks/bench_install.py --rounds {args.rounds}`)
- What: install `locks/{name}.lock` ({len(lock.pins)} packages, torch from the local wheelhouse) into a new venv,
  bytecode written by both (.pyc files uv/pip: {sorted(pycs)}; pip's venv also holds pip itself), empty caches each run
  (uv: a fresh `UV_CACHE_DIR`; pip: `--no-cache-dir`), interleaved uv, pip, uv, pip, ...

| round | uv (s) | pip (s) |
|---|---|---|
{rows}

**Median: uv {mu:.1f} s, pip {mp:.1f} s — uv is {ratio:.2f}x faster (goal: >= 2.5x).**

No-change rebuild (`builder build --profile {name}` with lock, sources and dist unchanged):
median **{mn:.2f} s** over {len(noop)} runs ({", ".join(f"{x:.2f}" for x in noop)}) (goal: < 3 s).
"""
    write_section("bench-install", body)
    print(f"wrote {PERF}")
    return 0 if ratio >= 2.5 and mn < 3 else 1


if __name__ == "__main__":
    raise SystemExit(main())
