"""Hi-fi rendering and the generator's finishing steps in numpy, for a player without torch.

What :class:`neuraldrum.models.vocos.GriffinLimSteps` and :meth:`neuraldrum.graphs.Generator.finish` compute, with
the same arithmetic to float rounding: fast Griffin-Lim iterations (Perraudin et al. 2013) on the Mel's own STFT
grid started from the inverter's waveform, then the fades and the −1 dBFS peak. The ONNX engine's ``mixer`` graph
gives the inverter's waveform before those steps and the magnitudes Griffin-Lim aims at; this module does the rest.
"""
from __future__ import annotations

import math

import numpy as np

from .sampler import PEAK as OUT_PEAK

FADE_IN = 16  # samples (graphs.FADE_IN)
FADE_OUT_MS = 10.0  # (graphs.FADE_OUT_MS)


def hann(n_fft: int, win_length: int) -> np.ndarray:
    """A periodic Hann window of ``win_length`` zero-padded on both sides to ``n_fft`` (as ``torch.stft``), (n_fft,)."""
    win = int(win_length or n_fft)
    if not 0 < win <= n_fft:
        raise ValueError(f"window length {win} must be from 1 to n_fft {n_fft}")
    w = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)).astype(np.float32)
    left = (n_fft - win) // 2
    return np.pad(w, (left, n_fft - win - left))


def envelope(window: np.ndarray, hop: int, frames: int) -> np.ndarray:
    """The summed squared window under the output's samples for ``frames`` centred frames, floored at 1e-8:
    ((frames − 1) · hop,) float32."""
    n_fft, k = window.shape[0], window.shape[0] // hop
    sq = (window.astype(np.float32) ** 2).reshape(k, hop)
    full = np.zeros((frames + k - 1) * hop, np.float32)
    for j in range(k):
        full[j * hop:(j + frames) * hop] += np.tile(sq[j], frames)
    half = n_fft // 2
    return np.maximum(full[half:half + (frames - 1) * hop], np.float32(1e-8))


def griffin_lim_steps(wave: np.ndarray, target: np.ndarray, iters: int, n_fft: int, hop: int, win_length: int,
                      momentum: float = 0.99) -> np.ndarray:
    """``iters`` fast Griffin-Lim iterations from ``wave``.

    Args:
        wave: (B, N) float32, the inverter's output before the fades.
        target: (B, J, n_fft/2+1) float32, the magnitudes aimed at per frame (frames aimed at silence are 0).
        iters: the number of iterations (0: ``wave`` unchanged).
        n_fft, hop, win_length: the Mel's STFT grid (``hop`` divides ``n_fft``).
        momentum: the extrapolation α of fast Griffin-Lim, from the third iteration.

    Returns:
        (B, N) float32: the frames' span replaced, the last part of a hop past the frames kept as it was.
    """
    wave = np.ascontiguousarray(wave, np.float32)
    B, N = wave.shape
    half, k = n_fft // 2, n_fft // hop
    J = min(target.shape[1], 1 + N // hop)
    L = (J - 1) * hop
    win = hann(n_fft, win_length)
    env = envelope(win, hop, J)[None]
    out = np.pad(wave, ((0, 0), (half, half)))  # the output so far, zero-padded for centred frames
    buf = np.empty((B, (J + k - 1) * hop), np.float32)
    mags = np.ascontiguousarray(target[:, :J], np.float32)
    live = np.flatnonzero(mags.max(axis=(0, 2)) > 0)
    j0, j1 = (int(live[0]), int(live[-1]) + 1) if live.size else (0, 0)
    mags = mags[:, j0:j1]
    if iters and j0 == j1:  # nothing to put in: every iteration gives silence over the frames
        out[:, half:half + L] = 0.0
        return out[:, half:half + N].copy()
    prev = moved = None
    for i in range(iters):
        x = out
        if prev is not None:  # x = w + α (w − w_prev)
            np.subtract(out, prev, out=moved)
            moved *= np.float32(momentum)
            moved += out
            x = moved
        if momentum and i > 0:
            if prev is None:
                prev, moved = out.copy(), np.empty_like(out)
            else:
                prev[...] = out
        frames = np.lib.stride_tricks.sliding_window_view(x, n_fft, axis=-1)[:, ::hop][:, j0:j1] * win
        spec = np.fft.rfft(frames, axis=-1).astype(np.complex64)  # (B, J', bins)
        m = np.abs(spec)
        np.maximum(m, 1e-12, out=m)
        np.divide(mags, m, out=m)
        spec *= m
        frames = np.fft.irfft(spec, n=n_fft, axis=-1).astype(np.float32)
        frames *= win
        parts = frames.reshape(B, j1 - j0, k, hop)
        buf[:] = 0.0
        for j in range(k):  # frame t's j-th hop lands at samples (t + j) · hop
            buf[:, (j0 + j) * hop:(j1 + j) * hop].reshape(B, j1 - j0, hop)[...] += parts[:, :, j]
        np.divide(buf[:, half:half + L], env, out=out[:, half:half + L])
    return out[:, half:half + N].copy()


def finish(wave: np.ndarray, n_samples: int, sample_rate: int) -> np.ndarray:
    """(B, M) raw inverter output → (B, n_samples) float32: cut or padded, a 16-sample linear fade-in, a 10 ms
    squared-cosine fade-out, peak at −1 dBFS."""
    wave = np.asarray(wave, np.float32)
    n = int(n_samples)
    wave = wave[:, :n] if wave.shape[1] >= n else np.pad(wave, ((0, 0), (0, n - wave.shape[1])))
    ramp = np.ones(n, np.float32)
    ramp[:FADE_IN] = np.linspace(0, 1, FADE_IN, dtype=np.float32)
    n_out = int(FADE_OUT_MS * sample_rate / 1000)
    ramp[n - n_out:] = np.cos(np.linspace(0, math.pi / 2, n_out, dtype=np.float32)) ** 2
    wave = wave * ramp
    peak = np.maximum(np.abs(wave).max(axis=1, keepdims=True), np.float32(1e-6))
    return (wave * (np.float32(OUT_PEAK) / peak)).astype(np.float32)


LEVEL_MS = 300.0  # loudness: the RMS over a sound's first 300 ms (its attack and body, where a hit is heard)
LIMIT_LOOKAHEAD_MS = 2.0  # the peak limiter's look-ahead, also its attack and release ramps
LIMIT_HOLD_MS = 10.0  # how long it holds its gain after a peak before releasing
MATCH_DB = 0.1  # hi-fi's loudness is matched to the playing path's within this (dB)
MATCH_ROUNDS = 8  # at most this many rounds of raising a limited sound's gain
# the limiter takes a sound's peak down by at most this much (dB): a sharper hi-fi sound that would need more to be
# as loud as the playing path's stays that much quieter instead (a transient crushed by 10 dB is worse than a quiet one)
MAX_LIMIT_DB = 6.0


def loudness_db(wave: np.ndarray, sample_rate: int) -> np.ndarray:
    """(B, N) → (B,) float64: the RMS over the first :data:`LEVEL_MS` in dB (full scale 0 dB; silence −200)."""
    n = max(1, int(round(LEVEL_MS * sample_rate / 1000)))
    head = np.asarray(wave, np.float64)[:, :n]
    return 10 * np.log10(np.maximum(np.mean(head ** 2, axis=1), 1e-20))


def limit(wave: np.ndarray, peak: float, sample_rate: int) -> np.ndarray:
    """A look-ahead peak limiter: each sound of (B, N) whose peak is over ``peak`` gets a smooth gain under 1 where
    needed — it falls over :data:`LIMIT_LOOKAHEAD_MS` before a sample that is too loud, holds
    :data:`LIMIT_HOLD_MS` after it and rises again over the look-ahead — so no sample is over ``peak``. A sound at or
    under ``peak`` is returned unchanged (the same values). float32."""
    wave = np.asarray(wave, np.float32)
    out = wave.copy()
    la = max(1, int(round(LIMIT_LOOKAHEAD_MS * sample_rate / 1000)))
    hold = int(round(LIMIT_HOLD_MS * sample_rate / 1000))
    for b in np.flatnonzero(np.abs(wave).max(axis=1) > peak):
        x = wave[b].astype(np.float64)
        need = np.minimum(1.0, peak / np.maximum(np.abs(x), 1e-30))  # the gain each sample needs at most
        # the least over [n - hold, n + la - 1]: every window of la gains averaged below holds sample n's need
        held = _window_min(np.pad(need, (hold, la - 1), constant_values=1.0), hold + la)
        c = np.concatenate(([0.0], np.cumsum(np.pad(held, (la - 1, 0), constant_values=1.0))))
        gain = (c[la:] - c[:-la]) / la  # the mean of held over [n - la + 1, n]: ≤ need[n]
        out[b] = np.clip(x * gain, -peak, peak)  # (the clip only takes float rounding)
    return out


def _window_min(a: np.ndarray, w: int) -> np.ndarray:
    """out[i] = min(a[i:i + w]), (len(a) − w + 1,): by doubling spans, log2(w) elementwise minima."""
    out, span = a, 1
    while span * 2 <= w:
        out, span = np.minimum(out[:-span], out[span:]), span * 2  # out[i] = min(a[i:i + span])
    n = len(a) - w + 1
    return np.minimum(out[:n], out[w - span:w - span + n])


def match_level(hifi: np.ndarray, live: np.ndarray, sample_rate: int, peak: float = OUT_PEAK) -> np.ndarray:
    """Hi-fi sounds (B, N) made as loud as the playing path's sounds of the same voices (:func:`loudness_db`), so
    swapping one for the other changes detail, not level; a sound the gain would take over ``peak`` goes through
    :func:`limit`, and its gain is raised again by what the limiter took from its loudness (a few rounds, to
    within :data:`MATCH_DB`), never past :data:`MAX_LIMIT_DB` of limiting. Both backends' hi-fi rendering ends
    here. float32."""
    hifi = np.asarray(hifi, np.float32)
    want = loudness_db(live, sample_rate)
    gain = 10 ** ((want - loudness_db(hifi, sample_rate)) / 20)
    gain[~np.isfinite(gain)] = 1.0
    top = np.abs(hifi).max(axis=1)
    cap = np.where(top > 0, peak * 10 ** (MAX_LIMIT_DB / 20) / np.maximum(top, 1e-30), np.inf)
    gain = np.minimum(gain, cap)
    out = limit(hifi * gain[:, None].astype(np.float32), peak, sample_rate)
    todo = np.flatnonzero(np.abs(hifi).max(axis=1) * gain > peak)  # the limited sounds
    for _ in range(MATCH_ROUNDS):  # (each sound on its own: the same result whatever else is in the batch)
        miss = want[todo] - loudness_db(out[todo], sample_rate)
        keep = (np.abs(miss) > MATCH_DB) & ~((miss > 0) & (gain[todo] >= cap[todo]))  # not those at the cap
        todo, miss = todo[keep], miss[keep]
        if not todo.size:
            break
        gain[todo] = np.minimum(gain[todo] * 10 ** (miss / 20), cap[todo])
        out[todo] = limit(hifi[todo] * gain[todo, None].astype(np.float32), peak, sample_rate)
    return out
