"""The inference graphs against independent routes: torch's own transposed convolution, the trained MCNN's
``infer``, and the models' parts composed by hand."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers_bundle import random_bundle
from neuraldrum.bundle import load_bundle
from neuraldrum.config import cpu, cpu44, tiny
from neuraldrum.data.synth import synth
from neuraldrum.engine import Engine
from neuraldrum.graphs import Analyzer, Generator, PolyphaseMCNN, polyphase_kernel
from neuraldrum.models.mcnn import MCNN, doubling_padding

PEAK = 0.8912509  # 10 ** (-1 / 20): -1 dBFS


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return load_bundle(random_bundle(tmp_path_factory.mktemp("g") / "bundle"))


@pytest.mark.parametrize("kernel,groups,c_in,c_out", [(13, 1, 6, 8), (13, 4, 8, 12), (12, 2, 4, 6), (5, 1, 3, 2),
                                                      (4, 3, 6, 3)])
def test_polyphase_kernel_equals_transposed_conv(kernel, groups, c_in, c_out):
    g = torch.Generator().manual_seed(kernel * 10 + groups)
    pad, out_pad = doubling_padding(kernel)
    w = torch.randn(c_in, c_out // groups, kernel, generator=g)
    x = torch.randn(2, c_in, 37, generator=g)
    ref = F.conv_transpose1d(x, w, stride=2, padding=pad, output_padding=out_pad, groups=groups)
    k, left, right = polyphase_kernel(w, pad, groups)
    y = F.conv1d(F.pad(x, (left, right)), k, groups=groups)
    y = y.view(2, c_out, 2, 37).transpose(2, 3).reshape(2, c_out, 74)
    assert ref.shape == y.shape == (2, c_out, 74)
    assert torch.allclose(y, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("preset", [tiny, pytest.param(cpu, marks=pytest.mark.slow)])  # cpu: the real size
def test_polyphase_mcnn_is_the_trained_mcnn(preset):
    torch.manual_seed(1)
    cfg = preset().mcnn
    m = MCNN(cfg).eval()
    with torch.no_grad():
        m.head_scale.uniform_(0.5, 1.5)
        m.squash.a.fill_(0.7)
        m.squash.b.fill_(1.3)
    mel = torch.rand(2, cfg.n_mels, 20) ** 3
    with torch.inference_mode():
        ref = m.infer(mel)
        wave, logits = m(mel)
        y = PolyphaseMCNN(m)(mel)
    assert y.shape == ref.shape == (2, 20 * cfg.hop_length)
    keep = logits.abs() > 1e-3  # away from the mask's threshold, where float rounding could flip a sample
    assert keep.float().mean() > 0.99
    assert torch.allclose(y[keep], ref[keep], atol=1e-5)
    with torch.inference_mode():
        pre, lg = PolyphaseMCNN(m).parts(mel)
    assert torch.allclose(pre, wave, atol=1e-5) and torch.allclose(lg, logits, atol=1e-4)  # the parts, unmasked
    assert torch.all(y.abs() <= pre.abs() + 1e-6) and not torch.allclose(y, pre)  # the mask only attenuates


def test_generator_is_the_parts_composed(bundle):
    g = Generator(bundle)
    z = torch.randn(3, bundle.wae.cfg.latent_dim, generator=torch.Generator().manual_seed(2))
    cls = torch.tensor([0, 4, 9])
    with torch.inference_mode():
        w = g(cls, z)
        # by hand: decode, undo the standardisation, log-Mel → Mel, the MCNN as trained
        lm = bundle.wae.decode(z, cls) * bundle.standardiser.std + bundle.standardiser.mean
        ref = bundle.mcnn.infer(torch.clamp(torch.exp(lm) - bundle.mel.log_floor, min=0))[:, :bundle.audio.n_samples]
    assert w.shape == (3, bundle.audio.n_samples)
    assert torch.allclose(w.abs().amax(dim=1), torch.full((3,), PEAK), atol=1e-6)
    assert torch.all(w[:, 0] == 0) and torch.all(w[:, -1].abs() < 1e-7)  # faded in and out
    mid = slice(64, bundle.audio.n_samples - 400)  # between the fades, the wave is the MCNN's, scaled per row
    for r in range(3):
        a, b = w[r, mid], ref[r, mid]
        big = b.abs() > 1e-3 * b.abs().max()
        gain = (a[big] / b[big])
        assert gain.std() < 1e-4 * gain.abs().mean()


def test_analyzer_is_the_parts_composed(bundle):
    an = Analyzer(bundle)
    x = torch.from_numpy(np.stack([np.pad(synth(c, seed=3), (0, 22016))[:22016] for c in ("snare", "tom")]))
    with torch.inference_mode():
        spec = torch.stft(x, 2048, 256, 1024, torch.hann_window(1024), center=True, pad_mode="constant",
                          return_complex=True).abs()
        from neuraldrum.audio.mel import mel_filterbank
        lm = torch.log(torch.clamp(torch.tensor(mel_filterbank(bundle.mel), dtype=torch.float32) @ spec, min=1e-5))
        std = (lm - bundle.standardiser.mean) / bundle.standardiser.std
        z_given = bundle.wae.encode(std, torch.tensor([2, 5]))
        pred = bundle.classifier(lm).argmax(dim=1)
        z_pred = bundle.wae.encode(std, pred)
        z1, p1, used1 = an(x, torch.tensor([2, 5]))
        z2, p2, used2 = an(x, torch.tensor([-1, -1]))
        z0 = bundle.wae.encode(std, torch.tensor([0, 0]))
    assert torch.equal(used1, torch.tensor([2, 5])) and torch.equal(used2, pred)
    assert torch.allclose(z1, z_given, atol=1e-4) and torch.allclose(z2, z_pred, atol=1e-4)
    assert not torch.allclose(z1, z0, atol=1e-3)  # the class matters
    assert torch.allclose(p1.sum(1), torch.ones(2), atol=1e-6) and torch.allclose(p1, p2)


def test_engine_encode_goes_through_the_analyzer(bundle):
    eng = Engine(bundle, warm=False)
    kick = synth("kick", seed=0)
    e = eng.encode(kick, cls="rim")
    with torch.inference_mode():
        x = torch.from_numpy(eng._clip(kick, None))
        lm = eng.frontend(x)
        z = bundle.wae.encode((lm - bundle.standardiser.mean) / bundle.standardiser.std,
                              torch.tensor([eng.class_index("rim")]))[0].numpy()
    assert e.cls == "rim" and np.allclose(e.z, z, atol=1e-5)


def test_config_shapes_are_checked_in_one_place():
    import dataclasses

    from neuraldrum.config import check_shapes

    p = tiny()
    check_shapes(p.audio, p.mel, p.wae, p.mcnn)
    with pytest.raises(ValueError, match=r"wae \(n_mels, n_frames\) = \(32, 86\)"):
        check_shapes(p.audio, p.mel, dataclasses.replace(p.wae, n_frames=86))
    with pytest.raises(ValueError, match=r"mcnn \(n_mels, hop_length\) = \(32, 128\)"):
        check_shapes(p.audio, p.mel, mcnn=dataclasses.replace(p.mcnn, hop_length=128))
    with pytest.raises(ValueError, match="mel.sample_rate 44100"):
        check_shapes(p.audio, dataclasses.replace(p.mel, sample_rate=44100))


def test_finish_fits_the_length_fades_and_normalises_each_row(bundle):
    g = Generator(bundle)
    n, rate = bundle.audio.n_samples, bundle.audio.sample_rate
    n_out = 10 * rate // 1000  # a 10 ms fade-out: 220 samples at 22 050 Hz
    ramp = torch.ones(n)
    ramp[:16] = torch.linspace(0, 1, 16)  # a 16-sample linear fade-in
    ramp[n - n_out:] = torch.cos(torch.linspace(0, math.pi / 2, n_out)) ** 2
    long = torch.ones(2, n + 300)
    long[1] *= 0.25  # each row is normalised on its own
    long[:, n:] = 50.0  # past the end: cut, never heard (nor counted in the peak)
    out = g.finish(long)
    assert out.shape == (2, n)
    assert torch.allclose(out, (PEAK * ramp).expand(2, n), atol=1e-6)
    short = torch.full((1, n - 1000), -0.5)  # too short: padded with silence at the end
    out = g.finish(short)
    assert out.shape == (1, n) and torch.all(out[0, n - 1000:] == 0)
    assert torch.allclose(out[0, : n - 1000], -PEAK * ramp[: n - 1000], atol=1e-6)
    assert torch.equal(g.finish(torch.zeros(1, n)), torch.zeros(1, n))  # silence stays silence, not NaN
    tiny = torch.full((1, n), 1e-3)
    assert torch.allclose(g.finish(tiny).abs().max(), torch.tensor(PEAK), atol=1e-6)
    assert not {"fade_in", "fade_out"} & set(g.state_dict())  # derived from the settings, not weights


def test_invert_turns_the_floor_into_silence(bundle):
    g = Generator(bundle)
    frames = bundle.wae.cfg.n_frames
    below = torch.full((1, bundle.mel.n_mels, frames), math.log(bundle.mel.log_floor) - 0.5)  # under the floor
    with torch.inference_mode():
        assert torch.equal(g.invert(below), torch.zeros(1, bundle.audio.n_samples))
    lm = torch.log(torch.rand(1, bundle.mel.n_mels, frames, generator=torch.Generator().manual_seed(3)) + 1e-3)
    with torch.inference_mode():
        raw = bundle.mcnn.infer(torch.clamp(torch.exp(lm) - bundle.mel.log_floor, min=0))
        assert torch.allclose(g.invert(lm), g.finish(raw), atol=1e-5)


@pytest.mark.parametrize("preset", [cpu, cpu44])
def test_the_log_mel_cap_is_above_every_sound_within_one_and_close_to_the_loudest(preset):
    """loudest_log_mel bounds the log-Mel of any waveform within ±1: full-scale DC, square waves, a 50 Hz sine,
    clicks and noise all stay under it, and the loudest of them comes within 1.5 nats of it (the cap leaves
    every playable sound alone and little more)."""
    from neuraldrum.audio.mel import MelFrontend
    from neuraldrum.graphs import loudest_log_mel

    mel = preset().mel
    fe, n = MelFrontend(mel), 2 * mel.n_fft + 1
    t = torch.arange(n) / mel.sample_rate
    g = torch.Generator().manual_seed(0)
    waves = [torch.ones(n), torch.sign(torch.sin(2 * math.pi * 1000 * t)), torch.sign(torch.sin(2 * math.pi * 60 * t)),
             torch.sin(2 * math.pi * 50 * t), (torch.arange(n) % 64 == 0).float(), torch.sign(torch.randn(n, generator=g))]
    loudest = max(float(torch.log(fe.mel(w[None]).clamp(min=1e-30)).max()) for w in waves)
    cap = loudest_log_mel(mel)
    assert loudest <= cap < loudest + 1.5, (loudest, cap)


def test_a_latent_far_outside_the_prior_still_plays(bundle):
    """A latent of thousands (the web API takes z up to 1e4; range 1000 at the pad's corner) decodes to log-Mels
    whose exp is infinite: the cap keeps the sound finite and at −1 dBFS instead of NaN (which 16-bit WAV
    writers turned into a full-scale DC click)."""
    g = Generator(bundle)
    frames = bundle.wae.cfg.n_frames
    huge = torch.full((1, bundle.mel.n_mels, frames), 200.0)
    huge[:, :, frames // 2:] = -300.0
    with torch.inference_mode():
        w = g.invert(huge)
        z = torch.full((1, bundle.wae.cfg.latent_dim), 1e4)
        far = g(torch.zeros(1, dtype=torch.long), z)
    for x in (w, far):
        assert torch.isfinite(x).all() and float(x.abs().max()) == pytest.approx(PEAK, rel=1e-4)


def test_mask_logits_are_the_trained_mcnns(bundle):
    g = Generator(bundle)
    z = torch.randn(2, bundle.wae.cfg.latent_dim, generator=torch.Generator().manual_seed(5))
    cls = torch.tensor([1, 7])
    with torch.inference_mode():
        lm = bundle.wae.decode(z, cls) * bundle.standardiser.std + bundle.standardiser.mean
        _, ref = bundle.mcnn(torch.clamp(torch.exp(lm) - bundle.mel.log_floor, min=0))
        got = g.mask_logits(cls, z)
    n = bundle.audio.n_samples
    assert got.shape == (2, n) and torch.allclose(got, ref[:, :n], atol=1e-4)


def test_polyphase_mcnn_refuses_layers_it_cannot_rewrite():
    from types import SimpleNamespace

    def mcnn(conv):
        return SimpleNamespace(body=[conv, torch.nn.ELU()], n_heads=1, head_scale=torch.ones(1), squash=None,
                               hop_length=2)

    PolyphaseMCNN(mcnn(torch.nn.ConvTranspose1d(4, 2, 5, stride=2, padding=2, bias=False)))
    for bad in (torch.nn.ConvTranspose1d(4, 2, 5, stride=3, padding=2, bias=False),
                torch.nn.ConvTranspose1d(4, 2, 5, stride=2, padding=2, bias=True),
                torch.nn.ConvTranspose1d(4, 2, 5, stride=2, padding=2, bias=False, dilation=2)):
        with pytest.raises(ValueError) as e:
            PolyphaseMCNN(mcnn(bad))
        assert str(e.value) == "PolyphaseMCNN: expects stride-2, bias-free transposed convolutions"


def test_analyzer_without_a_listener(bundle):
    import dataclasses

    an = Analyzer(dataclasses.replace(bundle, classifier=None))
    x = torch.from_numpy(np.stack([np.pad(synth(c, seed=1), (0, 22016))[:22016] for c in ("kick", "ride")]))
    with torch.inference_mode():
        z, p, used = an(x, torch.tensor([-1, 3]))  # −1 becomes class 0: callers check before
        lm = an.logmel(x)
        z_ref = bundle.wae.encode((lm - bundle.standardiser.mean) / bundle.standardiser.std, torch.tensor([0, 3]))
    assert torch.equal(used, torch.tensor([0, 3])) and torch.allclose(z, z_ref, atol=1e-5)
    assert torch.allclose(p, torch.full((2, 11), 1 / 11)) and p.shape == (2, 11)
    with pytest.raises(ValueError) as e:
        an.probs(lm)
    assert str(e.value) == "this bundle has no classifier; pass the class explicitly"


def test_model_info_is_what_the_bundle_says(bundle, tmp_path):
    import dataclasses

    from neuraldrum.graphs import model_info

    info = model_info(bundle)
    assert info["classes"] == bundle.classes and info["sample_rate"] == 22050 and info["n_samples"] == 22016
    assert info["latent_dim"] == bundle.wae.cfg.latent_dim and info["has_classifier"] is True
    assert info["sha256"] == bundle.meta["weights"]["sha256"] and len(info["sha256"]) == 64
    assert info["path"] == str(bundle.path) and info["prior_temperature"] == 1.0  # not in this bundle: 1
    assert set(info["pca"]) == set(bundle.pca)
    for name, (mean, axes, scales) in info["pca"].items():
        p = bundle.pca[name]
        assert mean.dtype == axes.dtype == scales.dtype == np.float32
        assert np.array_equal(mean, p.mean.numpy()) and axes.shape == (3, bundle.wae.cfg.latent_dim)
        assert np.array_equal(axes, p.components[:3].numpy()) and np.array_equal(scales, p.scales[:3].numpy())
    other = dataclasses.replace(bundle, meta={**bundle.meta, "prior_temperature": 0.7}, path=None, classifier=None)
    info = model_info(other)
    assert info["prior_temperature"] == 0.7 and info["path"] is None and info["has_classifier"] is False


def test_torch_backend_loads_a_path_or_takes_a_bundle(bundle):
    from neuraldrum.graphs import TorchBackend, model_info

    b = TorchBackend(bundle)
    assert b.bundle is bundle and b.device == torch.device("cpu") and b.name == "torch"
    facts = model_info(bundle)
    assert b.frontend is b.analyzer.frontend and b.info.keys() == facts.keys()
    assert all(b.info[k] == facts[k] for k in facts if k != "pca")
    assert b.generator.inverter.n_heads == bundle.mcnn.n_heads and b.analyzer.wae is bundle.wae
    from_path = TorchBackend(bundle.path, device="cpu")
    assert from_path.bundle.path == bundle.path and from_path.info["sha256"] == b.info["sha256"]
    threads = torch.get_num_threads()
    try:
        TorchBackend(bundle, threads=1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    z = np.random.default_rng(0).standard_normal((2, bundle.wae.cfg.latent_dim)).astype(np.float32)
    cls = np.array([3, 5], np.int64)
    with torch.inference_mode():
        ref = Generator(bundle)(torch.from_numpy(cls), torch.from_numpy(z)).numpy()
    assert np.allclose(b.generate(cls, z[:, ::-1][:, ::-1]), ref, atol=1e-6)  # any strides
    t = np.array([0.0, 1.0])
    mixed = b.mix(np.array([3, 3]), np.array([5, 5]), t, np.stack([z[0], z[1]]))
    assert np.allclose(mixed[0], ref[0], atol=1e-5) and np.allclose(mixed[1], ref[1], atol=1e-5)


def test_polyphase_kernel_keeps_the_weights_precision():
    pad, out_pad = doubling_padding(13)
    w = torch.randn(3, 2, 13, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    x = torch.randn(1, 3, 9, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    k, left, right = polyphase_kernel(w, pad, 1)
    assert k.dtype == torch.float64  # a double model stays double
    y = F.conv1d(F.pad(x, (left, right)), k).view(1, 2, 2, 9).transpose(2, 3).reshape(1, 2, 18)
    ref = F.conv_transpose1d(x, w, stride=2, padding=pad, output_padding=out_pad)
    assert torch.allclose(y, ref, atol=1e-12)
