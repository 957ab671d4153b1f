"""Positional embeddings of the attention layers: rotary (RoPE) and polar (PoPE).

Both are shared by every attention layer along one axis, as in the community code, so
their parameters appear under each layer's key in the state dict.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

_COMPLEX = {torch.float32: torch.complex64, torch.float64: torch.complex128}


class RotaryEmbedding(nn.Module):
    """Rotary position embedding over interleaved pairs, as rotary-embedding-torch's
    default ('lang', theta 10000). The frequencies are a frozen parameter named
    `freqs` because that is what the checkpoints store."""

    def __init__(self, dim: int, theta: float = 10000.0) -> None:
        super().__init__()
        freqs = 1.0 / (theta ** (torch.arange(0, dim, 2)[: dim // 2].float() / dim))
        self.freqs = nn.Parameter(freqs, requires_grad=False)
        self._cache: dict[tuple[object, ...], torch.Tensor] = {}

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:  # new freqs: drop cached tables
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

    @staticmethod
    def complex_dtype(dtype: torch.dtype) -> bool:
        return dtype in _COMPLEX

    def rotate_into(self, qk: torch.Tensor, out: torch.Tensor, *, halves: bool = False) -> torch.Tensor:
        """Rotate q and k, qk (batch, n, 2, h, d) with positions along n, into `out`
        (same shape). Pairs (2i, 2i+1) are rotated by pos * freqs[i]: in float32 as one
        complex multiply (one pass over memory; qk's strides must be even). bf16 has no
        complex type: four real kernels, which run twice as fast on contiguous halves as on
        every other element, so with `halves` the caller has laid each head's features out
        as (even ones, odd ones), pair i being features i and d/2 + i (the same order for q
        and k leaves their dot products as they were)."""
        n, d = qk.shape[1], qk.shape[-1]
        table = self._table(n, qk.device, qk.dtype)
        shape = (1, n, 1, 1, d // 2)
        if qk.dtype in _COMPLEX and not halves:
            pairs, dest = qk.view(*qk.shape[:-1], d // 2, 2), out.view(*out.shape[:-1], d // 2, 2)
            torch.mul(torch.view_as_complex(pairs), table.view(shape), out=torch.view_as_complex(dest))
            return out
        if qk.dtype in _COMPLEX:
            table = torch.stack((table.real, table.imag))
        cos, sin = table[0].view(shape), table[1].view(shape)
        if halves:  # both halves times cos in one contiguous pass, then the two sin terms
            x1, x2, o1, o2 = qk[..., : d // 2], qk[..., d // 2 :], out[..., : d // 2], out[..., d // 2 :]
            torch.mul(qk, torch.cat((table[0], table[0]), dim=-1).view(1, n, 1, 1, d), out=out)
            o1.addcmul_(x2, sin, value=-1)
            o2.addcmul_(x1, sin)
            return out
        pairs, dest = qk.view(*qk.shape[:-1], d // 2, 2), out.view(*out.shape[:-1], d // 2, 2)
        x1, x2, o1, o2 = pairs[..., 0], pairs[..., 1], dest[..., 0], dest[..., 1]
        torch.mul(x1, cos, out=o1)
        o1.addcmul_(x2, sin, value=-1)
        torch.mul(x2, cos, out=o2)
        o2.addcmul_(x1, sin)
        return out


class PolarEmbedding(nn.Module):
    """PoPE, polar positional embedding (the `use_pope` option; pope-pytorch's `PoPE`, written
    here so that no runtime needs that package). Keys: `inv_freqs` (buffer), `bias` (heads, d).

    Each of the d features of q and k becomes a magnitude softplus(x) at angle pos * inv_freqs
    (for k, plus a learned per-head bias clamped to [-2 pi, 0]), so q.k becomes
    sum_j |q_j| |k_j| cos(angle_q_j - angle_k_j): width 2d for the score, d for the values."""

    inv_freqs: torch.Tensor

    def __init__(self, dim: int, *, heads: int, theta: float = 10000.0) -> None:
        super().__init__()
        self.register_buffer("inv_freqs", theta ** -(torch.arange(dim).float() / dim))
        self.bias = nn.Parameter(torch.zeros(heads, dim))

    def expand(self, q: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q, k (batch, heads, n, d) -> (batch, heads, n, 2d) each, in float32 (as pope-pytorch,
        whatever the input dtype: the angles need it). The cos and sin halves are concatenated,
        not interleaved: a dot product does not depend on the order of the features."""
        n = q.shape[-2]
        inv_freqs = self.inv_freqs
        angles = torch.arange(n, device=q.device, dtype=inv_freqs.dtype)[:, None] * inv_freqs[None, :]
        k_angles = angles + self.bias.detach().clamp(-2.0 * math.pi, 0.0)[:, None, :]  # (h, n, d)
        q_mag, k_mag = F.softplus(q.float()), F.softplus(k.float())
        q_out = torch.cat((q_mag * angles.cos(), q_mag * angles.sin()), dim=-1)
        k_out = torch.cat((k_mag * k_angles.cos(), k_mag * k_angles.sin()), dim=-1)
        return q_out, k_out
