"""A one-shot voice mixer: sums the sounds playing, block by block, and chokes some on request.

:meth:`Mixer.play` may be called from any thread (a MIDI callback) while :meth:`Mixer.render` runs in another
(the sound card's callback): new sounds wait in a queue that ``render`` empties at the start of each block, so
the two never share the list of playing voices. A sound played between two blocks starts at the first sample
of the next block; offline, rendering up to an event's sample and then playing puts it on that exact sample.
A stereo mixer (``channels=2``) places each sound with :func:`pan_gains`. numpy only.
"""
from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Iterable, Optional

import numpy as np

FADE_S = 0.003  # a choked sound fades out over 3 ms (no click)
MAX_VOICES = 64  # sounds at once; the oldest is cut (with the fade) beyond this


def pan_gains(pan: float) -> tuple[float, float]:
    """The pan law: equal power, 0 dB at the centre. ``pan`` −1 (left) … 1 (right) → (left, right) gains
    √2·cos(θ), √2·sin(θ) with θ = (pan + 1)·π/4: a centred sound keeps its level on both sides (1, 1), a sound
    panned hard left is +3 dB on the left and silent on the right, and left² + right² is 2 everywhere. (The web
    page's StereoPannerNode is cos θ, sin θ; the page adds the √2.)"""
    theta = (min(1.0, max(-1.0, float(pan))) + 1.0) * np.pi / 4
    return float(np.sqrt(2.0) * np.cos(theta)), float(np.sqrt(2.0) * np.sin(theta))


@dataclass
class _Voice:
    wave: np.ndarray  # (N,) float32, read-only
    gain: float
    group: Optional[str]
    pan: tuple = (1.0, 1.0)  # (left, right) gains of a stereo mixer
    pos: int = 0
    fade: int = -1  # samples into the fade-out; -1: not fading


class Mixer:
    """Sum of the playing sounds, at ``sample_rate``.

    Args:
        sample_rate: samples per second (sets the fade length).
        fade_s: length of the fade-out of a choked (or voice-stolen) sound.
        max_voices: sounds playing at once at most.
        channels: 1 (mono: pan is ignored) or 2 (stereo: each sound placed by its pan, :func:`pan_gains`).
    """

    def __init__(self, sample_rate: int, fade_s: float = FADE_S, max_voices: int = MAX_VOICES, channels: int = 1):
        if channels not in (1, 2):
            raise ValueError(f"channels={channels!r} must be 1 or 2")
        self.channels = channels
        self.sample_rate = int(sample_rate)
        self.fade_n = max(1, int(round(fade_s * sample_rate)))
        self._ramp = np.linspace(1.0, 0.0, self.fade_n + 1, dtype=np.float32)[1:]  # ends at exactly 0
        self.max_voices = max_voices
        self._pending: collections.deque = collections.deque()
        self._voices: list[_Voice] = []

    def play(self, wave: np.ndarray, gain: float = 1.0, group: Optional[str] = None,
             chokes: Iterable[str] = (), pan: float = 0.0) -> None:
        """Start ``wave`` (N,) at ``gain`` (and, in stereo, ``pan`` −1 … 1) with the next block; first fade out
        the playing sounds whose group is in ``chokes``. Thread-safe."""
        self._pending.append((wave, float(gain), group, frozenset(chokes), pan_gains(pan)))

    def active(self) -> int:
        """Sounds playing now (read from the render thread)."""
        return len(self._voices)

    def render(self, n: int) -> np.ndarray:
        """The next ``n`` samples, (n,) float32 ((n, 2) in stereo)."""
        while self._pending:
            wave, gain, group, chokes, pan = self._pending.popleft()
            if chokes:
                for v in self._voices:
                    if v.group in chokes and v.fade < 0:
                        v.fade = 0
            self._voices.append(_Voice(wave, gain, group, pan))
            playing = [v for v in self._voices if v.fade < 0]
            if len(playing) > self.max_voices:
                playing[0].fade = 0
        out = np.zeros(n if self.channels == 1 else (n, 2), np.float32)
        keep = []
        for v in self._voices:
            seg = v.wave[v.pos:v.pos + n]
            m = len(seg)
            if v.fade >= 0:
                m = min(m, self.fade_n - v.fade)
                part = seg[:m] * v.gain * self._ramp[v.fade:v.fade + m]
                v.fade += m
            else:
                part = seg * v.gain
            if self.channels == 1:
                out[:m] += part
            else:
                out[:m, 0] += part * np.float32(v.pan[0])
                out[:m, 1] += part * np.float32(v.pan[1])
            v.pos += m
            if v.pos < len(v.wave) and (v.fade < 0 or v.fade < self.fade_n):
                keep.append(v)
        self._voices = keep
        return out
