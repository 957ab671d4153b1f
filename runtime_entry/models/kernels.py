"""Compute helpers shared by the model modules: matmul dtype choice, scratch buffers,
row normalisation, in-place linear layers, attention, and stacked per-band weights.

Nothing here is a model part: these are the kernels the parts are written with.
"""

from __future__ import annotations

import math
import platform
from collections.abc import Callable

import torch
import torch.nn.functional as F

_FAST_BF16: bool | None = None


def _cpu_has_bf16() -> bool:
    """Native bf16 matmuls (AMX or AVX512-BF16) through oneDNN: several times fp32 speed."""
    global _FAST_BF16
    if _FAST_BF16 is None:
        cpu = getattr(torch, "cpu", None)
        probes = [getattr(cpu, n, None) for n in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
        try:
            mkldnn = bool(torch.backends.mkldnn.is_available())  # type: ignore[no-untyped-call]
            _FAST_BF16 = mkldnn and any(f is not None and f() for f in probes)
        except Exception:  # noqa: BLE001 - private probes: absent or failing means no
            _FAST_BF16 = False
    return _FAST_BF16


def compute_dtype(device: torch.device) -> torch.dtype:
    """The dtype of matmul inputs and attention. "highest" float32 matmul precision is exact
    float32; "high" and "medium" allow reduced-precision matmuls, which on a CPU with native
    bf16 means bf16 operands with float32 accumulation (norms, residual stream, softmax
    statistics and the mask applied to the spectrum stay float32). Elsewhere torch's own
    handling of the precision setting applies."""
    if device.type == "cpu" and torch.get_float32_matmul_precision() != "highest" and _cpu_has_bf16():
        return torch.bfloat16
    return torch.float32


class Workspace:
    """Scratch tensors reused by the transformer layers of one forward pass.

    A fresh tensor of a few hundred MB is paid for again on its first write, one page
    fault per 4 KiB: about 0.1 s per 400 MB on the 2-core benchmark machine, a fifth of
    the matmul that fills it. Each layer needs several such tensors, so they are taken
    from here by role instead; a role holds one live tensor at a time."""

    def __init__(self) -> None:
        self._buffers: dict[str, torch.Tensor] = {}

    def take(
        self, role: str, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device
    ) -> torch.Tensor:
        numel = math.prod(shape)
        buf = self._buffers.get(role)
        if buf is None or buf.numel() < numel or buf.dtype != dtype or buf.device != device:
            buf = self._buffers[role] = torch.empty(numel, dtype=dtype, device=device)
        return buf[:numel].view(shape)


def unit_rows(
    x: torch.Tensor, dtype: torch.dtype, out: torch.Tensor | None = None, scratch: torch.Tensor | None = None
) -> torch.Tensor:
    """x / max(||x||, 1e-12) over the last axis (F.normalize), written as `dtype`. Into another
    dtype, torch's mixed-dtype multiply makes a float32 temporary and copies it (3x the time of
    a plain multiply here): given a float32 `scratch` of x's shape, the product goes there and
    is then cast, same rounding, with no fresh allocation."""
    inv = torch.linalg.vector_norm(x, dim=-1, keepdim=True).clamp_min_(1e-12).reciprocal_()
    out = torch.empty(x.shape, dtype=dtype, device=x.device) if out is None else out
    if scratch is None or dtype == x.dtype:
        return torch.mul(x, inv, out=out)
    return out.copy_(torch.mul(x, inv, out=scratch))


_FUSED_LINEAR: bool | None = None


def _has_fused_linear(x: torch.Tensor) -> bool:
    """oneDNN's inner product with the bias and an activation applied to each output tile
    while it is still in registers (torch.ops.mkldnn._linear_pointwise, what torch's own
    compiler emits for CPU linears). For bf16 operands on x86-64 only (AVX-512 / AMX); float32
    keeps torch's GEMM, where the fused form measured no faster here (the GELU's cost is its
    arithmetic, not the extra pass), so `--precision highest` runs exactly as before."""
    global _FUSED_LINEAR
    if _FUSED_LINEAR is None:
        op = getattr(getattr(torch.ops, "mkldnn", None), "_linear_pointwise", None)
        try:
            mkldnn = bool(torch.backends.mkldnn.is_available())  # type: ignore[no-untyped-call]
        except Exception:  # noqa: BLE001 - a failing probe means no
            mkldnn = False
        _FUSED_LINEAR = op is not None and mkldnn and platform.machine().lower() in ("x86_64", "amd64")
    return (
        _FUSED_LINEAR
        and bool(torch.backends.mkldnn.enabled)
        and x.device.type == "cpu"
        and x.dtype == torch.bfloat16
    )


def linear(
    inp: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    *,
    gelu: bool = False,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """inp (rows, in) @ weight (out, in).T + bias, then the exact (erf) GELU if asked. In bf16,
    one fused kernel where there is one (see _has_fused_linear): no pass over the output to
    add the bias (addmm copies it into the output first) or to apply the GELU, which acts on
    the float32 accumulator, rounded to bf16 once instead of twice. Otherwise addmm (into
    `out` when given) and an in-place GELU."""
    if _has_fused_linear(inp):
        fused: torch.Tensor = torch.ops.mkldnn._linear_pointwise(
            inp, weight, bias, "gelu" if gelu else "none", [], "none" if gelu else ""
        )
        return fused
    if out is None:
        out = torch.empty((inp.shape[0], weight.shape[0]), dtype=inp.dtype, device=inp.device)
    if bias is None:
        torch.mm(inp, weight.t(), out=out)
    else:
        torch.addmm(bias, inp, weight.t(), out=out)
    return torch.ops.aten.gelu_(out) if gelu else out


# rows of a bf16 matmul whose float32 copy is added to the residual stream at a time
_ADD_ROWS = 4096


def add_linear_(
    rows: torch.Tensor, inp: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, ws: Workspace
) -> None:
    """rows += inp @ weight.T (+ bias), in place. When the dtypes agree the matmul accumulates
    into `rows` itself (a GEMM with beta = 1: no temporary, no separate add); bf16 operands
    with a float32 residual stream go in blocks of _ADD_ROWS rows through a float32 scratch:
    torch's mixed-dtype add would allocate a float32 copy of the whole product each time
    (about 1.7x the time of a copy into reused scratch plus a plain add, measured here)."""
    if inp.dtype == rows.dtype:
        rows.addmm_(inp, weight.t())
        if bias is not None:
            rows.add_(bias)
        return
    for start in range(0, rows.shape[0], _ADD_ROWS):
        block, part = rows[start : start + _ADD_ROWS], inp[start : start + _ADD_ROWS]
        product = linear(
            part, weight, bias, out=ws.take("linear_out", tuple(block.shape), inp.dtype, rows.device)
        )
        block.add_(ws.take("linear_out32", tuple(block.shape), rows.dtype, rows.device).copy_(product))


# glibc serves an allocation above its mmap threshold (32 MiB at most) with a fresh mapping,
# paid for with a page fault per 4 KiB; attention makes its output in slices under that size,
# whose memory the heap recycles (without the fused kernel this also bounds the score matrix).
SLICE_BYTES = 16 << 20


def attend(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, flash: bool, scale: float | None = None
) -> torch.Tensor:
    """Softmax attention. `flash` selects torch's fused kernel (scaled_dot_product_attention),
    which is what flash_attn means on every device here; otherwise the explicit einsum path."""
    if flash:
        return F.scaled_dot_product_attention(q, k, v, scale=scale)
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    sim = torch.matmul(q, k.transpose(-1, -2)) * scale
    return torch.matmul(sim.softmax(dim=-1), v)


class StackCache:
    """Stacked copies of per-band weights for batched matmuls, rebuilt whenever one of the
    source parameters changes (load_state_dict, in-place edits: tracked by tensor versions),
    so the module keeps the community state-dict layout."""

    def __init__(self) -> None:
        self._entries: dict[
            tuple[object, torch.dtype], tuple[tuple[object, ...], tuple[torch.Tensor, ...]]
        ] = {}

    def get(
        self,
        key: object,
        dtype: torch.dtype,
        params: list[torch.Tensor],
        build: Callable[[], tuple[torch.Tensor, ...]],
    ) -> tuple[torch.Tensor, ...]:
        if any(p.is_inference() for p in params):  # no version counter: never cache
            with torch.no_grad():
                return tuple(t.contiguous() for t in build())
        stamp = tuple((p.data_ptr(), p._version, p.device, p.dtype) for p in params)
        hit = self._entries.get((key, dtype))
        if hit is None or hit[0] != stamp:
            with torch.no_grad():
                hit = (stamp, tuple(t.contiguous() for t in build()))
            # one dtype at a time: drop entries of the other compute dtype
            for k in [k for k in self._entries if k[1] != dtype]:
                del self._entries[k]
            self._entries[(key, dtype)] = hit
        return hit[1]
