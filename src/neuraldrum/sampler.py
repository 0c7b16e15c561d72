"""Sampler controls every drum machine has, applied after neural synthesis to a finished waveform.

:func:`apply_sampler` takes a mono float32 wave, (N,) or a batch (B, N), and applies, in this order:

1. ``tune`` (semitones, [-12, 12]): a sampler's playback-rate change. The sound is resampled (soxr) to
   ``2 ** (-tune / 12)`` times its length, so pitch and length change together: +12 is an octave up
   and half as long, -12 an octave down and twice as long.
2. Length: the tuned sound is cut or zero-padded back to the input length N, or to
   ``round(length * sample_rate)`` samples (Python's ``round``) when ``length`` (seconds) is given.
   A cut ends with a ~5 ms raised-cosine fade-out, so it does not click; padding is silence.
3. ``decay`` (seconds): multiplies by an exponential envelope that falls 60 dB in ``decay`` seconds;
   ``None`` keeps the sound's own decay.
4. ``normalise``: peak-normalise each row to -1 dBFS (~0.891). A silent row stays silent.
5. ``velocity`` (MIDI 1..127, floats allowed): gain ``(velocity / 127) ** velocity_curve``; a curve of 2
   is about the SFZ default amplitude curve, 0 ignores velocity. Velocity 127 therefore peaks at -1 dBFS.

numpy + soxr only, no global state: safe to call from many threads at once.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from numbers import Real

import numpy as np
import soxr

PEAK = 10 ** (-1 / 20)  # -1 dBFS, ~0.891
FADE_S = 0.005  # raised-cosine fade-out at a cut, seconds
MAX_LENGTH_S = 60.0  # longest output `length` accepted, seconds
MIN_LENGTH_S = 0.001  # shortest (a millisecond; anything shorter rounded to no samples at all)
RESAMPLE_QUALITY = "MQ"  # soxr 16-bit quality: ~0.3 ms per 1 s at 22 050 Hz for any tune; "HQ" took up to ~1 ms
_LN_1000 = math.log(1000.0)  # an amplitude fall of 60 dB


def _is_number(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, (bool, np.bool_)) and math.isfinite(value)


def _require(name: str, value, ok: bool, allowed: str) -> None:
    if not ok:
        raise ValueError(f"SamplerControls.{name} must be {allowed}, got {value!r}")


@dataclass(frozen=True)
class SamplerControls:
    """Sampler settings; all defaults leave a sound as it is except for peak normalisation."""

    tune: float = 0.0
    decay: float | None = None
    velocity: float = 127.0
    velocity_curve: float = 2.0
    length: float | None = None
    normalise: bool = True

    def validate(self) -> SamplerControls:
        """Return self, or raise ValueError naming the first field out of its allowed range or of the wrong type."""
        t, d, v, c, n = self.tune, self.decay, self.velocity, self.velocity_curve, self.length
        _require("tune", t, _is_number(t) and -12 <= t <= 12, "a number of semitones in [-12, 12]")
        _require("decay", d, d is None or (_is_number(d) and d > 0), "None or a finite number of seconds > 0")
        _require("velocity", v, _is_number(v) and 1 <= v <= 127, "a number in [1, 127]")
        _require("velocity_curve", c, _is_number(c) and c >= 0, "a finite number >= 0")
        _require("length", n, n is None or (_is_number(n) and MIN_LENGTH_S <= n <= MAX_LENGTH_S),
                 f"None or a number of seconds in [{MIN_LENGTH_S:g}, {MAX_LENGTH_S:g}]")
        _require("normalise", self.normalise, isinstance(self.normalise, (bool, np.bool_)), "True or False")
        return self

    @property
    def gain(self) -> float:
        """The velocity gain, ``(velocity / 127) ** velocity_curve``."""
        return float((self.velocity / 127) ** self.velocity_curve)

    def is_identity(self) -> bool:
        """True when :func:`apply_sampler` would do nothing beyond (optional) peak normalisation."""
        return self.tune == 0 and self.decay is None and self.length is None and self.gain == 1.0

    def to_dict(self) -> dict:
        """A JSON-friendly dict of plain Python values."""
        def plain(v):
            return v if v is None else bool(v) if isinstance(v, (bool, np.bool_)) else float(v)
        return {f.name: plain(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: Mapping) -> SamplerControls:
        """Build from a (possibly partial) dict; unknown keys and bad values raise ValueError."""
        if not isinstance(d, Mapping):
            raise TypeError(f"SamplerControls.from_dict needs a dict, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(str(k) for k in d if k not in known)
        if unknown:
            raise ValueError(f"unknown SamplerControls keys {unknown}; known keys are {sorted(known)}")
        return cls(**d).validate()


def apply_sampler(wave: np.ndarray, sample_rate: int, controls: SamplerControls) -> np.ndarray:
    """Apply tune, length, decay, normalisation and velocity (in that order) to finished audio.

    Args:
        wave: (N,) or (B, N) float audio, N >= 1; each row is processed alike and independently.
        sample_rate: samples per second, > 0.
        controls: the :class:`SamplerControls` to apply; validated here.

    Returns:
        (M,) or (B, M) float32, a new array: M = N, or ``round(controls.length * sample_rate)``.
    """
    if not isinstance(controls, SamplerControls):
        raise TypeError(f"controls must be a SamplerControls, got {type(controls).__name__}")
    controls.validate()
    if not (_is_number(sample_rate) and sample_rate > 0):
        raise ValueError(f"sample_rate must be a finite number > 0, got {sample_rate!r}")
    x = np.asarray(wave, dtype=np.float32)
    if x.ndim not in (1, 2) or 0 in x.shape:
        raise ValueError(f"wave must be (N,) or (B, N) with N >= 1 and B >= 1, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("wave contains NaN or inf")
    rows = x if x.ndim == 2 else x[None]  # (B, N)
    n = rows.shape[1]

    if controls.tune != 0:  # soxr wants (frames, channels); output length is ~N * 2 ** (-tune / 12)
        out_rate = sample_rate * 2.0 ** (-controls.tune / 12)
        rows = soxr.resample(np.ascontiguousarray(rows.T), sample_rate, out_rate, quality=RESAMPLE_QUALITY).T

    m = n if controls.length is None else round(float(controls.length) * sample_rate)
    y = np.zeros((rows.shape[0], m), np.float32)
    k = min(m, rows.shape[1])
    y[:, :k] = rows[:, :k]
    if rows.shape[1] > m > 0:  # a cut: raised-cosine fade-out ending at exactly 0
        f = min(m, max(1, round(FADE_S * sample_rate)))
        y[:, m - f:] *= (0.5 + 0.5 * np.cos(np.pi * np.arange(1, f + 1) / f)).astype(np.float32)

    if controls.decay is not None:
        rate = np.float32(-_LN_1000 / (controls.decay * sample_rate))  # per sample, natural-log units
        y *= np.exp(np.arange(m, dtype=np.float32) * rate)

    if controls.normalise:
        peak = np.abs(y).max(axis=1, initial=0.0, keepdims=True)
        audible = peak > np.finfo(np.float32).tiny  # subnormal-or-silent rows are left as they are
        y *= np.divide(np.float32(PEAK), peak, out=np.ones_like(peak), where=audible)

    gain = controls.gain
    if gain != 1.0:
        y *= np.float32(gain)
    return y if x.ndim == 2 else y[0]
