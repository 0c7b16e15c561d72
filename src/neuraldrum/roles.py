"""A kit slot's role: the instrument it stands for on the kit, which can differ from the class of its sound.

A slot named after a class (``snare``) keeps that role whatever sound is put in it: a closed-hat sound in the
``snare`` slot still plays on the snare's key and in no hi-hat choke group. A slot with a name of its own
(``boom``) takes its role from its sound's class. Every player of a kit (the page's pads and sequencer, the MIDI
renderer, the SFZ and Hydrogen exports) chokes by role, so they all agree — except where the kit's ``mixer`` section
(:mod:`neuraldrum.beat`) gives choke groups: then the page, ``kit.sfz`` and the MIDI renderer choke by those
groups (a slot it leaves out: the hats' roles in group 1, the others in none).
"""
from __future__ import annotations

from typing import Sequence

from .taxonomy import CLASSES

# role → the roles whose ringing sounds it cuts (a hi-hat is one instrument: it cannot be open and closed)
CHOKES: dict[str, frozenset] = {"hh_closed": frozenset({"hh_open"}), "hh_open": frozenset({"hh_open"})}


def slot_role(name: str, cls: str, classes: Sequence[str] = CLASSES) -> str:
    """The role of a slot called ``name`` holding a sound of class ``cls``, among the model's ``classes``."""
    return name if name in classes else cls


def kit_roles(kit, classes: Sequence[str] = CLASSES) -> list[str]:
    """Each slot's role, in order."""
    return [slot_role(s.name, s.voice.cls, classes) for s in kit.slots]
