"""The DrumSynth sound model: a preset's parameters in physical units (:class:`Preset`) and its rendering to mono
float32 at 44.1 kHz, in numpy. Reading ``.ds`` files into a :class:`Preset`, labels and variants are
:mod:`neuraldrum.data.drumsynth`'s.

The model is DrumSynth 2's (Paul Kellett): a pitch-swept tone, tilted noise, two overtone oscillators, two
noise bands, one resonant filter with its own envelope, then distortion. It was written from the controls'
names and public descriptions and from what the 764 LMMS presets themselves show (the FM instrument
presets use Method 1, "rm"/"ring_mod" presets Method 2, most hats and cymbals Method 3), not from any
DrumSynth or LMMS code. Where the descriptions say nothing, the choice below is ours, made so that presets
sound like their names (see the per-class checks in ``tests/test_drumsynth.py``):

- Every part is (oscillator or noise) × gain × its piecewise-linear envelope, envelope times × Stretch;
  Tuning multiplies every oscillator and band frequency (not the filter) by 2^(Tuning/12).
- Tone: a sine whose frequency falls from F1 to F2 over the tone envelope's length, f = F2 + (F1 − F2)·g(t/T)
  with g(u) = (e^(−ku) − e^(−k)) / (1 − e^(−k)), k = 12·Droop/100 (Droop 0: a straight line); Phase is the
  start phase. All frequencies are clamped to 0.45·44.1 kHz.
- Noise: uniform white noise tilted by Slope: mixed with (Slope > 0) its first difference or (Slope < 0) a
  one-pole low-pass at 1.5 kHz of it, both scaled to the white noise's RMS, in the proportion |Slope|/100.
- Overtones: two naive (not band-limited) oscillators — sine, rectified sine, triangle, sawtooth, square —
  each optionally following the tone's pitch fall (Track). Envelope1 shapes the overtones' output;
  Envelope2 shapes oscillator 2's part. Method 0 adds e1·osc1 + e2·osc2; 1 phase-modulates osc1 by e2·osc2
  (index up to 2π·Param/100 radians); 2 ring-modulates osc1 by e2·osc2 (Param/100 of the way from plain osc1
  to the product); 3 "metallic": each oscillator becomes three square waves at f·{1, 1.4826, 1.8004}
  (ratios of the TR-808 cymbal's oscillators), added, with Param/100 of their product mixed in.
- NoiseBand 1 and 2: Gaussian noise low-passed (2nd-order Butterworth) at dF·F/200, scaled to unit RMS, times
  a cosine at F: a band dF % of F wide around F; dF 0 is a pure cosine.
- Filter: a resonant 2-pole (RBJ biquad) low- or high-pass over the sum of all parts. FilterEnv level L (0..1)
  sets the cutoff as it would the frequency coefficient of a Chamberlin state-variable filter:
  fc = (44100/π)·asin(L/2), so 0 → 0 Hz and 1 → 7.35 kHz (the presets' high-passed hats sit at 0.6–1, their
  claps at 0.1–0.4); Resonance 0..100 sets Q = 0.707 / (1 − 0.93·Resonance/100).
- Output: the sum × 10^(Level/20); then Distortion: × 10^(Clipping/20) and hard clip to ±1, sample-and-hold
  by 2^Rate, quantise to 16 − 2·Bits bits (the presets "K_8bit" and "12-bit_heavy_hitter" have Bits 4 and 2).

Simplified: FixedSeq is ignored (all noise is seeded per preset); the Overtones "Filter" flag is ignored (the
overtones always go through the filter: 95 % of presets leave it off, and the hats then only sound like hats
when filtered); the time-varying filter runs in 64-sample blocks with the cutoff held per block (on a
1/24-octave grid; equal consecutive blocks run as one), not per sample; no oversampling or band-limiting of
the overtone waves; level scales are ours (gain = (Level/128)²), so absolute loudness, and so how hard a
preset drives the clipper, may differ from DrumSynth's.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from scipy.signal import butter, lfilter, sosfilt

from ..audio.io import AudioError, resample

RATE = 44100  # envelope times and rendering
RENDER_SECONDS = 1.5  # longest render: the corpus keeps 1 s after the onset
MAX_F = 0.45 * RATE
BLOCK = 64
METALLIC_RATIOS = (1.0, 1.4826, 1.8004)
TWO_PI = 2 * np.pi


# ---------------------------------------------------------------- the preset

@dataclass(frozen=True)
class Envelope:
    """Piecewise-linear envelope: ``times`` in samples at 44.1 kHz (non-decreasing), ``levels`` in 0..1."""

    times: tuple[float, ...]
    levels: tuple[float, ...]

    @property
    def end(self) -> float:
        """Time of the last point (samples)."""
        return self.times[-1]

    def at(self, n: int, stretch: float = 1.0) -> np.ndarray:
        """The envelope over samples 0..n-1, its time axis multiplied by ``stretch``. Returns (n,) float64."""
        return np.interp(np.arange(n, dtype=np.float64), np.asarray(self.times) * stretch, self.levels)

    def scaled(self, factor: float) -> "Envelope":
        return Envelope(tuple(t * factor for t in self.times), self.levels)


@dataclass(frozen=True)
class Tone:
    on: bool
    gain: float
    f1: float  # Hz, start
    f2: float  # Hz, end
    droop: float  # 0..1: 0 = linear fall over the envelope, 1 = fast exponential fall
    phase: float  # start phase, degrees
    env: Envelope


@dataclass(frozen=True)
class Noise:
    on: bool
    gain: float
    slope: float  # -1 (dark) .. +1 (bright)
    env: Envelope


@dataclass(frozen=True)
class Overtones:
    on: bool
    gain: float
    f1: float
    wave1: int  # 0 sine, 1 rectified sine, 2 triangle, 3 sawtooth, 4 square
    track1: bool  # follow the tone's pitch fall
    f2: float
    wave2: int
    track2: bool
    method: int  # 0 add, 1 FM (2 modulates 1), 2 ring modulation, 3 metallic (808-style square clusters)
    param: float  # 0..1: FM depth, ring-modulation or metallic-ring amount
    filtered: bool  # the file's Filter flag (ignored by the renderer: see above)
    env1: Envelope
    env2: Envelope


@dataclass(frozen=True)
class Band:
    on: bool
    gain: float
    freq: float  # Hz, centre
    width: float  # bandwidth as a fraction of freq (dF / 100); 0 = a sine
    env: Envelope


@dataclass(frozen=True)
class Distortion:
    on: bool
    clip_db: float
    bits: int  # 0..7: keep 16 − 2·bits bits
    rate: int  # 0..7: hold each sample 2^rate times


@dataclass(frozen=True)
class Preset:
    """A parsed DrumSynth preset in physical units (gains, Hz, factors). ``seed`` seeds its noise."""

    name: str
    tuning: float  # semitones
    stretch: float  # envelope time factor
    level_db: float
    filter_on: bool
    highpass: bool
    resonance: float  # 0..1
    filter_env: Envelope
    tone: Tone
    noise: Noise
    overtones: Overtones
    band1: Band
    band2: Band
    distortion: Distortion
    cutoff_scale: float = 1.0  # multiplies the filter cutoff (variants)
    seed: int = 0

    def duration(self) -> float:
        """Seconds until the last enabled sound's envelope ends (0 when nothing is on)."""
        ends = [self.tone.env.end] if self.tone.on else []
        ends += [self.noise.env.end] if self.noise.on else []
        ends += [self.overtones.env1.end, self.overtones.env2.end] if self.overtones.on else []
        ends += [b.env.end for b in (self.band1, self.band2) if b.on]
        return max(ends, default=0.0) * self.stretch / RATE


# ---------------------------------------------------------------- rendering

def _phase(freq: np.ndarray) -> np.ndarray:
    """Running phase (radians) of an oscillator whose frequency (Hz) is ``freq`` (n,); starts at 0."""
    return TWO_PI * (np.cumsum(freq) - freq) / RATE


def wave(phase: np.ndarray, kind: int) -> np.ndarray:
    """The overtone waveforms, peak 1 (0 sine, 1 rectified sine without DC, 2 triangle, 3 sawtooth, 4 square)."""
    if kind == 1:
        return (np.abs(np.sin(phase)) - 2 / np.pi) / (1 - 2 / np.pi)
    if kind == 2:
        return (2 / np.pi) * np.arcsin(np.sin(phase))
    if kind == 3:
        return 2 * ((phase / TWO_PI) % 1.0) - 1
    if kind == 4:
        return np.where((phase / TWO_PI) % 1.0 < 0.5, 1.0, -1.0)
    return np.sin(phase)


def tone_pitch(p: Preset, n: int) -> np.ndarray:
    """The tone's frequency (Hz) over n samples. Returns (n,) float64."""
    tune = 2 ** (p.tuning / 12)
    f1, f2 = (float(np.clip(f * tune, 0.0, MAX_F)) for f in (p.tone.f1, p.tone.f2))
    u = np.clip(np.arange(n) / max(p.tone.env.end * p.stretch, 1.0), 0.0, 1.0)
    k = 12.0 * p.tone.droop
    g = 1.0 - u if k < 1e-6 else (np.exp(-k * u) - np.exp(-k)) / (1 - np.exp(-k))
    return f2 + (f1 - f2) * g


def _tone(p: Preset, n: int, pitch: np.ndarray) -> np.ndarray:
    return np.sin(np.radians(p.tone.phase) + _phase(pitch)) * p.tone.env.at(n, p.stretch) * p.tone.gain


def _noise(p: Preset, n: int, rng: np.random.Generator) -> np.ndarray:
    white = rng.uniform(-1.0, 1.0, n)
    s = p.noise.slope
    if s > 0:
        other = np.diff(white, prepend=0.0) / np.sqrt(2.0)
    elif s < 0:
        a = np.exp(-TWO_PI * 1500.0 / RATE)
        other = lfilter([1 - a], [1, -a], white) * np.sqrt((1 + a) / (1 - a))
    else:
        other = white
    return ((1 - abs(s)) * white + abs(s) * other) * p.noise.env.at(n, p.stretch) * p.noise.gain


def _overtones(p: Preset, n: int, pitch: np.ndarray) -> np.ndarray:
    ot, tune = p.overtones, 2 ** (p.tuning / 12)
    ratio = pitch / pitch[0] if pitch[0] > 0 else np.ones(n)

    def freq(f: float, track: bool) -> np.ndarray:
        base = float(np.clip(f * tune, 0.0, MAX_F))
        return np.minimum(base * ratio, MAX_F) if track else np.full(n, base)

    fa, fb = freq(ot.f1, ot.track1), freq(ot.f2, ot.track2)
    e1, e2 = ot.env1.at(n, p.stretch), ot.env2.at(n, p.stretch)
    if ot.method == 1:
        out = e1 * wave(_phase(fa) + TWO_PI * ot.param * e2 * wave(_phase(fb), ot.wave2), ot.wave1)
    elif ot.method == 2:
        out = e1 * wave(_phase(fa), ot.wave1) * ((1 - ot.param) + ot.param * e2 * wave(_phase(fb), ot.wave2))
    elif ot.method == 3:
        a = sum(wave(_phase(np.minimum(fa * r, MAX_F)), 4) for r in METALLIC_RATIOS) / 3
        b = e2 * sum(wave(_phase(np.minimum(fb * r, MAX_F)), 4) for r in METALLIC_RATIOS) / 3
        out = e1 * ((1 - ot.param) * (a + b) / 2 + ot.param * 2 * a * b)
    else:
        out = e1 * wave(_phase(fa), ot.wave1) + e2 * wave(_phase(fb), ot.wave2)
    return out * ot.gain


def _band(p: Preset, band: Band, n: int, rng: np.random.Generator) -> np.ndarray:
    f = float(np.clip(band.freq * 2 ** (p.tuning / 12), 1.0, MAX_F))
    half = band.width * f / 2
    carrier = np.cos(TWO_PI * f * np.arange(n) / RATE + rng.uniform(0, TWO_PI))
    if half >= 1.0:
        lead = min(int(3 * RATE / half), RATE // 5)  # let the filter settle: no fade-in at the start
        sos = butter(2, min(half, MAX_F), fs=RATE, output="sos")
        lp = sosfilt(sos, rng.standard_normal(n + lead))[lead:]
        carrier = carrier * lp / max(float(np.sqrt(np.mean(lp ** 2))), 1e-12)
    return carrier * band.env.at(n, p.stretch) * band.gain


def cutoff(env: Envelope, n: int, stretch: float = 1.0, scale: float = 1.0) -> np.ndarray:
    """The filter cutoff (Hz) over n samples from the filter envelope (see the module docstring)."""
    level = np.clip(env.at(n, stretch), 0.0, 1.0)
    return np.clip(RATE / np.pi * np.arcsin(level / 2) * scale, 10.0, MAX_F)


def _biquad(fc: float, q: float, highpass: bool) -> tuple[np.ndarray, np.ndarray]:
    """RBJ cookbook low- or high-pass: (b, a), normalised so that a[0] = 1."""
    w = TWO_PI * fc / RATE
    cos, alpha = np.cos(w), np.sin(w) / (2 * q)
    g = (1 + cos) / 2 if highpass else (1 - cos) / 2
    b = np.array([g, -2 * g, g]) if highpass else np.array([g, 2 * g, g])
    a = np.array([1 + alpha, -2 * cos, 1 - alpha])
    return b / a[0], a / a[0]


def _filter(x: np.ndarray, p: Preset) -> np.ndarray:
    """The time-varying resonant filter, block by block. ``x``: (n,)."""
    n = x.size
    fc = cutoff(p.filter_env, n, p.stretch, p.cutoff_scale)
    steps = np.round(24 * np.log2(fc[::BLOCK]))  # one cutoff per block, on a 1/24-octave grid
    starts = np.flatnonzero(np.diff(steps, prepend=np.nan)) * BLOCK  # where the cutoff changes
    q = 0.7071 / (1 - 0.93 * p.resonance)
    out = np.empty_like(x)
    zi = np.zeros(2)  # the transposed direct form's state, carried across coefficient changes
    for i, start in enumerate(starts):
        stop = starts[i + 1] if i + 1 < len(starts) else n
        b, a = _biquad(2 ** (steps[start // BLOCK] / 24), q, p.highpass)
        out[start:stop], zi = lfilter(b, a, x[start:stop], zi=zi)
    return out


def _distort(x: np.ndarray, p: Preset) -> np.ndarray:
    d = p.distortion
    y = np.clip(x * 10 ** (d.clip_db / 20), -1.0, 1.0)
    if d.rate:
        hold = 2 ** d.rate
        y = np.repeat(y[::hold], hold)[: y.size]
    if d.bits:
        steps = 2.0 ** (15 - 2 * d.bits)  # 16 − 2·bits bits over -1..1
        y = np.round(y * steps) / steps
    return y


def render(p: Preset, seconds: float = RENDER_SECONDS, seed: Optional[int] = None) -> np.ndarray:
    """Render ``p`` for its duration, at most ``seconds``. Returns (n,) float32 at 44.1 kHz, n ≥ 1.

    Noise comes from ``seed`` (default ``p.seed``), one independent stream per part, so switching a part
    off does not change the others.
    """
    n = max(1, int(round(min(p.duration(), seconds) * RATE)))
    base = p.seed if seed is None else seed
    rngs = [np.random.default_rng([base, i]) for i in range(3)]
    pitch = tone_pitch(p, n)
    out = np.zeros(n)
    if p.tone.on:
        out += _tone(p, n, pitch)
    if p.noise.on:
        out += _noise(p, n, rngs[0])
    for band, rng in ((p.band1, rngs[1]), (p.band2, rngs[2])):
        if band.on:
            out += _band(p, band, n, rng)
    if p.overtones.on:
        out += _overtones(p, n, pitch)
    if p.filter_on:
        out = _filter(out, p)
    out *= 10 ** (p.level_db / 20)
    if p.distortion.on:
        out = _distort(out, p)
    return out.astype(np.float32)


def render_clip(p: Preset, sample_rate: int, max_seconds: float = RENDER_SECONDS) -> np.ndarray:
    """A corpus loader: render, resample to ``sample_rate``. Raises :class:`AudioError` on failure."""
    try:
        with np.errstate(divide="raise", over="raise", invalid="raise"):
            x = render(p, min(max_seconds, RENDER_SECONDS))
    except (ValueError, FloatingPointError, ZeroDivisionError) as e:
        raise AudioError(p.name, f"cannot render ({e})") from None
    if not np.all(np.isfinite(x)):
        raise AudioError(p.name, "cannot render (non-finite samples)")
    return resample(x, RATE, sample_rate)
