"""Building blocks of BS-RoFormer and Mel-Band RoFormer.

Module and parameter names follow the community checkpoints (MSST / lucidrains
layout) so that `state_dict()` keys match exactly; the code is our own and uses
plain torch (no einops, beartype or rotary-embedding-torch).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.Module):
    """x / ||x|| * sqrt(dim) * gamma (key: `gamma`)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.scale = dim**0.5
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=-1) * self.scale * self.gamma


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

    def rotate(self, t: torch.Tensor) -> torch.Tensor:
        """t: (..., n, d) with d even; pairs (2i, 2i+1) are rotated by angle n * freqs[i]."""
        cos, sin = self.cos_sin(t.shape[-2], t.device, t.dtype)
        pairs = t.unflatten(-1, (-1, 2))
        x1, x2 = pairs[..., 0], pairs[..., 1]
        out = torch.stack((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)
        return out.flatten(-2)


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
        return self.net(x)


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
        x = self.norm(x)
        b, n, _ = x.shape
        # 'b n (qkv h d) -> qkv b h n d'
        qkv = self.to_qkv(x).view(b, n, 3, self.heads, self.dim_head).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        if self.rotary_embed is not None:
            q = self.rotary_embed.rotate(q)
            k = self.rotary_embed.rotate(k)
        out = attend(q, k, v, flash=self.flash)
        gates = self.to_gates(x).transpose(1, 2).unsqueeze(-1).sigmoid()  # b h n 1
        out = (out * gates).transpose(1, 2).reshape(b, n, self.heads * self.dim_head)
        return self.to_out(out)


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
            x = attn(x) + x
            x = ff(x) + x
        return self.norm(x)


class BandSplit(nn.Module):
    """Per band: RMSNorm then Linear to `dim` (keys to_features.{b}.0.gamma, .1.weight/.bias)."""

    def __init__(self, dim: int, dim_inputs: tuple[int, ...]) -> None:
        super().__init__()
        self.dim_inputs = dim_inputs
        self.to_features = nn.ModuleList(nn.Sequential(RMSNorm(d), nn.Linear(d, dim)) for d in dim_inputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = x.split(self.dim_inputs, dim=-1)
        return torch.stack([net(p) for p, net in zip(parts, self.to_features)], dim=-2)


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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bands = x.unbind(dim=-2)
        return torch.cat([net(band) for band, net in zip(bands, self.to_freqs)], dim=-1)


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
