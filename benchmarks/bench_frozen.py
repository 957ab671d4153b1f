"""Frozen-runtime benchmark: size, files, archive, time to ready (frozen vs venv), real separation.

    make bench-frozen                      # after `make run`
    python benchmarks/bench_frozen.py [--profile P] [--rounds 7]

Time to ready is process start to the worker's first line (`ready`), interleaved
frozen, venv, frozen, venv, ...; the same program from the venv is
`python -m runtime_entry` with the repository on PYTHONPATH. Then the frozen
program separates 12 s of generated audio with the full `bs_roformer_4stem`
preset and must write four stems of the input's length and rate. Results go to
docs/PERFORMANCE.md (section `bench-frozen`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_install import write_section  # noqa: E402
from host import machine  # noqa: E402

from builder.contract import runtime_environment  # noqa: E402
from builder.targets import host_target  # noqa: E402
from builder.venvs import venv_python as venv_python_of  # noqa: E402


def clean_env() -> dict[str, str]:
    # the same rule builder applies to every runtime it measures
    return runtime_environment({}, os.environ)


def time_to_ready(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.Popen(
        [*argv, "worker", "--model", "tiny"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    assert proc.stdout is not None and proc.stdin is not None
    line = proc.stdout.readline()
    elapsed = time.perf_counter() - start
    proc.stdin.close()
    proc.wait(timeout=60)
    if json.loads(line).get("type") != "ready":
        raise SystemExit(f"no ready message from {argv}: {line!r}")
    return elapsed


def main() -> int:
    ap = argparse.ArgumentParser()
    target = host_target()
    ap.add_argument("--profile", default=f"minimal-{target.name if target else 'linux-x86_64'}")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--skip-separation", action="store_true")
    args = ap.parse_args()
    dist = ROOT / "dist" / args.profile
    manifest = json.loads((dist / "manifest.json").read_text())
    program = dist / "stems" / "stems"
    venv_python = venv_python_of(ROOT / "build" / args.profile / "venv")
    archive = dist / f"{args.profile}.tar.xz"
    size_mb = manifest["totals"]["bytes"] / 1e6
    files = manifest["totals"]["files"]
    archive_mb = archive.stat().st_size / 1e6

    env = clean_env()
    venv_env = {**env, "PYTHONPATH": str(ROOT), "STEMS_RUNTIME_CONFIG": str(dist / "stems" / "runtime.json")}
    frozen_t, venv_t = [], []
    time_to_ready([str(program)], env)  # warm the page cache for both before measuring
    time_to_ready([str(venv_python), "-m", "runtime_entry"], venv_env)
    for r in range(args.rounds):
        frozen_t.append(time_to_ready([str(program)], env))
        venv_t.append(time_to_ready([str(venv_python), "-m", "runtime_entry"], venv_env))
        print(f"round {r + 1}: frozen {frozen_t[-1]:.2f} s, venv {venv_t[-1]:.2f} s", flush=True)
    mf, mv = statistics.median(frozen_t), statistics.median(venv_t)

    separation = "not run (--skip-separation)"
    if not args.skip_separation:
        import numpy as np
        import soundfile as sf

        with tempfile.TemporaryDirectory() as tmp:
            song = Path(tmp) / "song.wav"
            rate, seconds = 44100, 12
            t = np.arange(rate * seconds) / rate
            audio = np.stack([np.sin(2 * np.pi * 220 * t), np.sin(2 * np.pi * 330 * t)], axis=1) * 0.2
            sf.write(song, audio.astype("float32"), rate)
            start = time.perf_counter()
            proc = subprocess.run(
                [
                    str(program),
                    "separate",
                    str(song),
                    "-o",
                    str(Path(tmp) / "out"),
                    "--model",
                    "bs_roformer_4stem",
                    "--json",
                    "-q",
                ],
                capture_output=True,
                text=True,
                env=env,
            )
            took = time.perf_counter() - start
            if proc.returncode != 0:
                raise SystemExit(f"frozen separation failed: {proc.stderr[-2000:]}")
            stems = sorted((Path(tmp) / "out" / "song").glob("*.wav"))
            infos = [sf.info(str(p)) for p in stems]
            ok = len(stems) == 4 and all(i.frames == len(t) and i.samplerate == rate for i in infos)
            if not ok:
                raise SystemExit(f"frozen separation wrote {[p.name for p in stems]}")
            separation = (
                f"passed: `bs_roformer_4stem` (seeded random weights) on {seconds} s of audio wrote "
                f"{', '.join(p.stem for p in stems)} ({len(t)} frames at {rate} Hz each) in {took:.0f} s"
            )

    body = f"""## Frozen runtime: size, time to ready, separation ({args.profile})

- Date: {dt.date.today().isoformat()}; machine: {machine()}
- Command: `make bench-frozen` (`python benchmarks/bench_frozen.py --rounds {args.rounds}`), on the dist `make run` built

| measure | value | goal |
|---|---|---|
| frozen folder | {size_mb:.0f} MB | <= 500 MB (plain PyInstaller: 1015 MB) |
| files | {files} | <= 1200 (plain PyInstaller: 2711) |
| `{archive.name}` | {archive_mb:.0f} MB | <= 180 MB (plain PyInstaller as tar.xz: 233 MB) |
| time to ready, frozen (median of {args.rounds}) | {mf:.2f} s ({", ".join(f"{x:.2f}" for x in frozen_t)}) | |
| time to ready, venv (median of {args.rounds}) | {mv:.2f} s ({", ".join(f"{x:.2f}" for x in venv_t)}) | |
| frozen / venv | {mf / mv:.2f} | <= 1.10 |

Time to ready: process start to the `ready` line of `stems worker --model tiny`, interleaved frozen, venv, ...
Separation from the frozen folder: {separation}.
"""
    write_section("bench-frozen", body)
    print(body)
    return 0 if size_mb <= 500 and files <= 1200 and archive_mb <= 180 and mf / mv <= 1.10 else 1


if __name__ == "__main__":
    raise SystemExit(main())
