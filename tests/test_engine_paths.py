"""The engine's own logic, path by path, against values worked out by hand: how a voice becomes a latent, what
render / generate / encode / classify / variations / morph hand to the graphs, how any audio becomes the clip the
analyser sees, and how ``playing_engine`` picks, exports and caches its backend.

Most tests run the engine over a fake backend (:class:`FakeBackend`) with a 6-dimensional latent and PCA axes
chosen so that every expected latent can be written down by hand; it records each call, so a test sees exactly
what reached the graphs. The last tests use the tiny random bundle (conftest's ``engine``) and check the engine
against the model's parts: render equals generate, classify is the listener's softmax.
"""
import importlib.util
import json
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import neuraldrum
import neuraldrum.engine as engine_module
from neuraldrum.audio.io import prepare_clip, resample
from neuraldrum.onnx_backend import DEFAULT_EXPORT
from neuraldrum.bundle import DEFAULT_BUNDLE, configs_sha256
from neuraldrum.engine import HIFI_ITERS, Controls, Encoded, Engine, Voice, playing_engine
from neuraldrum.sampler import SamplerControls, apply_sampler

D, SR, N = 6, 8000, 2000
CLASSES = ["kick", "snare", "hat"]
E = np.eye(D, dtype=np.float32)


def info(**changes):
    """What a backend tells the engine: 3 classes, D = 6, prior temperature 0.8 and hand-made PCA axes: kick's
    are the first three unit vectors with spreads 2, 3, 4; snare has two axes (e5 with spread 1, e4 with
    spread 2); hat has none of its own and falls back to "all"."""
    pca = {"kick": (np.arange(1, D + 1, dtype=np.float32), E[:3].copy(), np.array([2, 3, 4], np.float32)),
           "snare": (np.full(D, 0.5, np.float32), E[[5, 4]].copy(), np.array([1, 2], np.float32)),
           "all": (np.full(D, -1.0, np.float32), E[[2, 1, 0]].copy(), np.ones(3, np.float32))}
    d = {"classes": list(CLASSES), "sample_rate": SR, "n_samples": N, "latent_dim": D, "prior_temperature": 0.8,
         "has_classifier": True, "sha256": "ab" * 32, "path": "/models/fake", "pca": pca}
    d.update(changes)
    return d


def fake_wave(cls: int, z: np.ndarray) -> np.ndarray:
    """The fake graphs' sound of (class, z): a decaying tone whose pitch and level depend on both."""
    t = np.arange(N) / SR
    f = 200.0 + 50.0 * cls + 10.0 * float(np.sum(np.abs(z)))
    return (0.5 * np.sin(2 * np.pi * f * t) * np.exp(-t * 20)).astype(np.float32)


class FakeBackend:
    """Records every call; generate returns :func:`fake_wave` rows, analyse a fixed latent and probabilities."""

    name = "fake"
    made: list = []  # (args, kwargs) of each construction

    def __init__(self, bundle=None, **kwargs):
        FakeBackend.made.append(((bundle,), kwargs))
        self.info = FakeBackend.next_info
        if FakeBackend.next_bundle is not None:  # what a torch backend has: its loaded bundle
            self.bundle = FakeBackend.next_bundle
        self.calls: list = []
        self.z_out = np.linspace(-1, 1, D)[None]  # float64: the engine must hand back float32
        self.p_out = np.array([[0.2, 0.5, 0.3]], np.float32)

    def generate(self, cls, z):
        self.calls.append(("generate", cls.copy(), np.array(z, copy=True)))
        return np.stack([fake_wave(int(c), r) for c, r in zip(cls, z)])

    def analyse(self, wave, cls):
        self.calls.append(("analyse", np.array(wave, copy=True), cls.copy()))
        used = np.where(cls < 0, self.p_out.argmax(axis=1), cls)
        return self.z_out, self.p_out, used

    def mix(self, cls_a, cls_b, t, z):
        self.calls.append(("mix", cls_a.copy(), cls_b.copy(), np.array(t, copy=True), np.array(z, copy=True)))
        return np.zeros((len(t), N), np.float32)


@pytest.fixture
def fake(monkeypatch):
    """Engine(...) builds a FakeBackend (for torch and onnx alike); returns a maker of engines."""
    import neuraldrum.graphs
    import neuraldrum.onnx_backend

    FakeBackend.made = []
    FakeBackend.next_info = info()
    FakeBackend.next_bundle = None
    monkeypatch.setattr(neuraldrum.graphs, "TorchBackend", FakeBackend)
    monkeypatch.setattr(neuraldrum.onnx_backend, "OnnxBackend", FakeBackend)

    def make(**info_changes):
        FakeBackend.next_info = info(**info_changes)
        return Engine("bundle-path", warm=False)

    return make


def prior(seed, t, n=1):
    """The documented prior draw: t · N(0, I) from numpy's default generator seeded with ``seed``."""
    return t * np.random.default_rng(seed).standard_normal((n, D))


def generated(eng):
    """(class indices, z) of every generate call the engine made."""
    return [(c.tolist(), z) for kind, c, z in ((k[0], k[1], k[2]) for k in eng.backend.calls) if kind == "generate"]


# ---------------------------------------------------------------- construction

def test_engine_takes_its_facts_from_the_backend(fake):
    eng = fake()
    assert FakeBackend.made == [(("bundle-path",), {"threads": None, "device": None, "hifi": 0})]
    assert (eng.sample_rate, eng.n_samples, eng.classes, eng.latent_dim) == (SR, N, CLASSES, D)
    assert eng.temperature == 0.8 and type(eng.temperature) is float
    assert eng.has_classifier is True and eng.model_sha256 == "ab" * 32 and eng.model_path == "/models/fake"
    assert eng.pca is FakeBackend.next_info["pca"]
    Engine("b2", threads=1, device="cuda:1", warm=False, hifi=True)
    assert FakeBackend.made[-1] == (("b2",), {"threads": 1, "device": "cuda:1", "hifi": HIFI_ITERS})
    Engine("export-folder", threads=2, backend="onnx", warm=False)
    assert FakeBackend.made[-1] == (("export-folder",), {"threads": 2, "hifi": 0})
    with pytest.raises(ValueError) as e:
        Engine("b", backend="tpu")
    assert str(e.value) == "backend='tpu': choose from auto, torch, onnx"


def test_engine_warms_up_by_generating_unless_told_not_to(fake):
    assert generated(fake()) == []
    eng = Engine("b")  # warm by default
    assert len(generated(eng)) >= 1 and all(c == [0] for c, _ in generated(eng))


def test_threads_must_be_a_whole_number_up_to_four_per_core(fake, monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    for ok in (1, 8):
        Engine("b", threads=ok, warm=False)
        assert FakeBackend.made[-1][1]["threads"] == ok
    for bad in (0, -1, 9, True, 2.0, "2"):
        with pytest.raises(ValueError) as e:
            Engine("b", threads=bad, warm=False)
        assert str(e.value) == f"threads={bad!r} must be a whole number from 1 to 8 (4 × the CPU count)"
    monkeypatch.setattr(os, "cpu_count", lambda: None)  # unknown: counted as one core
    Engine("b", threads=4, warm=False)
    with pytest.raises(ValueError, match="from 1 to 4 "):
        Engine("b", threads=5, warm=False)


def test_torch_only_attributes(fake):
    eng = fake()
    eng.backend.device = "cpu"  # an attribute the backend has is passed through
    assert eng.device == "cpu"
    with pytest.raises(AttributeError) as e:
        eng.bundle  # noqa: B018 - the fake backend has no bundle
    assert str(e.value) == "Engine.bundle exists only with backend='torch'"
    with pytest.raises(AttributeError) as e:
        eng.no_such_thing  # noqa: B018
    assert str(e.value) == "no_such_thing"


def test_the_torch_backends_objects_are_reachable(engine):
    for name in ("bundle", "generator", "analyzer", "frontend", "device"):
        assert getattr(engine, name) is getattr(engine.backend, name)


# ---------------------------------------------------------------- classes and latents

def test_class_index_takes_names_and_indices(fake):
    eng = fake()
    assert [eng.class_index(c) for c in ("kick", "snare", "hat", 0, 2, np.int64(1))] == [0, 1, 2, 0, 2, 1]
    assert type(eng.class_index(np.int64(1))) is int
    for bad, msg in [(3, "class index 3 out of range 0..2"), (-1, "class index -1 out of range 0..2"),
                     ("banjo", "unknown class 'banjo'; choose from kick, snare, hat"),
                     (True, "unknown class True; choose from kick, snare, hat"), (None, "unknown class None")]:
        with pytest.raises(ValueError) as e:
            eng.class_index(bad)
        assert str(e.value).startswith(msg)


def test_class_centre_is_the_class_mean_or_the_overall_mean_or_zero(fake):
    eng = fake()
    assert np.array_equal(eng.class_centre("kick"), [1, 2, 3, 4, 5, 6])
    assert np.array_equal(eng.class_centre(1), np.full(D, 0.5))
    assert np.array_equal(eng.class_centre("hat"), np.full(D, -1.0))  # no PCA of its own: the overall mean
    c = eng.class_centre("kick")
    c[0] = 99.0  # a copy: the engine's PCA is not changed through it
    assert eng.class_centre("kick")[0] == 1.0
    bare = fake(pca={})
    z = bare.class_centre("snare")
    assert np.array_equal(z, np.zeros(D)) and z.dtype == np.float32


def test_controls_move_along_the_class_axes_by_hand(fake):
    eng = fake()
    z = eng.controls_to_z("kick", Controls(x=0.5, y=-1.0, fine=0.25, range=2.0))
    # offset = range/2 · (x·2·e0 + y·3·e1 + fine·4·e2) = (1, -3, 1, 0, 0, 0)
    assert np.allclose(z, [2, -1, 4, 4, 5, 6], atol=1e-6) and z.dtype == np.float32
    z = eng.controls_to_z("kick", Controls(x=0.5, y=-1.0, fine=0.25, range=5.0))
    assert np.allclose(z, [3.5, -5.5, 5.5, 4, 5, 6], atol=1e-6)
    # snare has two axes (e5 spread 1, e4 spread 2): fine moves nothing
    z = eng.controls_to_z("snare", Controls(x=1.0, y=0.5, fine=1.0, range=2.0))
    assert np.allclose(z, [0.5, 0.5, 0.5, 0.5, 1.5, 1.5], atol=1e-6)
    # hat falls back to "all" (axes e2, e1, e0, spreads 1)
    z = eng.controls_to_z("hat", Controls(x=1.0, y=-1.0, fine=0.5, range=4.0))
    assert np.allclose(z, [0, -3, 1, -1, -1, -1], atol=1e-6)
    # from a given start instead of the centre
    z = eng.controls_to_z(0, Controls(y=1.0), z0=np.zeros(D))
    assert np.allclose(z, [0, 3, 0, 0, 0, 0], atol=1e-6)


def test_controls_on_chosen_dimensions(fake):
    eng = fake()
    z = eng.controls_to_z("kick", Controls(x=0.5, y=-1.0, fine=1.0, range=4.0, axes=(1, 4)))
    assert np.allclose(z, [1, 3, 3, 4, 3, 6], atol=1e-6)  # z[1] += 4/2·0.5, z[4] += 4/2·(-1); fine: no axis
    z = eng.controls_to_z("kick", Controls(x=0.5, y=0.25, range=2.0, axes=(2, 2)), z0=np.ones(D))
    assert np.allclose(z, [1, 1, 1.75, 1, 1, 1], atol=1e-6)  # both on one dimension add up
    for axes in ((6, 0), (0, 6)):
        with pytest.raises(ValueError) as e:
            eng.controls_to_z("kick", Controls(axes=axes))
        assert str(e.value) == "latent dimension 6 out of range 0..5"
    bare = fake(pca={})
    assert np.allclose(bare.controls_to_z("kick", Controls(x=1.0, axes=(0, 1))), [1, 0, 0, 0, 0, 0])
    with pytest.raises(ValueError) as e:
        bare.controls_to_z("kick", Controls(x=1.0))
    assert str(e.value) == "this bundle has no PCA axes; use axes=(i, j)"
    with pytest.raises(ValueError, match="control x"):
        eng.controls_to_z("kick", Controls(x=1.5))
    with pytest.raises(ValueError) as e:
        eng.controls_to_z("kick", Controls(), z0=np.zeros(D + 1))
    assert str(e.value) == "z0 has 7 values; this model's latent has 6"


def test_voice_latent_by_hand(fake):
    eng = fake()
    z = eng.voice_z(Voice("kick"))
    assert np.array_equal(z, [1, 2, 3, 4, 5, 6]) and z.dtype == np.float32  # no start given: the centre
    assert np.allclose(eng.voice_z(Voice("kick", seed=7)), prior(7, 0.8)[0], atol=1e-6)  # the model's t
    assert np.allclose(eng.voice_z(Voice("snare", seed=7, temperature=0.5)), prior(7, 0.5)[0], atol=1e-6)
    assert np.array_equal(eng.voice_z(Voice("snare", seed=7, temperature=0.0)), np.zeros(D))
    start = (0.5, -0.5, 1.0, 0.0, 2.0, -2.0)
    assert np.array_equal(eng.voice_z(Voice("hat", z=start, seed=3)), start)  # an explicit z wins over the seed
    moved = eng.voice_z(Voice("kick", seed=7, controls=Controls(x=1.0, range=2.0)))  # controls move the draw
    assert np.allclose(moved, prior(7, 0.8)[0] + 2 * E[0], atol=1e-5)
    varied = eng.voice_z(Voice("kick", z=start, amount=0.3, variation_seed=5))
    assert np.allclose(varied, np.array(start) + 0.3 * np.random.default_rng(5).standard_normal(D), atol=1e-6)
    assert varied.dtype == np.float32
    both = eng.voice_z(Voice("kick", controls=Controls(y=1.0), amount=2.0, variation_seed=1))
    assert np.allclose(both, [1, 5, 3, 4, 5, 6] + 2.0 * np.random.default_rng(1).standard_normal(D), atol=1e-5)
    with pytest.raises(ValueError, match="unknown class 'cowbell'"):
        eng.voice_z(Voice("cowbell"))
    with pytest.raises(ValueError) as e:
        eng.voice_z(Voice("kick", z=(1.0, 2.0)))
    assert str(e.value) == "voice z has 2 values; this model's latent has 6"
    with pytest.raises(ValueError, match="variation_seed"):
        eng.voice_z(Voice("kick", amount=0.5))


def test_prior_draws(fake):
    eng = fake()
    assert eng.prior_temperature() == 0.8 and eng.prior_temperature(0.3) == 0.3
    assert type(eng.prior_temperature(1)) is float
    d = eng.sample_prior(3, 11)
    assert d.shape == (3, D) and d.dtype == np.float32 and np.allclose(d, prior(11, 0.8, 3), atol=1e-6)
    assert np.allclose(eng.sample_prior(2, 11, 2.0), prior(11, 2.0, 2), atol=1e-6)
    assert np.array_equal(eng.sample_prior(2, 1, 0.0), np.zeros((2, D)))
    for bad in (-0.1, float("inf"), float("nan")):
        with pytest.raises(ValueError) as e:
            eng.sample_prior(1, 0, bad)
        assert str(e.value) == f"temperature={bad} must be a finite number ≥ 0"


def class_prior():
    """Hand-made class priors: kick N((0..5), diag(1..6)²), snare N(-(0..5), Σ) with z1 = ε1 + 0.5·ε0, hat N(0, I)."""
    mean = np.stack([np.arange(D), -np.arange(D), np.zeros(D)]).astype(np.float32)
    chol = np.stack([np.diag(np.arange(1.0, D + 1)), np.eye(D), np.eye(D)]).astype(np.float32)
    chol[1][1, 0] = 0.5
    return mean, chol


def test_a_class_prior_draws_around_the_class_mean(fake):
    mean, chol = class_prior()
    eng = fake(prior=(mean.astype(np.float64), chol))
    assert eng.prior[0].dtype == eng.prior[1].dtype == np.float32 and np.array_equal(eng.prior[0], mean)
    eps = np.random.default_rng(5).standard_normal((2, D))  # the same ε as without a class prior
    z = eng.sample_prior(2, 5, 0.5, cls="kick")
    assert z.dtype == np.float32 and np.allclose(z, mean[0] + 0.5 * eps * np.arange(1, D + 1), atol=1e-5)
    want = mean[1] + 0.8 * eps[0]  # the model's temperature
    want[1] += 0.8 * 0.5 * eps[0][0]
    assert np.allclose(eng.sample_prior(1, 5, cls=1)[0], want, atol=1e-5)
    assert np.allclose(eng.sample_prior(1, 5, 0.0, cls="kick")[0], mean[0])  # t = 0: the class mean itself
    assert np.allclose(eng.sample_prior(2, 5, 0.5), 0.5 * eps, atol=1e-6)  # no class: N(0, t²·I)
    with pytest.raises(ValueError, match="unknown class 'banjo'"):
        eng.sample_prior(1, 5, cls="banjo")
    # a voice's seed and generate's seed draw from their class's prior; variations add unit noise
    assert np.allclose(eng.voice_z(Voice("kick", seed=5, temperature=0.5)),
                       mean[0] + 0.5 * eps[0] * np.arange(1, D + 1), atol=1e-5)
    eng.generate("kick", seed=5)
    assert generated(eng)[-1][0] == [0]
    assert np.allclose(generated(eng)[-1][1], mean[0] + 0.8 * eps[:1] * np.arange(1, D + 1), atol=1e-5)
    eng.variations(Encoded(np.ones(D, np.float32), "kick", {}), 1, amount=2.0, seed=5)
    assert np.allclose(generated(eng)[-1][1], 1 + 2.0 * eps[:1], atol=1e-5)


def test_where_the_class_prior_comes_from(fake):
    from types import SimpleNamespace

    mean, chol = class_prior()
    assert fake().prior is None  # none in the info, no bundle: the N(0, t²·I) prior
    FakeBackend.next_bundle = SimpleNamespace(prior_mean=mean, prior_chol=chol)  # a torch backend's bundle
    eng = fake()
    assert np.array_equal(eng.prior[0], mean) and np.array_equal(eng.prior[1], chol)
    FakeBackend.next_bundle = SimpleNamespace(prior_mean=mean, prior_chol=None)  # half a prior is none
    assert fake().prior is None
    FakeBackend.next_bundle = SimpleNamespace(prior_mean=None, prior_chol=chol)
    assert fake().prior is None
    FakeBackend.next_bundle = SimpleNamespace(prior_mean=mean, prior_chol=chol)
    eng = fake(prior=(mean + 1, chol))  # the backend's info (an ONNX export's metadata) comes first
    assert np.array_equal(eng.prior[0], mean + 1)


# ---------------------------------------------------------------- generation

def test_generate_batch_hands_indices_and_latents_to_the_graphs(fake):
    eng = fake()
    z = np.arange(2 * D, dtype=np.float64).reshape(2, D)
    out = eng.generate_batch(["hat", 0], z)
    (kind, cls, zz), = eng.backend.calls
    assert cls.tolist() == [2, 0] and cls.dtype == np.int64 and zz.dtype == np.float32 and np.array_equal(zz, z)
    assert np.array_equal(out, np.stack([fake_wave(2, z[0]), fake_wave(0, z[1])]))
    for bad, msg in [(np.zeros((2, D + 1)), f"z has shape (2, 7); expected (2, {D}) for 2 classes"),
                     (np.zeros((1, D)), f"z has shape (1, 6); expected (2, {D}) for 2 classes"),
                     (np.full((2, D), np.nan), "z holds NaN or infinite values"),
                     (np.full((2, D), np.inf), "z holds NaN or infinite values")]:
        with pytest.raises(ValueError) as e:
            eng.generate_batch(["kick", "kick"], bad)
        assert str(e.value) == msg
    with pytest.raises(ValueError, match="unknown class"):
        eng.generate_batch(["kick", "banjo"], np.zeros((2, D)))
    assert len(eng.backend.calls) == 1  # nothing bad reached the graphs


def test_generate_decodes_z_controls_or_a_prior_draw(fake):
    eng = fake()
    start = np.linspace(0, 1, D)
    w = eng.generate("snare", z=start)
    assert generated(eng)[-1][0] == [1] and np.allclose(generated(eng)[-1][1], start)
    assert w.shape == (N,) and np.array_equal(w, fake_wave(1, start.astype(np.float32)))
    eng.generate("kick", z=start, controls=Controls(x=1.0))  # controls move from the given z
    assert np.allclose(generated(eng)[-1][1], start + 2 * E[0], atol=1e-6)
    eng.generate("kick", controls=Controls(x=1.0))  # controls alone: from the class centre
    assert np.allclose(generated(eng)[-1][1], [3, 2, 3, 4, 5, 6], atol=1e-6)
    eng.generate("hat", seed=4)  # neither: a prior draw at the model's temperature
    assert generated(eng)[-1][0] == [2] and np.allclose(generated(eng)[-1][1], prior(4, 0.8), atol=1e-6)
    with pytest.raises(ValueError) as e:
        eng.generate("kick", z=np.zeros(3))
    assert str(e.value) == "z has 3 values; this model's latent has 6"
    with pytest.raises(ValueError) as e:
        eng.generate("kick", z=np.full(D, np.nan))
    assert str(e.value) == "z holds NaN or infinite values"


def test_render_is_one_batch_of_the_voices_latents(fake):
    eng = fake()
    assert eng.render([]) == [] and eng.backend.calls == []
    a, b = Voice("kick", seed=1), Voice("hat", controls=Controls(x=0.5))
    tuned = Voice("snare", seed=2, sampler=SamplerControls(tune=-5.0, velocity=64.0))
    waves = eng.render(iter([a, b, tuned, a]))  # any iterable
    (cls, z), = generated(eng)  # one batch
    assert cls == [0, 2, 1, 0]
    for row, v in zip(z, [a, b, tuned, a]):
        assert np.array_equal(row, eng.voice_z(v))
    assert np.array_equal(waves[0], fake_wave(0, z[0])) and np.array_equal(waves[0], waves[3])
    assert np.array_equal(waves[1], fake_wave(2, z[1]))
    assert np.allclose(waves[2], apply_sampler(fake_wave(1, z[2]), SR, tuned.sampler), atol=1e-7)
    assert not np.allclose(waves[2], fake_wave(1, z[2]), atol=1e-3)
    cut = eng.render([Voice("kick", sampler=SamplerControls(length=0.1))])[0]
    assert cut.shape == (800,)  # the sampler's length: 0.1 s at 8 kHz


# ---------------------------------------------------------------- analysis

def test_encode_classify_and_resynth_hand_over_the_backend_results(fake):
    eng = fake()
    x = fake_wave(0, np.zeros(D))
    e = eng.encode(x)  # no class: the listener's choice (-1)
    (kind, wave, cls), = eng.backend.calls
    assert cls.tolist() == [-1] and cls.dtype == np.int64
    assert np.array_equal(wave, prepare_clip(x, N, SR)[0][None])
    assert e.cls == "snare" and e.probs == pytest.approx({"kick": 0.2, "snare": 0.5, "hat": 0.3})
    assert e.z.dtype == np.float32 and np.allclose(e.z, np.linspace(-1, 1, D))
    e = eng.encode(x, cls="hat")
    assert eng.backend.calls[-1][2].tolist() == [2] and e.cls == "hat" and e.probs["snare"] == pytest.approx(0.5)
    p = eng.classify(x)
    assert p == pytest.approx({"kick": 0.2, "snare": 0.5, "hat": 0.3}) and eng.backend.calls[-1][2].tolist() == [-1]
    assert all(type(v) is float for v in p.values())
    eng.classify(x, sample_rate=16000)  # the rate is passed on: the clip is resampled first
    assert np.allclose(eng.backend.calls[-1][1], expected_clip(x, 16000), atol=1e-6)
    out = eng.resynth(x, cls=1)
    assert eng.backend.calls[-2][0] == "analyse" and eng.backend.calls[-2][2].tolist() == [1]
    assert generated(eng)[-1][0] == [1] and np.allclose(generated(eng)[-1][1], np.linspace(-1, 1, D))
    assert np.array_equal(out, fake_wave(1, np.linspace(-1, 1, D).astype(np.float32)))


def test_without_a_listener_the_class_must_be_given(fake):
    eng = fake(has_classifier=False)
    x = fake_wave(0, np.zeros(D))
    for call in (lambda: eng.classify(x), lambda: eng.encode(x), lambda: eng.resynth(x)):
        with pytest.raises(ValueError) as e:
            call()
        assert str(e.value) == "this model has no classifier; pass the class explicitly"
    assert eng.backend.calls == []
    e = eng.encode(x, cls="kick")
    assert e.cls == "kick" and e.probs == {} and eng.backend.calls[-1][2].tolist() == [0]


def clip_seen(eng, audio, **kw):
    eng.encode(audio, cls="kick", **kw)
    return eng.backend.calls[-1][1]


def expected_clip(mono, rate=SR):
    x = np.asarray(mono, np.float32)
    if rate != SR:
        x = resample(x, rate, SR)
    return prepare_clip(x, N, SR)[0][None]


def test_audio_of_any_layout_and_format_becomes_the_same_clip(fake):
    eng = fake()
    t = np.arange(3000) / SR
    x = (0.6 * np.sin(2 * np.pi * 330 * t) * np.exp(-t * 8)).astype(np.float32)
    assert np.array_equal(clip_seen(eng, x), expected_clip(x))
    assert np.array_equal(clip_seen(eng, x.astype(np.float64)), expected_clip(x))
    # channels are averaged, whether first or last, up to 8 of them
    chans = np.stack([x, 0.5 * x, -0.2 * x, x, x, x, x, 0.1 * x])
    assert np.allclose(clip_seen(eng, chans[:2]), expected_clip(0.75 * x), atol=1e-6)
    assert np.allclose(clip_seen(eng, chans[:2].T), expected_clip(0.75 * x), atol=1e-6)
    assert np.allclose(clip_seen(eng, chans), expected_clip(chans.mean(axis=0)), atol=1e-6)
    assert np.allclose(clip_seen(eng, chans.T), expected_clip(chans.mean(axis=0)), atol=1e-6)
    for bad in (np.stack([x] * 9), np.stack([x] * 9).T, np.zeros((2, 3, 400))):
        with pytest.raises(ValueError) as e:
            eng.encode(bad, cls="kick")
        assert str(e.value).startswith(f"audio has shape {bad.shape}: give (N,) mono")
    # integers are scaled from their full range; unsigned ones are centred first
    q = np.round(x * 30000).astype(np.int16)
    assert np.allclose(clip_seen(eng, q), expected_clip(q / 32768.0), atol=1e-6)
    q8 = np.round(x * 100).astype(np.int8)
    assert np.allclose(clip_seen(eng, q8), expected_clip(q8 / 128.0), atol=1e-6)
    q32 = np.round(x.astype(np.float64) * 2e9).astype(np.int32)
    assert np.allclose(clip_seen(eng, q32), expected_clip(q32 / 2 ** 31), atol=1e-6)
    u8 = np.round(x * 100 + 128).astype(np.uint8)
    assert np.allclose(clip_seen(eng, u8), expected_clip((u8 - 128.0) / 128.0), atol=1e-6)
    u16 = np.round(x * 20000 + 32768).astype(np.uint16)
    assert np.allclose(clip_seen(eng, u16), expected_clip((u16 - 32768.0) / 32768.0), atol=1e-6)
    for bad, kind in [(x > 0, "bool"), (np.array(["a", "b"]), "<U1"), (x.astype(np.complex64), "complex64")]:
        with pytest.raises(ValueError) as e:
            eng.encode(bad, cls="kick")
        assert str(e.value) == f"audio must be numbers (a float or integer array) or a file path, not {kind}"


def test_sample_rates_are_resampled_within_their_range(fake):
    eng = fake()
    t = np.arange(4000) / 16000
    x = (0.5 * np.sin(2 * np.pi * 440 * t) * np.exp(-t * 10)).astype(np.float32)
    assert np.allclose(clip_seen(eng, x, sample_rate=16000), expected_clip(x, 16000), atol=1e-6)
    assert not np.allclose(clip_seen(eng, x, sample_rate=16000), expected_clip(x), atol=1e-3)
    assert np.array_equal(clip_seen(eng, x, sample_rate=np.int32(SR)), expected_clip(x))
    assert np.array_equal(clip_seen(eng, x, sample_rate=None), expected_clip(x))  # None: the model's own
    assert np.allclose(clip_seen(eng, x, sample_rate=1000), expected_clip(x, 1000), atol=1e-6)
    assert clip_seen(eng, x, sample_rate=768000).shape == (1, N)
    for bad in (999, 768001, 0, True, 16000.0, "16000"):
        with pytest.raises(ValueError) as e:
            eng.encode(x, sample_rate=bad, cls="kick")
        assert str(e.value) == f"sample_rate={bad!r} must be a whole number of Hz from 1000 to 768000"
    with pytest.raises(ValueError, match="silent"):  # checked before resampling
        eng.encode(np.zeros(4000, np.float32), sample_rate=16000, cls="kick")


def test_at_most_sixty_seconds_are_taken(fake):
    eng = fake()
    x = np.zeros(60 * 1000, np.float32)
    x[100:300] = np.hanning(200)
    assert clip_seen(eng, x, sample_rate=1000).shape == (1, N)  # exactly 60 s: taken
    with pytest.raises(ValueError) as e:
        eng.encode(np.append(x, 0.0), sample_rate=1000, cls="kick")
    assert str(e.value) == "audio is 60.0 s long at 1000 Hz; the engine takes at most 60 s"
    with pytest.raises(ValueError, match="at most 60 s"):
        eng.encode(np.zeros(60 * SR + 1, np.float32), cls="kick")


def test_a_file_is_read_at_the_models_rate(fake, tmp_path):
    eng = fake()
    t = np.arange(6000) / 16000
    x = (0.5 * np.sin(2 * np.pi * 300 * t) * np.exp(-t * 9)).astype(np.float32)
    sf.write(str(tmp_path / "a.wav"), x, 16000, subtype="FLOAT")
    clip = clip_seen(eng, str(tmp_path / "a.wav"))
    assert clip.shape == (1, N) and np.allclose(clip, expected_clip(x, 16000), atol=2e-3)
    assert np.array_equal(clip_seen(eng, tmp_path / "a.wav"), clip)  # a Path too
    sf.write(str(tmp_path / "long.wav"), np.full(61 * 1000, 0.1, np.float32), 1000)
    with pytest.raises(ValueError, match=r"long\.wav: too long \(61\.0 s > 60 s\)"):
        eng.encode(str(tmp_path / "long.wav"), cls="kick")


# ---------------------------------------------------------------- variations and morphs

def test_variations_add_scaled_unit_noise_to_the_source(fake):
    eng = fake()
    src = Encoded(np.arange(D, dtype=np.float32), "snare", {})
    out = eng.variations(src, 3, amount=0.4, seed=9)
    (cls, z), = generated(eng)
    assert cls == [1, 1, 1] and out.shape == (3, N)
    # unit noise (not the model's temperature 0.8), scaled by amount
    assert np.allclose(z, np.arange(D) + 0.4 * np.random.default_rng(9).standard_normal((3, D)), atol=1e-6)
    eng.variations(src, np.int64(2), amount=0.0, cls="hat")
    assert generated(eng)[-1][0] == [2, 2] and np.allclose(generated(eng)[-1][1], np.arange(D))
    x = fake_wave(0, np.zeros(D))
    eng.variations(x, 1, amount=1.0, seed=2, cls="kick")  # audio: encoded first, with the class given
    assert eng.backend.calls[-2][0] == "analyse" and eng.backend.calls[-2][2].tolist() == [0]
    assert generated(eng)[-1][0] == [0]
    assert np.allclose(generated(eng)[-1][1], np.linspace(-1, 1, D) + np.random.default_rng(2).standard_normal(D),
                       atol=1e-6)
    eng.variations(x, 1)  # the listener's class (snare)
    assert generated(eng)[-1][0] == [1]
    eng.variations(x, 1, sample_rate=16000)  # the audio's rate is passed on: resampled first
    assert np.allclose(eng.backend.calls[-2][1], expected_clip(x, 16000), atol=1e-6)
    n_calls = len(eng.backend.calls)
    for n in (0, -1, True, 1.0):
        with pytest.raises(ValueError) as e:
            eng.variations(src, n)
        assert str(e.value) == f"n={n!r}: ask for at least one variation"
    for amount in (-0.1, float("inf"), float("nan")):
        with pytest.raises(ValueError) as e:
            eng.variations(src, 1, amount=amount)
        assert str(e.value) == f"amount={amount} must be a finite number ≥ 0"
    assert len(eng.backend.calls) == n_calls


def test_morph_interpolates_the_latents_and_mixes_across_classes(fake):
    eng = fake()
    a = Encoded(np.zeros(D, np.float32), "kick", {})
    b = Encoded(np.full(D, 4.0, np.float32), "kick", {})
    out = eng.morph(a, b, 5)  # one class: plain decoding of the interpolated latents
    (cls, z), = generated(eng)
    assert cls == [0] * 5 and out.shape == (5, N)
    assert np.allclose(z, np.outer([0, 1, 2, 3, 4], np.ones(D)), atol=1e-6) and z.dtype == np.float32
    c = Encoded(np.full(D, -2.0), "hat", {})
    out = eng.morph(b, c, 3)  # two classes: the backend mixes
    kind, ca, cb, t, z = eng.backend.calls[-1]
    assert kind == "mix" and ca.tolist() == [0, 0, 0] and cb.tolist() == [2, 2, 2]
    assert ca.dtype == cb.dtype == np.int64
    assert np.allclose(t, [0, 0.5, 1]) and t.shape == (3,)
    assert np.allclose(z, np.outer([4, 1, -2], np.ones(D)), atol=1e-6) and z.dtype == np.float32
    assert np.array_equal(out, np.zeros((3, N)))
    eng.morph(a, b, 2)
    assert np.allclose(generated(eng)[-1][1], [np.zeros(D), np.full(D, 4.0)])
    for steps in (1, 0):
        with pytest.raises(ValueError) as e:
            eng.morph(a, b, steps)
        assert str(e.value) == f"steps={steps}: a morph needs at least 2 steps"
    with pytest.raises(ValueError, match="unknown class"):
        eng.morph(a, Encoded(np.zeros(D), "banjo", {}), 3)


# ---------------------------------------------------------------- playing_engine: which backend, and the cache

class Made:
    """Stands in for Engine in playing_engine: records how it was built. An ONNX one reads the checksum the
    (fake) export recorded in its folder, and refuses a folder whose graph is damaged, as OnnxBackend would."""

    def __init__(self, model=None, threads=None, backend="torch"):
        self.model, self.threads, self.backend = model, threads, backend
        self.model_sha256 = self.model_configs_sha256 = None
        if backend == "onnx" and model is not None and (Path(model) / "sha256").is_file():
            if (Path(model) / "generator.onnx").read_bytes() != b"graph":
                raise ValueError(f"{model}/generator.onnx: not a loadable ONNX model")
            self.model_sha256 = (Path(model) / "sha256").read_text()
            self.model_configs_sha256 = (Path(model) / "configs_sha256").read_text()


@pytest.fixture
def playing(monkeypatch):
    """playing_engine with a recording Engine, a recording exporter and onnxruntime & co. present (or not)."""
    import neuraldrum.export.models as export_models

    monkeypatch.setattr(engine_module, "Engine", Made)
    state = {"missing": set(), "exports": []}
    real_find_spec = importlib.util.find_spec

    def find_spec(name, *a, **k):
        return None if name in state["missing"] else real_find_spec(name, *a, **k)

    def export(model, fmt, folder):
        state["exports"].append((model, fmt, folder))
        warnings.warn("exporter noise", UserWarning, stacklevel=2)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "generator.onnx").write_bytes(b"graph")
        meta = json.loads(((Path(model) if model is not None else DEFAULT_BUNDLE) / "bundle.json").read_text())
        (folder / "sha256").write_text(meta["weights"]["sha256"])
        (folder / "configs_sha256").write_text(configs_sha256(meta))

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    monkeypatch.setattr(export_models, "export", export)
    lg = logging.getLogger("torch.onnx")
    level = lg.level
    yield state
    lg.setLevel(level)


@pytest.fixture
def model_dir(tmp_path):
    """A bundle folder as far as playing_engine reads one (its bundle.json: the weights' checksum)."""
    meta = json.loads((DEFAULT_BUNDLE / "bundle.json").read_text())
    meta["weights"]["sha256"] = "0123456789abcdef" * 4
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "bundle.json").write_text(json.dumps(meta))
    return tmp_path / "model"


def sha_of(bundle):
    return json.loads((Path(bundle) / "bundle.json").read_text())["weights"]["sha256"]


def cached(root, sha):
    """The cache folder of a model: its checksum's first 16 digits, the package version, the graphs' revision."""
    return Path(root) / f"onnx-{sha[:16]}-{neuraldrum.__version__}-r{neuraldrum.GRAPHS_REVISION}"


def test_playing_engine_picks_torch_for_a_bundle_and_onnx_for_an_export_folder(playing, tmp_path):
    e = playing_engine("some/bundle", threads=3)  # auto: torch for a bundle, with no export
    assert (e.model, e.threads, e.backend) == ("some/bundle", 3, "torch") and playing["exports"] == []
    for backend in ("auto", "onnx"):  # the packaged default: its graphs shipped beside its bundle, no export
        e = playing_engine(None, backend=backend)
        assert (e.model, e.backend) == (DEFAULT_EXPORT, "onnx") and playing["exports"] == []
    e = playing_engine(None, backend="torch")
    assert (e.model, e.backend) == (None, "torch")
    e = playing_engine("some/bundle", threads=3, backend="torch")
    assert (e.model, e.threads, e.backend) == ("some/bundle", 3, "torch")
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "generator.onnx").write_bytes(b"graph")
    for backend in ("auto", "onnx"):  # an export folder is used as it is
        e = playing_engine(folder, threads=4, backend=backend)
        assert (e.model, e.threads, e.backend) == (folder, 4, "onnx") and playing["exports"] == []
    with pytest.raises(ValueError, match="backend='gpu'"):
        playing_engine(folder, backend="gpu")


@pytest.mark.parametrize("missing", ["onnxruntime", "onnx", "onnxscript"])
def test_playing_engine_names_what_onnx_needs(playing, model_dir, missing):
    playing["missing"] = {missing}
    with pytest.raises(ValueError, match=f"backend='onnx' needs {missing} to export"):
        playing_engine(model_dir, threads=2, backend="onnx")
    e = playing_engine(model_dir, threads=2)  # auto needs none of them
    assert (e.model, e.threads, e.backend) == (model_dir, 2, "torch") and playing["exports"] == []


def test_playing_engine_exports_once_per_model_into_the_cache(playing, model_dir, tmp_path):
    said = []
    folder = cached(tmp_path / "cache", sha_of(model_dir))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        e = playing_engine(model_dir, threads=2, cache=tmp_path / "cache", say=said.append, backend="onnx")
    assert not caught  # the exporter's warnings are kept quiet
    assert logging.getLogger("torch.onnx").level == logging.ERROR
    assert playing["exports"] == [(model_dir, "onnx", folder)]
    assert (e.model, e.threads, e.backend) == (folder, 2, "onnx")
    assert said == [f"preparing the ONNX engine for this model, once (≈ 20 s) → {folder}"]
    e = playing_engine(model_dir, threads=3, cache=str(tmp_path / "cache"), say=said.append,
                       backend="onnx")  # reused
    assert len(playing["exports"]) == 1 and len(said) == 1
    assert (e.model, e.threads, e.backend, e.model_sha256) == (folder, 3, "onnx", sha_of(model_dir))
    # another model (other weights, so another checksum): exported again, beside the first
    other = tmp_path / "other"
    other.mkdir()
    meta = json.loads((model_dir / "bundle.json").read_text())
    meta["weights"]["sha256"] = "f" * 64
    (other / "bundle.json").write_text(json.dumps(meta))
    e = playing_engine(other, cache=tmp_path / "cache", say=said.append, backend="onnx")
    folder2 = cached(tmp_path / "cache", "f" * 64)
    assert playing["exports"][-1] == (other, "onnx", folder2) and e.model == folder2 and len(said) == 2


def test_playing_engine_rebuilds_a_cache_entry_of_another_model_or_a_damaged_one(playing, model_dir, tmp_path):
    said = []
    sha = sha_of(model_dir)
    twin = tmp_path / "twin"  # weights whose checksum starts like model_dir's: the same cache folder
    twin.mkdir()
    meta = json.loads((model_dir / "bundle.json").read_text())
    meta["weights"]["sha256"] = sha[:16] + "0" * 48
    (twin / "bundle.json").write_text(json.dumps(meta))
    folder = cached(tmp_path, sha)
    playing_engine(model_dir, cache=tmp_path, say=said.append, backend="onnx")
    e = playing_engine(twin, threads=2, cache=tmp_path, say=said.append, backend="onnx")
    assert playing["exports"][-1] == (twin, "onnx", folder) and len(playing["exports"]) == 2
    assert said[1] == f"the cached ONNX engine in {folder} is for another model: exporting again"
    assert (e.model, e.threads, e.model_sha256) == (folder, 2, sha[:16] + "0" * 48)
    # the folder holds model_dir's export again
    playing_engine(model_dir, cache=tmp_path, say=said.append, backend="onnx")
    alike = tmp_path / "alike"  # model_dir's weights under other configs (as mel_match makes): exported again
    alike.mkdir()
    meta["weights"]["sha256"] = sha
    meta["configs"]["audio"]["fade_ms"] = meta["configs"]["audio"]["fade_ms"] + 1.0
    (alike / "bundle.json").write_text(json.dumps(meta))
    e = playing_engine(alike, cache=tmp_path, say=said.append, backend="onnx")
    assert playing["exports"][-1] == (alike, "onnx", folder) and said[-1].startswith("preparing")
    assert said[-2] == f"the cached ONNX engine in {folder} is for another model: exporting again"
    playing_engine(alike, cache=tmp_path, say=said.append, backend="onnx")  # and then it is found
    assert len(playing["exports"]) == 4
    e = playing_engine(twin, cache=tmp_path, say=said.append, backend="onnx")
    (folder / "generator.onnx").write_bytes(b"garbage")  # a damaged entry is rebuilt, not trusted
    said.clear()
    e = playing_engine(twin, cache=tmp_path, say=said.append, backend="onnx")
    assert len(playing["exports"]) == 6 and e.model_sha256 == sha[:16] + "0" * 48
    assert said[0] == (f"the cached ONNX engine in {folder} cannot be used ({folder}/generator.onnx: not a loadable "
                       "ONNX model): exporting again")
    assert said[1].startswith("preparing the ONNX engine")


def test_playing_engine_cache_follows_the_environment_then_home(playing, model_dir, tmp_path, monkeypatch):
    sha = sha_of(model_dir)
    monkeypatch.setenv("NEURALDRUM_CACHE", str(tmp_path / "env"))
    e = playing_engine(model_dir, say=lambda m: None, backend="onnx")
    assert e.model == cached(tmp_path / "env", sha) and playing["exports"][-1][0] == model_dir
    # an explicit cache wins over the variable
    e = playing_engine(model_dir, cache=tmp_path / "arg", say=lambda m: None, backend="onnx")
    assert e.model == cached(tmp_path / "arg", sha)
    monkeypatch.delenv("NEURALDRUM_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    e = playing_engine(model_dir, say=lambda m: None, backend="onnx")
    assert e.model == cached(tmp_path / "home" / ".cache" / "neuraldrum", sha) and len(playing["exports"]) == 3


def test_say_writes_one_line_to_stderr(capsys):
    engine_module._say("hello")
    out = capsys.readouterr()
    assert out.err == "neuraldrum: hello\n" and out.out == ""


# ---------------------------------------------------------------- the tiny random model

def test_render_equals_generate_for_the_same_voice(engine):
    voices = [Voice("kick", seed=1), Voice("snare", controls=Controls(x=0.3, y=-0.2)), Voice("tom", seed=2),
              Voice("clap", seed=3, sampler=SamplerControls(decay=0.2))]
    waves = engine.render(voices)
    for v, w in zip(voices, waves):
        one = engine.generate(v.cls, z=engine.voice_z(v))
        if not v.sampler.is_identity():
            one = apply_sampler(one, engine.sample_rate, v.sampler)
        assert w.shape == one.shape == (engine.n_samples,) and np.allclose(w, one, atol=1e-5)
    assert not np.allclose(waves[0], waves[2], atol=1e-3)


def test_classify_is_the_listeners_softmax(engine):
    import torch

    from neuraldrum.data.synth import synth

    for cls, seed in (("snare", 1), ("hh_closed", 2)):
        x = synth(cls, seed=seed)
        p = engine.classify(x)
        with torch.inference_mode():
            clip = torch.from_numpy(prepare_clip(x.astype(np.float32), engine.n_samples, engine.sample_rate)[0][None])
            ref = torch.softmax(engine.bundle.classifier(engine.frontend(clip)), dim=1)[0].numpy()
        assert list(p) == engine.classes and np.allclose(list(p.values()), ref, atol=1e-5)
        assert engine.encode(x).cls == engine.classes[int(np.argmax(ref))]


def test_hifi_maker_lends_a_torch_engines_bundle(engine, tmp_path):
    """The hi-fi engine of a live front end shares the playing torch engine's loaded bundle (no second load); an
    ONNX export folder has none."""
    from neuraldrum.engine import hifi_maker

    hi = hifi_maker(None, like=engine)()
    assert hi.hifi == HIFI_ITERS and hi.bundle is engine.bundle and hi.generator is not engine.generator
    (tmp_path / "export.json").write_text("{}")
    assert hifi_maker(tmp_path) is None
