"""The corpus builder's parsers never die on bad input: hypothesis throws arbitrary bytes and truncated or mutated
valid files at the Hydrogen ``drumkit.xml`` reader, the SoundFont 2 reader and the DrumSynth ``.ds`` reader.

The property for each: the file yields candidates (labelled, or excluded with a reason that names the trouble)
or raises the parser's own error naming the file; never another exception, and every name a candidate carries
is JSON-safe UTF-8. A preset that parses renders to a finite float32 mono clip of bounded length, or raises
:class:`AudioError`.
"""
import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from neuraldrum.audio.io import AudioError
from neuraldrum.data.drumsynth import DrumSynthError, drumsynth_presets, read_preset
from neuraldrum.data.drumsynth_render import RENDER_SECONDS, render_clip
from neuraldrum.data.soundfont import SF2, SoundFontError, sample_names, velocity_layers
from neuraldrum.data.sources import hydrogen_kits, soundfont_kits
from neuraldrum.taxonomy import CLASSES

hyp = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

FUZZ = settings(max_examples=80, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
SR = 22050


def damaged(seed: bytes):
    """A strategy: ``seed`` cut at any point and with a few bytes overwritten."""
    return st.builds(_damage, st.just(seed), st.integers(0, len(seed)),
                     st.lists(st.tuples(st.integers(0, len(seed)), st.integers(0, 255)), max_size=8))


def _damage(seed: bytes, cut: int, flips: list) -> bytes:
    b = bytearray(seed)
    for pos, value in flips:
        b[pos % len(b)] = value
    return bytes(b[:cut])


def _check_candidates(cands: list) -> None:
    for c in cands:
        assert c.label is None or c.label in CLASSES
        assert c.label is not None or c.rule  # an exclusion says why
        fields = {"id": c.id, "kit": c.kit, "instrument": c.instrument, "layer": c.layer, "path": c.path,
                  "rule": c.rule}
        json.dumps(fields, ensure_ascii=False).encode("utf-8")  # strict: no surrogates anywhere


# ---------------------------------------------------------------- Hydrogen drumkit.xml

KIT_XML = b"""<?xml version="1.0" encoding="UTF-8"?>
<drumkit_info xmlns="http://www.hydrogen-music.org/drumkit"><name>Fuzz Kit</name><instrumentList>
 <instrument><name>Kick</name>
  <layer><filename>k1.wav</filename><min>0</min><max>0.5</max></layer>
  <layer><filename>k2.wav</filename><min>0.5</min><max>1</max></layer></instrument>
 <instrument><name>Snare</name><filename>sn.wav</filename></instrument>
 <instrument><name>Open Hat</name><layer><filename>/abs/oh.wav</filename><max>1</max></layer></instrument>
</instrumentList></drumkit_info>"""
BOMB = b"""<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;"><!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>
<drumkit_info><name>&lol4;</name><instrumentList><instrument><name>Kick</name><filename>k1.wav</filename>
</instrument></instrumentList></drumkit_info>"""
XXE = b"""<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<drumkit_info><name>&x;</name></drumkit_info>"""


@pytest.fixture(scope="module")
def kit_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("kits")
    kit = root / "Fuzz"
    kit.mkdir()
    t = np.arange(SR // 2) / SR
    sf.write(str(kit / "k1.wav"), 0.5 * np.sin(2 * np.pi * 60 * t) * np.exp(-8 * t), SR)
    return root


def _hydrogen(root: Path, data: bytes) -> list:
    (root / "Fuzz" / "drumkit.xml").write_bytes(data)
    cands = list(hydrogen_kits([root]))
    _check_candidates(cands)
    for c in cands[:4]:  # loading a listed layer: audio or an AudioError, whatever the file name says
        if c.load is not None:
            try:
                x = c.load(SR, 2.0)
                assert x.dtype == np.float32 and x.ndim == 1 and np.all(np.isfinite(x))
            except AudioError:
                pass
    return cands


def test_hydrogen_seed_and_hostile_xml(kit_dir):
    good = _hydrogen(kit_dir, KIT_XML)
    assert [c.label for c in good] == ["kick", "kick", "snare", "hh_open"]
    for hostile in (BOMB, XXE, b"", b"\xff\xfe<x/>", b"<a>" * 10000, b"<?xml version=\"\" encoding=\"U\"?>"):
        (bad,) = _hydrogen(kit_dir, hostile)
        assert bad.label is None and bad.rule.startswith("unreadable drumkit.xml"), bad.rule


def test_hydrogen_kit_reads_only_its_own_folder(kit_dir, tmp_path):
    """A downloaded kit must not pull other files into a corpus: "..", absolute names and links out of the kit
    folder are excluded (an absolute name is looked up by its base name inside the kit)."""
    secret = tmp_path / "secret.wav"
    sf.write(str(secret), 0.5 * np.ones(SR // 4), SR)
    (kit_dir / "Fuzz" / "out.wav").unlink(missing_ok=True)
    (kit_dir / "Fuzz" / "out.wav").symlink_to(secret)
    names = [os.path.relpath(secret, kit_dir / "Fuzz"), str(secret), "out.wav", "/elsewhere/k1.wav"]
    body = "".join(f"<instrument><name>Kick {i}</name><layer><filename>{n}</filename></layer></instrument>"
                   for i, n in enumerate(names))
    cands = _hydrogen(kit_dir, f"<drumkit_info><name>Fuzz</name><instrumentList>{body}</instrumentList>"
                               f"</drumkit_info>".encode())
    by_name = {c.instrument: c for c in cands}
    assert by_name["Kick 0"].label is None and by_name["Kick 0"].rule == "file outside the kit folder"  # ../
    assert by_name["Kick 2"].label is None and by_name["Kick 2"].rule == "file outside the kit folder"  # link
    assert by_name["Kick 1"].path.endswith("Fuzz/secret.wav")  # absolute: its base name in the kit (missing)
    assert by_name["Kick 3"].label == "kick" and by_name["Kick 3"].path.endswith("Fuzz/k1.wav")
    assert len(by_name["Kick 3"].load(SR, 2.0)) > 0
    (kit_dir / "Fuzz" / "out.wav").unlink()


@FUZZ
@given(data=st.one_of(st.binary(max_size=2048), damaged(KIT_XML)))
def test_hydrogen_any_bytes(kit_dir, data):
    _hydrogen(kit_dir, data)


_xml_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), max_size=40)


@FUZZ
@given(kit=_xml_text, rows=st.lists(st.tuples(_xml_text, _xml_text, _xml_text), max_size=5))
def test_hydrogen_any_names_and_numbers(kit_dir, kit, rows):
    """Well-formed XML with arbitrary instrument names, file names (absolute, "..", huge) and velocities."""
    from xml.sax.saxutils import escape

    body = "".join(f"<instrument><name>{escape(n)}</name><layer><filename>{escape(f)}</filename>"
                   f"<max>{escape(v)}</max></layer></instrument>" for n, f, v in rows)
    text = f"<drumkit_info><name>{escape(kit)}</name><instrumentList>{body}</instrumentList></drumkit_info>"
    cands = _hydrogen(kit_dir, text.encode("utf-8"))
    assert all(c.velocity is None or 0 <= c.velocity <= 127 for c in cands)


# ---------------------------------------------------------------- SoundFont 2

def _chunk(cid: bytes, data: bytes) -> bytes:
    return cid + struct.pack("<I", len(data)) + data + b"\0" * (len(data) & 1)


def tiny_sf2() -> bytes:
    """A SoundFont 2 with one bank-128 kit ("Standard") that plays sample 0 on keys 35–36 and sample 1 on key 38
    (velocity 0–63) or sample 2 (64–127): the tables only, which is all that the reader parses."""
    name = lambda s: s.encode().ljust(20, b"\0")  # noqa: E731
    phdr = (struct.pack("<20sHHHIII", name("Standard"), 0, 128, 0, 0, 0, 0)
            + struct.pack("<20sHHHIII", name("EOP"), 0, 0, 1, 0, 0, 0))
    pbag = struct.pack("<HH", 0, 0) + struct.pack("<HH", 1, 0)
    pgen = struct.pack("<Hh", 41, 0) + struct.pack("<Hh", 0, 0)
    inst = struct.pack("<20sH", name("Kit"), 0) + struct.pack("<20sH", name("EOI"), 3)
    ibag = b"".join(struct.pack("<HH", g, 0) for g in (0, 2, 5, 8))
    kr = lambda lo, hi: struct.pack("<Hh", 43, lo | hi << 8)  # noqa: E731
    vr = lambda lo, hi: struct.pack("<Hh", 44, lo | hi << 8)  # noqa: E731
    igen = (kr(35, 36) + struct.pack("<Hh", 53, 0) + kr(38, 38) + vr(0, 63) + struct.pack("<Hh", 53, 1)
            + kr(38, 38) + vr(64, 127) + struct.pack("<Hh", 53, 2))
    shdr = b"".join(struct.pack("<20sIIIIIBbHH", name(n), 0, 10, 0, 10, 44100, 60, 0, 0, 1)
                    for n in ("Std Kick", "Snare Soft", "Snare Hard", "EOS"))
    pdta = b"pdta" + b"".join(_chunk(c, d) for c, d in [(b"phdr", phdr), (b"pbag", pbag), (b"pmod", b""),
                                                          (b"pgen", pgen), (b"inst", inst), (b"ibag", ibag),
                                                          (b"imod", b""), (b"igen", igen), (b"shdr", shdr)])
    body = b"sfbk" + _chunk(b"LIST", b"INFO" + _chunk(b"ifil", struct.pack("<HH", 2, 1))) + _chunk(b"LIST", pdta)
    return b"RIFF" + struct.pack("<I", len(body)) + body


SF2_SEED = tiny_sf2()


def _read_sf2(path: Path) -> None:
    """Every table query the builder makes, on a file that parsed."""
    font = SF2(path)
    for _, bank, prog in font.presets():
        for key in range(128):
            zones = font.zones(bank, prog, key)
            sample_names(zones)
            velocity_layers(zones)


def test_sf2_seed_reads(tmp_path):
    path = tmp_path / "tiny.sf2"
    path.write_bytes(SF2_SEED)
    font = SF2(path)
    assert font.presets() == [("Standard", 128, 0)]
    assert [z.name for z in font.zones(128, 0, 36)] == ["Std Kick"] and font.zones(128, 0, 37) == []
    assert [(v, [z.name for z in zs]) for v, zs in velocity_layers(font.zones(128, 0, 38))] == [
        (63, ["Snare Soft"]), (127, ["Snare Hard"])]


@pytest.mark.parametrize("data, match", [
    (b"", "cut short"), (b"RIFF\0\0\0\0WAVE", "not a SoundFont 2"),
    (SF2_SEED.replace(b"shdr", b"shdx"), r"lacks \['shdr'\]"),
    (SF2_SEED.replace(struct.pack("<Hh", 53, 2), struct.pack("<Hh", 53, 9)), "igen table points past"),
    (SF2_SEED.replace(struct.pack("<Hh", 41, 0), struct.pack("<Hh", 41, -1)), "pgen table points past"),
])
def test_sf2_errors_name_the_file(tmp_path, data, match):
    path = tmp_path / "broken.sf2"
    path.write_bytes(data)
    with pytest.raises(SoundFontError, match=match) as e:
        SF2(path)
    assert str(path) in str(e.value)


@FUZZ
@given(data=st.one_of(st.binary(max_size=1024), damaged(SF2_SEED)))
def test_sf2_any_bytes(tmp_path, data):
    path = tmp_path / "FluidR3_GM.sf2"
    path.write_bytes(data)
    try:
        _read_sf2(path)
    except SoundFontError as e:
        assert str(path) in str(e) and e.reason
    cands = list(soundfont_kits([tmp_path]))  # the source: never raises, a broken font is one exclusion
    _check_candidates(cands)


def test_sf2_source_excludes_a_broken_font(tmp_path):
    (tmp_path / "FluidR3_GM.sf2").write_bytes(SF2_SEED[:100])
    (bad,) = list(soundfont_kits([tmp_path]))
    assert bad.label is None and bad.rule.startswith("unreadable SoundFont (")
    (tmp_path / "FluidR3_GM.sf2").write_bytes(SF2_SEED)
    got = [(c.instrument, c.layer, c.label) for c in soundfont_kits([tmp_path]) if c.label]
    assert ("36 Std Kick", "1/1", "kick") in got and ("38 Snare Hard + Snare Soft", "2/2", "snare") in got


# ---------------------------------------------------------------- DrumSynth .ds

DS_SEED = (b"[General]\r\nVersion=DrumSynth v2.0\r\nComment=\xa91997 Paul Kellett\r\nTuning=-2\r\nStretch=150\r\n"
           b"Level=-6\r\nFilter=1\r\nHighPass=0\r\nResonance=40\r\nFilterEnv=0,50 2000,80 442000,100\r\n\r\n"
           b"[Tone]\r\nOn=1\r\nLevel=128\r\nF1=480\r\nF2=48\r\nDroop=59\r\nPhase=15\r\n"
           b"Envelope=0,100 968,87 2160,49 12813,0\r\n\r\n[Noise]\r\nOn=1\r\nLevel=90\r\nSlope=-50\r\n"
           b"Envelope=0,100 500,0\r\n\r\n[Overtones]\r\nOn=1\r\nLevel=64\r\nF1=200.5\r\nWave1=3\r\nTrack1=1\r\n"
           b"F2=125\r\nWave2=4\r\nTrack2=0\r\nMethod=2\r\nParam=50\r\nEnvelope1=0,100 3000,0\r\n"
           b"Envelope2=0,100 1000,0\r\n\r\n[NoiseBand]\r\nOn=1\r\nLevel=128\r\nF=630\r\ndF=50\r\n"
           b"Envelope=0,100 2250,30 4500,0\r\n\r\n[Distortion]\r\nOn=1\r\nClipping=6\r\nBits=2\r\nRate=1\r\n")
_NUMBERS = [b"0", b"-1", b"1e308", b"-1e308", b"1e-308", b"99999999", b"nan", b"inf", b"", b"1,5", b"0x10",
            b"442000", b"-442000", b"181", b"1_000"]


def _check_preset(path: Path) -> None:
    try:
        preset = read_preset(path)
    except DrumSynthError as e:
        assert str(path) in str(e) and e.reason
        return
    try:
        x = render_clip(preset, SR, RENDER_SECONDS)
    except AudioError as e:
        assert e.reason
        return
    assert x.dtype == np.float32 and x.ndim == 1 and x.size <= RENDER_SECONDS * SR + 64 and np.all(np.isfinite(x))


@FUZZ
@given(data=st.one_of(st.binary(max_size=1024), damaged(DS_SEED)))
def test_ds_any_bytes(tmp_path, data):
    (tmp_path / "Kick.ds").write_bytes(data)
    _check_preset(tmp_path / "Kick.ds")


@FUZZ
@given(values=st.lists(st.tuples(st.integers(0, 200), st.sampled_from(_NUMBERS)), min_size=1, max_size=8))
def test_ds_any_numbers(tmp_path, values):
    """Every value of the seed preset replaced, some at a time, by extreme or malformed numbers."""
    lines = DS_SEED.split(b"\r\n")
    keys = [i for i, ln in enumerate(lines) if b"=" in ln]
    for i, number in values:
        k = keys[i % len(keys)]
        lines[k] = lines[k].split(b"=", 1)[0] + b"=" + number
    path = tmp_path / "Kick.ds"
    path.write_bytes(b"\r\n".join(lines))
    _check_preset(path)


def test_ds_source_never_raises(tmp_path):
    kit = tmp_path / "kit"
    kit.mkdir()
    for i, data in enumerate((b"", b"\0\1\2", DS_SEED[:57], DS_SEED.replace(b"F1=480", b"F1=1e999"), DS_SEED)):
        (kit / f"Kick_{i}.ds").write_bytes(data)
    (kit / "Kick_dir.ds").mkdir()  # a folder with the suffix is not a preset
    got = {c.instrument: c for c in drumsynth_presets(tmp_path)}
    _check_candidates(list(got.values()))
    assert set(got) == {f"Kick_{i}" for i in range(5)}
    assert [got[f"Kick_{i}"].label for i in range(5)] == [None, None, None, None, "kick"]
    assert all(got[f"Kick_{i}"].rule.startswith("unreadable preset") for i in range(4))
