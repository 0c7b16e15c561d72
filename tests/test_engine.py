"""Bundle save/load/refusal and the engine, on a tiny randomly initialised model (no training needed): conftest's
``bundle_dir`` and ``engine``. The engine's paths one by one, against values worked out by hand: test_engine_paths.py."""
import json
import threading

import numpy as np
import pytest
import torch

from neuraldrum.bundle import PCA, BundleError, load_bundle, read_meta
from neuraldrum.data.synth import synth
from neuraldrum.engine import Controls, Engine
from neuraldrum.taxonomy import CLASSES


def test_pca_recovers_known_axes():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(4000, 5, generator=g) * torch.tensor([5.0, 2.0, 1.0, 0.5, 0.1]) + 3.0
    p = PCA.fit(z, k=3)
    assert torch.allclose(p.mean, torch.full((5,), 3.0), atol=0.2)
    assert torch.allclose(p.scales, torch.tensor([5.0, 2.0, 1.0]), rtol=0.06)
    assert torch.allclose(p.components.abs()[:, :3], torch.eye(3), atol=0.05)


def test_bundle_roundtrip_identical_outputs(bundle_dir, engine):
    b2 = Engine(load_bundle(bundle_dir), warm=False)
    z = engine.sample_prior(3, 1)
    assert np.array_equal(engine.generate_batch(["kick", "snare", "rim"], z),
                          b2.generate_batch(["kick", "snare", "rim"], z))
    assert read_meta(bundle_dir)["metrics"] == {"note": "random weights"}


def test_bundle_refuses_altered_truncated_unknown(bundle_dir, tmp_path):
    import shutil

    def copy(name):
        d = tmp_path / name
        shutil.copytree(bundle_dir, d)
        return d

    d = copy("altered")
    w = d / "model.safetensors"
    data = bytearray(w.read_bytes())
    data[-5] ^= 0xFF
    w.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="checksum"):
        load_bundle(d)
    d = copy("truncated")
    (d / "model.safetensors").write_bytes((d / "model.safetensors").read_bytes()[:1000])
    with pytest.raises(BundleError, match="checksum"):
        load_bundle(d)
    d = copy("future")
    meta = json.loads((d / "bundle.json").read_text())
    meta["format_version"] = 99
    (d / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="version 99"):
        load_bundle(d)
    d = copy("notjson")
    (d / "bundle.json").write_text("{")
    with pytest.raises(BundleError, match="not valid JSON"):
        load_bundle(d)
    with pytest.raises(BundleError, match="no such model bundle"):
        load_bundle(tmp_path / "nope")


def test_generate_shapes_and_click_free(engine):
    waves = engine.generate_batch(CLASSES, engine.sample_prior(len(CLASSES), 3))  # every class, in one batch
    assert waves.shape == (len(CLASSES), engine.n_samples) and waves.dtype == np.float32
    for w in waves:
        assert np.all(np.isfinite(w))
        assert abs(w[0]) < 1e-6 and abs(w[-1]) < 1e-6  # faded in and out: no click
        assert np.max(np.abs(w)) <= 0.9
    w = engine.generate(CLASSES[0], seed=3)  # the first draw of seed 3, as in the batch's first row
    assert w.shape == (engine.n_samples,) and np.allclose(w, waves[0], atol=1e-5)
    assert np.array_equal(engine.generate("kick", seed=5), engine.generate("kick", seed=5))
    assert not np.array_equal(engine.generate("kick", seed=5), engine.generate("kick", seed=6))


def test_controls_move_along_pca_axes(engine):
    pca = engine.bundle.pca["snare"]
    z0 = engine.controls_to_z("snare", Controls())
    assert np.allclose(z0, pca.mean.numpy(), atol=1e-6)
    z1 = engine.controls_to_z("snare", Controls(x=1.0, range=2.0))
    assert np.allclose(z1 - z0, (pca.scales[0] * pca.components[0]).numpy(), atol=1e-5)
    z2 = engine.controls_to_z("snare", Controls(y=-0.5, range=10.0, axes=(3, 4)))
    d = z2 - pca.mean.numpy()
    assert d[4] == pytest.approx(-2.5) and np.count_nonzero(np.abs(d) > 1e-6) == 1
    for bad in (Controls(x=1.5), Controls(range=0), Controls(axes=(1,))):
        with pytest.raises(ValueError):
            engine.controls_to_z("snare", bad)
    with pytest.raises(ValueError, match="unknown class"):
        engine.generate("banjo")


def test_encode_resynth_variations_morph(engine):
    kick = synth("kick", seed=0)
    e = engine.encode(kick, cls="kick")
    assert e.z.shape == (engine.latent_dim,) and e.cls == "kick"
    assert sum(e.probs.values()) == pytest.approx(1.0, abs=1e-5)
    e2 = engine.encode(kick)  # class predicted by the classifier
    assert e2.cls == max(e2.probs, key=e2.probs.get)
    assert engine.resynth(kick, cls="kick").shape == (engine.n_samples,)
    v = engine.variations(e, 2, amount=0.5, seed=0)
    assert v.shape == (2, engine.n_samples)
    v0 = engine.variations(e, 2, amount=0.0)
    assert np.allclose(v0[0], v0[1]) and np.allclose(v0[0], engine.generate("kick", z=e.z), atol=1e-6)
    hat = engine.encode(synth("hh_closed"), cls="hh_closed")
    m = engine.morph(e, hat, 3)
    assert m.shape == (3, engine.n_samples)
    assert np.allclose(m[0], engine.generate("kick", z=e.z), atol=1e-5)
    assert np.allclose(m[-1], engine.generate("hh_closed", z=hat.z), atol=1e-5)


def test_engine_is_thread_safe(engine):
    ref = {c: engine.generate(c, seed=1) for c in CLASSES[:4]}
    errors = []

    def work(c):
        for _ in range(3):
            if not np.array_equal(engine.generate(c, seed=1), ref[c]):
                errors.append(c)

    threads = [threading.Thread(target=work, args=(c,)) for c in CLASSES[:4]]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors


def test_bundle_files_get_plain_modes(bundle_dir):
    import os

    umask = os.umask(0)
    os.umask(umask)
    assert (bundle_dir.stat().st_mode & 0o777) == 0o777 & ~umask
    for f in bundle_dir.iterdir():
        assert (f.stat().st_mode & 0o777) == 0o666 & ~umask, f.name


def test_audio_boundary_accepts_layouts_and_names_bad_arguments(engine, tmp_path):
    import soundfile as sf

    kick = synth("kick", seed=0).astype(np.float32)
    mono = engine.encode(kick, cls="kick").z
    for stereo in (np.stack([kick, kick]), np.stack([kick, kick], axis=1)):  # channels-first and channels-last
        assert np.allclose(engine.encode(stereo, cls="kick").z, mono, atol=1e-5)
    as_int16 = np.round(kick / np.abs(kick).max() * 20000).astype(np.int16)
    assert np.allclose(engine.encode(as_int16, cls="kick").z, mono, atol=1e-2)
    as_uint8 = np.round(kick / np.abs(kick).max() * 100 + 128).astype(np.uint8)  # DC at 128 is removed
    assert np.allclose(engine.encode(as_uint8, cls="kick").z, mono, atol=0.2)
    sf.write(str(tmp_path / "k.wav"), kick, 22050, subtype="FLOAT")
    assert np.allclose(engine.encode(str(tmp_path / "k.wav"), cls="kick").z, mono, atol=1e-5)
    for bad, match in [((kick, 0), "sample_rate=0"), ((kick, True), "sample_rate=True"),
                       ((kick, 1), "sample_rate=1"), ((np.zeros((3, 4, 5)), None), "shape"),
                       ((np.array(["a", "b"]), None), "numbers"), ((np.zeros(61 * 22050), None), "at most 60 s")]:
        with pytest.raises(ValueError, match=match):
            engine.encode(bad[0], sample_rate=bad[1], cls="kick")
    for call, match in [(lambda: engine.generate("kick", z=np.full(engine.latent_dim, np.nan)), "NaN"),
                        (lambda: engine.generate("kick", controls=Controls(x=1, range=float("inf"))), "range"),
                        (lambda: engine.variations(engine.encode(kick), 2, amount=float("nan")), "amount"),
                        (lambda: engine.generate(True), "unknown class"),
                        (lambda: Engine(engine.bundle, threads=-2), "threads=-2")]:
        with pytest.raises(ValueError, match=match):
            call()
