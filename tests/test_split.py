"""The corpus split keeps related clips together: checked on GROUPS (which are fixed by the data), not on two
clips that may share a split by chance.

- items that share a recording (``link``) or a similarity link form one group, whatever the seed;
- near-identical clips in two instruments (fingerprint correlation between the link and the near-duplicate
  thresholds) are linked by the build, so they land in one split;
- a clip of a train-only source (DrumSynth) similar to a val or test clip is excluded, one similar to a train
  clip is kept.
"""
import json

import numpy as np
import pytest
import soundfile as sf

from neuraldrum.audio.io import prepare_clip
from neuraldrum.data.build import (
    LINK_SIMILAR,
    NEAR_DUPLICATE,
    Candidate,
    build_corpus,
    fingerprints,
    implausible,
    near_duplicates,
    similar_pairs,
    split_groups,
    train_only_conflicts,
)
from neuraldrum.data.synth import synth

SR = 22050
N = 22016
SEEDS = range(40)


def _cand(source, kit, inst, label, link="", layer=""):
    return Candidate(source, kit, inst, layer, f"/x/{source}/{kit}/{inst}/{layer}.wav", label, "test", link=link)


def _kit(n_inst=6, labels=("kick", "snare")):
    """``n_inst`` instruments of each label in one Hydrogen kit, two velocity layers each."""
    return [_cand("hydrogen", "kit", f"{cls} {i}", cls, layer=str(j))
            for cls in labels for i in range(n_inst) for j in range(2)]


def test_a_shared_recording_joins_two_instruments_into_one_group():
    items = _kit()
    items += [_cand("lmms", "lmms", "one", "kick", link="/usr/share/shared.wav"),
              _cand("sonicpi", "sp", "two", "kick", link="/usr/share/shared.wav"),
              _cand("sonicpi", "sp", "three", "kick", link="/usr/share/other.wav")]
    a, b, c = len(items) - 3, len(items) - 2, len(items) - 1
    for seed in SEEDS:
        split, group = split_groups(items, seed=seed)
        assert group[a] == group[b] and split[a] == split[b], seed
        assert group[c] != group[a]  # a different recording in the same kit is its own group
    # the group key does not depend on the seed: it names the group's smallest (source, kit, instrument)
    assert len({tuple(split_groups(items, seed=s)[1]) for s in (0, 1, 2)}) == 1


def test_similarity_links_join_groups_transitively():
    items = _kit()
    kick3, kick5, snare0 = 6, 10, 12  # layer 0 of three instruments, of two classes
    assert items[snare0].label == "snare" and items[kick3].instrument == "kick 3"
    links = [(kick3, snare0), (snare0, kick5)]
    for seed in SEEDS:
        split, group = split_groups(items, seed=seed, links=links)
        joined = {i for i, it in enumerate(items) if it.instrument in ("kick 3", "kick 5", "snare 0")}
        assert len({group[i] for i in joined}) == 1 and len({split[i] for i in joined}) == 1, seed
        assert sum(g == group[kick3] for g in group) == len(joined) == 6  # and nothing else
    unlinked = split_groups(items, seed=0)[1]
    assert unlinked[kick3] != unlinked[snare0] != unlinked[kick5]


def test_train_only_items_go_to_train_and_leave_the_others_split_as_if_alone():
    real = _kit()
    synth_items = [_cand("drumsynth", "tr999", f"Kick {i}", "kick", link=f"ds{i}") for i in range(4)]
    items = real + synth_items
    links = [(0, len(real)), (len(real) + 1, len(real) + 2)]  # a cross-kind link (ignored here) and a synth pair
    for seed in (0, 1, 2):
        split, group = split_groups(items, seed=seed, links=links, train_only=("drumsynth",))
        alone_split, alone_group = split_groups(real, seed=seed)
        assert split[:len(real)] == alone_split and group[:len(real)] == alone_group
        assert split[len(real):] == ["train"] * 4
        assert group[len(real) + 1] == group[len(real) + 2] != group[len(real) + 3]
    assert {"val", "test"} <= set(split[:len(real)])


def test_train_only_conflicts_are_the_synthetic_clips_linked_to_val_or_test():
    items = [_cand("folder", "rec", "a", "kick"), _cand("folder", "rec", "b", "kick"),
             _cand("folder", "rec", "c", "kick"), _cand("drumsynth", "ds", "1", "kick"),
             _cand("drumsynth", "ds", "2", "kick"), _cand("drumsynth", "ds", "3", "kick"),
             _cand("drumsynth", "ds", "4", "kick")]
    split = ["test", "train", "val", "train", "train", "train", "train"]
    links = [(3, 0),  # DrumSynth 1 sounds like the test clip a: excluded
             (1, 4),  # DrumSynth 2 sounds like the train clip b: kept
             (5, 2),  # DrumSynth 3 sounds like the val clip c: excluded
             (6, 5),  # two DrumSynth clips alike: no conflict
             (0, 2)]  # two recordings alike (the split keeps them together anyway): no conflict
    assert train_only_conflicts(items, split, links, ("drumsynth",)) == {3: 0, 5: 2}
    assert train_only_conflicts(items, split, links, ()) == {}


# ---------------------------------------------------------------- through the build

def _stretch(x: np.ndarray, rate: float) -> np.ndarray:
    return np.interp(np.arange(0, x.size, rate), np.arange(x.size), x)


@pytest.fixture(scope="module")
def toms(tmp_path_factory):
    """Six toms, each in its own instrument folder; ``b`` is ``a`` played 1 % faster (a near-identical copy that
    is not a near duplicate), the rest are distinct toms."""
    root = tmp_path_factory.mktemp("toms")
    a = synth("tom", sr=SR, rng=np.random.default_rng(1))
    clips = {"a": a, "b": _stretch(a, 1.01)}
    for k, rate in enumerate((0.6, 0.75, 1.3, 1.6)):
        clips[f"x{k}"] = _stretch(synth("tom", sr=SR, rng=np.random.default_rng(10 + k)), rate)
    for name, x in clips.items():
        (root / f"tom_{name}").mkdir()
        sf.write(root / f"tom_{name}" / f"tom_{name}.wav", 0.8 * x / np.abs(x).max(), SR, subtype="PCM_16")
    prepared = np.stack([prepare_clip(x.astype(np.float32), N, SR, 10.0, name)[0] for name, x in clips.items()])
    fp = fingerprints(prepared, SR)
    corr = fp @ fp.T
    assert LINK_SIMILAR + 0.005 < corr[0, 1] < NEAR_DUPLICATE - 0.003  # between the two thresholds, with margin
    corr[0, 1] = corr[1, 0] = 0.0
    assert corr[~np.eye(len(clips), dtype=bool)].max() < LINK_SIMILAR - 0.01  # nothing else is linked
    return root


def _rows(out):
    return {json.loads(line)["instrument"]: json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()}


def test_near_identical_clips_of_two_instruments_land_in_one_split(toms, tmp_path):
    for seed in (0, 1):
        info = build_corpus(tmp_path / f"c{seed}", sources=(), folders=[toms], seed=seed, progress=False)
        rows = _rows(tmp_path / f"c{seed}")
        assert info["exclusions"] == [] and len(rows) == 6  # linked, not dropped
        a, b = rows["tom_a/tom_a"], rows["tom_b/tom_b"]
        assert a["group"] == b["group"] and a["split"] == b["split"]
        assert len({r["group"] for r in rows.values()}) == 5
    # with the link threshold above their correlation, they are two groups again
    build_corpus(tmp_path / "strict", sources=(), folders=[toms], link_threshold=0.996, progress=False)
    rows = _rows(tmp_path / "strict")
    assert rows["tom_a/tom_a"]["group"] != rows["tom_b/tom_b"]["group"]
    # and above the near-duplicate threshold's reach, one of them is dropped as a near duplicate
    info = build_corpus(tmp_path / "dedupe", sources=(), folders=[toms], near_threshold=0.99, progress=False)
    assert info["exclusion_counts"] == {"near duplicate": 1} and info["n_clips"] == 5


TOM_PRESET = """[General]
Tuning=0
Stretch=100
Level=0
Filter=0

[Tone]
On=1
Level=128
F1=220
F2=160
Droop=30
Phase=0
Envelope=0,100 3000,60 14000,0

[Noise]
On=0
Level=128
Slope=0
Envelope=0,100 22050,100 22050,0

[NoiseBand]
On=0
Level=128
F=2000
dF=20
Envelope=0,100 22050,100 22050,0
"""


def test_a_drumsynth_clip_like_a_held_out_recording_is_excluded(toms, tmp_path, monkeypatch):
    """A DrumSynth tom and a recording of it (played 2 % faster): linked. When the recording is held out (val or
    test) the synthesised clip would leak it into training, so it is excluded; when it trains, both stay."""
    from neuraldrum.data import build as build_mod
    from neuraldrum.data import sources as sources_mod
    from neuraldrum.data.drumsynth import drumsynth_presets

    presets = tmp_path / "drumsynth" / "tr999"
    presets.mkdir(parents=True)
    (presets / "Tom_hi.ds").write_text(TOM_PRESET)
    monkeypatch.setattr(sources_mod, "DRUMSYNTH_DIR", str(presets.parent))
    monkeypatch.setattr(build_mod, "available_sources",
                        lambda: {**dict.fromkeys(sources_mod.SOURCES, False), "drumsynth": True})
    (cand,) = list(drumsynth_presets(presets.parent))
    rendered = cand.load(SR, 60.0)
    recordings = tmp_path / "rec"
    for k in range(4):  # the distinct toms, and the recording of the DrumSynth tom
        (recordings / f"tom_x{k}").mkdir(parents=True)
        (recordings / f"tom_x{k}" / f"tom_x{k}.wav").write_bytes((toms / f"tom_x{k}" / f"tom_x{k}.wav").read_bytes())
    (recordings / "tom_copy").mkdir()
    copy = _stretch(rendered, 1.02)
    sf.write(recordings / "tom_copy" / "tom_copy.wav", 0.8 * copy / np.abs(copy).max(), SR, subtype="PCM_16")
    fp = fingerprints(np.stack([prepare_clip(x.astype(np.float32), N, SR, 10.0, "x")[0] for x in (rendered, copy)]), SR)
    assert LINK_SIMILAR + 0.005 < float(fp[0] @ fp[1]) < NEAR_DUPLICATE - 0.003

    seen = set()
    for seed in range(6):
        out = tmp_path / f"c{seed}"
        info = build_corpus(out, sources=(), folders=[recordings], extra_sources=("drumsynth",), seed=seed,
                            progress=False)
        rows = _rows(out)
        held = rows["tom_copy/tom_copy"]["split"]
        excluded = [e for e in info["exclusions"] if e["source"] == "drumsynth"]
        if held == "train":
            assert rows["Tom_hi"]["split"] == "train" and excluded == []
        else:
            assert "Tom_hi" not in rows
            assert [(e["instrument"], e["reason"]) for e in excluded] == [("Tom_hi", f"similar to a {held} clip")]
            assert excluded[0]["detail"] == f"linked to {rows['tom_copy/tom_copy']['id']}"
        seen.add(held == "train")
    assert seen == {True, False}  # both cases happened


# ---------------------------------------------------------------- the linking machinery, against brute force

def test_similar_pairs_are_every_pair_above_the_threshold_in_any_block_size():
    """Unit rows of ±1/4 in 16 dimensions: every correlation is a multiple of 1/8, exact in float32 whatever the
    order of the sums, so a pair exactly at the threshold is decided by the rule (strictly above), not by rounding."""
    rng = np.random.default_rng(0)
    signs = rng.choice([-1, 1], size=(8, 16))
    one_flip, two_flips = signs.copy(), signs.copy()
    one_flip[:, 0] *= -1  # correlation 7/8 with its original
    two_flips[:, :2] *= -1  # 3/4
    rows = np.concatenate([signs, one_flip, two_flips, rng.choice([-1, 1], size=(5, 16))])
    exact = rows @ rows.T  # integers: 16 × correlation
    expected = sorted(((i, j) for i in range(len(rows)) for j in range(i + 1, len(rows)) if exact[i, j] > 12),
                      key=lambda p: (p[1], p[0]))
    assert {(i, i + 8) for i in range(8)} <= set(expected) and not {(i, i + 16) for i in range(8)} & set(expected)
    fp = (rows / 4).astype(np.float32)
    for block in (1, 5, 7, 1024):
        got = similar_pairs(fp, 0.75, block=block)
        assert [(i, j) for i, j, _ in got] == expected, block
        assert all(s == exact[i, j] / 16 for i, j, s in got)


def test_near_duplicates_keep_the_first_and_drop_each_later_copy_once():
    pairs = [(0, 1, 0.999), (0, 2, 0.95), (1, 2, 0.9995), (3, 4, 0.9990), (2, 4, 0.9992), (0, 5, 0.997)]
    pairs.sort(key=lambda p: (p[1], p[0]))
    # 1 goes (copy of 0); 2 is a copy of 1, but 1 is gone, and 0 is not close enough: 2 stays; 4 copies both 3 and
    # 2 and is recorded against the closer; 5 sits exactly at the threshold: not above it, so it stays
    assert near_duplicates(pairs, 0.997) == {1: (0, 0.999), 4: (2, 0.9992)}


def test_fingerprints_shape_scale_and_chunks():
    rng = np.random.default_rng(1)
    clips = (rng.standard_normal((5, 22016)) * np.exp(-np.arange(22016) / 3000)).astype(np.float32)
    fp = fingerprints(clips, SR)
    n_frames = 1 + (22016 - 1024) // 512  # Hann 1024, hop 512
    # 32 log-spaced band edges from 30 Hz (ratio 1.203); bins are 21.5 Hz apart, so the first bin at or above each
    # edge is 2, 2, 3, 3, 3, 4, 5, 6, ...: the five lowest edges make two bands, 29 in all
    bands = 29
    assert fp.dtype == np.float32 and fp.shape == (5, n_frames * bands)
    assert np.allclose(np.linalg.norm(fp, axis=1), 1.0, atol=1e-5) and np.allclose(fp.mean(axis=1), 0, atol=1e-6)
    assert np.allclose(fingerprints(clips * 0.01, SR), fp, atol=1e-5)  # gain-free
    assert np.allclose(fingerprints(clips, SR, chunk=2), fp, atol=1e-6)  # chunking changes nothing
    silent_tail = clips.copy()
    silent_tail[:, 11000:] = 0.0  # -inf dB cells are floored 70 dB below the loudest: the result stays finite
    assert np.isfinite(fingerprints(silent_tail, SR)).all()


@pytest.mark.parametrize("cls,freq,why", [
    ("hh_closed", 100.0, "100% of the energy below 200 Hz"),
    ("cowbell", 100.0, "100% of the energy below 200 Hz"),
    ("hh_closed", 1000.0, "0.00% of the energy above 2000 Hz"),
    ("hh_closed", 2000.0, "0.00% of the energy above 2000 Hz"),  # at 2 kHz exactly is not above it
    ("cowbell", 1000.0, None),  # a cowbell needs no energy above 2 kHz
    ("hh_closed", 5000.0, None),
    ("kick", 100.0, None),  # no limits for the class
])
def test_implausible_spectra_against_pure_tones(cls, freq, why):
    t = np.arange(SR) / SR  # one second: every whole frequency is exactly a bin, 2 kHz included
    assert implausible(np.sin(2 * np.pi * freq * t).astype(np.float32), cls, SR) == why


def test_a_mix_at_the_limits():
    """40 % of the power below 200 Hz passes a hat's 50 % limit; 60 % does not (power adds for distinct tones)."""
    t = np.arange(22050) / SR
    for low_share, ok in ((0.4, True), (0.6, False)):
        x = np.sqrt(low_share) * np.sin(2 * np.pi * 100 * t) + np.sqrt(1 - low_share) * np.sin(2 * np.pi * 5000 * t)
        assert (implausible(x.astype(np.float32), "hh_open", SR) is None) == ok
