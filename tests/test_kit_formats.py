"""Kit formats for other tools: the SFZ instrument (GM keys, velocity curve, hat choke) and the Hydrogen drum kit,
written beside the WAVs and kit.json as one folder; the round trip through the corpus builder's Hydrogen reader
gives every slot its class back; the `kit --format` verb."""
import json
import xml.etree.ElementTree as ET
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf

from neuraldrum import cli
from neuraldrum.data.sources import hydrogen_kits
from neuraldrum.export import kits as kit_formats
from neuraldrum.export.hydrogen import CLASS_NAMES, drumkit_xml, instrument_names
from neuraldrum.export.kits import parse_formats, write_kit_formats
from neuraldrum.export.sfz import kit_sfz
from neuraldrum.kit import Kit, Slot, load_kit, new_kit
from neuraldrum.taxonomy import CLASSES, classify_name
from neuraldrum.voice import Controls, Voice

NS = "{http://www.hydrogen-music.org/drumkit}"


@pytest.fixture(scope="module")
def kit(engine):
    """Every class, plus slots whose names say nothing ("boom"), say another class ("snare_ghost" as a rim) or
    repeat a class (a second tom), and one without a note."""
    k = new_kit(engine, 1)
    extra = [Slot("boom", Voice("kick", seed=5), 35), Slot("snare_ghost", Voice("rim", seed=6), 75),
             Slot("tom_high", Voice("tom", seed=7, controls=Controls(x=0.5)), 50), Slot("low2", Voice("tom", seed=8))]
    return Kit(k.slots + extra, "my-kit", k.sample_rate, k.model, k.info).validate()


def test_sfz_keeps_its_signature_and_adds_the_hat_choke():
    plain = kit_sfz([("kick.wav", 36), ("x.wav", None)], "k")  # the web page's call
    assert "<region> sample=kick.wav key=36 pitch_keycenter=36\n" in plain and "group=" not in plain
    assert "sample=x.wav key=60" in plain and "amp_veltrack=100" in plain and "loop_mode=one_shot" in plain
    text = kit_sfz([("c.wav", 42), ("o.wav", 46), ("p.wav", 44)], "k", classes=["hh_closed", "hh_open", "hh_closed"])
    assert "sample=c.wav key=42 pitch_keycenter=42 group=2\n" in text
    assert "sample=o.wav key=46 pitch_keycenter=46 group=1 off_by=2 off_mode=fast\n" in text
    assert "sample=p.wav key=44 pitch_keycenter=44 group=2\n" in text
    with pytest.raises(ValueError, match="2 classes for 3 slots"):
        kit_sfz([("a", 1), ("b", 2), ("c", 3)], classes=["kick", "snare"])


def test_every_class_name_reads_back_as_its_class():
    for cls in CLASSES:
        assert classify_name(CLASS_NAMES[cls])[0] == cls, CLASS_NAMES[cls]
    assert instrument_names([("kick", "kick"), ("Fat Kick", "kick"), ("boom", "kick"), ("boom2", "kick"),
                             ("snare_ghost", "rim")]) == ["Kick", "Fat Kick", "Kick 2", "Kick 3", "Side Stick"]


def test_drumkit_xml_is_hydrogen_shaped():
    text = drumkit_xml([("kick", "kick", "kick.wav", 36), ("hh_open", "hh_open", "hh_open.wav", 46),
                        ("hh_closed", "hh_closed", "hh_closed.wav", 42), ("odd & <name>", "clap", "odd.wav", None)],
                       name="loop kit")  # "loop" would make a reader skip the whole kit
    root = ET.fromstring(text)
    assert root.tag == f"{NS}drumkit_info" and root.find(f"{NS}name").text == "neuraldrum kit"
    inst = root.find(f"{NS}instrumentList").findall(f"{NS}instrument")
    get = [{c.tag[len(NS):]: c.text for c in i} for i in inst]
    assert [g["name"] for g in get] == ["Kick", "Open Hi-Hat", "Closed Hi-Hat", "Clap"]
    assert [g["midiOutNote"] for g in get] == ["36", "46", "42", "60"]
    assert [g["muteGroup"] for g in get] == ["-1", "0", "0", "-1"]  # the hats choke each other
    layers = [i.find(f"{NS}instrumentComponent").find(f"{NS}layer").find(f"{NS}filename").text for i in inst]
    assert layers == ["kick.wav", "hh_open.wav", "hh_closed.wav", "odd.wav"]


def test_formats_parse():
    assert parse_formats("sfz") == ("wav", "sfz") and parse_formats(["hydrogen", "WAV"]) == ("wav", "hydrogen")
    with pytest.raises(ValueError, match="unknown kit format"):
        parse_formats("wav,mp3")


def test_kit_folder_in_every_format_round_trips_through_the_hydrogen_reader(engine, kit, tmp_path):
    out = write_kit_formats(engine, kit, tmp_path / "drumkits" / "mine", "wav,sfz,hydrogen")
    names = {p.name for p in out.iterdir()}
    assert {"kit.json", "kit.sfz", "drumkit.xml"} | {f"{s.name}.wav" for s in kit.slots} == names
    assert load_kit(out).to_dict()["slots"] == kit.to_dict()["slots"]  # kit.json remakes it (write_kit wrote it)
    found = list(hydrogen_kits([tmp_path / "drumkits"]))  # the corpus builder's reader
    assert [c.label for c in found] == [s.voice.cls for s in kit.slots], [(c.instrument, c.rule) for c in found]
    assert {c.kit for c in found} == {"my-kit"}
    x = found[0].load(engine.sample_rate, 10.0)
    y, sr = sf.read(out / "kick.wav", dtype="float32")
    assert sr == engine.sample_rate and np.allclose(x, y, atol=1e-6)
    sfz = (out / "kit.sfz").read_text()
    assert "sample=hh_open.wav key=46 pitch_keycenter=46 group=1 off_by=2" in sfz
    assert "sample=low2.wav key=60" in sfz  # the slot without a note gets the first free key


def test_export_is_all_or_nothing_and_refuses_other_folders(engine, kit, tmp_path, monkeypatch):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a kit"):
        write_kit_formats(engine, kit, tmp_path / "docs", "sfz")
    assert (tmp_path / "docs" / "notes.txt").read_text() == "mine"

    def broken(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(kit_formats, "drumkit_xml", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        write_kit_formats(engine, kit, tmp_path / "half", "hydrogen")
    assert not (tmp_path / "half").exists() and not [p for p in tmp_path.iterdir() if "half" in p.name]


def test_kit_verb_format(bundle_dir, tmp_path, capsys):
    out = tmp_path / "k"
    assert cli.main(["kit", "-o", str(out), "--seed", "2", "--model", str(bundle_dir), "--format",
                     "wav,sfz,hydrogen"]) == 0
    assert (out / "kit.sfz").is_file() and (out / "drumkit.xml").is_file() and (out / "kick.wav").is_file()
    assert cli.main(["kit", "-o", str(tmp_path / "w"), "--model", str(bundle_dir)]) == 0
    assert not (tmp_path / "w" / "kit.sfz").exists()  # wav only by default
    assert cli.main(["kit", "-o", str(tmp_path / "x"), "--model", str(bundle_dir), "--format", "mp3"]) == 1
    assert "unknown kit format" in capsys.readouterr().err
    edited = tmp_path / "edited.json"
    kit = Kit.from_dict(json.loads((out / "kit.json").read_text()))
    replace(kit, name="edited").save(edited)
    assert cli.main(["kit", "--from", str(edited), "-o", str(out), "--model", str(bundle_dir), "--format", "sfz"]) == 0
    assert (out / "kit.sfz").read_text().startswith("// edited:") and not (out / "drumkit.xml").exists()


def test_a_hat_sound_in_the_snare_slot_plays_as_the_snare(engine, tmp_path):
    """A slot named after a class keeps its role (key, choke group) whatever sound is put in it; a slot with a name
    of its own takes its sound's class."""
    k = new_kit(engine, 1, classes=["snare", "hh_open"])
    hat = Voice("hh_closed", seed=3)
    k = Kit([replace(k.slots[0], voice=hat), k.slots[1], Slot("tick", hat, None)], "roles", k.sample_rate,
            k.model, k.info).validate()
    sfz = (write_kit_formats(engine, k, tmp_path / "roles", "sfz") / "kit.sfz").read_text()
    regions = {line.split()[1]: line for line in sfz.splitlines() if line.startswith("<region>")}
    assert "key=38" in regions["sample=snare.wav"] and "group=" not in regions["sample=snare.wav"]
    assert "group=1 off_by=2" in regions["sample=hh_open.wav"]
    assert "group=2" in regions["sample=tick.wav"]
