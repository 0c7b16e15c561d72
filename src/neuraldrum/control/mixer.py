"""A one-shot voice mixer: sums the sounds playing, block by block, and chokes some on request.

:meth:`Mixer.play` may be called from any thread (a MIDI callback) while :meth:`Mixer.render` runs in another
(the sound card's callback): new sounds wait in a queue that ``render`` empties at the start of each block, so
the two never share the list of playing voices. A sound played between two blocks starts at the first sample
of the next block; offline, rendering up to an event's sample and then playing puts it on that exact sample.
numpy only.
"""
from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Iterable, Optional

import numpy as np

FADE_S = 0.003  # a choked sound fades out over 3 ms (no click)
MAX_VOICES = 64  # sounds at once; the oldest is cut (with the fade) beyond this


@dataclass
class _Voice:
    wave: np.ndarray  # (N,) float32, read-only
    gain: float
    group: Optional[str]
    pos: int = 0
    fade: int = -1  # samples into the fade-out; -1: not fading


class Mixer:
    """Sum of the playing sounds, at ``sample_rate``.

    Args:
        sample_rate: samples per second (sets the fade length).
        fade_s: length of the fade-out of a choked (or voice-stolen) sound.
        max_voices: sounds playing at once at most.
    """

    def __init__(self, sample_rate: int, fade_s: float = FADE_S, max_voices: int = MAX_VOICES):
        self.sample_rate = int(sample_rate)
        self.fade_n = max(1, int(round(fade_s * sample_rate)))
        self._ramp = np.linspace(1.0, 0.0, self.fade_n + 1, dtype=np.float32)[1:]  # ends at exactly 0
        self.max_voices = max_voices
        self._pending: collections.deque = collections.deque()
        self._voices: list[_Voice] = []

    def play(self, wave: np.ndarray, gain: float = 1.0, group: Optional[str] = None,
             chokes: Iterable[str] = ()) -> None:
        """Start ``wave`` (N,) at ``gain`` with the next block; first fade out the playing sounds whose group is
        in ``chokes``. Thread-safe."""
        self._pending.append((wave, float(gain), group, frozenset(chokes)))

    def active(self) -> int:
        """Sounds playing now (read from the render thread)."""
        return len(self._voices)

    def render(self, n: int) -> np.ndarray:
        """The next ``n`` samples, (n,) float32."""
        while self._pending:
            wave, gain, group, chokes = self._pending.popleft()
            if chokes:
                for v in self._voices:
                    if v.group in chokes and v.fade < 0:
                        v.fade = 0
            self._voices.append(_Voice(wave, gain, group))
            playing = [v for v in self._voices if v.fade < 0]
            if len(playing) > self.max_voices:
                playing[0].fade = 0
        out = np.zeros(n, np.float32)
        keep = []
        for v in self._voices:
            seg = v.wave[v.pos:v.pos + n]
            m = len(seg)
            if v.fade >= 0:
                m = min(m, self.fade_n - v.fade)
                out[:m] += seg[:m] * v.gain * self._ramp[v.fade:v.fade + m]
                v.fade += m
            else:
                out[:m] += seg * v.gain
            v.pos += m
            if v.pos < len(v.wave) and (v.fade < 0 or v.fade < self.fade_n):
                keep.append(v)
        self._voices = keep
        return out
