"""torch's FlopCounterMode, completed for the kernels the engine runs, as a cross-check of the
closed form (runtime_entry.models.flops.flops_per_chunk, the figure the benchmarks report).

torch 2.13's counter gives zero for three of them, and which ones run depends on the host:
its CPU flash-attention kernel, the in-place addmm_ that adds a linear's output into the
residual stream (the float32 path), and oneDNN's fused linear `mkldnn._linear_pointwise` (the
bf16 path on a CPU with native bf16, matmul precision "high"). Without the last one, a bf16
host counted 2815.8 GFLOP per bs_roformer_4stem chunk where the model does 5822.1.
"""

from __future__ import annotations

import math
from typing import Any


def uncounted_flops() -> dict[Any, Any]:
    """Formulas for the ops FlopCounterMode counts as zero, as custom_mapping wants them."""
    import torch
    from torch.utils import flop_counter

    def attention(
        q_shape: Any, k_shape: Any, v_shape: Any, *_args: Any, out_shape: Any = None, **_kwargs: Any
    ) -> int:
        return int(flop_counter.sdpa_flop_count(q_shape, k_shape, v_shape))  # type: ignore[no-untyped-call]

    def addmm_(self_shape: Any, a_shape: Any, b_shape: Any, *_args: Any, **_kwargs: Any) -> int:
        return int(flop_counter.mm_flop(a_shape, b_shape))  # type: ignore[no-untyped-call]

    def linear_pointwise(inp_shape: Any, weight_shape: Any, *_args: Any, **_kwargs: Any) -> int:
        # input (..., in) @ weight (out, in).T: the bias and the activation are not counted
        return 2 * math.prod(inp_shape[:-1]) * inp_shape[-1] * weight_shape[0]

    mkldnn = getattr(torch.ops, "mkldnn", None)
    found = {
        getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None): attention,
        torch.ops.aten.addmm_: addmm_,
        getattr(mkldnn, "_linear_pointwise", None): linear_pointwise,
    }
    return {op: f for op, f in found.items() if op is not None}


def counted_flops(model: Any, x: Any) -> int:
    """FLOPs of model(x) as the completed counter sees them, on whatever path this host takes."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False, custom_mapping=uncounted_flops()) as fc, torch.inference_mode():
        model(x)
    return int(fc.get_total_flops())
