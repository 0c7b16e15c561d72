"""The beat sections of kit.json (patterns, mixer): checked with the field named, kept by ``kit --from``."""
import json

import pytest

from neuraldrum import cli
from neuraldrum.beat import check_mixer, check_patterns, read_sections

SLOTS = ["kick", "snare", "hh_closed"]


def beat(steps=16):
    row = lambda *on: [127 if i == 0 else 100 if i in on else 0 for i in range(steps)]  # noqa: E731
    return {"version": 1, "tempo": 96, "swing": 20, "steps": steps, "chain": ["A", "A", "B"],
            "patterns": {"A": {"kick": row(8), "snare": [0] * steps}, "B": {"hh_closed": row(2, 4, 6)}}}


def mixer():
    return {"version": 1, "slots": {"snare": {"level": 0.5, "pan": -1, "mute": False, "solo": True, "choke": 2}}}


def test_good_sections_pass_whole():
    assert check_patterns(beat(32), SLOTS) == beat(32) and check_mixer(mixer(), SLOTS) == mixer()
    assert read_sections({"slots": [], "patterns": beat(), "mixer": mixer()}, SLOTS) == {"patterns": beat(),
                                                                                         "mixer": mixer()}
    assert read_sections({"slots": []}, SLOTS) == {}


@pytest.mark.parametrize("edit, field", [
    (lambda p: p.update(version=2), "patterns: version 2 is not supported"),
    (lambda p: p.update(steps=12), "patterns.steps: 12 must be 16 or 32"),
    (lambda p: p.update(tempo=300), "patterns.tempo: 300"),
    (lambda p: p["patterns"]["A"]["kick"].__setitem__(3, 128), "patterns.patterns.A.kick[3]: 128"),
    (lambda p: p["patterns"]["A"]["kick"].pop(), "patterns.patterns.A.kick: must be a list of 16"),
    (lambda p: p["patterns"]["A"].update(cowbell=[0] * 16), "patterns.patterns.A.cowbell: the kit has no slot"),
    (lambda p: p["patterns"].update(E={}), "patterns.patterns.E: a pattern is named A, B, C, D"),
    (lambda p: p.update(chain=["A", "C"]), "patterns.chain[1]: \"C\" is not one of the patterns"),
    (lambda p: p.update(chain=[]), "patterns.chain: must be a list of 1 to 16"),
])
def test_bad_patterns_name_the_file_and_field(edit, field):
    p = beat()
    edit(p)
    with pytest.raises(ValueError, match="^my.json: " + field.replace("[", r"\[").replace("]", r"\]")):
        read_sections({"patterns": p}, SLOTS, "my.json")


@pytest.mark.parametrize("slot, msg", [({"pan": 3}, "mixer.slots.snare.pan: 3"),
                                       ({"mute": 1}, "mixer.slots.snare.mute: 1 must be true or false"),
                                       ({"choke": 1.5}, "mixer.slots.snare.choke: 1.5 must be a whole number"),
                                       ({"gain": 1}, "mixer.slots.snare: unknown field 'gain'")])
def test_bad_mixer_names_the_field(slot, msg):
    with pytest.raises(ValueError, match="^kit.json: " + msg):
        check_mixer({"version": 1, "slots": {"snare": slot}}, SLOTS)


def test_kit_from_keeps_the_beat(bundle_dir, tmp_path, capsys):
    out = tmp_path / "k"
    assert cli.main(["kit", "-o", str(out), "--seed", "2", "--model", str(bundle_dir)]) == 0
    d = json.loads((out / "kit.json").read_text())
    names = [s["name"] for s in d["slots"]]
    d["patterns"] = {"version": 1, "tempo": 120, "swing": 0, "steps": 32, "chain": ["B"],
                     "patterns": {"B": {names[0]: [100, 0] * 16}}}
    d["mixer"] = {"version": 1, "slots": {names[1]: {"level": 0.25, "choke": 3}}}
    src = tmp_path / "mine.json"
    src.write_text(json.dumps(d))
    again = tmp_path / "again"
    assert cli.main(["kit", "--from", str(src), "-o", str(again), "--model", str(bundle_dir), "--format",
                     "wav,sfz"]) == 0
    e = json.loads((again / "kit.json").read_text())
    assert e["patterns"] == d["patterns"] and e["mixer"] == d["mixer"]
    d["patterns"]["steps"] = 8
    src.write_text(json.dumps(d))
    assert cli.main(["kit", "--from", str(src), "-o", str(tmp_path / "bad"), "--model", str(bundle_dir)]) == 1
    assert f"{src}: patterns.steps: 8 must be 16 or 32" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
