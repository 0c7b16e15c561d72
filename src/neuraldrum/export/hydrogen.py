"""A Hydrogen drum kit (``drumkit.xml``) for a kit's WAVs: one instrument per slot, one layer each.

Hydrogen (1.x) loads the folder holding ``drumkit.xml`` and the WAVs: copy it into
``~/.hydrogen/data/drumkits/``. Instruments are named so that a reader that labels by name (Hydrogen's users,
and neuraldrum's own corpus builder, :func:`neuraldrum.data.sources.hydrogen_kits`) gets each slot's class
back: the slot's name when it already says its class, else the class's usual name ("Closed Hi-Hat"). The
closed and open hats share a mute group, so a closed hat chokes a ringing open one. Each instrument's MIDI
note is the slot's General MIDI note.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Optional, Sequence

from ..taxonomy import NO_KEYWORD, classify_name

NAMESPACE = "http://www.hydrogen-music.org/drumkit"
# a name per class that the taxonomy's keyword rules read back as that class
CLASS_NAMES = {"kick": "Kick", "snare": "Snare", "clap": "Clap", "hh_closed": "Closed Hi-Hat",
               "hh_open": "Open Hi-Hat", "tom": "Tom", "ride": "Ride", "crash": "Crash", "rim": "Side Stick",
               "cowbell": "Cowbell", "shaker": "Shaker"}
HAT_MUTE_GROUP = {"hh_closed": 0, "hh_open": 0}  # Hydrogen: instruments of one mute group stop each other
FIRST_FREE_NOTE = 60


def instrument_names(slots: Sequence[tuple[str, str]]) -> list[str]:
    """A Hydrogen instrument name per (slot name, class): the slot's own when it names its class (and is not
    just the class's id), else the class's name, numbered when repeated ("Tom", "Tom 2")."""
    names, seen = [], {}
    for slot, cls in slots:
        if slot != cls and classify_name(slot)[0] == cls:  # "hh_closed" (a default slot) reads better as a name
            names.append(slot)
            continue
        base = CLASS_NAMES.get(cls, slot)
        seen[base] = seen.get(base, 0) + 1
        names.append(base if seen[base] == 1 else f"{base} {seen[base]}")
    return names


def _kit_name(name: str) -> str:
    """The kit's name, unless a reader would take it for a loop or guitar "kit" and skip it whole."""
    cls, reason = classify_name(name)
    return name if cls is not None or reason == NO_KEYWORD else "neuraldrum kit"


def drumkit_xml(slots: Sequence[tuple[str, str, str, Optional[int]]], name: str = "kit",
                info: str = "made by neuraldrum", author: str = "neuraldrum", license_: str = "") -> str:
    """The text of a Hydrogen ``drumkit.xml``.

    Args:
        slots: (slot name, class, WAV file name relative to the kit folder, MIDI note or None) per instrument;
            slots without a note get the first free notes from 60 up.
        name, info, author, license_: the kit's metadata.
    """
    ET.register_namespace("", NAMESPACE)
    root = ET.Element(f"{{{NAMESPACE}}}drumkit_info")

    def sub(parent: ET.Element, tag: str, text: object = None) -> ET.Element:
        el = ET.SubElement(parent, f"{{{NAMESPACE}}}{tag}")
        if text is not None:
            el.text = str(text)
        return el

    for tag, text in (("name", _kit_name(name)), ("author", author), ("info", info), ("license", license_),
                      ("image", ""), ("imageLicense", "")):  # Hydrogen 1.2's drumkit.xsd wants both, even empty
        sub(root, tag, text)
    comp = sub(sub(root, "componentList"), "drumkitComponent")
    for tag, text in (("id", 0), ("name", "Main"), ("volume", 1)):
        sub(comp, tag, text)
    used = {n for *_, n in slots if n is not None}
    free = iter(n for n in range(FIRST_FREE_NOTE, 128) if n not in used)
    instruments = sub(root, "instrumentList")
    names = instrument_names([(s[0], s[1]) for s in slots])
    for k, ((_, cls, file, note), inst_name) in enumerate(zip(slots, names)):
        note = note if note is not None else next(free, 127)
        inst = sub(instruments, "instrument")
        for tag, text in (("id", k), ("name", inst_name), ("volume", 1), ("isMuted", "false"),
                          ("isSoloed", "false"), ("pan_L", 1), ("pan_R", 1), ("pitchOffset", 0),
                          ("randomPitchFactor", 0), ("gain", 1), ("applyVelocity", "true"), ("filterActive", "false"),
                          ("filterCutoff", 1), ("filterResonance", 0), ("Attack", 0), ("Decay", 0), ("Sustain", 1),
                          ("Release", 1000), ("muteGroup", HAT_MUTE_GROUP.get(cls, -1)), ("midiOutChannel", -1),
                          ("midiOutNote", note), ("isStopNote", "false"), ("sampleSelectionAlgo", "VELOCITY"),
                          ("isHihat", -1), ("lower_cc", 0), ("higher_cc", 127), ("FX1Level", 0), ("FX2Level", 0),
                          ("FX3Level", 0), ("FX4Level", 0)):
            sub(inst, tag, text)
        ic = sub(inst, "instrumentComponent")
        sub(ic, "component_id", 0)
        sub(ic, "gain", 1)
        layer = sub(ic, "layer")
        for tag, text in (("filename", file), ("min", 0), ("max", 1), ("gain", 1), ("pitch", 0)):
            sub(layer, tag, text)
    ET.indent(root, " ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
