"""The taxonomy's ordered rules on the names that trip naive keyword matching, and the note maps."""
import pytest

from neuraldrum.taxonomy import (AVL_NOTES, CLASS_INDEX, CLASSES, EXCLUDE, GM_NOTES, NO_KEYWORD, classify_avl_note,
                                 classify_gm_note, classify_name, normalise_name)


@pytest.mark.parametrize("name, expected", [
    # first match wins: the specific name before the generic keyword it contains
    ("Tambourine Pedal (Pearl PTM-10GH)", "shaker"),
    ("Snr_snap", "snare"),
    ("Pearl Snare Rimshot", "snare"),
    ("SnareOffRim-0.wav", "snare"),
    ("Rim Click (Pearl Free Floating Maple 14x3.5)", "rim"),
    ("Crash/Ride Bell (Paiste Rude Crash/Ride 18\")", "ride"),
    ("Paiste Bell", "ride"),
    ("BellRide(L)", "ride"),
    ("Cow Bell(L)", "cowbell"),
    ("Dununba1 Bell", "cowbell"),
    ("drum_cymbal_closed", "hh_closed"),
    ("drum_cymbal_pedal", "hh_closed"),
    ("drum_cymbal_open", "hh_open"),
    ("drum_cymbal_hard", "crash"),
    ("Hi-Hat Semiopen (Paiste Alpha Metal edge 14\")", "hh_open"),
    ("Hi-Hat Pedal (Paiste Alpha Metal edge 14\")", "hh_closed"),
    ("Hi Hat Free", "hh_open"),
    ("HiHatOpen-2.wav", "hh_open"),
    ("Hat Op Dirty", "hh_open"),
    ("Side OHH", "hh_open"),
    ("Hi Hat Closed", "hh_closed"),
    ("Hat Ring 1", "hh_closed"),
    ("Finger Snaps", "clap"),
    ("perc_snap", "clap"),
    ("Hand Clap", "clap"),
    ("drum_bass_hard", "kick"),
    ("c3 - bass drum 1", "kick"),
    ("Kick (Tama Superstar 22\")", "kick"),
    ("Crsh 1(L)", "crash"),
    ("Flr Studio(L)", "tom"),
    ("clav01", "rim"),
    ("Sticks(L)", "rim"),
    ("Woodblock Hi", "rim"),
    ("Agogo Low", "cowbell"),
    ("elec_triangle", "cowbell"),
    ("Maracas(L)", "shaker"),
])
def test_names_classify(name, expected):
    cls, rule = classify_name(name)
    assert cls == expected, (name, cls, rule)
    assert "keyword" in rule and repr(name) in rule  # the rule names what matched where


@pytest.mark.parametrize("name, reason", [
    ("tHAT", NO_KEYWORD),  # not a hat: CamelCase splitting must not cut "tHAT" into "t hat"
    ("wHAT", NO_KEYWORD),
    ("Sabian Hat Choke", "choke/swish"),
    ("Sabian Hat Swish", "choke/swish"),
    ("Brush Swirl(L)", "choke/swish"),
    ("Snare Roll", "roll"),
    ("loop_amen", "loop"),
    ("Djembe1 Bass", "hand drum (not in the 11 classes)"),
    ("Sangban1 Head Hit", "hand drum (not in the 11 classes)"),
    ("Timpani 3(L)", "tonal/orchestral percussion"),
    ("Orchcrash(L)", "tonal/orchestral percussion"),
    ("perc_bell", "tonal/orchestral percussion"),
    ("Quica Hi", "non-drum percussion"),
    ("Amajor_DOWN_00", NO_KEYWORD),
    ("belofilms.com - AC-Guitar-Strums (flac)", "tonal"),
    ("Zap 1", "zap/fx"),
])
def test_exclusions(name, reason):
    assert classify_name(name) == (None, reason)


def test_names_are_tried_in_order():
    assert classify_name("", "kick_01")[0] == "kick"
    assert classify_name("Snare", "HH_01")[0] == "snare"  # the instrument decides before the file
    assert classify_name("17", "emptySample") == (None, NO_KEYWORD)
    assert classify_name() == (None, NO_KEYWORD)


@pytest.mark.parametrize("cls", CLASSES)
def test_every_class_name_names_its_class(cls):
    """Sample folders named after the classes ("hh_open/hh_open_0.wav") label themselves."""
    assert classify_name(f"{cls}_0")[0] == cls


def test_normalise_name():
    assert normalise_name("HiHatOpen-2.wav") == "hi hat open 2 wav"
    assert normalise_name("tHAT") == "that"
    assert normalise_name("  Snr__snap ") == "snr snap"


@pytest.mark.parametrize("note, expected", [
    (35, "kick"), (36, "kick"), (37, "rim"), (38, "snare"), (39, "clap"), (40, "snare"), (42, "hh_closed"),
    (44, "hh_closed"), (46, "hh_open"), (41, "tom"), (50, "tom"), (49, "crash"), (52, "crash"), (51, "ride"),
    (53, "ride"), (54, "shaker"), (56, "cowbell"), (75, "rim"), (80, "cowbell"), (31, "rim"), (82, "shaker"),
])
def test_gm_notes(note, expected):
    cls, rule = classify_gm_note(note)
    assert cls == expected and str(note) in rule


def test_gm_notes_outside_the_taxonomy():
    assert classify_gm_note(62) == (None, "hand drum (not in the 11 classes)")
    cls, reason = classify_gm_note(58)  # vibraslap
    assert cls is None and "58" in reason


@pytest.mark.parametrize("note, expected", [(36, "kick"), (46, "hh_open"), (49, "crash"), (53, "ride"),
                                            (60, "crash"), (61, "shaker"), (48, None), (50, None), (52, None),
                                            (58, None)])
def test_avl_notes(note, expected):
    """AVL kits follow GM up to 47; above it swishes and chokes sit where GM has toms and cymbals."""
    assert classify_avl_note(note)[0] == expected


def test_tables_are_consistent():
    assert all(c in CLASS_INDEX for c in GM_NOTES.values())
    assert all(c in CLASS_INDEX or c.startswith(EXCLUDE) for c in AVL_NOTES.values())
    assert [CLASS_INDEX[c] for c in CLASSES] == list(range(len(CLASSES)))
