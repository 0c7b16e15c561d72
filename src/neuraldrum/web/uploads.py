"""Uploaded sounds: size limit, type checked by content, duration limit, decoding in a temporary folder.

Everything here raises :class:`UploadError` with an HTTP status and a message a person can act on; the web
app turns it into a 4xx JSON body. Nothing is written outside a fresh temporary folder, which is removed
before the function returns, whatever happens.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Optional

import numpy as np

MAX_UPLOAD_BYTES = 16 * 1024 * 1024  # a 10 s 24-bit stereo 96 kHz WAV is ≈ 5.8 MB
MAX_UPLOAD_SECONDS = 10.0  # one-shot drums; longer files are loops or songs
SAMPLE_RATES = (4000, 384000)  # accepted file sample rates, Hz
MAX_CHANNELS = 8
KINDS = "WAV, FLAC, OGG or AIFF"


class UploadError(ValueError):
    """A refused upload: ``status`` is the HTTP status (413 too large, 415 not audio, 422 unusable audio)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def sniff(head: bytes) -> Optional[str]:
    """The audio container named by a file's first bytes ("wav", "flac", "ogg", "aiff"), or None."""
    if len(head) >= 12 and head[:4] in (b"RIFF", b"RIFX", b"RF64", b"BW64") and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if len(head) >= 12 and head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    return None


def check_size(n_bytes: int, limit: int = MAX_UPLOAD_BYTES) -> None:
    if n_bytes > limit:
        raise UploadError(413, f"the file is too large ({n_bytes / 2 ** 20:.1f} MiB); the limit is "
                               f"{limit / 2 ** 20:.0f} MiB")


def decode(data: bytes, sample_rate: int, name: str = "upload", max_seconds: float = MAX_UPLOAD_SECONDS) -> np.ndarray:
    """Bytes of an audio file → mono float32 (n,) at ``sample_rate``.

    Raises:
        UploadError: 413 (over :data:`MAX_UPLOAD_BYTES`), 415 (not one of the accepted kinds), 422 (empty,
            silent, unreadable, too long, odd sample rate or channel count).
    """
    import soundfile as sf

    from ..audio.io import AudioError, load

    check_size(len(data))
    if not data:
        raise UploadError(422, "the file is empty")
    kind = sniff(data[:16])
    if kind is None:
        raise UploadError(415, f"not an audio file this instrument reads: send a {KINDS} file")
    label = Path(str(name)).name[:80] or "upload"
    with tempfile.TemporaryDirectory(prefix="neuraldrum-upload-") as tmp:
        path = Path(tmp) / f"sound.{kind}"
        path.write_bytes(data)
        try:
            info = sf.info(str(path))
        except Exception as e:  # libsndfile's errors are RuntimeError / LibsndfileError
            raise UploadError(422, f"{label}: looks like {kind.upper()} but cannot be read ({e})") from None
        if not SAMPLE_RATES[0] <= info.samplerate <= SAMPLE_RATES[1]:
            raise UploadError(422, f"{label}: sample rate {info.samplerate} Hz is outside "
                                   f"{SAMPLE_RATES[0]}–{SAMPLE_RATES[1]} Hz")
        if not 1 <= info.channels <= MAX_CHANNELS:
            raise UploadError(422, f"{label}: {info.channels} channels; at most {MAX_CHANNELS} are read")
        if info.duration > max_seconds:
            raise UploadError(422, f"{label}: {info.duration:.1f} s long; drop a one-shot of at most "
                                   f"{max_seconds:g} s")
        try:
            x = load(path, sample_rate=sample_rate, max_seconds=max_seconds)
        except AudioError as e:
            raise UploadError(422, f"{label}: {e.reason}") from None
        except Exception as e:  # a file libsndfile half-reads: never more than a 422
            raise UploadError(422, f"{label}: cannot be decoded ({e.__class__.__name__})") from None
    return x
