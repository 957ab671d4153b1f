"""How fast `--precision highest` could be on this machine, from what its parts measure.

Issue 12 asks for 2.0x msst at float32. This measures, on one chunk of the 4-stem
BS-RoFormer, where the engine's time goes (torch.profiler) and how many FLOPs each part
does (FlopCounterMode), then sets each part beside its floor on these cores:

- the GEMMs (mm, addmm, addmm_, baddbmm) against torch.mm's best rate at the engine's own
  GEMM shapes;
- the attention (torch's fused kernel) against the two GEMMs it contains (q k^T and p v, in
  128-query blocks, the exponentials left out), on the time axis's shape;
- everything else as measured.

Two ceilings follow: with torch's kernels (GEMMs at their best rate, attention and the rest
as measured), and a floor no Python-level change can pass (GEMMs at their best rate,
attention's GEMMs only, nothing else). Both are set against msst's time for the same chunk,
timed in this process just before and just after the profiled run (their mean), so that the
machine's state weighs on both sides alike.

    .bench/msst-venv/bin/python benchmarks/engine_bounds.py [--json F] [--doc docs/PERFORMANCE.md] [--from-json F]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_engine import reference_model  # noqa: E402
from flop_count import uncounted_flops  # noqa: E402
from host import cpu_bf16_flags, cpu_model, write_section  # noqa: E402

BEGIN, END = "<!-- bench-engine-bounds -->", "<!-- /bench-engine-bounds -->"
COMMAND = "make bench-engine-bounds  # = .bench/msst-venv/bin/python benchmarks/engine_bounds.py --json .bench/engine-bounds.json --doc docs/PERFORMANCE.md"
GEMM_OPS = ("aten::mm", "aten::addmm", "aten::addmm_", "aten::baddbmm", "aten::bmm")
ATTENTION_OPS = ("aten::_scaled_dot_product_flash_attention_for_cpu",)
QUERY_BLOCK = 128
GOAL = 2.0


def best_of(fn: Any, runs: int = 5) -> float:
    fn()
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def gemm_peak(dim: int, inner: int, ff: int, rows: int) -> dict[str, float]:
    """torch.mm's best GFLOP/s at the engine's GEMM shapes (rows x in -> out)."""
    import torch

    shapes = {
        "q k v and gates": (rows, dim, 3 * inner + 8),
        "attention out": (rows, inner, dim),
        "feed-forward in": (2048, dim, ff),
        "feed-forward out": (2048, ff, dim),
    }
    rates = {}
    for name, (n, k, m) in shapes.items():
        a, b, c = torch.randn(n, k), torch.randn(k, m), torch.empty(n, m)
        seconds = best_of(lambda a=a, b=b, c=c: torch.mm(a, b, out=c))
        rates[name] = round(2 * n * k * m / seconds / 1e9, 1)
    return rates


def attention_parts(seqs: int, heads: int, n: int, d: int) -> dict[str, float]:
    """Seconds for one time-axis attention: torch's fused kernel on the engine's strided views,
    its two GEMMs alone in QUERY_BLOCK-row blocks, and the softmax of those blocks alone."""
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(0)
    qkv = torch.randn(seqs, n, 3, heads, d, generator=g)
    q, k, v = (qkv[:, :, i].transpose(1, 2) for i in range(3))
    fused = best_of(lambda: F.scaled_dot_product_attention(q, k, v), runs=3)
    qc = (q * d**-0.5).contiguous().view(-1, n, d)
    kt = k.transpose(-1, -2).contiguous().view(-1, d, n)
    vc = v.contiguous().view(-1, n, d)
    per = heads  # one sequence's heads per batched GEMM: the scores of a block stay in cache
    scores = torch.empty(per, QUERY_BLOCK, n)
    out = torch.empty(per, QUERY_BLOCK, d)
    gemms = softmax = 0.0
    for s in range(0, seqs * heads, per):
        for i in range(0, n, QUERY_BLOCK):
            rows = min(QUERY_BLOCK, n - i)
            sc, o = scores[:, :rows], out[:, :rows]
            t0 = time.perf_counter()
            torch.bmm(qc[s : s + per, i : i + rows], kt[s : s + per], out=sc)
            t1 = time.perf_counter()
            p = torch.softmax(sc, -1)
            t2 = time.perf_counter()
            torch.bmm(p, vc[s : s + per], out=o)
            t3 = time.perf_counter()
            gemms += (t1 - t0) + (t3 - t2)
            softmax += t2 - t1
    return {"fused_s": round(fused, 3), "gemms_s": round(gemms, 3), "softmax_s": round(softmax, 3)}


def timed(model: Any, x: Any) -> float:
    import torch

    with torch.inference_mode():
        t0 = time.perf_counter()
        model(x)
        return time.perf_counter() - t0


def profile_chunk(model: Any, x: Any, reference: Any) -> tuple[float, list[float], dict[str, float]]:
    """Wall seconds of one chunk, msst's seconds just before and just after it, and the
    profiler's seconds per part (the main thread's op time)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    timed(reference, x)  # warm-ups: kernels, caches, the allocator
    timed(model, x)
    before = timed(reference, x)
    with torch.inference_mode():
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            t0 = time.perf_counter()
            model(x)
            wall = time.perf_counter() - t0
    after = timed(reference, x)
    parts = {"gemm": 0.0, "attention": 0.0, "rest": 0.0}
    for e in prof.key_averages():
        s = e.self_cpu_time_total / 1e6
        parts["gemm" if e.key in GEMM_OPS else "attention" if e.key in ATTENTION_OPS else "rest"] += s
    return wall, [round(before, 2), round(after, 2)], {k: round(v, 2) for k, v in parts.items()}


def count_flops(model: Any, x: Any) -> dict[str, float]:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False, custom_mapping=uncounted_flops()) as fc, torch.inference_mode():
        model(x)
    attention = gemm = 0.0
    for op, flops in fc.get_flop_counts()["Global"].items():
        if "attention" in str(op):
            attention += flops
        else:
            gemm += flops
    return {"gemm": round(gemm / 1e9, 1), "attention": round(attention / 1e9, 1)}


def render(info: dict[str, Any]) -> str:
    p, f, a = info["parts_s"], info["gflop"], info["attention_time_axis"]
    peak = info["gemm_peak_gflops"]
    gemm_floor = f["gemm"] / max(peak.values())
    attention_floor = p["attention"] * a["gemms_s"] / a["fused_s"]
    with_torch = gemm_floor + p["attention"] + p["rest"]
    floor = gemm_floor + attention_floor
    msst = info["msst_s"]

    def ratio(t: float) -> str:
        return f"{msst / t:.2f}x msst"

    lines = [
        BEGIN,
        "## `--precision highest` against its 2.0x goal: where the time goes, and the ceilings",
        "",
        f"- Date: {info['date']}; machine: {info['cpu']}, {info['threads']} threads"
        f" (CPU flags: {', '.join(info['cpu_bf16']) or 'no native bf16'}); torch {info['torch']}.",
        f"- Command: `{COMMAND}`",
        f"- One `{info['model']}` chunk at `--precision highest`, profiled after a warm-up: {info['wall_s']} s"
        f" ({ratio(info['wall_s'])}). msst on the same chunk with the same weights, just before and just"
        f" after: {' and '.join(str(t) for t in info['msst_runs_s'])} s, mean {msst} s, so 2.0x needs"
        f" {msst / GOAL:.1f} s.",
        "",
        "| part | GFLOP | measured (s) | GFLOP/s | floor (s) | floor from |",
        "|---|---|---|---|---|---|",
        f"| GEMMs (mm, addmm, addmm_, baddbmm) | {f['gemm']} | {p['gemm']} | {f['gemm'] / p['gemm']:.0f}"
        f" | {gemm_floor:.1f} | torch.mm's best rate at the engine's GEMM shapes, {max(peak.values())} GFLOP/s |",
        f"| attention (torch's fused kernel) | {f['attention']} | {p['attention']}"
        f" | {f['attention'] / p['attention']:.0f} | {attention_floor:.1f} | its two GEMMs alone:"
        f" {a['gemms_s']} s of the kernel's {a['fused_s']} s on the time axis (softmax alone {a['softmax_s']} s) |",
        f"| everything else | | {p['rest']} | | 0 | nothing |",
        "",
        "- GEMM rates at the engine's shapes (GFLOP/s): "
        + ", ".join(f"{k} {v}" for k, v in peak.items())
        + ".",
        f"- Ceiling with torch's kernels (GEMMs at their best rate, attention and the rest as measured):"
        f" {with_torch:.1f} s, {ratio(with_torch)}.",
        f"- Floor no Python-level change can pass (GEMMs at their best rate, attention's GEMMs only,"
        f" nothing else): {floor:.1f} s, {ratio(floor)}.",
        "- Between the two lies a fused float32 attention kernel faster than torch's, which would be"
        " native code of our own built for every target: outside what this runtime ships.",
        "- msst's own time varies more than the engine's from run to run here (it allocates fresh"
        " tensors of hundreds of MB per layer, whose page faults cost what the host's memory pressure"
        " makes them cost): ratios are only meaningful within one run, as here and in bench-engine.",
        END,
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="bs_roformer_4stem")
    ap.add_argument("--json", type=Path, default=None, help="write raw results here")
    ap.add_argument("--doc", type=Path, default=None, help=f"replace the {BEGIN} section of this file")
    ap.add_argument(
        "--from-json", type=Path, default=None, help="do not run: render --doc from an earlier --json"
    )
    args = ap.parse_args()
    if args.from_json:
        section = render(json.loads(args.from_json.read_text()))
        print(section)
        if args.doc:
            write_section(args.doc, section, BEGIN, END)
        return 0

    threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import torch
    from msst_reference import load_msst_classes

    from runtime_entry.bench import generated_audio
    from runtime_entry.models import build_model, resolve_spec

    torch.set_num_threads(threads)
    torch.set_float32_matmul_precision("highest")
    spec = resolve_spec(args.model)
    model = build_model(spec).eval()
    x = torch.from_numpy(
        generated_audio(0, spec.chunk_size, spec.sample_rate)[: spec.audio_channels]
    ).unsqueeze(0)
    prm = spec.params
    frames = spec.chunk_size // prm["stft_hop_length"] + 1
    bands = len(prm["freqs_per_bands"])
    inner = prm["heads"] * prm["dim_head"]

    reference, _ = reference_model(load_msst_classes()[spec.kind], spec, model)
    wall, msst_runs, parts = profile_chunk(model, x, reference)
    flops = count_flops(model, x)
    peak = gemm_peak(prm["dim"], inner, prm["dim"] * 4, bands * frames)
    attention = attention_parts(bands, prm["heads"], frames, prm["dim_head"])
    info = {
        "date": time.strftime("%Y-%m-%d"),
        "cpu": cpu_model(),
        "cpu_bf16": cpu_bf16_flags() or [],
        "threads": threads,
        "torch": torch.__version__,
        "model": spec.name,
        "wall_s": round(wall, 2),
        "parts_s": parts,
        "gflop": flops,
        "gemm_peak_gflops": peak,
        "attention_time_axis": attention,
        "msst_runs_s": msst_runs,
        "msst_s": round(sum(msst_runs) / len(msst_runs), 2),
    }
    section = render(info)
    print(section)
    if args.json:
        args.json.write_text(json.dumps(info, indent=2))
    if args.doc:
        write_section(args.doc, section, BEGIN, END)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
