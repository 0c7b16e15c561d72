"""The DrumSynth preset renderer and source: parsing, DSP against answers known on paper, labels, variants,
the build integration (train-only, grouped variants) and, when LMMS is installed, the real presets."""
import json
import time
from pathlib import Path

import numpy as np
import pytest

from neuraldrum.cli import main
from neuraldrum.data import build as build_mod
from neuraldrum.data import sources as sources_mod
from neuraldrum.data.build import build_corpus, split_groups
from neuraldrum.data.drumsynth import (DrumSynthError, classify_preset, drumsynth_presets, parse_preset, read_preset,
                                       variant)
from neuraldrum.data.drumsynth_render import RATE, render
from neuraldrum.data.synth import write_sample_folder
from neuraldrum.taxonomy import CLASSES

LMMS_PRESETS = Path(sources_mod.DRUMSYNTH_DIR)

# DrumSynth 2 style: CRLF, a Latin-1 comment, decimals, every section
FULL = ("[General]\r\nVersion=DrumSynth v2.0\r\nComment=\xa92000 somebody\r\nTuning=-2.00\r\nStretch=150\r\n"
        "Level=-6\r\nFilter=1\r\nHighPass=1\r\nResonance=40\r\nFilterEnv=0,50 442000,100 443000,0\r\n\r\n"
        "[Tone]\r\nOn=1\r\nLevel=128\r\nF1=480\r\nF2=48\r\nDroop=59\r\nPhase=15\r\n"
        "Envelope=0,100 968,87 2160,49 12813,0\r\n\r\n"
        "[Noise]\r\nOn=0\r\nLevel=181\r\nSlope=-50\r\nEnvelope=0,100 1937,80 19890,0\r\nFixedSeq=1\r\n\r\n"
        "[Overtones]\r\nOn=1\r\nLevel=64\r\nF1=200.5\r\nWave1=3\r\nTrack1=1\r\nF2=125\r\nWave2=4\r\nTrack2=0\r\n"
        "Method=2\r\nParam=80\r\nEnvelope1=0,100 3750,30 7500,0\r\nEnvelope2=0,100 3000,30 6000,0\r\nFilter=0\r\n\r\n"
        "[NoiseBand]\r\nOn=1\r\nLevel=128\r\nF=630\r\ndF=50\r\nEnvelope=0,100 2250,30 4500,0\r\n\r\n"
        "[NoiseBand2]\r\nOn=0\r\nLevel=128\r\nF=1000\r\ndF=50\r\nEnvelope=0,100 100,30 200,0\r\n\r\n"
        "[Distortion]\r\nOn=1\r\nClipping=6\r\nBits=2\r\nRate=1\r\n")


def ds(*sections: str, general: str = "") -> str:
    """A preset with only the given sections switched on (DrumSynth 1 style: no [NoiseBand2]/[Distortion])."""
    text = "[General]\nTuning=0\nStretch=100\nLevel=0\nFilter=0\n" + general
    defaults = {"Tone": "Level=128\nF1=200\nF2=200\nDroop=0\nPhase=0\nEnvelope=0,100 22050,100 22050,0",
                "Noise": "Level=128\nSlope=0\nEnvelope=0,100 22050,100 22050,0",
                "NoiseBand": "Level=128\nF=2000\ndF=20\nEnvelope=0,100 22050,100 22050,0"}
    body = {name.split("\n", 1)[0]: name for name in sections}
    for name in ("Tone", "Noise", "NoiseBand"):
        text += f"\n[{name}]\nOn={int(name in body)}\n{defaults[name]}\n"
        if name in body and "\n" in body[name]:
            text += body[name].split("\n", 1)[1] + "\n"  # later keys override the defaults
    return text


def spectrum(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(frequencies, power) of a 44.1 kHz signal."""
    x = np.asarray(x, np.float64)
    return np.fft.rfftfreq(x.size, 1 / RATE), np.abs(np.fft.rfft(x * np.hanning(x.size))) ** 2


def zero_crossing_hz(x: np.ndarray, start: float, stop: float) -> float:
    seg = x[int(start * RATE): int(stop * RATE)]
    return np.count_nonzero(np.diff(np.signbit(seg))) / 2 / (stop - start)


# ---------------------------------------------------------------- parsing

def test_parse_hand_written_file(tmp_path):
    path = tmp_path / "Kick.ds"
    path.write_bytes(FULL.encode("latin-1"))
    p = read_preset(path)
    assert p.name == "Kick" and p.tuning == -2 and p.stretch == 1.5 and p.level_db == -6
    assert p.filter_on and p.highpass and p.resonance == pytest.approx(0.4)
    assert p.tone.on and (p.tone.f1, p.tone.f2, p.tone.phase) == (480, 48, 15) and p.tone.droop == pytest.approx(0.59)
    assert p.tone.gain == pytest.approx(1.0) and p.overtones.gain == pytest.approx(0.25)  # (Level/128)²
    assert p.tone.env.times == (0, 968, 2160, 12813) and p.tone.env.levels == pytest.approx((1, .87, .49, 0))
    assert not p.noise.on and p.noise.slope == pytest.approx(-0.5)
    ot = p.overtones
    assert (ot.f1, ot.wave1, ot.track1, ot.f2, ot.wave2, ot.track2, ot.method) == (200.5, 3, True, 125, 4, False, 2)
    assert p.band1.on and p.band1.freq == 630 and p.band1.width == pytest.approx(0.5) and not p.band2.on
    assert (p.distortion.on, p.distortion.clip_db, p.distortion.bits, p.distortion.rate) == (True, 6, 2, 1)
    assert p.duration() == pytest.approx(12813 * 1.5 / RATE)  # the longest enabled envelope, stretched
    x = render(p)
    assert x.dtype == np.float32 and x.size == round(12813 * 1.5) and np.all(np.isfinite(x))
    # DrumSynth 1 files lack sections and keys: defaults, sections off; a comma decimal separator is read
    old = parse_preset("[General]\nTuning=1,5\n[Tone]\nOn=1\nF1=100\n", "old.ds")
    assert old.tuning == 1.5 and old.stretch == 1.0 and not old.distortion.on and not old.band2.on
    assert old.tone.f2 == 50 and old.tone.env.levels == (1.0, 0.0)
    # envelope points out of order or out of range are sorted and clamped
    env = parse_preset("[Tone]\nOn=1\nEnvelope=500,50 0,120 1000,-3\n").tone.env
    assert env.times == (0, 500, 1000) and env.levels == (1.0, 0.5, 0.0)


@pytest.mark.parametrize("text, match", [
    ("[Tone]\nOn=1\nLevel=loud\n", r"\[tone\] Level='loud' is not a number"),
    ("[Tone]\nOn=1\nEnvelope=0,100 oops\n", "bad envelope point 'oops'"),
    ("just some text\n", "expected key=value"),
    ("[General]\nTuning=0\n", "not a DrumSynth preset"),
    ("[Tone\nOn=1\n", "unterminated section"),
    ("RIFF\0\0\0WAVE", "binary data"),
])
def test_malformed_file_names_itself(tmp_path, text, match):
    path = tmp_path / "broken_kick.ds"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(DrumSynthError, match=match) as e:
        read_preset(path)
    assert str(path) in str(e.value)


def test_source_skips_bad_files_with_a_reason(tmp_path):
    kit = tmp_path / "tr999"
    kit.mkdir()
    (kit / "Kick.ds").write_text("[Tone]\nOn=1\nF1=garbage\n")
    (kit / "Snare.ds").write_text(ds("Tone", "Noise"))
    (kit / "Laser_zap.ds").write_text("not even parsed: excluded by name")
    got = {c.instrument: c for c in drumsynth_presets(tmp_path)}
    assert got["Kick"].label is None and got["Kick"].rule.startswith("unreadable preset")
    assert "F1='garbage'" in got["Kick"].rule and build_mod._reason_category(got["Kick"].rule) == "unreadable preset"
    assert got["Laser_zap"].label is None and got["Laser_zap"].rule == "zap/fx"
    snare = got["Snare"]
    assert (snare.source, snare.kit, snare.label) == ("drumsynth", "tr999", "snare")
    x = snare.load(22050, 60.0)
    assert x.dtype == np.float32 and x.size == pytest.approx(22050 * 0.5, abs=2)  # resampled from 44.1 kHz


# ---------------------------------------------------------------- DSP

def test_tone_pitch_falls_from_f1_to_f2():
    p = parse_preset(ds("Tone\nF1=800\nF2=100\nDroop=50\nEnvelope=0,100 22050,100 22051,0"))
    x = render(p)
    early, late = zero_crossing_hz(x, 0.0, 0.01), zero_crossing_hz(x, 0.4, 0.5)
    assert 600 < early <= 800 and 90 < late < 130  # f = F2 + (F1 − F2)·g(t/T), g(1) = 0
    # Droop 0: a straight line from F1 to F2 over the envelope: halfway, halfway
    x = render(parse_preset(ds("Tone\nF1=800\nF2=100\nDroop=0\nEnvelope=0,100 22050,100 22051,0")))
    assert zero_crossing_hz(x, 0.24, 0.26) == pytest.approx(450, rel=0.1)


def test_noise_is_broadband_and_slope_tilts_it():
    f, pw = spectrum(render(parse_preset(ds("Noise"))))
    share = lambda lo, hi: pw[(f >= lo) & (f < hi)].sum() / pw.sum()  # noqa: E731
    for lo in (0, 5000, 10000, 15000):  # white: each 5 kHz band holds ≈ 5/22.05 of the power
        assert share(lo, lo + 5000) == pytest.approx(5000 / 22050, rel=0.1)
    centroid = {}
    for slope in (-100, 100):
        f, pw = spectrum(render(parse_preset(ds(f"Noise\nSlope={slope}"))))
        centroid[slope] = (f * pw).sum() / pw.sum()
    assert centroid[-100] < 4000 and centroid[100] > 11025  # white noise: 11025 Hz


@pytest.mark.parametrize("freq", [500.0, 2000.0, 8000.0])
def test_noise_band_is_centred_on_f(freq):
    x = render(parse_preset(ds(f"NoiseBand\nF={freq:g}\ndF=20")))
    f, pw = spectrum(x)
    assert (f * pw).sum() / pw.sum() == pytest.approx(freq, rel=0.05)
    inside = pw[(f > 0.8 * freq) & (f < 1.2 * freq)].sum() / pw.sum()  # the band: F ± dF·F/200 = F ± 10 %
    assert inside > 0.85
    pure = render(parse_preset(ds(f"NoiseBand\nF={freq:g}\ndF=0")))  # dF 0: a cosine at F
    f, pw = spectrum(pure)
    assert f[np.argmax(pw)] == pytest.approx(freq, abs=3)


def test_envelope_points_shape_the_amplitude():
    env = "Envelope=0,100 4410,100 8820,50 13230,25 17640,0"  # 100 % until 0.1 s, 50 % at 0.2 s, 25 % at 0.3 s
    x = np.abs(render(parse_preset(ds(f"Tone\nF1=1000\nF2=1000\n{env}"))))
    level = lambda t: x[int((t - 0.002) * RATE): int((t + 0.002) * RATE)].max()  # noqa: E731 (peak over 4 ms)
    assert [level(t) for t in (0.05, 0.2, 0.3)] == pytest.approx([1.0, 0.5, 0.25], abs=0.02)
    assert level(0.15) == pytest.approx(0.75, abs=0.02)  # linear between points
    assert x.size == 17640 and x[-50:].max() < 0.01
    stretched = render(parse_preset(ds(f"Tone\nF1=1000\nF2=1000\n{env}", general="Stretch=200\n")))
    assert stretched.size == 2 * 17640  # Stretch scales every envelope's time axis


def test_distortion_bits_reduce_distinct_values():
    clean = render(parse_preset(ds("Tone\nF1=440\nF2=440")))
    crushed = render(parse_preset(ds("Tone\nF1=440\nF2=440") + "[Distortion]\nOn=1\nClipping=0\nBits=6\nRate=0\n"))
    assert np.unique(clean).size > 1000 and np.unique(crushed).size <= 2 ** (16 - 2 * 6) + 1
    held = render(parse_preset(ds("Tone\nF1=440\nF2=440") + "[Distortion]\nOn=1\nClipping=0\nBits=0\nRate=3\n"))
    blocks = held[: held.size // 8 * 8].reshape(-1, 8)
    assert np.all(blocks == blocks[:, :1]) and np.unique(blocks[:, 0]).size > 100  # Rate 3: each sample held 8 times


def test_filter_envelope_sets_the_cutoff():
    lp = render(parse_preset(ds("Noise", general="Filter=1\nHighPass=0\nFilterEnv=0,20 442000,20\n")))
    hp = render(parse_preset(ds("Noise", general="Filter=1\nHighPass=1\nFilterEnv=0,20 442000,20\n")))
    fc = RATE / np.pi * np.arcsin(0.2 / 2)  # ≈ 1.4 kHz
    f, pw = spectrum(lp)
    assert pw[f > 4 * fc].sum() / pw.sum() < 0.02  # 2 poles: -24 dB at 4·fc
    f, pw = spectrum(hp)
    assert pw[f < fc / 2].sum() / pw.sum() < 0.01


# ---------------------------------------------------------------- labels and variants

@pytest.mark.parametrize("kit, stem, label", [
    ("tr808", "Hat_o", "hh_open"), ("tr909", "Hat-c2", "hh_closed"), ("electro", "K_8bit", "kick"),
    ("r_n_b", "s_spit", "snare"), ("misc_bass", "jarre_bass_drum", "kick"), ("misc_hats", "sleepy_1", "hh_closed"),
    ("misc_hats", "threshold_noise_open", "hh_open"), ("linn", "linn_clp", "clap"), ("tr808", "Rimshot", "rim"),
    ("tr808", "Snr_snap", "snare"), ("latin", "Tamb_hit", "shaker"), ("tr808", "Cowbell", "cowbell"),
    ("misc", "simple-k", "kick"), ("misc_hats", "oh_so_high_hat", "hh_closed"),
    ("misc_bass", "synthbass", None), ("ferraro", "worm_bass", None), ("effects", "Gunshot", None),
    ("instrument", "E_Piano", None), ("latin", "Conga", None), ("latin", "guiro", None), ("magnetboy", "Tone3", None),
    ("r_n_b", "snare&hat", None),
])
def test_labels(kit, stem, label):
    assert classify_preset(kit, stem)[0] == label


def test_variants_are_reproducible_and_differ(tmp_path):
    kit = tmp_path / "tr999"
    kit.mkdir()
    (kit / "Kick.ds").write_text(FULL)
    (kit / "Hat_c.ds").write_text(ds("Noise\nEnvelope=0,100 2000,0", "NoiseBand\nF=9000"))
    p = read_preset(kit / "Kick.ds", name="tr999/Kick")
    assert variant(p, 1, 0) == variant(p, 1, 0) and variant(p, 1, 0) != variant(p, 2, 0) != variant(p, 2, 1)
    v = variant(p, 1, 0)
    assert abs(v.tuning - p.tuning) <= 2 and 0.8 <= v.stretch / p.stretch <= 1.25
    assert 0.85 <= v.band1.freq / p.band1.freq <= 1.15 and 0.85 <= v.cutoff_scale <= 1.15
    a, b, orig = render(v), render(variant(p, 1, 0)), render(p)
    assert np.array_equal(a, b) and (a.size != orig.size or not np.allclose(a, orig, atol=1e-3))
    first = list(drumsynth_presets(tmp_path, variants=3, seed=7))
    again = list(drumsynth_presets(tmp_path, variants=3, seed=7))
    other = list(drumsynth_presets(tmp_path, variants=3, seed=8))
    assert len(first) == 8 and [c.id for c in first] == [c.id for c in again]
    assert len({c.id for c in first}) == 8 and not {c.id for c in first[1:4]} & {c.id for c in other}
    assert all(np.array_equal(c.load(22050, 60.0), d.load(22050, 60.0)) for c, d in zip(first, again))
    kicks = [c for c in first if c.instrument == "Kick"]
    assert [c.layer for c in kicks] == ["", "variant 1", "variant 2", "variant 3"]
    assert len({c.group for c in kicks}) == 1 and len({c.link for c in kicks}) == 1
    # variants never straddle splits, even when DrumSynth clips are split like recordings
    many = [c for i in range(12) for c in (first if i == 0 else [
        c.__class__(**{**c.__dict__, "instrument": f"{c.instrument}{i}", "link": f"{c.link}{i}"}) for c in first])]
    split, group = split_groups(many, seed=0)
    by_preset: dict = {}
    for c, s in zip(many, split):
        by_preset.setdefault(c.group, set()).add(s)
    assert all(len(s) == 1 for s in by_preset.values()) and {"val", "test"} & set(split)
    assert set(split_groups(many, seed=0, train_only=("drumsynth",))[0]) == {"train"}


# ---------------------------------------------------------------- the build

@pytest.fixture
def drumsynth_dir(tmp_path, monkeypatch):
    """Six tiny presets in two kits, installed as the drumsynth source (and the libraries uninstalled)."""
    root = tmp_path / "drumsynth"
    for kit, name, text in [
        ("tr999", "Kick", ds("Tone\nF1=300\nF2=50\nDroop=60\nEnvelope=0,100 8000,30 20000,0")),
        ("tr999", "Snare", ds("Tone\nF1=250\nF2=180\nEnvelope=0,100 4000,0", "Noise\nEnvelope=0,100 6000,0")),
        ("tr999", "Hat_c", ds("Noise\nSlope=80\nEnvelope=0,100 2000,0", "NoiseBand\nF=9000\nEnvelope=0,60 2500,0")),
        ("tr999", "Hat_o", ds("Noise\nSlope=80\nEnvelope=0,100 15000,0")),
        ("misc_fx", "Laser", ds("Tone\nF1=2000\nF2=100")),
        ("tr998", "Tom_hi", ds("Tone\nF1=220\nF2=160\nDroop=30\nEnvelope=0,100 3000,60 14000,0")),
    ]:
        (root / kit).mkdir(parents=True, exist_ok=True)
        (root / kit / f"{name}.ds").write_text(text)
    monkeypatch.setattr(sources_mod, "DRUMSYNTH_DIR", str(root))
    monkeypatch.setattr(build_mod, "available_sources", lambda: {**dict.fromkeys(sources_mod.SOURCES, False),
                                                                 "drumsynth": True})
    return root


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    root = tmp_path_factory.mktemp("recordings")
    write_sample_folder(root, per_class=3, seed=3)
    return root


def _rows(out):
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def test_build_with_drumsynth_keeps_the_recordings_split(tmp_path, drumsynth_dir, recordings):
    base = build_corpus(tmp_path / "base", sources=(), folders=[recordings], progress=False)
    info = build_corpus(tmp_path / "with", sources=(), folders=[recordings], extra_sources=("drumsynth",),
                        drumsynth_variants=2, progress=False)
    rows = _rows(tmp_path / "with")
    ds_rows = [r for r in rows if r["source"] == "drumsynth"]
    assert {r["split"] for r in ds_rows} == {"train"} and len(ds_rows) >= 12  # 5 presets × 3, less near duplicates
    assert info["exclusion_counts"].get("zap/fx") == 1 and info["options"]["train_only_sources"] == ["drumsynth"]
    assert [(r["id"], r["split"], r["group"]) for r in _rows(tmp_path / "base")] == \
        [(r["id"], r["split"], r["group"]) for r in rows if r["source"] != "drumsynth"]
    assert base["n_clips"] + len(ds_rows) == info["n_clips"]
    assert {r["layer"] for r in ds_rows} <= {"", "variant 1", "variant 2"}
    with pytest.raises(ValueError, match="needs the drumsynth source"):
        build_corpus(tmp_path / "bad", sources=(), folders=[recordings], drumsynth_variants=1, progress=False)


def test_cli_drumsynth_flags(tmp_path, drumsynth_dir, recordings, capsys):
    out = tmp_path / "c"
    args = ["data", "build", "--out", str(out), "--folder", str(recordings), "--sources", "none", "--no-progress"]
    assert main(args + ["--drumsynth-variants", "1", "--drumsynth-seed", "5"]) == 0  # variants imply the source
    assert "drumsynth" in capsys.readouterr().out
    opts = json.loads((out / "build.json").read_text())["options"]
    assert opts["sources"] == ["drumsynth"] and (opts["drumsynth_variants"], opts["drumsynth_seed"]) == (1, 5)
    assert main(args + ["--with-drumsynth", "--drumsynth-in-eval"]) == 0
    assert json.loads((out / "build.json").read_text())["options"]["train_only_sources"] == []
    assert main(["data", "build", "--out", str(tmp_path / "d"), "--sources", "drumsynth", "--no-progress"]) == 0
    assert {r["split"] for r in _rows(tmp_path / "d")} == {"train"}
    assert main(args + ["--drumsynth-variants", "-1"]) == 1


# ---------------------------------------------------------------- the real presets

# Per-class intent, measured on the 764 LMMS presets (388 labelled) with this renderer: medians over a class
# (measured values in brackets; the thresholds leave a margin):
#   kick      spectral centroid < 250 Hz [87]; ≥ 80 % of those lasting ≥ 0.15 s fall in pitch from the first
#             30 ms to 50–150 ms [93 % of 76]
#   tom       centroid < 500 Hz [190]
#   snare     centroid 1.5–7 kHz [4.2 k]           clap  centroid 1.5–7 kHz [3.9 k]
#   hh_closed share of energy above 5 kHz > 75 % [95 %]; decays 20 dB within 0.12 s [0.055 s]
#   hh_open   above 5 kHz > 75 % [97 %]; rings more than twice as long as the closed hats [0.27 s]
#   ride, crash, shaker: above 5 kHz > 70 % [94, 94, 98 %]
#   every class: at least 8 presets [fewest: cowbell, 10]
INTENT = {"kick": {"centroid": (0, 250)}, "tom": {"centroid": (0, 500)}, "snare": {"centroid": (1500, 7000)},
          "clap": {"centroid": (1500, 7000)}, "hh_closed": {"high": (0.75, 1), "decay": (0, 0.12)},
          "hh_open": {"high": (0.75, 1)}, "ride": {"high": (0.7, 1)}, "crash": {"high": (0.7, 1)},
          "shaker": {"high": (0.7, 1)}}


def features(x: np.ndarray) -> dict:
    """Centroid (Hz), share of energy above 5 kHz, time to decay 20 dB below the energy peak (s), and the
    ratio of the dominant frequency (< 1.5 kHz) at 50–150 ms to that in the first 30 ms, after the onset."""
    x = np.asarray(x, np.float64)
    x = x[int(np.argmax(np.abs(x) > np.abs(x).max() * 10 ** (-36 / 20))):][:RATE]
    f, pw = spectrum(x)
    energy = np.convolve(x ** 2, np.ones(441) / 441, "same")
    decay = (energy.size - np.argmax(energy[::-1] > energy.max() * 0.01)) / RATE

    def dominant(a, b):
        seg = x[int(a * RATE): int(b * RATE)]
        spec = np.abs(np.fft.rfft(seg * np.hanning(seg.size), 1 << 15))
        ff = np.fft.rfftfreq(1 << 15, 1 / RATE)
        spec[(ff > 1500) | (ff < 20)] = 0
        return ff[np.argmax(spec)]

    fall = dominant(0.05, 0.15) / dominant(0.0, 0.03) if x.size > 0.15 * RATE else np.nan
    return {"centroid": (f * pw).sum() / pw.sum(), "high": pw[f > 5000].sum() / pw.sum(), "decay": decay,
            "fall": fall}


@pytest.mark.corpus
@pytest.mark.skipif(not LMMS_PRESETS.is_dir(), reason=f"no DrumSynth presets at {LMMS_PRESETS} (apt-get install "
                                                      "lmms-common)")
def test_real_presets_sound_like_their_class():
    t0 = time.time()
    cands = list(drumsynth_presets(LMMS_PRESETS))
    feats: dict = {c: [] for c in CLASSES}
    for c in cands:
        if c.label is not None:
            feats[c.label].append(features(render(read_preset(c.path))))
    elapsed = time.time() - t0
    counts = {c: len(v) for c, v in feats.items()}
    print(f"\n{len(cands)} DrumSynth presets, {sum(counts.values())} labelled, rendered in {elapsed:.1f} s:",
          ", ".join(f"{c} {n}" for c, n in counts.items()))
    assert len(cands) > 700 and sum(counts.values()) > 350 and min(counts.values()) >= 8, counts
    for cls, checks in INTENT.items():
        for key, (lo, hi) in checks.items():
            value = float(np.median([f[key] for f in feats[cls]]))
            print(f"  {cls:10s} median {key:8s} {value:9.3f}  (want {lo:g}..{hi:g})")
            assert lo <= value <= hi, (cls, key, value)
    falls = np.array([f["fall"] for f in feats["kick"]])
    falls = falls[np.isfinite(falls)]  # kicks that last 0.15 s or more
    print(f"  kicks falling in pitch: {np.mean(falls < 0.95):.0%} of {falls.size}")
    assert falls.size > 50 and np.mean(falls < 0.95) >= 0.8, np.mean(falls < 0.95)
    decay = {c: float(np.median([f["decay"] for f in feats[c]])) for c in ("hh_closed", "hh_open")}
    print(f"  median decay to -20 dB: {decay}")
    assert decay["hh_open"] > 2 * decay["hh_closed"], decay
