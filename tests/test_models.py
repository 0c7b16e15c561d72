"""The models, their losses, the samplers and the augmentation: shapes, known answers, overfitting."""
import dataclasses
import math

import numpy as np
import pytest
import torch

from neuraldrum.audio.mel import MelFrontend, Standardiser
from neuraldrum.config import AugmentConfig, MCNNConfig, preset
from neuraldrum.data import augment as aug
from neuraldrum.data.dataset import BalancedBatchSampler, RandomBatchSampler, shard, step_generator
from neuraldrum.data.synth import synth
from neuraldrum.models import MCNN, ConditionalWAE, n_parameters
from neuraldrum.models.mcnn import doubling_padding, gate
from neuraldrum.train.losses import mcnn_loss, mmd_imq, per_class_mmd, spectral_convergence, support_mask, wae_loss

SR, N = 22050, 22016


def clips(names, seed=0):
    """(len(names), N) peak-normalised synthetic clips, zero-padded."""
    rng = np.random.default_rng(seed)
    out = np.zeros((len(names), N), dtype=np.float32)
    for i, c in enumerate(names):
        x = synth(c, rng=rng)[:N]
        out[i, : len(x)] = x
    return torch.from_numpy(out)


# ---------------------------------------------------------------- every preset builds and runs

@pytest.mark.parametrize("name", ["tiny", "cpu", "paper"])
def test_preset_builds_and_runs(name):
    p = preset(name)
    wae, mcnn = ConditionalWAE(p.wae).eval(), MCNN(p.mcnn).eval()
    T = p.mel.n_frames(p.audio.n_samples)
    assert p.wae.n_frames == T and p.wae.n_mels == p.mel.n_mels == p.mcnn.n_mels
    x, cls = torch.randn(1, p.wae.n_mels, T), torch.tensor([3])
    with torch.no_grad():
        recon, z = wae(x, cls)
        assert recon.shape == x.shape and z.shape == (1, p.wae.latent_dim)
        assert wae.decode(z, cls).shape == x.shape and wae.encode(x, cls).shape == z.shape
        wave, logits = mcnn(torch.rand(1, p.mcnn.n_mels, T))
        assert wave.shape == logits.shape == (1, T * p.mel.hop_length)
        assert torch.isfinite(wave).all() and torch.isfinite(logits).all()
    if name == "cpu":  # the default model must stay small enough to ship
        assert 4 * (n_parameters(wae) + n_parameters(mcnn)) <= 16e6


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("name", ["tiny", "cpu"])
def test_models_script_and_match(name):
    p = preset(name)
    torch.manual_seed(0)
    wae, mcnn = ConditionalWAE(p.wae), MCNN(p.mcnn)
    x = torch.randn(4, p.wae.n_mels, p.wae.n_frames)
    cls = torch.tensor([0, 1, 2, 10])
    wae.train()
    wae(x, cls)  # move the BN running statistics off their defaults
    wae.eval()
    mcnn.eval()
    s_wae, s_mcnn = torch.jit.script(wae), torch.jit.script(mcnn)
    mel = torch.rand(2, p.mcnn.n_mels, p.wae.n_frames)
    with torch.no_grad():
        z = wae.encode(x, cls)
        torch.testing.assert_close(s_wae.encode(x, cls), z, rtol=0, atol=1e-6)
        torch.testing.assert_close(s_wae.decode(z, cls), wae.decode(z, cls), rtol=0, atol=1e-6)
        torch.testing.assert_close(s_wae(x, cls)[0], wae(x, cls)[0], rtol=0, atol=1e-6)
        torch.testing.assert_close(s_mcnn(mel)[0], mcnn(mel)[0], rtol=0, atol=1e-6)
        torch.testing.assert_close(s_mcnn.infer(mel), mcnn.infer(mel), rtol=0, atol=1e-6)


def test_wae_decoder_mirrors_encoder_sizes():
    # the transposed convs land exactly on the input size for the presets' shapes (no crop needed)
    for n_mels in (32, 128, 512):
        cfg = dataclasses.replace(preset("tiny").wae, n_mels=n_mels)
        m = ConditionalWAE(cfg).eval()
        h = torch.zeros(1, *m.bottleneck)
        for blk in m.dec:
            h = blk(h, torch.tensor([0]))
        assert m.dec_out(h).shape[-2:] == (n_mels, cfg.n_frames)


@pytest.mark.parametrize("kernel", [3, 4, 13])
def test_mcnn_layers_double_length(kernel):
    pad, out_pad = doubling_padding(kernel)
    conv = torch.nn.ConvTranspose1d(2, 2, kernel, stride=2, padding=pad, output_padding=out_pad)
    assert conv(torch.zeros(1, 2, 37)).shape[-1] == 74
    cfg = dataclasses.replace(preset("tiny").mcnn, kernel=kernel)
    assert MCNN(cfg)(torch.rand(1, cfg.n_mels, 5))[0].shape == (1, 5 * 256)


def test_mcnn_refuses_bad_depth():
    with pytest.raises(ValueError, match="hop_length"):
        MCNN(MCNNConfig(n_layers=7, channels=(8,) * 6))
    with pytest.raises(ValueError, match="channels"):
        MCNN(MCNNConfig(channels=(8, 8)))


def _follower(m: np.ndarray, hop: int) -> np.ndarray:
    """Independent reference for the gate's mask: a sample-by-sample peak follower, y[n] = max(m[n], y[n-1]·a),
    a = exp(-1 / τ), τ = one hop in samples (no blocks, no window, no interpolation)."""
    a = np.exp(-1.0 / hop)
    y = np.empty_like(m)
    prev = 0.0
    for n, v in enumerate(m):
        prev = max(v, prev * a)
        y[n] = prev
    return y


def test_mcnn_infer_is_the_gated_soft_mask():
    m = MCNN(preset("tiny").mcnn).eval()
    mel = torch.rand(2, 32, 10)
    with torch.no_grad():
        wave, logits = m(mel)
        out = m.infer(mel)
    assert torch.equal(out, gate(wave, logits, m.hop_length))
    ones = torch.full_like(logits, 30.0)  # mask ≈ 1 everywhere: the wave passes unchanged
    torch.testing.assert_close(gate(wave, ones, m.hop_length), wave, rtol=0, atol=1e-6)
    flat = torch.ones_like(logits)  # a constant logit of 1: the soft mask is 1 / (1 + e^-1) = 0.7311, not 1
    torch.testing.assert_close(gate(wave, flat, m.hop_length), 0.7311 * wave, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("hop", [256, 64])
def test_gate_falls_like_a_one_hop_release_and_keeps_the_attack(hop):
    N = 40 * hop
    on, off = 4 * hop + 7, 20 * hop + 3  # mask opens at `on`, closes at `off` (not on block edges)
    logits = torch.full((1, N), -30.0)
    logits[0, on:off] = 30.0
    wave = torch.ones(1, N)
    got = gate(wave, logits, hop)[0].numpy()
    ref = _follower(torch.sigmoid(logits)[0].double().numpy(), hop)
    # never faster than the sample-exact follower (up to its e^-9.5 look-back), never later than it delayed by
    # 3 blocks of hop/4 (the block peak is held 1.5-3 blocks, then interpolated)
    d = 3 * (hop // 4)
    late = np.concatenate([np.full(d, ref[0]), ref[:-d]])
    assert np.all(got[on:] >= ref[on:] - 0.01)
    assert np.all(got[off:] <= late[off:] + 1e-3)
    for t in (hop // 2, hop, 2 * hop, 3 * hop):  # e^(-t/τ) after the close: 0.61, 0.37, 0.14, 0.05
        assert np.exp(-t / hop) - 0.01 <= got[off + t] <= np.exp(-(t - d) / hop) + 1e-3, t
    assert got[off + 6 * hop:].max() < 0.01  # and reaches silence
    assert np.abs(np.diff(got[off:])).max() < 2.0 / hop  # smoothly: no step from one sample to the next
    # no step down of more than 24 dB within 5 ms at 22.05 kHz (110 samples at hop 256) from above -60 dB,
    # counting anything below -80 dB as silence
    db = np.maximum(20 * np.log10(np.maximum(got, 1e-12)), -80.0)
    w = int(round(110 * hop / 256))
    audible = db[off:-w] > -60
    assert np.all((db[off:-w] - db[off + w:])[audible] < 24)
    # the attack is the trained mask's: nothing opens before `on`
    assert got[:on].max() < 1e-6
    assert got[on] > 0.99
# ---------------------------------------------------------------- losses

def test_mmd_small_for_prior_and_large_for_shifted():
    g = torch.Generator().manual_seed(0)
    scales = preset("cpu").wae.mmd_scales
    a, b = torch.randn(256, 64, generator=g), torch.randn(256, 64, generator=g)
    same = float(mmd_imq(a, b, scales))
    shifted = float(mmd_imq(a + 1.0, b, scales))
    collapsed = float(mmd_imq(0.1 * a, b, scales))
    assert abs(same) < 0.02
    assert shifted > 0.5 and collapsed > 1.0


def test_per_class_mmd_averages_classes_and_has_gradient():
    g = torch.Generator().manual_seed(1)
    z = torch.randn(40, 8, generator=g)
    prior = torch.randn(40, 8, generator=g)
    cls = torch.arange(40) % 4
    z[cls == 2] += 3.0  # one class off the prior
    z.requires_grad_(True)
    mmd = per_class_mmd(z, cls, prior, (0.5, 1.0, 2.0))
    parts = [float(mmd_imq(z.detach()[cls == c], prior[cls == c], (0.5, 1.0, 2.0))) for c in range(4)]
    assert float(mmd.detach()) == pytest.approx(np.mean(parts), rel=1e-5)
    mmd.backward()
    assert torch.isfinite(z.grad).all() and z.grad[cls == 2].abs().sum() > z.grad[cls == 0].abs().sum()


def test_support_mask_ends_at_last_audible_sample():
    x = torch.zeros(2, 1000)
    x[0, :300] = torch.linspace(1.0, 0.5, 300)
    x[0, 600] = 2e-3  # -54 dB relative to the peak: still "on"
    x[0, 700] = 5e-4  # -66 dB: off
    x[1, 10] = -1.0
    m = support_mask(x, -60.0)
    assert m[0, :601].eq(1).all() and m[0, 601:].eq(0).all()
    assert m[1, :11].eq(1).all() and m[1, 11:].eq(0).all()


def test_mcnn_loss_vanishes_on_the_target():
    fe = MelFrontend(preset("tiny").mel)
    x = clips(["kick", "hh_closed"])
    logits = 50.0 * (2 * support_mask(x) - 1)  # a confident, correct mask
    out = mcnn_loss(x, logits, x, fe, preset("tiny").mcnn)
    # the mask cuts the tail below -60 dB, which the log-Mel still sees a little
    assert float(out["mcnn/sc"]) < 1e-3 and float(out["mcnn/logmel"]) < 0.01 and float(out["mcnn/mask"]) < 1e-6
    out = mcnn_loss(x, logits, x * 0.5, fe, preset("tiny").mcnn)
    assert float(out["mcnn/sc"]) == pytest.approx(1.0, rel=1e-3)  # ‖M - 2M‖ / ‖M‖
    assert float(spectral_convergence(torch.zeros(1, 4, 4), torch.ones(1, 4, 4))) == pytest.approx(1.0)


# ---------------------------------------------------------------- overfitting a few clips

def test_wae_tiny_overfits():
    """tiny WAE: reconstruction MSE (standardised) falls at least 5x in 300 steps on 6 clips."""
    p = preset("tiny")
    torch.manual_seed(0)
    fe = MelFrontend(p.mel)
    names = ["kick", "kick", "snare", "snare", "hh_closed", "hh_closed"]
    lm = fe(clips(names))
    x = Standardiser.fit(lm, eps=0.1)(lm)
    cls = torch.tensor([0, 0, 1, 1, 3, 3])
    model = ConditionalWAE(p.wae)
    opt = torch.optim.Adam(model.parameters(), 2e-3)
    g = torch.Generator().manual_seed(0)
    first = None
    for _ in range(300):
        recon, z = model(x, cls)
        loss = wae_loss(recon, x, z, cls, torch.randn(6, p.wae.latent_dim, generator=g), p.wae)
        first = float(loss["wae/mse"].detach()) if first is None else first
        opt.zero_grad()
        loss["wae/loss"].backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        final = float(((model(x, cls)[0] - x) ** 2).mean())
    assert final * 5 <= first, (first, final)


def test_mcnn_tiny_overfits():
    """tiny MCNN: total loss falls at least 2.5x in 200 steps on 4 clips."""
    p = preset("tiny")
    torch.manual_seed(0)
    fe = MelFrontend(p.mel)
    x = clips(["kick", "snare", "hh_closed", "tom"])
    mel = fe.mel(x)
    model = MCNN(p.mcnn)
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    losses = []
    for _ in range(200):
        wave, logits = model(mel)
        loss = mcnn_loss(wave[:, :N], logits[:, :N], x, fe, p.mcnn, target_mel=mel)["mcnn/loss"]
        losses.append(float(loss.detach()))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert np.mean(losses[-5:]) * 2.5 <= losses[0], (losses[0], losses[-5:])


# ---------------------------------------------------------------- samplers

def test_balanced_sampler_equal_counts_and_replacement():
    labels = np.array([0] * 50 + [3] * 7 + [5] * 2)
    idx = np.arange(100, 100 + len(labels))
    s = BalancedBatchSampler(idx, labels, per_class=4, seed=0)
    b, lab = s.batch(1)
    assert len(b) == 12 and sorted(np.unique(lab, return_counts=True)[1]) == [4, 4, 4]
    assert np.array_equal(labels[b - 100], lab)
    assert len(set(b[lab == 0])) == 4  # big class: no repeats within a batch
    assert set(b[lab == 5]) <= {157, 158}  # small class: drawn with replacement
    assert np.array_equal(s.batch(7)[0], BalancedBatchSampler(idx, labels, 4, seed=0).batch(7)[0])
    assert not np.array_equal(s.batch(7)[0], s.batch(8)[0])
    for rank in range(2):  # each of 2 ranks gets every class, half the clips
        rows = shard(len(b), rank, 2, group=len(s.classes))
        assert sorted(np.unique(lab[rows], return_counts=True)[1]) == [2, 2, 2]


def test_synthetic_share_sets_the_fraction_of_synthesised_clips_per_class():
    # class 0: 10 recordings + 90 renders; class 1: recordings only; class 2: renders only
    labels = np.array([0] * 100 + [1] * 20 + [2] * 15)
    syn = np.array([False] * 10 + [True] * 90 + [False] * 20 + [True] * 15)
    idx = np.arange(len(labels))
    natural = BalancedBatchSampler(idx, labels, 6, seed=0, synthetic=syn)
    assert np.array_equal(natural.batch(3)[0], BalancedBatchSampler(idx, labels, 6, seed=0).batch(3)[0])  # unchanged
    for share in (0.0, 0.25, 1.0):
        s = BalancedBatchSampler(idx, labels, 6, seed=0, synthetic=syn, synthetic_share=share)
        picks = np.concatenate([s.batch(k)[0] for k in range(400)])
        got = syn[picks[labels[picks] == 0]].mean()
        assert abs(got - share) < 0.03, (share, got)  # vs 0.9 drawn in proportion to their number
        assert set(picks[labels[picks] == 1]) <= set(range(100, 120))  # one-kind classes draw what they have
        assert len(set(picks[labels[picks] == 2])) == 15
        b, lab = s.batch(11)
        assert len(set(b[lab == 1])) == 6  # still distinct within a batch
    r = RandomBatchSampler(idx, 16, seed=0, synthetic=syn, synthetic_share=0.5)
    picks = np.concatenate([r.batch(k) for k in range(300)])
    assert abs(syn[picks].mean() - 0.5) < 0.03
    with pytest.raises(ValueError, match="synthetic share"):
        BalancedBatchSampler(idx, labels, 6, seed=0, synthetic=syn, synthetic_share=1.5)


def test_random_sampler_and_shards_cover_the_batch():
    s = RandomBatchSampler(np.arange(30), 8, seed=3)
    b = s.batch(5)
    assert len(set(b)) == 8
    parts = np.concatenate([shard(8, r, 4) for r in range(4)])
    assert sorted(parts) == list(range(8))
    with pytest.raises(ValueError):
        shard(2, 0, 4)


# ---------------------------------------------------------------- augmentation

def test_augment_keeps_length_and_is_deterministic():
    x = clips(["kick", "snare", "crash", "hh_open"])
    cfg = AugmentConfig(pitch_prob=1.0, filter_prob=1.0)
    a = aug.augment(x, cfg, torch.Generator().manual_seed(5), SR)
    b = aug.augment(x, cfg, torch.Generator().manual_seed(5), SR)
    c = aug.augment(x, cfg, torch.Generator().manual_seed(6), SR)
    assert a.shape == x.shape and torch.isfinite(a).all()
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.abs().amax(1).max() <= 1.0 + 1e-5  # gain only attenuates
    off = aug.augment(x, cfg.off(), torch.Generator().manual_seed(5), SR)
    assert torch.equal(off, x)


def test_augment_without_gain_stays_peak_normalised():
    x = clips(["kick", "clap"])
    y = aug.augment(x, AugmentConfig(pitch_prob=1.0, filter_prob=1.0), torch.Generator().manual_seed(0), SR,
                    gain=False)
    torch.testing.assert_close(y.abs().amax(1), torch.ones(2))


@pytest.mark.parametrize("semitones", [-3.0, 2.0, 12.0])
def test_pitch_shift_moves_a_sine_by_the_ratio(semitones):
    t = torch.arange(N) / SR
    x = torch.sin(2 * math.pi * 1000.0 * t) * torch.exp(-t * 6)
    y = aug.pitch_shift(x, semitones, SR)
    f = float(torch.fft.rfft(y).abs().argmax()) * SR / N
    assert y.shape == x.shape
    assert f == pytest.approx(1000.0 * 2 ** (semitones / 12), rel=0.01)


def test_filters_have_their_textbook_gains():
    kind = torch.tensor([aug.FILTER_LOWPASS, aug.FILTER_LOW_SHELF, aug.FILTER_HIGH_SHELF])
    hz, db = torch.tensor([1000.0, 300.0, 5000.0]), torch.tensor([0.0, 6.0, -6.0])
    h = aug.filter_response(kind, hz, db, 4096, SR).abs()
    a = math.exp(-2 * math.pi * 1000.0 / SR)
    assert float(h[0, 0]) == pytest.approx(1.0) and float(h[0, -1]) == pytest.approx((1 - a) / (1 + a), rel=1e-4)
    assert 20 * math.log10(float(h[1, 0])) == pytest.approx(6.0, abs=0.01)  # low shelf: +6 dB at DC
    assert float(h[1, -1]) == pytest.approx(1.0, abs=0.05)
    b, g = math.exp(-2 * math.pi * 5000.0 / SR), 10 ** (-6 / 20)
    assert float(h[2, 0]) == pytest.approx(1.0, abs=1e-6)  # high shelf: unity at DC, 1 + (g - 1)·2b/(1 + b) at Nyquist
    assert float(h[2, -1]) == pytest.approx(1 + (g - 1) * 2 * b / (1 + b), rel=1e-4)


def test_step_generators_are_independent_streams():
    a = torch.rand(4, generator=step_generator(0, 10, 0))
    assert torch.equal(a, torch.rand(4, generator=step_generator(0, 10, 0)))
    assert not torch.equal(a, torch.rand(4, generator=step_generator(0, 10, 1)))
    assert not torch.equal(a, torch.rand(4, generator=step_generator(0, 11, 0)))
    assert not torch.equal(a, torch.rand(4, generator=step_generator(1, 10, 0)))
