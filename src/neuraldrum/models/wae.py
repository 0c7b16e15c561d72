"""Conditional convolutional Wasserstein autoencoder (the paper's generator).

Encoder: 3 × [Conv2d k(11,5) s(3,2) p(5,2) → class-conditional BatchNorm → ReLU] → flatten → FC hidden
(ReLU) → z (deterministic, as in a WAE). Decoder mirrors it: [z ; one-hot class] → FC (ReLU) → reshape →
3 ConvTranspose2d with conditional BN + ReLU between them and none on the output → crop to
(n_mels, n_frames).

Inputs are standardised log-Mel spectrograms (see :class:`neuraldrum.audio.mel.Standardiser`); the
class id is always an explicit argument. The module holds only what making sound needs; the loss lives in
:mod:`neuraldrum.train.losses`.
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from ..config import WAEConfig
from .blocks import ConditionalBatchNorm2d, conv_out_size, transpose_output_padding


class _EncoderBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, n_classes: int, cfg: WAEConfig):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, cfg.kernel, cfg.stride, cfg.padding, bias=False)
        self.norm = ConditionalBatchNorm2d(c_out, n_classes)

    def forward(self, x: torch.Tensor, cls: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.conv(x), cls))


class _DecoderBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, n_classes: int, cfg: WAEConfig, out_pad: tuple[int, int]):
        super().__init__()
        self.conv = nn.ConvTranspose2d(c_in, c_out, cfg.kernel, cfg.stride, cfg.padding,
                                       output_padding=out_pad, bias=False)
        self.norm = ConditionalBatchNorm2d(c_out, n_classes)

    def forward(self, x: torch.Tensor, cls: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.conv(x), cls))


def _mlp(sizes: list[int], last_relu: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2 or last_relu:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class ConditionalWAE(nn.Module):
    """Class-conditional convolutional WAE on (n_mels, n_frames) log-Mel spectrograms.

    Args:
        cfg: the architecture; kept as ``self.cfg`` so a checkpoint can rebuild the model.
    """

    def __init__(self, cfg: WAEConfig):
        super().__init__()
        self.cfg = cfg
        self.n_mels = int(cfg.n_mels)
        self.n_frames = int(cfg.n_frames)
        self.n_classes = int(cfg.n_classes)
        self.latent_dim = int(cfg.latent_dim)
        if len(cfg.channels) < 1:
            raise ValueError("WAEConfig.channels: need at least one conv layer")

        # spatial sizes through the encoder: sizes[0] is the input, sizes[i + 1] after conv i
        sizes = [(self.n_mels, self.n_frames)]
        for _ in cfg.channels:
            h, w = sizes[-1]
            sizes.append((conv_out_size(h, cfg.kernel[0], cfg.stride[0], cfg.padding[0]),
                          conv_out_size(w, cfg.kernel[1], cfg.stride[1], cfg.padding[1])))
        if min(sizes[-1]) < 1:
            raise ValueError(f"WAEConfig: input ({self.n_mels}, {self.n_frames}) is too small for "
                             f"{len(cfg.channels)} strided convs")
        self.bottleneck = (int(cfg.channels[-1]), sizes[-1][0], sizes[-1][1])
        flat = self.bottleneck[0] * self.bottleneck[1] * self.bottleneck[2]

        chans = [1] + list(cfg.channels)
        self.enc = nn.ModuleList([_EncoderBlock(chans[i], chans[i + 1], self.n_classes, cfg)
                                  for i in range(len(cfg.channels))])
        self.enc_fc = _mlp([flat] + list(cfg.hidden) + [self.latent_dim], last_relu=False)

        self.dec_fc = _mlp([self.latent_dim + self.n_classes] + list(cfg.hidden)[::-1] + [flat], last_relu=True)
        blocks = []
        for i in range(len(cfg.channels) - 1, 0, -1):  # mirror: channels[i] → channels[i-1], back to sizes[i]
            pad = self._out_pad(sizes[i + 1], sizes[i])
            blocks.append(_DecoderBlock(chans[i + 1], chans[i], self.n_classes, cfg, pad))
        self.dec = nn.ModuleList(blocks)
        self.dec_out = nn.ConvTranspose2d(chans[1], 1, cfg.kernel, cfg.stride, cfg.padding,
                                          output_padding=self._out_pad(sizes[1], sizes[0]))

    def _out_pad(self, n_in: tuple[int, int], target: tuple[int, int]) -> tuple[int, int]:
        c = self.cfg
        return (transpose_output_padding(n_in[0], target[0], c.kernel[0], c.stride[0], c.padding[0]),
                transpose_output_padding(n_in[1], target[1], c.kernel[1], c.stride[1], c.padding[1]))

    @torch.jit.export
    def encode(self, x: torch.Tensor, cls: torch.Tensor) -> torch.Tensor:
        """Standardised log-Mel → latent code.

        Args:
            x: (B, n_mels, n_frames) standardised log-Mel.
            cls: (B,) long class ids.
        Returns:
            z: (B, latent_dim)
        """
        h = x.unsqueeze(1)
        for blk in self.enc:
            h = blk(h, cls)
        return self.enc_fc(h.flatten(1))

    @torch.jit.export
    def decode(self, z: torch.Tensor, cls: torch.Tensor) -> torch.Tensor:
        """Latent code → standardised log-Mel.

        Args:
            z: (B, latent_dim)
            cls: (B,) long class ids.
        Returns:
            (B, n_mels, n_frames) standardised log-Mel.
        """
        onehot = F.one_hot(cls, self.n_classes).to(z.dtype)
        h = self.dec_fc(torch.cat([z, onehot], dim=1))
        h = h.view(h.shape[0], self.bottleneck[0], self.bottleneck[1], self.bottleneck[2])
        for blk in self.dec:
            h = blk(h, cls)
        h = self.dec_out(h)
        return h[:, 0, : self.n_mels, : self.n_frames]

    def forward(self, x: torch.Tensor, cls: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode and decode.

        Args:
            x: (B, n_mels, n_frames) standardised log-Mel.
            cls: (B,) long class ids.
        Returns:
            recon: (B, n_mels, n_frames), z: (B, latent_dim)
        """
        z = self.encode(x, cls)
        return self.decode(z, cls), z

