"""MIDI in, drum machine events out (pure: no ports, no sound card, no model).

:class:`DrumMachine` takes ``mido`` messages and says what to do:

- a note plays a kit slot (:class:`Hit`): the slot's own note, else any General MIDI drum note of the slot's
  class (35 plays the kick on 36; the six GM toms play the tom slot tuned a few semitones apart);
  velocity → gain ``(velocity / 127) ** 2`` (the SFZ default curve, as :class:`~neuraldrum.sampler.SamplerControls`);
- a closed hat chokes a ringing open hat, and an open hat the one before it (:data:`CHOKES`), by the slots' roles
  (:mod:`neuraldrum.roles`: a closed-hat sound in the ``snare`` slot plays as the snare);
- a kit's mixer (the ``mixer`` section of kit.json, :mod:`neuraldrum.beat`), when given, sets each slot's level (a
  gain on top of velocity's), pan, mute and solo, and replaces the role chokes by its choke groups: a hit of group
  g cuts every ringing sound of group g (the page's rule; a slot the mixer leaves out has the page's defaults);
- a control change moves the pad (x, y, fine) of the last slot hit (:data:`DEFAULT_CC`, configurable):
  a :class:`Render` of the slot's new voice, which the transport renders in the background while notes go on
  playing the old sound, then hands back with :meth:`DrumMachine.set_wave`;
- a program change asks for another kit (:class:`SelectKit`).

Notes never wait for the model: every sound is rendered before it is played. The live player
(:mod:`.live`) and the offline renderer (:mod:`.render`) are thin loops around this class.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Optional, Sequence, Union

import numpy as np

from ..audio.io import resample
from ..kit import Kit
from ..roles import CHOKES, slot_role
from ..sampler import SamplerControls, apply_sampler
from ..taxonomy import GM_NOTES
from ..voice import Controls, Voice

# General Purpose Controllers 1–3 move the pad of the last slot hit
DEFAULT_CC: dict[int, str] = {16: "x", 17: "y", 18: "fine"}
CC_TARGETS = ("x", "y", "fine")
# the GM toms, low floor to high, as semitones on one tom sound
TOM_STEPS: dict[int, float] = {41: -5.0, 43: -3.0, 45: 0.0, 47: 2.0, 48: 4.0, 50: 6.0}
DRUM_CHANNEL = 9  # MIDI channel 10, counted from 0 as mido does


@dataclass(frozen=True)
class Key:
    """What a note plays: a slot, tuned by ``tune`` semitones."""

    slot: int
    tune: float = 0.0


@dataclass(frozen=True)
class Hit:
    """Play ``key`` at ``gain`` and ``pan``; ``group`` is its choke group (the slot's role, or its mixer group),
    ``chokes`` the groups it cuts. A hit that is not ``audible`` (muted, or another slot soloed) plays nothing
    and cuts nothing."""

    key: Key
    gain: float
    group: Optional[str]
    chokes: frozenset
    pan: float = 0.0
    audible: bool = True


@dataclass(frozen=True)
class Render:
    """Render slot ``slot``'s new ``voice`` and hand it back with :meth:`DrumMachine.set_wave`."""

    slot: int
    voice: Voice


@dataclass(frozen=True)
class SelectKit:
    """Switch to the kit of MIDI program ``program`` (0–127)."""

    program: int


Event = Union[Hit, Render, SelectKit]


def cc_value(value: int) -> float:
    """A controller value 0..127 → a pad position in [-1, 1] (64 is the centre)."""
    return float(min(1.0, max(-1.0, (value - 64) / 63.0)))


def parse_cc_map(text: str) -> dict[int, str]:
    """"x=16,y=17,fine=18" → {16: "x", 17: "y", 18: "fine"}; ValueError naming the problem."""
    out: dict[int, str] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        target, _, number = part.partition("=")
        target = target.strip()
        if target not in CC_TARGETS or not number.strip().isdigit() or not 0 <= int(number) <= 127:
            raise ValueError(f"--cc {part!r}: use TARGET=CC with TARGET one of {', '.join(CC_TARGETS)} and "
                             "CC a controller number 0..127 (e.g. x=16,y=17,fine=18)")
        if int(number) in out:
            raise ValueError(f"--cc: controller {int(number)} given twice")
        out[int(number)] = target
    return out


def key_map(kit: Kit) -> dict[int, Key]:
    """Note → :class:`Key` for a kit: each slot's own note, then every GM drum note of a class that has a slot
    (its first slot; toms tuned by :data:`TOM_STEPS` relative to that slot's note)."""
    keys: dict[int, Key] = {}
    for k, s in enumerate(kit.slots):
        if s.note is not None and s.note not in keys:
            keys[s.note] = Key(k)
    first: dict[str, int] = {}
    for k, s in enumerate(kit.slots):
        first.setdefault(s.voice.cls, k)
    for note, cls in GM_NOTES.items():
        if note in keys or cls not in first:
            continue
        k = first[cls]
        tune = 0.0
        if cls == "tom" and note in TOM_STEPS:
            tune = TOM_STEPS[note] - TOM_STEPS.get(kit.slots[k].note, 0.0)
            tune = max(-12.0, min(12.0, tune))
        keys[note] = Key(k, tune)
    return keys


HAT_ROLES = ("hh_open", "hh_closed")  # the mixer's default choke group 1, as the page's


def mixer_settings(kit: Kit, mixer: Optional[dict]) -> Optional[list[dict]]:
    """Each slot's mixer settings (level, pan, choke, audible), the page's defaults filling what ``mixer`` (a
    checked ``mixer`` section) leaves out; None without a mixer."""
    if mixer is None:
        return None
    rows = mixer.get("slots", {})
    solo = any(r.get("solo") for r in rows.values())
    out = []
    for s in kit.slots:
        r = rows.get(s.name, {})
        role = slot_role(s.name, s.voice.cls)
        out.append({"level": float(r.get("level", 1.0)), "pan": float(r.get("pan", 0.0)),
                    "choke": int(r.get("choke", 1 if role in HAT_ROLES else 0)),
                    "audible": not r.get("mute", False) and (bool(r.get("solo")) or not solo)})
    return out


def pans_off_centre(mixer: Optional[dict]) -> bool:
    """Whether a mixer section pans any slot off the centre (a render of it is stereo)."""
    return any(r.get("pan", 0) != 0 for r in (mixer or {}).get("slots", {}).values())


class DrumMachine:
    """The drum machine's state and rules: the kit, each slot's current voice and ready sounds, the last slot hit.

    Args:
        kit: the kit to play.
        sample_rate_in: the rate sounds arrive at (the model's).
        sample_rate_out: the rate they are played at (the sound card's, the output file's).
        cc_map: controller number → "x", "y" or "fine".
        channel: the MIDI channel (0–15) listened to, None for all.
    """

    def __init__(self, kit: Kit, sample_rate_in: int, sample_rate_out: Optional[int] = None,
                 cc_map: Optional[dict[int, str]] = None, channel: Optional[int] = None):
        if channel is not None and not (isinstance(channel, int) and 0 <= channel <= 15):
            raise ValueError(f"channel={channel!r} must be 0..15 (MIDI channels 1..16) or None for all")
        self.sample_rate_in = int(sample_rate_in)
        self.sample_rate_out = int(sample_rate_out or sample_rate_in)
        self.cc_map = dict(DEFAULT_CC if cc_map is None else cc_map)
        self.channel = channel
        self.load_kit(kit)

    def load_kit(self, kit: Kit, waves: Optional[Sequence[np.ndarray]] = None,
                 mixer: Optional[dict] = None) -> None:
        """Play ``kit`` from now on; ``waves`` (one per slot, at the input rate) makes it playable at once;
        ``mixer`` is the kit's checked ``mixer`` section (None: no mixer, the role chokes)."""
        self.kit = kit.validate()
        self.mix = mixer_settings(kit, mixer)
        self.voices = [s.voice for s in kit.slots]
        self.keys = key_map(kit)
        self._tunes = {k: sorted({key.tune for key in self.keys.values() if key.slot == k})
                       for k in range(len(kit.slots))}
        self._sounds: dict[Key, np.ndarray] = {}
        self.last_slot: Optional[int] = None
        for k, w in enumerate(waves or ()):
            self.set_wave(k, self.voices[k], w)

    def set_wave(self, slot: int, voice: Voice, wave: np.ndarray) -> bool:
        """A rendered sound for ``slot`` (at the input rate). Kept only if ``voice`` is still the slot's voice
        (a newer control change makes an older render stale); returns whether it was kept."""
        if not 0 <= slot < len(self.voices) or self.voices[slot] != voice:
            return False
        base = np.asarray(wave, dtype=np.float32)
        for tune in self._tunes.get(slot, [0.0]) or [0.0]:
            w = base if tune == 0 else apply_sampler(base, self.sample_rate_in,
                                                     SamplerControls(tune=tune, normalise=False))
            w = resample(w, self.sample_rate_in, self.sample_rate_out)
            w.setflags(write=False)
            self._sounds[Key(slot, tune)] = w  # one dict store: a note sees the old sound or the new, never none
        return True

    def ready(self) -> bool:
        """Whether every slot has a sound."""
        return all(Key(k, t) in self._sounds for k, ts in self._tunes.items() for t in (ts or [0.0]))

    def sound(self, key: Key) -> Optional[np.ndarray]:
        """The ready sound of a key (at the output rate), None before its first render."""
        return self._sounds.get(key)

    def handle(self, msg) -> list[Event]:
        """One ``mido.Message`` → the events it causes (often none)."""
        kind = getattr(msg, "type", None)
        if self.channel is not None and getattr(msg, "channel", self.channel) != self.channel:
            return []
        if kind == "program_change":
            return [SelectKit(int(msg.program))]
        if kind == "note_on" and msg.velocity > 0:
            key = self.keys.get(msg.note)
            if key is None:
                return []
            self.last_slot = key.slot
            role = slot_role(self.kit.slots[key.slot].name, self.voices[key.slot].cls)
            gain = SamplerControls(velocity=float(msg.velocity)).gain
            if self.mix is None:
                return [Hit(key, gain, role, CHOKES.get(role, frozenset()))]
            m = self.mix[key.slot]
            group = f"choke{m['choke']}" if m["choke"] else None
            return [Hit(key, gain * m["level"], group, frozenset({group}) if group else frozenset(), m["pan"],
                        m["audible"])]
        if kind == "control_change" and msg.control in self.cc_map and self.last_slot is not None:
            k = self.last_slot
            v = self.voices[k]
            c = v.controls or Controls()
            value = cc_value(msg.value)
            target = self.cc_map[msg.control]
            if math.isclose(getattr(c, target), value):
                return []
            self.voices[k] = replace(v, controls=replace(c, **{target: value}))
            return [Render(k, self.voices[k])]
        return []
