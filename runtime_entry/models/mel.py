"""Mel-band layout of Mel-Band RoFormer: which STFT bins each mel band covers.

Equal to where librosa.filters.mel(sr, n_fft, n_mels) (Slaney scale and norm, librosa's
defaults) is positive, computed with numpy so that no runtime needs librosa.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

_F_SP = 200.0 / 3
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = math.log(6.4) / 27.0


def hz_to_mel(f: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Slaney mel scale (librosa's default, htk=False)."""
    f = np.asarray(f, dtype=np.float64)
    log_part = _MIN_LOG_MEL + np.log(np.maximum(f, 1e-10) / _MIN_LOG_HZ) / _LOGSTEP
    return np.where(f >= _MIN_LOG_HZ, log_part, f / _F_SP)


def mel_to_hz(m: npt.ArrayLike) -> npt.NDArray[np.float64]:
    m = np.asarray(m, dtype=np.float64)
    return np.where(m >= _MIN_LOG_MEL, _MIN_LOG_HZ * np.exp(_LOGSTEP * (m - _MIN_LOG_MEL)), _F_SP * m)


def mel_band_membership(sample_rate: int, n_fft: int, n_mels: int) -> npt.NDArray[np.bool_]:
    """Boolean (n_mels, n_fft//2+1): which STFT bins each mel band covers (first and last
    bin forced in, as the community code does)."""
    fftfreqs = np.fft.rfftfreq(n=n_fft, d=1.0 / sample_rate)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sample_rate / 2.0), n_mels + 2))
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
    result: npt.NDArray[np.bool_] = weights > 0
    return result
