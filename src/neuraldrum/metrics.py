"""Measurements known on paper, used by the evaluator: spectral distances between waveforms, onset, envelope
and decay descriptors of single drum hits, and distribution distances between sets of embeddings.

Pure functions of arrays: no models, no files. Waveforms are (B, N) (a lone (N,) clip is treated as B = 1);
inputs may be numpy arrays or torch tensors; results are numpy arrays or python floats (except the tensor
helpers ``stft_mag``, ``spectral_convergence`` and ``log_l1``, which stay in torch for use on model outputs).
"""
from __future__ import annotations

import warnings
from typing import Optional, Sequence

import numpy as np
import scipy.linalg
import scipy.spatial.distance
import scipy.stats
import torch


def _np(x) -> np.ndarray:
    """Any array-like (torch tensors included) → float64 numpy array."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def _batch(wave) -> np.ndarray:
    """(N,) or (B, N) waveform → (B, N) float64."""
    w = _np(wave)
    if w.ndim == 1:
        w = w[None]
    if w.ndim != 2:
        raise ValueError(f"expected a waveform of shape (B, N) or (N,), got {w.shape}")
    return w


def _pair(est_wave, ref_wave) -> tuple[np.ndarray, np.ndarray]:
    est, ref = _batch(est_wave), _batch(ref_wave)
    if est.shape != ref.shape:
        raise ValueError(f"est and ref must have the same shape, got {est.shape} and {ref.shape}")
    return est, ref


# ---------------------------------------------------------------- spectral distances

def stft_mag(wave, n_fft: int = 2048, hop: int = 256, win: Optional[int] = None) -> torch.Tensor:
    """STFT magnitude with a periodic Hann window, centred frames, zero padding at the edges.

    Args:
        wave: (B, N) or (N,) waveform, numpy or torch. float64 stays float64, anything else becomes float32.
        n_fft: FFT size.
        hop: hop length in samples.
        win: window length in samples (≤ n_fft, centred in the frame); None → n_fft.

    Returns:
        (B, n_fft // 2 + 1, 1 + N // hop) magnitudes.
    """
    x = wave.detach().cpu() if isinstance(wave, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(wave))
    x = x.double() if x.dtype == torch.float64 else x.float()
    if x.ndim == 1:
        x = x[None]
    win = n_fft if win is None else win
    window = torch.hann_window(win, dtype=x.dtype)
    spec = torch.stft(x, n_fft, hop_length=hop, win_length=win, window=window, center=True,
                      pad_mode="constant", return_complex=True)
    return spec.abs()


def spectral_convergence(est, ref, eps: float = 1e-8) -> torch.Tensor:
    """||ref - est||_F / ||ref||_F per item.

    Args:
        est: (B, F, T) estimated magnitudes (numpy or torch).
        ref: (B, F, T) reference magnitudes.

    Returns:
        (B,) spectral convergence; a silent reference divides by eps instead of 0.
    """
    est, ref = torch.as_tensor(est), torch.as_tensor(ref)
    num = torch.linalg.norm((ref - est).flatten(1), dim=1)
    return num / torch.linalg.norm(ref.flatten(1), dim=1).clamp(min=eps)


def log_l1(est, ref, floor: float = 1e-5) -> torch.Tensor:
    """Mean |log max(est, floor) - log max(ref, floor)| per item (natural log).

    Args:
        est: (B, F, T) estimated magnitudes (numpy or torch).
        ref: (B, F, T) reference magnitudes.
        floor: magnitudes are clamped to at least this before the log.

    Returns:
        (B,) mean absolute log difference.
    """
    est, ref = torch.as_tensor(est), torch.as_tensor(ref)
    return (torch.log(est.clamp(min=floor)) - torch.log(ref.clamp(min=floor))).abs().flatten(1).mean(1)


def log_spectral_distance(est_wave, ref_wave, n_fft: int = 2048, hop: int = 256, floor: float = 1e-8) -> np.ndarray:
    """Log-spectral distance in dB: per frame sqrt(mean over bins of (10·log10(P_ref / P_est))²), averaged over
    all frames. Power spectra are floored at ``floor``, so bins silent in both count as equal.

    Args:
        est_wave: (B, N) estimated waveform.
        ref_wave: (B, N) reference waveform.
        n_fft: FFT size (window length too).
        hop: hop length in samples.
        floor: lower bound on the power spectra.

    Returns:
        (B,) distance in dB; a copy scaled by a gives |20·log10(a)|.
    """
    est, ref = _pair(est_wave, ref_wave)
    p_est = np.maximum(stft_mag(est, n_fft, hop).numpy() ** 2, floor)
    p_ref = np.maximum(stft_mag(ref, n_fft, hop).numpy() ** 2, floor)
    diff_db = 10.0 * np.log10(p_ref / p_est)                       # (B, F, T)
    return np.sqrt(np.mean(diff_db ** 2, axis=1)).mean(axis=1)


def multi_resolution_stft(est_wave, ref_wave, resolutions: Sequence[tuple[int, int, int]] = (
        (512, 128, 512), (1024, 256, 1024), (2048, 512, 2048))) -> np.ndarray:
    """Multi-resolution STFT distance: mean over resolutions of spectral convergence plus the mean absolute
    natural-log magnitude difference (magnitudes floored at 1e-5: far below audibility, above float32 rounding noise).

    Args:
        est_wave: (B, N) estimated waveform.
        ref_wave: (B, N) reference waveform.
        resolutions: (n_fft, hop, win_length) triples.

    Returns:
        (B,) distance; a copy scaled by a gives |1 - a| + |ln a|.
    """
    est, ref = _pair(est_wave, ref_wave)
    total = np.zeros(len(est))
    for n_fft, hop, win in resolutions:
        m_est, m_ref = stft_mag(est, n_fft, hop, win), stft_mag(ref, n_fft, hop, win)
        total += (spectral_convergence(m_est, m_ref) + log_l1(m_est, m_ref, floor=1e-5)).numpy()
    return total / len(resolutions)


# ---------------------------------------------------------------- onsets and envelopes

def onset_time(wave, sample_rate: int, threshold_db: float = -30.0, window: int = 64) -> np.ndarray:
    """Time of the first sample at which a causal RMS envelope (the last ``window`` samples, zeros before
    the clip) rises above the envelope's peak + ``threshold_db``.

    Args:
        wave: (B, N) waveform.
        sample_rate: in Hz.
        threshold_db: threshold relative to the envelope peak, in dB (negative).
        window: RMS window length in samples.

    Returns:
        (B,) onset times in seconds; nan for a silent item.
    """
    w = _batch(wave)
    power = np.cumsum(np.pad(w ** 2, ((0, 0), (window, 0))), axis=1)
    env = np.sqrt(np.maximum(power[:, window:] - power[:, :-window], 0.0) / window)   # (B, N)
    peak = env.max(axis=1)
    above = env > peak[:, None] * 10.0 ** (threshold_db / 20.0)
    out = np.argmax(above, axis=1) / float(sample_rate)
    return np.where(peak > 0, out, np.nan)


def onset_error_ms(est_wave, ref_wave, sample_rate: int) -> np.ndarray:
    """|onset(est) - onset(ref)| in milliseconds (see ``onset_time``).

    Args:
        est_wave: (B, N) estimated waveform.
        ref_wave: (B, N) reference waveform.
        sample_rate: in Hz.

    Returns:
        (B,) absolute onset difference in ms; nan where either item is silent.
    """
    est, ref = _pair(est_wave, ref_wave)
    return 1000.0 * np.abs(onset_time(est, sample_rate) - onset_time(ref, sample_rate))


def _frame_len(sample_rate: int, frame_ms: float) -> int:
    return max(1, int(round(sample_rate * frame_ms / 1000.0)))


def envelope_db(wave, sample_rate: int, frame_ms: float = 5.0, floor_db: float = -80.0) -> np.ndarray:
    """RMS envelope over non-overlapping frames, in dB relative to each item's own loudest frame.

    The last, partial frame is the RMS of the samples it has. A silent item is ``floor_db`` throughout.

    Args:
        wave: (B, N) waveform.
        sample_rate: in Hz.
        frame_ms: frame length in ms (rounded to whole samples: 110 at 22050 Hz).
        floor_db: lower bound of the result.

    Returns:
        (B, ceil(N / frame_len)) envelope in dB, max 0 (unless silent).
    """
    w = _batch(wave)
    L = _frame_len(sample_rate, frame_ms)
    n_frames = -(-w.shape[1] // L)
    pad = n_frames * L - w.shape[1]
    sq = np.pad(w ** 2, ((0, 0), (0, pad))).reshape(len(w), n_frames, L).sum(axis=2)
    counts = np.full(n_frames, float(L))
    counts[-1] = L - pad
    rms = np.sqrt(sq / counts)                                     # (B, frames)
    peak = rms.max(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        db = 20.0 * np.log10(rms / peak)
    return np.where(np.isfinite(db), np.maximum(db, floor_db), floor_db)


def envelope_error_db(est_wave, ref_wave, sample_rate: int) -> np.ndarray:
    """Mean |envelope_db(est) - envelope_db(ref)| over frames; both are peak-normalised, so gain is ignored.

    Args:
        est_wave: (B, N) estimated waveform.
        ref_wave: (B, N) reference waveform.
        sample_rate: in Hz.

    Returns:
        (B,) mean absolute envelope difference in dB.
    """
    est, ref = _pair(est_wave, ref_wave)
    return np.abs(envelope_db(est, sample_rate) - envelope_db(ref, sample_rate)).mean(axis=1)


def spectral_centroid(wave, sample_rate: int, n_fft: int = 2048, hop: int = 256) -> np.ndarray:
    """Magnitude-weighted mean frequency of the whole clip: STFT magnitudes (Hann, see ``stft_mag``) summed over
    frames, then sum(f · |X(f)|) / sum(|X(f)|). Centred frames see a sound that is cut off at the clip's edges
    as a click: a sine without fades reads high (a 100 Hz one as ~300 Hz); with 20 ms fades it is within 0.1%.

    Args:
        wave: (B, N) waveform.
        sample_rate: in Hz.
        n_fft: FFT size.
        hop: hop length in samples.

    Returns:
        (B,) centroid in Hz; nan for a silent item.
    """
    mag = stft_mag(_batch(wave), n_fft, hop).numpy().sum(axis=2)  # (B, F)
    freqs = np.arange(mag.shape[1]) * sample_rate / n_fft
    total = mag.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, (mag * freqs).sum(axis=1) / total, np.nan)


def decay_time(wave, sample_rate: int, drop_db: float = 40.0, frame_ms: float = 5.0) -> np.ndarray:
    """Time from the envelope peak to the last frame (at or after the peak) still above -``drop_db``, on the
    frame grid of ``envelope_db``. For exp(-t/τ) and drop_db = 40 this is τ·ln(100), less up to a frame.
    A sound still ringing at the end of the clip gets the time to the last frame (a lower bound).

    Args:
        wave: (B, N) waveform.
        sample_rate: in Hz.
        drop_db: how far below the peak, in dB (positive).
        frame_ms: envelope frame length in ms.

    Returns:
        (B,) decay times in seconds; nan for a silent item.
    """
    w = _batch(wave)
    env = envelope_db(w, sample_rate, frame_ms, floor_db=min(-80.0, -drop_db - 1.0))   # (B, frames)
    idx = np.arange(env.shape[1])
    peak = np.argmax(env, axis=1)
    alive = (env > -drop_db) & (idx[None] >= peak[:, None])
    last = env.shape[1] - 1 - np.argmax(alive[:, ::-1], axis=1)
    out = (last - peak) * _frame_len(sample_rate, frame_ms) / float(sample_rate)
    return np.where(np.abs(w).max(axis=1) > 0, out, np.nan)


def max_level_drop_db(wave, sample_rate: int, frame_ms: float = 5.0, audible_db: float = -70.0,
                      silence_db: float = -100.0, skip_end_ms: float = 25.0) -> np.ndarray:
    """The steepest fall of a sound's level from one frame to the next, after its loudest frame: how hard a gate
    cuts it. Frame levels are RMS in dBFS (not relative), counted from frames above ``audible_db`` only, with
    anything below ``silence_db`` taken as ``silence_db``; the last ``skip_end_ms`` (a designed fade-out) are
    left out. A sound cut from -40 dBFS to digital silence scores 60 dB; a natural decay a few dB per frame.

    Args:
        wave: (B, N) waveform.
        sample_rate: in Hz.
        frame_ms: frame length in ms.

    Returns:
        (B,) dB (0 when nothing falls).
    """
    w = _batch(wave)
    L = _frame_len(sample_rate, frame_ms)
    n = w.shape[1] // L
    with np.errstate(divide="ignore"):
        db = np.maximum(10.0 * np.log10((w[:, : n * L].reshape(len(w), n, L) ** 2).mean(axis=2)), silence_db)
    stop = n - int(np.ceil(skip_end_ms / frame_ms))
    out = np.zeros(len(w))
    for i, d in enumerate(db):
        p = int(np.argmax(d))
        a, b = d[p:stop - 1], d[p + 1:stop]
        drops = (a - b)[a > audible_db]
        out[i] = max(0.0, float(drops.max())) if drops.size else 0.0
    return out


# ---------------------------------------------------------------- distances between sets of embeddings

def frechet_distance(a, b, eps: float = 1e-6) -> float:
    """Fréchet distance between Gaussians fitted to two sets of embeddings:
    ||μa - μb||² + Tr(Σa + Σb - 2 (Σa Σb)^½). Covariances are the unbiased sample covariances; if the matrix
    square root is not finite (or scipy warns that it is singular), eps·I is added to both covariances inside
    the root and it is taken again.

    Args:
        a: (N, D) embeddings.
        b: (M, D) embeddings.
        eps: regulariser for near-singular covariances.

    Returns:
        The distance (≥ 0 up to round-off).
    """
    a, b = _np(a), _np(b)
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a = np.atleast_2d(np.cov(a, rowvar=False))
    cov_b = np.atleast_2d(np.cov(b, rowvar=False))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", scipy.linalg.LinAlgWarning)
        root = scipy.linalg.sqrtm(cov_a @ cov_b)
    if caught or not np.all(np.isfinite(root)):
        off = eps * np.eye(len(cov_a))
        root = scipy.linalg.sqrtm((cov_a + off) @ (cov_b + off))
    root = np.real(root)
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(root))


def _poly_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² with k(x, y) = (x·y / D + 1)³. x, y: (m, D) with the same m."""
    d, m = x.shape[1], len(x)
    kxx = (x @ x.T / d + 1.0) ** 3
    kyy = (y @ y.T / d + 1.0) ** 3
    kxy = (x @ y.T / d + 1.0) ** 3
    off_diag = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(off_diag - 2.0 * kxy.mean())


def kernel_inception_distance(a, b, subsets: int = 10, subset_size: int = 100, seed: int = 0) -> tuple[float, float]:
    """Kernel inception distance: unbiased MMD² with the cubic polynomial kernel, over random subsets.

    Args:
        a: (N, D) embeddings.
        b: (M, D) embeddings.
        subsets: number of random subsets.
        subset_size: rows drawn (without replacement) from each set per subset, capped at min(N, M).
        seed: seed of the subset draws.

    Returns:
        (mean, std) of MMD² over the subsets; about 0 (possibly slightly negative) for one distribution.
    """
    a, b = _np(a), _np(b)
    m = min(subset_size, len(a), len(b))
    if m < 2:
        raise ValueError("kernel_inception_distance needs at least 2 rows in each set")
    rng = np.random.default_rng(seed)
    vals = [_poly_mmd2(a[rng.choice(len(a), m, replace=False)], b[rng.choice(len(b), m, replace=False)])
            for _ in range(subsets)]
    return float(np.mean(vals)), float(np.std(vals))


def inception_score(probs, eps: float = 1e-12) -> float:
    """exp(mean_i KL(p(y|x_i) || p(y))), with p(y) the mean of the rows.

    Args:
        probs: (N, C) class probabilities, rows summing to 1.
        eps: added inside the logs.

    Returns:
        The score, between 1 (all rows the same) and C (confident and evenly spread).
    """
    p = _np(probs)
    p_y = p.mean(axis=0, keepdims=True)
    kl = np.sum(np.where(p > 0, p * (np.log(p + eps) - np.log(p_y + eps)), 0.0), axis=1)
    return float(np.exp(kl.mean()))


def diversity(emb) -> float:
    """Mean pairwise Euclidean distance over pairs i < j.

    Args:
        emb: (N, D) embeddings.

    Returns:
        The mean distance; nan for fewer than 2 rows.
    """
    e = _np(emb)
    return float(scipy.spatial.distance.pdist(e).mean()) if len(e) >= 2 else float("nan")


def nearest_distance(query, ref, batch: int = 1024) -> np.ndarray:
    """Euclidean distance from each query row to its nearest reference row (a memorisation check).

    The nearest row is found with the expanded ||q||² + ||r||² - 2 q·r form, in batches of ``batch`` queries;
    the distance to it is then computed directly, so an exact copy gives exactly 0.

    Args:
        query: (N, D) embeddings.
        ref: (M, D) embeddings.
        batch: queries per block.

    Returns:
        (N,) distances.
    """
    q, r = _np(query), _np(ref)
    r_sq = np.sum(r ** 2, axis=1)
    out = np.empty(len(q))
    for s in range(0, len(q), batch):
        qb = q[s: s + batch]
        d2 = np.sum(qb ** 2, axis=1)[:, None] + r_sq[None] - 2.0 * qb @ r.T
        nearest = np.argmin(d2, axis=1)
        out[s: s + batch] = np.linalg.norm(qb - r[nearest], axis=1)
    return out


# ---------------------------------------------------------------- summaries

def spearman(x, y) -> float:
    """Spearman rank correlation over the pairs where neither value is nan.

    Args:
        x: (N,) values.
        y: (N,) values.

    Returns:
        The correlation; nan when fewer than 2 pairs remain or either side is constant.
    """
    x, y = _np(x).ravel(), _np(y).ravel()
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    if len(x) < 2 or np.all(x == x[0]) or np.all(y == y[0]):
        return float("nan")
    return float(scipy.stats.spearmanr(x, y)[0])


def grid_neighbour_distances(grid) -> np.ndarray:
    """Euclidean distances between horizontally, then vertically, adjacent cells of a grid of features.

    Args:
        grid: (H, W, D) features, e.g. of the sounds on the XY pad.

    Returns:
        (H·(W-1) + (H-1)·W,) distances: the H·(W-1) horizontal ones row by row, then the vertical ones.
    """
    g = _np(grid)
    horizontal = np.linalg.norm(g[:, 1:] - g[:, :-1], axis=-1)    # (H, W-1)
    vertical = np.linalg.norm(g[1:] - g[:-1], axis=-1)            # (H-1, W)
    return np.concatenate([horizontal.ravel(), vertical.ravel()])


def summarise(values) -> dict:
    """Summary of 1-D values, nan ignored.

    Args:
        values: (N,) values.

    Returns:
        {"mean", "median", "p95", "max"} as floats (nan when nothing is left) and "n", the count used.
    """
    v = _np(values).ravel()
    v = v[~np.isnan(v)]
    if len(v) == 0:
        return {"mean": float("nan"), "median": float("nan"), "p95": float("nan"), "max": float("nan"), "n": 0}
    return {"mean": float(v.mean()), "median": float(np.median(v)), "p95": float(np.percentile(v, 95)),
            "max": float(v.max()), "n": int(len(v))}
