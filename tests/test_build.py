"""The corpus builder on synthesised sample folders (and, when installed, on the Debian drum libraries)."""
import hashlib
import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from neuraldrum.cli import main
from neuraldrum.data import build as build_mod
from neuraldrum.data.build import build_corpus, fingerprints, implausible, split_groups
from neuraldrum.data.corpus import CORPUS_FORMAT, SPLITS, CorpusError, load_corpus
from neuraldrum.data.sources import Candidate, available_sources, folder_samples, hydrogen_kits
from neuraldrum.data.synth import synth, write_sample_folder
from neuraldrum.taxonomy import CLASSES

SR = 22050
N = 22016


def _build(out, folder, **kw):
    return build_corpus(out, sources=(), folders=[folder], progress=False, **kw)


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    """Three synthesised hits per class in ``<class>/<class>_<k>.wav`` (44.1 kHz, 16 bit)."""
    root = tmp_path_factory.mktemp("samples")
    for path in write_sample_folder(root, per_class=3, seed=0):
        k = int(path.stem[-1])
        if k:  # noise voices of one class differ only by chance: play hits 1 and 2 faster and slower
            x, sr = sf.read(path)
            x = np.interp(np.arange(0, x.size, (1.5, 0.6)[k - 1]), np.arange(x.size), x)
            sf.write(path, 0.8 * x / np.abs(x).max(), sr, subtype="PCM_16")
    return root


@pytest.fixture(scope="module")
def built(samples, tmp_path_factory):
    out = tmp_path_factory.mktemp("built") / "corpus"
    return out, _build(out, samples)


def test_corpus_format(built):
    out, info = built
    corpus = load_corpus(out)
    assert corpus.audio.shape == (len(CLASSES) * 3, N) and corpus.audio.dtype == np.float32
    assert corpus.sample_rate == SR and corpus.n_samples == N
    assert info["format"] == CORPUS_FORMAT and info["options"]["sample_rate"] == SR
    assert info["options"]["n_samples"] == N and info["n_clips"] == len(corpus)
    assert sum(n for c in info["counts"].values() for s in c.values() for n in s.values()) == len(corpus)
    assert set(info["counts"]) == set(CLASSES) and info["exclusions"] == [] and info["build_seconds"] > 0
    audio = np.asarray(corpus.audio)
    assert np.allclose(np.abs(audio).max(axis=1), 1.0, atol=1e-6)  # peak-normalised
    assert np.all(np.abs(audio[:, :64]).max(axis=1) > 0.05)  # onset-aligned: the hit starts at once
    assert hashlib.sha256(audio.tobytes()).hexdigest() == info["audio_sha256"]
    fields = {"id", "index", "class", "source", "kit", "instrument", "layer", "velocity", "path", "split",
              "peak", "rule"}
    for i, it in enumerate(corpus.items):
        assert fields <= set(it) and it["index"] == i and it["source"] == "folder"
        assert Path(it["path"]).name.startswith(it["class"]) and 0 < it["peak"] < 0.9  # files peak at 0.8
    assert len({it["id"] for it in corpus.items}) == len(corpus)
    # three instruments per class: one each for train, val and test
    for cls in CLASSES:
        assert sorted(it["split"] for it in corpus.items if it["class"] == cls) == sorted(SPLITS)


def test_rebuild_is_deterministic(built, samples, tmp_path):
    out, info = built
    again = _build(tmp_path / "again", samples)
    a, b = load_corpus(out), load_corpus(tmp_path / "again")
    assert [(it["id"], it["split"]) for it in a.items] == [(it["id"], it["split"]) for it in b.items]
    assert info["audio_sha256"] == again["audio_sha256"]
    other = _build(tmp_path / "seeded", samples, seed=1)  # the seed moves the split, never the ids
    c = load_corpus(tmp_path / "seeded")
    assert sorted(it["id"] for it in c.items) == sorted(it["id"] for it in a.items)
    assert [it["split"] for it in c.items] != [it["split"] for it in a.items] or other["n_clips"] < 5


def _cand(source, kit, inst, layer, label, link=""):
    return Candidate(source, kit, inst, layer, f"/x/{kit}/{inst}/{layer}.wav", label, "test", link=link)


def test_split_is_grouped_stratified_and_order_free():
    items = [_cand("hydrogen", f"kit{k}", f"{cls} {i}", str(j), cls)
             for cls in CLASSES for k in range(2) for i in range(4) for j in range(3)]
    items.append(_cand("lmms", "lmms", "one", "", "kick", link="shared"))
    items.append(_cand("sonicpi", "sp", "two", "", "kick", link="shared"))
    split, group = split_groups(items, seed=0)
    by_id = {it.id: s for it, s in zip(items, split)}
    shuffled = items[:]
    random.Random(1).shuffle(shuffled)
    split2, _ = split_groups(shuffled, seed=0)
    assert {it.id: s for it, s in zip(shuffled, split2)} == by_id  # not a function of the order
    seen: dict = {}
    for it, s in zip(items, split):
        assert seen.setdefault(it.group, s) == s  # no instrument straddles two splits
    assert by_id[items[-1].id] == by_id[items[-2].id]  # a shared recording stays together
    for cls in CLASSES:
        counts = {s: sum(1 for it, x in zip(items, split) if it.label == cls and x == s) for s in SPLITS}
        assert counts["val"] >= 3 and counts["test"] >= 3 and counts["train"] >= 12, (cls, counts)
    links = [(0, len(items) - 1)]  # a similar-sound link joins groups too
    split3, group3 = split_groups(items, seed=0, links=links)
    assert split3[0] == split3[-1] and group3[0] == group3[-1]


def test_velocity_layers_share_a_split(tmp_path):
    root = tmp_path / "layers"
    rng = np.random.default_rng(3)
    for k in range(6):
        for vel in ("soft", "med", "hard"):
            (root / f"tom{k}").mkdir(parents=True, exist_ok=True)
            sf.write(root / f"tom{k}" / f"tom{k}_{vel}.wav", 0.7 * synth("tom", rng=rng), SR)
    _build(tmp_path / "c", root, near_threshold=1.01)
    corpus = load_corpus(tmp_path / "c")
    assert len(corpus) == 18
    by_inst: dict = {}
    for it in corpus.items:
        by_inst.setdefault(it["instrument"], set()).add(it["split"])
        assert it["layer"] in ("soft", "med", "hard")
    assert len(by_inst) == 6 and all(len(s) == 1 for s in by_inst.values())


def test_duplicates_are_removed(tmp_path, samples):
    root = tmp_path / "dups"
    shutil.copytree(samples / "kick", root / "kick")
    shutil.copy(root / "kick" / "kick_0.wav", root / "kick" / "kick_copy.wav")  # the same file twice
    x, sr = sf.read(root / "kick" / "kick_1.wav")
    sf.write(root / "kick" / "kick_quiet.wav", 0.25 * x, sr, subtype="PCM_16")  # gain-scaled, re-quantised
    info = _build(tmp_path / "c", root)
    assert info["n_clips"] == 3
    assert info["exclusion_counts"] == {"exact duplicate": 1, "near duplicate": 1}
    gone = {Path(e["path"]).name: e for e in info["exclusions"]}
    assert set(gone) == {"kick_copy.wav", "kick_quiet.wav"}


def test_near_duplicate_fingerprint_ignores_gain_not_sound():
    rng = np.random.default_rng(0)
    a, b = synth("snare", rng=rng)[:N], synth("snare", rng=rng)[:N]
    clips = np.zeros((3, N), np.float32)
    clips[0, : a.size], clips[2, : b.size] = a, b
    q = np.round(0.05 * a * 32767) / 32767  # -26 dB and 16-bit: what a quiet velocity layer looks like
    clips[1, : q.size] = q / np.abs(q).max()
    fp = fingerprints(clips, SR)
    sim = fp @ fp.T
    assert sim[0, 1] > build_mod.NEAR_DUPLICATE and sim[0, 2] < build_mod.NEAR_DUPLICATE
    assert np.allclose(np.linalg.norm(fp, axis=1), 1.0, atol=1e-5)


def test_bad_files_are_skipped_with_reasons(tmp_path, samples):
    root = tmp_path / "bad"
    shutil.copytree(samples / "snare", root / "snare")
    (root / "kick_empty.wav").write_bytes(b"")
    sf.write(root / "kick_noframes.wav", np.zeros(0, np.float32), SR)
    sf.write(root / "snare_nan.wav", np.full(1000, np.nan, np.float32), SR, subtype="FLOAT")
    sf.write(root / "tom_silent.wav", np.zeros(SR, np.float32), SR)
    (root / "clap_garbage.wav").write_bytes(b"RIFF not really a wave file" * 10)
    sf.write(root / "ride_long.wav", 0.1 * np.ones(61 * 8000, np.float32), 8000)
    sf.write(root / "mystery.wav", 0.5 * synth("kick"), SR)
    sf.write(root / "crash_rumble.wav", 0.5 * synth("kick"), SR)  # a "crash" with all its energy below 200 Hz
    (root / "notes.txt").write_text("not audio: ignored")
    info = _build(tmp_path / "c", root)
    assert info["n_clips"] == 3
    reasons = {Path(e["path"]).name: e["reason"] for e in info["exclusions"]}
    assert reasons == {"kick_empty.wav": "unreadable", "kick_noframes.wav": "empty audio",
                       "snare_nan.wav": "contains NaN or Inf samples", "tom_silent.wav": "silent",
                       "clap_garbage.wav": "unreadable", "ride_long.wav": "too long",
                       "mystery.wav": "no class keyword", "crash_rumble.wav": "implausible spectrum for the class"}
    assert sum(info["exclusion_counts"].values()) == len(reasons) and info["exclusion_counts"]["unreadable"] == 2


def test_implausible_spectrum():
    rng = np.random.default_rng(0)
    assert implausible(synth("crash", rng=rng)[:N], "crash", SR) is None
    assert "below 200 Hz" in implausible(synth("kick", rng=rng)[:N], "hh_closed", SR)
    assert implausible(synth("kick", rng=rng)[:N], "kick", SR) is None  # drums are not checked


def test_folder_class_and_labels(tmp_path, samples):
    cands = list(folder_samples(samples / "hh_open"))
    assert [c.label for c in cands] == ["hh_open"] * 3 and all(c.load for c in cands)
    forced = list(folder_samples(samples / "hh_open", cls="crash"))
    assert {c.label for c in forced} == {"crash"} and {c.rule for c in forced} == {"--class"}
    with pytest.raises(ValueError, match="not a class"):
        list(folder_samples(samples, cls="cymbal"))
    with pytest.raises(FileNotFoundError, match="no such folder"):
        list(folder_samples(tmp_path / "nope"))


def test_open_hats_by_any_part_of_the_path(tmp_path):
    """A user's "Hats/Open/01.wav" is an open hat (it was closed: "Hats" matched, "Open" alone matched nothing);
    a closed hat or a plain hat folder stays closed."""
    root = tmp_path / "samples"
    files = {"Hats/Open/01.wav": "hh_open", "hats/open/sample 0.wav": "hh_open", "Hats/OpenHH.wav": "hh_open",
             "HiHats/OH/a.wav": "hh_open", "Hats/Closed/open mic.wav": "hh_closed", "Hats/02.wav": "hh_closed",
             "Hats/Pedal/b.wav": "hh_closed", "Kicks/open kick.wav": "kick"}
    for rel in files:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(root / rel), synth("hh_open", seed=1)[:4000], SR)
    got = {Path(c.path).relative_to(root).as_posix(): c.label for c in folder_samples(root)}
    assert got == files


def test_failed_build_leaves_no_corpus(tmp_path, samples, built, monkeypatch):
    out = tmp_path / "c"

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(build_mod, "atomic_write_text", boom)
    with pytest.raises(OSError):
        _build(out, samples / "kick")
    assert not out.exists() and list(tmp_path.iterdir()) == []
    old, _ = built  # an old corpus stays whole when the new build fails
    before = (old / "manifest.jsonl").read_text()
    with pytest.raises(OSError):
        _build(old, samples / "kick")
    assert (old / "manifest.jsonl").read_text() == before and len(load_corpus(old)) == 33
    assert sorted(p.name for p in old.parent.iterdir()) == ["corpus"]


def test_out_dir_with_other_files_is_refused(tmp_path, samples):
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "thesis.tex").write_text("precious")
    with pytest.raises(FileExistsError, match="not a corpus"):
        _build(tmp_path / "home", samples / "kick")


def test_no_library_no_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(build_mod, "available_sources", lambda: dict.fromkeys(("hydrogen", "soundfont", "lmms",
                                                                                "sonicpi"), False))
    with pytest.raises(FileNotFoundError, match="apt-get install hydrogen-drumkits"):
        build_corpus(tmp_path / "c", progress=False)


def test_cli_build_and_stats(tmp_path, samples, capsys):
    out = tmp_path / "c"
    assert main(["data", "build", "--out", str(out), "--folder", str(samples), "--sources", "none",
                 "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "wrote 33 clips" in text and "hh_closed" in text and "(0 items excluded)" in text
    (samples / "notes.wav").write_bytes(b"not audio")  # an excluded item: where to read why is said
    try:
        assert main(["data", "build", "--out", str(tmp_path / "c2"), "--folder", str(samples), "--sources", "none",
                     "--no-progress"]) == 0
    finally:
        (samples / "notes.wav").unlink()
    assert f"(1 items excluded; each with its file and reason: neuraldrum data stats {tmp_path / 'c2'} --json)" \
        in capsys.readouterr().out
    assert main(["data", "stats", str(out)]) == 0
    table = capsys.readouterr().out
    total = [ln for ln in table.splitlines() if ln.startswith("total")][0].split()
    assert total[1:] == ["33", "33", "11", "11", "11"]  # folder, total, train, val, test
    assert main(["data", "stats", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_clips"] == 33


def test_cli_errors(tmp_path, samples, capsys):
    assert main(["data", "build", "--out", str(tmp_path / "c"), "--folder", str(tmp_path / "missing"),
                 "--no-progress"]) == 1
    assert "no such folder" in capsys.readouterr().err and not (tmp_path / "c").exists()
    assert main(["data", "build", "--out", str(tmp_path / "c"), "--class", "kick", "--no-progress"]) == 1
    assert "--folder" in capsys.readouterr().err
    assert main(["data", "build", "--out", str(tmp_path / "c"), "--sources", "cubase", "--no-progress"]) == 1
    assert "unknown" in capsys.readouterr().err
    assert main(["data", "stats", str(tmp_path / "nothing")]) == 1
    assert "missing" in capsys.readouterr().err


def test_hydrogen_kit_parsing(tmp_path):
    """Layers, the old one-file format, a missing file, an unnamed slot, and a kit excluded by its name."""
    kit = tmp_path / "kits" / "MyKit"
    kit.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in ("k1", "k2", "sn"):
        sf.write(kit / f"{name}.wav", 0.5 * synth("kick" if name != "sn" else "snare", rng=rng), SR)
    (kit / "drumkit.xml").write_text("""<?xml version="1.0"?>
<drumkit_info xmlns="http://www.hydrogen-music.org/drumkit"><name>My Kit</name><instrumentList>
 <instrument><name>Kick</name>
  <layer><filename>k1.wav</filename><min>0</min><max>0.5</max></layer>
  <layer><filename>k2.wav</filename><min>0.5</min><max>1</max></layer></instrument>
 <instrument><name>Snare</name><filename>sn.wav</filename></instrument>
 <instrument><name>Cowbell</name><filename>gone.wav</filename></instrument>
 <instrument><name>17</name><filename>emptySample.flac</filename></instrument>
 <instrument><name>Tom</name></instrument>
</instrumentList></drumkit_info>""")
    strums = tmp_path / "kits" / "Strums"
    strums.mkdir()
    (strums / "drumkit.xml").write_text("<drumkit_info><name>AC-Guitar-Strums</name><instrumentList><instrument>"
                                        "<name>Kick</name><filename>a.wav</filename></instrument>"
                                        "</instrumentList></drumkit_info>")
    got = {(c.kit, c.instrument, c.layer): c for c in hydrogen_kits([tmp_path / "kits"])}
    kick1, kick2 = got[("My Kit", "Kick", "1/2")], got[("My Kit", "Kick", "2/2")]
    assert (kick1.label, kick1.velocity, kick2.velocity) == ("kick", 64, 127)
    assert kick1.load(SR, 60.0).ndim == 1 and kick1.group == kick2.group
    assert got[("My Kit", "Snare", "1/1")].label == "snare"  # <filename> directly in <instrument>
    cowbell = got[("My Kit", "Cowbell", "1/1")]
    with pytest.raises(ValueError, match="no such file"):
        cowbell.load(SR, 60.0)
    assert got[("My Kit", "17", "1/1")].rule == "unnamed slot"
    assert got[("My Kit", "Tom", "")].rule == "empty slot"
    assert got[("AC-Guitar-Strums", "Kick", "1/1")].label is None
    assert len({c.id for c in got.values()}) == len(got)


# ---------------------------------------------------------------- the real libraries

def _libraries_installed():
    have = available_sources()
    return all(have.values())


needs_libraries = pytest.mark.skipif(not _libraries_installed(),
                                     reason="the Debian drum libraries are not installed (make setup)")


@pytest.mark.corpus
@needs_libraries
def test_soundfont_rendering():
    from neuraldrum.data.soundfont import SF2, Renderer

    sf2 = SF2("/usr/share/sounds/sf2/FluidR3_GM.sf2")
    assert ("Standard", 128, 0) in sf2.presets()
    assert {z.name for z in sf2.zones(128, 0, 36)} <= {"Std Kick(L)", "Std Kick(R)"}
    r = Renderer("/usr/share/sounds/sf2/FluidR3_GM.sf2")
    x = r.render(9, 128, 0, 36, 127)
    assert x.dtype == np.float32 and x.size % 64 == 0 and np.abs(x[:2000]).max() > 0.05
    quiet = r.render(9, 128, 0, 42, 10)  # float output: a soft note is not drowned in dither
    assert 0 < np.abs(quiet).max() < 0.2 and quiet.size % 64 == 0


@pytest.mark.corpus
@needs_libraries
def test_real_corpus(tmp_path):
    info = build_corpus(tmp_path / "corpus", progress=False)
    corpus = load_corpus(tmp_path / "corpus")
    # ≈ 880 distinct clips once gain-only layers and shared samples are gone (see build.NEAR_DUPLICATE); the
    # rarest classes are shaker (≈ 19: the AVL and "Gimme A Hand" shakers are one recording at five gains)
    # and clap (≈ 21)
    assert len(corpus) >= 850  # how long the build takes is for the bench, not a test
    for cls in CLASSES:
        rows = [it for it in corpus.items if it["class"] == cls]
        assert len(rows) >= 15, cls
        assert {"train", "val", "test"} <= {it["split"] for it in rows}, cls
    seen: dict = {}
    for it in corpus.items:
        assert seen.setdefault((it["source"], it["kit"], it["instrument"]), it["split"]) == it["split"]
    assert set(info["options"]["sources"]) == {"hydrogen", "soundfont", "lmms", "sonicpi"}
    reasons = info["exclusion_counts"]
    assert reasons["exact duplicate"] > 500 and reasons["near duplicate"] > 50 and reasons["unreadable"] >= 1
    assert any(e["path"].endswith("kick04.ogg") and e["reason"] == "unreadable" for e in info["exclusions"])


def test_cli_build_at_44k_with_a_decay_fade(tmp_path, samples, capsys):
    """--sample-rate 44100 gives 86 hops of 512 samples, and --fade-shape decay defaults to a 300 ms fade; every
    option is recorded in build.json and in the clips' length."""
    out = tmp_path / "c"
    assert main(["data", "build", "--out", str(out), "--folder", str(samples), "--sources", "none",
                 "--sample-rate", "44100", "--fade-shape", "decay", "--no-progress"]) == 0
    info = json.loads((out / "build.json").read_text())
    assert {k: info["options"][k] for k in ("sample_rate", "n_samples", "fade_ms", "fade_shape")} == {
        "sample_rate": 44100, "n_samples": 44032, "fade_ms": 300.0, "fade_shape": "decay"}
    assert np.load(out / "audio.npy", mmap_mode="r").shape[1] == 44032
    capsys.readouterr()
    for args, what in ((["--sample-rate", "100"], "--sample-rate"), (["--n-samples", "0"], "--n-samples"),
                       (["--fade-ms", "-1"], "--fade-ms")):
        assert main(["data", "build", "--out", str(tmp_path / "d"), "--folder", str(samples), "--sources", "none",
                     "--no-progress", *args]) == 1
        assert what in capsys.readouterr().err and not (tmp_path / "d").exists()


def test_unlabelled_pool(tmp_path, samples, built):
    """`pool=True` keeps the hits that only lack a class (a conga, an unnamed blip) for the inverters, leaves out
    a near copy of a held-out clip, a near copy of another pool clip and non-percussion (a loop), and leaves the
    labelled corpus as it was."""
    out0, info0 = built
    c0 = load_corpus(out0)
    test_row = next(it for it in c0.items if it["split"] == "test")
    train_row = next(it for it in c0.items if it["split"] == "train")
    extra = tmp_path / "extra"
    extra.mkdir()
    rng = np.random.default_rng(5)
    sf.write(extra / "conga_1.wav", 0.7 * synth("tom", sr=44100, rng=rng), 44100, subtype="PCM_16")
    blip = 0.7 * synth("rim", sr=44100, rng=rng)
    sf.write(extra / "blip.wav", blip, 44100, subtype="PCM_16")
    sf.write(extra / "blop.wav", 0.25 * blip, 44100, subtype="PCM_16")  # the blip again, quieter: a near duplicate
    x, sr = sf.read(test_row["path"])  # the held-out hit, a little noisier, under a name with no class
    sf.write(extra / "mystery.wav", x + 1e-3 * rng.standard_normal(x.shape), sr, subtype="PCM_16")
    x, sr = sf.read(train_row["path"])  # a training hit's near copy may stay: it is training material already
    sf.write(extra / "other.wav", x + 1e-3 * rng.standard_normal(x.shape), sr, subtype="PCM_16")
    sf.write(extra / "chord_loop.wav", 0.5 * np.sin(np.arange(44100) / 10.0), 44100)  # "loop": not percussion
    out = tmp_path / "c"
    info = build_corpus(out, sources=(), folders=[samples, extra], progress=False, pool=True)
    c = load_corpus(out)
    assert info["audio_sha256"] == info0["audio_sha256"] and c.items == c0.items  # labelled corpus unchanged
    names = sorted(Path(r["path"]).name for r in c.pool_items)
    assert names == ["blip.wav", "conga_1.wav", "other.wav"]
    assert c.pool.shape == (3, N) and c.pool.dtype == np.float32 and info["pool"]["n_clips"] == 3
    assert np.allclose(np.abs(np.asarray(c.pool)).max(axis=1), 1.0, atol=1e-6)  # prepared like the corpus
    left = {Path(e["path"]).name: e for e in info["pool"]["left_out"]}
    assert set(left) == {"mystery.wav", "blop.wav"} and left["blop.wav"]["reason"] == "near duplicate"
    assert left["mystery.wav"]["reason"] == "similar to a held-out clip"
    assert test_row["id"] in left["mystery.wav"]["detail"]
    assert info["pool"]["reasons"] == {"hand drum": 1, "no class keyword": 2}
    assert c.summary()["pool_clips"] == 3 and "pool_clips" not in c0.summary()
    # a pool file without its rows is refused, naming what is missing
    (out / "pool.jsonl").unlink()
    with pytest.raises(CorpusError, match="pool.jsonl: missing"):
        load_corpus(out)


def test_a_tick_or_a_truncated_file_is_too_short(tmp_path):
    """A 5-sample truncated file and an 8-sample tick were kept as kicks; a clip needs 2 ms within 60 dB of its
    peak."""
    root = tmp_path / "samples" / "Kicks"
    root.mkdir(parents=True)
    sf.write(str(root / "truncated kick.wav"), np.full(5, 0.5), SR)
    sf.write(str(root / "tick kick.wav"), np.r_[np.zeros(50), np.full(8, 0.9), np.zeros(50)], SR)
    for k in range(2):
        sf.write(str(root / f"kick {k}.wav"), synth("kick", seed=k), SR)
    info = _build(tmp_path / "c", tmp_path / "samples")
    short = {Path(e["path"]).name: e["detail"] for e in info["exclusions"] if e["reason"] == "too short"}
    assert set(short) == {"truncated kick.wav", "tick kick.wav"} and "under 2 ms" in short["tick kick.wav"]
    assert info["n_clips"] == 2
