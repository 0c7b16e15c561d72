"""The class-conditional prior: fit, bundle storage and validation, sampling, and torch/ONNX agreement."""
import json
import shutil

import numpy as np
import pytest
import torch
from helpers_corpus import write_corpus
from safetensors.torch import load_file, save_file

from neuraldrum import cli
from neuraldrum.bundle import BundleError, _sha256, load_bundle, save_bundle, write_with_prior
from neuraldrum.data.corpus import load_corpus
from neuraldrum.engine import Engine
from neuraldrum.taxonomy import CLASSES
from neuraldrum.voice import Voice


def _random_prior(C, D, seed=0):
    """A valid class prior with well-conditioned random covariances: (mean, chol, cov) float32/float64."""
    rng = np.random.default_rng(seed)
    mean = rng.normal(0, 2, (C, D)).astype(np.float32)
    a = rng.normal(0, 1, (C, D, D))
    cov = a @ a.transpose(0, 2, 1) / D + 0.1 * np.eye(D)
    chol = np.tril(np.linalg.cholesky(cov)).astype(np.float32)
    cov32 = chol.astype(np.float64) @ chol.astype(np.float64).transpose(0, 2, 1)  # what the stored factor means
    return mean, chol, cov32


@pytest.fixture(scope="module")
def prior_bundle(bundle_dir, tmp_path_factory):
    b = load_bundle(bundle_dir)
    mean, chol, cov = _random_prior(len(b.classes), b.wae.cfg.latent_dim)
    out = write_with_prior(bundle_dir, tmp_path_factory.mktemp("prior") / "bundle", mean, chol, {"note": "test"})
    return out, mean, chol, cov


@pytest.fixture(scope="module")
def prior_engine(prior_bundle):
    return Engine(prior_bundle[0], warm=False, device="cpu")


# ---------------------------------------------------------------- fitting

def test_fit_matches_numpy_mean_and_cov_of_independent_encodings(bundle_dir, tmp_path, capsys):
    # every class but the last has 4 train clips; the last has none and keeps N(0, I)
    corpus_dir = write_corpus(tmp_path / "corpus", classes=CLASSES[:-1], per_class=5, val_per_class=1)
    out = tmp_path / "with_prior"
    # the random bundle records no corpus: refused without --force
    assert cli.main(["bundle-prior", "--model", str(bundle_dir), "--data", str(corpus_dir), "--out", str(out)]) != 0
    assert "--force" in capsys.readouterr().err and not out.exists()
    assert cli.main(["bundle-prior", "--model", str(bundle_dir), "--data", str(corpus_dir), "--out", str(out),
                     "--force", "--no-metrics"]) == 0
    b = load_bundle(out)
    fit = b.meta["prior"]["fit"]
    assert b.meta["prior"]["kind"] == "class_gaussian"
    assert fit["split"] == "train" and fit["ridge"] == 1e-4 and fit["fallback"] == [CLASSES[-1]]
    assert fit["clips_per_class"] == {**{c: 4 for c in CLASSES[:-1]}, CLASSES[-1]: 0}
    assert "bundle-prior" in fit["command"] and fit["corpus"]["matches_bundle_corpus"] is False
    src = load_bundle(bundle_dir)
    assert fit["source_sha256"] == src.meta["weights"]["sha256"] != b.meta["weights"]["sha256"]

    # encodings computed here from the bundle's own modules, not through the fitting code
    corpus = load_corpus(corpus_dir)
    idx = corpus.indices("train")
    x = torch.as_tensor(np.asarray(corpus.audio[idx], np.float32))
    y = corpus.labels(idx)
    from neuraldrum.audio.mel import MelFrontend

    with torch.inference_mode():
        z = src.wae.encode(src.standardiser(MelFrontend(src.mel)(x)), torch.as_tensor(y)).numpy().astype(np.float64)
    D = z.shape[1]
    for ci in range(len(CLASSES)):
        zc = z[y == ci]
        if len(zc) < 2:
            np.testing.assert_array_equal(b.prior_mean[ci], 0)
            np.testing.assert_array_equal(b.prior_chol[ci], np.eye(D, dtype=np.float32))
            continue
        np.testing.assert_allclose(b.prior_mean[ci], zc.mean(0), rtol=1e-4, atol=1e-4)
        L = b.prior_chol[ci].astype(np.float64)
        np.testing.assert_allclose(L @ L.T, np.cov(zc.T) + 1e-4 * np.eye(D), rtol=1e-3, atol=1e-4)
    # everything else is the source bundle's
    a, c = load_file(str(bundle_dir / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert set(c) == set(a) | {"prior.mean", "prior.chol"}
    assert all(torch.equal(a[k], c[k]) for k in a)
    assert {k: v for k, v in b.meta.items() if k not in ("weights", "prior")} == \
        {k: v for k, v in src.meta.items() if k != "weights"}


def test_refuses_a_corpus_that_differs_from_the_recorded_one(prior_bundle, tmp_path, capsys):
    folder = tmp_path / "b"
    shutil.copytree(prior_bundle[0], folder)
    meta = json.loads((folder / "bundle.json").read_text())
    meta["corpus"] = {"counts": {c: {"train": 1, "val": 0, "test": 0} for c in CLASSES}}
    (folder / "bundle.json").write_text(json.dumps(meta))
    corpus_dir = write_corpus(tmp_path / "corpus", per_class=3, val_per_class=1)
    assert cli.main(["bundle-prior", "--model", str(folder), "--data", str(corpus_dir), "--out",
                     str(tmp_path / "o")]) != 0
    assert "differ from the corpus recorded" in capsys.readouterr().err and not (tmp_path / "o").exists()


# ---------------------------------------------------------------- sampling

def test_class_prior_samples_have_the_fitted_mean_and_covariance(prior_bundle, prior_engine):
    _, mean, chol, cov = prior_bundle
    n = 40000
    for ci in (0, 5, len(CLASSES) - 1):
        for t in (1.0, 0.5):
            z = prior_engine.sample_prior(n, 7 + ci, temperature=t, cls=CLASSES[ci]).astype(np.float64)
            sd = t * np.sqrt(np.diag(cov[ci]))
            assert np.all(np.abs(z.mean(0) - mean[ci]) < 5 * sd / np.sqrt(n))
            err = np.abs(np.cov(z.T) - t * t * cov[ci])
            assert err.max() < 0.05 * t * t * np.abs(cov[ci]).max()


def test_class_prior_draw_is_mean_plus_t_eps_chol_and_reaches_every_call_site(prior_bundle, prior_engine):
    _, mean, chol, _ = prior_bundle
    t = prior_engine.temperature
    eps = np.random.default_rng(11).standard_normal((3, mean.shape[1]))
    want = (mean[2] + t * eps @ chol[2].astype(np.float64).T).astype(np.float32)
    np.testing.assert_allclose(prior_engine.sample_prior(3, 11, cls="clap"), want, rtol=0, atol=1e-6)
    np.testing.assert_allclose(prior_engine.sample_prior(3, 11, cls=2), want, rtol=0, atol=1e-6)
    # without a class: N(0, t²I) as before
    np.testing.assert_array_equal(prior_engine.sample_prior(3, 11), (t * eps).astype(np.float32))
    # voices and generate() draw from the class prior
    np.testing.assert_allclose(prior_engine.voice_z(Voice("clap", seed=11)), want[0], rtol=0, atol=1e-6)
    wave = prior_engine.generate("clap", seed=11)
    np.testing.assert_array_equal(wave, prior_engine.generate_batch(["clap"], want[:1])[0])


def test_bundles_without_a_prior_sample_exactly_as_before(bundle_dir):
    eng = Engine(bundle_dir, warm=False, device="cpu")
    assert eng.prior is None and load_bundle(bundle_dir).prior_mean is None
    t = eng.temperature
    for cls in (None, "kick", "shaker"):
        want = (t * np.random.default_rng(5).standard_normal((4, eng.latent_dim))).astype(np.float32)
        np.testing.assert_array_equal(eng.sample_prior(4, 5, cls=cls), want)
    want = (t * np.random.default_rng(5).standard_normal((1, eng.latent_dim))).astype(np.float32)[0]
    np.testing.assert_array_equal(eng.voice_z(Voice("cowbell", seed=5)), want)


# ---------------------------------------------------------------- bundle storage and validation

def test_round_trip_through_save_bundle(prior_bundle, tmp_path):
    folder, mean, chol, _ = prior_bundle
    b = load_bundle(folder)
    np.testing.assert_array_equal(b.prior_mean, mean)
    np.testing.assert_array_equal(b.prior_chol, chol)
    assert b.prior_mean.dtype == b.prior_chol.dtype == np.float32
    out = save_bundle(tmp_path / "b", audio=b.audio, mel=b.mel, wae=b.wae, mcnn=b.mcnn, standardiser=b.standardiser,
                      classes=b.classes, pca=b.pca, classifier=b.classifier, prior=(mean, chol, {"how": "test"}))
    b2 = load_bundle(out)
    np.testing.assert_array_equal(b2.prior_mean, mean)
    np.testing.assert_array_equal(b2.prior_chol, chol)
    assert b2.meta["prior"] == {"kind": "class_gaussian", "fit": {"how": "test"}}
    assert b2.meta["weights"]["n_tensors"] == len(load_file(str(out / "model.safetensors")))
    with pytest.raises(ValueError, match="lower-triangular"):
        save_bundle(tmp_path / "c", audio=b.audio, mel=b.mel, wae=b.wae, mcnn=b.mcnn, standardiser=b.standardiser,
                    classes=b.classes, pca=b.pca, prior=(mean, chol.transpose(0, 2, 1).copy(), {}))
    assert not (tmp_path / "c").exists()


def _altered(src, dst, tensors=None, meta=None):
    """A copy of bundle ``src`` whose weights / bundle.json are changed by the given functions, checksum updated."""
    shutil.copytree(src, dst)
    t = load_file(str(dst / "model.safetensors"))
    if tensors:
        tensors(t)
        save_file(t, str(dst / "model.safetensors"))
    m = json.loads((dst / "bundle.json").read_text())
    if meta:
        meta(m)
    m["weights"]["sha256"] = _sha256(dst / "model.safetensors")
    (dst / "bundle.json").write_text(json.dumps(m))
    return dst


def _set(name, fn):
    def f(t):
        t[name] = fn(t[name])
    return f


def _upper(c):
    c = c.clone()
    c[0, 0, 1] = 0.5
    return c


def _neg_diag(c):
    c = c.clone()
    c[1, 2, 2] = -1.0
    return c


def _nan(m):
    m = m.clone()
    m[0, 0] = float("nan")
    return m


@pytest.mark.parametrize("tensors, meta, match", [
    (_set("prior.mean", lambda m: m[:-1].contiguous()), None, r"prior\.mean: .*\(11, 8\)"),
    (_set("prior.mean", lambda m: m.double()), None, "float32"),
    (_set("prior.chol", lambda c: c[:, :, :-1].contiguous()), None, r"prior\.chol: .*\(11, 8, 8\)"),
    (_set("prior.chol", _upper), None, "prior.chol: not lower-triangular"),
    (_set("prior.chol", _neg_diag), None, "prior.chol: a diagonal value is not positive"),
    (_set("prior.mean", _nan), None, "prior.mean: holds NaN"),
    (lambda t: t.pop("prior.chol"), None, "lack prior.chol"),
    (lambda t: [t.pop(k) for k in ("prior.mean", "prior.chol")], None, "lack prior.mean, prior.chol"),
    (None, lambda m: m.pop("prior"), "bundle.json has no prior record"),
    (None, lambda m: m.update(prior={"kind": "gaussian_mixture", "fit": {}}), "prior"),
    (None, lambda m: m.update(prior=[1, 2]), "prior"),
])
def test_invalid_priors_are_refused_naming_the_field(prior_bundle, tmp_path, tensors, meta, match):
    bad = _altered(prior_bundle[0], tmp_path / "bad", tensors, meta)
    with pytest.raises(BundleError, match=match):
        load_bundle(bad)


def test_write_with_prior_refuses_wrong_shapes(bundle_dir, tmp_path):
    mean, chol, _ = _random_prior(len(CLASSES), 8)
    with pytest.raises(ValueError, match="prior.mean"):
        write_with_prior(bundle_dir, tmp_path / "o", mean[:, :4].copy(), chol, {})
    with pytest.raises(ValueError, match="prior.chol"):
        write_with_prior(bundle_dir, tmp_path / "o", mean, chol.astype(np.float64), {})
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------- exports

def test_onnx_engine_draws_the_same_class_prior_as_torch(prior_bundle, prior_engine, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    import logging
    import warnings

    from neuraldrum.export.models import export

    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        meta = export(prior_bundle[0], "onnx", tmp_path / "onnx", check=False)
    assert meta["prior"]["kind"] == "class_gaussian"
    np.testing.assert_array_equal(np.asarray(meta["prior"]["chol"], np.float32), prior_bundle[2])
    onnx = Engine(tmp_path / "onnx", backend="onnx", warm=False)
    assert onnx.model_sha256 == prior_engine.model_sha256
    for cls in ("kick", "cowbell", 10, None):
        np.testing.assert_allclose(onnx.sample_prior(5, 3, cls=cls), prior_engine.sample_prior(5, 3, cls=cls),
                                   rtol=0, atol=1e-6)
    v = Voice("snare", seed=9)
    np.testing.assert_allclose(onnx.voice_z(v), prior_engine.voice_z(v), rtol=0, atol=1e-6)
    assert json.loads((tmp_path / "onnx" / "export.json").read_text())["prior"]["kind"] == "class_gaussian"


def test_export_meta_of_a_bundle_without_a_prior_has_none(bundle_dir):
    from neuraldrum.export.models import export_meta

    assert export_meta(load_bundle(bundle_dir))["prior"] is None
