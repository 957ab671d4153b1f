"""Transformer modules: RMSNorm, attention (softmax and linear), feed-forward, Transformer.

Module and parameter names follow the community checkpoints (MSST / lucidrains layout)
so that `state_dict()` keys match exactly; the code is our own, in plain torch.
Inference runs in place on a float32 residual stream (`add_to_`, `run_`).
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from .kernels import SLICE_BYTES, Workspace, add_linear_, attend, compute_dtype, linear, unit_rows
from .positions import PolarEmbedding, RotaryEmbedding


class RMSNorm(nn.Module):
    """x / ||x|| * sqrt(dim) * gamma (key: `gamma`)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.scale = dim**0.5
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = F.normalize(x, dim=-1) * self.scale * self.gamma
        return out

    def fold(self, weight: torch.Tensor) -> torch.Tensor:
        """`weight` of a Linear that follows this norm, with scale * gamma folded in, so that
        linear(norm(x)) == unit_rows(x) @ fold(weight).T (+ bias)."""
        out: torch.Tensor = weight * (self.gamma * self.scale)
        return out


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
        norm = cast(RMSNorm, self.net[0])
        lin1, lin2 = cast(nn.Linear, self.net[1]), cast(nn.Linear, self.net[4])
        cd = compute_dtype(x.device)
        w1, b1 = norm.fold(lin1.weight).to(cd), lin1.bias.to(cd)
        w2, b2 = lin2.weight.to(cd), lin2.bias.to(cd)
        rows = x.view(-1, x.shape[-1])
        for start in range(0, rows.shape[0], _FF_ROWS):
            block = rows[start : start + _FF_ROWS]
            normed = unit_rows(
                block,
                cd,
                out=ws.take("ff_norm", tuple(block.shape), cd, x.device),
                scratch=ws.take("ff_norm32", tuple(block.shape), x.dtype, x.device),
            )
            hidden = ws.take("ff_hidden", (block.shape[0], w1.shape[0]), cd, x.device)
            add_linear_(block, linear(normed, w1, b1, gelu=True, out=hidden), w2, b2, ws)


class Attention(nn.Module):
    """Gated softmax attention with rotary or polar (PoPE) positions, or none."""

    def __init__(
        self,
        dim: int,
        heads: int = 8,
        dim_head: int = 64,
        dropout: float = 0.0,
        rotary_embed: RotaryEmbedding | None = None,
        flash: bool = True,
        pope_embed: PolarEmbedding | None = None,
    ) -> None:
        super().__init__()
        if rotary_embed is not None and pope_embed is not None:
            raise ValueError("cannot have both rotary and polar (PoPE) embeddings")
        self.heads = heads
        self.dim_head = dim_head
        self.flash = flash
        inner = heads * dim_head
        self.rotary_embed = rotary_embed
        self.pope_embed = pope_embed
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
        qkv_weight = self.to_qkv.weight
        halves = self.rotary_embed is not None and not self.rotary_embed.complex_dtype(cd)
        if halves:  # see RotaryEmbedding.rotate_into: q and k features as two halves per head
            order = torch.cat([torch.arange(0, d, 2), torch.arange(1, d, 2)]).to(x.device)
            qk_rows = qkv_weight[: 2 * hd].view(2, h, d, dim)[:, :, order]
            qkv_weight = torch.cat([qk_rows.reshape(2 * hd, dim), qkv_weight[2 * hd :]])
        w = self.norm.fold(torch.cat([qkv_weight, self.to_gates.weight])).to(cd)
        if w.shape[0] % 2:  # an even row length lets q and k be viewed as complex pairs
            w = torch.cat([w, w.new_zeros(1, dim)])
        normed = unit_rows(
            rows,
            cd,
            out=ws.take("norm", tuple(rows.shape), cd, x.device),
            scratch=ws.take("norm32", tuple(rows.shape), x.dtype, x.device),
        )
        proj = torch.mm(normed, w.t(), out=ws.take("wide", (rows.shape[0], w.shape[0]), cd, x.device))
        proj = proj.view(b * g, n, -1)
        gates = torch.sigmoid(proj[..., 3 * hd : 3 * hd + h] + self.to_gates.bias.to(cd))
        gates = gates.unsqueeze(-1)  # (b g) n h 1
        qkv = proj[..., : 3 * hd].view(b * g, n, 3, h, d)
        qk = qkv[:, :, :2]
        if self.rotary_embed is not None:
            qk = self.rotary_embed.rotate_into(
                qk, ws.take("qk", tuple(qk.shape), cd, x.device), halves=halves
            )
        q, k, v = qk[:, :, 0].transpose(1, 2), qk[:, :, 1].transpose(1, 2), qkv[:, :, 2].transpose(1, 2)
        gated = ws.take("attn", (b * g, n, h, d), cd, x.device)
        width = 4 if self.pope_embed is not None else 1  # PoPE's float32 q and k of twice the width
        step = max(1, SLICE_BYTES // (n * hd * gated.element_size() * width))
        for i in range(0, b * g, step):  # in slices: see SLICE_BYTES
            qs, ks, vs = q[i : i + step], k[i : i + step], v[i : i + step]
            if self.pope_embed is not None:  # as msst: always the fused kernel, in float32
                qs, ks = self.pope_embed.expand(qs, ks)
                out = F.scaled_dot_product_attention(qs, ks, vs.float(), scale=d**-0.5)
            else:
                out = attend(qs, ks, vs, flash=self.flash)
            torch.mul(out.transpose(1, 2), gates[i : i + step], out=gated[i : i + step])
        out_weight = cast(nn.Linear, self.to_out[0]).weight
        add_linear_(rows, gated.view(-1, hd), out_weight.to(cd), None, ws)


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
        result: torch.Tensor = self.to_out(out)
        return result


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
        pope_embed: PolarEmbedding | None = None,
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
                    pope_embed=pope_embed,
                    flash=flash_attn,
                )
            self.layers.append(nn.ModuleList([attn, FeedForward(dim=dim, mult=ff_mult, dropout=ff_dropout)]))
        self.norm: nn.Module = RMSNorm(dim) if norm_output else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (b, n, dim): attention along n; x itself is left as it was."""
        return self.run_(x.clone().unsqueeze(1), Workspace()).squeeze(1)

    def run_(self, x: torch.Tensor, ws: Workspace) -> torch.Tensor:
        """x (b, groups, n, dim), attention over n; x is updated in place (the residual
        stream stays float32 whatever the matmuls' dtype). Returns x, or its output norm."""
        for layer in self.layers:
            attn, ff = cast(nn.ModuleList, layer)
            if isinstance(attn, LinearAttention):  # over all t * f tokens at once
                x.add_(attn(x.flatten(1, 2)).view_as(x))
            else:
                cast(Attention, attn).add_to_(x, ws)
            cast(FeedForward, ff).add_to_(x, ws)
        out: torch.Tensor = self.norm(x)
        return out
