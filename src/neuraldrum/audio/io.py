"""Audio in and out: load anything libsndfile reads as mono float32 at a target rate, align onsets,
fit to a fixed length, normalise, and save WAV atomically.

``atomic_path``, ``atomic_write_bytes`` and ``atomic_write_text`` are :mod:`neuraldrum.atomic`'s
``atomic_file``, ``write_bytes`` and ``write_text`` under their old names.

All arrays are 1-D float32 ``(n_samples,)`` unless stated otherwise.
"""
from __future__ import annotations

import io
import os
import stat
from pathlib import Path
from typing import Union

import numpy as np

from ..atomic import atomic_file, target_of, write_bytes, write_text

PathLike = Union[str, os.PathLike]
atomic_path = atomic_file  # the names this module has always exported
atomic_write_bytes = write_bytes
atomic_write_text = write_text

SILENCE_PEAK = 1e-4  # -80 dBFS: quieter than this is "silent"
RATES = (1000, 768000)  # sample rates that :func:`load` reads (and asks for)
BLOCK_SAMPLES = 1 << 20  # samples (frames × channels) decoded at a time by :func:`load`: 4 MB of float32
CANCEL_RATIO = 0.01  # a mono mix 40 dB below the loudest channel: the channels cancel (anti-phase)
WAV_SUBTYPES = {"16": "PCM_16", "24": "PCM_24", "float": "FLOAT", "PCM_16": "PCM_16", "PCM_24": "PCM_24",
                "FLOAT": "FLOAT"}


def safe_text(s: str) -> str:
    """``s`` made printable and JSON-safe: the undecodable bytes of a file name that is not UTF-8 (which Python
    holds as surrogate escapes, ``os.fsdecode``) become ``\\xff``-style escapes; other text is unchanged."""
    if s.isascii():
        return s
    try:
        return s.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that no file name made
        return s.encode("utf-8", "backslashreplace").decode("utf-8")


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


def load(path: Union[PathLike, bytes], sample_rate: int = 22050, max_seconds: float = 60.0) -> np.ndarray:
    """Read a wav/flac/ogg/aiff file (any bit depth, channel count, a rate in :data:`RATES`) → mono float32 at
    ``sample_rate``.

    The file is decoded in blocks of about :data:`BLOCK_SAMPLES` samples (frames × channels), each mixed to mono
    at once, and never past the frames its header promises, so memory follows the mono length of the audio the
    file really holds (at most ``max_seconds``), not its channel count nor what its header claims. A header that
    promises more frames than the file holds gives the frames that decode. Mono is the mean of the channels;
    when that mean cancels (anti-phase stereo: the mix peaks more than 40 dB below the loudest channel) the
    file is refused as such rather than as "silent". Any path works, names that are not UTF-8 included.

    Raises:
        AudioError: no such file, a folder, permission denied, unreadable, a rate outside :data:`RATES`, empty,
            silent, channels that cancel, NaN/Inf, or longer than ``max_seconds``.
        ValueError: ``sample_rate`` outside :data:`RATES`.
    """
    import soundfile as sf

    if not RATES[0] <= sample_rate <= RATES[1]:
        raise ValueError(f"sample_rate={sample_rate} must be from {RATES[0]} to {RATES[1]} Hz")
    name = os.fsdecode(path)
    try:
        fd = os.open(os.fsencode(path), os.O_RDONLY | os.O_NONBLOCK)  # O_NONBLOCK: a FIFO must not hang here
    except FileNotFoundError:
        raise AudioError(name, "no such file") from None
    except PermissionError:
        raise AudioError(name, "permission denied") from None
    except (OSError, ValueError) as e:  # ValueError: a NUL in the name
        raise AudioError(name, f"cannot open ({getattr(e, 'strerror', None) or e})") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise AudioError(name, "a folder, not an audio file")
        if not stat.S_ISREG(mode):
            raise AudioError(name, "not a regular file")
        try:
            f = sf.SoundFile(fd, closefd=False)
        except Exception as e:  # libsndfile's own errors are LibsndfileError (a RuntimeError)
            raise AudioError(name, f"unreadable ({_sf_message(e)})") from None
        with f:
            x, peaks = _read_mono(f, name, max_seconds)
            sr = f.samplerate
    finally:
        os.close(fd)
    check_mix(x, peaks, name)
    check_signal(x, name)
    return resample(x, int(sr), sample_rate)


def check_mix(x: np.ndarray, peaks: np.ndarray, name: PathLike = "<array>") -> np.ndarray:
    """Refuse a mono mix ``x`` (N,) whose channels (their peaks: (C,)) cancel: anti-phase stereo, the mix more
    than 40 dB below the loudest channel. Returns ``x`` unchanged."""
    mix = float(np.max(np.abs(x))) if x.size else 0.0
    loudest = float(np.max(peaks)) if peaks.size else 0.0
    if peaks.size > 1 and loudest >= SILENCE_PEAK and mix < loudest * CANCEL_RATIO:  # False for NaN
        raise AudioError(name, f"channels cancel when mixed to mono (anti-phase: the mix peaks "
                               f"{20 * np.log10(loudest / max(mix, 1e-12)):.0f} dB below the loudest channel)")
    return x


def _sf_message(e: Exception) -> str:
    """libsndfile's words without soundfile's "Error opening <fd>: " prefix."""
    return getattr(e, "error_string", None) or f"{e.__class__.__name__}: {e}"


PRIVATE_READ = True  # read through soundfile's private libsndfile handle (see _raw_reader); False: public read


def _raw_reader(f, buf: np.ndarray, name: str):
    """``read(count, first) → frames decoded into buf[:count]`` for an open ``soundfile.SoundFile``.

    libsndfile's own read through soundfile's private ``_snd``/``_ffi``, not ``SoundFile.read``: that one seeks to
    where it expects to be after each block, which fails (and loses the block) when a header promises frames past
    the end of the data. If a soundfile release drops those names, the public read is used instead (such a file
    then stops at its last whole block, or is refused as unreadable if none decodes)."""
    try:
        if not PRIVATE_READ:
            raise ImportError
        from soundfile import _ffi, _snd

        ptr, handle = _ffi.cast("float *", buf.ctypes.data), f._file
    except (ImportError, AttributeError):  # depends on the soundfile release
        def public(count: int, first: bool) -> int:
            try:
                return int(f.read(count, dtype="float32", always_2d=True, out=buf[:count]).shape[0])
            except RuntimeError as e:  # soundfile.LibsndfileError is one
                if first:
                    raise AudioError(name, f"unreadable ({e})") from None
                return 0
        return public

    def raw(count: int, first: bool) -> int:
        k = int(_snd.sf_readf_float(handle, ptr, count))
        if k <= 0 and first and (err := _snd.sf_error(handle)):
            raise AudioError(name, f"unreadable ({_ffi.string(_snd.sf_error_number(err)).decode(errors='replace')})")
        return k
    return raw


def _read_mono(f, name: str, max_seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """Decode an open ``soundfile.SoundFile`` block by block. Returns (mono (n,) float32, peak of each channel)."""
    sr, channels, frames = f.samplerate, f.channels, f.frames
    if not RATES[0] <= sr <= RATES[1]:
        raise AudioError(name, f"sample rate {sr} Hz is outside {RATES[0]}–{RATES[1]} Hz")
    if frames <= 0:
        raise AudioError(name, "empty audio (0 frames)")
    if frames / sr > max_seconds:
        raise AudioError(name, f"too long ({frames / sr:.1f} s > {max_seconds:g} s)")
    buf = np.empty((min(frames, max(1, BLOCK_SAMPLES // channels)), channels), np.float32)
    read = _raw_reader(f, buf, name)
    parts, peaks, n = [], np.zeros(channels, np.float32), 0
    while n < frames:
        k = read(min(len(buf), frames - n), first=not n)
        if k <= 0:
            break  # the file holds fewer frames than its header promises: keep what decoded
        data = buf[:k]
        peaks = np.maximum(peaks, np.abs(data).max(axis=0))
        parts.append(data.mean(axis=1, dtype=np.float32) if channels > 1 else data[:, 0].copy())
        n += k
    if not n:
        raise AudioError(name, f"empty audio (the header promises {frames} frames; none decode)")
    return np.concatenate(parts), peaks


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


FADE_SHAPES = ("cosine", "decay")
DECAY_DB = -60.0  # a "decay" fade falls linearly in dB to this, with a half-cosine on top so it ends at zero


def fade_curve(n: int, shape: str = "cosine") -> np.ndarray:
    """The fade-out gain over ``n`` samples, from 1 to 0. "cosine": a half cosine (a quick cut); "decay": a fall
    linear in dB to :data:`DECAY_DB` (an exponential decay, as of a damped cymbal) times the half cosine."""
    if shape not in FADE_SHAPES:
        raise ValueError(f"fade shape {shape!r}: choose from {', '.join(FADE_SHAPES)}")
    u = np.linspace(0.0, 1.0, n)
    g = 0.5 + 0.5 * np.cos(np.pi * u)
    if shape == "decay":
        g = g * 10.0 ** (DECAY_DB / 20.0 * u)
    return g.astype(np.float32)


def fit_length(x: np.ndarray, n_samples: int, sample_rate: int = 22050, fade_ms: float = 10.0,
               fade_shape: str = "cosine") -> np.ndarray:
    """Trim to ``n_samples`` with a fade-out (:func:`fade_curve`) where cut, or zero-pad. Returns (n_samples,)."""
    if x.size >= n_samples:
        y = x[:n_samples].astype(np.float32, copy=True)
        if x.size > n_samples:
            n = min(n_samples, max(1, int(round(sample_rate * fade_ms / 1000))))
            y[-n:] *= fade_curve(n, fade_shape)
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
                 name: PathLike = "<array>", fade_shape: str = "cosine") -> tuple[np.ndarray, float]:
    """The corpus recipe for one clip: check, onset-align, fit to length, peak-normalise.

    Returns (clip (n_samples,), original peak).
    """
    check_signal(x, name)
    y = fit_length(align_onset(x), n_samples, sample_rate, fade_ms, fade_shape)
    check_signal(y, name)
    return normalise_peak(y)


def save_wav(path: PathLike, x: np.ndarray, sample_rate: int, subtype: str = "PCM_16") -> Path:
    """Write a mono WAV (``x`` (N,)) or a stereo one (``x`` (N, 2)) atomically (temp file in the same folder,
    then rename).

    ``subtype``: "16"/"PCM_16", "24"/"PCM_24" or "float"/"FLOAT". Integer formats are clipped to [-1, 1].
    """
    import soundfile as sf

    if subtype not in WAV_SUBTYPES:
        raise ValueError(f"unknown WAV subtype {subtype!r}; use one of 16, 24, float")
    sub = WAV_SUBTYPES[subtype]
    x = np.asarray(x, dtype=np.float32)
    x = x if x.ndim == 2 and x.shape[1] == 2 else x.reshape(-1)
    if not np.all(np.isfinite(x)):
        raise AudioError(path, "refusing to write NaN or Inf samples")
    if sub != "FLOAT":
        x = np.clip(x, -1.0, 1.0)
    with atomic_file(path, ".wav") as tmp:
        try:
            sf.write(str(tmp), x, sample_rate, subtype=sub, format="WAV")
        except RuntimeError:  # libsndfile says only "System error": write the bytes here to learn the OS's reason
            buf = io.BytesIO()
            sf.write(buf, x, sample_rate, subtype=sub, format="WAV")
            try:
                with open(tmp, "wb") as f:
                    f.write(buf.getbuffer())
            except OSError as e:  # a full disk …: one line naming the file asked for, not the temp file
                raise type(e)(e.errno, e.strerror, str(target_of(tmp))) from None
    return Path(path)


def atomic_save_npy(path: PathLike, arr: np.ndarray) -> Path:
    """``np.save`` through a temp file and rename (:func:`neuraldrum.atomic.atomic_file`)."""
    with atomic_file(path, ".npy") as tmp:
        with open(tmp, "wb") as f:
            np.save(f, arr)
    return Path(path)
