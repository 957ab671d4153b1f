"""BS-RoFormer and Mel-Band RoFormer with the community constructor and state-dict layout.

Differences in the two community files are kept on purpose, because checkpoints
depend on them: BS-RoFormer has `final_norm` and transformers without output
norms, and its mask MLP has depth - 1 hidden layers; Mel-Band RoFormer has an
output norm per transformer, no `final_norm`, and depth hidden layers.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from .layers import BandSplit, MaskEstimator, RMSNorm, build_layers, run_layers, run_mask_estimators


class _RoformerBase(nn.Module):
    num_stems: int
    audio_channels: int

    def _init_common(
        self,
        *,
        stereo: bool,
        num_stems: int,
        stft_n_fft: int,
        stft_hop_length: int,
        stft_win_length: int,
        stft_normalized: bool,
        zero_dc: bool,
        skip_connection: bool,
    ) -> None:
        self.stereo = stereo
        self.audio_channels = 2 if stereo else 1
        self.num_stems = num_stems
        self.zero_dc = zero_dc
        self.skip_connection = skip_connection
        self.stft_kwargs = dict(
            n_fft=stft_n_fft,
            hop_length=stft_hop_length,
            win_length=stft_win_length,
            normalized=stft_normalized,
        )
        self.register_buffer("stft_window", torch.hann_window(stft_win_length), persistent=False)
        self.n_freqs = stft_n_fft // 2 + 1

    def _stft(self, raw: torch.Tensor) -> torch.Tensor:
        """(b, s, t) -> real view (b, f*s, frames, 2), stereo interleaved per frequency."""
        b, s, t = raw.shape
        if s != self.audio_channels:
            raise ValueError(f"model expects {self.audio_channels} audio channel(s), got {s}")
        spec = torch.stft(
            raw.reshape(b * s, t), **self.stft_kwargs, window=self.stft_window, return_complex=True
        )
        spec = torch.view_as_real(spec)  # (b*s, f, frames, 2)
        f, frames = spec.shape[1], spec.shape[2]
        return spec.view(b, s, f, frames, 2).transpose(1, 2).reshape(b, f * s, frames, 2)

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

    def separate(self, raw: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, raw_audio: torch.Tensor) -> torch.Tensor:
        """(b, t) or (b, s, t) -> (b, n, s, t), or (b, s, t) for one stem (as the community code)."""
        if raw_audio.ndim == 2:
            raw_audio = raw_audio.unsqueeze(1)
        out = self.separate(raw_audio)
        return out[:, 0] if self.num_stems == 1 else out


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
        freqs_per_bands: tuple[int, ...] = (),
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
        mask_estimator_depth: int = 2,
        mlp_expansion_factor: int = 4,
        skip_connection: bool = False,
        zero_dc: bool = False,
        sage_attention: bool = False,
        **_training_only: object,
    ) -> None:
        super().__init__()
        self._init_common(
            stereo=stereo,
            num_stems=num_stems,
            stft_n_fft=stft_n_fft,
            stft_hop_length=stft_hop_length,
            stft_win_length=stft_win_length,
            stft_normalized=stft_normalized,
            zero_dc=zero_dc,
            skip_connection=skip_connection,
        )
        if len(freqs_per_bands) < 2 or sum(freqs_per_bands) != self.n_freqs:
            raise ValueError(f"freqs_per_bands must sum to {self.n_freqs}, got {sum(freqs_per_bands)}")
        self.layers = build_layers(
            dim=dim,
            depth=depth,
            time_transformer_depth=time_transformer_depth,
            freq_transformer_depth=freq_transformer_depth,
            linear_transformer_depth=linear_transformer_depth,
            dim_head=dim_head,
            heads=heads,
            attn_dropout=attn_dropout,
            ff_dropout=ff_dropout,
            flash_attn=flash_attn or sage_attention,
            norm_output=False,
        )
        self.final_norm = RMSNorm(dim)
        dims = tuple(2 * f * self.audio_channels for f in freqs_per_bands)
        self.band_split = BandSplit(dim, dims)
        self.mask_estimators = nn.ModuleList(
            MaskEstimator(
                dim, dims, n_hidden=mask_estimator_depth - 1, mlp_expansion_factor=mlp_expansion_factor
            )
            for _ in range(num_stems)
        )

    def separate(self, raw: torch.Tensor) -> torch.Tensor:
        b, _, length = raw.shape
        spec = self._stft(raw)  # (b, F, T, 2) with F = freqs * channels
        _, fs, frames, _ = spec.shape
        x = spec.transpose(1, 2).reshape(b, frames, fs * 2)
        x = self.band_split(x)
        x = run_layers(self.layers, x, self.skip_connection)
        x = self.final_norm(x)
        mask = run_mask_estimators(self.mask_estimators, x)  # (b, n, T, F*2)
        mask = mask.view(b, self.num_stems, frames, fs, 2).transpose(2, 3)
        masked = torch.view_as_complex(spec.unsqueeze(1).contiguous()) * torch.view_as_complex(
            mask.contiguous()
        )
        return self._istft(masked, length)


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney mel scale (librosa's default, htk=False)."""
    f = np.asanyarray(f, dtype=np.float64)
    f_sp = 200.0 / 3
    mels = f / f_sp
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, math.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, mels)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asanyarray(m, dtype=np.float64)
    f_sp = 200.0 / 3
    freqs = f_sp * m
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, math.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), freqs)


def mel_band_membership(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """Boolean (n_mels, n_fft//2+1): which STFT bins each mel band covers, i.e. where
    librosa.filters.mel(sr, n_fft, n_mels) is positive (first and last bin forced in,
    as the community code does)."""
    fftfreqs = np.fft.rfftfreq(n=n_fft, d=1.0 / sample_rate)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sample_rate / 2.0), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    weights = np.zeros((n_mels, len(fftfreqs)), dtype=np.float32)
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, None]
    weights[0, 0] = 1.0
    weights[-1, -1] = 1.0
    return weights > 0


class MelBandRoformer(_RoformerBase):
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
        mask_estimator_depth: int = 1,
        match_input_audio_length: bool = False,
        mlp_expansion_factor: int = 4,
        skip_connection: bool = False,
        zero_dc: bool = False,
        sage_attention: bool = False,
        **_training_only: object,
    ) -> None:
        super().__init__()
        self._init_common(
            stereo=stereo,
            num_stems=num_stems,
            stft_n_fft=stft_n_fft,
            stft_hop_length=stft_hop_length,
            stft_win_length=stft_win_length,
            stft_normalized=stft_normalized,
            zero_dc=zero_dc,
            skip_connection=skip_connection,
        )
        self.match_input_audio_length = match_input_audio_length
        self.layers = build_layers(
            dim=dim,
            depth=depth,
            time_transformer_depth=time_transformer_depth,
            freq_transformer_depth=freq_transformer_depth,
            linear_transformer_depth=linear_transformer_depth,
            dim_head=dim_head,
            heads=heads,
            attn_dropout=attn_dropout,
            ff_dropout=ff_dropout,
            flash_attn=flash_attn or sage_attention,
            norm_output=True,
        )
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

    def separate(self, raw: torch.Tensor) -> torch.Tensor:
        b, channels, length = raw.shape
        spec = self._stft(raw)  # (b, F, T, 2)
        _, fs, frames, _ = spec.shape
        x = spec[:, self.freq_indices]  # (b, sum(bands), T, 2)
        x = x.transpose(1, 2).reshape(b, frames, -1)
        x = self.band_split(x)
        x = run_layers(self.layers, x, self.skip_connection)
        masks = run_mask_estimators(self.mask_estimators, x)  # (b, n, T, idx*2)
        n = self.num_stems
        masks = torch.view_as_complex(
            masks.view(b, n, frames, -1, 2).transpose(2, 3).contiguous()
        )  # (b, n, idx, T)
        index = self.freq_indices.view(1, 1, -1, 1).expand(b, n, -1, frames)
        summed = torch.zeros(b, n, fs, frames, dtype=masks.dtype, device=masks.device).scatter_add_(
            2, index, masks
        )
        denom = self.num_bands_per_freq.repeat_interleave(channels).view(-1, 1).clamp(min=1e-8)
        masked = torch.view_as_complex(spec.unsqueeze(1).contiguous()) * (summed / denom)
        return self._istft(masked, length if self.match_input_audio_length else None)


MODEL_CLASSES = {"bs_roformer": BSRoformer, "mel_band_roformer": MelBandRoformer}
