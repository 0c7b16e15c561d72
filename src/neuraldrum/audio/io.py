"""Audio in and out: load anything libsndfile reads as mono float32 at a target rate, align onsets,
fit to a fixed length, normalise, and save WAV atomically.

``atomic_path``, ``atomic_write_bytes`` and ``atomic_write_text`` are :mod:`neuraldrum.atomic`'s
``atomic_file``, ``write_bytes`` and ``write_text`` under their old names.

All arrays are 1-D float32 ``(n_samples,)`` unless stated otherwise.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Union

import numpy as np

from ..atomic import atomic_file, write_bytes, write_text

PathLike = Union[str, os.PathLike]
atomic_path = atomic_file  # the names this module has always exported
atomic_write_bytes = write_bytes
atomic_write_text = write_text

SILENCE_PEAK = 1e-4  # -80 dBFS: quieter than this is "silent"
WAV_SUBTYPES = {"16": "PCM_16", "24": "PCM_24", "float": "FLOAT", "PCM_16": "PCM_16", "PCM_24": "PCM_24",
                "FLOAT": "FLOAT"}


class AudioError(ValueError):
    """A file that cannot be used as audio; the message names the file and the reason."""

    def __init__(self, path: PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


def check_signal(x: np.ndarray, name: PathLike = "<array>") -> np.ndarray:
    """Refuse empty, non-finite or silent signals. Returns ``x`` unchanged."""
    if x.size == 0:
        raise AudioError(name, "empty audio (0 samples)")
    if not np.all(np.isfinite(x)):
        raise AudioError(name, "contains NaN or Inf samples")
    if float(np.max(np.abs(x))) < SILENCE_PEAK:
        raise AudioError(name, "silent (peak below -80 dBFS)")
    return x


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Band-limited resampling with soxr (high quality). ``x``: (n,) float32."""
    if sr_in == sr_out:
        return x.astype(np.float32, copy=False)
    import soxr

    return soxr.resample(x.astype(np.float32, copy=False), sr_in, sr_out, quality="HQ").astype(np.float32)


def load(path: PathLike, sample_rate: int = 22050, max_seconds: float = 60.0) -> np.ndarray:
    """Read a wav/flac/ogg/aiff file (any rate, bit depth, channel count) → mono float32 at ``sample_rate``.

    Raises:
        AudioError: unreadable, empty, silent, NaN/Inf, or longer than ``max_seconds``.
    """
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise AudioError(path, "no such file")
    try:
        info = sf.info(str(path))
    except Exception as e:  # libsndfile's own errors are RuntimeError/LibsndfileError
        raise AudioError(path, f"unreadable ({e.__class__.__name__}: {e})") from None
    if info.frames <= 0 and info.duration <= 0:
        raise AudioError(path, "empty audio (0 frames)")
    if info.duration > max_seconds:
        raise AudioError(path, f"too long ({info.duration:.1f} s > {max_seconds:g} s)")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as e:
        raise AudioError(path, f"unreadable ({e.__class__.__name__}: {e})") from None
    x = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    check_signal(x, path)
    return resample(x, int(sr), sample_rate)


def onset_index(x: np.ndarray, threshold_db: float = -36.0, pre_samples: int = 16) -> int:
    """Index where the sound starts: the first sample within ``threshold_db`` of the peak, moved back by
    ``pre_samples`` to keep the attack's first rise."""
    peak = float(np.max(np.abs(x)))
    if peak == 0.0:
        return 0
    above = np.flatnonzero(np.abs(x) >= peak * 10 ** (threshold_db / 20))
    return max(0, int(above[0]) - pre_samples)


def align_onset(x: np.ndarray, threshold_db: float = -36.0, pre_samples: int = 16) -> np.ndarray:
    """Drop the silence before the onset so that the hit starts at sample ~0; ``pre_samples`` before the
    threshold crossing are kept and faded in."""
    i = onset_index(x, threshold_db, pre_samples)
    y = x[i:].copy()
    n = min(pre_samples, y.size)
    if n > 1:
        y[:n] *= np.linspace(0.0, 1.0, n, dtype=np.float32)
    return y


def fit_length(x: np.ndarray, n_samples: int, sample_rate: int = 22050, fade_ms: float = 10.0) -> np.ndarray:
    """Trim to ``n_samples`` with a half-cosine fade-out where cut, or zero-pad. Returns (n_samples,)."""
    if x.size >= n_samples:
        y = x[:n_samples].astype(np.float32, copy=True)
        if x.size > n_samples:
            n = min(n_samples, max(1, int(round(sample_rate * fade_ms / 1000))))
            y[-n:] *= (0.5 + 0.5 * np.cos(np.linspace(0.0, np.pi, n))).astype(np.float32)
        return y
    out = np.zeros(n_samples, dtype=np.float32)
    out[: x.size] = x
    return out


def normalise_peak(x: np.ndarray, peak: float = 1.0) -> tuple[np.ndarray, float]:
    """Scale so that max |x| = ``peak``. Returns (scaled copy, original peak)."""
    orig = float(np.max(np.abs(x))) if x.size else 0.0
    if orig == 0.0:
        return x.astype(np.float32, copy=True), 0.0
    return (x * (peak / orig)).astype(np.float32), orig


def prepare_clip(x: np.ndarray, n_samples: int, sample_rate: int, fade_ms: float = 10.0,
                 name: PathLike = "<array>") -> tuple[np.ndarray, float]:
    """The corpus recipe for one clip: check, onset-align, fit to length, peak-normalise.

    Returns (clip (n_samples,), original peak).
    """
    check_signal(x, name)
    y = fit_length(align_onset(x), n_samples, sample_rate, fade_ms)
    check_signal(y, name)
    return normalise_peak(y)


def save_wav(path: PathLike, x: np.ndarray, sample_rate: int, subtype: str = "PCM_16") -> Path:
    """Write a mono WAV atomically (temp file in the same folder, then rename).

    ``subtype``: "16"/"PCM_16", "24"/"PCM_24" or "float"/"FLOAT". Integer formats are clipped to [-1, 1].
    """
    import soundfile as sf

    if subtype not in WAV_SUBTYPES:
        raise ValueError(f"unknown WAV subtype {subtype!r}; use one of 16, 24, float")
    sub = WAV_SUBTYPES[subtype]
    x = np.asarray(x, dtype=np.float32).reshape(-1)
    if not np.all(np.isfinite(x)):
        raise AudioError(path, "refusing to write NaN or Inf samples")
    if sub != "FLOAT":
        x = np.clip(x, -1.0, 1.0)
    with atomic_file(path, ".wav") as tmp:
        sf.write(str(tmp), x, sample_rate, subtype=sub, format="WAV")
    return Path(path)


def atomic_save_npy(path: PathLike, arr: np.ndarray) -> Path:
    """``np.save`` through a temp file and rename (:func:`neuraldrum.atomic.atomic_file`)."""
    with atomic_file(path, ".npy") as tmp:
        with open(tmp, "wb") as f:
            np.save(f, arr)
    return Path(path)
