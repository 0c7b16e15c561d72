import dataclasses
import math

import librosa
import numpy as np
import pytest
import torch

from neuraldrum.audio.mel import (
    MelFrontend,
    Standardiser,
    mel_center_frequencies,
    mel_filterbank,
)
from neuraldrum.config import MelConfig

CONFIGS = [MelConfig(), MelConfig(n_mels=32), MelConfig(n_mels=64, fmin=30.0, fmax=9000.0, mel_scale="htk", norm=None),
           MelConfig(n_mels=80, power=2.0),
           MelConfig(n_mels=16, fmin=150.0, fmax=800.0)]  # Slaney's linear part only: below 1 kHz at both ends


@pytest.mark.parametrize("cfg", CONFIGS)
def test_filterbank_matches_librosa(cfg):
    ours = mel_filterbank(cfg)
    ref = librosa.filters.mel(sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax,
                              htk=cfg.mel_scale == "htk", norm=cfg.norm)
    assert ours.shape == ref.shape
    assert np.max(np.abs(ours - ref)) <= 1e-5 * np.max(np.abs(ref))


@pytest.mark.parametrize("cfg", CONFIGS)
def test_spectrogram_matches_librosa(cfg, rng):
    x = rng.standard_normal(22016).astype(np.float32) * np.exp(-np.arange(22016) / 4000).astype(np.float32)
    ours = MelFrontend(cfg).mel(torch.from_numpy(x)[None])[0].numpy()
    ref = librosa.feature.melspectrogram(
        y=x, sr=cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.hop_length, win_length=cfg.win_length,
        window="hann", center=True, pad_mode="constant", power=cfg.power, n_mels=cfg.n_mels, fmin=cfg.fmin,
        fmax=cfg.fmax, htk=cfg.mel_scale == "htk", norm=cfg.norm)
    assert ours.shape == ref.shape == (cfg.n_mels, cfg.n_frames(22016))
    assert np.max(np.abs(ours - ref)) <= 1e-5 * np.max(np.abs(ref))


def test_sine_energy_lands_in_its_bin():
    """A 1 kHz sine of amplitude A: the STFT magnitude peak is A · sum(window) / 2 in bin f·n_fft/sr, and the
    Mel band whose centre is nearest 1 kHz holds the most energy."""
    cfg = MelConfig(sample_rate=16000, n_fft=1024, win_length=1024, n_mels=64)
    fe = MelFrontend(cfg)
    A, f = 0.5, 1000.0  # 1000 Hz is exactly bin 64 at n_fft 1024, sr 16 kHz
    t = torch.arange(16000) / cfg.sample_rate
    spec = fe.spectrogram(A * torch.sin(2 * torch.pi * f * t))
    mid = spec[:, spec.shape[1] // 2]
    assert int(mid.argmax()) == 64
    assert float(mid[64]) == pytest.approx(A * cfg.win_length / 2 / 2, rel=1e-3)  # sum(hann) = N/2
    mel = fe.mel(A * torch.sin(2 * torch.pi * f * t))[:, 30]
    fb = mel_filterbank(cfg)
    assert int(mel.argmax()) == int(np.argmax(fb[:, 64]))


def test_zero_padding_not_reflect():
    """The first frame of a hit at t=0 must not contain a mirrored copy of the attack."""
    cfg = MelConfig()
    x = torch.zeros(22016)
    x[0:200] = 1.0  # an impulse-like burst at the very start
    first = MelFrontend(cfg).spectrogram(x)[:, 0].sum()
    x_ref = torch.nn.functional.pad(x, (cfg.n_fft // 2, cfg.n_fft // 2), mode="constant")
    win = torch.zeros(cfg.n_fft)
    off = (cfg.n_fft - cfg.win_length) // 2
    win[off: off + cfg.win_length] = torch.hann_window(cfg.win_length)
    expected = torch.fft.rfft(x_ref[: cfg.n_fft] * win).abs().sum()
    assert float(first) == pytest.approx(float(expected), rel=1e-4)


def test_log_floor_and_buffers_move_with_module():
    cfg = dataclasses.replace(MelConfig(), log_floor=1e-3)
    fe = MelFrontend(cfg)
    out = fe(torch.zeros(1, 22016))
    assert torch.allclose(out, torch.full_like(out, np.log(1e-3)))
    assert {n for n, _ in fe.named_buffers()} == {"window", "fb"}
    # ... and are rebuilt from the MelConfig that every checkpoint and bundle stores, not saved as weights
    assert fe.state_dict() == {}


def test_standardiser_roundtrip(rng):
    data = torch.tensor(rng.normal(3.0, 2.0, size=(50, 8, 5)), dtype=torch.float32)
    st = Standardiser.fit(data)
    z = st(data)
    assert torch.allclose(z.mean(0), torch.zeros(8, 5), atol=1e-5)
    assert torch.allclose(z.std(0, unbiased=False), torch.ones(8, 5), atol=1e-4)
    assert torch.allclose(st.inverse(z), data, atol=1e-5)
    st2 = Standardiser(8, 5)
    st2.load_state_dict(st.state_dict())
    assert torch.allclose(st2(data), z)


def test_log_is_log_of_max_not_log_of_sum():
    """log(max(mel, floor)) against values worked out by hand: at and above the floor the log is exact
    (log 1 = 0, log 100), below it is log(floor). log(mel + floor) would give log 1.1 ≈ 0.0953 for 1."""
    fe = MelFrontend(dataclasses.replace(MelConfig(), log_floor=0.1))
    mel = torch.tensor([[0.0, 0.05, 0.1, 0.2, 1.0, 100.0]], dtype=torch.float64)
    expected = [math.log(0.1), math.log(0.1), math.log(0.1), math.log(0.2), 0.0, math.log(100.0)]
    assert fe.log(mel)[0].tolist() == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("cfg", CONFIGS[:2])
def test_log_mel_matches_librosa(cfg, rng):
    """The whole forward pass against librosa's Mel and NumPy's log of the floored values, on a decaying
    noise burst whose tail falls through the floor (so the floor is exercised, not just the loud part)."""
    x = rng.standard_normal(22016).astype(np.float32) * np.exp(-np.arange(22016) / 1500).astype(np.float32)
    ref = librosa.feature.melspectrogram(
        y=x, sr=cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.hop_length, win_length=cfg.win_length,
        window="hann", center=True, pad_mode="constant", power=cfg.power, n_mels=cfg.n_mels, fmin=cfg.fmin,
        fmax=cfg.fmax, htk=cfg.mel_scale == "htk", norm=cfg.norm)
    floor = cfg.log_floor
    assert (ref < floor).mean() > 0.05 and (ref > 100 * floor).mean() > 0.3  # both regimes are present
    ours = MelFrontend(cfg)(torch.from_numpy(x)[None])[0].numpy()
    assert np.max(np.abs(ours - np.log(np.maximum(ref, floor)))) < 1e-3


def test_mel_centre_frequencies_match_librosa():
    for cfg in CONFIGS:
        fmax = cfg.fmax if cfg.fmax is not None else cfg.sample_rate / 2
        ref = librosa.mel_frequencies(cfg.n_mels + 2, fmin=cfg.fmin, fmax=fmax, htk=cfg.mel_scale == "htk")
        assert np.allclose(mel_center_frequencies(cfg), ref[1:-1], rtol=1e-9)


def test_unsupported_settings_are_refused():
    with pytest.raises(ValueError, match="mel_scale must be 'slaney' or 'htk', not 'bark'"):
        mel_filterbank(MelConfig(mel_scale="bark"))
    with pytest.raises(ValueError, match="norm must be 'slaney' or None, not 'l2'"):
        mel_filterbank(MelConfig(norm="l2"))
    with pytest.raises(ValueError, match="only 'hann' is supported, not 'hamming'"):
        MelFrontend(MelConfig(window="hamming"))


def test_spectrogram_of_one_clip_and_of_a_batch_agree(rng):
    fe = MelFrontend(MelConfig(n_mels=32))
    x = torch.from_numpy(rng.standard_normal((2, 4096)).astype(np.float32))
    one = fe.spectrogram(x[1])
    assert one.shape == (1025, 1 + 4096 // 256)
    assert torch.allclose(one, fe.spectrogram(x)[1], atol=1e-5)
    assert fe.mel(x).shape == (2, 32, 17)


def test_standardiser_std_is_floored_at_eps():
    """A bin that never changes has std 0; dividing by it would blow up, so its std is eps (given, or 1e-3)."""
    data = torch.randn(10, 3, 4)
    data[:, 1, 2] = 5.0
    st = Standardiser.fit(data, eps=0.25)
    assert float(st.std[1, 2]) == 0.25 and st.eps == 0.25
    assert float(Standardiser.fit(data).std[1, 2]) == pytest.approx(1e-3)
    manual = data.numpy().std(axis=0)  # population std (ddof 0), by NumPy
    mask = np.ones((3, 4), bool)
    mask[1, 2] = False
    assert np.allclose(st.std.numpy()[mask], manual[mask], rtol=1e-5)
    fresh = Standardiser(3, 4)
    assert torch.equal(fresh.mean, torch.zeros(3, 4)) and torch.equal(fresh.std, torch.ones(3, 4))
    assert fresh.eps == 1e-3
