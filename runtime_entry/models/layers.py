"""Building blocks of BS-RoFormer and Mel-Band RoFormer.

Module and parameter names follow the community checkpoints (MSST / lucidrains
layout) so that `state_dict()` keys match exactly; the code is our own and uses
plain torch (no einops, beartype or rotary-embedding-torch).
"""

from __future__ import annotations

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


def unit_rows(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """x / max(||x||, 1e-12) over the last axis (F.normalize), written as `dtype` in one pass."""
    inv = torch.linalg.vector_norm(x, dim=-1, keepdim=True).clamp_min_(1e-12).reciprocal_()
    return torch.mul(x, inv, out=torch.empty(x.shape, dtype=dtype, device=x.device))


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


class RotaryEmbedding(nn.Module):
    """Rotary position embedding over interleaved pairs, as rotary-embedding-torch's
    default ('lang', theta 10000). The frequencies are a frozen parameter named
    `freqs` because that is what the checkpoints store."""

    def __init__(self, dim: int, theta: float = 10000.0) -> None:
        super().__init__()
        freqs = 1.0 / (theta ** (torch.arange(0, dim, 2)[: dim // 2].float() / dim))
        self.freqs = nn.Parameter(freqs, requires_grad=False)
        self._cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def _load_from_state_dict(self, *args, **kwargs) -> None:  # new freqs: drop cached tables
        self._cache.clear()
        super()._load_from_state_dict(*args, **kwargs)

    def cos_sin(self, seq_len: int, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        key = (seq_len, device, dtype, self.freqs.data_ptr())
        hit = self._cache.get(key)
        if hit is None:
            pos = torch.arange(seq_len, device=device, dtype=torch.float32)
            angles = pos[:, None] * self.freqs.detach().float()[None, :]
            hit = (angles.cos().to(dtype), angles.sin().to(dtype))
            if len(self._cache) > 8:
                self._cache.clear()
            self._cache[key] = hit
        return hit

    def rotate_qk(self, qk: torch.Tensor) -> torch.Tensor:
        """qk: (b, n, 2, h, d), q and k of one projection in *half-split* feature order (the
        pairs' first elements, then their second ones; see `half_split_order`: attention is
        unchanged when q and k are permuted alike). Returns them rotated in a new contiguous
        tensor of the same shape; the halves are contiguous, so the four kernels vectorise."""
        b, n, two, h, d = qk.shape
        cos, sin = self.cos_sin(n, qk.device, qk.dtype)
        cos, sin = cos.view(n, 1, 1, d // 2), sin.view(n, 1, 1, d // 2)
        x1, x2 = qk[..., : d // 2], qk[..., d // 2 :]
        out = torch.empty((b, n, two, h, d), dtype=qk.dtype, device=qk.device)
        o1, o2 = out[..., : d // 2], out[..., d // 2 :]
        torch.mul(x1, cos, out=o1)
        o1.addcmul_(x2, sin, value=-1)
        torch.mul(x2, cos, out=o2)
        o2.addcmul_(x1, sin)
        return out

    def rotate(self, t: torch.Tensor) -> torch.Tensor:
        """t: (..., n, d) with d even; pairs (2i, 2i+1) are rotated by angle n * freqs[i]."""
        cos, sin = self.cos_sin(t.shape[-2], t.device, t.dtype)
        pairs = t.unflatten(-1, (-1, 2))
        x1, x2 = pairs[..., 0], pairs[..., 1]
        out = torch.stack((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)
        return out.flatten(-2)


def half_split_order(heads: int, dim_head: int, device: torch.device) -> torch.Tensor:
    """Row order of the q and k projections that puts each head's interleaved rotary pairs
    (2i, 2i+1) in half-split order (all 2i, then all 2i+1)."""
    j = torch.arange(dim_head, device=device)
    within = torch.cat([j[0::2], j[1::2]])
    return (torch.arange(2 * heads, device=device)[:, None] * dim_head + within).reshape(-1)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, flash: bool, scale: float | None = None) -> torch.Tensor:
    """Softmax attention. `flash` selects torch's fused kernel (scaled_dot_product_attention),
    which is what flash_attn means on every device here; otherwise the explicit einsum path."""
    if flash:
        return F.scaled_dot_product_attention(q, k, v, scale=scale)
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    sim = torch.matmul(q, k.transpose(-1, -2)) * scale
    return torch.matmul(sim.softmax(dim=-1), v)


class FeedForward(nn.Module):
    def __init__(self, dim: int, mult: float = 4, dropout: float = 0.0) -> None:
        super().__init__()
        inner = int(dim * mult)
        # indices 0..5 are the checkpoint keys net.0.gamma, net.1.*, net.4.*
        self.net = nn.Sequential(
            RMSNorm(dim), nn.Linear(dim, inner), nn.GELU(), nn.Dropout(dropout), nn.Linear(inner, dim), nn.Dropout(dropout)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.branch(x).to(x.dtype)

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        """net(x) in `compute_dtype`: the norm's gain folded into the first Linear, GELU in place."""
        norm, lin1, drop1, lin2, drop2 = self.net[0], self.net[1], self.net[3], self.net[4], self.net[5]
        cd = compute_dtype(x.device)
        h = F.linear(unit_rows(x, cd), norm.fold(lin1.weight).to(cd), lin1.bias.to(cd))
        h = drop1(torch.ops.aten.gelu_(h))
        return drop2(F.linear(h, lin2.weight.to(cd), lin2.bias.to(cd)))


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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.branch(x).to(x.dtype)

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        """attention(x) in `compute_dtype`. One matmul makes q, k, v and the gates (the norm's gain folded
        into the weights); q and k are rotated together; the attention output is gated in
        (b, n, h, d) order, which is the memory order of torch's CPU kernel, so no copy."""
        b, n, _ = x.shape
        h, d = self.heads, self.dim_head
        cd = compute_dtype(x.device)
        qkv_w = self.to_qkv.weight
        if self.rotary_embed is not None:
            order = half_split_order(h, d, qkv_w.device)
            qkv_w = torch.cat([qkv_w[: 2 * h * d].index_select(0, order), qkv_w[2 * h * d :]])
        w = self.norm.fold(torch.cat([qkv_w, self.to_gates.weight])).to(cd)
        proj = F.linear(unit_rows(x, cd), w)  # (b, n, 3hd + h)
        qkv = proj[..., : 3 * h * d].view(b, n, 3, h, d)
        gates = torch.sigmoid(proj[..., 3 * h * d :] + self.to_gates.bias.to(cd)).unsqueeze(-1)  # b n h 1
        if self.rotary_embed is not None:
            qk = self.rotary_embed.rotate_qk(qkv[:, :, :2])
        else:
            qk = qkv[:, :, :2]
        q, k, v = qk[:, :, 0].transpose(1, 2), qk[:, :, 1].transpose(1, 2), qkv[:, :, 2].transpose(1, 2)
        out = attend(q, k, v, flash=self.flash)  # b h n d
        out = torch.mul(out.transpose(1, 2), gates, out=torch.empty((b, n, h, d), dtype=out.dtype, device=out.device))
        out = out.view(b, n, h * d)
        return self.to_out[1](F.linear(out, self.to_out[0].weight.to(cd)))


class _Identity(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class LinearAttention(nn.Module):
    """Cross-covariance ("linear") attention over the feature axis (El-Nouby et al. 2021),
    used when linear_transformer_depth > 0. Keys: norm.gamma, to_qkv.0.weight,
    temperature, to_out.1.weight."""

    def __init__(self, *, dim: int, dim_head: int = 32, heads: int = 8, scale: float = 8, flash: bool = False, dropout: float = 0.0) -> None:
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
                attn: nn.Module = LinearAttention(dim=dim, dim_head=dim_head, heads=heads, dropout=attn_dropout, flash=flash_attn)
            else:
                attn = Attention(dim=dim, heads=heads, dim_head=dim_head, dropout=attn_dropout, rotary_embed=rotary_embed, flash=flash_attn)
            self.layers.append(nn.ModuleList([attn, FeedForward(dim=dim, mult=ff_mult, dropout=ff_dropout)]))
        self.norm = RMSNorm(dim) if norm_output else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for attn, ff in self.layers:
            # branches may come back in bf16 (compute_dtype); the residual stream stays float32
            x = torch.add(x, attn.branch(x) if hasattr(attn, "branch") else attn(x))
            x = torch.add(x, ff.branch(x))
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
        out = torch.empty((len(self.dim_inputs), rows.shape[0], self.to_features[0][1].out_features), dtype=cd, device=x.device)
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

    def __init__(self, dim: int, dim_inputs: tuple[int, ...], n_hidden: int, mlp_expansion_factor: int = 4) -> None:
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

    def band_major(self, x: torch.Tensor) -> torch.Tensor:
        """x: (bands, rows, dim) in compute dtype -> (rows, sum(dim_inputs)) in that dtype.
        The hidden layers (same shape for every band) run as one batched matmul over all
        bands; the last layer and the GLU as one per run of equally wide bands."""
        cd = x.dtype
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
            h = torch.baddbmm(bias, h, w).tanh_()
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
    first = estimators[0].band_major(x_bands)
    out = torch.empty((b, len(estimators), t, first.shape[-1]), dtype=x.dtype, device=x.device)
    out[:, 0] = first.view(b, t, -1)
    for i, est in enumerate(estimators[1:], start=1):
        out[:, i] = est.band_major(x_bands).view(b, t, -1)
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
    kwargs = dict(dim=dim, heads=heads, dim_head=dim_head, attn_dropout=attn_dropout, ff_dropout=ff_dropout, flash_attn=flash_attn, norm_output=norm_output)
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
    """Axial attention: x is (b, t, f, d); time attention per band, then band attention per frame."""
    store: list[torch.Tensor] = []
    for block in layers:
        if len(block) == 3:
            linear, time_t, freq_t = block
            b, t, f, d = x.shape
            x = linear(x.reshape(b, t * f, d)).view(b, t, f, d)
        else:
            time_t, freq_t = block
        if skip_connection:
            for prev in store:
                x = x + prev
        b, t, f, d = x.shape
        x = x.transpose(1, 2).reshape(b * f, t, d)
        x = time_t(x)
        x = x.view(b, f, t, d).transpose(1, 2).reshape(b * t, f, d)
        x = freq_t(x)
        x = x.view(b, t, f, d)
        if skip_connection:
            store.append(x)
    return x
