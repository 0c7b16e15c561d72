"""Render a General MIDI drum track with a kit, offline: ``neuraldrum render song.mid --kit KIT -o out.wav``.

The same :class:`~.midi.DrumMachine` rules as live play (notes → slots, velocity → gain, hat choke, CCs move
the pad of the last slot hit, program change → another kit), applied at exact sample times: a note at t
seconds starts on sample ``round(t * sample_rate)``. Type 0 and type 1 files, tempo changes included (type 2
files hold independent songs and are refused). The same file, kits and model give the same samples.

A kit's mixer (the ``mixer`` section of its kit.json, as the web page writes it) is applied: each slot's level as a
gain, its pan (:func:`~.mixer.pan_gains`: equal power, 0 dB at the centre), mute and solo, and its choke groups
in place of the hat choke. The song is stereo when a mixer pans any slot off the centre, mono otherwise (a mono
file plays the same on both speakers as a centred stereo one).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from ..beat import check_mixer
from ..engine import Engine
from ..kit import Kit, new_kit, render_kit
from ..sampler import PEAK
from .midi import DRUM_CHANNEL, DrumMachine, Hit, Render, SelectKit, pans_off_centre
from .mixer import Mixer

MAX_SECONDS = 30 * 60.0  # longest song rendered


@dataclass
class Rendered:
    """What :func:`render_midi` made: the audio (N,) float32 ((N, 2) in stereo) and what happened."""

    audio: np.ndarray
    sample_rate: int
    notes: int = 0
    muted_notes: int = 0  # notes of slots the mixer mutes (or leaves out of a solo)
    skipped_notes: int = 0  # notes on the channel with no slot for them
    other_channels: dict = field(default_factory=dict)  # channel 0–15 → notes there, on channels not played
    renders: int = 0  # control changes that made a new sound
    kits: list = field(default_factory=list)  # names of the kits played, in order
    gain: float = 1.0  # the gain applied to keep the peak at -1 dBFS (1.0: none)

    @property
    def seconds(self) -> float:
        return len(self.audio) / self.sample_rate


def read_midi(path: Union[str, Path]):
    """A ``mido.MidiFile``; ValueError naming the file when it is not one we can play."""
    import mido

    try:
        mid = mido.MidiFile(str(path))
    except (OSError, EOFError, KeyError, ValueError, IndexError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise ValueError(f"{path}: not a readable MIDI file ({str(e) or 'it ends before its data does'})") from None
    if not mid.tracks:
        raise ValueError(f"{path}: not a playable MIDI file (its header promises no tracks)")
    if mid.type == 2:
        raise ValueError(f"{path}: a type 2 MIDI file (independent patterns) cannot be played as one song; "
                         "save it as type 0 or 1")
    if not any(m.type == "note_on" and m.velocity > 0 for t in mid.tracks for m in t):
        raise ValueError(f"{path}: no notes on any channel; nothing to render")
    return mid


def render_midi(engine: Engine, midi, kits: Sequence[Kit] = (), sample_rate: Optional[int] = None,
                channel: Optional[int] = DRUM_CHANNEL, cc_map: Optional[dict] = None, kit_seed: int = 0,
                limit: bool = True, mixers: Sequence[Optional[dict]] = ()) -> Rendered:
    """Render a MIDI file (a path or a ``mido.MidiFile``) with ``kits``.

    Args:
        engine: the model.
        kits: the first plays from the start; program change p selects ``kits[p % len(kits)]``. None given: the
            kit of seed ``kit_seed`` plays, and program p selects ``new_kit(engine, p)``.
        sample_rate: output rate (default: the model's).
        channel: MIDI channel 0–15 to play (default 9, i.e. channel 10, GM drums); None for every channel.
        cc_map: controller → pad control (default :data:`~.midi.DEFAULT_CC`).
        limit: scale the whole song down when its peak passes -1 dBFS (PCM files would clip).
        mixers: the ``mixer`` section (kit.json) of each of ``kits``, in order; None or missing: no mixer.
    """
    mid = read_midi(midi) if isinstance(midi, (str, Path)) else midi
    sr = int(engine.sample_rate if sample_rate is None else sample_rate)  # (0 is refused, not the model's rate)
    if not 8000 <= sr <= 192000:
        raise ValueError(f"sample rate {sr} must be in 8000..192000")
    kits = list(kits)
    mixers = list(mixers) + [None] * (len(kits) - len(mixers))
    for k, m in zip(kits, mixers):
        if m is not None:
            check_mixer(m, [s.name for s in k.slots], f"kit {k.name}: mixer")
    cache: dict = {}

    def mixer_of(kit: Kit) -> Optional[dict]:
        return next((m for k, m in zip(kits, mixers) if k is kit), None)

    def kit_for(program: Optional[int]) -> Kit:
        if kits:
            return kits[0 if program is None else program % len(kits)]
        return new_kit(engine, kit_seed if program is None else program)

    def waves(kit: Kit) -> list[np.ndarray]:
        key = ("kit", id(kit), kit.name) if kits else ("kit", kit.name)
        if key not in cache:
            cache[key] = render_kit(engine, kit)
        return cache[key]

    first = kit_for(None)
    machine = DrumMachine(first, engine.sample_rate, sr, cc_map, channel)
    machine.load_kit(first, waves(first), mixer_of(first))
    out = Rendered(np.zeros(0, np.float32), sr, kits=[first.name])
    mixer = Mixer(sr, channels=2 if any(pans_off_centre(m) for m in mixers) else 1)
    blocks: list[np.ndarray] = []
    now = end = 0
    t = 0.0
    for msg in mid:
        t += msg.time
        if t > MAX_SECONDS:
            raise ValueError(f"the song is longer than {MAX_SECONDS / 60:g} minutes")
        if msg.is_meta:
            continue
        events = machine.handle(msg)
        if not events:
            if msg.type == "note_on" and msg.velocity > 0:
                if channel in (None, msg.channel):
                    out.skipped_notes += 1
                else:
                    out.other_channels[msg.channel] = out.other_channels.get(msg.channel, 0) + 1
            continue
        at = int(round(t * sr))
        if at > now:
            blocks.append(mixer.render(at - now))
            now = at
        for ev in events:
            if isinstance(ev, Hit):
                if not ev.audible:
                    out.muted_notes += 1
                    continue
                wave = machine.sound(ev.key)
                mixer.play(wave, ev.gain, ev.group, ev.chokes, ev.pan)
                end = max(end, now + len(wave))
                out.notes += 1
            elif isinstance(ev, Render):
                voice_key = ("voice", ev.voice)
                if voice_key not in cache:
                    cache[voice_key] = engine.render([ev.voice])[0]
                machine.set_wave(ev.slot, ev.voice, cache[voice_key])
                out.renders += 1
            elif isinstance(ev, SelectKit):
                kit = kit_for(ev.program)
                machine.load_kit(kit, waves(kit), mixer_of(kit))
                out.kits.append(kit.name)
    if end > now:
        blocks.append(mixer.render(end - now))
    audio = np.concatenate(blocks) if blocks else np.zeros((0,) + (() if mixer.channels == 1 else (2,)),
                                                                  np.float32)
    peak = float(np.abs(audio).max(initial=0.0))
    if limit and peak > PEAK:
        out.gain = PEAK / peak
        audio *= np.float32(out.gain)
    out.audio = audio
    return out
