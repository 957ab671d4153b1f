"""Building blocks of BS-RoFormer and Mel-Band RoFormer.

Module and parameter names follow the community checkpoints (MSST / lucidrains
layout) so that `state_dict()` keys match exactly; the code is our own and uses
plain torch (no einops, beartype or rotary-embedding-torch).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

_FAST_BF16: bool | None = None


def _cpu_has_bf16() -> bool:
    """Native bf16 matmuls (AMX or AVX512-BF16) through oneDNN: several times fp32 speed."""
    global _FAST_BF16
    if _FAST_BF16 is None:
        cpu = getattr(torch, "cpu", None)
        probes = [getattr(cpu, n, None) for n in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
        try:
            _FAST_BF16 = torch.backends.mkldnn.is_available() and any(f is not None and f() for f in probes)
        except Exception:  # private probes: absent or failing means no
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


def unit_rows(x: torch.Tensor, dtype: torch.dtype, out: torch.Tensor | None = None) -> torch.Tensor:
    """x / max(||x||, 1e-12) over the last axis (F.normalize), written as `dtype` in one pass."""
    inv = torch.linalg.vector_norm(x, dim=-1, keepdim=True).clamp_min_(1e-12).reciprocal_()
    return torch.mul(x, inv, out=torch.empty(x.shape, dtype=dtype, device=x.device) if out is None else out)


def add_linear_(
    rows: torch.Tensor, inp: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, ws: Workspace
) -> None:
    """rows += inp @ weight.T (+ bias), in place. When the dtypes agree the matmul accumulates
    into `rows` itself (a GEMM with beta = 1: no temporary, no separate add); bf16 operands
    with a float32 residual stream go through a scratch tensor."""
    if inp.dtype == rows.dtype:
        rows.addmm_(inp, weight.t())
        if bias is not None:
            rows.add_(bias)
        return
    tmp = ws.take("linear_out", tuple(rows.shape), inp.dtype, rows.device)
    if bias is None:
        torch.mm(inp, weight.t(), out=tmp)
    else:
        torch.addmm(bias, inp, weight.t(), out=tmp)
    rows.add_(tmp)


class RMSNorm(nn.Module):
    """x / ||x|| * sqrt(dim) * gamma (key: `gamma`)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.scale = dim**0.5
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=-1) * self.scale * self.gamma

    def fold(self, weight: torch.Tensor) -> torch.Tensor:
        """`weight` of a Linear that follows this norm, with scale * gamma folded in, so that
        linear(norm(x)) == unit_rows(x) @ fold(weight).T (+ bias)."""
        return weight * (self.gamma * self.scale)


_COMPLEX = {torch.float32: torch.complex64, torch.float64: torch.complex128}


class RotaryEmbedding(nn.Module):
    """Rotary position embedding over interleaved pairs, as rotary-embedding-torch's
    default ('lang', theta 10000). The frequencies are a frozen parameter named
    `freqs` because that is what the checkpoints store."""

    def __init__(self, dim: int, theta: float = 10000.0) -> None:
        super().__init__()
        freqs = 1.0 / (theta ** (torch.arange(0, dim, 2)[: dim // 2].float() / dim))
        self.freqs = nn.Parameter(freqs, requires_grad=False)
        self._cache: dict[tuple, torch.Tensor] = {}

    def _load_from_state_dict(self, *args, **kwargs) -> None:  # new freqs: drop cached tables
        self._cache.clear()
        super()._load_from_state_dict(*args, **kwargs)

    def _table(self, seq_len: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """exp(i * pos * freqs) as (seq_len, d/2) complex for float32/64; otherwise
        (2, seq_len, d/2) cos and sin in `dtype`."""
        key = (seq_len, device, dtype, self.freqs.data_ptr())
        hit = self._cache.get(key)
        if hit is None:
            pos = torch.arange(seq_len, device=device, dtype=torch.float32)
            angles = pos[:, None] * self.freqs.detach().float()[None, :]
            if dtype in _COMPLEX:
                hit = torch.polar(torch.ones_like(angles), angles).to(_COMPLEX[dtype])
            else:
                hit = torch.stack((angles.cos(), angles.sin())).to(dtype)
            if len(self._cache) > 8:
                self._cache.clear()
            self._cache[key] = hit
        return hit

    def rotate_into(self, qk: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """Rotate q and k, qk (batch, n, 2, h, d) with positions along n, into `out`
        (same shape). Pairs (2i, 2i+1) are rotated by pos * freqs[i]: in float32 as one
        complex multiply (one pass over memory; qk's strides must be even), in bf16 (which
        has no complex type) as four real kernels over the pairs' elements."""
        n, d = qk.shape[1], qk.shape[-1]
        table = self._table(n, qk.device, qk.dtype)
        shape = (1, n, 1, 1, d // 2)
        if qk.dtype in _COMPLEX:
            pairs = torch.view_as_complex(qk.unflatten(-1, (d // 2, 2)))
            torch.mul(pairs, table.view(shape), out=torch.view_as_complex(out.unflatten(-1, (d // 2, 2))))
            return out
        cos, sin = table[0].view(shape), table[1].view(shape)
        pairs, dest = qk.unflatten(-1, (d // 2, 2)), out.unflatten(-1, (d // 2, 2))
        x1, x2, o1, o2 = pairs[..., 0], pairs[..., 1], dest[..., 0], dest[..., 1]
        torch.mul(x1, cos, out=o1)
        o1.addcmul_(x2, sin, value=-1)
        torch.mul(x2, cos, out=o2)
        o2.addcmul_(x1, sin)
        return out


# glibc serves an allocation above its mmap threshold (32 MiB at most) with a fresh mapping,
# paid for with a page fault per 4 KiB; attention makes its output in slices under that size,
# whose memory the heap recycles (without the fused kernel this also bounds the score matrix).
_SLICE_BYTES = 16 << 20


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


_FF_ROWS = 2048  # 2048 x 4 * dim float32 activations: 12 MB for dim 384


class FeedForward(nn.Module):
    def __init__(self, dim: int, mult: float = 4, dropout: float = 0.0) -> None:
        super().__init__()
        inner = int(dim * mult)
        # indices 0..5 are the checkpoint keys net.0.gamma, net.1.*, net.4.*
        self.net = nn.Sequential(
            RMSNorm(dim),
            nn.Linear(dim, inner),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(inner, dim),
            nn.Dropout(dropout),
        )

    def add_to_(self, x: torch.Tensor, ws: Workspace) -> None:
        """x (..., dim) += net(x), in place, with matmuls in `compute_dtype` (the norm's gain
        folded into the first Linear, GELU in place). Inference only: dropout is not applied.
        Rows go in blocks of _FF_ROWS, so that the hidden activations stay in cache between
        the two matmuls (about 5% faster here than one pass over all rows, and less memory)."""
        norm, lin1, lin2 = self.net[0], self.net[1], self.net[4]
        cd = compute_dtype(x.device)
        w1, b1 = norm.fold(lin1.weight).to(cd).t(), lin1.bias.to(cd)
        w2, b2 = lin2.weight.to(cd), lin2.bias.to(cd)
        rows = x.view(-1, x.shape[-1])
        for start in range(0, rows.shape[0], _FF_ROWS):
            block = rows[start : start + _FF_ROWS]
            normed = unit_rows(block, cd, out=ws.take("ff_norm", tuple(block.shape), cd, x.device))
            hidden = torch.addmm(
                b1, normed, w1, out=ws.take("ff_hidden", (block.shape[0], w1.shape[1]), cd, x.device)
            )
            torch.ops.aten.gelu_(hidden)
            add_linear_(block, hidden, w2, b2, ws)


class Attention(nn.Module):
    def __init__(
        self,
        dim: int,
        heads: int = 8,
        dim_head: int = 64,
        dropout: float = 0.0,
        rotary_embed: RotaryEmbedding | None = None,
        flash: bool = True,
    ) -> None:
        super().__init__()
        self.heads = heads
        self.dim_head = dim_head
        self.flash = flash
        inner = heads * dim_head
        self.rotary_embed = rotary_embed
        self.norm = RMSNorm(dim)
        self.to_qkv = nn.Linear(dim, inner * 3, bias=False)
        self.to_gates = nn.Linear(dim, heads)
        self.to_out = nn.Sequential(nn.Linear(inner, dim, bias=False), nn.Dropout(dropout))

    def add_to_(self, x: torch.Tensor, ws: Workspace) -> None:
        """x (b, groups, n, dim) += attention over n within each group, in place; inference
        only (no dropout). One matmul makes q, k, v and the gates of every token (the norm's
        gain folded into the weights); the attention kernel reads q, k and v as strided
        views of it, and the output matmul accumulates into x."""
        b, g, n, dim = x.shape
        h, d = self.heads, self.dim_head
        hd = h * d
        cd = compute_dtype(x.device)
        rows = x.view(-1, dim)
        w = self.norm.fold(torch.cat([self.to_qkv.weight, self.to_gates.weight])).to(cd)
        if w.shape[0] % 2:  # an even row length lets q and k be viewed as complex pairs
            w = torch.cat([w, w.new_zeros(1, dim)])
        normed = unit_rows(rows, cd, out=ws.take("norm", tuple(rows.shape), cd, x.device))
        proj = torch.mm(normed, w.t(), out=ws.take("wide", (rows.shape[0], w.shape[0]), cd, x.device))
        proj = proj.view(b * g, n, -1)
        gates = torch.sigmoid(proj[..., 3 * hd : 3 * hd + h] + self.to_gates.bias.to(cd)).unsqueeze(
            -1
        )  # (b g) n h 1
        qkv = proj[..., : 3 * hd].unflatten(-1, (3, h, d))  # (b g) n 3 h d
        qk = qkv[:, :, :2]
        if self.rotary_embed is not None:
            qk = self.rotary_embed.rotate_into(qk, ws.take("qk", tuple(qk.shape), cd, x.device))
        q, k, v = qk[:, :, 0].transpose(1, 2), qk[:, :, 1].transpose(1, 2), qkv[:, :, 2].transpose(1, 2)
        gated = ws.take("attn", (b * g, n, h, d), cd, x.device)
        step = max(1, _SLICE_BYTES // (n * hd * gated.element_size()))
        for i in range(0, b * g, step):  # in slices: see _SLICE_BYTES
            out = attend(q[i : i + step], k[i : i + step], v[i : i + step], flash=self.flash)
            torch.mul(out.transpose(1, 2), gates[i : i + step], out=gated[i : i + step])
        add_linear_(rows, gated.view(-1, hd), self.to_out[0].weight.to(cd), None, ws)


class _Identity(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class LinearAttention(nn.Module):
    """Cross-covariance ("linear") attention over the feature axis (El-Nouby et al. 2021),
    used when linear_transformer_depth > 0. Keys: norm.gamma, to_qkv.0.weight,
    temperature, to_out.1.weight."""

    def __init__(
        self,
        *,
        dim: int,
        dim_head: int = 32,
        heads: int = 8,
        scale: float = 8,
        flash: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.heads = heads
        self.dim_head = dim_head
        self.scale = scale
        self.flash = flash
        inner = dim_head * heads
        self.norm = RMSNorm(dim)
        self.to_qkv = nn.Sequential(nn.Linear(dim, inner * 3, bias=False))
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.to_out = nn.Sequential(_Identity(), nn.Linear(inner, dim, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(x)
        b, n, _ = x.shape
        # 'b n (qkv h d) -> qkv b h d n'
        qkv = self.to_qkv(x).view(b, n, 3, self.heads, self.dim_head).permute(2, 0, 3, 4, 1)
        q, k, v = F.normalize(qkv[0], dim=-1), F.normalize(qkv[1], dim=-1), qkv[2]
        q = q * self.temperature.exp()
        out = attend(q, k, v, flash=self.flash, scale=self.scale)
        out = out.permute(0, 3, 1, 2).reshape(b, n, self.heads * self.dim_head)  # 'b h d n -> b n (h d)'
        return self.to_out(out)


class Transformer(nn.Module):
    def __init__(
        self,
        *,
        dim: int,
        depth: int,
        dim_head: int = 64,
        heads: int = 8,
        attn_dropout: float = 0.0,
        ff_dropout: float = 0.0,
        ff_mult: float = 4,
        norm_output: bool = True,
        rotary_embed: RotaryEmbedding | None = None,
        flash_attn: bool = True,
        linear_attn: bool = False,
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList()
        for _ in range(depth):
            if linear_attn:
                attn: nn.Module = LinearAttention(
                    dim=dim, dim_head=dim_head, heads=heads, dropout=attn_dropout, flash=flash_attn
                )
            else:
                attn = Attention(
                    dim=dim,
                    heads=heads,
                    dim_head=dim_head,
                    dropout=attn_dropout,
                    rotary_embed=rotary_embed,
                    flash=flash_attn,
                )
            self.layers.append(nn.ModuleList([attn, FeedForward(dim=dim, mult=ff_mult, dropout=ff_dropout)]))
        self.norm = RMSNorm(dim) if norm_output else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (b, n, dim): attention along n; x itself is left as it was."""
        return self.run_(x.clone().unsqueeze(1), Workspace()).squeeze(1)

    def run_(self, x: torch.Tensor, ws: Workspace) -> torch.Tensor:
        """x (b, groups, n, dim), attention over n; x is updated in place (the residual
        stream stays float32 whatever the matmuls' dtype). Returns x, or its output norm."""
        for attn, ff in self.layers:
            if isinstance(attn, LinearAttention):  # over all t * f tokens at once
                x.add_(attn(x.flatten(1, 2)).view_as(x))
            else:
                attn.add_to_(x, ws)
            ff.add_to_(x, ws)
        return self.norm(x)


class BandSplit(nn.Module):
    """Per band: RMSNorm then Linear to `dim` (keys to_features.{b}.0.gamma, .1.weight/.bias)."""

    def __init__(self, dim: int, dim_inputs: tuple[int, ...]) -> None:
        super().__init__()
        self.dim_inputs = dim_inputs
        self.to_features = nn.ModuleList(nn.Sequential(RMSNorm(d), nn.Linear(d, dim)) for d in dim_inputs)

        self._groups = runs(dim_inputs)
        self._stacked = _StackCache()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., sum(dim_inputs)) -> (..., bands, dim): one batched matmul per run of
        equally wide bands, each band's norm gain folded into its weights."""
        lead, total = x.shape[:-1], x.shape[-1]
        cd = compute_dtype(x.device)
        rows = x.reshape(-1, total)
        out = torch.empty(
            (len(self.dim_inputs), rows.shape[0], self.to_features[0][1].out_features),
            dtype=cd,
            device=x.device,
        )
        offset = 0
        for start, stop in self._groups:
            width = self.dim_inputs[start]
            nets = self.to_features[start:stop]
            w, bias = self._stacked.get(
                (start, cd),
                [p for net in nets for p in (net[0].gamma, net[1].weight, net[1].bias)],
                lambda: (
                    torch.stack([net[0].fold(net[1].weight).t() for net in nets]).to(cd),
                    torch.stack([net[1].bias for net in nets]).unsqueeze(1).to(cd),
                ),
            )
            part = rows[:, offset : offset + (stop - start) * width].unflatten(-1, (stop - start, width))
            part = unit_rows(part, cd).transpose(0, 1)  # (bands, rows, width)
            torch.baddbmm(bias, part, w, out=out[start:stop])
            offset += (stop - start) * width
        return out.transpose(0, 1).reshape(*lead, len(self.dim_inputs), -1).to(x.dtype)


def runs(sizes: tuple[int, ...]) -> list[tuple[int, int]]:
    """[start, stop) index ranges of consecutive equal sizes."""
    out: list[tuple[int, int]] = []
    start = 0
    for i in range(1, len(sizes) + 1):
        if i == len(sizes) or sizes[i] != sizes[start]:
            out.append((start, i))
            start = i
    return out


class _StackCache:
    """Stacked copies of per-band weights for batched matmuls, rebuilt whenever one of the
    source parameters changes (load_state_dict, in-place edits: tracked by tensor versions),
    so the module keeps the community state-dict layout."""

    def __init__(self) -> None:
        self._entries: dict[object, tuple[tuple, tuple[torch.Tensor, ...]]] = {}

    def get(self, key: object, params: list[torch.Tensor], build) -> tuple[torch.Tensor, ...]:
        if any(p.is_inference() for p in params):  # no version counter: never cache
            with torch.no_grad():
                return tuple(t.contiguous() for t in build())
        stamp = tuple((p.data_ptr(), p._version, p.device, p.dtype) for p in params)
        hit = self._entries.get(key)
        if hit is None or hit[0] != stamp:
            with torch.no_grad():
                hit = (stamp, tuple(t.contiguous() for t in build()))
            # one dtype at a time: drop entries of the other compute dtype
            for k in [k for k in self._entries if isinstance(k, tuple) and k[-1] != key[-1]]:
                del self._entries[k]
            self._entries[key] = hit
        return hit[1]


def mlp(dim_in: int, dim_out: int, dim_hidden: int, n_hidden: int) -> nn.Sequential:
    """Linear/Tanh stack with `n_hidden` hidden layers (keys 0, 2, 4, ... are the Linears)."""
    dims = (dim_in, *((dim_hidden,) * n_hidden), dim_out)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(dims) - 2:
            layers.append(nn.Tanh())
    return nn.Sequential(*layers)


class MaskEstimator(nn.Module):
    """Per band: MLP to 2x the band's inputs, then GLU (keys to_freqs.{b}.0.{k}.weight/bias).

    `n_hidden` is depth - 1 in BS-RoFormer and depth in Mel-Band RoFormer, as in the
    community code."""

    def __init__(
        self, dim: int, dim_inputs: tuple[int, ...], n_hidden: int, mlp_expansion_factor: int = 4
    ) -> None:
        super().__init__()
        self.dim_inputs = dim_inputs
        hidden = dim * mlp_expansion_factor
        self.to_freqs = nn.ModuleList(
            nn.Sequential(mlp(dim, d * 2, hidden, n_hidden), nn.GLU(dim=-1)) for d in dim_inputs
        )

        self._groups = runs(dim_inputs)
        self._stacked = _StackCache()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., bands, dim) -> (..., sum(dim_inputs))."""
        *lead, bands, dim = x.shape
        cd = compute_dtype(x.device)
        x_bands = x.reshape(-1, bands, dim).transpose(0, 1).to(cd)
        return self.band_major(x_bands).reshape(*lead, -1).to(x.dtype)

    def band_major(self, x: torch.Tensor, ws: Workspace | None = None) -> torch.Tensor:
        """x: (bands, rows, dim) in compute dtype -> (rows, sum(dim_inputs)) in that dtype.
        The hidden layers (same shape for every band) run as one batched matmul over all
        bands, into `ws` buffers when given; the last layer and the GLU as one per run of
        equally wide bands."""
        cd = x.dtype
        ws = ws or Workspace()
        mlps = [net[0] for net in self.to_freqs]
        linears = [m for m in mlps[0] if isinstance(m, nn.Linear)]
        n_layers = len(linears)
        h = x
        for li in range(n_layers - 1):
            w, bias = self._stacked.get(
                (li, cd),
                [p for m in mlps for p in (m[2 * li].weight, m[2 * li].bias)],
                lambda li=li: (
                    torch.stack([m[2 * li].weight.t() for m in mlps]).to(cd),
                    torch.stack([m[2 * li].bias for m in mlps]).unsqueeze(1).to(cd),
                ),
            )
            out = ws.take(f"mask_hidden{li % 2}", (h.shape[0], h.shape[1], w.shape[-1]), cd, h.device)
            h = torch.baddbmm(bias, h, w, out=out).tanh_()
        last = 2 * (n_layers - 1)
        outs = []
        for start, stop in self._groups:
            group = mlps[start:stop]
            w, bias = self._stacked.get(
                (f"out{start}", cd),
                [p for m in group for p in (m[last].weight, m[last].bias)],
                lambda group=group: (
                    torch.stack([m[last].weight.t() for m in group]).to(cd),
                    torch.stack([m[last].bias for m in group]).unsqueeze(1).to(cd),
                ),
            )
            y = F.glu(torch.baddbmm(bias, h[start:stop], w), dim=-1)  # (band, rows, d)
            outs.append(y.transpose(0, 1).flatten(1))
        return torch.cat(outs, dim=-1)


def run_mask_estimators(estimators: nn.ModuleList, x: torch.Tensor) -> torch.Tensor:
    """(b, t, bands, dim) -> float32 masks (b, stems, t, features); the band-major copy of x
    in compute dtype is made once for all stems."""
    b, t, bands, dim = x.shape
    x_bands = x.reshape(b * t, bands, dim).transpose(0, 1).to(compute_dtype(x.device))
    ws = Workspace()
    first = estimators[0].band_major(x_bands, ws)
    out = torch.empty((b, len(estimators), t, first.shape[-1]), dtype=x.dtype, device=x.device)
    out[:, 0] = first.view(b, t, -1)
    for i, est in enumerate(estimators[1:], start=1):
        out[:, i] = est.band_major(x_bands, ws).view(b, t, -1)
    return out


def build_layers(
    *,
    dim: int,
    depth: int,
    time_transformer_depth: int,
    freq_transformer_depth: int,
    linear_transformer_depth: int,
    dim_head: int,
    heads: int,
    attn_dropout: float,
    ff_dropout: float,
    flash_attn: bool,
    norm_output: bool,
) -> nn.ModuleList:
    """layers.{i} = [linear?, time, freq] transformers; one rotary table shared per axis."""
    kwargs = dict(
        dim=dim,
        heads=heads,
        dim_head=dim_head,
        attn_dropout=attn_dropout,
        ff_dropout=ff_dropout,
        flash_attn=flash_attn,
        norm_output=norm_output,
    )
    time_rotary = RotaryEmbedding(dim_head)
    freq_rotary = RotaryEmbedding(dim_head)
    layers = nn.ModuleList()
    for _ in range(depth):
        block = []
        if linear_transformer_depth > 0:
            block.append(Transformer(depth=linear_transformer_depth, linear_attn=True, **kwargs))
        block.append(Transformer(depth=time_transformer_depth, rotary_embed=time_rotary, **kwargs))
        block.append(Transformer(depth=freq_transformer_depth, rotary_embed=freq_rotary, **kwargs))
        layers.append(nn.ModuleList(block))
    return layers


def run_layers(layers: nn.ModuleList, x: torch.Tensor, skip_connection: bool) -> torch.Tensor:
    """Axial attention over x (b, t, f, d): per block, attention over time within each band,
    then over bands within each frame. x may be updated in place; the result is returned.

    The time transformer works on a band-major copy (b, f, t, d), so that each sequence it
    attends over is contiguous; the copy goes back and forth through a reused buffer."""
    ws = Workspace()
    x = x.contiguous()  # token rows must be viewable as one matrix
    b, t, f, d = x.shape
    store: list[torch.Tensor] = []
    for block in layers:
        *linear, time_t, freq_t = block
        for transformer in linear:
            x = transformer.run_(x, ws)
        if skip_connection:
            for prev in store:
                x.add_(prev)
        band_major = ws.take("band_major", (b, f, t, d), x.dtype, x.device)
        band_major.copy_(x.transpose(1, 2))
        x.copy_(time_t.run_(band_major, ws).transpose(1, 2))
        x = freq_t.run_(x, ws)
        if skip_connection:
            store.append(x.clone())  # the next block updates x in place
    return x
