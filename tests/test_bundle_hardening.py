"""A bundle is data from elsewhere: every field of bundle.json that the code relies on is checked before use,
and a bad one ends in one :class:`BundleError` naming the file and the field (the CLI: one line, exit 1) —
never a traceback, a file read outside the bundle folder, a class list the model does not have, or an
allocation sized by an unchecked number.
"""
import hashlib
import json
import math
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file, save_file

from neuraldrum import cli
from neuraldrum.bundle import META, MAX_META_BYTES, WEIGHTS, BundleError, load_bundle, read_meta
from neuraldrum.engine import Engine

hyp = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


def _copy(src: Path, dst: Path, edit=None) -> Path:
    shutil.copytree(src, dst)
    if edit is not None:
        meta = json.loads((dst / META).read_text())
        edit(meta, dst)
        (dst / META).write_text(json.dumps(meta))
    return dst


def _set(*keys, value):
    def edit(meta, d):
        m = meta
        for k in keys[:-1]:
            m = m[k]
        m[keys[-1]] = value
    return edit


def _outside(meta, d):
    """weights.file through a symlink that leads out of the folder (to a valid copy of the weights)."""
    shutil.copy(d / WEIGHTS, d.parent / "outside.safetensors")
    os.symlink(d.parent / "outside.safetensors", d / "link.safetensors")
    meta["weights"]["file"] = "link.safetensors"


def _classes(names):
    return lambda meta, d: meta.update(classes=names(meta["classes"]))


CASES = {
    # weights.file: a plain name inside the folder, nothing else is opened
    "file_dotdot": (_set("weights", "file", value="../outside.safetensors"),
                    r"weights\.file '\.\./outside\.safetensors' must be a file name inside the bundle folder"),
    "file_absolute": (_set("weights", "file", value="/etc/passwd"),
                      r"weights\.file '/etc/passwd' must be a file name inside the bundle folder"),
    "file_subfolder": (_set("weights", "file", value="sub/model.safetensors"), r"weights\.file 'sub/model"),
    "file_symlink_out": (_outside, r"weights\.file 'link\.safetensors' must be a file name inside the bundle "
                                   r"folder \(it leads to .*outside\.safetensors\)"),
    "file_number": (_set("weights", "file", value=3), r"weights\.file 3 must be"),
    "file_empty": (_set("weights", "file", value=""), r"weights\.file '' must be"),
    "sha_number": (_set("weights", "sha256", value=5), r"weights\.sha256 5 must be 64 lowercase hexadecimal"),
    "sha_path": (_set("weights", "sha256", value="../../../../tmp/x"), r"weights\.sha256 '\.\./"),
    # classes: a list of distinct safe names, as many as the model has
    "classes_12": (_classes(lambda c: c + ["gong"]), r"classes has 12 names ≠ wae\.n_classes 11; classes has 12 "
                                                     r"names ≠ classifier\.n_classes 11"),
    "classes_10": (_classes(lambda c: c[:10]), r"classes has 10 names ≠ wae\.n_classes 11"),
    "classes_string": (_classes(lambda c: "kick"), r"classes 'kick' must be a list of 1 to 1024 class names"),
    "classes_empty": (_classes(lambda c: []), r"classes \[\] must be a list"),
    "classes_duplicate": (_classes(lambda c: ["kick"] + c[1:] + ["kick"]), r"classes: \['kick'\] appear more"),
    "classes_blank_name": (_classes(lambda c: [""] + c[1:]), r"classes: name '' must be a name of letters"),
    "classes_path_name": (_classes(lambda c: ["../../evil"] + c[1:]), r"classes: name '\.\./\.\./evil' must be"),
    "classes_number": (_classes(lambda c: [1] + c[1:]), r"classes: name 1 must be"),
    # prior_temperature: a finite number in (0, 10]
    "prior_string": (_set("prior_temperature", value="hot"), r"prior_temperature 'hot' must be a number in \(0, 10\]"),
    "prior_negative": (_set("prior_temperature", value=-1), r"prior_temperature -1 must be"),
    "prior_zero": (_set("prior_temperature", value=0), r"prior_temperature 0 must be"),
    "prior_nan": (_set("prior_temperature", value=math.nan), r"prior_temperature nan must be"),
    "prior_inf": (_set("prior_temperature", value=math.inf), r"prior_temperature inf must be"),
    "prior_huge": (_set("prior_temperature", value=1e300), r"prior_temperature 1e\+300 must be"),
    "prior_bool": (_set("prior_temperature", value=True), r"prior_temperature True must be"),
    # audio and Mel configs: types and sane ranges, checked before anything is sized from them
    "sample_rate_0": (lambda m, d: (m["configs"]["audio"].update(sample_rate=0),
                                    m["configs"]["mel"].update(sample_rate=0)),
                      r"audio\.sample_rate 0 must be a whole number of Hz from 8000 to 192000"),
    "sample_rate_float": (_set("configs", "audio", "sample_rate", value=22050.5),
                          r"AudioConfig\.sample_rate 22050\.5 must be a whole number"),
    "n_samples_1e10": (_set("configs", "audio", "n_samples", value=1e10), r"AudioConfig\.n_samples 1\d+\.0 must be"),
    "n_samples_10_10": (_set("configs", "audio", "n_samples", value=10 ** 10),
                        r"audio\.n_samples 10000000000 must be a whole number from 1 to 220500 \(10 s\)"),
    "n_samples_string": (_set("configs", "audio", "n_samples", value="22016"), r"AudioConfig\.n_samples '22016'"),
    "n_fft_huge": (_set("configs", "mel", "n_fft", value=10 ** 9), r"mel\.n_fft 1000000000 must be"),
    "hop_zero": (_set("configs", "mel", "hop_length", value=0), r"mel\.hop_length 0 must be"),
    "window": (_set("configs", "mel", "window", value="hamming"), r"mel\.window 'hamming' must be 'hann'"),
    "fmax_nan": (_set("configs", "mel", "fmax", value=math.nan), r"MelConfig\.fmax nan must be a finite number"),
    "mcnn_layers_huge": (_set("configs", "mcnn", "n_layers", value=10 ** 18),
                         r"mcnn\.n_layers 1000000000000000000: 2 \*\* n_layers ≠ mcnn\.hop_length"),
    "wae_padding_3": (_set("configs", "wae", "padding", value=[5, 2, 2]),
                      r"wae\.padding \(5, 2, 2\) must be 2 whole numbers ≥ 0"),
    "wae_width_negative": (_set("configs", "wae", "channels", value=[4, -8, 8]), r"wae\.channels \(4, -8, 8\) must be"),
    "wae_list_field": (_set("configs", "wae", "channels", value=[[4], 8, 8]), r"WAEConfig\.channels .* must be a list"),
    "wae_hidden_huge": (_set("configs", "wae", "hidden", value=[10 ** 6, 10 ** 6]), r"wae\.hidden \(1000000, 1000000\) "
                                                                                   r"must be 0 to 8 whole numbers"),
    # a model far larger than its weights (4 GB of convolutions, in range): built on the meta device and refused on
    # the first tensor whose shape differs, without allocating
    "wae_wide": (_set("configs", "wae", "channels", value=[4096, 4096, 4096]),
                 r"inconsistent bundle \(RuntimeError: \S+: torch\.float32 \(.*\) where the model has torch\.float32 \("),
    # structure
    "configs_list": (_set("configs", value=[]), r"configs \[\] must be an object"),
    "audio_list": (_set("configs", "audio", value=[22050]), r"configs\.audio \[22050\] must be an object"),
    "classifier_string": (_set("configs", "classifier", value="yes"), r"configs\.classifier 'yes' must be an "
                                                                      r"object or null"),
    "pca_string": (_set("pca", value="all"), r"pca 'all' must be a list of distinct names"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_bad_field_is_one_bundle_error_naming_file_and_field(bundle_dir, tmp_path, case, capsys):
    edit, pattern = CASES[case]
    d = _copy(bundle_dir, tmp_path / "b", edit)
    for load in (load_bundle, lambda p: Engine(p, warm=False)):
        with pytest.raises(BundleError) as e:
            load(d)
        msg = str(e.value)
        assert msg.startswith(str(d)) and re.search(pattern, msg), msg
        assert "allocate" not in msg and "\n" not in msg
    assert cli.main(["generate", "kick", "--model", str(d), "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"neuraldrum: error: {d}") and re.search(pattern, err), err
    assert not (tmp_path / "out").exists()


def _edit_tensors(d: Path, edit) -> None:
    """Change the weights and record their new checksum: only the checksum is right afterwards."""
    tensors = load_file(str(d / WEIGHTS))
    edit(tensors)
    save_file(tensors, str(d / WEIGHTS))
    meta = json.loads((d / META).read_text())
    meta["weights"]["sha256"] = hashlib.sha256((d / WEIGHTS).read_bytes()).hexdigest()
    (d / META).write_text(json.dumps(meta))


TENSOR_EDITS = {
    "half_precision": (lambda t: t.update({"wae.enc_fc.0.weight": t["wae.enc_fc.0.weight"].half()}),
                       r"enc_fc\.0\.weight: torch\.float16 .* where the model has torch\.float32"),
    "std_shape": (lambda t: t.update({"std.std": t["std.std"][:, :-1].contiguous()}),
                  r"std\.std has shape \(32, 86\), not \(n_mels, n_frames\) = \(32, 87\)"),
    "pca_shape": (lambda t: t.update({"pca.kick.scales": t["pca.kick.scales"][:-1].contiguous()}),
                  r"pca\.kick: shapes \(8,\), \(8, 8\), \(7,\) are not \(D,\), \(K, D\), \(K,\) with D = 8"),
}


@pytest.mark.parametrize("case", sorted(TENSOR_EDITS))
def test_tensors_of_the_wrong_dtype_or_shape_are_refused(bundle_dir, tmp_path, case):
    edit, pattern = TENSOR_EDITS[case]
    d = _copy(bundle_dir, tmp_path / "b")
    _edit_tensors(d, edit)
    with pytest.raises(BundleError, match=re.escape(f"{d}: inconsistent bundle (") + ".*" + pattern):
        load_bundle(d)


def test_a_symlink_inside_the_folder_is_followed(bundle_dir, tmp_path):
    def edit(meta, d):
        os.rename(d / WEIGHTS, d / "real.safetensors")
        os.symlink("real.safetensors", d / "w.safetensors")
        meta["weights"]["file"] = "w.safetensors"

    d = _copy(bundle_dir, tmp_path / "b", edit)
    assert load_bundle(d).classes == load_bundle(bundle_dir).classes


@pytest.mark.parametrize("text,pattern", [
    ("{nope", "not valid JSON"), ("[" * 100_000, "not valid JSON"),  # deep nesting: RecursionError inside json
    ('{"format": "neuraldrum-bundle", "format_version": 1, "x": ' + "1" * 5000 + "}", "not valid JSON"),
    ("[1, 2]", "not a neuraldrum bundle$"), ('"neuraldrum-bundle"', "not a neuraldrum bundle$"),
    ('{"format": "neuraldrum-bundle", "format_version": 1}', r"classes None must be a list"),
])
def test_bundle_json_that_is_not_a_bundle_object(bundle_dir, tmp_path, text, pattern):
    d = _copy(bundle_dir, tmp_path / "b")
    (d / META).write_text(text)
    for load in (read_meta, load_bundle):
        with pytest.raises(BundleError, match=re.escape(str(d / META)) + ": " + pattern):
            load(d)


def test_an_oversized_bundle_json_is_not_read(bundle_dir, tmp_path, monkeypatch):
    d = _copy(bundle_dir, tmp_path / "b")
    with open(d / META, "r+b") as f:
        f.truncate(MAX_META_BYTES + 1)  # sparse: large on paper, nothing written
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail(f"read {self}"))
    with pytest.raises(BundleError, match=f"{MAX_META_BYTES + 1} bytes; a bundle.json has at most {MAX_META_BYTES}"):
        read_meta(d)


def _denied(target: Path, real):
    """``real`` (Path.read_bytes), except that ``target`` raises what an unreadable file raises."""
    def fake(path, *a, **k):
        if Path(path) == target:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path, *a, **k)
    return fake


def test_unreadable_files_are_a_bundle_error_naming_the_file(bundle_dir, tmp_path, monkeypatch):
    d = _copy(bundle_dir, tmp_path / "b")
    with monkeypatch.context() as m:
        m.setattr(Path, "read_bytes", _denied(d / META, Path.read_bytes))
        with pytest.raises(BundleError, match=re.escape(f"{d / META}: unreadable (Permission denied)")):
            load_bundle(d)
    with monkeypatch.context() as m:
        m.setattr(Path, "read_bytes", _denied(d / WEIGHTS, Path.read_bytes))
        with pytest.raises(BundleError, match=re.escape(f"{d / WEIGHTS}: unreadable weights (Permission denied)")):
            load_bundle(d)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="file modes do not stop root")
@pytest.mark.parametrize("name", [META, WEIGHTS])
def test_unreadable_files_for_real(bundle_dir, tmp_path, name):
    d = _copy(bundle_dir, tmp_path / "b")
    os.chmod(d / name, 0)
    with pytest.raises(BundleError, match=re.escape(str(d / name)) + ": unreadable"):
        load_bundle(d)


# ---------------------------------------------------------------- any edit: loads and plays, or one BundleError

def _paths(x, prefix=()):
    """Every key path into nested dicts and lists of bundle.json (the PCA names and classes included)."""
    out = [prefix] if prefix else []
    if isinstance(x, dict):
        for k, v in x.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(x, list):
        for i, v in enumerate(x):
            out += _paths(v, prefix + (i,))
    return out


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2 ** 70), 2 ** 70)
    | st.sampled_from([0, 1, -1, 2, 3, 8, 11, 12, 32, 87, 256, 22016, 22050, 10 ** 10])
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12)
    | st.sampled_from(["kick", "../x", "/etc/passwd", "model.safetensors", "hann", "slaney", ""]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6)


def _near(v):
    """Values like ``v``: the same type, nearby (so that some edits load and must then play)."""
    if isinstance(v, bool):
        return st.booleans()
    if isinstance(v, int):
        return st.integers(v - 2, v + 2) | st.just(2 * v) | st.just(-v)
    if isinstance(v, float):
        return st.floats(0.0, 2 * abs(v) + 1.0) | st.just(-v)
    if isinstance(v, str):
        return st.just(v) | st.just(v.upper()) | st.just(v + "x")
    if isinstance(v, list) and v:
        return st.just(v[:-1]) | st.just(v + v[-1:]) | st.just(v[::-1])
    return st.just(v)


@pytest.fixture(scope="module")
def original(bundle_dir):
    return json.loads((bundle_dir / META).read_text())


@settings(max_examples=50, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_edit_of_bundle_json_loads_and_plays_or_is_one_bundle_error(bundle_dir, original, data):
    meta = json.loads(json.dumps(original))
    for _ in range(data.draw(st.integers(1, 2), label="edits")):
        path = data.draw(st.sampled_from(_paths(meta)), label="path")
        parent = meta
        for k in path[:-1]:
            parent = parent[k]
        if isinstance(parent, dict) and data.draw(st.booleans(), label="delete"):
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(_near(parent[path[-1]]) | JSON_VALUES, label="value")
        if not _paths(meta):
            break
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "b"
        d.mkdir()
        shutil.copyfile(bundle_dir / WEIGHTS, d / WEIGHTS)
        (d / META).write_text(json.dumps(meta))
        try:
            b = load_bundle(d)
        except BundleError as e:
            assert str(e).startswith(str(d)) and "\n" not in str(e)
            hyp.event("refused")
            return
        hyp.event("loaded")
        eng = Engine(b, warm=False)  # what loads must play
        w = eng.generate(eng.classes[-1], seed=0)
        assert w.shape == (eng.n_samples,) and np.all(np.isfinite(w))
        assert eng.classes == b.meta["classes"] and 0 < eng.temperature <= 10


def test_bundle_error_is_one_line():
    """A wrapped error's line breaks (torch's list of missing tensors has them) do not reach the message."""
    from neuraldrum.bundle import BundleError

    e = BundleError("/x/b: inconsistent bundle (RuntimeError: Error(s) in loading:\n\tMissing key(s): \"a\".\n)")
    assert "\n" not in str(e) and "\t" not in str(e) and str(e).startswith("/x/b: inconsistent bundle")
