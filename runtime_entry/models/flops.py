"""The matrix work of one forward pass over one chunk, from the model's config alone.

A property of the model and the chunk: the same on every host, whichever kernels run it.
torch's FlopCounterMode only sees the operators it knows, so its count depends on the path
the host takes: oneDNN's fused bf16 linear (`mkldnn._linear_pointwise`, what a CPU with
native bf16 runs under matmul precision "high") counts as zero, which once halved the
benchmark's figure on such a host (2815.8 against 5822.1 GFLOP for bs_roformer_4stem).

Counted as torch's counter counts: 2 * m * n * k per matrix product, attention as its two
products (q k^T and the weights times v). The STFT, norms, softmax, GLU and element-wise
work are not counted. The one extra zero row the attention projection gets when its width
is odd (a kernel's alignment, not the model) is not counted either.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from .spec import ModelSpec

FF_MULT = 4  # the transformers' feed-forward width, dim * 4 (not a config key, as in msst)


@dataclass(frozen=True)
class Shape:
    """What the count needs: tokens along time and bands, and the model's widths."""

    frames: int  # STFT frames of one chunk (centred: chunk // hop + 1)
    band_inputs: tuple[int, ...]  # each band's input width (2 * bins * channels)
    dim: int
    heads: int
    dim_head: int

    @property
    def bands(self) -> int:
        return len(self.band_inputs)

    @property
    def tokens(self) -> int:
        return self.frames * self.bands


def band_inputs(spec: ModelSpec) -> tuple[int, ...]:
    """Each band's input width: BS-RoFormer's freqs_per_bands, or the mel bands' bins."""
    p, channels = spec.params, spec.audio_channels
    if spec.kind == "mel_band_roformer":
        from .mel import mel_band_membership

        member = mel_band_membership(int(p.get("sample_rate", 44100)), p["stft_n_fft"], p["num_bands"])
        return tuple(2 * int(n) * channels for n in member.sum(axis=1))
    return tuple(2 * int(f) * channels for f in p["freqs_per_bands"])


def shape_of(spec: ModelSpec, chunk: int | None = None) -> Shape:
    p = spec.params
    return Shape(
        frames=(chunk or spec.chunk_size) // p["stft_hop_length"] + 1,
        band_inputs=band_inputs(spec),
        dim=p["dim"],
        heads=p["heads"],
        dim_head=p["dim_head"],
    )


def attention_layer(s: Shape, groups: int, length: int, *, pope: bool) -> int:
    """A softmax attention layer over `length` tokens in each of `groups`: the q, k, v and gate
    projection, the attention (PoPE's q and k are twice as wide), the output projection."""
    hd = s.heads * s.dim_head
    project = 2 * s.tokens * s.dim * (3 * hd + s.heads) + 2 * s.tokens * hd * s.dim
    qk_width = 2 * s.dim_head if pope else s.dim_head
    attend = 2 * groups * s.heads * length * length * (qk_width + s.dim_head)
    return project + attend


def linear_attention_layer(s: Shape) -> int:
    """Cross-covariance attention over all tokens: projections, and (d x n)(n x d) twice per head."""
    hd = s.heads * s.dim_head
    return 2 * s.tokens * s.dim * 3 * hd + 4 * s.heads * s.dim_head**2 * s.tokens + 2 * s.tokens * hd * s.dim


def feed_forward(s: Shape) -> int:
    return 2 * 2 * s.tokens * s.dim * (s.dim * FF_MULT)


def transformers(s: Shape, p: dict[str, Any]) -> int:
    """`depth` blocks of [linear?, time, freq] transformers, each layer attention + feed-forward."""
    pope = bool(p.get("use_pope"))
    block = (
        p.get("linear_transformer_depth", 0) * (linear_attention_layer(s) + feed_forward(s))
        + p["time_transformer_depth"] * (attention_layer(s, s.bands, s.frames, pope=pope) + feed_forward(s))
        + p["freq_transformer_depth"] * (attention_layer(s, s.frames, s.bands, pope=pope) + feed_forward(s))
    )
    return int(p["depth"]) * int(block)


def mask_estimator(s: Shape, n_hidden: int, hidden: int) -> int:
    """One stem's per-band MLP (dim -> hidden x n_hidden -> 2 x the band's inputs, before GLU)."""
    widths = (s.dim, *((hidden,) * n_hidden))
    hidden_work = sum(2 * s.bands * s.frames * a * b for a, b in itertools.pairwise(widths))
    return hidden_work + 2 * s.frames * widths[-1] * 2 * sum(s.band_inputs)


def flops_per_chunk(spec: ModelSpec, chunk: int | None = None) -> int:
    """Matrix FLOPs of one forward pass of the whole model (every stem) over one chunk of
    `chunk` samples (default: the model's chunk size), batch 1."""
    p = spec.params
    s = shape_of(spec, chunk)
    split = 2 * s.frames * s.dim * sum(s.band_inputs)
    depth = p.get("mask_estimator_depth", 2 if spec.kind == "bs_roformer" else 1)
    n_hidden = depth - 1 if spec.kind == "bs_roformer" else depth
    heads = p["num_stems"] * mask_estimator(s, n_hidden, s.dim * p["mlp_expansion_factor"])
    return int(split + transformers(s, p) + heads)
