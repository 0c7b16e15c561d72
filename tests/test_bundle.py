"""The model bundle: what loads is exactly what was saved from memory, and a bundle that is altered,
truncated, incomplete, foreign or internally inconsistent is refused with a :class:`BundleError`.

Expectations come from outside the code under test: the in-memory models and statistics that were saved,
``hashlib`` over the whole weights file, NumPy for the PCA.
"""
import dataclasses
import hashlib
import json
import os
import re
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

import neuraldrum
from neuraldrum.audio.mel import Standardiser
from neuraldrum.bundle import (
    DEFAULT_BUNDLE,
    FORMAT,
    FORMAT_VERSION,
    META,
    PCA,
    WEIGHTS,
    BundleError,
    _sha256,
    load_bundle,
    read_meta,
    save_bundle,
)
from neuraldrum.config import preset, to_dict
from neuraldrum.models import MCNN, ConditionalWAE
from neuraldrum.models.classifier import ClassifierConfig, DrumClassifier
from neuraldrum.taxonomy import CLASSES

P = preset("tiny")


def _scramble(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Every floating tensor of the state (parameters and BatchNorm statistics alike) set to random values,
    so a tensor left at its initial value on load cannot pass for the saved one."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for t in module.state_dict().values():
            if t.is_floating_point():
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
    return module.eval()


CLF = ClassifierConfig(n_mels=P.mel.n_mels, n_frames=P.wae.n_frames, channels=(4, 4, 8, 8), embed_dim=16)


def _parts(wae_cfg=P.wae, mcnn_cfg=P.mcnn, clf_cfg=CLF, classifier=True) -> dict:
    g = torch.Generator().manual_seed(7)
    n_mels, n_frames = P.mel.n_mels, P.wae.n_frames
    std = Standardiser(n_mels, n_frames, torch.randn(n_mels, n_frames, generator=g) - 4.0,
                       0.5 + 1.5 * torch.rand(n_mels, n_frames, generator=g))
    z = torch.randn(60, P.wae.latent_dim, generator=g)
    clf = DrumClassifier(clf_cfg)
    return {"audio": P.audio, "mel": P.mel, "wae": _scramble(ConditionalWAE(wae_cfg), 1),
            "mcnn": _scramble(MCNN(mcnn_cfg), 2), "standardiser": std, "classes": list(CLASSES),
            "pca": {"all": PCA.fit(z), "kick": PCA.fit(z[:20] * 2 + 1, k=3)},
            "classifier": _scramble(clf, 3) if classifier else None}


@pytest.fixture(scope="module")
def parts():
    return _parts()


@pytest.fixture(scope="module")
def saved(parts, tmp_path_factory):
    return save_bundle(tmp_path_factory.mktemp("b") / "bundle", extra={"metrics": {"note": "random"}}, **parts)


def _copy(src, tmp_path):
    dst = tmp_path / "copy"
    shutil.copytree(src, dst)
    return dst


def _edit_meta(d, edit) -> None:
    meta = json.loads((d / META).read_text())
    edit(meta)
    (d / META).write_text(json.dumps(meta))


def _edit_tensors(d, edit) -> None:
    """Change the weights file and record its new checksum, as a careless tool would: only the checksum
    is right afterwards."""
    tensors = load_file(str(d / WEIGHTS))
    edit(tensors)
    save_file(tensors, str(d / WEIGHTS))
    _edit_meta(d, lambda m: m["weights"].update(sha256=hashlib.sha256((d / WEIGHTS).read_bytes()).hexdigest()))


def _as_json(cfg) -> dict:
    """A config as bundle.json holds it (tuples are lists in JSON)."""
    return json.loads(json.dumps(to_dict(cfg)))


def _assert_same_state(loaded: torch.nn.Module, original: torch.nn.Module) -> None:
    a, b = loaded.state_dict(), original.state_dict()
    assert sorted(a) == sorted(b)
    for k in b:
        assert torch.equal(a[k], b[k]), k


# ---------------------------------------------------------------- what is saved is what was in memory

def test_loaded_bundle_equals_the_models_that_were_saved(parts, saved):
    b = load_bundle(saved)
    _assert_same_state(b.wae, parts["wae"])
    _assert_same_state(b.mcnn, parts["mcnn"])
    _assert_same_state(b.classifier, parts["classifier"])
    assert not (b.wae.training or b.mcnn.training or b.classifier.training)
    # the standardiser's statistics are the saved ones (not ones / zeros), and they act as saved
    assert torch.equal(b.standardiser.mean, parts["standardiser"].mean)
    assert torch.equal(b.standardiser.std, parts["standardiser"].std)
    x = torch.randn(2, P.mel.n_mels, P.wae.n_frames)
    assert torch.allclose(b.standardiser(x), (x - parts["standardiser"].mean) / parts["standardiser"].std)
    assert sorted(b.pca) == ["all", "kick"]
    for name, p in parts["pca"].items():
        for f in ("mean", "components", "scales"):
            assert torch.equal(getattr(b.pca[name], f), getattr(p, f)), (name, f)
    assert b.audio == P.audio and b.mel == P.mel and b.path == saved
    assert b.classes == list(CLASSES) and b.meta["metrics"] == {"note": "random"}
    meta = read_meta(saved)
    assert (meta["format"], meta["format_version"]) == (FORMAT, FORMAT_VERSION)
    assert meta["package_version"] == neuraldrum.__version__
    assert meta["configs"]["wae"] == _as_json(P.wae) and meta["configs"]["mcnn"] == _as_json(P.mcnn)
    assert meta["configs"]["classifier"] == _as_json(parts["classifier"].cfg) and meta["pca"] == ["all", "kick"]
    # the checksum is the sha256 of the whole file, and the count is every tensor written
    assert meta["weights"] == {"file": WEIGHTS, "sha256": hashlib.sha256((saved / WEIGHTS).read_bytes()).hexdigest(),
                               "n_tensors": len(load_file(str(saved / WEIGHTS)))}
    n = sum(len(parts[m].state_dict()) for m in ("wae", "mcnn", "classifier")) + 2 + 3 * 2
    assert meta["weights"]["n_tensors"] == n


def test_bundle_without_classifier(tmp_path):
    parts = _parts(classifier=False)
    b = load_bundle(save_bundle(tmp_path / "b", **parts))
    assert b.classifier is None and b.meta["configs"]["classifier"] is None
    assert not any(k.startswith("classifier.") for k in load_file(str(tmp_path / "b" / WEIGHTS)))
    _assert_same_state(b.wae, parts["wae"])


def test_files_get_plain_modes_and_saving_again_replaces(parts, tmp_path):
    out = tmp_path / "b"
    save_bundle(out, **parts)
    second = dict(parts, standardiser=Standardiser(P.mel.n_mels, P.wae.n_frames, parts["standardiser"].mean,
                                                   2 * parts["standardiser"].std))
    save_bundle(out, extra={"run": 2}, **second)
    b = load_bundle(out)
    assert b.meta["run"] == 2 and torch.equal(b.standardiser.std, 2 * parts["standardiser"].std)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]  # no temporary or old folder left behind
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o777 & ~umask
    assert sorted(f.name for f in out.iterdir()) == sorted([META, WEIGHTS])
    for f in out.iterdir():
        assert f.stat().st_mode & 0o777 == 0o666 & ~umask, f.name


def test_a_failed_save_leaves_the_old_bundle(parts, tmp_path):
    out = save_bundle(tmp_path / "b", **parts)
    before = {f.name: f.read_bytes() for f in out.iterdir()}
    with pytest.raises(TypeError):  # bundle.json cannot be written: an object JSON cannot hold
        save_bundle(out, extra={"bad": object()}, **parts)
    assert {f.name: f.read_bytes() for f in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


# ---------------------------------------------------------------- refusals

@pytest.mark.parametrize("fmt", ["other-bundle", None, ""])
def test_foreign_format_is_refused(saved, tmp_path, fmt):
    d = _copy(saved, tmp_path)
    _edit_meta(d, lambda m: m.update(format=fmt) if fmt is not None else m.pop("format"))
    for load in (read_meta, load_bundle):
        with pytest.raises(BundleError, match=re.escape(f"bundle.json: not a neuraldrum bundle (format {fmt!r})")):
            load(d)


def test_json_that_is_not_an_object_is_refused(saved, tmp_path):
    d = _copy(saved, tmp_path)
    (d / META).write_text(json.dumps([FORMAT, FORMAT_VERSION]))
    with pytest.raises(BundleError, match="bundle.json: not a neuraldrum bundle$"):
        read_meta(d)
    (d / META).write_bytes(b"\xff\xfe{")
    with pytest.raises(BundleError, match="not valid JSON"):
        read_meta(d)


@pytest.mark.parametrize("version", [0, -1, FORMAT_VERSION + 1, "1", 1.0, None])
def test_unknown_format_version_is_refused(saved, tmp_path, version):
    d = _copy(saved, tmp_path)
    _edit_meta(d, lambda m: m.update(format_version=version))
    with pytest.raises(BundleError, match=re.escape(f"bundle format version {version!r} is not supported by ")
                       + r".*\(reads versions 1\.\." + f"{FORMAT_VERSION}\\); upgrade neuraldrum"):
        load_bundle(d)


def test_missing_pieces_are_refused(saved, tmp_path):
    with pytest.raises(BundleError, match="nope: no such model bundle"):
        load_bundle(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BundleError, match=f"not a neuraldrum model bundle \\(no {META}\\)"):
        read_meta(tmp_path / "empty")
    d = _copy(saved, tmp_path)
    (d / WEIGHTS).unlink()
    with pytest.raises(BundleError, match=f"{WEIGHTS}: weights file missing"):
        load_bundle(d)


@pytest.mark.parametrize("weights", [None, "model.safetensors", {"file": WEIGHTS}])
def test_a_missing_weights_record_or_checksum_is_refused(saved, tmp_path, weights):
    d = _copy(saved, tmp_path)
    _edit_meta(d, lambda m: m.update(weights=weights) if weights is not None else m.pop("weights"))
    with pytest.raises(BundleError, match="bundle.json: no weights record|checksum mismatch"):
        load_bundle(d)


def test_optional_entries_have_defaults(saved, tmp_path):
    """A bundle.json without ``weights.file`` reads model.safetensors; one without ``pca`` has no axes."""
    d = _copy(saved, tmp_path)
    _edit_meta(d, lambda m: (m["weights"].pop("file"), m.pop("pca")))
    b = load_bundle(d)
    assert b.pca == {} and torch.equal(b.standardiser.std, load_bundle(saved).standardiser.std)


def test_no_path_loads_the_packaged_default():
    b = load_bundle()
    assert b.path == DEFAULT_BUNDLE and b.meta["weights"]["sha256"] == read_meta(DEFAULT_BUNDLE)["weights"]["sha256"]


def test_weights_named_in_meta_are_the_ones_read(saved, tmp_path):
    d = _copy(saved, tmp_path)
    os.rename(d / WEIGHTS, d / "w.safetensors")
    _edit_meta(d, lambda m: m["weights"].update(file="w.safetensors"))
    assert torch.equal(load_bundle(d).standardiser.std, load_bundle(saved).standardiser.std)


def test_unreadable_weights_with_a_matching_checksum_are_refused(saved, tmp_path):
    d = _copy(saved, tmp_path)
    (d / WEIGHTS).write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage")
    _edit_meta(d, lambda m: m["weights"].update(sha256=hashlib.sha256((d / WEIGHTS).read_bytes()).hexdigest()))
    with pytest.raises(BundleError, match="unreadable weights"):
        load_bundle(d)


@pytest.mark.parametrize("prefix", ["wae", "mcnn", "classifier"])
def test_a_missing_or_unexpected_tensor_is_refused(saved, tmp_path, prefix):
    """Strict loading: with ``strict=False`` the missing tensor would silently keep its random init."""
    d = _copy(saved, tmp_path / "missing")
    _edit_tensors(d, lambda t: t.pop(max(k for k in t if k.startswith(prefix + "."))))
    with pytest.raises(BundleError, match="(?s)inconsistent bundle .*Missing key"):
        load_bundle(d)
    d = _copy(saved, tmp_path / "extra")
    _edit_tensors(d, lambda t: t.update({f"{prefix}.stowaway": torch.zeros(3)}))
    with pytest.raises(BundleError, match="(?s)inconsistent bundle .*Unexpected key"):
        load_bundle(d)


@pytest.mark.parametrize("key", ["std.mean", "std.std", "pca.kick.scales"])
def test_missing_statistics_are_refused(saved, tmp_path, key):
    d = _copy(saved, tmp_path)
    _edit_tensors(d, lambda t: t.pop(key))
    with pytest.raises(BundleError, match=f"inconsistent bundle \\(KeyError: '{key}'\\)"):
        load_bundle(d)


def test_unknown_config_field_is_refused(saved, tmp_path):
    d = _copy(saved, tmp_path)
    _edit_meta(d, lambda m: m["configs"]["mcnn"].update(wings=2))
    with pytest.raises(BundleError, match="inconsistent bundle \\(ValueError: MCNNConfig: unknown field"):
        load_bundle(d)


MEL_MISMATCHES = {
    # each breaks one agreement alone (front end vs WAE, vs MCNN bins, vs MCNN hop, vs classifier); the message
    # names the part that disagrees
    "wae_n_mels": ("wae", {"wae_cfg": dataclasses.replace(P.wae, n_mels=24)}),
    "wae_n_frames": ("wae", {"wae_cfg": dataclasses.replace(P.wae, n_frames=80)}),
    "mcnn_n_mels": ("mcnn", {"mcnn_cfg": dataclasses.replace(P.mcnn, n_mels=24)}),
    "mcnn_hop": ("mcnn", {"mcnn_cfg": dataclasses.replace(P.mcnn, n_layers=7, hop_length=128,
                                                           channels=(8, 8, 4, 4, 4, 2))}),
    "classifier_n_mels": ("classifier", {"clf_cfg": dataclasses.replace(CLF, n_mels=24)}),
}


@pytest.mark.parametrize("case", sorted(MEL_MISMATCHES))
def test_mel_settings_of_the_models_and_front_end_must_agree(tmp_path, case):
    part, kw = MEL_MISMATCHES[case]
    out = save_bundle(tmp_path / "b", **_parts(**kw))
    with pytest.raises(BundleError, match="disagree") as e:
        load_bundle(out)
    assert part in str(e.value)


@pytest.mark.parametrize("field,value", [("n_mels", 64), ("hop_length", 128), ("sample_rate", 16000)])
def test_front_end_edited_in_bundle_json_is_refused(saved, tmp_path, field, value):
    d = _copy(saved, tmp_path)
    _edit_meta(d, lambda m: m["configs"]["mel"].update({field: value}))
    with pytest.raises(BundleError, match="disagree"):
        load_bundle(d)


# ---------------------------------------------------------------- the checksum covers every byte

def test_sha256_reads_the_whole_file(tmp_path):
    data = np.random.default_rng(0).integers(0, 256, size=3 * 2 ** 20 + 17, dtype=np.uint8).tobytes()
    f = tmp_path / "blob"
    f.write_bytes(data)
    assert _sha256(f) == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("where", ["past_first_mib", "last_byte"])
def test_the_shipped_weights_altered_anywhere_are_refused(tmp_path, where):
    d = _copy(DEFAULT_BUNDLE, tmp_path)
    w = bytearray((d / WEIGHTS).read_bytes())
    assert len(w) > 2 * 2 ** 20
    assert load_bundle(d).path == d  # unaltered, the copy loads: its recorded checksum is the whole file's
    pos = 2 ** 20 + 12345 if where == "past_first_mib" else len(w) - 1
    w[pos] ^= 0x01  # one bit of one weight: still a readable file, a different model
    (d / WEIGHTS).write_bytes(bytes(w))
    with pytest.raises(BundleError, match="checksum mismatch"):
        load_bundle(d)


# ---------------------------------------------------------------- PCA against NumPy

@pytest.mark.parametrize("n", [2, 3, 400])
def test_pca_fit_agrees_with_numpy(n):
    rng = np.random.default_rng(n)
    z = rng.standard_normal((n, 4)) * np.array([3.0, 1.5, 0.7, 0.2]) + np.array([1.0, -2.0, 0.5, 4.0])
    p = PCA.fit(torch.tensor(z, dtype=torch.float64))
    assert np.allclose(p.mean.numpy(), z.mean(axis=0))
    k = min(n, 4)
    c = p.components.numpy()
    assert c.shape == (k, 4) and np.allclose(c @ c.T, np.eye(k), atol=1e-9)
    proj = (z - z.mean(axis=0)) @ c.T  # the scale of an axis is the sample std (n - 1) along it
    assert np.allclose(p.scales.numpy(), proj.std(axis=0, ddof=1))
    assert np.all(np.diff(p.scales.numpy()) <= 1e-12)
    two = PCA.fit(torch.tensor(z, dtype=torch.float64), k=2)
    assert two.components.shape == (2, 4) and two.scales.shape == (2,)
    assert np.allclose(two.scales.numpy(), p.scales.numpy()[:2])
