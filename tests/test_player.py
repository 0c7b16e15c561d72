"""The player without torch: the default model's ONNX graphs shipped in the package (current with its bundle), the
same sounds as the torch engine (live, hi-fi, morphs across classes), numpy's Griffin-Lim steps checked on paper,
and the training verbs' one-line message where torch is missing."""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import neuraldrum
from neuraldrum.bundle import DEFAULT_BUNDLE, configs_sha256, read_meta
from neuraldrum.engine import Encoded, Engine, HIFI_ITERS
from neuraldrum.graphs import Mixer
from neuraldrum.hifi import envelope, finish, griffin_lim_steps, hann, limit, match_level
from neuraldrum.onnx_backend import DEFAULT_EXPORT
from neuraldrum.voice import Controls, Voice

pytest.importorskip("onnxruntime")
ROOT = Path(__file__).resolve().parents[1]
PARITY = 1e-4  # the export's parity bound (export.models.PARITY_TOL)
NO_TORCH = "import sys; sys.modules['torch'] = None  # as in an install without torch\n"


@pytest.fixture(scope="module")
def engines():
    t = Engine(None, backend="torch", warm=False)
    return t, Engine(None, backend="onnx", warm=False)


def test_shipped_graphs_were_exported_from_the_shipped_bundle():
    import onnxruntime as ort

    meta = json.loads((DEFAULT_EXPORT / "export.json").read_text())
    bundle = read_meta(DEFAULT_BUNDLE)
    assert meta["bundle_sha256"] == bundle["weights"]["sha256"]
    assert meta["bundle_sha256"] == hashlib.sha256((DEFAULT_BUNDLE / "model.safetensors").read_bytes()).hexdigest()
    assert meta["configs_sha256"] == configs_sha256(bundle)
    assert meta["graphs_revision"] == neuraldrum.GRAPHS_REVISION, "the graphs changed: `make graphs` remakes them"
    assert sorted(meta["files"]) == ["analyzer.onnx", "generator.onnx", "mixer.onnx", "weights.bin"]
    for name, sha in meta["files"].items():
        assert hashlib.sha256((DEFAULT_EXPORT / name).read_bytes()).hexdigest() == sha, name
        if name.endswith(".onnx"):
            s = ort.InferenceSession(str(DEFAULT_EXPORT / name), providers=["CPUExecutionProvider"])
            meta_g = json.loads(s.get_modelmeta().custom_metadata_map["neuraldrum"])
            assert meta_g["bundle_sha256"] == sha_of(bundle)
    # the package's model files, the bundle and its graphs together
    shipped = [*DEFAULT_BUNDLE.iterdir(), *DEFAULT_EXPORT.iterdir()]
    assert sum(f.stat().st_size for f in shipped) <= 60e6


def test_the_generator_and_the_mixer_store_their_shared_weights_once():
    import onnx

    def external(name):  # initializer name -> (location, offset, length) of its bytes outside the graph
        g = onnx.load(str(DEFAULT_EXPORT / f"{name}.onnx"), load_external_data=False).graph
        return {t.name: tuple(e.value for e in t.external_data) for t in g.initializer
                if t.data_location == onnx.TensorProto.EXTERNAL}

    gen, mix = external("generator"), external("mixer")
    assert {where[0] for where in [*gen.values(), *mix.values()]} == {"weights.bin"}
    spans = {where[1:] for where in gen.values()}
    in_both = sum(int(where[2]) for where in mix.values() if where[1:] in spans)
    assert in_both > 15e6  # the decoder and the inverter: the mixer reads the generator's bytes
    size = (DEFAULT_EXPORT / "weights.bin").stat().st_size
    assert size < sum(int(w[2]) for w in [*gen.values(), *mix.values()]) - in_both + 1e5  # each tensor's bytes once


def sha_of(bundle_meta):
    return bundle_meta["weights"]["sha256"]


def test_the_default_model_plays_from_its_graphs_as_in_torch(engines):
    t, o = engines
    assert o.backend.name == "onnx" and o.model_sha256 == t.model_sha256 and o.model_name == t.model_name
    voices = [Voice("kick", seed=3), Voice("snare", controls=Controls(x=0.5, y=-0.5, range=5)),
              Voice("ride", seed=1, amount=0.3, variation_seed=2)]
    for a, b in zip(t.render(voices), o.render(voices)):
        assert a.shape == b.shape and np.abs(a - b).max() <= PARITY
    a, b = Encoded(t.sample_prior(1, 4, cls="kick")[0], "kick", {}), Encoded(t.sample_prior(1, 5, cls="clap")[0],
                                                                             "clap", {})
    mt, mo = t.morph(a, b, 5), o.morph(a, b, 5)  # across classes: the log-Mels mixed in the mixer graph
    assert np.abs(mt - mo).max() <= PARITY and np.abs(mt[0] - t.generate("kick", z=a.z)).max() <= PARITY


def test_hifi_steps_in_numpy_equal_torchs(engines):
    t, _ = engines
    hi = Engine(t.bundle, backend="torch", warm=False, hifi=True)
    g = hi.generator
    cls = torch.tensor([t.class_index(c) for c in ("kick", "snare", "crash")])
    z = torch.from_numpy(np.stack([t.sample_prior(1, s, cls=c)[0] for s, c in enumerate(("kick", "snare", "crash"))]))
    with torch.inference_mode():
        wave, target = Mixer(g)(cls, cls, torch.zeros(3), z)
        want = hi.backend.generate(cls.numpy(), z.numpy())
    m = t.bundle.mel
    got = finish(griffin_lim_steps(wave.numpy(), target.numpy(), HIFI_ITERS, m.n_fft, m.hop_length, m.win_length),
                 t.n_samples, t.sample_rate)
    got = match_level(got, finish(wave.numpy(), t.n_samples, t.sample_rate), t.sample_rate)
    assert np.abs(got - want).max() <= PARITY  # the same steps on the same input
    # end to end (the mixer graph's float rounding, then 24 iterations): within what torch's own hi-fi varies by
    # between batch sizes (2.4e-4 here)
    o = Engine(None, backend="onnx", warm=False, hifi=True)
    end = o.generate_batch(["kick", "snare", "crash"], z.numpy())
    one = np.stack([hi.generate(c, z=zz) for c, zz in zip(("kick", "snare", "crash"), z.numpy())])
    assert np.abs(end - want).max() <= 1e-3 and np.abs(one - want).max() > 1e-5
    assert np.abs(end - t.generate_batch(["kick", "snare", "crash"], z.numpy())).max() > 1e-2  # hi-fi differs


def test_griffin_lim_steps_keep_a_consistent_spectrogram_and_match_the_hann_window():
    n_fft, hop, win = 1024, 256, 1024
    assert np.allclose(hann(n_fft, win), np.hanning(win + 1)[:-1], atol=1e-6)  # periodic Hann
    assert np.allclose(hann(8, 4), [0, 0, 0, 0.5, 1, 0.5, 0, 0], atol=1e-6)  # centred in n_fft
    env = envelope(hann(n_fft, win), hop, 20)
    assert np.allclose(env[n_fft:-n_fft], 1.5, atol=1e-5)  # Hann² at 75 % overlap sums to 3/2
    rng = np.random.default_rng(0)
    n = 40 * hop
    x = (rng.standard_normal(n) * np.exp(-np.arange(n) / 3000)).astype(np.float32)[None]
    frames = np.lib.stride_tricks.sliding_window_view(np.pad(x[0], n_fft // 2), n_fft)[::hop]
    mags = np.abs(np.fft.rfft(frames * np.hanning(n_fft + 1)[:-1], axis=-1)).astype(np.float32)[None]
    y = griffin_lim_steps(x, mags, 8, n_fft, hop, win)  # its own STFT's magnitudes: a fixed point
    assert np.abs(y - x).max() < 1e-4
    z = griffin_lim_steps(x, mags * 0, 3, n_fft, hop, win)  # aimed at silence: silent over the frames
    assert np.abs(z[:, :(mags.shape[1] - 1) * hop]).max() == 0.0
    fin = finish(np.ones((1, 1000), np.float32), 1200, 22050)
    assert fin.shape == (1, 1200) and fin[0, 0] == 0 and abs(fin.max() - 10 ** (-1 / 20)) < 1e-6
    assert fin[0, 1100:].max() == 0  # padded with silence past the input


def rms_db(x, sample_rate):  # the loudness both paths share: the RMS over the first 300 ms, in dB
    head = [float(v) for v in x[:sample_rate * 3 // 10]]
    return 10 * np.log10(sum(v * v for v in head) / len(head))


def test_hifi_is_as_loud_as_the_playing_path_under_the_same_peak(engines):
    _, live = engines
    hi = Engine(None, backend="onnx", warm=False, hifi=True)
    sr, n = live.sample_rate, live.n_samples
    cls = [c for c in live.classes for _ in range(2)]
    z = np.stack([live.sample_prior(1, 40 + i, cls=c)[0] for i, c in enumerate(cls)])
    a, b = live.generate_batch(cls, z), hi.generate_batch(cls, z)
    ci = np.array([live.class_index(c) for c in cls])
    wave, target = hi.backend._mixer().run(None, {"cls_a": ci, "cls_b": ci, "t": np.zeros(len(ci), np.float32),
                                                  "z": z})
    g = hi.backend.grid
    gl = finish(griffin_lim_steps(wave, target, HIFI_ITERS, g["n_fft"], g["hop_length"], g["win_length"]), n, sr)
    gain = np.array([10 ** ((rms_db(x, sr) - rms_db(y, sr)) / 20) for x, y in zip(a, gl)])
    peak = 10 ** (-1 / 20)
    depth = 20 * np.log10(np.abs(gl).max(axis=1) * gain / peak)  # the limiting a plain match would need (dB)
    for i, (c, x, y) in enumerate(zip(cls, a, b)):
        assert np.abs(y).max() <= peak + 1e-7, c
        some = np.abs(gl[i]) > 1e-3 * np.abs(gl[i]).max()
        used = np.max(y[some] / gl[i, some])  # the gain where the limiter lets go (it only lowers)
        limited = 20 * np.log10(used * np.abs(gl[i]).max() / peak)  # how far the limiter took its peak down
        assert limited <= 6.0 + 1e-3, c  # never by over 6 dB
        if limited < 6.0 - 1e-3:  # as loud as the playing path
            assert abs(rms_db(y, sr) - rms_db(x, sr)) <= 0.5, c
        else:  # the limiter stopped at 6 dB: quieter than the playing path, never louder
            assert rms_db(y, sr) < rms_db(x, sr) and depth[i] > 0, c
    # a sound the match takes to no more than -1 dBFS is the Griffin-Lim output times one gain, nothing else
    plain = np.abs(gl).max(axis=1) * gain < 10 ** (-1 / 20) - 1e-3
    assert plain.any() and not plain.all()  # both kinds among these
    for i in np.flatnonzero(plain):
        assert np.abs(b[i] - gl[i] * gain[i]).max() <= 1e-6 * gain[i], cls[i]


def test_the_peak_limiter_only_touches_what_is_over_the_peak():
    sr, peak = 44100, 0.5
    t = np.arange(sr // 2)
    x = (0.4 * np.sin(2 * np.pi * 100 * t / sr)).astype(np.float32)
    x[10000] = 0.9  # one sample over the peak
    y = limit(np.stack([x, x * 0.5]), peak, sr)
    assert np.abs(y[0]).max() <= peak and abs(y[0, 10000]) >= peak - 1e-6  # brought down to the peak, no lower
    far = np.abs(t - 10000) > sr * (2 + 10 + 2) / 1000  # beyond the look-ahead, the hold and the release
    assert np.array_equal(y[0, far], x[far]) and np.array_equal(y[1], x * 0.5)  # the rest as it was
    assert np.all(np.abs(y[0, ~far]) <= np.abs(x[~far]) + 1e-7)  # the limiter only lowers
    steps = np.abs(np.diff(y[0, ~far] / np.where(x[~far] == 0, 1, x[~far])))
    assert steps[np.isfinite(steps)].max() < 0.05  # a ramp, not a jump


def test_hifi_needs_the_mixer_graph(tmp_path):
    old = tmp_path / "old_export"
    shutil.copytree(DEFAULT_EXPORT, old, ignore=shutil.ignore_patterns("mixer.onnx"))
    with pytest.raises(ValueError, match="no mixer graph, which hi-fi rendering needs"):
        Engine(old, backend="onnx", hifi=True)
    e = Engine(old, backend="onnx", warm=False)
    with pytest.raises(ValueError, match="no mixer graph, which a morph across classes needs"):
        e.morph(Encoded(np.zeros(e.latent_dim, np.float32), "kick", {}),
                Encoded(np.zeros(e.latent_dim, np.float32), "snare", {}), 3)


def _run(code: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run([sys.executable, "-c", NO_TORCH + textwrap.dedent(code)], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300)


@pytest.mark.parametrize("argv", [["train", "wae", "--data", "c", "--out", "r"], ["eval", "--data", "c"],
                                  ["export", "--format", "onnx", "-o", "e"], ["bundle", "--help"],
                                  ["kit", "-o", "k", "--backend", "torch"]])
def test_train_verbs_without_torch_say_the_extra_in_one_line(argv, tmp_path):
    r = _run(f"from neuraldrum import cli; sys.exit(cli.main({argv!r}))", tmp_path)
    assert r.returncode == 1, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'neuraldrum[train]'" in lines[0], r.stderr
    assert lines[0].startswith("neuraldrum: error:") and not list(tmp_path.iterdir())


def test_the_kit_verb_without_torch_makes_the_torch_engines_kit(tmp_path):
    r = _run("""
        from neuraldrum import cli
        rc = cli.main(["kit", "-o", "kit", "--seed", "3", "--hifi"])
        print("torch" in sys.modules and sys.modules["torch"] is not None, rc)
        """, tmp_path)
    assert r.returncode == 0 and r.stdout.split()[-2:] == ["False", "0"], r.stderr
    from neuraldrum import cli
    import soundfile as sf

    assert cli.main(["kit", "-o", str(tmp_path / "torch_kit"), "--seed", "3", "--hifi", "--backend", "torch"]) == 0
    for cls in ("kick", "hh_open", "shaker"):
        a, _ = sf.read(tmp_path / "kit" / f"{cls}.wav", dtype="float32")
        b, _ = sf.read(tmp_path / "torch_kit" / f"{cls}.wav", dtype="float32")
        assert a.shape == b.shape and np.abs(a - b).max() <= 1e-3 + 2 / 32768  # hi-fi's bound, to the 16-bit step
