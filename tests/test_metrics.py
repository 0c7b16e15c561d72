"""Every metric against a case whose answer is known on paper."""
import math

import numpy as np
import pytest
import torch

from neuraldrum import metrics

SR = 22050


def _noise_burst(rng, n=8192, start=0, tau=0.05):
    """White noise with an exponential decay, starting at sample ``start``: (n,) float64."""
    x = np.zeros(n)
    t = np.arange(n - start) / SR
    x[start:] = rng.standard_normal(n - start) * np.exp(-t / tau)
    return x


def _faded_sine(freqs, n=8192, fade=441):
    """Sum of unit sines with raised-cosine fades in and out, so the clip edges add no click: (n,)."""
    t = np.arange(n) / SR
    x = sum(np.sin(2 * np.pi * f * t) for f in freqs)
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(fade) / fade)
    x[:fade] *= ramp
    x[-fade:] *= ramp[::-1]
    return x


# ---------------------------------------------------------------- spectral distances

def test_stft_mag_shape_and_sine_peak():
    """A bin-centred sine of amplitude A: magnitude A · sum(window) / 2 in its bin, in the middle frames."""
    n_fft, hop, amp, k = 512, 128, 0.7, 20
    t = np.arange(4096)
    x = amp * np.cos(2 * np.pi * k * t / n_fft)
    mag = metrics.stft_mag(x, n_fft, hop)
    assert mag.shape == (1, n_fft // 2 + 1, 1 + 4096 // hop) and mag.dtype == torch.float64
    mid = mag[0, :, 10].numpy()
    assert np.argmax(mid) == k
    assert mid[k] == pytest.approx(amp * n_fft / 4, rel=1e-9)      # periodic Hann sums to n_fft / 2
    batch = metrics.stft_mag(torch.from_numpy(np.stack([x, 2 * x]).astype(np.float32)), n_fft, hop)
    assert batch.shape == (2, n_fft // 2 + 1, 33) and batch.dtype == torch.float32
    assert torch.allclose(batch[1], 2 * batch[0], rtol=1e-5, atol=1e-4)


def test_spectral_convergence_and_log_l1_of_a_scaled_copy(rng):
    ref = metrics.stft_mag(np.stack([_noise_burst(rng), _noise_burst(rng)]))
    assert torch.all(metrics.spectral_convergence(ref, ref) == 0)
    for a in (0.5, 1.0, 3.0):
        sc = metrics.spectral_convergence(a * ref, ref)
        assert sc.shape == (2,)
        assert np.allclose(sc.numpy(), abs(1 - a), atol=1e-12)
    ll = metrics.log_l1(2.0 * ref.numpy(), ref.numpy(), floor=1e-12)   # numpy input works too
    assert np.allclose(ll.numpy(), math.log(2.0), atol=1e-9)


def test_log_spectral_distance(rng):
    ref = np.stack([rng.standard_normal(4096) * 0.1 for _ in range(3)])
    assert np.allclose(metrics.log_spectral_distance(ref, ref), 0.0)
    for a in (0.1, 0.5, 2.0):
        lsd = metrics.log_spectral_distance(a * ref, ref, n_fft=512, hop=128)
        assert lsd.shape == (3,)
        assert np.allclose(lsd, abs(20 * math.log10(a)), rtol=1e-9)
    other = rng.standard_normal((3, 4096)) * 0.1
    assert np.all(metrics.log_spectral_distance(other, ref, n_fft=512, hop=128) > 3.0)


def test_multi_resolution_stft(rng):
    ref = rng.standard_normal((2, 4096)) * 0.3
    assert np.allclose(metrics.multi_resolution_stft(ref, ref), 0.0)
    for a in (0.25, 1.5):
        d = metrics.multi_resolution_stft(a * ref, ref)
        assert np.allclose(d, abs(1 - a) + abs(math.log(a)), rtol=1e-9)
    d_other = metrics.multi_resolution_stft(rng.standard_normal((2, 4096)) * 0.3, ref)
    assert np.all(d_other > 1.0)                                   # independent noise: SC ≈ √2-ish, log term ≈ 0.8
    with pytest.raises(ValueError):
        metrics.multi_resolution_stft(ref[:, :4000], ref)


# ---------------------------------------------------------------- onsets and envelopes

def test_onset_time_of_a_burst_and_silence(rng):
    starts = [0, 300, 5000]
    waves = np.stack([_noise_burst(rng, start=s) for s in starts] + [np.zeros(8192)])
    waves[np.arange(3), starts] = 1.0                              # a loud first sample: onset exactly there
    on = metrics.onset_time(waves, SR)
    assert np.allclose(on[:3], np.array(starts) / SR)
    assert np.isnan(on[3])


def test_onset_error_of_a_delayed_copy(rng):
    ref = np.stack([_noise_burst(rng, start=500), _noise_burst(rng, start=2000, tau=0.01)])
    delay = 441                                                    # 20 ms
    est = np.zeros_like(ref)
    est[:, delay:] = ref[:, :-delay]
    assert np.allclose(metrics.onset_error_ms(ref, ref, SR), 0.0)
    assert np.allclose(metrics.onset_error_ms(est, ref, SR), 20.0, atol=1e-9)


def test_envelope_db_of_a_two_level_signal():
    """110-sample frames at 22050 Hz: ten frames at level 1, ten at 0.1 (-20 dB), then silence (the floor)."""
    x = np.concatenate([np.ones(1100), -0.1 * np.ones(1100), np.zeros(330)])
    env = metrics.envelope_db(x, SR)
    assert env.shape == (1, 23)
    assert np.allclose(env[0], [0.0] * 10 + [-20.0] * 10 + [-80.0] * 3)
    partial = metrics.envelope_db(np.ones(1150), SR)               # last frame has 50 samples, same RMS
    assert partial.shape == (1, 11) and np.allclose(partial, 0.0)
    assert np.all(metrics.envelope_db(np.zeros((2, 500)), SR) == -80.0)


def test_envelope_error_db(rng):
    ref = np.stack([_noise_burst(rng), _noise_burst(rng, start=1000)])
    assert np.allclose(metrics.envelope_error_db(ref, ref, SR), 0.0)
    assert np.allclose(metrics.envelope_error_db(0.05 * ref, ref, SR), 0.0, atol=1e-9)
    flat = np.ones(2200)
    step = np.concatenate([np.ones(1100), 0.1 * np.ones(1100)])
    assert metrics.envelope_error_db(flat, step, SR) == pytest.approx([10.0])   # half the frames 20 dB apart


def test_spectral_centroid_of_sines():
    """One sine: its frequency. Two equal sines on bin centres (so their lobes weigh the same): the midpoint."""
    lo, hi = 93 * SR / 2048, 465 * SR / 2048
    waves = np.stack([_faded_sine([440.0]), _faded_sine([3000.0]), _faded_sine([lo, hi]), np.zeros(8192)])
    c = metrics.spectral_centroid(waves, SR)
    assert c[:3] == pytest.approx([440.0, 3000.0, (lo + hi) / 2], rel=2e-3)
    assert np.isnan(c[3])


def test_decay_time_of_an_exponential():
    """exp(-t/τ) falls 40 dB in τ·ln(100); the peak may come late, and a carrier does not change it."""
    tau, n = 0.05, 11025
    expected = tau * math.log(100.0)
    decay = np.exp(-np.arange(n) / SR / tau)
    late = np.concatenate([np.zeros(2205), decay[:-2205]])
    ringing = decay * np.sin(2 * np.pi * 1000.0 * np.arange(n) / SR)
    frame = 110 / SR
    got = metrics.decay_time(np.stack([decay, late, ringing, np.zeros(n)]), SR)
    assert np.all(np.abs(got[:3] - expected) <= 2 * frame)
    assert np.isnan(got[3])
    assert metrics.decay_time(decay, SR, drop_db=20.0)[0] == pytest.approx(tau * math.log(10.0), abs=2 * frame)


def test_max_level_drop_of_a_decay_and_of_a_gate():
    """A 0.5 s exponential decay of τ = 50 ms loses 20·log10(e)·5 ms / 50 ms = 0.87 dB per 5 ms frame; the same
    decay cut to digital silence where it is at -40 dBFS (RMS) falls by 60 dB (to the -100 dB floor); cut
    below -70 dBFS it counts nothing (not audible); a constant tone has no fall."""
    n, tau = SR, 0.05
    t = np.arange(n) / SR
    decay = np.exp(-t / tau)  # level in dBFS (RMS of a DC envelope): -8.686 · t / τ
    cut_at = 110 * int(round(40.0 / 8.686 * tau * SR / 110))  # where it has fallen to -40 dB, on a frame edge
    gated = np.where(np.arange(n) < cut_at, decay, 0.0)
    quiet = np.where(np.arange(n) < int(round(75.0 / 8.686 * tau * SR)), decay, 0.0)
    got = metrics.max_level_drop_db(np.stack([decay, gated, quiet, np.ones(n)]), SR)
    assert got[0] == pytest.approx(20 * math.log10(math.e) * 0.005 / tau, abs=0.05)
    assert got[1] == pytest.approx(60.0, abs=1.0)  # from -40 (± half a frame's fall) to -100
    assert got[2] < 1.0 and got[3] == 0.0


# ---------------------------------------------------------------- distances between sets of embeddings

def _exact_gaussian(rng, n, mean, std):
    """n rows whose sample mean is exactly ``mean`` and sample covariance exactly diag(std²)."""
    z = rng.standard_normal((n, len(mean)))
    z -= z.mean(axis=0)
    z = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False))).T
    return z * std + mean


def test_frechet_distance(rng):
    a = rng.standard_normal((200, 6))
    assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    m = np.array([1.0, -2.0, 0.5, 0.0, 3.0, 1.0])
    assert metrics.frechet_distance(a, a + m) == pytest.approx(float(m @ m), rel=1e-8)
    mu_a, mu_b = rng.normal(size=4), rng.normal(size=4)
    sd_a, sd_b = np.array([1.0, 2.0, 0.5, 1.5]), np.array([0.5, 2.5, 0.5, 3.0])
    x, y = _exact_gaussian(rng, 300, mu_a, sd_a), _exact_gaussian(rng, 250, mu_b, sd_b)
    closed = np.sum((sd_a - sd_b) ** 2) + np.sum((mu_a - mu_b) ** 2)
    assert metrics.frechet_distance(torch.from_numpy(x), y) == pytest.approx(closed, rel=1e-7)


def test_frechet_distance_with_singular_covariance(rng):
    a = np.concatenate([rng.standard_normal((50, 3)), np.zeros((50, 2))], axis=1)   # rank 3 of 5
    d = metrics.frechet_distance(a, a + 1.0)
    assert math.isfinite(d) and d == pytest.approx(5.0, rel=1e-4)


def test_kernel_inception_distance_matches_brute_force(rng):
    """With subset_size ≥ both sets, every subset is the whole set: the brute-force MMD², std 0."""
    a, b = rng.standard_normal((6, 3)), rng.standard_normal((6, 3)) + 0.5
    k = lambda u, v: (u @ v / 3 + 1.0) ** 3                        # noqa: E731
    n = len(a)
    xx = sum(k(a[i], a[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    yy = sum(k(b[i], b[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(a[i], b[j]) for i in range(n) for j in range(n)) / (n * n)
    mean, std = metrics.kernel_inception_distance(a, b, subsets=3, subset_size=100)
    assert mean == pytest.approx(xx + yy - 2 * xy, rel=1e-9) and std == pytest.approx(0.0, abs=1e-9)


def test_kernel_inception_distance_same_vs_different(rng):
    a, b = rng.standard_normal((300, 8)), rng.standard_normal((300, 8))
    same, same_std = metrics.kernel_inception_distance(a, b, subsets=5, subset_size=100)
    diff, _ = metrics.kernel_inception_distance(a, b * 1.5 + 0.5, subsets=5, subset_size=100)
    assert abs(same) < 0.1 and same_std >= 0
    assert diff > 1.0 and diff > 20 * abs(same)


def test_inception_score():
    c = 5
    one_hot = np.eye(c)[np.arange(40) % c]
    assert metrics.inception_score(one_hot) == pytest.approx(c, rel=1e-9)
    same = np.tile([0.1, 0.2, 0.3, 0.4], (10, 1))
    assert metrics.inception_score(same) == pytest.approx(1.0, rel=1e-9)
    two_classes = np.eye(c)[np.arange(40) % 2]                     # confident, but only 2 of 5 classes used
    assert metrics.inception_score(two_classes) == pytest.approx(2.0, rel=1e-9)


def test_diversity():
    pts = np.array([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]])           # distances 5, 10, 5
    assert metrics.diversity(pts) == pytest.approx(20.0 / 3)
    assert metrics.diversity(np.ones((4, 3))) == 0.0
    assert math.isnan(metrics.diversity(np.ones((1, 3))))


def test_nearest_distance_against_brute_force(rng):
    query, ref = rng.standard_normal((37, 5)), rng.standard_normal((23, 5))
    query[3] = ref[11]                                             # a memorised item
    got = metrics.nearest_distance(query, ref, batch=8)
    brute = np.array([min(np.linalg.norm(q - r) for r in ref) for q in query])
    assert got.shape == (37,)
    assert np.allclose(got, brute, rtol=1e-12)
    assert got[3] == 0.0


# ---------------------------------------------------------------- summaries

def test_spearman():
    x = np.arange(10.0)
    assert metrics.spearman(x, x ** 3) == pytest.approx(1.0)
    assert metrics.spearman(x, -np.exp(x)) == pytest.approx(-1.0)
    assert math.isnan(metrics.spearman(x, np.ones(10)))
    y = x ** 2
    y[4] = np.nan                                                  # that pair is dropped, the rest is monotone
    x2 = x.copy()
    x2[4] = 100.0
    assert metrics.spearman(x2, y) == pytest.approx(1.0)


def test_grid_neighbour_distances():
    grid = np.zeros((2, 3, 2))
    grid[0, :, 0] = [0.0, 1.0, 3.0]                                # row 0 along x: steps 1, 2
    grid[1, :, 0] = [0.0, 1.0, 3.0]
    grid[1, :, 1] = [4.0, 4.0, 4.0]                                # row 1 is row 0 moved 4 along y
    d = metrics.grid_neighbour_distances(grid)
    assert d.shape == (2 * 2 + 1 * 3,)
    assert np.allclose(d, [1.0, 2.0, 1.0, 2.0, 4.0, 4.0, 4.0])
    assert metrics.grid_neighbour_distances(rng_grid := np.ones((4, 5, 3))).shape == (4 * 4 + 3 * 5,)
    assert np.all(metrics.grid_neighbour_distances(rng_grid) == 0)


def test_summarise():
    values = np.array([1.0, 2.0, 3.0, 4.0, np.nan, 100.0])
    s = metrics.summarise(values)
    assert s == {"mean": 22.0, "median": 3.0, "p95": pytest.approx(80.8), "max": 100.0, "n": 5}
    assert isinstance(s["n"], int) and isinstance(s["mean"], float)
    empty = metrics.summarise([np.nan])
    assert empty["n"] == 0 and math.isnan(empty["mean"])
