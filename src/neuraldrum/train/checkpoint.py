"""Training checkpoints: one ``torch.save`` dict, written atomically, enough to rebuild its model.

Layout (format 1)::

    {"format": 1, "kind": "neuraldrum-checkpoint", "task": "wae" | "mcnn", "version": "0.1.0",
     "preset": "cpu", "classes": [...],
     "configs": {"audio": {...}, "mel": {...}, "model": {...}, "train": {...}},   # to_dict of the dataclasses
     "model": state_dict,
     "standardiser": {"mean": (n_mels, T), "std": (n_mels, T), "eps": float} | None,   # WAE only
     "optimizer": ..., "scheduler": ..., "loop": {"step", "best", "best_step", "bad"},
     "rng": {"python", "numpy", "torch", "cuda"}, "corpus": Corpus.summary(), "metrics": {...}}

It holds only tensors and plain Python values, so it loads with ``torch.load(weights_only=True)``.
Use :func:`load_checkpoint`, then :func:`build_model_from_checkpoint` (and for the WAE
:func:`build_standardiser_from_checkpoint`, :func:`build_frontend_from_checkpoint`).
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
from torch import nn

from ..atomic import atomic_file
from ..audio.mel import MelFrontend, Standardiser
from ..config import AudioConfig, MCNNConfig, MelConfig, TrainConfig, VocosConfig, WAEConfig, from_dict
from ..models import build_model

CHECKPOINT_FORMAT = 1
CHECKPOINT_KIND = "neuraldrum-checkpoint"
MODEL_CONFIGS = {"wae": WAEConfig, "mcnn": MCNNConfig, "vocos": VocosConfig, "vocos_gan": VocosConfig}


class CheckpointError(ValueError):
    pass


def save_checkpoint(obj: dict, path: Union[str, Path]) -> None:
    """``torch.save`` to a temporary file in the same folder, flushed to disk, then renamed onto ``path``."""
    with atomic_file(path, fsync=True) as tmp:
        torch.save(obj, tmp)


def load_checkpoint(path: Union[str, Path], map_location: Union[str, torch.device] = "cpu") -> dict:
    """Read a checkpoint (``weights_only=True``: no arbitrary unpickling) and check its format.

    Raises:
        CheckpointError: not a neuraldrum checkpoint, or an unknown format version.
        FileNotFoundError: no such file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        raise CheckpointError(f"{path}: not a readable checkpoint ({e.__class__.__name__}: {e})") from None
    if not isinstance(ckpt, dict) or ckpt.get("kind") != CHECKPOINT_KIND:
        raise CheckpointError(f"{path}: not a neuraldrum checkpoint")
    if ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: checkpoint format {ckpt.get('format')!r}; this version reads "
                              f"{CHECKPOINT_FORMAT}")
    if ckpt.get("task") not in MODEL_CONFIGS:
        raise CheckpointError(f"{path}: unknown task {ckpt.get('task')!r}")
    if ckpt.get("task") in ("vocos", "vocos_gan") and "istft.window" not in ckpt.get("model", {}):
        # the first Vocos-style runs (2026-11-27) did not save the inverse STFT's fixed Hann window
        n_fft = int(ckpt["configs"]["model"]["n_fft"])
        ckpt["model"]["istft.window"] = torch.hann_window(n_fft, periodic=True)
    return ckpt


def run_checkpoint(run: Union[str, Path]) -> Path:
    """A run folder's best checkpoint (best.pt, else last.pt), or ``run`` itself when it is a file."""
    run = Path(run)
    if run.is_file():
        return run
    for name in ("best.pt", "last.pt"):
        if (run / name).is_file():
            return run / name
    raise FileNotFoundError(f"{run}: no checkpoint (no best.pt or last.pt in this run folder)")


def checkpoint_configs(ckpt: dict) -> dict[str, Any]:
    """The config dataclasses of a checkpoint: {"audio", "mel", "model", "train"}."""
    c = ckpt["configs"]
    return {"audio": from_dict(AudioConfig, c["audio"]), "mel": from_dict(MelConfig, c["mel"]),
            "model": from_dict(MODEL_CONFIGS[ckpt["task"]], c["model"]), "train": from_dict(TrainConfig, c["train"])}


def build_model_from_checkpoint(ckpt: dict) -> nn.Module:
    """The checkpoint's model (ConditionalWAE or MCNN) with its weights, in eval mode, on the CPU."""
    cfgs = checkpoint_configs(ckpt)
    model = build_model(ckpt["task"], cfgs["model"], cfgs["mel"])
    model.load_state_dict(ckpt["model"])
    return model.eval()


def build_standardiser_from_checkpoint(ckpt: dict) -> Standardiser:
    """The WAE's log-Mel standardiser (training-set statistics)."""
    st = ckpt.get("standardiser")
    if not st:
        raise CheckpointError(f"a {ckpt['task']} checkpoint holds no standardiser statistics")
    return Standardiser(st["mean"].shape[0], st["mean"].shape[1], st["mean"], st["std"], st["eps"])


def build_frontend_from_checkpoint(ckpt: dict) -> MelFrontend:
    """The Mel front end the model was trained with."""
    return MelFrontend(checkpoint_configs(ckpt)["mel"])


# ---------------------------------------------------------------- RNG state (plain values only)

def rng_state() -> dict:
    """Python, NumPy and torch (CPU and CUDA) RNG states as tensors / plain values."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"python": random.getstate(),
            "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                      "has_gauss": int(has_gauss), "cached": float(cached)},
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` saved."""
    random.setstate(_as_tuple(state["python"]))
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].cpu().numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(state["torch"].cpu())
    if state.get("cuda") and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def _as_tuple(x: Any) -> Any:
    return tuple(_as_tuple(v) for v in x) if isinstance(x, (list, tuple)) else x
