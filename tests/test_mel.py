import dataclasses

import librosa
import numpy as np
import pytest
import torch

from neuraldrum.audio.mel import MelFrontend, Standardiser, mel_filterbank
from neuraldrum.config import MelConfig

CONFIGS = [MelConfig(), MelConfig(n_mels=32), MelConfig(n_mels=64, fmin=30.0, fmax=9000.0, mel_scale="htk", norm=None),
           MelConfig(n_mels=80, power=2.0)]


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
