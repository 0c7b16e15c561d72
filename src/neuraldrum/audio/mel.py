"""Mel front end as an ``nn.Module`` (window and filterbank are buffers, so they travel with the model),
and the paper's per-(bin, frame) standardisation with stored statistics.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch
from torch import nn

from ..config import MelConfig


def _hz_to_mel(f: np.ndarray, scale: str) -> np.ndarray:
    f = np.asarray(f, dtype=np.float64)
    if scale == "htk":
        return 2595.0 * np.log10(1.0 + f / 700.0)
    # Slaney: linear below 1 kHz, logarithmic above
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, f / f_sp)


def _mel_to_hz(m: np.ndarray, scale: str) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    if scale == "htk":
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_filterbank(cfg: MelConfig) -> np.ndarray:
    """Triangular Mel filterbank, (n_mels, n_fft // 2 + 1) float64. Same construction as librosa's."""
    if cfg.mel_scale not in ("slaney", "htk"):
        raise ValueError(f"MelConfig.mel_scale must be 'slaney' or 'htk', not {cfg.mel_scale!r}")
    if cfg.norm not in (None, "slaney"):
        raise ValueError(f"MelConfig.norm must be 'slaney' or None, not {cfg.norm!r}")
    fmax = cfg.fmax if cfg.fmax is not None else cfg.sample_rate / 2
    fft_freqs = np.linspace(0.0, cfg.sample_rate / 2, cfg.n_fft // 2 + 1)
    mels = np.linspace(_hz_to_mel(cfg.fmin, cfg.mel_scale), _hz_to_mel(fmax, cfg.mel_scale), cfg.n_mels + 2)
    edges = _mel_to_hz(mels, cfg.mel_scale)
    fdiff = np.diff(edges)
    ramps = edges[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    fb = np.maximum(0.0, np.minimum(lower, upper))
    if cfg.norm == "slaney":
        fb *= (2.0 / (edges[2: cfg.n_mels + 2] - edges[: cfg.n_mels]))[:, None]
    return fb


def mel_center_frequencies(cfg: MelConfig) -> np.ndarray:
    """Centre frequency (Hz) of each Mel band, (n_mels,)."""
    fmax = cfg.fmax if cfg.fmax is not None else cfg.sample_rate / 2
    mels = np.linspace(_hz_to_mel(cfg.fmin, cfg.mel_scale), _hz_to_mel(fmax, cfg.mel_scale), cfg.n_mels + 2)
    return _mel_to_hz(mels, cfg.mel_scale)[1:-1]


class MelFrontend(nn.Module):
    """Waveform → (linear or log) Mel spectrogram.

    Centred STFT with **zero** padding (never reflect: the hit starts at t = 0), window of ``win_length``
    zero-padded to ``n_fft``, magnitude to ``power``, Mel filterbank.
    """

    def __init__(self, cfg: MelConfig):
        super().__init__()
        self.cfg = cfg
        if cfg.window != "hann":
            raise ValueError(f"MelConfig.window: only 'hann' is supported, not {cfg.window!r}")
        self.register_buffer("window", torch.hann_window(cfg.win_length, periodic=True), persistent=False)
        self.register_buffer("fb", torch.tensor(mel_filterbank(cfg), dtype=torch.float32), persistent=False)

    def spectrogram(self, wave: torch.Tensor) -> torch.Tensor:
        """Linear magnitude STFT ** power.

        Args:
            wave: (B, N) or (N,) float waveform.
        Returns:
            (B, n_fft // 2 + 1, 1 + N // hop)
        """
        squeeze = wave.dim() == 1
        if squeeze:
            wave = wave.unsqueeze(0)
        c = self.cfg
        spec = torch.stft(wave, n_fft=c.n_fft, hop_length=c.hop_length, win_length=c.win_length,
                          window=self.window, center=True, pad_mode="constant", return_complex=True)
        mag = spec.abs()
        if c.power != 1.0:
            mag = mag ** c.power
        return mag.squeeze(0) if squeeze else mag

    def mel(self, wave: torch.Tensor) -> torch.Tensor:
        """Linear Mel spectrogram. (B, N) → (B, n_mels, T)."""
        return torch.matmul(self.fb, self.spectrogram(wave))

    def log(self, mel: torch.Tensor) -> torch.Tensor:
        """log(max(mel, floor)), elementwise."""
        return torch.log(torch.clamp(mel, min=self.cfg.log_floor))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """Log-Mel spectrogram. (B, N) → (B, n_mels, T)."""
        return self.log(self.mel(wave))


class Standardiser(nn.Module):
    """Per-(bin, frame) standardisation of log-Mel spectrograms with statistics from the training set."""

    def __init__(self, n_mels: int, n_frames: int, mean: Optional[torch.Tensor] = None,
                 std: Optional[torch.Tensor] = None, eps: float = 1e-3):
        super().__init__()
        self.eps = eps
        self.register_buffer("mean", torch.zeros(n_mels, n_frames) if mean is None else mean.float().clone())
        self.register_buffer("std", torch.ones(n_mels, n_frames) if std is None else std.float().clone())

    @classmethod
    def fit(cls, logmels: torch.Tensor, eps: float = 1e-3) -> "Standardiser":
        """Statistics over a batch of log-Mels (N, n_mels, T)."""
        mean = logmels.mean(dim=0)
        std = logmels.std(dim=0, unbiased=False).clamp(min=eps)
        return cls(logmels.shape[1], logmels.shape[2], mean, std, eps)

    def forward(self, logmel: torch.Tensor) -> torch.Tensor:
        """(B, n_mels, T) → standardised, same shape."""
        return (logmel - self.mean) / self.std

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        """Standardised (B, n_mels, T) → log-Mel."""
        return z * self.std + self.mean
