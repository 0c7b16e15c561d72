"""Building blocks shared by the models: class-conditional batch norm and the scaled softsign."""
from __future__ import annotations

import torch
from torch import nn


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm2d without its own affine part, followed by a per-class scale and shift (FiLM).

    Args:
        n_features: channels C.
        n_classes: number of classes; the class id picks one row of each embedding.
    """

    def __init__(self, n_features: int, n_classes: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(n_features, affine=False)
        self.scale = nn.Embedding(n_classes, n_features)
        self.shift = nn.Embedding(n_classes, n_features)
        nn.init.ones_(self.scale.weight)
        nn.init.zeros_(self.shift.weight)

    def forward(self, x: torch.Tensor, cls: torch.Tensor) -> torch.Tensor:
        """Normalise, then scale and shift by class.

        Args:
            x: (B, C, H, W) features.
            cls: (B,) long class ids.
        Returns:
            (B, C, H, W)
        """
        h = self.bn(x)
        return h * self.scale(cls)[:, :, None, None] + self.shift(cls)[:, :, None, None]


class ScaledSoftsign(nn.Module):
    """``a · x / (1 + |b · x|)`` with trainable scalars ``a`` and ``b`` (both start at 1)."""

    def __init__(self):
        super().__init__()
        self.a = nn.Parameter(torch.ones(()))
        self.b = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Elementwise; any shape."""
        return self.a * x / (1.0 + torch.abs(self.b * x))


def conv_out_size(n: int, kernel: int, stride: int, padding: int) -> int:
    """Output length of a Conv along one axis."""
    return (n + 2 * padding - kernel) // stride + 1


def transpose_output_padding(n_in: int, target: int, kernel: int, stride: int, padding: int) -> int:
    """The ``output_padding`` that makes a ConvTranspose map ``n_in`` to ``target`` (or as near as it can
    from below; the caller crops any excess)."""
    base = (n_in - 1) * stride - 2 * padding + kernel
    return max(0, min(stride - 1, target - base))
