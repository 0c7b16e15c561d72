"""A small drum classifier on log-Mel spectrograms.

It is trained apart from the generator, on the real train split, and serves two roles: the engine uses it
to say what class an encoded sample is, and evaluation uses it as a listener that judges generated sounds
(class accuracy, and its embedding for Fréchet distance).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..taxonomy import CLASSES


@dataclass(frozen=True)
class ClassifierConfig:
    n_mels: int = 128
    n_frames: int = 87
    n_classes: int = len(CLASSES)
    channels: tuple = (16, 32, 64, 96)
    embed_dim: int = 128
    dropout: float = 0.3


class DrumClassifier(nn.Module):
    """log-Mel (B, n_mels, T) → class logits (B, n_classes).

    The input is normalised per Mel bin with statistics stored as buffers (``bin_mean``, ``bin_std``,
    each (n_mels, 1)), so the model takes the plain log-Mel of :class:`~neuraldrum.audio.mel.MelFrontend`.
    """

    def __init__(self, cfg: ClassifierConfig):
        super().__init__()
        self.cfg = cfg
        self.register_buffer("bin_mean", torch.zeros(cfg.n_mels, 1))
        self.register_buffer("bin_std", torch.ones(cfg.n_mels, 1))
        layers: list[nn.Module] = []
        c_in = 1
        for c in cfg.channels:
            layers += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(),
                       nn.MaxPool2d(2, ceil_mode=True)]
            c_in = c
        self.features = nn.Sequential(*layers)
        self.embed_head = nn.Sequential(nn.Linear(2 * c_in, cfg.embed_dim), nn.ReLU())
        self.drop = nn.Dropout(cfg.dropout)
        self.out = nn.Linear(cfg.embed_dim, cfg.n_classes)

    def embed(self, logmel: torch.Tensor) -> torch.Tensor:
        """(B, n_mels, T) log-Mel → (B, embed_dim) embedding (the penultimate layer)."""
        x = ((logmel - self.bin_mean) / self.bin_std).unsqueeze(1)
        h = self.features(x)
        pooled = torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1)
        return self.embed_head(pooled)

    def forward(self, logmel: torch.Tensor) -> torch.Tensor:
        """(B, n_mels, T) log-Mel → (B, n_classes) logits."""
        return self.out(self.drop(self.embed(logmel)))
