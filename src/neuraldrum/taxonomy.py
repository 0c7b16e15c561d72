"""The drum taxonomy: class names, ordered keyword rules, and the General MIDI note maps.

This module is a data table. Rules are ordered and the first match wins, so specific names
("Tambourine Pedal", "Snr_snap", "Snare Rimshot") come before the generic keywords they contain.
The rules were written against the instrument, sample and file names of the Debian drum libraries
(Hydrogen kits, FluidR3 and AVL SoundFonts, LMMS and Sonic Pi samples); names are matched after
:func:`normalise_name` ("HiHatOpen-2.wav" → "hi hat open 2 wav").
"""
from __future__ import annotations

import re
from typing import Optional

CLASSES: tuple[str, ...] = (
    "kick", "snare", "clap", "hh_closed", "hh_open", "tom",
    "ride", "crash", "rim", "cowbell", "shaker",
)
CLASS_INDEX = {c: i for i, c in enumerate(CLASSES)}

# A rule's label is a class name, or "exclude: <reason>" for items that are not usable one-shots.
EXCLUDE = "exclude: "
NO_KEYWORD = "no class keyword"
HAND_DRUM = "hand drum (not in the 11 classes)"

_HAT = r"\b(hat|hats|hh|hihat|hihats)\b"

KEYWORD_RULES: list[tuple[str, str]] = [
    # not one-shots, or not drums
    (r"\bloops?\b|\bbeat\b|\bgroove\b|\bfill\b", EXCLUDE + "loop"),
    (r"\broll\b|\brolls\b|\bflam\b|\bdrag\b", EXCLUDE + "roll"),
    (r"whistle", EXCLUDE + "whistle"),
    (r"guiro|cuica|quica|vibra ?slap|ratchet", EXCLUDE + "non-drum percussion"),
    (r"\bzaps?\b|\blaser\b|\bscratch", EXCLUDE + "zap/fx"),
    (r"\bchoke|\bswish|\bswirl|\bscrape|\bbrush swirl", EXCLUDE + "choke/swish"),
    (r"\bstrums?\b|guitar|\bchord|\bbass ?line\b", EXCLUDE + "tonal"),
    (r"\breverse|\brev\b", EXCLUDE + "reversed"),
    # African ensemble bells (dununba/sangban/kenkeni bell) are struck iron bells: the cowbell family;
    # the drum heads of the same names are hand drums
    (r"(dununba|dundun|sangban|kenkeni)\w*( \d+)? bell", "cowbell"),
    (r"conga|tumba|bongo|djembe|tabla|cajon|timbale|darbuka|doumbek|\bdhol|dununba|dundun|sangban|"
     r"kenkeni|taiko|surdo", EXCLUDE + HAND_DRUM),
    (r"timpani|gong|glock|marimba|xylo|vibraphone|chime|bell tree|\bbells\b|sleigh|metronome|"
     r"castanet|orch ?crash|concert cymbal", EXCLUDE + "tonal/orchestral percussion"),
    # shakers first: "Tambourine Pedal" is a shaker, not a hat
    (r"tambourine|\btamb\b|shaker|maracas?|cabasa|\bshake\b", "shaker"),
    (r"cow ?bell|agogo|triangle", "cowbell"),
    # hats before cymbals: "drum_cymbal_closed" is a closed hat, "Crash/Ride Bell" a ride
    (r"open\w* " + r"(\w+ )?" + _HAT + r"|" + _HAT + r".*\b(open|opened|semiopen|op|free)\b|\bohh?\b|\bo ?hat\b|"
     r"cymbal open|\bhho\b|\bopen ?hat\b", "hh_open"),
    (r"(closed?|pedal|foot|tight)\w* (\w+ )?" + _HAT + r"|" + _HAT + r".*\b(closed?|pedal|foot|tight|cl|pd)\b|"
     r"cymbal (closed|pedal)|\bchh?\b|\bhhc\b|\bphh?\b", "hh_closed"),
    (r"\bhi ?hats?\b|" + _HAT, "hh_closed"),
    (r"\bride\b|\bcup\b|(paiste|sabian|zildjian|cymbal)\w* (\w+ )?bell", "ride"),
    (r"\bbell\b", EXCLUDE + "tonal/orchestral percussion"),
    (r"crash|crsh|china|splash|cymbal|\bcym\b|\bcy\b", "crash"),
    # a snare rimshot is a snare hit, not a rim click
    (r"snare\w* (\w+ )?rim|rimshot", "snare"),
    (r"\brim|side ?stick|sidestick|\bsticks?\b|claves?\b|\bclav\b|wood ?block|\bblock\b|\bwood\b", "rim"),
    (r"\bclaps?\b|handclap", "clap"),
    (r"snare|\bsnr\b|\bsn\b|\bsd\b", "snare"),
    (r"\bsnaps?\b|finger ?snap", "clap"),
    (r"\btoms?\b|\btt\b|\bft\b|floor ?tom|\bhtom\b|\bltom\b|\bmtom\b|\bflr\b", "tom"),
    (r"kick|\bbd\b|bass ?drum|drum bass|\bbass\b|\bkik\b|\bkck\b|\bbassdrum\b", "kick"),
]
_COMPILED = [(re.compile(p), label) for p, label in KEYWORD_RULES]

# A layer's file name may refine its instrument's class along these (instrument, file) pairs: Hydrogen kits
# put semi-open and open hat recordings on a "Pedal HH" and ride-cup hits on a "crash16inch" instrument.
# (Not the other way: "HH2_08.aiff" only says "hat", and the generic hat rule falls back to closed.)
REFINES: frozenset[tuple[str, str]] = frozenset({("hh_closed", "hh_open"), ("crash", "ride")})

# General MIDI percussion key map (channel 10), with two GM2 additions: 31 Sticks and 82 Shaker.
# Notes not listed are not in the taxonomy.
GM_NOTES: dict[int, str] = {
    31: "rim", 82: "shaker",
    35: "kick", 36: "kick",
    37: "rim", 75: "rim", 76: "rim", 77: "rim",
    38: "snare", 40: "snare",
    39: "clap",
    42: "hh_closed", 44: "hh_closed",
    46: "hh_open",
    41: "tom", 43: "tom", 45: "tom", 47: "tom", 48: "tom", 50: "tom",
    49: "crash", 52: "crash", 55: "crash", 57: "crash",
    51: "ride", 53: "ride", 59: "ride",
    54: "shaker", 69: "shaker", 70: "shaker",
    56: "cowbell", 67: "cowbell", 68: "cowbell", 80: "cowbell", 81: "cowbell",
}
GM_HAND_DRUMS = range(60, 67)

# The AVL drum kits (Black Pearl, Red Zeppelin): GM up to 47, then their own layout, read from the
# SoundFonts' sample names ("48-SabianRockHatSwis", "50-SabianAA16CrashCh", "60-Paiste2002-22").
AVL_NOTES: dict[int, str] = {
    **{n: c for n, c in GM_NOTES.items() if n <= 47},
    48: EXCLUDE + "choke/swish",  # hi-hat swish
    49: "crash",
    50: EXCLUDE + "choke/swish",  # crash choke
    51: "ride",
    52: EXCLUDE + "choke/swish",  # ride choke
    53: "ride",  # ride bell
    54: "shaker",  # tambourine
    55: "crash",  # splash
    56: "cowbell",
    57: "crash",
    58: EXCLUDE + "choke/swish",  # crash choke
    59: "ride",  # ride shank
    60: "crash",  # Paiste 2002 22"
    61: "shaker",  # maraca
}


# What a clip of a class must look like spectrally (checked on the prepared clip): at most ``max_low`` of
# its energy below LOW_HZ and at least ``min_high`` above HIGH_HZ. A "cymbal" with all its energy below
# 200 Hz is a mislabelled drum (rumpf's "cymbal 1", ElectricEmpire's "Hat Ring 2", Audiophob's "Cowbell").
LOW_HZ, HIGH_HZ = 200.0, 2000.0
SPECTRAL_LIMITS: dict[str, tuple[float, float]] = {  # class: (max_low, min_high)
    "hh_closed": (0.5, 0.005), "hh_open": (0.5, 0.005), "ride": (0.5, 0.005), "crash": (0.5, 0.005),
    "shaker": (0.5, 0.005), "cowbell": (0.5, 0.0),
}


def normalise_name(text: str) -> str:
    """Lower-case words: split CamelCase ("HatOpen" → "hat open", but not "tHAT"), letters from digits,
    and every non-alphanumeric run into one space."""
    text = re.sub(r"(?<=[a-z])(?=[A-Z][a-z])", " ", text)
    text = re.sub(r"(?<=[A-Za-z])(?=[0-9])|(?<=[0-9])(?=[A-Za-z])", " ", text)
    text = re.sub(r"[^0-9A-Za-z]+", " ", text)
    return " ".join(text.lower().split())


def classify_name(*names: str) -> tuple[Optional[str], str]:
    """Classify from one or more names (most specific first, e.g. instrument then file name).

    Returns ``(class, rule)`` on a match (rule: which keyword in which name), ``(None, reason)`` for an
    exclusion or no match (reason: :data:`NO_KEYWORD`).
    Each name is tried in turn; the first that matches any rule decides.
    """
    for name in names:
        if not name:
            continue
        norm = normalise_name(name)
        for rx, label in _COMPILED:
            m = rx.search(norm)
            if m:
                if label.startswith(EXCLUDE):
                    return None, label[len(EXCLUDE):]
                return label, f"keyword {m.group(0).strip()!r} in {name!r}"
    return None, NO_KEYWORD


def _from_table(table: dict[int, str], note: int, what: str) -> tuple[Optional[str], str]:
    label = table.get(note)
    if label is None:
        if note in GM_HAND_DRUMS:
            return None, HAND_DRUM
        return None, f"{what} note {note} not in the taxonomy"
    if label.startswith(EXCLUDE):
        return None, label[len(EXCLUDE):]
    return label, f"{what} note {note}"


def classify_gm_note(note: int) -> tuple[Optional[str], str]:
    """Class of a General MIDI percussion note, or ``(None, reason)``."""
    return _from_table(GM_NOTES, note, "GM")


def classify_avl_note(note: int) -> tuple[Optional[str], str]:
    """Class of a note of the AVL drum kits (GM-like up to 47), or ``(None, reason)``."""
    return _from_table(AVL_NOTES, note, "AVL")
