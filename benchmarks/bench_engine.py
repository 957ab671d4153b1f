"""Engine vs the MSST BS-RoFormer shipped in `audio-separator`, interleaved, same weights.

Run with the benchmark environment's Python (torch + audio-separator, never the
project's runtime):

    .bench/msst-venv/bin/python benchmarks/bench_engine.py [--model bs_roformer_4stem] [--rounds 2]

(environment: benchmarks/requirements-msst.txt; note its rotary-embedding-torch pin.)

Both models get the seeded random weights of our preset (copied into the
reference with a strict load, which also proves the key layouts agree) and the
same generated chunk of audio; runs alternate reference / ours so that machine
load affects both alike. Prints a markdown table and, with --json, writes raw
numbers. The project itself never imports audio-separator.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="bs_roformer_4stem", help="preset (default: the full 4-stem model)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: all CPUs)")
    ap.add_argument("--json", type=Path, default=None, help="write raw results here")
    args = ap.parse_args()

    threads = args.threads or len(os.sched_getaffinity(0))
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from msst_reference import load_classes, version
    from runtime_entry.bench import generated_audio
    from runtime_entry.models import build_model, resolve_spec

    torch.set_num_threads(threads)
    spec = resolve_spec(args.model)
    ours = build_model(spec)
    ref_cls = load_classes()[spec.kind]
    accepted = inspect.signature(ref_cls.__init__).parameters
    kwargs = {k: v for k, v in spec.params.items() if k in accepted and k not in ("dim", "zero_dc")}
    dropped = sorted(k for k in spec.params if k not in accepted and k != "dim")
    ref = ref_cls(spec.params["dim"], **kwargs).eval()
    ref.load_state_dict(ours.state_dict(), strict=True)

    x = torch.from_numpy(generated_audio(0, spec.chunk_size, spec.sample_rate)[: spec.audio_channels]).unsqueeze(0)

    def run(model, precision: str):
        torch.set_float32_matmul_precision(precision)
        t0 = time.perf_counter()
        with torch.inference_mode():
            y = model(x)
        return time.perf_counter() - t0, y

    with FlopCounterMode(display=False) as fc, torch.inference_mode():
        ours(x)
    flops = fc.get_total_flops()

    modes = {"reference": (ref, "highest"), "ours --precision highest": (ours, "highest"), "ours default (high)": (ours, "high")}
    times: dict[str, list[float]] = {k: [] for k in modes}
    outputs = {}
    run(ours, "highest")  # warm up allocator and kernels once
    for _ in range(args.rounds):
        for name, (model, precision) in modes.items():
            seconds, y = run(model, precision)
            times[name].append(seconds)
            outputs[name] = y
    ref_out = outputs["reference"]
    rows = []
    for name in modes:
        best = min(times[name])
        y = outputs[name]
        diff = (y - ref_out).float()
        rel = (diff.abs().max() / ref_out.abs().max()).item()
        snr = 10 * math.log10(ref_out.pow(2).sum().item() / max(diff.pow(2).sum().item(), 1e-30))
        rows.append({
            "mode": name, "seconds_per_chunk": round(best, 3), "all_seconds": [round(t, 3) for t in times[name]],
            "gflops_per_s": round(flops / best / 1e9, 1), "speedup": round(min(times["reference"]) / best, 3),
            "max_rel_error": rel, "snr_db": round(snr, 1),
        })
    info = {
        "model": spec.name, "chunk_size": spec.chunk_size, "gflop_per_chunk": round(flops / 1e9, 1),
        "threads": threads, "torch": torch.__version__, "audio_separator": version(),
        "cpu": platform.processor() or platform.machine(), "reference_ignores": dropped, "rows": rows,
    }
    print(f"model {spec.name}: {info['gflop_per_chunk']} GFLOP per {spec.chunk_size}-sample chunk, "
          f"{threads} threads, torch {torch.__version__}, audio-separator {info['audio_separator']}")
    print("\n| mode | s/chunk (best) | GFLOP/s | speed-up | max rel. error | SNR vs ref (dB) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['mode']} | {r['seconds_per_chunk']} | {r['gflops_per_s']} | {r['speedup']}x | {r['max_rel_error']:.2e} | {r['snr_db']} |")
    if args.json:
        args.json.write_text(json.dumps(info, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
