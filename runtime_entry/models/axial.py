"""The axial transformer stack of both RoFormers: per block, an optional linear-attention
transformer over all tokens, then attention over time within each band, then over bands
within each frame (keys `layers.{i}.{0|1|2}`)."""

from __future__ import annotations

from typing import Any, cast

import torch
from torch import nn

from .kernels import Workspace
from .positions import PolarEmbedding, RotaryEmbedding
from .transformer import Transformer


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
    use_pope: bool = False,
) -> nn.ModuleList:
    """layers.{i} = [linear?, time, freq] transformers; one rotary (or PoPE) module shared per axis."""
    kwargs: dict[str, Any] = {
        "dim": dim,
        "heads": heads,
        "dim_head": dim_head,
        "attn_dropout": attn_dropout,
        "ff_dropout": ff_dropout,
        "flash_attn": flash_attn,
        "norm_output": norm_output,
    }
    time_pos: dict[str, Any]
    freq_pos: dict[str, Any]
    if use_pope:
        time_pos = {"pope_embed": PolarEmbedding(dim_head, heads=heads)}
        freq_pos = {"pope_embed": PolarEmbedding(dim_head, heads=heads)}
    else:
        time_pos = {"rotary_embed": RotaryEmbedding(dim_head)}
        freq_pos = {"rotary_embed": RotaryEmbedding(dim_head)}
    layers = nn.ModuleList()
    for _ in range(depth):
        block = []
        if linear_transformer_depth > 0:
            block.append(Transformer(depth=linear_transformer_depth, linear_attn=True, **kwargs))
        block.append(Transformer(depth=time_transformer_depth, **{**time_pos, **kwargs}))
        block.append(Transformer(depth=freq_transformer_depth, **{**freq_pos, **kwargs}))
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
        *linear, time_t, freq_t = [cast(Transformer, t) for t in cast(nn.ModuleList, block)]
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
