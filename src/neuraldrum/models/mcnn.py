"""Multi-head CNN (MCNN) spectrogram inverter: linear Mel → waveform, with a support mask.

Each of ``n_heads`` heads is ``n_layers`` ConvTranspose1d (kernel 13, stride 2, no bias; padding chosen
so every layer exactly doubles the length) with ELU between layers. The first layer reads the ``n_mels``
Mel bins, ``cfg.channels`` gives the intermediate widths and the last layer emits two channels: a wave
and a mask logit. Head waves are weighted by a trainable scalar per head and summed, then squashed by a
scaled softsign ``a·x/(1+|b·x|)``; the mask is ``sigmoid(sum of head mask logits)``.

At inference the mask is applied by :func:`gate`: the sigmoid mask the MCNN was trained with (not binarised),
held by a peak follower with an exponential release of one hop, so a sound's level never falls to silence
faster than that (the binarised mask cut 19 % of generated sounds by more than 24 dB within 5 ms).

The heads are computed together: layer 1 is one ConvTranspose1d with ``n_heads × width`` output channels
(all heads read the same Mel) and later layers are grouped convolutions with ``groups = n_heads``. That
is the same function as separate heads (group *h* only sees head *h*'s channels) but runs as one kernel
per layer, which is markedly faster on a CPU.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..config import MCNNConfig
from .blocks import ScaledSoftsign


def doubling_padding(kernel: int) -> tuple[int, int]:
    """(padding, output_padding) that make a stride-2 ConvTranspose1d map length L to exactly 2L."""
    out_pad = kernel % 2  # L_out = 2(L - 1) - 2p + k + op = 2L  ⇔  2p = k - 2 + op
    return (kernel - 2 + out_pad) // 2, out_pad


RELEASE_HOPS = 1.0  # the gate's release time constant in hops: 11.6 ms at 22.05 kHz with hop 256
GATE_BLOCKS = 4  # the release is followed per hop / 4 samples (64 at hop 256), then interpolated
RELEASE_SPAN = 9.5  # the follower looks back this many time constants (e^-9.5: −83 dB, where it lets go)


def gate(wave: torch.Tensor, logits: torch.Tensor, hop_length: int, release_hops: float = RELEASE_HOPS,
         span: float = RELEASE_SPAN, blocks: int = GATE_BLOCKS) -> torch.Tensor:
    """The playable output: ``wave · max(m, release(m))`` with ``m = sigmoid(logits)``, where release(m) holds
    the mask's per-block peak for 1.5–3 blocks of hop / 4 and then lets it fall as exp(−t / τ),
    τ = :data:`RELEASE_HOPS` hops. The attack is the trained mask's own; only the fall is slowed. No recursion (a max over a window of
    shifted blocks): cheap, batched, exportable to ONNX and TorchScript.

    Args:
        wave, logits: (B, N) from :meth:`MCNN.forward`.
        hop_length: the Mel hop in samples (sets τ and the block size).
        release_hops, span, blocks: τ in hops, the look-back in τ, blocks per hop (module defaults).
    Returns:
        (B, N) gated waveform.
    """
    m = torch.sigmoid(logits)
    B, N = m.shape
    block = max(1, hop_length // blocks)
    nb = (N + block - 1) // block
    peak = F.pad(m, (0, nb * block - N)).view(B, nb, block).amax(dim=2)
    tau = release_hops * hop_length / block  # in blocks
    K = int(math.ceil(span * tau))
    decay = torch.exp(-torch.arange(K, -1, -1, dtype=m.dtype, device=m.device) / tau)  # oldest block first
    env = (F.pad(peak, (K, 0)).unfold(1, K + 1, 1) * decay).amax(dim=2)  # (B, nb): max_k peak[t-k]·e^(-k/τ)
    env = F.interpolate(env[:, None], size=nb * block, mode="linear", align_corners=False)[:, 0]
    # 1.5 blocks late, so the interpolated rise never starts before the block that opened it (no pre-echo):
    # the fall is held for 1.5–3 blocks, then released
    env = F.pad(env, (block + block // 2, 0))[:, :N]
    return wave * torch.maximum(m, env)


class MCNN(nn.Module):
    """Multi-head transposed-convolution inverter.

    Args:
        cfg: the architecture; kept as ``self.cfg`` so a checkpoint can rebuild the model.
    """

    def __init__(self, cfg: MCNNConfig):
        super().__init__()
        if 2 ** cfg.n_layers != cfg.hop_length:
            raise ValueError(f"MCNNConfig: 2 ** n_layers = {2 ** cfg.n_layers} must equal hop_length "
                             f"{cfg.hop_length}")
        if len(cfg.channels) != cfg.n_layers - 1:
            raise ValueError(f"MCNNConfig.channels: need n_layers - 1 = {cfg.n_layers - 1} widths, "
                             f"got {len(cfg.channels)}")
        self.cfg = cfg
        self.n_heads = int(cfg.n_heads)
        self.hop_length = int(cfg.hop_length)
        pad, out_pad = doubling_padding(cfg.kernel)
        H = self.n_heads
        widths = [int(cfg.n_mels)] + [int(c) for c in cfg.channels] + [2]
        layers: list[nn.Module] = []
        for i in range(cfg.n_layers):
            c_in = widths[i] if i == 0 else widths[i] * H
            layers.append(nn.ConvTranspose1d(c_in, widths[i + 1] * H, cfg.kernel, stride=2, padding=pad,
                                             output_padding=out_pad, groups=1 if i == 0 else H, bias=False))
            if i < cfg.n_layers - 1:
                layers.append(nn.ELU())
        self.body = nn.Sequential(*layers)
        self.head_scale = nn.Parameter(torch.ones(H))
        self.squash = ScaledSoftsign()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Variance-preserving init: a stride-2 transposed conv sums ``c_in · kernel / 2`` products per output
        sample, so weights ~ N(0, 1 / (c_in · kernel / 2)). (PyTorch's default, computed from the transposed
        weight shape, shrinks the signal layer after layer and starts the output near silence.)"""
        for m in self.body:
            if isinstance(m, nn.ConvTranspose1d):
                fan = (m.in_channels // m.groups) * m.kernel_size[0] / 2
                nn.init.normal_(m.weight, 0.0, 1.0 / math.sqrt(fan))

    def forward(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Invert a linear Mel spectrogram.

        Args:
            mel: (B, n_mels, T) linear (not log, not standardised) Mel magnitudes.
        Returns:
            wave: (B, T · hop) before masking; mask_logits: (B, T · hop).
        """
        y = self.body(mel)
        y = y.view(y.shape[0], self.n_heads, 2, y.shape[-1])
        wave = (y[:, :, 0] * self.head_scale[None, :, None]).sum(dim=1)
        return self.squash(wave), y[:, :, 1].sum(dim=1)

    @torch.jit.export
    def infer(self, mel: torch.Tensor) -> torch.Tensor:
        """The playable output: the wave through :func:`gate` (the trained soft mask with a release).

        Args:
            mel: (B, n_mels, T) linear Mel.
        Returns:
            (B, T · hop) waveform.
        """
        wave, logits = self.forward(mel)
        return gate(wave, logits, self.hop_length)
