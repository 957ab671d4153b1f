"""BS-RoFormer and Mel-Band RoFormer with msst's constructor options and state-dict layout.

Differences in the two community files are kept on purpose, because checkpoints and
callers depend on them: BS-RoFormer has `final_norm` and transformers without output
norms, its mask MLP has depth - 1 hidden layers, and it always returns (b, n, s, t);
Mel-Band RoFormer has an output norm per transformer, no `final_norm`, depth hidden
layers, and returns (b, s, t) for one stem.

Options that only matter for training are accepted and unused (the list, with the
reason for each, is `spec.NO_EFFECT_ON_INFERENCE`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from .axial import build_layers, run_layers
from .bands import BandSplit, MaskEstimator, run_mask_estimators
from .mel import mel_band_membership
from .transformer import RMSNorm

DEFAULT_FREQS_PER_BANDS = (2,) * 24 + (4,) * 12 + (12,) * 8 + (24,) * 8 + (48,) * 8 + (128, 129)


_COMMON_KEYS = (
    "stereo",
    "num_stems",
    "stft_n_fft",
    "stft_hop_length",
    "stft_win_length",
    "stft_normalized",
    "stft_window_fn",
    "zero_dc",
    "skip_connection",
)
_LAYER_KEYS = (
    "dim",
    "depth",
    "time_transformer_depth",
    "freq_transformer_depth",
    "linear_transformer_depth",
    "dim_head",
    "heads",
    "attn_dropout",
    "ff_dropout",
    "use_pope",
)


def _layers(options: dict[str, Any], *, norm_output: bool) -> nn.ModuleList:
    """The axial transformer stack from a constructor's options (sage_attention is flash_attn here)."""
    flash = bool(options["flash_attn"] or options["sage_attention"])
    return build_layers(**{k: options[k] for k in _LAYER_KEYS}, flash_attn=flash, norm_output=norm_output)


class _RoformerBase(nn.Module):
    num_stems: int
    audio_channels: int
    stft_window: torch.Tensor
    mask_estimators: nn.ModuleList

    def _init_common(
        self,
        *,
        stereo: bool,
        num_stems: int,
        stft_n_fft: int,
        stft_hop_length: int,
        stft_win_length: int,
        stft_normalized: bool,
        stft_window_fn: Callable[..., torch.Tensor] | None,
        zero_dc: bool,
        skip_connection: bool,
    ) -> None:
        self.stereo = stereo
        self.audio_channels = 2 if stereo else 1
        self.num_stems = num_stems
        self.zero_dc = zero_dc
        self.skip_connection = skip_connection
        self.stft_kwargs: dict[str, Any] = {
            "n_fft": stft_n_fft,
            "hop_length": stft_hop_length,
            "win_length": stft_win_length,
            "normalized": stft_normalized,
        }
        window = (stft_window_fn or torch.hann_window)(stft_win_length)
        self.register_buffer("stft_window", window, persistent=False)
        self.n_freqs = stft_n_fft // 2 + 1

    def _stft(self, raw: torch.Tensor) -> torch.Tensor:
        """(b, s, t) -> real view (b, f*s, frames, 2), stereo interleaved per frequency."""
        b, s, t = raw.shape
        if s != self.audio_channels:
            raise ValueError(f"model expects {self.audio_channels} audio channel(s), got {s}")
        spec = torch.stft(
            raw.reshape(b * s, t), **self.stft_kwargs, window=self.stft_window, return_complex=True
        )
        real = torch.view_as_real(spec)  # (b*s, f, frames, 2)
        f, frames = real.shape[1], real.shape[2]
        return real.view(b, s, f, frames, 2).transpose(1, 2).reshape(b, f * s, frames, 2)

    def _istft(self, spec: torch.Tensor, length: int | None) -> torch.Tensor:
        """complex (b, n, f*s, frames) -> (b, n, s, length)."""
        b, n, fs, frames = spec.shape
        s = self.audio_channels
        spec = spec.view(b, n, fs // s, s, frames).transpose(2, 3).reshape(b * n * s, fs // s, frames)
        if self.zero_dc:
            spec = spec.clone()
            spec[:, 0] = 0
        audio = torch.istft(
            spec, **self.stft_kwargs, window=self.stft_window, return_complex=False, length=length
        )
        return audio.view(b, n, s, audio.shape[-1])

    def _heads(self, active_stem_ids: Sequence[int] | None) -> nn.ModuleList:
        if active_stem_ids is None:
            return self.mask_estimators
        return nn.ModuleList([self.mask_estimators[i] for i in active_stem_ids])

    def _as_batch(self, raw_audio: torch.Tensor) -> torch.Tensor:
        return raw_audio.unsqueeze(1) if raw_audio.ndim == 2 else raw_audio


class BSRoformer(_RoformerBase):
    def __init__(
        self,
        dim: int,
        *,
        depth: int,
        stereo: bool = False,
        num_stems: int = 1,
        time_transformer_depth: int = 2,
        freq_transformer_depth: int = 2,
        linear_transformer_depth: int = 0,
        freqs_per_bands: tuple[int, ...] = DEFAULT_FREQS_PER_BANDS,
        dim_head: int = 64,
        heads: int = 8,
        attn_dropout: float = 0.0,
        ff_dropout: float = 0.0,
        flash_attn: bool = True,
        dim_freqs_in: int = 1025,
        stft_n_fft: int = 2048,
        stft_hop_length: int = 512,
        stft_win_length: int = 2048,
        stft_normalized: bool = False,
        stft_window_fn: Callable[..., torch.Tensor] | None = None,
        zero_dc: bool = True,
        mask_estimator_depth: int = 2,
        multi_stft_resolution_loss_weight: float = 1.0,
        multi_stft_resolutions_window_sizes: tuple[int, ...] = (4096, 2048, 1024, 512, 256),
        multi_stft_hop_size: int = 147,
        multi_stft_normalized: bool = False,
        multi_stft_window_fn: Callable[..., torch.Tensor] = torch.hann_window,
        mlp_expansion_factor: int = 4,
        use_torch_checkpoint: bool = False,
        skip_connection: bool = False,
        use_pope: bool = False,
        sage_attention: bool = False,
    ) -> None:
        super().__init__()
        options = dict(locals())  # the signature stays explicit: msst's options, by name
        self._init_common(**{k: options[k] for k in _COMMON_KEYS})
        if len(freqs_per_bands) < 2 or sum(freqs_per_bands) != self.n_freqs:
            raise ValueError(f"freqs_per_bands must sum to {self.n_freqs}, got {sum(freqs_per_bands)}")
        self.layers = _layers(options, norm_output=False)
        self.final_norm = RMSNorm(dim)
        dims = tuple(2 * f * self.audio_channels for f in freqs_per_bands)
        self.band_split = BandSplit(dim, dims)
        self.mask_estimators = nn.ModuleList(
            MaskEstimator(
                dim, dims, n_hidden=mask_estimator_depth - 1, mlp_expansion_factor=mlp_expansion_factor
            )
            for _ in range(num_stems)
        )

    def forward(self, raw_audio: torch.Tensor, active_stem_ids: Sequence[int] | None = None) -> torch.Tensor:
        """(b, t) or (b, s, t) -> (b, n, s, t), n the stems (or `active_stem_ids`)."""
        raw = self._as_batch(raw_audio)
        b, _, length = raw.shape
        spec = self._stft(raw)  # (b, F, T, 2) with F = freqs * channels
        _, fs, frames, _ = spec.shape
        x = spec.transpose(1, 2).reshape(b, frames, fs * 2)
        x = self.band_split(x)
        x = run_layers(self.layers, x, self.skip_connection)
        x = self.final_norm(x)
        mask = run_mask_estimators(self._heads(active_stem_ids), x)  # (b, n, T, F*2)
        mask = mask.view(b, mask.shape[1], frames, fs, 2).transpose(2, 3)
        masked = torch.view_as_complex(spec.unsqueeze(1).contiguous()) * torch.view_as_complex(
            mask.contiguous()
        )
        return self._istft(masked, length)


class MelBandRoformer(_RoformerBase):
    freq_indices: torch.Tensor
    num_bands_per_freq: torch.Tensor

    def __init__(
        self,
        dim: int,
        *,
        depth: int,
        stereo: bool = False,
        num_stems: int = 1,
        time_transformer_depth: int = 2,
        freq_transformer_depth: int = 2,
        linear_transformer_depth: int = 0,
        num_bands: int = 60,
        dim_head: int = 64,
        heads: int = 8,
        attn_dropout: float = 0.1,
        ff_dropout: float = 0.1,
        flash_attn: bool = True,
        dim_freqs_in: int = 1025,
        sample_rate: int = 44100,
        stft_n_fft: int = 2048,
        stft_hop_length: int = 512,
        stft_win_length: int = 2048,
        stft_normalized: bool = False,
        stft_window_fn: Callable[..., torch.Tensor] | None = None,
        zero_dc: bool = True,
        mask_estimator_depth: int = 1,
        multi_stft_resolution_loss_weight: float = 1.0,
        multi_stft_resolutions_window_sizes: tuple[int, ...] = (4096, 2048, 1024, 512, 256),
        multi_stft_hop_size: int = 147,
        multi_stft_normalized: bool = False,
        multi_stft_window_fn: Callable[..., torch.Tensor] = torch.hann_window,
        match_input_audio_length: bool = False,
        mlp_expansion_factor: int = 4,
        use_torch_checkpoint: bool = False,
        skip_connection: bool = False,
        use_pope: bool = False,
        sage_attention: bool = False,
    ) -> None:
        super().__init__()
        options = dict(locals())  # the signature stays explicit: msst's options, by name
        self._init_common(**{k: options[k] for k in _COMMON_KEYS})
        self.match_input_audio_length = match_input_audio_length
        self.layers = _layers(options, norm_output=True)
        member = torch.from_numpy(mel_band_membership(sample_rate, stft_n_fft, num_bands))
        if not member.any(dim=0).all():
            raise ValueError("every frequency must belong to a mel band")
        freq_indices = torch.arange(self.n_freqs).expand(num_bands, -1)[member]
        if stereo:
            freq_indices = (freq_indices[:, None] * 2 + torch.arange(2)).reshape(-1)
        self.register_buffer("freq_indices", freq_indices, persistent=False)
        num_freqs_per_band = member.sum(dim=1)
        self.register_buffer("num_bands_per_freq", member.sum(dim=0), persistent=False)
        dims = tuple(2 * int(f) * self.audio_channels for f in num_freqs_per_band.tolist())
        self.band_split = BandSplit(dim, dims)
        self.mask_estimators = nn.ModuleList(
            MaskEstimator(dim, dims, n_hidden=mask_estimator_depth, mlp_expansion_factor=mlp_expansion_factor)
            for _ in range(num_stems)
        )

    def forward(self, raw_audio: torch.Tensor, active_stem_ids: Sequence[int] | None = None) -> torch.Tensor:
        """(b, t) or (b, s, t) -> (b, n, s, t'), or (b, s, t') for one stem, t' = t only with
        match_input_audio_length (else the STFT's whole frames), as the community code."""
        raw = self._as_batch(raw_audio)
        b, channels, length = raw.shape
        spec = self._stft(raw)  # (b, F, T, 2)
        _, fs, frames, _ = spec.shape
        x = spec[:, self.freq_indices]  # (b, sum(bands), T, 2)
        x = x.transpose(1, 2).reshape(b, frames, -1)
        x = self.band_split(x)
        x = run_layers(self.layers, x, self.skip_connection)
        masks = run_mask_estimators(self._heads(active_stem_ids), x)  # (b, n, T, idx*2)
        n = masks.shape[1]
        masks = torch.view_as_complex(
            masks.view(b, n, frames, -1, 2).transpose(2, 3).contiguous()
        )  # (b, n, idx, T)
        index = self.freq_indices.view(1, 1, -1, 1).expand(b, n, -1, frames)
        summed = torch.zeros(b, n, fs, frames, dtype=masks.dtype, device=masks.device).scatter_add_(
            2, index, masks
        )
        denom = self.num_bands_per_freq.repeat_interleave(channels).view(-1, 1).clamp(min=1e-8)
        masked = torch.view_as_complex(spec.unsqueeze(1).contiguous()) * (summed / denom)
        out = self._istft(masked, length if self.match_input_audio_length else None)
        return out[:, 0] if n == 1 else out


MODEL_CLASSES: dict[str, type[BSRoformer] | type[MelBandRoformer]] = {
    "bs_roformer": BSRoformer,
    "mel_band_roformer": MelBandRoformer,
}
