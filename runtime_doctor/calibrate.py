"""The calibration: fixed torch kernels that every program carrying torch can run, timed.

The build records their time in the dist's fingerprint; the doctor runs the same on the user's
machine, so the two times compare (the closing figure). torch is imported here, inside the
function, and only in a runtime: builder never calls this.
"""

from __future__ import annotations

import time
from typing import Any

MATMUL_N = 512  # a float32 matmul of this square size
ATTENTION = (1, 8, 256, 64)  # batch, heads, sequence, head size of one scaled dot-product attention
REPEAT = 8  # kernels per timed block (~0.02-0.1 s a block on 2 cores)
# Timed blocks; the fastest counts: it absorbs a first-call warm-up and, on a shared machine, the
# moments when something else ran (a build's fingerprint taken beside other work was 6x slow with 3).
ROUNDS = 9


def _best(fn: Any) -> float:
    best = float("inf")
    for _ in range(ROUNDS):
        t0 = time.perf_counter()
        for _ in range(REPEAT):
            fn()
        best = min(best, time.perf_counter() - t0)
    return best


def calibrate() -> dict[str, Any]:
    """Time the fixed kernels with the process's own torch settings (threads, precision)."""
    import torch

    gen = torch.Generator().manual_seed(0)
    a = torch.randn(MATMUL_N, MATMUL_N, generator=gen)
    q, k, v = (torch.randn(*ATTENTION, generator=gen) for _ in range(3))
    attention = torch.nn.functional.scaled_dot_product_attention
    with torch.inference_mode():
        matmul_s = _best(lambda: a @ a)
        attention_s = _best(lambda: attention(q, k, v))
    capability = getattr(getattr(torch.backends, "cpu", None), "get_cpu_capability", lambda: None)()
    return {
        "kernels": {
            "matmul": [MATMUL_N, MATMUL_N],
            "attention": list(ATTENTION),
            "repeat": REPEAT,
            "rounds": ROUNDS,
        },
        "matmul_s": round(matmul_s, 5),
        "attention_s": round(attention_s, 5),
        "total_s": round(matmul_s + attention_s, 5),
        "threads": int(torch.get_num_threads()),
        "interop": int(torch.get_num_interop_threads()),
        "precision": str(torch.get_float32_matmul_precision()),
        "cpu_capability": capability,
        "torch": str(torch.__version__),
    }
