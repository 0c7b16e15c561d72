"""The inference graphs against independent routes: torch's own transposed convolution, the trained MCNN's
``infer``, and the models' parts composed by hand."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers_bundle import random_bundle
from neuraldrum.bundle import load_bundle
from neuraldrum.config import cpu, tiny
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


@pytest.mark.parametrize("preset", [tiny, cpu])
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
    assert (ref == 0).any() and (ref != 0).any()  # the mask keeps some samples and zeroes others


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
