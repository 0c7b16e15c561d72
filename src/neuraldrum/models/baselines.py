"""Baseline Mel → waveform inverters: Griffin-Lim (librosa; measured for speed and fidelity) and, for
benchmarking the MCNN's speed only, neural generators.

The neural ones are **for speed comparison only**: weights are random (no checkpoint is loaded and parameter names
do not follow the published checkpoints), and the run time of a convolutional generator does not depend on
its weight values. No discriminators, losses or training code live here.

- HiFi-GAN V1 and V3 — J. Kong, J. Kim, J. Bae, "HiFi-GAN: Generative Adversarial Networks for Efficient
  and High Fidelity Speech Synthesis", NeurIPS 2020. Weight norm is a training-time reparametrisation and
  is left out (the inference parameter count is that of the model after ``remove_weight_norm``).
- Vocos (Mel variant) — H. Siuzdak, "Vocos: Closing the gap between time-domain and Fourier-based neural
  vocoders for high-quality audio synthesis", arXiv:2306.00814, 2023.

Every builder takes the number of Mel bins and returns a module mapping a log-Mel ``(B, n_mels, T)`` to a
waveform ``(B, T * 256)`` (hop 256, as in our Mel config and in all three published configs).
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..config import MelConfig

HOP = 256

PUBLISHED_PARAMS = {"hifigan_v1": 13.92e6, "hifigan_v3": 1.46e6, "vocos": 13.5e6}
PUBLISHED_N_MELS = {"hifigan_v1": 80, "hifigan_v3": 80, "vocos": 100}


def mel_to_linear(mel: np.ndarray, cfg: MelConfig) -> np.ndarray:
    """librosa's non-negative least-squares inversion of the Mel filterbank. (n_mels, T) → (n_fft/2+1, T)."""
    import librosa

    return librosa.feature.inverse.mel_to_stft(
        mel, sr=cfg.sample_rate, n_fft=cfg.n_fft, power=cfg.power, fmin=cfg.fmin, fmax=cfg.fmax,
        htk=cfg.mel_scale == "htk", norm=cfg.norm)


def griffin_lim(mag: np.ndarray, cfg: MelConfig, n_iter: int = 32, n_samples: Optional[int] = None) -> np.ndarray:
    """librosa's Griffin-Lim from a linear magnitude (n_fft/2+1, T) → (n_samples,) float32."""
    import librosa

    y = librosa.griffinlim(mag, n_iter=n_iter, hop_length=cfg.hop_length, win_length=cfg.win_length,
                           n_fft=cfg.n_fft, window=cfg.window, center=True, pad_mode="constant",
                           length=n_samples, random_state=0)
    return y.astype(np.float32)


def griffin_lim_from_mel(mel: np.ndarray, cfg: MelConfig, n_iter: int = 32, n_samples: Optional[int] = None) -> np.ndarray:
    """The Mel inversion users had before neural vocoders: NNLS to linear magnitude, then Griffin-Lim
    (librosa). mel: (n_mels, T) linear → (n_samples,)."""
    return griffin_lim(mel_to_linear(mel, cfg), cfg, n_iter, n_samples)


def count_params(module: nn.Module) -> int:
    """Number of parameters (buffers such as the ISTFT window excluded)."""
    return sum(p.numel() for p in module.parameters())


# --------------------------------------------------------------------------------------------- HiFi-GAN


class ResidualUnit(nn.Module):
    """``x + convs(x)`` with a leaky ReLU (slope 0.1) before every conv; lengths are preserved.

    ResBlock1 is three units of two convs (dilation d, then 1); ResBlock2 is two units of one conv.

    Args:
        channels: width C.
        kernel: conv kernel size (odd).
        dilations: one dilation per conv in the unit.
    """

    def __init__(self, channels: int, kernel: int, dilations: Sequence[int]):
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel, dilation=d, padding=d * (kernel - 1) // 2) for d in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, L) → (B, C, L)."""
        y = x
        for conv in self.convs:
            y = conv(F.leaky_relu(y, 0.1))
        return x + y


def resblock(kind: int, channels: int, kernel: int, dilations: Sequence[int]) -> nn.Sequential:
    """HiFi-GAN ResBlock1 (``kind=1``: each dilation d gives a unit [conv d, conv 1]) or ResBlock2
    (``kind=2``: each dilation d gives a unit [conv d])."""
    per_unit = [[d, 1] for d in dilations] if kind == 1 else [[d] for d in dilations]
    return nn.Sequential(*[ResidualUnit(channels, kernel, ds) for ds in per_unit])


class UpsampleStage(nn.Module):
    """Leaky ReLU, ConvTranspose1d (×rate, channels halved), then multi-receptive-field fusion: the mean
    of the resblocks' outputs.

    Args:
        c_in: input width; the output width is ``c_in // 2``.
        rate, kernel: upsampling factor and transposed-conv kernel (padding ``(kernel - rate) // 2``).
        kind, kernels, dilations: resblock type and one (kernel, dilations) per parallel resblock.
    """

    def __init__(self, c_in: int, rate: int, kernel: int, kind: int, kernels: Sequence[int],
                 dilations: Sequence[Sequence[int]]):
        super().__init__()
        c_out = c_in // 2
        self.up = nn.ConvTranspose1d(c_in, c_out, kernel, stride=rate, padding=(kernel - rate) // 2)
        self.blocks = nn.ModuleList(resblock(kind, c_out, k, d) for k, d in zip(kernels, dilations))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, L) → (B, C // 2, L · rate)."""
        x = self.up(F.leaky_relu(x, 0.1))
        out = torch.zeros_like(x)
        for block in self.blocks:
            out = out + block(x)
        return out / len(self.blocks)


class HiFiGANGenerator(nn.Module):
    """HiFi-GAN generator: conv_pre (kernel 7), upsampling stages, conv_post (kernel 7), tanh.

    Args:
        n_mels: Mel bins of the input.
        channels: width after conv_pre ("upsample initial channel"); halved by every stage.
        rates, up_kernels: upsampling factors (product must be 256) and transposed-conv kernels.
        kind, kernels, dilations: resblock type (1 or 2), kernels and dilations of the parallel resblocks.
    """

    def __init__(self, n_mels: int, channels: int, rates: Sequence[int], up_kernels: Sequence[int], kind: int,
                 kernels: Sequence[int], dilations: Sequence[Sequence[int]]):
        super().__init__()
        hop = 1
        for r in rates:
            hop *= r
        if hop != HOP:
            raise ValueError(f"HiFiGANGenerator: product of rates {tuple(rates)} is {hop}, need {HOP}")
        self.conv_pre = nn.Conv1d(n_mels, channels, 7, padding=3)
        self.stages = nn.ModuleList(
            UpsampleStage(channels // 2 ** i, r, k, kind, kernels, dilations)
            for i, (r, k) in enumerate(zip(rates, up_kernels)))
        self.conv_post = nn.Conv1d(channels // 2 ** len(rates), 1, 7, padding=3)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, n_mels, T) log-Mel → (B, T · 256) waveform in [-1, 1]."""
        x = self.conv_pre(mel)
        for stage in self.stages:
            x = stage(x)
        # the reference implementation uses leaky ReLU's default slope (0.01) before conv_post
        x = torch.tanh(self.conv_post(F.leaky_relu(x, 0.01)))
        return x.squeeze(1)


def hifigan_v1(n_mels: int = 128) -> nn.Module:
    """HiFi-GAN V1: 512 channels, rates (8, 8, 2, 2), ResBlock1 with kernels (3, 7, 11), dilations (1, 3, 5)."""
    return HiFiGANGenerator(n_mels, 512, (8, 8, 2, 2), (16, 16, 4, 4), kind=1, kernels=(3, 7, 11),
                            dilations=((1, 3, 5), (1, 3, 5), (1, 3, 5)))


def hifigan_v3(n_mels: int = 128) -> nn.Module:
    """HiFi-GAN V3: 256 channels, rates (8, 8, 4), ResBlock2 with kernels (3, 5, 7), dilations (1,2),(2,6),(3,12)."""
    return HiFiGANGenerator(n_mels, 256, (8, 8, 4), (16, 16, 8), kind=2, kernels=(3, 5, 7),
                            dilations=((1, 2), (2, 6), (3, 12)))


# ------------------------------------------------------------------------------------------------ Vocos


class ConvNeXtBlock(nn.Module):
    """ConvNeXt block (1-D, no downsampling): depthwise conv (kernel 7), LayerNorm, pointwise expand,
    GELU, pointwise project, layer scale γ, residual.

    Args:
        dim: width C.
        hidden: width of the pointwise expansion.
        layer_scale: initial value of γ.
    """

    def __init__(self, dim: int, hidden: int, layer_scale: float):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, hidden)
        self.pwconv2 = nn.Linear(hidden, dim)
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T) → (B, C, T)."""
        y = self.norm(self.dwconv(x).transpose(1, 2))
        y = self.gamma * self.pwconv2(F.gelu(self.pwconv1(y)))
        return x + y.transpose(1, 2)


class Vocos(nn.Module):
    """Vocos (Mel variant): ConvNeXt backbone at the frame rate, then an ISTFT head.

    The head predicts log-magnitude and phase for ``n_fft // 2 + 1`` bins per frame and inverts them with
    ``torch.istft`` (Hann window, ``center=True``, ``length = T · hop``). Published Vocos uses "same"
    padding instead of ``center=True``; the two differ only in how the edges are padded, not in cost.

    Args:
        n_mels: Mel bins of the input.
        dim, hidden, n_layers: backbone width, ConvNeXt expansion width and depth.
        n_fft, hop: ISTFT size and hop (window length = n_fft).
    """

    def __init__(self, n_mels: int, dim: int = 512, hidden: int = 1536, n_layers: int = 8, n_fft: int = 1024,
                 hop: int = HOP):
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.embed = nn.Conv1d(n_mels, dim, 7, padding=3)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.blocks = nn.ModuleList(ConvNeXtBlock(dim, hidden, 1.0 / n_layers) for _ in range(n_layers))
        self.final_norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, n_fft + 2)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, n_mels, T) log-Mel → (B, T · hop) waveform."""
        x = self.norm(self.embed(mel).transpose(1, 2)).transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        h = self.head(self.final_norm(x.transpose(1, 2))).transpose(1, 2)  # (B, n_fft + 2, T)
        log_mag, phase = h.chunk(2, dim=1)  # (B, n_fft // 2 + 1, T) each
        mag = torch.exp(log_mag).clamp(max=1e2)
        spec = torch.complex(mag * torch.cos(phase), mag * torch.sin(phase))
        return torch.istft(spec, self.n_fft, self.hop, self.n_fft, window=self.window, center=True,
                           length=mel.shape[-1] * self.hop)


def vocos(n_mels: int = 128) -> nn.Module:
    """Vocos Mel variant: width 512, 8 ConvNeXt blocks (expansion 1536), ISTFT n_fft 1024, hop 256."""
    return Vocos(n_mels)


BASELINES: dict[str, Callable[[int], nn.Module]] = {"hifigan_v1": hifigan_v1, "hifigan_v3": hifigan_v3,
                                                    "vocos": vocos}
