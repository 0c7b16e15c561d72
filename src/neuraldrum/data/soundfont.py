"""SoundFont drum kits: read an SF2's preset/instrument/sample tables and render notes with FluidSynth.

The reader parses only the ``pdta`` (preset data) chunk, enough to know which samples a (bank, program,
key, velocity) plays and what they are called; the sample data is never read here. Rendering uses
libfluidsynth through pyfluidsynth with reverb and chorus off, in float (the int16 path adds dither
that swamps quiet notes), in whole 64-frame blocks, with no audio device.

General MIDI note numbers lie in some kits (FluidR3's Orchestra kit puts timpani on tom and hat notes, the
Brush kits put brush slaps and swirls on the clap and snare notes), so every FluidR3 note is checked
against the names of the samples it plays: a sample name that the taxonomy excludes, or that names a
different class than the note, excludes the note.
"""
from __future__ import annotations

import ctypes
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from ..audio.io import AudioError, PathLike, resample
from ..taxonomy import NO_KEYWORD, classify_avl_note, classify_gm_note, classify_name
from .candidate import Candidate

RENDER_RATE = 44100
BLOCK = 64  # FluidSynth's internal block: events land on block boundaries
RENDER_SECONDS = 1.5
GM_RANGE = range(27, 88)  # General MIDI 2's percussion keys
DRUM_CHANNEL = 9
MAX_TABLE_BYTES = 64 << 20  # a pdta table larger than this is refused (FluidR3's largest is ~1 MB)
_LR = re.compile(r"\s*\((l|r)\)\s*$|\s*-\d+$", re.IGNORECASE)


class SoundFontError(ValueError):
    """A file that cannot be read as a SoundFont 2; the message names the file and the reason."""

    def __init__(self, path: PathLike, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: {reason}")


@dataclass
class Zone:
    """One sample played by a preset at a key: the sample's index and name and the velocity range."""

    sample: int
    name: str
    vel_lo: int
    vel_hi: int


class SF2:
    """The preset, instrument and sample-header tables of a SoundFont 2 file."""

    def __init__(self, path: PathLike):
        """Raises:
            SoundFontError: not a SoundFont 2 (cannot be read, a missing table, an index out of its table)."""
        self.path = Path(path)
        try:
            chunks = self._pdta_chunks(self.path)
        except OSError as e:
            raise SoundFontError(path, f"cannot read ({e.strerror or e})") from None
        except struct.error:
            raise SoundFontError(path, "not a SoundFont 2 file (a RIFF chunk is cut short)") from None

        def table(name: str, fmt: str) -> list[tuple]:
            data, size = chunks[name], struct.calcsize(fmt)
            return [struct.unpack_from(fmt, data, i) for i in range(0, len(data) - size + 1, size)]

        self.phdr = table("phdr", "<20sHHHIII")
        self.pbag, self.pgen = table("pbag", "<HH"), table("pgen", "<Hh")
        self.inst = table("inst", "<20sH")
        self.ibag, self.igen = table("ibag", "<HH"), table("igen", "<Hh")
        self.shdr = table("shdr", "<20sIIIIIBbHH")
        # what zones() indexes, checked once: every preset's and instrument's bag, every instrument and sample
        bad = ("phdr" if any(p[3] >= len(self.pbag) for p in self.phdr) else
               "inst" if any(i[1] >= len(self.ibag) for i in self.inst) else
               "pgen" if any(g == 41 and v & 0xFFFF >= len(self.inst) - 1 for g, v in self.pgen) else
               "igen" if any(g == 53 and v & 0xFFFF >= len(self.shdr) for g, v in self.igen) else None)
        if bad:
            raise SoundFontError(path, f"an index in the {bad} table points past its target")

    @staticmethod
    def _pdta_chunks(path: Path) -> dict[str, bytes]:
        chunks: dict[str, bytes] = {}
        with open(path, "rb") as f:
            riff, size, form = struct.unpack("<4sI4s", f.read(12))
            if riff != b"RIFF" or form != b"sfbk":
                raise SoundFontError(path, "not a SoundFont 2 file")
            end = 8 + size
            while f.tell() < end:
                head = f.read(8)
                if len(head) < 8:
                    break
                cid, csz = struct.unpack("<4sI", head)
                if cid == b"LIST" and f.read(4) == b"pdta":
                    stop = f.tell() + csz - 4
                    while f.tell() < stop:
                        sid, ssz = struct.unpack("<4sI", f.read(8))
                        data = f.read(min(ssz + (ssz & 1), MAX_TABLE_BYTES))
                        if len(data) < ssz:
                            raise SoundFontError(path, f"the {sid.decode('latin-1')!r} table is cut short or larger "
                                                       f"than {MAX_TABLE_BYTES >> 20} MB")
                        chunks[sid.decode("latin-1")] = data[:ssz]
                else:
                    f.seek(csz - 4 if cid == b"LIST" else csz + (csz & 1), 1)
        missing = {"phdr", "pbag", "pgen", "inst", "ibag", "igen", "shdr"} - set(chunks)
        if missing:
            raise SoundFontError(path, f"SoundFont lacks {sorted(missing)}")
        return chunks

    @staticmethod
    def _name(raw: bytes) -> str:
        return raw.split(b"\0", 1)[0].decode("latin-1").strip()

    @staticmethod
    def _zones(bags: list, gens: list, first: int, last: int, key_gen: int) -> list[dict[int, int]]:
        zones = [dict(gens[bags[b][0]: bags[b + 1][0]]) for b in range(first, last)]
        if zones and key_gen not in zones[0]:
            zones = zones[1:]  # the global zone holds defaults only
        return zones

    @staticmethod
    def _range(zone: dict[int, int], gen: int) -> tuple[int, int]:
        if gen not in zone:
            return 0, 127
        v = zone[gen] & 0xFFFF
        return v & 0xFF, v >> 8

    def presets(self) -> list[tuple[str, int, int]]:
        """(name, bank, program) of every preset."""
        return [(self._name(p[0]), p[2], p[1]) for p in self.phdr[:-1]]

    def zones(self, bank: int, program: int, key: int) -> list[Zone]:
        """The samples that (bank, program) plays at ``key``, with their velocity ranges."""
        out = []
        for p in range(len(self.phdr) - 1):
            if (self.phdr[p][2], self.phdr[p][1]) != (bank, program):
                continue
            for pz in self._zones(self.pbag, self.pgen, self.phdr[p][3], self.phdr[p + 1][3], 41):
                klo, khi = self._range(pz, 43)
                if not klo <= key <= khi or 41 not in pz:
                    continue
                i = pz[41] & 0xFFFF
                plo, phi = self._range(pz, 44)
                for iz in self._zones(self.ibag, self.igen, self.inst[i][1], self.inst[i + 1][1], 53):
                    ilo, ihi = self._range(iz, 43)
                    vlo, vhi = self._range(iz, 44)
                    lo, hi = max(plo, vlo), min(phi, vhi)
                    if ilo <= key <= ihi and 53 in iz and lo <= hi:
                        s = iz[53] & 0xFFFF
                        out.append(Zone(s, self._name(self.shdr[s][0]), lo, hi))
        return out


def velocity_layers(zones: list[Zone]) -> list[tuple[int, list[Zone]]]:
    """Distinct sample sets over velocities 1..127: [(highest velocity playing the set, zones)].

    Velocity ranges that play the same samples only change gain (and a filter), so one render each is enough.
    """
    layers: dict[tuple[int, ...], tuple[int, list[Zone]]] = {}
    for v in range(1, 128):
        zs = [z for z in zones if z.vel_lo <= v <= z.vel_hi]
        key = tuple(sorted({z.sample for z in zs}))
        if key:
            layers[key] = (v, zs)  # the last (highest) velocity wins
    return sorted(layers.values(), key=lambda t: t[0])


def sample_names(zones: list[Zone]) -> list[str]:
    """Sample names without the stereo "(L)"/"(R)" or layer "-2" endings, sorted and unique."""
    return sorted({_LR.sub("", z.name) for z in zones})


class Renderer:
    """A FluidSynth instance with one SoundFont loaded, rendering single notes to float arrays."""

    def __init__(self, path: PathLike, sample_rate: int = RENDER_RATE):
        try:
            import fluidsynth
        except (ImportError, OSError) as e:
            raise AudioError(path, f"cannot render SoundFonts: {e} (apt-get install libfluidsynth3)") from None
        fl = fluidsynth._fl
        fl.fluid_synth_write_float.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int,
                                               ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
        fl.fluid_synth_write_float.restype = ctypes.c_int
        for level in (2, 3, 4):  # warnings, info, debug: silent
            fl.fluid_set_log_function(level, None, None)
        self._fl = fl
        self.sample_rate = sample_rate
        self.synth = fluidsynth.Synth(gain=1.0, samplerate=float(sample_rate), **{
            "synth.reverb.active": 0, "synth.chorus.active": 0, "synth.polyphony": 64})
        self.sfid = self.synth.sfload(str(path))
        if self.sfid < 0:
            raise AudioError(path, "FluidSynth could not load this SoundFont")
        fl.fluid_synth_set_interp_method(ctypes.c_void_p(self.synth.synth), -1, 7)  # 7th-order interpolation

    def render(self, channel: int, bank: int, program: int, key: int, velocity: int,
               seconds: float = RENDER_SECONDS) -> np.ndarray:
        """One note, mixed to mono. Returns (n,) float32 at ``self.sample_rate``, n a multiple of 64."""
        n = -(-int(seconds * self.sample_rate) // BLOCK) * BLOCK
        self.synth.program_select(channel, self.sfid, bank, program)
        left, right = np.zeros(n, np.float32), np.zeros(n, np.float32)
        self.synth.noteon(channel, key, velocity)
        self._fl.fluid_synth_write_float(ctypes.c_void_p(self.synth.synth), n, left.ctypes.data, 0, 1,
                                         right.ctypes.data, 0, 1)
        self.synth.all_sounds_off(-1)
        return 0.5 * (left + right)

    def __del__(self):
        synth = getattr(self, "synth", None)
        if synth is not None:
            self.synth = None
            try:
                synth.delete()
            except Exception:  # interpreter shutdown: the library may already be gone
                pass


class _LazyRenderer:
    """Creates the :class:`Renderer` on the first note, so listing candidates needs no FluidSynth."""

    def __init__(self, path: Path):
        self.path, self._r = path, None

    def loader(self, channel: int, bank: int, program: int, key: int, velocity: int):
        def load(sample_rate: int, max_seconds: float) -> np.ndarray:
            if self._r is None:
                self._r = Renderer(self.path)
            x = self._r.render(channel, bank, program, key, velocity)
            return resample(x, self._r.sample_rate, sample_rate)
        return load


def gm_drum_kits(path: PathLike) -> Iterator[Candidate]:
    """Every bank-128 kit of a General MIDI SoundFont (FluidR3), notes 27–87 on channel 10."""
    path = Path(path)
    sf, lazy = SF2(path), _LazyRenderer(path)
    for name, bank, prog in sorted(sf.presets(), key=lambda t: (t[1], t[2])):
        if bank != 128:
            continue
        kit = f"{path.stem} {name}"
        for key in GM_RANGE:
            zones = sf.zones(bank, prog, key)
            where = f"{path}#{bank}:{prog}:{key}"
            names = sample_names(zones)
            instrument = f"{key} {' + '.join(names)}".strip()
            if not zones:
                yield Candidate("soundfont", kit, instrument, "", where, None, "empty slot",
                                order=(path.name, prog, key, 0))
                continue
            label, rule = _check_gm_note(key, names)
            layers = velocity_layers(zones)
            for j, (vel, zs) in enumerate(layers):
                link = f"{path.name}:" + ",".join(str(s) for s in sorted({z.sample for z in zs}))
                yield Candidate("soundfont", kit, instrument, f"{j + 1}/{len(layers)}", f"{where}:{vel}", label, rule,
                                vel, lazy.loader(DRUM_CHANNEL, bank, prog, key, vel),
                                link=link, order=(path.name, prog, key, -vel))


def _check_gm_note(key: int, names: list[str]) -> tuple[Optional[str], str]:
    label, rule = classify_gm_note(key)
    if label is None:
        return None, rule
    for n in names:
        cls, why = classify_name(n)
        if cls is None and why != NO_KEYWORD:
            return None, f"{why} (sample {n!r} on GM note {key})"
        if cls is not None and cls != label:
            return None, f"label conflict (GM note {key} is {label}, sample {n!r} is {cls})"
    return label, f"{rule}, samples {', '.join(names)}"


def avl_kit(path: PathLike) -> Iterator[Candidate]:
    """An AVL drum kit: bank 0 program 0 on a melodic channel, its own note map, five velocity layers."""
    path = Path(path)
    sf, lazy = SF2(path), _LazyRenderer(path)
    for name, bank, prog in sf.presets():
        kit = name
        for key in range(128):
            zones = sf.zones(bank, prog, key)
            if not zones:
                continue
            label, rule = classify_avl_note(key)
            names = sample_names(zones)
            instrument = f"{key} {re.sub(r'^[0-9]+-', '', names[-1])}" if names else str(key)
            layers = velocity_layers(zones)
            for j, (vel, zs) in enumerate(layers):
                link = f"{path.name}:" + ",".join(str(s) for s in sorted({z.sample for z in zs}))
                yield Candidate("soundfont", kit, instrument, f"{j + 1}/{len(layers)}",
                                f"{path}#{bank}:{prog}:{key}:{vel}", label,
                                f"{rule}, sample {zs[0].name}" if label else rule, vel,
                                lazy.loader(0, bank, prog, key, vel),
                                link=link, order=(path.name, prog, key, -vel))
