"""Typed configuration for audio, Mel analysis, models and training.

Every model saves the configs it was built with, so a checkpoint or a bundle is enough to rebuild it.
Presets are plain factory functions (``tiny``, ``cpu``, ``paper``), not a config framework.
"""
from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field, asdict
from pathlib import Path
from typing import Any, Optional, Union

from .taxonomy import CLASSES


@dataclass(frozen=True)
class AudioConfig:
    """How clips are stored: mono, fixed rate, fixed length (onset at sample 0)."""

    sample_rate: int = 22050
    n_samples: int = 22016  # 86 hops of 256: just under 1 s, a whole number of hops
    fade_ms: float = 10.0  # fade-out applied where a longer sound is cut
    fade_shape: str = "cosine"  # "cosine" (a quick cut) or "decay" (falls 60 dB, for sounds still ringing)
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
class VocosConfig:
    """Frame-rate inverter in the manner of Vocos: Mel (B, n_mels, T) → ConvNeXt blocks over frames → per frame
    ``hop_length / istft_hop`` complex STFT frames (log-magnitude and phase) → inverse STFT. Its cost is per frame,
    not per sample, so it stays cheap at 44.1 kHz.

    Trained on a multi-resolution STFT loss (spectral convergence + log-magnitude L1 at each ``resolutions``
    triple) plus ``mel_weight`` · log-Mel L1, plus ``phase_weight`` · phase losses against the clip's own STFT;
    with ``adv_weight`` > 0 also against multi-resolution spectrogram discriminators (hinge loss) with feature
    matching (``fm_weight``)."""

    n_mels: int = 128
    dim: int = 192
    hidden: int = 576
    n_layers: int = 8
    kernel: int = 7
    hop_length: int = 512  # the Mel hop
    n_fft: int = 1024  # of the inverse STFT (a multiple of istft_hop)
    istft_hop: int = 256  # hop_length / istft_hop STFT frames per Mel frame
    layer_scale: float = 0.1
    mel_prior: bool = True  # the head predicts log-magnitudes relative to the Mel's pseudo-inverse (see models.vocos)
    # the head predicts each frame's phase advance beyond the bin's own (see models.vocos); measured worse at 22.05 kHz
    # (validation loss 1.40 vs 1.17 after 750 steps, 2026-11-27), so off
    phase_advance: bool = False
    phase_offset: int = 0  # > 0: plus each frame's own phase term from a head of this rank (see models.vocos)
    # rounds of Mel matching after the inverse STFT (see models.vocos.MelMatch): each round scales the output's
    # STFT on the Mel's own grid, band by band and frame by frame, towards the Mel it was asked for; 0: none
    mel_match: int = 0
    # > 0: each round of Mel matching from the third extrapolates the output's STFT by this share of its change
    # since the round before (fast Griffin-Lim's momentum; see models.vocos.MelMatch); 0: plain rounds
    mel_match_momentum: float = 0.0
    # > 0: then this many fast Griffin-Lim iterations on the Mel's grid, started from the output so far, towards the
    # magnitudes the Mel implies (see models.vocos.GriffinLimSteps); 0: none. gl_momentum: their momentum
    gl_iters: int = 0
    gl_momentum: float = 0.99
    resolutions: tuple = (512, 128, 512, 1024, 256, 1024, 2048, 512, 2048)  # (n_fft, hop, win) triples, flat
    mel_weight: float = 1.0
    # > 0: plus this · the magnitude-weighted phase losses on the inverse STFT's own grid (losses.phase_losses)
    phase_weight: float = 0.0
    adv_weight: float = 0.0  # 0: no discriminators
    fm_weight: float = 2.0
    disc_channels: int = 32


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
    # inverters: also train on the corpus's unlabelled pool (``data build --pool``) when it has one
    use_pool: bool = True


# sane ranges of the audio and Mel settings a model may come with; what lies outside is refused before anything is
# allocated from it (a bundle's bundle.json is data from elsewhere)
SAMPLE_RATES = (8000, 192000)
MAX_CLIP_SECONDS = 10.0
MAX_N_FFT = 16384
MAX_N_MELS = 1024


def _whole(x: Any, lo: int, hi: int) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and lo <= x <= hi


# the default model's ONNX graphs, shipped in the package beside its bundle (``make graphs`` remakes them)
DEFAULT_EXPORT = Path(__file__).resolve().parent / "assets" / "default-onnx"
MAX_GL_ITERS = 64  # Griffin-Lim iterations after an inverter (VocosConfig.gl_iters, hi-fi rendering), at most
# hi-fi rendering's Griffin-Lim iterations: after the default inverter, 24 beat librosa's Griffin-Lim 32 on every
# fidelity measure of the validation split (STFT SC 0.328 vs 0.344, LSD 4.21 vs 4.27 dB, MR-STFT 0.815 vs 0.855) at
# a third of its time; 32 were no better (2026-11-28, README)
HIFI_ITERS = 24


def gl_iters_ok(x: Any) -> bool:
    """A whole number of Griffin-Lim iterations from 0 to :data:`MAX_GL_ITERS` (not a bool)."""
    return _whole(x, 0, MAX_GL_ITERS)


def _number(x: Any, lo: float, hi: float, lo_open: bool = False) -> bool:
    return (isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
            and (lo < x if lo_open else lo <= x) and x <= hi)


def check_values(audio: AudioConfig, mel: MelConfig) -> None:
    """Types and sane ranges of the audio and Mel settings (a sample rate of 0, 10¹⁰ samples, a 10⁹-point FFT
    are refused here, before anything is sized from them). ValueError naming every field out of range."""
    sr_lo, sr_hi = SAMPLE_RATES
    bad = []

    def need(ok: bool, name: str, value: Any, what: str) -> None:
        if not ok:
            bad.append(f"{name} {value!r} must be {what}")

    need(_whole(audio.sample_rate, sr_lo, sr_hi), "audio.sample_rate", audio.sample_rate,
         f"a whole number of Hz from {sr_lo} to {sr_hi}")
    sr = audio.sample_rate if _whole(audio.sample_rate, sr_lo, sr_hi) else sr_hi
    need(_whole(audio.n_samples, 1, int(MAX_CLIP_SECONDS * sr)), "audio.n_samples", audio.n_samples,
         f"a whole number from 1 to {int(MAX_CLIP_SECONDS * sr)} ({MAX_CLIP_SECONDS:g} s)")
    need(_number(audio.fade_ms, 0.0, 1000.0), "audio.fade_ms", audio.fade_ms, "a number from 0 to 1000")
    need(audio.fade_shape in ("cosine", "decay"), "audio.fade_shape", audio.fade_shape, "'cosine' or 'decay'")
    need(_number(audio.max_seconds, 0.0, 3600.0, lo_open=True), "audio.max_seconds", audio.max_seconds,
         "a number in (0, 3600]")
    need(_whole(mel.sample_rate, sr_lo, sr_hi), "mel.sample_rate", mel.sample_rate,
         f"a whole number of Hz from {sr_lo} to {sr_hi}")
    need(_whole(mel.n_fft, 2, MAX_N_FFT), "mel.n_fft", mel.n_fft, f"a whole number from 2 to {MAX_N_FFT}")
    n_fft = mel.n_fft if _whole(mel.n_fft, 2, MAX_N_FFT) else MAX_N_FFT
    need(_whole(mel.win_length, 1, n_fft), "mel.win_length", mel.win_length, "a whole number from 1 to n_fft")
    need(_whole(mel.hop_length, 1, n_fft), "mel.hop_length", mel.hop_length, "a whole number from 1 to n_fft")
    need(_whole(mel.n_mels, 1, MAX_N_MELS), "mel.n_mels", mel.n_mels, f"a whole number from 1 to {MAX_N_MELS}")
    need(mel.window == "hann", "mel.window", mel.window, "'hann'")
    need(mel.mel_scale in ("slaney", "htk"), "mel.mel_scale", mel.mel_scale, "'slaney' or 'htk'")
    need(mel.norm in (None, "slaney"), "mel.norm", mel.norm, "'slaney' or null")
    nyquist = (mel.sample_rate if _whole(mel.sample_rate, sr_lo, sr_hi) else sr_hi) / 2
    need(_number(mel.fmin, 0.0, nyquist), "mel.fmin", mel.fmin, "a number from 0 to the Nyquist frequency")
    need(mel.fmax is None or (_number(mel.fmax, 0.0, nyquist, lo_open=True)
                              and (not _number(mel.fmin, 0.0, nyquist) or mel.fmax > mel.fmin)),
         "mel.fmax", mel.fmax, "null or a number above fmin, up to the Nyquist frequency")
    need(_number(mel.power, 0.0, 4.0, lo_open=True), "mel.power", mel.power, "a number in (0, 4]")
    need(_number(mel.log_floor, 0.0, 1.0, lo_open=True), "mel.log_floor", mel.log_floor, "a number in (0, 1]")
    if bad:
        raise ValueError("; ".join(bad))


MAX_WIDTH = 4096  # widest layer (channels, hidden units, latent size) a config may ask for


def _widths(x: Any, n_min: int, n_max: int, lo: int = 1) -> bool:
    return isinstance(x, tuple) and n_min <= len(x) <= n_max and all(_whole(v, lo, MAX_WIDTH) for v in x)


def check_layers(wae: Optional[WAEConfig] = None, mcnn: Optional[MCNNConfig] = None, classifier: Any = None,
                 vocos: Optional[VocosConfig] = None) -> None:
    """The layer settings of each model: counts, widths, kernels, strides, paddings are whole numbers of the
    right arity and range (a 3-number padding for a 2-d conv, a negative width, a 10⁹-unit layer are refused).
    ValueError naming every field out of range."""
    bad = []

    def need(ok: bool, name: str, value: Any, what: str) -> None:
        if not ok:
            bad.append(f"{name} {value!r:.60} must be {what}")

    w = f"whole numbers from 1 to {MAX_WIDTH}"
    if wae is not None:
        need(_widths(wae.channels, 1, 8), "wae.channels", wae.channels, f"1 to 8 {w}")
        need(_widths(wae.hidden, 0, 8), "wae.hidden", wae.hidden, f"0 to 8 {w}")
        for name in ("kernel", "stride"):
            need(_widths(getattr(wae, name), 2, 2), f"wae.{name}", getattr(wae, name), f"2 {w}")
        need(_widths(wae.padding, 2, 2, lo=0), "wae.padding", wae.padding, "2 whole numbers ≥ 0")
        need(_whole(wae.latent_dim, 1, MAX_WIDTH), "wae.latent_dim", wae.latent_dim, f"one of the {w}")
        need(_whole(wae.n_classes, 1, MAX_WIDTH), "wae.n_classes", wae.n_classes, f"one of the {w}")
    if mcnn is not None:
        need(_whole(mcnn.n_heads, 1, 64), "mcnn.n_heads", mcnn.n_heads, "a whole number from 1 to 64")
        need(_whole(mcnn.kernel, 1, 255), "mcnn.kernel", mcnn.kernel, "a whole number from 1 to 255")
        need(_widths(mcnn.channels, 0, 30), "mcnn.channels", mcnn.channels, f"0 to 30 {w}")
    if vocos is not None:
        for name in ("n_mels", "dim", "hidden"):
            need(_whole(getattr(vocos, name), 1, MAX_WIDTH), f"vocos.{name}", getattr(vocos, name), f"one of the {w}")
        need(_whole(vocos.n_layers, 0, 64), "vocos.n_layers", vocos.n_layers, "a whole number from 0 to 64")
        need(_whole(vocos.kernel, 1, 255) and vocos.kernel % 2 == 1, "vocos.kernel", vocos.kernel,
             "an odd whole number from 1 to 255")
        need(_whole(vocos.n_fft, 2, MAX_N_FFT), "vocos.n_fft", vocos.n_fft, f"a whole number from 2 to {MAX_N_FFT}")
        ok_hop = _whole(vocos.istft_hop, 1, MAX_N_FFT) and _whole(vocos.hop_length, 1, MAX_N_FFT)
        need(ok_hop and vocos.hop_length % vocos.istft_hop == 0 and vocos.hop_length // vocos.istft_hop <= 64,
             "vocos.istft_hop", vocos.istft_hop, "a divisor of hop_length (at most 64 STFT frames per Mel frame)")
        need(ok_hop and _whole(vocos.n_fft, 2, MAX_N_FFT) and vocos.n_fft % vocos.istft_hop == 0,
             "vocos.n_fft", vocos.n_fft, "a multiple of istft_hop")
        need(_whole(vocos.mel_match, 0, 16), "vocos.mel_match", vocos.mel_match, "a whole number from 0 to 16")
        need(_number(vocos.mel_match_momentum, 0.0, 0.999), "vocos.mel_match_momentum", vocos.mel_match_momentum,
             "a number from 0 to 0.999")
        need(gl_iters_ok(vocos.gl_iters), "vocos.gl_iters", vocos.gl_iters, f"a whole number from 0 to {MAX_GL_ITERS}")
        need(_number(vocos.gl_momentum, 0.0, 0.999), "vocos.gl_momentum", vocos.gl_momentum, "a number from 0 to 0.999")
        need(_whole(vocos.phase_offset, 0, MAX_WIDTH), "vocos.phase_offset", vocos.phase_offset,
             f"a whole number from 0 to {MAX_WIDTH} (0: none)")
        need(_widths(vocos.resolutions, 3, 30) and len(vocos.resolutions) % 3 == 0, "vocos.resolutions",
             vocos.resolutions, "(n_fft, hop, win) triples of whole numbers")
    if classifier is not None:
        need(_widths(classifier.channels, 1, 8), "classifier.channels", classifier.channels, f"1 to 8 {w}")
        need(_whole(classifier.embed_dim, 1, MAX_WIDTH), "classifier.embed_dim", classifier.embed_dim,
             f"one of the {w}")
        need(_whole(classifier.n_classes, 1, MAX_WIDTH), "classifier.n_classes", classifier.n_classes,
             f"one of the {w}")
    if bad:
        raise ValueError("; ".join(bad))


def check_shapes(audio: AudioConfig, mel: MelConfig, wae: Optional[WAEConfig] = None,
                 mcnn: Optional[MCNNConfig] = None, classifier: Any = None, n_classes: Optional[int] = None,
                 vocos: Optional[VocosConfig] = None) -> None:
    """The one place where the numbers every part derives from the audio and Mel configs are checked: first
    their types and ranges (:func:`check_values`, :func:`check_layers`), then sample rate, Mel bins, hop and frames
    (``mel.n_frames(audio.n_samples)``), the MCNN's layers against the hop, and the class count of each model
    against ``n_classes`` (the length of a class list) when given. ValueError naming the fields that disagree.
    ``classifier`` is any config with ``n_mels``, ``n_frames`` and ``n_classes``."""
    check_values(audio, mel)
    check_layers(wae, mcnn, classifier, vocos)
    frames = mel.n_frames(audio.n_samples)
    bad = []
    if mel.sample_rate != audio.sample_rate:
        bad.append(f"mel.sample_rate {mel.sample_rate} ≠ audio.sample_rate {audio.sample_rate}")
    for name, c in (("wae", wae), ("classifier", classifier)):
        if c is not None and (c.n_mels, c.n_frames) != (mel.n_mels, frames):
            bad.append(f"{name} (n_mels, n_frames) = ({c.n_mels}, {c.n_frames}) ≠ the Mel's ({mel.n_mels}, {frames})")
        if c is not None and n_classes is not None and c.n_classes != n_classes:
            bad.append(f"classes has {n_classes} names ≠ {name}.n_classes {c.n_classes!r}")
    if mcnn is not None and (mcnn.n_mels, mcnn.hop_length) != (mel.n_mels, mel.hop_length):
        bad.append(f"mcnn (n_mels, hop_length) = ({mcnn.n_mels}, {mcnn.hop_length}) ≠ the Mel's "
                   f"({mel.n_mels}, {mel.hop_length})")
    if vocos is not None and (vocos.n_mels, vocos.hop_length) != (mel.n_mels, mel.hop_length):
        bad.append(f"vocos (n_mels, hop_length) = ({vocos.n_mels}, {vocos.hop_length}) ≠ the Mel's "
                   f"({mel.n_mels}, {mel.hop_length})")
    if mcnn is not None and not (_whole(mcnn.n_layers, 1, 30) and 1 << mcnn.n_layers == mcnn.hop_length):
        bad.append(f"mcnn.n_layers {mcnn.n_layers!r}: 2 ** n_layers ≠ mcnn.hop_length {mcnn.hop_length!r}")
    if bad:
        raise ValueError("the configs disagree: " + "; ".join(bad))


def to_dict(cfg: Any) -> dict:
    """A dataclass as JSON-friendly dict (tuples become lists)."""
    return asdict(cfg)


MAX_TUPLE = 64  # longest list a config field may hold (layer widths, scales)


def _typed(cls: type, name: str, hint: Any, v: Any) -> Any:
    """``v`` checked against the field's type (``int``, ``float``, ``bool``, ``str``, ``tuple`` of numbers,
    ``Optional[…]``); ints are accepted for floats. ValueError naming ``Class.field`` otherwise."""
    if typing.get_origin(hint) is Union:
        args = typing.get_args(hint)
        if v is None and type(None) in args:
            return v
        hint = next(a for a in args if a is not type(None))
    num = isinstance(v, (int, float)) and not isinstance(v, bool)
    if hint is bool:
        ok = isinstance(v, bool)
    elif hint is int:
        ok = num and isinstance(v, int)
    elif hint is float:
        ok, v = num and math.isfinite(v), float(v) if num else v
    elif hint is str:
        ok = isinstance(v, str)
    elif hint is tuple:
        ok = (isinstance(v, tuple) and len(v) <= MAX_TUPLE
              and all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v))
    else:
        ok = isinstance(v, hint) if isinstance(hint, type) else True
    if not ok:
        what = {bool: "true or false", int: "a whole number", float: "a finite number", str: "a string",
                tuple: f"a list of at most {MAX_TUPLE} finite numbers"}.get(hint, getattr(hint, "__name__", str(hint)))
        raise ValueError(f"{cls.__name__}.{name} {v!r} must be {what}")
    return v


def from_dict(cls: type, d: dict) -> Any:
    """Rebuild a config dataclass from :func:`to_dict` output; unknown keys and values of the wrong type are an
    error (ValueError naming ``Class.field``)."""
    if not isinstance(d, dict):
        raise ValueError(f"{cls.__name__}: expected an object of fields, got {type(d).__name__}")
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(d) - set(names)
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown field(s) {sorted(unknown)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for k, v in d.items():
        if k == "augment" and isinstance(v, dict):
            v = from_dict(AugmentConfig, v)
        elif isinstance(v, list):
            v = tuple(v)
        kwargs[k] = _typed(cls, k, hints[k], v)
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
    vocos: Optional[VocosConfig] = None
    train_vocos: Optional[TrainConfig] = None

    def model(self, task: str) -> Any:
        """The model config of ``task`` ("wae", "mcnn", "vocos", "vocos_gan")."""
        if task == "wae":
            return self.wae
        if task == "mcnn":
            return self.mcnn
        if task in ("vocos", "vocos_gan"):
            if self.vocos is None:
                raise ValueError(f"preset {self.name!r} has no Vocos-style inverter; use cpu, cpu44 or tiny")
            return self.vocos if task == "vocos" else dataclasses.replace(self.vocos, adv_weight=1.0)
        raise ValueError(f"unknown model {task!r}")

    def train(self, task: str) -> TrainConfig:
        """The training config of ``task``."""
        if task == "wae":
            return self.train_wae
        if task == "mcnn":
            return self.train_mcnn
        self.model(task)
        return self.train_vocos


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
        VocosConfig(n_mels=32, dim=16, hidden=32, n_layers=2, hop_length=256, n_fft=512, istft_hop=128,
                    disc_channels=4),
        TrainConfig(lr=1e-3, batch_size=8, max_steps=200, val_every=50, ckpt_every=50),
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
        # one STFT frame per Mel frame, 1024-point (the Mel's own window): lower validation loss at equal steps than
        # two 512-point frames per Mel frame (1.35 vs 1.50 after 250 steps, 2026-11-27)
        VocosConfig(n_mels=128, hop_length=256, n_fft=1024, istft_hop=256),
        TrainConfig(lr=5e-4, batch_size=16, max_steps=30000, val_every=250, ckpt_every=250,
                    plateau_factor=0.5, early_stop_patience=20, val_max_clips=256),
    )


def cpu44() -> Preset:
    """The 44.1 kHz models: the cpu preset's sizes on a Mel of the same shape (128 bins × 87 frames: n_fft and
    window 2048, hop 512, so the same 46 ms window and 11.6 ms hop), the MCNN with one more doubling layer, and
    the Vocos-style inverter."""
    audio = AudioConfig(sample_rate=44100, n_samples=44032, fade_ms=300.0, fade_shape="decay")
    mel = MelConfig(sample_rate=44100, n_fft=2048, win_length=2048, hop_length=512, n_mels=128)
    T = mel.n_frames(audio.n_samples)
    base = cpu()
    return Preset(
        "cpu44", audio, mel,
        dataclasses.replace(base.wae, n_frames=T),
        MCNNConfig(n_mels=128, n_heads=4, n_layers=9, hop_length=512, channels=(96, 64, 48, 32, 24, 16, 8, 8)),
        base.train_wae, base.train_mcnn,
        VocosConfig(n_mels=128, hop_length=512),  # iSTFT n_fft 1024, hop 256: 23 ms windows, 2 per Mel hop
        base.train_vocos,
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


PRESETS = {"tiny": tiny, "cpu": cpu, "cpu44": cpu44, "paper": paper}


def preset(name: str) -> Preset:
    try:
        return PRESETS[name]()
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}") from None
