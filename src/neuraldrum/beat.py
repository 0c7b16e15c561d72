"""The beat a kit carries: the page's patterns and mixer, as two versioned sections of ``kit.json``.

::

    "patterns": {"version": 1, "tempo": 110, "swing": 0, "steps": 16, "chain": ["A", "A", "B"],
                 "patterns": {"A": {"kick": [127, 0, 0, 0, 100, ...], "snare": [...]}, "B": {...}}}
    "mixer":    {"version": 1, "slots": {"kick": {"level": 1, "pan": 0, "mute": false, "solo": false,
                                                  "choke": 0}, ...}}

A pattern row is one MIDI velocity per step (0: no hit; the page writes 100 for a hit and 127 for an accent);
``steps`` is 16 or 32; ``chain`` is the order the patterns play in (1–16 names among A, B, C, D). A mixer slot's
``level`` is a linear gain 0–1.5, ``pan`` −1 (left) … 1 (right), ``choke`` a group 0 (none) … 4: a hit cuts every
ringing sound of its group. Both sections name slots of the kit. The kit itself (:mod:`neuraldrum.kit`) ignores
them; ``neuraldrum kit --from`` checks them and keeps them in the kit it writes, the page reads them back, and
``neuraldrum render --kit kit.json`` plays the mixer (:mod:`neuraldrum.control.render`).
"""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Sequence, Union

from .atomic import write_text

PATTERNS_VERSION = MIXER_VERSION = 1
PATTERN_NAMES = ("A", "B", "C", "D")
STEP_COUNTS = (16, 32)
MAX_CHAIN = 16
CHOKE_GROUPS = 4
SECTIONS = ("patterns", "mixer")


def _num(v: Any, lo: float, hi: float, where: str, whole: bool = False) -> None:
    ok = isinstance(v, int) if whole else isinstance(v, (int, float))
    if isinstance(v, bool) or not ok or not lo <= v <= hi:
        raise ValueError(f"{where}: {json.dumps(v)} must be {'a whole number' if whole else 'a number'} "
                         f"from {lo:g} to {hi:g}")


def _version(d: Any, want: int, where: str) -> None:
    if not isinstance(d, dict):
        raise ValueError(f"{where}: must be an object")
    if d.get("version") != want:
        raise ValueError(f"{where}: version {d.get('version')!r} is not supported (this neuraldrum reads {want})")


def check_patterns(p: Any, slots: Sequence[str], where: str = "kit.json: patterns") -> dict:
    """The ``patterns`` section, checked against the kit's slot names; ValueError naming the field."""
    _version(p, PATTERNS_VERSION, where)
    extra = set(p) - {"version", "tempo", "swing", "steps", "chain", "patterns"}
    if extra:
        raise ValueError(f"{where}: unknown field(s) {sorted(extra)}")
    _num(p.get("tempo"), 40, 240, f"{where}.tempo")
    _num(p.get("swing"), 0, 100, f"{where}.swing")
    steps = p.get("steps")
    if steps not in STEP_COUNTS or isinstance(steps, bool):
        raise ValueError(f"{where}.steps: {json.dumps(steps)} must be 16 or 32")
    pats = p.get("patterns")
    if not isinstance(pats, dict) or not pats:
        raise ValueError(f"{where}.patterns: must be an object with at least one of {', '.join(PATTERN_NAMES)}")
    for name, rows in pats.items():
        w = f"{where}.patterns.{name}"
        if name not in PATTERN_NAMES:
            raise ValueError(f"{w}: a pattern is named {', '.join(PATTERN_NAMES)}")
        if not isinstance(rows, dict):
            raise ValueError(f"{w}: must be an object of slot name → velocities")
        for slot, vel in rows.items():
            if slot not in slots:
                raise ValueError(f"{w}.{slot}: the kit has no slot of that name")
            if not isinstance(vel, list) or len(vel) != steps:
                raise ValueError(f"{w}.{slot}: must be a list of {steps} velocities")
            for i, v in enumerate(vel):
                _num(v, 0, 127, f"{w}.{slot}[{i}]", whole=True)
    chain = p.get("chain")
    if not isinstance(chain, list) or not 1 <= len(chain) <= MAX_CHAIN:
        raise ValueError(f"{where}.chain: must be a list of 1 to {MAX_CHAIN} pattern names")
    for i, c in enumerate(chain):
        if c not in pats:
            raise ValueError(f"{where}.chain[{i}]: {json.dumps(c)} is not one of the patterns")
    return p


def check_mixer(m: Any, slots: Sequence[str], where: str = "kit.json: mixer") -> dict:
    """The ``mixer`` section, checked against the kit's slot names; ValueError naming the field."""
    _version(m, MIXER_VERSION, where)
    extra = set(m) - {"version", "slots"}
    if extra:
        raise ValueError(f"{where}: unknown field(s) {sorted(extra)}")
    rows = m.get("slots")
    if not isinstance(rows, dict):
        raise ValueError(f"{where}.slots: must be an object of slot name → settings")
    for slot, s in rows.items():
        w = f"{where}.slots.{slot}"
        if slot not in slots:
            raise ValueError(f"{w}: the kit has no slot of that name")
        if not isinstance(s, dict):
            raise ValueError(f"{w}: must be an object")
        for k, v in s.items():
            if k == "level":
                _num(v, 0, 1.5, f"{w}.level")
            elif k == "pan":
                _num(v, -1, 1, f"{w}.pan")
            elif k in ("mute", "solo"):
                if not isinstance(v, bool):
                    raise ValueError(f"{w}.{k}: {json.dumps(v)} must be true or false")
            elif k == "choke":
                _num(v, 0, CHOKE_GROUPS, f"{w}.choke", whole=True)
            else:
                raise ValueError(f"{w}: unknown field {k!r}")
    return m


def read_sections(d: Any, slots: Sequence[str], where: str = "kit.json") -> dict:
    """The beat sections a kit JSON object holds (``{}`` when none), each checked."""
    if not isinstance(d, dict):
        return {}
    out = {}
    if "patterns" in d:
        out["patterns"] = check_patterns(d["patterns"], slots, f"{where}: patterns")
    if "mixer" in d:
        out["mixer"] = check_mixer(d["mixer"], slots, f"{where}: mixer")
    return out


def load_sections(path: Union[str, Path], slots: Sequence[str]) -> dict:
    """The checked beat sections of a ``kit.json`` file or a kit folder holding one."""
    p = Path(path)
    p = p / "kit.json" if p.is_dir() else p
    return read_sections(json.loads(p.read_text(encoding="utf-8")), slots, str(p))


def add_sections(kit_json: Union[str, Path], sections: dict) -> Path:
    """Put ``sections`` into the written ``kit_json`` (replaced atomically: a reader sees the old file or the
    new one)."""
    p = Path(kit_json)
    if not sections:
        return p
    d = json.loads(p.read_text(encoding="utf-8"))
    d.update({k: sections[k] for k in SECTIONS if k in sections})
    return write_text(p, json.dumps(d, indent=1) + "\n")


MIDI_PPQ = 960  # ticks per quarter note: a sixteenth is 240 ticks
DRUM_CHANNEL = 9  # MIDI channel 10, counted from 0


def beat_midi(kit, patterns: dict) -> bytes:
    """The beat as a General MIDI file (type 0, drums on channel 10): the chain played once, each hit on its
    slot's note with its step's velocity, swing as the page plays it (every second sixteenth late by
    swing % of a triplet sixteenth). Notes and velocities only: every hit of the patterns is in it, muted or not;
    the mixer (level, pan, mute, solo, choke groups) stays in kit.json, where ``neuraldrum render --kit kit.json``
    applies it. Slots without a note are left out."""
    import mido

    names = [s.name for s in kit.slots]
    check_patterns(patterns, names)
    steps, bpm, swing = patterns["steps"], patterns["tempo"], patterns["swing"]
    six = MIDI_PPQ // 4
    late = round(swing / 100 * six / 3)
    events = []  # (tick, order, message)
    for c, name in enumerate(patterns["chain"]):
        rows = patterns["patterns"][name]
        for i in range(steps):
            t = (c * steps + i) * six + (late if i % 2 else 0)
            for slot in kit.slots:
                v = rows.get(slot.name, [0] * steps)[i]
                if not v or slot.note is None:
                    continue
                events.append((t, 1, mido.Message("note_on", note=slot.note, velocity=v, channel=DRUM_CHANNEL)))
                events.append((t + six // 2, 0, mido.Message("note_off", note=slot.note, velocity=0,
                                                            channel=DRUM_CHANNEL)))
    end = len(patterns["chain"]) * steps * six
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0)])
    now = 0
    for t, _, msg in sorted(events, key=lambda e: (e[0], e[1])):
        track.append(msg.copy(time=t - now))
        now = t
    track.append(mido.MetaMessage("end_of_track", time=max(0, end - now)))
    mid = mido.MidiFile(type=0, ticks_per_beat=MIDI_PPQ)
    mid.tracks.append(track)
    buf = io.BytesIO()
    mid.save(file=buf)
    return buf.getvalue()
