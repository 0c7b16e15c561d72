"""What ``build_corpus`` records: one build from a folder with one clip of each kind of trouble, checked field by
field against what the folder holds (build.json's options, every exclusion with its reason and detail, the
manifest's order), and the refusals of bad options."""
import json
import re
import shutil
import time
from datetime import datetime

import numpy as np
import pytest
import soundfile as sf

import neuraldrum
from neuraldrum.data.build import NEAR_DUPLICATE, SPLIT_FRACTIONS, build_corpus
from neuraldrum.data.corpus import CORPUS_FORMAT, SPLITS
from neuraldrum.data.synth import synth
from neuraldrum.taxonomy import CLASS_INDEX, CLASSES

SR = 22050


def _write(path, x, sr=SR):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, 0.8 * x / np.abs(x).max(), sr, subtype="PCM_16")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("lib") / "lib"
    kick = synth("kick", sr=SR, rng=np.random.default_rng(0))
    _write(root / "kick" / "kick_1.wav", kick)
    _write(root / "kick" / "kick_2.wav", synth("kick", sr=SR, rng=np.random.default_rng(1))[::2])
    shutil.copy(root / "kick" / "kick_1.wav", root / "kick" / "kick_copy.wav")  # the same samples, another file
    x = np.interp(np.arange(0, kick.size, 1.0005), np.arange(kick.size), kick)  # a 0.05 % slower copy
    _write(root / "kick" / "kick_nearly.wav", x)
    _write(root / "hat" / "hat_wrong.wav", kick)  # a kick called a hat: its spectrum says otherwise
    (root / "snare").mkdir()
    (root / "snare" / "snare_broken.wav").write_bytes(b"RIFF not really a wave file")
    _write(root / "misc" / "thing.wav", synth("snare", sr=SR, rng=np.random.default_rng(2)))  # no class keyword
    for k in range(3):
        _write(root / "snare" / f"snare_{k}.wav", synth("snare", sr=SR, rng=np.random.default_rng(10 + k))[::k + 1])
    return root


def test_build_json_records_the_build(folder, tmp_path):
    t0 = time.time()
    info = build_corpus(tmp_path / "c", sources=(), folders=[folder], seed=3, fade_ms=5.0, max_seconds=2.0,
                        progress=False)
    elapsed = time.time() - t0
    on_disk = json.loads((tmp_path / "c" / "build.json").read_text())
    assert on_disk == info
    assert info["format"] == CORPUS_FORMAT and info["version"] == neuraldrum.__version__
    assert info["classes"] == list(CLASSES)
    assert datetime.strptime(info["created"], "%Y-%m-%dT%H:%M:%S%z")
    assert isinstance(info["build_seconds"], float) and 0 <= info["build_seconds"] <= elapsed + 0.01
    assert info["options"] == {
        "sample_rate": SR, "n_samples": 22016, "fade_ms": 5.0, "fade_shape": "cosine", "max_seconds": 2.0, "seed": 3,
        "sources": [],
        "folders": [str(folder.resolve())], "folder_class": None, "near_threshold": NEAR_DUPLICATE,
        "link_threshold": 0.98, "split_fractions": SPLIT_FRACTIONS, "drumsynth_variants": 0, "drumsynth_seed": 0,
        "train_only_sources": [], "pool": False, "hydrogen_kits": []}
    assert info["hydrogen_kits"] == []  # no Hydrogen kit read (the kits read, with their packages)

    rows = [json.loads(line) for line in (tmp_path / "c" / "manifest.jsonl").read_text().splitlines()]
    by_name = {r["path"].rsplit("/", 1)[1]: r for r in rows}
    assert sorted(by_name) == ["kick_1.wav", "kick_2.wav", "snare_0.wav", "snare_1.wav", "snare_2.wav"]
    ex = {e["path"].rsplit("/", 1)[1]: e for e in info["exclusions"]}
    assert sorted(ex) == ["hat_wrong.wav", "kick_copy.wav", "kick_nearly.wav", "snare_broken.wav", "thing.wav"]
    assert info["exclusion_counts"] == dict(sorted({e["reason"]: 1 for e in ex.values()}.items()))
    kick_id = by_name["kick_1.wav"]["id"]
    assert (ex["kick_copy.wav"]["reason"], ex["kick_copy.wav"]["detail"]) == \
        ("exact duplicate", f"same samples as {kick_id}")
    assert ex["kick_nearly.wav"]["reason"] == "near duplicate"
    assert re.fullmatch(rf"correlation (0\.99[7-9]\d|1\.0000) with {kick_id}", ex["kick_nearly.wav"]["detail"])
    assert ex["hat_wrong.wav"]["reason"] == "implausible spectrum for the class"
    assert re.fullmatch(rf"{ex['hat_wrong.wav']['class']}: \d+(\.\d+)?% of the energy (below|above) .*",
                        ex["hat_wrong.wav"]["detail"])
    assert ex["snare_broken.wav"]["reason"].startswith("unreadable") and ex["snare_broken.wav"]["class"] == "snare"
    assert ex["thing.wav"]["class"] is None
    for name, e in ex.items():
        assert e["path"] == str(folder.resolve() / e["path"].split(str(folder.resolve()) + "/")[1])
        assert (e["source"], e["kit"]) == ("folder", "lib") and e["instrument"].endswith(name[:-4])
        assert set(e) == {"id", "source", "kit", "instrument", "layer", "path", "class", "reason", "detail"}

    # rows: in class order, then source, kit, instrument; index = row; audio row i is clip i
    keys = [(CLASS_INDEX[r["class"]], r["kit"], r["instrument"], r["layer"], r["id"]) for r in rows]
    assert keys == sorted(keys) and [r["index"] for r in rows] == list(range(len(rows)))
    audio = np.load(tmp_path / "c" / "audio.npy")
    assert audio.dtype == np.float32 and audio.flags["C_CONTIGUOUS"] and audio.shape == (5, 22016)
    for r, a in zip(rows, audio):
        assert r["peak"] == pytest.approx(0.8, abs=1e-4) and np.abs(a).max() == pytest.approx(1.0)
    # the kicks, of one class, in the order of their instruments
    assert [r["instrument"] for r in rows[:2]] == ["kick/kick_1", "kick/kick_2"]
    counts = info["counts"]
    assert set(counts) == set(CLASSES) and counts["kick"] == {"folder": {s: n for s, n in zip(
        SPLITS, [sum(r["split"] == s for r in rows[:2]) for s in SPLITS])}}
    assert sum(n for c in counts.values() for s in c.values() for n in s.values()) == 5


def test_bad_options_are_refused(folder, tmp_path):
    for kw in ({"sample_rate": 0}, {"n_samples": 0}, {"sample_rate": -1}):
        with pytest.raises(ValueError, match="sample_rate and n_samples must be positive"):
            build_corpus(tmp_path / "c", sources=(), folders=[folder], progress=False, **kw)
    with pytest.raises(ValueError, match="^drumsynth_variants needs the drumsynth source$"):
        build_corpus(tmp_path / "c", sources=(), folders=[folder], drumsynth_variants=1, progress=False)
    with pytest.raises(ValueError, match="unknown source 'nosuch'; choose from "):
        build_corpus(tmp_path / "c", sources=("nosuch",), progress=False)
    with pytest.raises(FileNotFoundError, match="--folder .*missing: no such folder"):
        build_corpus(tmp_path / "c", sources=(), folders=[tmp_path / "missing"], progress=False)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.wav").write_bytes(b"nothing")
    with pytest.raises(ValueError, match=r"^no usable clip: every candidate was excluded \("):
        build_corpus(tmp_path / "c", sources=(), folders=[tmp_path / "empty"], progress=False)
    assert not (tmp_path / "c").exists()


def test_folder_class_labels_every_file(folder, tmp_path):
    info = build_corpus(tmp_path / "c", sources=(), folders=[folder / "snare"], folder_class="snare", progress=False)
    rows = [json.loads(line) for line in (tmp_path / "c" / "manifest.jsonl").read_text().splitlines()]
    assert {r["class"] for r in rows} == {"snare"} and {r["rule"] for r in rows} == {"--class"}
    assert info["options"]["folder_class"] == "snare"


def test_refusals_name_what_to_do(tmp_path, monkeypatch):
    from neuraldrum.data import build as build_mod
    from neuraldrum.data.sources import APT_PACKAGES, SOURCES

    monkeypatch.setattr(build_mod, "available_sources", lambda: dict.fromkeys(SOURCES, False))
    every = "hydrogen-drumkits hydrogen-drumkits-effects fluid-soundfont-gm"  # the start of the full list
    with pytest.raises(FileNotFoundError, match=f"`sudo apt-get install {every} "):
        build_corpus(tmp_path / "c", progress=False)
    assert APT_PACKAGES["hydrogen"] == "hydrogen-drumkits hydrogen-drumkits-effects"
    with pytest.raises(FileNotFoundError, match="source 'lmms' is not installed; `sudo apt-get install lmms-common`"):
        build_corpus(tmp_path / "c", sources=("lmms",), progress=False)
    out = tmp_path / "busy"
    out.mkdir()
    for name in ("a.txt", "b.txt", "c.txt", "d.txt"):
        (out / name).write_text("mine")
    with pytest.raises(FileExistsError, match=r"busy: holds files that are not a corpus \(a.txt, b.txt, c.txt\); "):
        build_corpus(out, sources=(), folders=[tmp_path], progress=False)


def test_reason_categories():
    from neuraldrum.data.build import _reason_category

    assert _reason_category("unreadable (LibsndfileError: Format not recognised)") == "unreadable"
    assert _reason_category("GM note 71 not in the drum map") == "GM note N not in the drum map"
    assert _reason_category("(only a detail)") == "(only a detail)"  # nothing left: the reason as it was
