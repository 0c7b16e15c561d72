"""Training: one plain loop (:mod:`.loop`), the two tasks (:mod:`.tasks`), losses, DDP support, checkpoints.

Public API::

    train(task, data, out, preset="cpu", *, resume=False, steps=None, ...) -> dict   # run a training
    load_checkpoint(path) -> dict                      # weights_only load + format check
    build_model_from_checkpoint(ckpt) -> nn.Module     # ConditionalWAE or MCNN, weights loaded, eval mode
    build_standardiser_from_checkpoint(ckpt)           # WAE: log-Mel statistics
    build_frontend_from_checkpoint(ckpt)               # the MelFrontend the model was trained with
    checkpoint_configs(ckpt) -> {"audio", "mel", "model", "train"} dataclasses

The loop itself is imported lazily so that reading a checkpoint needs neither tqdm nor the data pipeline.
"""
from __future__ import annotations

from .checkpoint import (CheckpointError, build_frontend_from_checkpoint, build_model_from_checkpoint,
                         build_standardiser_from_checkpoint, checkpoint_configs, load_checkpoint, save_checkpoint)


def train(*args, **kwargs) -> dict:
    """See :func:`neuraldrum.train.loop.train`."""
    from .loop import train as _train

    return _train(*args, **kwargs)


__all__ = ["train", "load_checkpoint", "save_checkpoint", "build_model_from_checkpoint",
           "build_standardiser_from_checkpoint", "build_frontend_from_checkpoint", "checkpoint_configs",
           "CheckpointError"]
