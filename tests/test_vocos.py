"""The Vocos-style inverter: its inverse STFT, Mel prior, training (spectral and adversarial), bundles that hold it,
its exports, the inverter swap and the inverter comparison."""
import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from helpers_bundle import random_bundle
from neuraldrum import cli
from neuraldrum.audio.mel import MelFrontend
from neuraldrum.bundle import BundleError, load_bundle, write_with_inverter
from neuraldrum.config import check_layers, check_shapes, cpu, cpu44, tiny
from neuraldrum.data.synth import synth
from neuraldrum.graphs import Generator
from neuraldrum.models.mcnn import MCNN
from neuraldrum.models.vocos import ISTFT, MelMatch, VocosInverter, mel_prior_matrix
from neuraldrum.train.checkpoint import build_model_from_checkpoint, load_checkpoint
from neuraldrum.train.loop import train
from neuraldrum.train.losses import mrstft_loss, phase_losses, stft_magnitude

FAST = {"val_every": 5, "ckpt_every": 5, "log_every": 5}


@pytest.mark.parametrize("factored", [False, True])
@pytest.mark.parametrize("n_fft,hop", [(512, 128), (1024, 256), (64, 32), (96, 32), (14, 7)])
def test_istft_is_torch_istft(n_fft, hop, factored):
    """Both inverse FFTs (irfft, and the matrix-product stages the ONNX export uses) give torch.istft's output,
    for powers of two and other even sizes (imaginary parts at 0 Hz and Nyquist ignored, as there)."""
    g = torch.Generator().manual_seed(n_fft)
    spec = torch.complex(torch.randn(3, n_fft // 2 + 1, 40, generator=g), torch.randn(3, n_fft // 2 + 1, 40, generator=g))
    win = torch.hann_window(n_fft)
    want = torch.istft(spec, n_fft, hop, n_fft, win, center=True)
    m = ISTFT(n_fft, hop)
    m.factored = factored
    got = m(spec.real, spec.imag)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("n_fft", [45, 7, 13])
def test_factored_inverse_fft_of_odd_sizes(n_fft):
    g = torch.Generator().manual_seed(n_fft)
    re, im = torch.randn(2, n_fft // 2 + 1, 5, generator=g), torch.randn(2, n_fft // 2 + 1, 5, generator=g)
    want = torch.fft.irfft(torch.complex(re, im), n=n_fft, dim=1)
    torch.testing.assert_close(ISTFT(n_fft, 1)._irfft_factored(re, im), want, atol=1e-5, rtol=1e-4)


def test_istft_inverts_an_stft():
    x = torch.randn(2, 4000)
    s = torch.stft(x, 512, 128, 512, torch.hann_window(512), return_complex=True)
    y = ISTFT(512, 128)(s.real, s.imag)
    torch.testing.assert_close(y[:, :3968], x[:, :3968], atol=1e-5, rtol=1e-5)


def test_istft_keeps_one_envelope_per_length_and_window():
    """The summed squared window is kept per frame count: calls of other lengths, in inference mode, and after the
    window is rewritten in place all still give torch.istft's output for the window they have; one kept in
    inference mode is not used where autograd records (it could not be: inference tensors)."""
    m = ISTFT(512, 128)
    g = torch.Generator().manual_seed(5)
    for J, inference in ((40, True), (40, False), (23, False), (40, False)):
        spec = torch.complex(torch.randn(2, 257, J, generator=g), torch.randn(2, 257, J, generator=g))
        with torch.inference_mode(inference):
            got = m(spec.real, spec.imag)
        want = torch.istft(spec, 512, 128, 512, torch.hann_window(512), center=True)
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
    assert len(m._envelopes) == 3
    re = spec.real.clone().requires_grad_()
    m(re, spec.imag).pow(2).sum().backward()  # after the inference-mode call of this length
    assert re.grad is not None and float(re.grad.abs().sum()) > 0
    with torch.no_grad():
        m.window.copy_(torch.hann_window(512) ** 0.5)  # another window, in place (as a state dict load does)
    torch.testing.assert_close(m(spec.real, spec.imag), torch.istft(spec, 512, 128, 512, torch.hann_window(512) ** 0.5,
                                                                     center=True), atol=1e-5, rtol=1e-4)


def test_istft_refuses_a_hop_that_does_not_divide():
    with pytest.raises(ValueError, match="multiple of the hop"):
        ISTFT(500, 128)


def _clips(n=8, length=22016):
    names = ["kick", "snare", "hh_closed", "crash", "tom", "clap", "ride", "rim"]
    return torch.stack([torch.from_numpy(np.pad(synth(names[i % 8], seed=i), (0, length))[:length])
                        for i in range(n)])


def test_mel_prior_estimates_the_magnitudes():
    """P · mel follows the STFT magnitudes' shape (closer than each frame's own level spread flat over the bins,
    which knows the true level) and the fitted scale matters (the unscaled pseudo-inverse is worse)."""
    p = cpu()
    v, fe = p.vocos, MelFrontend(p.mel)
    x = _clips()
    mags = stft_magnitude(x, v.n_fft, v.istft_hop, v.n_fft)
    mel = fe.mel(x)
    P = mel_prior_matrix(p.mel, v.n_fft, mel, mags)
    ref = mags[:, :, ::v.hop_length // v.istft_hop][:, :, :mel.shape[2]]
    keep = ref > ref.amax() * 1e-3

    def err(M):
        est = torch.einsum("km,bmt->bkt", M, mel).clamp(min=1e-5)
        return float((torch.log(est) - torch.log(ref))[keep].abs().mean())

    flat = torch.exp(torch.log(ref).mean(1, keepdim=True)).expand_as(ref)
    err_flat = float((torch.log(flat) - torch.log(ref))[keep].abs().mean())
    assert err(P) < 0.8 * err_flat
    pinv = torch.from_numpy(np.linalg.pinv(__import__("neuraldrum.audio.mel", fromlist=["x"]).mel_filterbank(
        dataclasses.replace(p.mel, n_fft=v.n_fft)))).float()
    assert err(P) < err(pinv) - 0.3


def test_frames_land_where_the_mel_frame_is():
    """Phases of π·k (a pulse at each frame's centre), the prior's magnitudes, and a Mel with energy in frame t
    only: the sound is pulses at t · hop + k · istft_hop, k < r, and nothing else."""
    p = tiny()
    v = p.vocos
    m = VocosInverter(v).eval()
    bins = v.n_fft // 2 + 1
    with torch.no_grad():
        m.head.weight.zero_()
        m.head.bias.zero_()
        for sub in range(m.r):  # head output layout: (sub-frame, [log-magnitude, phase], bin)
            m.head.bias[(sub * 2 + 1) * bins:(sub * 2 + 2) * bins] = torch.pi * torch.arange(bins)
        m.mel_prior.fill_(1.0)
    T, t = 87, 40
    mel = torch.zeros(1, v.n_mels, T)
    mel[:, :, t] = 1.0
    with torch.no_grad():
        y = m(mel)[0]
    assert y.shape[0] == (T * m.r - 1) * v.istft_hop >= 22016
    e = y.pow(2)
    peaks = [t * v.hop_length + k * v.istft_hop for k in range(m.r)]
    assert int(torch.argmax(e)) in peaks
    near = sum(float(e[c - 2:c + 3].sum()) for c in peaks)
    assert near > 0.99 * float(e.sum())


def test_cpu44_is_the_same_mel_shape_at_twice_the_rate():
    p = cpu44()
    assert p.audio.sample_rate == 44100 and p.mel.n_frames(p.audio.n_samples) == 87 == p.wae.n_frames
    check_shapes(p.audio, p.mel, p.wae, p.mcnn, vocos=p.vocos)
    MCNN(p.mcnn)  # 9 doubling layers = hop 512


@pytest.mark.parametrize("field,value,match", [
    ("istft_hop", 100, "divisor of hop_length"), ("n_fft", 1000, "multiple of istft_hop"),
    ("kernel", 4, "odd"), ("dim", 10 ** 9, "vocos.dim"), ("resolutions", (512, 128), "triples")])
def test_vocos_config_checked(field, value, match):
    with pytest.raises(ValueError, match=match):
        check_layers(vocos=dataclasses.replace(tiny().vocos, **{field: value}))


def test_vocos_hop_must_match_the_mel():
    p = tiny()
    with pytest.raises(ValueError, match="vocos"):
        check_shapes(p.audio, p.mel, vocos=dataclasses.replace(p.vocos, hop_length=512, istft_hop=128))


def test_mrstft_loss_is_the_eval_measure():
    """The training loss's parts are the evaluation's multi-resolution STFT distance (SC + log-magnitude L1)."""
    from neuraldrum import metrics as M

    x = _clips(4)
    y = x * 0.5 + 0.01 * torch.randn_like(x)
    res = (512, 128, 512, 1024, 256, 1024, 2048, 512, 2048)
    sc, lg = mrstft_loss(y, x, res)
    assert float(sc + lg) == pytest.approx(float(M.multi_resolution_stft(y.numpy(), x.numpy()).mean()), rel=2e-2)


def _spec(x, n_fft=256, hop=64):
    return torch.stft(x, n_fft, hop, n_fft, torch.hann_window(n_fft), center=True, return_complex=True)


def test_phase_losses_measure_angles():
    """Zero for the clip's own phases however unwrapped; a constant offset c is an instantaneous-phase error of
    |c| and no group-delay or frequency error; a ramp of α per bin is a group-delay error of |α| and no frequency
    error; uniformly random phases are π/2 off on average."""
    import math

    S = _spec(_clips(3))
    phi = torch.angle(S)
    k = torch.randint(-3, 4, phi.shape).float()
    for v in phase_losses(phi + 2 * math.pi * k, S).values():
        assert float(v) < 1e-5
    off = phase_losses(phi - 2.5, S)
    assert float(off["ip"]) == pytest.approx(2.5, abs=1e-4) and float(off["gd"]) < 1e-5 and float(off["iaf"]) < 1e-5
    off = phase_losses(phi + 5.0, S)  # 5 rad is 2π − 5 ≈ 1.28 rad away
    assert float(off["ip"]) == pytest.approx(2 * math.pi - 5.0, abs=1e-4)
    bins = torch.arange(phi.shape[1], dtype=phi.dtype)[None, :, None]
    ramp = phase_losses(phi + 0.4 * bins, S)
    assert float(ramp["gd"]) == pytest.approx(0.4, abs=1e-4) and float(ramp["iaf"]) < 1e-5
    rnd = phase_losses(torch.rand(phi.shape, generator=torch.Generator().manual_seed(0)) * 2 * math.pi, S)
    for v in rnd.values():
        assert float(v) == pytest.approx(math.pi / 2, abs=0.1)


def test_phase_losses_weigh_loud_bins():
    """A wrong phase where the clip is silent costs nothing; where it is loud it counts."""
    S = _spec(_clips(2))
    S[:, 40:] = 0  # silent above bin 40
    phi = torch.angle(S)
    wrong_quiet = phi.clone()
    wrong_quiet[:, 60:] += 2.0
    assert float(phase_losses(wrong_quiet, S)["ip"]) < 1e-6
    wrong_loud = phi.clone()
    wrong_loud[:, :40] += 2.0
    assert float(phase_losses(wrong_loud, S)["ip"]) == pytest.approx(2.0, abs=1e-4)


def test_vocos_phase_of_the_model_is_the_phase_it_plays():
    """The phases ``forward(with_phase=True)`` reports are those of the frames it overlap-adds (so the phase loss
    trains what is heard): re-analysing the output with a frame-exact STFT gives them back where loud."""
    torch.manual_seed(0)
    m = VocosInverter(dataclasses.replace(tiny().vocos, mel_prior=False)).eval()
    mel = torch.rand(1, m.cfg.n_mels, 6) + 0.1
    with torch.no_grad():
        wave, phase = m(mel, with_phase=True)
        assert torch.equal(wave, m(mel))
        real, imag = m.spectrum(mel)
    assert torch.allclose(torch.atan2(imag, real), torch.atan2(torch.sin(phase), torch.cos(phase)), atol=1e-5)


# ---------------------------------------------------------------- training

def test_vocos_training_learns_and_records(tiny_corpus, tmp_path):
    res = train("vocos", tiny_corpus, tmp_path / "v", "tiny", steps=30, overrides=FAST, progress=False)
    rows = [json.loads(line) for line in (tmp_path / "v" / "metrics.jsonl").read_text().splitlines()]
    val = [r["val/vocos/loss"] for r in rows if "val/vocos/loss" in r]
    assert len(val) >= 5 and min(val[1:]) < val[0]
    ck = load_checkpoint(tmp_path / "v" / "last.pt")
    assert ck["task"] == "vocos" and float(ck["model"]["mel_prior"].abs().sum()) > 0  # the prior was fitted
    assert res["step"] == 30


def test_vocos_phase_weight_adds_the_phase_losses(tiny_corpus, tmp_path):
    """--set phase_weight=w: the training loss is the spectral loss plus w · the mean of the three phase losses;
    the validation loss (best.pt, the schedule) is the spectral loss."""
    run = tmp_path / "p"
    over = {**FAST, "log_every": 1, "val_every": 2, "model.phase_weight": 0.5}
    train("vocos", tiny_corpus, run, "tiny", steps=2, overrides=over, progress=False)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    r = next(r for r in rows if "vocos/ip" in r)
    expect = r["vocos/spectral"] + 0.5 * (r["vocos/ip"] + r["vocos/gd"] + r["vocos/iaf"]) / 3
    assert r["vocos/loss"] == pytest.approx(expect, rel=1e-5)
    assert 0 < r["vocos/ip"] < 3.2 and load_checkpoint(run / "last.pt")["configs"]["model"]["phase_weight"] == 0.5
    v = next(r for r in rows if "val/vocos/ip" in r)  # validation ranks by the output's spectral loss alone
    assert v["val/vocos/loss"] == v["val/vocos/spectral"] and v["val/vocos/ip"] > 0


def test_phase_offset_is_a_per_frame_term_that_starts_at_zero():
    """With phase_offset the model plays exactly what the same weights play without it until the offset head
    learns; the offset adds to each frame's phase once (not summed over frames as the advance is)."""
    torch.manual_seed(0)
    base = dataclasses.replace(tiny().vocos, mel_prior=False, phase_advance=True)
    a = VocosInverter(base).eval()
    b = VocosInverter(dataclasses.replace(base, phase_offset=4)).eval()
    missing = b.load_state_dict(a.state_dict(), strict=False).missing_keys
    assert missing and all(k.startswith(VocosInverter.INIT_OPTIONAL) for k in missing)
    mel = torch.rand(2, base.n_mels, 5) + 0.1
    with torch.no_grad():
        assert torch.equal(a(mel), b(mel))
        _, pa = a.mag_phase(mel)
        b.offset_up.bias[3] = 0.7  # bin 3 of the first STFT frame of every Mel frame
        _, pb = b.mag_phase(mel)
    d = pb - pa  # (B, bins, T · r)
    assert torch.allclose(d[:, 3, ::b.r], torch.full_like(d[:, 3, ::b.r], 0.7), atol=1e-5)
    d[:, 3, ::b.r] = 0
    assert d.abs().max() < 1e-5


def test_init_may_lack_only_the_phase_offset(tiny_corpus, tmp_path, capsys):
    """--init from a run without the offset head starts the new head at zero; weights missing anything else are
    refused."""
    train("vocos", tiny_corpus, tmp_path / "v", "tiny", steps=1, overrides={**FAST, "model.phase_advance": True},
          progress=False)
    train("vocos", tiny_corpus, tmp_path / "o", "tiny", steps=1, progress=False, init=tmp_path / "v",
          overrides={**FAST, "model.phase_advance": True, "model.phase_offset": 4, "lr": 0.0})
    src, dst = load_checkpoint(tmp_path / "v" / "last.pt"), load_checkpoint(tmp_path / "o" / "last.pt")
    assert torch.equal(src["model"]["head.weight"], dst["model"]["head.weight"])
    assert float(dst["model"]["offset_up.weight"].abs().sum()) == 0
    sd = {k: v for k, v in src["model"].items() if not k.startswith("head.")}
    torch.save({**src, "model": sd}, tmp_path / "nohead.pt")
    with pytest.raises(ValueError, match="do not fit"):
        train("vocos", tiny_corpus, tmp_path / "x", "tiny", steps=1, progress=False, init=tmp_path / "nohead.pt",
              overrides={**FAST, "model.phase_advance": True})


def test_vocos_gan_resume_is_exact(tiny_corpus, tmp_path):
    """The discriminators and their optimiser are in the checkpoint: 3 + 3 steps = 6 steps."""
    few = {"val_every": 3, "ckpt_every": 3, "log_every": 3}
    train("vocos_gan", tiny_corpus, tmp_path / "a", "tiny", steps=6, overrides=few, progress=False)
    train("vocos_gan", tiny_corpus, tmp_path / "b", "tiny", steps=3, overrides=few, progress=False)
    train("vocos_gan", tiny_corpus, tmp_path / "b", "tiny", steps=6, resume=True, progress=False)
    a, b = load_checkpoint(tmp_path / "a" / "last.pt"), load_checkpoint(tmp_path / "b" / "last.pt")
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    for k in a["disc"]["model"]:
        assert torch.equal(a["disc"]["model"][k], b["disc"]["model"][k]), k
    rows = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert any("vocos_gan/adv" in r and "vocos_gan/fm" in r for r in rows)


def test_preset_without_vocos_is_refused():
    from neuraldrum.config import paper

    with pytest.raises(ValueError, match="no Vocos-style inverter"):
        paper().model("vocos")


# ---------------------------------------------------------------- bundles, graphs, exports

@pytest.fixture(scope="module")
def vocos_bundle(tmp_path_factory):
    return random_bundle(tmp_path_factory.mktemp("v") / "bundle", inverter="vocos")


def test_vocos_bundle_round_trip(vocos_bundle):
    b = load_bundle(vocos_bundle)
    assert b.inverter_kind == "vocos" and isinstance(b.inverter, VocosInverter)
    meta = json.loads((vocos_bundle / "bundle.json").read_text())
    assert "vocos" in meta["configs"] and "mcnn" not in meta["configs"]
    g = Generator(b)
    cls, z = torch.tensor([0, 3]), torch.randn(2, b.wae.cfg.latent_dim)
    with torch.no_grad():
        lm = g.logmel(cls, z)
        raw = b.inverter(torch.clamp(torch.exp(lm) - b.mel.log_floor, min=0))[:, :b.audio.n_samples]
        out = g(cls, z)
    want = g.finish(raw)
    torch.testing.assert_close(out, want)
    with pytest.raises(ValueError, match="no support mask"):
        g.mask_logits(cls, z)


def test_bundle_with_two_inverters_is_refused(vocos_bundle, tmp_path):
    import shutil

    d = tmp_path / "b"
    shutil.copytree(vocos_bundle, d)
    meta = json.loads((d / "bundle.json").read_text())
    meta["configs"]["mcnn"] = dataclasses.asdict(tiny().mcnn)
    (d / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="exactly one inverter"):
        load_bundle(d)


def test_vocos_bundle_missing_prior_tensor_is_refused(vocos_bundle, tmp_path):
    import hashlib
    import shutil

    from safetensors.torch import load_file, save_file

    d = tmp_path / "b"
    shutil.copytree(vocos_bundle, d)
    t = load_file(d / "model.safetensors")
    del t["vocos.mel_prior"]
    save_file(t, d / "model.safetensors")
    meta = json.loads((d / "bundle.json").read_text())
    meta["weights"]["sha256"] = hashlib.sha256((d / "model.safetensors").read_bytes()).hexdigest()
    (d / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="mel_prior|missing"):
        load_bundle(d)


def assert_onnx_plays_as_torch(b, folder, n: int, seed: int) -> None:
    """The exported generator.onnx in ``folder`` gives what bundle ``b``'s torch generator gives for n sounds."""
    import onnxruntime as ort

    g = Generator(b)
    cls = torch.arange(n) % 11
    z = torch.randn(n, b.wae.cfg.latent_dim, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        want = g(cls, z).numpy()
    s = ort.InferenceSession(str(folder / "generator.onnx"))
    got = s.run(None, dict(zip([i.name for i in s.get_inputs()], (cls.numpy(), z.numpy()))))[0]
    np.testing.assert_allclose(got, want, atol=2e-4)


def test_vocos_bundle_exports_to_onnx(vocos_bundle, tmp_path):
    pytest.importorskip("onnxruntime")
    from neuraldrum.export.models import export

    export(vocos_bundle, "onnx", tmp_path / "onnx")
    assert_onnx_plays_as_torch(load_bundle(vocos_bundle), tmp_path / "onnx", 4, seed=1)


def test_phase_offset_bundle_loads_and_exports(tmp_path):
    """A bundle whose inverter sums phases and adds each frame's own term loads as saved and plays the same
    through ONNX."""
    pytest.importorskip("onnxruntime")
    from neuraldrum.export.models import export

    path = random_bundle(tmp_path / "b", inverter="vocos_phase")
    b = load_bundle(path)
    assert b.inverter.cfg.phase_offset == 4 and float(b.inverter.offset_up.weight.abs().sum()) > 0
    export(path, "onnx", tmp_path / "onnx")
    assert_onnx_plays_as_torch(b, tmp_path / "onnx", 3, seed=2)


@pytest.mark.parametrize("preset", [cpu44, cpu])  # cpu: a 1024-point window inside 2048-point frames
def test_mel_match_analyses_on_the_mels_own_grid(preset):
    """MelMatch's STFT is torch.stft with the Mel's settings, its factored FFT (for ONNX) is rfft, and a wave
    whose Mel is already the one asked for passes unchanged."""
    mel = preset().mel
    mm = MelMatch(mel, 1)
    x = torch.randn(2, 44032, generator=torch.Generator().manual_seed(0)) * torch.exp(-torch.arange(44032) / 6000)
    re, im = (t.transpose(1, 2) for t in mm._stft(x))
    want = torch.stft(x, mel.n_fft, mel.hop_length, mel.win_length, torch.hann_window(mel.win_length),
                      center=True, pad_mode="constant", return_complex=True)
    torch.testing.assert_close(torch.complex(re, im), want, atol=1e-5, rtol=1e-5)
    frames = torch.randn(2, 3, mel.n_fft)
    fr, fi = mm._rfft_factored(frames)
    torch.testing.assert_close(torch.complex(fr, fi), torch.fft.rfft(frames), atol=2e-4, rtol=1e-4)
    torch.testing.assert_close(mm(x, MelFrontend(mel).mel(x)), x, atol=1e-5, rtol=1e-5)


def test_mel_match_puts_back_the_level_the_mel_asks_for():
    """A wave at half the level of the clip whose Mel is asked for comes back at the clip's level (all band
    gains are 2); a wave whose low band is 10 dB down gets it back within 1 dB; gains stay within the limit."""
    mel = cpu44().mel
    fe = MelFrontend(mel)
    t = torch.arange(44032) / 44100
    g = torch.Generator().manual_seed(1)
    x = (torch.sin(2 * math.pi * 55 * t) + 0.3 * torch.randn(44032, generator=g)) * torch.exp(-t / 0.2)
    x = x[None]
    y = MelMatch(mel, 1, floor=1e-9)(0.5 * x, fe.mel(x))  # (the floor keeps the faintest bands as they are)
    assert float((y - x).pow(2).mean().sqrt()) < 0.01 * float(x.pow(2).mean().sqrt())
    cut = torch.where(torch.fft.rfftfreq(44032, 1 / 44100) < 120, 0.3, 1.0)  # the band under 120 Hz −10.5 dB
    low = torch.fft.irfft(torch.fft.rfft(x) * cut, n=44032)

    def low_db(w):
        return 10 * math.log10(float(fe.spectrogram(w)[:, 1:6].pow(2).sum()))  # ≈ 21–107 Hz

    assert low_db(x) - low_db(low) > 9
    fixed = MelMatch(mel, 2)(low, fe.mel(x))
    assert abs(low_db(fixed) - low_db(x)) < 1.0
    capped = MelMatch(mel, 1, limit=2.0)(0.1 * x, fe.mel(x))  # a gain of 10 is asked for; 2 is the most
    torch.testing.assert_close(capped, 0.2 * x, atol=1e-4, rtol=1e-3)
    silent = torch.zeros(1, 44032)  # a silent Mel and a silent wave: silence, not 0/0
    assert torch.equal(MelMatch(mel, 2)(silent, fe.mel(silent)), silent)


def test_mel_match_momentum_is_fast_griffin_lims_extrapolation():
    """With momentum α, rounds 1 and 2 are the plain rounds and round 3 starts from C + α (C − C_prev), C being
    the STFT of round 2's output and C_prev that of round 1's: written out here with torch.stft / istft."""
    mel = cpu44().mel
    fe = MelFrontend(mel)
    g = torch.Generator().manual_seed(3)
    t = torch.arange(44032) / 44100
    x = ((torch.sin(2 * math.pi * 70 * t) + 0.2 * torch.randn(44032, generator=g)) * torch.exp(-t / 0.15))[None]
    start = torch.roll(x, 300) * 0.7  # a wave that disagrees with the Mel asked for: late, quiet
    target = fe.mel(x)
    win = torch.hann_window(mel.win_length)

    def stft(w):
        return torch.stft(w, mel.n_fft, mel.hop_length, mel.win_length, win, center=True, pad_mode="constant",
                          return_complex=True)[:, :, :target.shape[2]]

    def gained(S):  # the band gains, spread to bins, as the class docstring states them
        floor = 1e-5 * target.amax()
        ratio = ((target + floor) / (fe.fb @ S.abs() ** mel.power + floor)).clamp(0.25, 4.0) ** (1 / mel.power)
        return S * (ratio.transpose(1, 2) @ MelMatch(mel, 1).spread).transpose(1, 2)

    def istft(S, like):
        y = torch.istft(S, mel.n_fft, mel.hop_length, mel.win_length, win, center=True,
                        length=(S.shape[2] - 1) * mel.hop_length)
        return torch.cat([y, like[:, y.shape[1]:]], dim=1)

    w1 = istft(gained(stft(start)), start)
    w2 = istft(gained(stft(w1)), w1)
    c1, c2 = stft(w1), stft(w2)
    w3 = istft(gained(c2 + 0.9 * (c2 - c1)), w2)
    for k, want in ((2, w2), (3, w3)):
        torch.testing.assert_close(MelMatch(mel, k, momentum=0.9)(start, target), want, atol=2e-4, rtol=1e-3)
    traced = MelMatch(mel, 3, momentum=0.9)(start.clone().requires_grad_(), target)  # the path training takes
    torch.testing.assert_close(traced.detach(), w3, atol=2e-4, rtol=1e-3)
    plain3 = MelMatch(mel, 3)(start, target)
    assert float((plain3 - w3).abs().max()) > 1e-3  # (the momentum changed round 3)


def test_griffin_lim_steps_are_fast_griffin_lim_from_the_given_phases():
    """GriffinLimSteps, written out with torch.stft / istft: magnitudes max(pinv(fb) · mel, 0), the wave's own
    phases, momentum from the third iteration; and from a wave that disagrees with the Mel, the output's spectral
    distance to the clip falls with the iterations."""
    from neuraldrum.models.vocos import GriffinLimSteps

    mel = cpu44().mel
    fe = MelFrontend(mel)
    g = torch.Generator().manual_seed(4)
    t = torch.arange(44032) / 44100
    x = ((torch.sin(2 * math.pi * 90 * t) + 0.3 * torch.randn(44032, generator=g)) * torch.exp(-t / 0.1))[None]
    target = fe.mel(x)
    start = x + 0.05 * torch.randn(1, 44032, generator=g) * torch.exp(-t / 0.3)  # same Mel nearly, other phases
    win = torch.hann_window(mel.win_length)
    mags = (torch.linalg.pinv(fe.fb.double()).float() @ target).clamp(min=0)  # (bins, T)

    def stft(w):
        return torch.stft(w, mel.n_fft, mel.hop_length, mel.win_length, win, center=True, pad_mode="constant",
                          return_complex=True)[:, :, :target.shape[2]]

    def step(S, like):
        y = torch.istft(mags * S / S.abs().clamp(min=1e-12), mel.n_fft, mel.hop_length, mel.win_length, win,
                        center=True, length=(S.shape[2] - 1) * mel.hop_length)
        return torch.cat([y, like[:, y.shape[1]:]], dim=1)

    w1 = step(stft(start), start)
    w2 = step(stft(w1), w1)
    c1, c2 = stft(w1), stft(w2)
    w3 = step(c2 + 0.5 * (c2 - c1), w2)
    torch.testing.assert_close(GriffinLimSteps(mel, 1, 0.5)(start, target), w1, atol=2e-4, rtol=1e-3)
    torch.testing.assert_close(GriffinLimSteps(mel, 3, 0.5)(start, target), w3, atol=2e-4, rtol=1e-3)
    traced = GriffinLimSteps(mel, 3, 0.5)(start.clone().requires_grad_(), target)  # the path an export takes
    torch.testing.assert_close(traced.detach(), w3, atol=2e-4, rtol=1e-3)

    def sc(w):
        ref = stft(x).abs()
        return float((stft(w).abs() - ref).norm() / ref.norm())

    far = torch.roll(x, 700) * 0.5  # late and quiet: the iterations move it towards the clip's spectrogram
    scs = [sc(GriffinLimSteps(mel, k)(far, target)) for k in (0, 2, 8)]
    assert scs[0] > scs[1] > scs[2], scs
    silent = torch.zeros(1, 44032)
    assert torch.equal(GriffinLimSteps(mel, 2)(silent, fe.mel(silent)), silent)


@pytest.mark.parametrize("preset", [cpu44, cpu])
@pytest.mark.parametrize("n_samples", [44032, 30001, 2000])  # fewer frames than the Mel's: the frames there count
def test_playing_fast_path_is_the_traced_arithmetic(preset, n_samples):
    """Playing on a CPU, Mel matching and Griffin-Lim steps take a faster path (numpy per-bin arithmetic, in-place
    overlap-add); while differentiating, tracing or exporting they take the plain torch one. Both give the same
    waves, for a batch, a wave shorter than the Mel, momentum on and off; and the fast path leaves its input as
    it was."""
    from neuraldrum.models.vocos import GriffinLimSteps

    mel_cfg = preset().mel
    g = torch.Generator().manual_seed(n_samples)
    t = torch.arange(44032) / mel_cfg.sample_rate
    x = torch.randn(3, 44032, generator=g) * torch.exp(-t / 0.2)
    target = MelFrontend(mel_cfg).mel(x)
    start = (torch.roll(x, 400, dims=1) * 0.6)[:, :n_samples]
    for mod in (MelMatch(mel_cfg, 3), MelMatch(mel_cfg, 4, momentum=0.7), GriffinLimSteps(mel_cfg, 5),
                GriffinLimSteps(mel_cfg, 4, momentum=0.0)):
        before = start.clone()
        with torch.inference_mode():
            assert mod._fast_ok(start, target)
            fast = mod(start, target)
        assert torch.equal(start, before)
        slow_in = start.clone().requires_grad_()
        assert not mod._fast_ok(slow_in, target)
        slow = mod(slow_in, target).detach()
        assert fast.shape == slow.shape == start.shape
        torch.testing.assert_close(fast, slow, atol=2e-5, rtol=1e-4)
        assert float((fast - start).abs().max()) > 1e-3  # (they did something)


def test_griffin_lim_silences_frames_100_db_down_and_skips_them_when_playing(monkeypatch):
    """Griffin-Lim aims at silence in a frame whose loudest bin is 100 dB or more under the clip's loudest (in
    both paths), and playing transforms only the frames from the first to the last louder one: silence, a burst,
    a tail 90 dB down (kept) and one 110 dB down (made silent) give the same wave either way, and the playing
    path's FFTs see only the burst's and the first tail's frames."""
    from neuraldrum.models.vocos import GriffinLimSteps

    mel_cfg = cpu44().mel
    hop, n_fft = mel_cfg.hop_length, mel_cfg.n_fft
    g = torch.Generator().manual_seed(5)
    x = torch.randn(1, 44032, generator=g)
    x[:, :4096] = 0.0  # (silence first: the frames transformed start later)
    x[:, 8192:16384] *= 10 ** (-90 / 20)
    x[:, 16384:] *= 10 ** (-110 / 20)
    target = MelFrontend(mel_cfg).mel(x)
    start = torch.roll(x, 300, dims=1) * 0.5
    gl = GriffinLimSteps(mel_cfg, 3)
    sizes = []
    rfft = torch.fft.rfft
    monkeypatch.setattr(torch.fft, "rfft", lambda t, *a, **k: sizes.append(t.shape[1]) or rfft(t, *a, **k))
    with torch.inference_mode():
        fast = gl(start, target)
    monkeypatch.setattr(torch.fft, "rfft", rfft)
    slow = gl(start.clone().requires_grad_(), target).detach()
    torch.testing.assert_close(fast, slow, atol=2e-6, rtol=1e-4)
    # frame t spans samples t · hop ± n_fft / 2: t ≤ 30 lie within the burst and the first tail, t ≥ 34 within
    # the second; in between the window's edge decides
    # t ≤ 6 see only the first silence, t ≥ 10 the burst
    assert len(sizes) == 3 and len(set(sizes)) == 1 and 31 - 10 <= sizes[0] <= 34 - 7, sizes
    quiet = fast[0, 34 * hop + n_fft // 2:]  # past the last transformed frame (t ≤ 33): silence
    assert quiet.numel() > 20000 and float(quiet.abs().max()) == 0.0
    tail = fast[0, 10000:14000]  # the tail 90 dB down plays at its level, give or take
    level = 20 * math.log10(float(tail.pow(2).mean().sqrt()) / float(fast[0, 5000:8000].pow(2).mean().sqrt()))
    assert -96 < level < -84, level
    kept = GriffinLimSteps(mel_cfg, 3)
    kept.SILENT_DB = -200.0  # (nothing that quiet here: every frame is transformed and none is silent)
    with torch.inference_mode():
        everything = kept(start, target)
    assert float(everything[0, 30000:].abs().max()) > 0


def test_griffin_lim_bundle_loads_exports_and_plays_the_same(tmp_path):
    """A bundle whose inverter ends with Griffin-Lim iterations (no weights of their own) loads, applies them,
    and its ONNX export (no DFT operator) plays the same."""
    pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    from neuraldrum.export.models import export
    from neuraldrum.models.vocos import GriffinLimSteps

    path = random_bundle(tmp_path / "b", inverter="vocos_gl")
    b = load_bundle(path)
    assert isinstance(b.inverter.gl, GriffinLimSteps) and b.inverter.gl.iters == 3
    mel = torch.rand(2, b.mel.n_mels, b.mel.n_frames(b.audio.n_samples)) * 3
    plain = VocosInverter(dataclasses.replace(b.inverter.cfg, gl_iters=0), b.mel).eval()
    plain.load_state_dict(b.inverter.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(b.inverter(mel), b.inverter.gl(plain(mel), mel))
    export(path, "onnx", tmp_path / "onnx")
    ops = {n.op_type for n in onnx.load(str(tmp_path / "onnx" / "generator.onnx")).graph.node}
    assert "DFT" not in ops and "STFT" not in ops
    assert_onnx_plays_as_torch(b, tmp_path / "onnx", 3, seed=2)
    with pytest.raises(ValueError, match="gl_iters"):
        VocosInverter(dataclasses.replace(b.inverter.cfg, mel_match=0))


def test_mel_prior_matrix_follows_the_mels_device():
    """The pseudo-inverse is made where the example Mels are (it was made on the CPU: training on a GPU failed
    at its first step)."""
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    from neuraldrum.models.vocos import mel_prior_matrix

    mel = cpu44().mel
    x = torch.randn(2, 44032, device="cuda")
    mags = torch.stft(x, 1024, 256, 1024, torch.hann_window(1024, device="cuda"), return_complex=True).abs()
    P = mel_prior_matrix(mel, 1024, MelFrontend(mel).to("cuda").mel(x), mags)
    assert P.device.type == "cuda" and P.shape == (513, mel.n_mels)


@pytest.mark.parametrize("kind,rounds", [("vocos_mm", 2), ("vocos_mmm", 3)])
def test_mel_match_bundle_loads_exports_and_plays_the_same(tmp_path, kind, rounds):
    """A bundle whose inverter matches its output to the Mel (2 rounds; 3 with momentum; no weights of their own)
    loads, its generator applies the matching, and the ONNX export (FFTs as matrix products, no DFT) plays the
    same."""
    pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    from neuraldrum.export.models import export

    path = random_bundle(tmp_path / "b", inverter=kind)
    b = load_bundle(path)
    assert b.inverter.cfg.mel_match == rounds and isinstance(b.inverter.mel_match, MelMatch)
    assert b.inverter.mel_match.momentum == (0.9 if rounds == 3 else 0.0)
    mel = torch.rand(2, b.mel.n_mels, b.mel.n_frames(b.audio.n_samples)) * 3
    plain = VocosInverter(dataclasses.replace(b.inverter.cfg, mel_match=0)).eval()
    plain.load_state_dict(b.inverter.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(b.inverter(mel), b.inverter.mel_match(plain(mel), mel))
        assert float((b.inverter(mel) - plain(mel)).abs().max()) > 1e-3  # the matching changed the sound
    export(path, "onnx", tmp_path / "onnx")
    ops = {n.op_type for n in onnx.load(str(tmp_path / "onnx" / "generator.onnx")).graph.node}
    assert "DFT" not in ops and "STFT" not in ops
    assert_onnx_plays_as_torch(b, tmp_path / "onnx", 3, seed=2)
    assert b.inverter.mel_match.factored is False
    with pytest.raises(ValueError, match="needs the Mel settings"):
        VocosInverter(b.inverter.cfg)


def test_onnx_export_has_no_dft_operator(vocos_bundle, tmp_path):
    """The exported generator computes its inverse FFT with matrix products (onnxruntime's DFT operator was a
    third of the 44.1 kHz generator's time), and the model in memory goes back to irfft afterwards."""
    onnx = pytest.importorskip("onnx")
    from neuraldrum.export.models import export

    b = load_bundle(vocos_bundle)
    export(b, "onnx", tmp_path / "onnx")
    ops = {n.op_type for n in onnx.load(str(tmp_path / "onnx" / "generator.onnx")).graph.node}
    assert "DFT" not in ops and "MatMul" in ops
    assert b.inverter.istft.factored is False


def test_engine_plays_a_vocos_bundle(vocos_bundle):
    from neuraldrum.engine import Engine

    e = Engine(vocos_bundle, warm=False)
    w = e.generate("snare", z=np.zeros(e.latent_dim, np.float32))
    assert w.shape == (e.n_samples,) and np.isfinite(w).all() and 0.5 < np.abs(w).max() <= 1.0


def test_hifi_rendering_adds_griffin_lim_steps_after_the_inverter(vocos_bundle, tmp_path, capsys):
    """Engine(hifi=K): the playing path's inverter output, then K Griffin-Lim iterations from it, then the same
    fades, as loud as the playing path's sound; hifi=True is HIFI_ITERS; refused out of range; `generate --hifi`. (The ONNX backend's hi-fi:
    test_player.py.)"""
    import soundfile as sf

    from neuraldrum.engine import HIFI_ITERS, Engine
    from neuraldrum.hifi import match_level
    from neuraldrum.models.vocos import GriffinLimSteps

    plain, hifi = Engine(vocos_bundle, warm=False), Engine(vocos_bundle, warm=False, hifi=3)
    z = plain.sample_prior(2, 0)
    cls = torch.tensor([0, 1])
    g = plain.backend.generator
    with torch.no_grad():
        mel = (torch.exp(g.logmel(cls, torch.from_numpy(z))) - g.log_floor).clamp(min=0.0)
        want = g.finish(GriffinLimSteps(hifi.backend.bundle.mel, 3)(g.inverter(mel), mel)).numpy()
    want = match_level(want, plain.generate_batch([0, 1], z), plain.sample_rate)
    got = hifi.generate_batch([0, 1], z)
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert np.abs(got - plain.generate_batch([0, 1], z)).max() > 1e-3
    assert Engine(vocos_bundle, warm=False, hifi=True).hifi == HIFI_ITERS and plain.hifi == 0
    with pytest.raises(ValueError, match="hifi"):
        Engine(vocos_bundle, warm=False, hifi=65)
    assert cli.main(["generate", "kick", "--model", str(vocos_bundle), "--seed", "1", "--hifi", "-o",
                     str(tmp_path / "hi")]) == 0
    assert cli.main(["generate", "kick", "--model", str(vocos_bundle), "--seed", "1", "-o", str(tmp_path / "lo")]) == 0
    hi, _ = sf.read(tmp_path / "hi" / "kick_000.wav")
    lo, _ = sf.read(tmp_path / "lo" / "kick_000.wav")
    assert hi.shape == lo.shape and np.abs(hi - lo).max() > 1e-3
    # a kit rendered in hi-fi says so in kit.json and is remade the same way, bit for bit
    args = ["--model", str(vocos_bundle), "--seed", "2"]
    assert cli.main(["kit", *args, "--hifi", "-o", str(tmp_path / "k1")]) == 0
    assert json.loads((tmp_path / "k1" / "kit.json").read_text())["info"]["hifi"] == HIFI_ITERS
    assert cli.main(["kit", "--model", str(vocos_bundle), "--from", str(tmp_path / "k1" / "kit.json"), "-o",
                     str(tmp_path / "k2")]) == 0
    assert cli.main(["kit", *args, "-o", str(tmp_path / "k3")]) == 0
    assert "hifi" not in json.loads((tmp_path / "k3" / "kit.json").read_text()).get("info", {})
    for wav in sorted((tmp_path / "k1").glob("*.wav")):
        assert (tmp_path / "k2" / wav.name).read_bytes() == wav.read_bytes()
    assert (tmp_path / "k3" / "kick.wav").read_bytes() != (tmp_path / "k1" / "kick.wav").read_bytes()


def test_swap_inverter(bundle_dir, vocos_bundle, tmp_path):
    """An MCNN bundle with the Vocos-style inverter put in: the other tensors are kept, the record says what was
    replaced, the old metrics are dropped, and a mismatched inverter is refused."""
    src = load_bundle(bundle_dir)
    inv = load_bundle(vocos_bundle).inverter
    out = write_with_inverter(bundle_dir, tmp_path / "swapped", inv, {"command": "test"})
    b = load_bundle(out)
    assert b.inverter_kind == "vocos"
    for k, v in src.wae.state_dict().items():
        assert torch.equal(v, b.wae.state_dict()[k])
    meta = json.loads((out / "bundle.json").read_text())
    assert meta["training"]["vocos"] == {"command": "test"}
    assert meta["training"]["inverter_replaced"]["kind"] == "mcnn" and meta["metrics"] == {}
    bad = VocosInverter(dataclasses.replace(tiny().vocos, hop_length=512, istft_hop=128))
    with pytest.raises(ValueError, match="hop"):
        write_with_inverter(bundle_dir, tmp_path / "bad", bad, {})
    assert not (tmp_path / "bad").exists()


def test_bundle_inverter_sets_mel_match(bundle_dir, tiny_corpus, tmp_path, capsys):
    """`bundle-inverter --mel-match K` puts a Vocos-style run in with K rounds of Mel matching (recorded; no
    weights added) and refuses it for an MCNN run."""
    train("vocos", tiny_corpus, tmp_path / "v", "tiny", steps=2, overrides=FAST, progress=False)
    train("mcnn", tiny_corpus, tmp_path / "m", "tiny", steps=2, overrides=FAST, progress=False)
    out = tmp_path / "mm"
    assert cli.main(["bundle-inverter", "--model", str(bundle_dir), "--inverter", str(tmp_path / "v"), "--data",
                     str(tiny_corpus), "--out", str(out), "--mel-match", "2", "--no-metrics"]) == 0
    b = load_bundle(out)
    assert b.inverter.cfg.mel_match == 2 and isinstance(b.inverter.mel_match, MelMatch)
    assert json.loads((out / "bundle.json").read_text())["training"]["vocos"]["mel_match"] == 2
    plain = load_checkpoint(tmp_path / "v" / "last.pt")["model"]
    assert set(b.inverter.state_dict()) == set(plain)
    capsys.readouterr()
    train("vocos", tiny_corpus, tmp_path / "t", "tiny", steps=3, overrides={**FAST, "model.mel_match": 1,
                                                                           "log_every": 1}, progress=False)
    losses = [json.loads(r)["vocos/loss"] for r in (tmp_path / "t" / "metrics.jsonl").read_text().splitlines()
              if "vocos/loss" in r]  # trained through the matching (the clips' silent tails: finite gradients)
    assert len(losses) == 3 and all(math.isfinite(v) for v in losses)
    assert isinstance(build_model_from_checkpoint(load_checkpoint(tmp_path / "t" / "last.pt")).mel_match, MelMatch)
    assert cli.main(["bundle-inverter", "--model", str(bundle_dir), "--inverter", str(tmp_path / "m"), "--data",
                     str(tiny_corpus), "--out", str(tmp_path / "x"), "--mel-match", "2", "--no-metrics"]) == 1
    assert "for a Vocos-style inverter" in capsys.readouterr().err and not (tmp_path / "x").exists()
    out = tmp_path / "mom"
    assert cli.main(["bundle-inverter", "--model", str(bundle_dir), "--inverter", str(tmp_path / "v"), "--data",
                     str(tiny_corpus), "--out", str(out), "--mel-match", "3", "--mel-match-momentum", "0.9",
                     "--no-metrics"]) == 0
    b = load_bundle(out)
    assert (b.inverter.mel_match.rounds, b.inverter.mel_match.momentum) == (3, 0.9)
    record = json.loads((out / "bundle.json").read_text())["training"]["vocos"]
    assert (record["mel_match"], record["mel_match_momentum"]) == (3, 0.9)
    capsys.readouterr()
    assert cli.main(["bundle-inverter", "--model", str(bundle_dir), "--inverter", str(tmp_path / "v"), "--data",
                     str(tiny_corpus), "--out", str(tmp_path / "y"), "--mel-match", "3", "--mel-match-momentum",
                     "1", "--no-metrics"]) == 1
    assert "vocos.mel_match_momentum" in capsys.readouterr().err and not (tmp_path / "y").exists()


def test_compare_inverters_cli(tiny_corpus, tmp_path, capsys):
    train("vocos", tiny_corpus, tmp_path / "v", "tiny", steps=10, overrides=FAST, progress=False)
    train("mcnn", tiny_corpus, tmp_path / "m", "tiny", steps=10, overrides=FAST, progress=False)
    out = tmp_path / "cmp.json"
    assert cli.main(["compare-inverters", "--data", str(tiny_corpus), "--run", f"vocos={tmp_path / 'v'}",
                     "--run", f"mcnn={tmp_path / 'm'}", "--gl-iters", "2", "--out", str(out), "--quiet"]) == 0
    res = json.loads(out.read_text())
    assert set(res["inverters"]) == {"vocos", "mcnn", "gl2", "real"}
    v = res["inverters"]["vocos"]
    assert v["steps"] == 10 and v["params"] > 0 and v["ms_t1"] > 0 and "inv/sc" in v["metrics"]
    assert "| vocos |" in capsys.readouterr().out
    train("wae", tiny_corpus, tmp_path / "w", "tiny", steps=5, overrides=FAST, progress=False)
    assert cli.main(["compare-inverters", "--data", str(tiny_corpus), "--run", f"w={tmp_path / 'w'}",
                     "--out", str(tmp_path / "x.json")]) == 1
    assert "not an inverter" in capsys.readouterr().err


def test_train_set_changes_the_model_config(tiny_corpus, tmp_path, capsys):
    run = tmp_path / "v"
    assert cli.main(["train", "vocos", "--data", str(tiny_corpus), "--out", str(run), "--preset", "tiny",
                     "--set", "n_fft=256", "--set", "istft_hop=64", "--steps", "1", "--quiet"]) == 0
    ck = load_checkpoint(run / "last.pt")
    assert (ck["configs"]["model"]["n_fft"], ck["configs"]["model"]["istft_hop"]) == (256, 64)
    assert "--set n_fft=256 --set istft_hop=64" in json.loads((run / "command.json").read_text())["command"]
    capsys.readouterr()
    for args, what in ((["--set", "nfft=1"], "not a field of the vocos config"),
                       (["--set", "n_fft=x"], "must be JSON"), (["--set", "n_fft=1000"], "multiple of istft_hop"),
                       (["--set", "phase_offset=-3"], "vocos.phase_offset"), (["--set", "dim=0"], "vocos.dim")):
        assert cli.main(["train", "vocos", "--data", str(tiny_corpus), "--out", str(tmp_path / "w"), "--preset",
                         "tiny", "--steps", "1", "--quiet", *args]) == 1
        assert what in capsys.readouterr().err and not (tmp_path / "w").exists()
    assert cli.main(["train", "vocos", "--data", str(tiny_corpus), "--out", str(run), "--resume", "--set",
                     "n_fft=512", "--steps", "2", "--quiet"]) == 1
    assert "cannot change on --resume" in capsys.readouterr().err


def test_init_fine_tunes_a_vocos_run_adversarially(tiny_corpus, tmp_path, capsys):
    """--init starts vocos_gan from a vocos run's weights (recorded in command.json); other models, --resume and
    a missing run are refused."""
    train("vocos", tiny_corpus, tmp_path / "v", "tiny", steps=3, overrides=FAST, progress=False)
    src = load_checkpoint(tmp_path / "v" / "last.pt")
    assert cli.main(["train", "vocos_gan", "--data", str(tiny_corpus), "--out", str(tmp_path / "g"), "--preset",
                     "tiny", "--init", str(tmp_path / "v"), "--steps", "1", "--val-every", "1", "--quiet"]) == 0
    rec = json.loads((tmp_path / "g" / "command.json").read_text())
    assert rec["init"]["task"] == "vocos" and rec["init"]["path"].endswith(".pt") and "--init" in rec["command"]
    g0 = load_checkpoint(tmp_path / "g" / "last.pt")
    assert torch.equal(g0["model"]["mel_prior"], src["model"]["mel_prior"])  # the prior came from the init run
    capsys.readouterr()
    train("mcnn", tiny_corpus, tmp_path / "m", "tiny", steps=1, overrides=FAST, progress=False)
    for args, what in ((["--init", str(tmp_path / "m")], "same kind of model"),
                       (["--init", str(tmp_path / "nothing")], "no checkpoint")):
        assert cli.main(["train", "vocos_gan", "--data", str(tiny_corpus), "--out", str(tmp_path / "x"), "--preset",
                         "tiny", "--steps", "1", "--quiet", *args]) == 1
        assert what in capsys.readouterr().err and not (tmp_path / "x").exists()
    assert cli.main(["train", "vocos_gan", "--data", str(tiny_corpus), "--out", str(tmp_path / "g"), "--resume",
                     "--init", str(tmp_path / "v"), "--steps", "2", "--quiet"]) == 1
    assert "--init" in capsys.readouterr().err


def test_eval_names_the_inverter(vocos_bundle, tiny_corpus):
    from neuraldrum import evaluate
    from neuraldrum.data.corpus import load_corpus
    from neuraldrum.engine import Engine

    m = evaluate.reconstruction(Engine(vocos_bundle, warm=False), load_corpus(tiny_corpus), "test", gl_iters=())
    assert "inv/vocos_sc" in m and "inv/vocos_gated" in m and not any(k.startswith("inv/mcnn") for k in m)


@pytest.mark.parametrize("advance", [True, False])
def test_phase_advance_keeps_a_steady_partial_coherent(advance):
    """One partial at bin k = 5 and a head predicting phase 0: with phase_advance the frames add up to a steady
    sine at bin 5's frequency (all the energy within ±8 bins of it in a 16 384-point spectrum); without it each
    frame restarts at phase 0, and the overlap-add moves the energy to a multiple of the frame rate."""
    v = dataclasses.replace(tiny().vocos, phase_advance=advance)
    m = VocosInverter(v).eval()
    with torch.no_grad():
        m.head.weight.zero_()
        m.head.bias.zero_()
        m.mel_prior.zero_()
        m.mel_prior[5] = 1.0 / v.n_mels
        y = m(torch.ones(1, v.n_mels, 87))[0]
    mid = y[4096:4096 + 16384]
    power = torch.fft.rfft(mid * torch.hann_window(len(mid))).abs().pow(2)
    f = 5 * len(mid) // v.n_fft
    share = float(power[f - 8:f + 9].sum() / power.sum())
    assert share > 0.99 if advance else share < 0.1


def test_onnx_engine_is_named_after_its_bundle(vocos_bundle, tmp_path):
    """The live front ends run an ONNX export from a cache folder; the model keeps its bundle's name."""
    pytest.importorskip("onnxruntime")
    from neuraldrum.engine import Engine
    from neuraldrum.export.models import export

    export(vocos_bundle, "onnx", tmp_path / "cache-folder")
    e = Engine(tmp_path / "cache-folder", backend="onnx", warm=False)
    assert e.model_name == vocos_bundle.name and e.model_path == str(tmp_path / "cache-folder")
    assert Engine(vocos_bundle, warm=False).model_name == vocos_bundle.name


def test_inverters_train_on_the_unlabelled_pool(tiny_corpus, tmp_path):
    """With a pool in the corpus, an inverter's batches draw from train clips and pool clips (each row read from
    where it lives); with use_pool off, or for the WAE, only from the labelled train split."""
    import shutil

    from neuraldrum.data.corpus import load_corpus
    from neuraldrum.train.dist import DistInfo
    from neuraldrum.train.loop import _configs
    from neuraldrum.train.tasks import VocosTask, WAETask

    root = tmp_path / "c"
    shutil.copytree(tiny_corpus, root)
    n = np.load(root / "audio.npy", mmap_mode="r").shape[1]
    pool = np.zeros((3, n), np.float32)
    for p in range(3):  # a level no corpus clip has: 0.25 · (p + 1) everywhere
        pool[p] = 0.25 * (p + 1)
    np.save(root / "pool.npy", pool)
    (root / "pool.jsonl").write_text("".join(json.dumps({"id": f"p{p}", "index": p}) + "\n" for p in range(3)))
    corpus = load_corpus(root)
    cfgs = _configs("vocos", "tiny", 0, False, {"batch_size": 8})
    task = VocosTask(corpus, cfgs, DistInfo())
    train_rows = np.asarray(corpus.audio)[corpus.indices("train")]
    seen_pool, seen_train = set(), 0
    for step in range(30):
        idx = task.sampler.batch(step)
        wave = task._batch(idx, np.arange(len(idx)), step, gain=False).numpy()
        for i, w in zip(idx, wave):
            if i >= len(corpus):
                assert np.all(w == 0.25 * (i - len(corpus) + 1))
                seen_pool.add(int(i - len(corpus)))
            else:
                assert corpus.items[i]["split"] == "train" and np.array_equal(w, corpus.audio[i])
                seen_train += 1
    assert seen_pool == {0, 1, 2} and seen_train > 0
    assert len(train_rows) + 3 == len(task.sampler.indices)
    off = VocosTask(corpus, _configs("vocos", "tiny", 0, False, {"use_pool": False}), DistInfo())
    assert np.all(off.sampler.indices < len(corpus))
    wae = WAETask(corpus, _configs("wae", "tiny", 0, False, {}), DistInfo())
    assert all(np.all(wae.sampler.batch(s)[0] < len(corpus)) for s in range(5))


def test_train_no_pool_flag_is_recorded(tiny_corpus, tmp_path):
    run = tmp_path / "v"
    assert cli.main(["train", "vocos", "--data", str(tiny_corpus), "--out", str(run), "--preset", "tiny",
                     "--steps", "1", "--no-pool", "--quiet"]) == 0
    ck = load_checkpoint(run / "last.pt")
    assert ck["configs"]["train"]["use_pool"] is False
    assert "--no-pool" in json.loads((run / "command.json").read_text())["command"]


def test_playing_engine_names_the_bundle_asked_for(vocos_bundle, tmp_path):
    """Bundles with the same weights share one cached ONNX export; each is shown under its own name, not the
    name of the bundle that happened to fill the cache (the web page said "v2" for the default)."""
    pytest.importorskip("onnxruntime")
    import shutil

    from neuraldrum.engine import playing_engine

    twin = tmp_path / "twin-name"
    shutil.copytree(vocos_bundle, twin)
    quiet = lambda msg: None  # noqa: E731
    first = playing_engine(vocos_bundle, cache=tmp_path / "cache", say=quiet, backend="onnx")
    second = playing_engine(twin, cache=tmp_path / "cache", say=quiet, backend="onnx")
    assert first.model_path == second.model_path  # one cache entry
    assert (first.model_name, second.model_name) == (vocos_bundle.name, "twin-name")
    assert playing_engine(twin).model_name == "twin-name"  # (auto: torch, the bundle itself)
