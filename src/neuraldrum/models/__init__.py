"""The models: the conditional WAE (Mel generator) and the MCNN (Mel → waveform inverter).

Only what making sound needs lives here; losses and optimisers are in :mod:`neuraldrum.train`.
"""
from __future__ import annotations

from typing import Optional, Union

from torch import nn

from ..config import MCNNConfig, MelConfig, VocosConfig, WAEConfig
from .blocks import ConditionalBatchNorm2d, ScaledSoftsign
from .mcnn import MCNN
from .vocos import VocosInverter
from .wae import ConditionalWAE

TASKS = ("wae", "mcnn", "vocos", "vocos_gan")
INVERTERS = ("mcnn", "vocos")  # the kinds of Mel → waveform inverter a bundle may hold


def build_model(task: str, cfg: Union[WAEConfig, MCNNConfig, VocosConfig], mel: Optional[MelConfig] = None
                ) -> nn.Module:
    """A fresh model for ``task`` ("wae", "mcnn", "vocos" or "vocos_gan": the same inverter) from its config,
    whose layer settings are checked first (:func:`neuraldrum.config.check_layers`: a ValueError naming the field,
    not an error from deep inside torch). ``mel``: the Mel settings, which an inverter with ``mel_match`` or ``gl_iters``
    needs."""
    from ..config import check_layers

    kind = {WAEConfig: "wae", MCNNConfig: "mcnn", VocosConfig: "vocos"}.get(type(cfg))
    if kind is not None:
        check_layers(**{kind: cfg})
    if task == "wae":
        return ConditionalWAE(cfg)
    if task == "mcnn":
        return MCNN(cfg)
    if task in ("vocos", "vocos_gan"):
        return VocosInverter(cfg, mel)
    raise ValueError(f"unknown model {task!r}; choose from {TASKS}")


def n_parameters(model: nn.Module) -> int:
    """Number of parameters (buffers excluded)."""
    return sum(p.numel() for p in model.parameters())


__all__ = ["ConditionalWAE", "MCNN", "VocosInverter", "INVERTERS",
           "ConditionalBatchNorm2d", "ScaledSoftsign", "build_model", "n_parameters",
           "TASKS"]
