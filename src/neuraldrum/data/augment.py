"""On-the-fly audio augmentation for training, deterministic given a ``torch.Generator``.

Three parts, each switchable in :class:`~neuraldrum.config.AugmentConfig`:

* **pitch**: resample by ``2 ** (semitones / 12)`` (band-limited, by FFT on a zero-padded copy so the
  attack's ringing does not wrap round), then re-fit to the clip length (zero-pad, or cut with a short
  fade-out). A drum pitched by a few semitones is still the same drum.
* **filter**: a gentle first-order colour: low shelf, high shelf (±``shelf_db``) or a one-pole low-pass,
  applied as the causal filter's exact frequency response on a zero-padded copy.
* **gain**: an attenuation in ``[-gain_db, 0]`` dB. Pitch and filter change the peak, so the clip is
  peak-normalised again *before* the gain (the corpus is peak-normalised); the gain is meant for the MCNN,
  whose Mel input carries the level. The WAE works on peak-normalised clips, so its task turns gain off.

All random numbers are drawn for every clip whether or not a part is on, so switching one part off does
not change the randomness of the others.
"""
from __future__ import annotations

import bisect
import functools
import math
from dataclasses import dataclass

import torch

from ..config import AugmentConfig

FILTER_LOW_SHELF, FILTER_HIGH_SHELF, FILTER_LOWPASS = 0, 1, 2


@dataclass
class AugmentParams:
    """Per-clip parameters, each a (B,) tensor; zeros/False mean "leave alone"."""

    semitones: torch.Tensor  # float
    filter_on: torch.Tensor  # bool
    filter_kind: torch.Tensor  # long, FILTER_*
    filter_hz: torch.Tensor  # float, corner frequency
    filter_db: torch.Tensor  # float, shelf gain
    gain_db: torch.Tensor  # float, <= 0

    def select(self, rows: torch.Tensor) -> "AugmentParams":
        """The parameters of rows ``rows`` (e.g. one DDP rank's shard)."""
        return AugmentParams(*(getattr(self, f)[rows] for f in self.__dataclass_fields__))


def draw(n: int, cfg: AugmentConfig, gen: torch.Generator, gain: bool = True) -> AugmentParams:
    """Draw parameters for ``n`` clips.

    Args:
        n: number of clips.
        cfg: which parts are on and their ranges.
        gen: the source of randomness.
        gain: False turns gain off whatever ``cfg`` says (the WAE's choice).
    """
    u = torch.rand(n, 8, generator=gen, dtype=torch.float64)
    pitch_on = (u[:, 0] < cfg.pitch_prob) & cfg.pitch
    semis = ((2 * u[:, 1] - 1) * cfg.pitch_semitones) * pitch_on
    filter_on = (u[:, 2] < cfg.filter_prob) & cfg.filter
    kind = torch.clamp((u[:, 3] * 3).long(), max=2)
    lo_hz = torch.where(kind == FILTER_LOW_SHELF, 100.0, torch.where(kind == FILTER_HIGH_SHELF, 2000.0, 3000.0))
    hi_hz = torch.where(kind == FILTER_LOW_SHELF, 1000.0, torch.where(kind == FILTER_HIGH_SHELF, 8000.0, 10000.0))
    hz = lo_hz * (hi_hz / lo_hz) ** u[:, 4]  # log-uniform
    fdb = (2 * u[:, 5] - 1) * cfg.shelf_db
    gdb = -u[:, 6] * cfg.gain_db * (cfg.gain and gain)
    return AugmentParams(semis.float(), filter_on, kind, hz.float(), fdb.float(), gdb.float())


def _smooth_numbers(limit: int) -> list[int]:
    """All 2^a · 3^b · 5^c ≤ limit, ascending (lengths the FFT handles fast)."""
    out, p2 = [], 1
    while p2 <= limit:
        p3 = p2
        while p3 <= limit:
            p5 = p3
            while p5 <= limit:
                out.append(p5)
                p5 *= 5
            p3 *= 3
        p2 *= 2
    return sorted(out)


@functools.lru_cache(maxsize=64)
def _fast_len(k: int) -> int:
    """The smallest 5-smooth length ≥ k."""
    smooth = _smooth_numbers(2 * k + 2)
    return smooth[bisect.bisect_left(smooth, k)]


@functools.lru_cache(maxsize=4096)
def _fft_sizes(n: int, ratio: float) -> tuple[int, int]:
    """FFT lengths (n_pad, m) with n_pad / m as close to ``ratio`` as fast lengths allow (≈ 0.2 %, 0.03 semitone).

    An FFT of a length with a large prime factor is 10-20× slower, so both lengths are 5-smooth. Both
    exceed ``1.25 n``, so the attack's pre-ringing, which wraps round to the end of the resampled buffer,
    always falls in the part that is cut away.
    """
    lo = 1.25 * n * max(1.0, ratio)
    smooth = _smooth_numbers(int(8 * n * max(ratio, 1.0 / ratio)) + 64)
    best = (math.inf, 2 * n, max(2, round(2 * n / ratio)))
    for n_pad in smooth:
        if n_pad < lo:
            continue
        if n_pad > 3 * lo:
            break
        k = bisect.bisect_left(smooth, n_pad / ratio)
        for m in smooth[max(0, k - 1): k + 1]:
            err = abs(n_pad / m / ratio - 1.0)
            if m >= 2 and err < best[0]:
                best = (err, n_pad, m)
    return best[1], best[2]


def pitch_shift(x: torch.Tensor, semitones: float, sample_rate: int, fade_ms: float = 10.0) -> torch.Tensor:
    """Resample one clip by ``2 ** (semitones / 12)`` (up = shorter and higher) and re-fit its length.

    Args:
        x: (N,) waveform.
    Returns:
        (N,) waveform.
    """
    if semitones == 0.0:
        return x
    n = x.shape[-1]
    n_pad, m = _fft_sizes(n, 2.0 ** (semitones / 12.0))
    ratio = n_pad / m
    spec = torch.fft.rfft(x, n=n_pad)
    keep = min(spec.shape[-1], m // 2 + 1)
    y = torch.fft.irfft(spec[..., :keep], n=m) * (m / n_pad)
    if y.shape[-1] >= n:
        y = y[..., :n].clone()
        fade = min(n, int(sample_rate * fade_ms / 1000))
        if fade > 0 and ratio < 1.0:  # the stretched sound may be cut mid-note
            y[..., n - fade:] *= torch.linspace(1.0, 0.0, fade, dtype=y.dtype, device=y.device)
    else:
        y = torch.nn.functional.pad(y, (0, n - y.shape[-1]))
    return y


def filter_response(kind: torch.Tensor, hz: torch.Tensor, db: torch.Tensor, n_fft: int,
                    sample_rate: int) -> torch.Tensor:
    """Frequency responses of first-order filters, (B, n_fft // 2 + 1) complex.

    One-pole low-pass ``H = (1 - a) / (1 - a e^{-jω})``, ``a = exp(-2π f_c / sr)``; low shelf
    ``1 + (g - 1) H``; high shelf ``1 + (g - 1)(1 - H)`` with ``g`` the linear gain.
    """
    w = torch.linspace(0, math.pi, n_fft // 2 + 1, dtype=torch.float64, device=hz.device)
    a = torch.exp(-2 * math.pi * hz.double() / sample_rate)[:, None]
    lp = (1 - a) / (1 - a * torch.exp(-1j * w)[None, :])
    g = (10.0 ** (db.double() / 20.0))[:, None]
    k = kind[:, None]
    h = torch.where(k == FILTER_LOWPASS, lp, torch.where(k == FILTER_LOW_SHELF, 1 + (g - 1) * lp, 1 + (g - 1) * (1 - lp)))
    return h.to(torch.complex64)


def apply(wave: torch.Tensor, p: AugmentParams, sample_rate: int) -> torch.Tensor:
    """Augment a batch.

    Args:
        wave: (B, N) peak-normalised clips.
        p: parameters for the B clips (on the CPU).
        sample_rate: Hz.
    Returns:
        (B, N): pitched and filtered clips, peak-normalised again, then attenuated by ``p.gain_db``.
    """
    b, n = wave.shape
    rows = [pitch_shift(wave[i], float(p.semitones[i]), sample_rate) for i in range(b)]
    out = torch.stack(rows) if b else wave
    if bool(p.filter_on.any()):
        on = torch.nonzero(p.filter_on).flatten()
        nf = _fast_len(int(1.25 * n))  # zero-padded so the filter's tail does not wrap round
        h = filter_response(p.filter_kind[on], p.filter_hz[on], p.filter_db[on], nf, sample_rate)
        sel = on.to(out.device)
        spec = torch.fft.rfft(out[sel], n=nf) * h.to(out.device)
        out = out.clone()
        out[sel] = torch.fft.irfft(spec, n=nf)[:, :n]
    changed = (p.semitones != 0) | p.filter_on
    if bool(changed.any()):
        peak = out.abs().amax(dim=1, keepdim=True).clamp(min=1e-8)
        out = torch.where(changed.to(out.device)[:, None], out / peak, out)
    gain = (10.0 ** (p.gain_db / 20.0)).to(out.device, out.dtype)
    return out * gain[:, None]


def augment(wave: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator, sample_rate: int,
            gain: bool = True) -> torch.Tensor:
    """Draw parameters with ``gen`` and apply them. (B, N) → (B, N)."""
    return apply(wave, draw(wave.shape[0], cfg, gen, gain=gain), sample_rate)
