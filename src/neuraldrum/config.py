"""Typed configuration for audio, Mel analysis, models and training.

Every model saves the configs it was built with, so a checkpoint or a bundle is enough to rebuild it.
Presets are plain factory functions (``tiny``, ``cpu``, ``paper``), not a config framework.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, asdict
from typing import Any, Optional

from .taxonomy import CLASSES


@dataclass(frozen=True)
class AudioConfig:
    """How clips are stored: mono, fixed rate, fixed length (onset at sample 0)."""

    sample_rate: int = 22050
    n_samples: int = 22016  # 86 hops of 256: just under 1 s, a whole number of hops
    fade_ms: float = 10.0  # fade-out applied where a longer sound is cut
    max_seconds: float = 60.0  # longer input files are refused as "absurdly long"


@dataclass(frozen=True)
class MelConfig:
    """Every parameter of the Mel front end; stored with any model that uses it."""

    sample_rate: int = 22050
    n_fft: int = 2048
    win_length: int = 1024
    hop_length: int = 256
    window: str = "hann"
    n_mels: int = 128
    fmin: float = 0.0
    fmax: Optional[float] = None  # None = Nyquist
    mel_scale: str = "slaney"  # "slaney" or "htk"
    norm: Optional[str] = "slaney"  # filterbank normalisation: "slaney" or None
    power: float = 1.0  # 1 = magnitude, 2 = power
    log_floor: float = 1e-5  # log(max(mel, floor))

    def n_frames(self, n_samples: int) -> int:
        """Frames of a centred (zero-padded) STFT of ``n_samples``."""
        return 1 + n_samples // self.hop_length


@dataclass(frozen=True)
class WAEConfig:
    """Conditional convolutional Wasserstein autoencoder (encoder → 64-d z → decoder)."""

    n_classes: int = len(CLASSES)
    n_mels: int = 128
    n_frames: int = 87
    channels: tuple = (32, 64, 128)
    kernel: tuple = (11, 5)
    stride: tuple = (3, 2)
    padding: tuple = (5, 2)
    hidden: tuple = (1024, 512)
    latent_dim: int = 64
    beta: float = 10.0  # weight of the per-class MMD
    mmd_scales: tuple = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


@dataclass(frozen=True)
class MCNNConfig:
    """Multi-head CNN inverter: Mel (B, n_mels, T) → waveform (B, T · hop)."""

    n_mels: int = 128
    n_heads: int = 8
    n_layers: int = 8  # 2 ** n_layers must equal the hop length
    channels: tuple = (128, 128, 64, 64, 32, 32, 16)  # output channels of layers 1..L-1; layer L emits 2 (wave, mask)
    kernel: int = 13
    hop_length: int = 256
    sc_weight: float = 3.0
    logmel_weight: float = 10.0
    mask_weight: float = 1.0
    support_db: float = -60.0  # the mask target: a clip is "on" up to its last sample above peak + this


@dataclass(frozen=True)
class AugmentConfig:
    """On-the-fly audio augmentation while training; each part switchable."""

    pitch: bool = True
    pitch_prob: float = 0.5
    pitch_semitones: float = 2.0  # uniform in ± this
    gain: bool = True  # MCNN only (the WAE sees peak-normalised clips)
    gain_db: float = 12.0  # attenuation uniform in [-gain_db, 0]
    filter: bool = True
    filter_prob: float = 0.3
    shelf_db: float = 6.0  # low/high shelf gain uniform in ± this

    def off(self) -> "AugmentConfig":
        """The same settings with every part switched off."""
        return dataclasses.replace(self, pitch=False, gain=False, filter=False)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation, schedule, logging and augmentation of one training run (steps, not epochs).

    The WAE uses ``batch_per_class`` (a class-balanced global batch); the MCNN uses ``batch_size``.
    Under DDP these are global batch sizes, split over the processes.
    """

    lr: float = 1e-3
    batch_per_class: int = 8  # WAE: clips per class per batch (class-balanced)
    batch_size: int = 32  # MCNN: clips per batch
    max_steps: int = 20000
    val_every: int = 250
    ckpt_every: int = 250
    log_every: int = 10
    plateau_patience: int = 10  # validations without improvement before the lr is cut
    plateau_factor: float = 0.5
    early_stop_patience: int = 40  # validations without improvement before stopping
    min_lr: float = 1e-6
    grad_clip: float = 0.0  # max global gradient norm; 0 = off
    val_max_clips: int = 512  # validate on at most this many clips of the "val" split (a fixed subset)
    seed: int = 0
    num_threads: int = 0  # 0 = torch default
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    # share of each class's training draws (WAE; of each batch for the MCNN) taken from synthesised clips
    # (DrumSynth renders); None = in proportion to their number
    synthetic_share: Optional[float] = None


def check_shapes(audio: AudioConfig, mel: MelConfig, wae: Optional[WAEConfig] = None,
                 mcnn: Optional[MCNNConfig] = None, classifier: Any = None) -> None:
    """The one place where the numbers every part derives from the audio and Mel configs are checked: sample
    rate, Mel bins, hop and frames (``mel.n_frames(audio.n_samples)``). ValueError naming the fields that
    disagree. ``classifier`` is any config with ``n_mels`` and ``n_frames``."""
    frames = mel.n_frames(audio.n_samples)
    bad = []
    if mel.sample_rate != audio.sample_rate:
        bad.append(f"mel.sample_rate {mel.sample_rate} ≠ audio.sample_rate {audio.sample_rate}")
    for name, c in (("wae", wae), ("classifier", classifier)):
        if c is not None and (c.n_mels, c.n_frames) != (mel.n_mels, frames):
            bad.append(f"{name} (n_mels, n_frames) = ({c.n_mels}, {c.n_frames}) ≠ the Mel's ({mel.n_mels}, {frames})")
    if mcnn is not None and (mcnn.n_mels, mcnn.hop_length) != (mel.n_mels, mel.hop_length):
        bad.append(f"mcnn (n_mels, hop_length) = ({mcnn.n_mels}, {mcnn.hop_length}) ≠ the Mel's "
                   f"({mel.n_mels}, {mel.hop_length})")
    if bad:
        raise ValueError("the configs disagree: " + "; ".join(bad))


def to_dict(cfg: Any) -> dict:
    """A dataclass as JSON-friendly dict (tuples become lists)."""
    return asdict(cfg)


def from_dict(cls: type, d: dict) -> Any:
    """Rebuild a config dataclass from :func:`to_dict` output; unknown keys are an error."""
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(d) - set(names)
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown field(s) {sorted(unknown)}")
    kwargs = {}
    for k, v in d.items():
        if k == "augment" and isinstance(v, dict):
            v = from_dict(AugmentConfig, v)
        elif isinstance(v, list):
            v = tuple(v)
        kwargs[k] = v
    return cls(**kwargs)


# ---------------------------------------------------------------- presets

@dataclass(frozen=True)
class Preset:
    name: str
    audio: AudioConfig
    mel: MelConfig
    wae: WAEConfig
    mcnn: MCNNConfig
    train_wae: TrainConfig
    train_mcnn: TrainConfig


def _mel_and_frames(n_mels: int) -> tuple[AudioConfig, MelConfig, int]:
    audio = AudioConfig()
    mel = MelConfig(sample_rate=audio.sample_rate, n_mels=n_mels)
    return audio, mel, mel.n_frames(audio.n_samples)


def tiny() -> Preset:
    """Seconds per epoch on a laptop CPU; what the tests use."""
    audio, mel, T = _mel_and_frames(32)
    return Preset(
        "tiny", audio, mel,
        WAEConfig(n_mels=32, n_frames=T, channels=(4, 8, 8), hidden=(64, 32), latent_dim=8),
        MCNNConfig(n_mels=32, n_heads=2, channels=(8, 8, 4, 4, 4, 4, 2)),
        TrainConfig(lr=2e-3, batch_per_class=4, batch_size=8, max_steps=200, val_every=50, ckpt_every=50),
        TrainConfig(lr=1e-3, batch_size=8, max_steps=200, val_every=50, ckpt_every=50,
                    plateau_factor=0.2),
    )


def cpu() -> Preset:
    """The default model's size: good quality from about two hours of training on 2 CPU cores (both models)."""
    audio, mel, T = _mel_and_frames(128)
    return Preset(
        "cpu", audio, mel,
        WAEConfig(n_mels=128, n_frames=T, channels=(32, 64, 32), hidden=(512, 256), latent_dim=64),
        MCNNConfig(n_mels=128, n_heads=4, channels=(96, 64, 48, 32, 24, 16, 8)),
        # measured on 2 cores: ~0.28 s a step each, so ~45 min (WAE) + ~70 min (MCNN)
        TrainConfig(lr=1e-3, batch_per_class=6, max_steps=10000, val_every=200, ckpt_every=200,
                    early_stop_patience=20),
        TrainConfig(lr=3e-4, batch_size=16, max_steps=15000, val_every=250, ckpt_every=250,
                    plateau_factor=0.2, early_stop_patience=20, val_max_clips=256),
    )


def paper() -> Preset:
    """The paper's sizes: 512 Mel bins, 64 clips per class per batch, 8 heads × 8 layers."""
    audio, mel, T = _mel_and_frames(512)
    return Preset(
        "paper", audio, mel,
        WAEConfig(n_mels=512, n_frames=T, channels=(32, 64, 128), hidden=(1024, 512), latent_dim=64),
        MCNNConfig(n_mels=512, n_heads=8, channels=(512, 256, 128, 64, 32, 16, 8)),
        TrainConfig(lr=1e-3, batch_per_class=64, max_steps=100000),
        TrainConfig(lr=1e-4, batch_size=128, max_steps=100000, plateau_factor=0.2),
    )


PRESETS = {"tiny": tiny, "cpu": cpu, "paper": paper}


def preset(name: str) -> Preset:
    try:
        return PRESETS[name]()
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}") from None
