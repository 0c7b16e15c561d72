"""A kit as data, and the sound files the verbs write.

A :class:`Kit` is named slots, each a :class:`~neuraldrum.voice.Voice` (class, source, controls, sampler
controls) with an optional General MIDI note. It is saved as a small versioned JSON (``kit.json``)::

    {"format": "neuraldrum-kit", "version": 1, "name": "...", "sample_rate": 22050,
     "model": {"sha256": "<weights checksum>", "path": "..."},
     "slots": [{"name": "kick", "note": 36, "file": "kick.wav", "voice": {"class": "kick", "seed": 17, ...}}]}

:func:`write_kit` renders every slot, one voice at a time, so the same kit with the same model gives the same
files bit for bit, and writes the WAVs and ``kit.json`` as one folder that appears whole or not at all.
A ``kit.json`` of neuraldrum 0.1 (a ``"sounds"`` list with each sound's z) is read as well.
"""
from __future__ import annotations

import json
import re
import secrets
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from .atomic import atomic_folder, foreign_entries, some, write_text
from .audio.io import save_wav
from .engine import Engine
from .voice import Voice

KIT_FORMAT = "neuraldrum-kit"
KIT_VERSION = 1
KIT_FILE = "kit.json"
MAX_SLOTS = 128  # slots in a kit: one per MIDI note
SFZ_FILE, HYDROGEN_FILE = "kit.sfz", "drumkit.xml"  # what `kit --format sfz,hydrogen` adds (export.kits)
# a General MIDI drum note per class, for samplers and MIDI input
DEFAULT_NOTES = {"kick": 36, "rim": 37, "snare": 38, "clap": 39, "hh_closed": 42, "tom": 45, "hh_open": 46,
                 "crash": 49, "ride": 51, "cowbell": 56, "shaker": 70}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # whole name: fullmatch (a "$" lets "kick\n" by)


@dataclass(frozen=True)
class Slot:
    """A kit slot: a file-safe ``name``, the ``voice`` that makes its sound, an optional GM ``note`` (0–127)."""

    name: str
    voice: Voice
    note: Optional[int] = None

    def validate(self, where: str = "slot") -> "Slot":
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name) or self.name.endswith("."):
            raise ValueError(f"{where}.name={self.name!r}: use 1–64 letters, digits, '_', '-' or '.', "
                             "starting with a letter or digit")
        if self.note is not None and (isinstance(self.note, bool) or not isinstance(self.note, int)
                                      or not 0 <= self.note <= 127):
            raise ValueError(f"{where}.note={self.note!r} must be a MIDI note 0..127")
        self.voice.validate()
        return self


@dataclass
class Kit:
    """Named slots plus where they came from (``model``: the weights' sha256 and path; ``info``: free notes
    such as the kit seed)."""

    slots: list[Slot]
    name: str = "kit"
    sample_rate: Optional[int] = None
    model: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    def validate(self) -> "Kit":
        if not self.slots:
            raise ValueError("a kit needs at least one slot")
        if len(self.slots) > MAX_SLOTS:
            raise ValueError(f"{len(self.slots)} slots; a kit holds at most {MAX_SLOTS} (one per MIDI note)")
        names = [s.validate(f"slots[{k}]").name for k, s in enumerate(self.slots)]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"slot names must be unique; repeated: {', '.join(dup)}")
        return self

    def to_dict(self) -> dict:
        return {"format": KIT_FORMAT, "version": KIT_VERSION, "name": self.name, "sample_rate": self.sample_rate,
                "model": self.model, **({"info": self.info} if self.info else {}),
                "slots": [{"name": s.name, **({"note": s.note} if s.note is not None else {}),
                           "file": f"{s.name}.wav", "voice": s.voice.to_dict()} for s in self.slots]}

    @classmethod
    def from_dict(cls, d: dict, where: str = KIT_FILE) -> "Kit":
        """Read a kit JSON object (this format, or neuraldrum 0.1's); errors name ``where`` and the field."""
        if not isinstance(d, dict):
            raise ValueError(f"{where}: not a kit (expected a JSON object)")
        if d.get("format") is None and isinstance(d.get("sounds"), list):
            return _from_v0(d, where)
        if d.get("format") != KIT_FORMAT:
            raise ValueError(f"{where}: not a neuraldrum kit (format {d.get('format')!r})")
        if d.get("version") != KIT_VERSION:
            raise ValueError(f"{where}: kit version {d.get('version')!r} is not supported (this neuraldrum "
                             f"reads version {KIT_VERSION})")
        raw = d.get("slots")
        if not isinstance(raw, list):
            raise ValueError(f"{where}: 'slots' must be a list")
        if len(raw) > MAX_SLOTS:
            raise ValueError(f"{where}: {len(raw)} slots; a kit holds at most {MAX_SLOTS} (one per MIDI note)")
        slots = []
        for k, s in enumerate(raw):
            w = f"{where}: slots[{k}]"
            if not isinstance(s, dict) or "name" not in s or "voice" not in s:
                raise ValueError(f"{w}: needs 'name' and 'voice'")
            extra = set(s) - {"name", "note", "file", "voice"}
            if extra:
                raise ValueError(f"{w}: unknown field(s) {sorted(extra)}")
            slots.append(Slot(s["name"], Voice.from_dict(s["voice"], f"{w}.voice"), s.get("note")))
        sr = d.get("sample_rate")
        kit = cls(slots, str(d.get("name", "kit")), sr if isinstance(sr, int) else None,
                  d.get("model") if isinstance(d.get("model"), dict) else {},
                  d.get("info") if isinstance(d.get("info"), dict) else {})
        try:
            return kit.validate()
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None

    def save(self, path: Union[str, Path]) -> Path:
        """Write the kit JSON atomically."""
        return write_text(path, json.dumps(self.validate().to_dict(), indent=1) + "\n")


def _from_v0(d: dict, where: str) -> Kit:
    slots = []
    for k, s in enumerate(d["sounds"]):
        if not isinstance(s, dict) or "class" not in s or "z" not in s:
            raise ValueError(f"{where}: sounds[{k}] needs 'class' and 'z'")
        v = Voice.from_dict({"class": s["class"], "z": s["z"]}, f"{where}: sounds[{k}]")
        slots.append(Slot(s["class"], v, DEFAULT_NOTES.get(s["class"])))
    model = d.get("model") if isinstance(d.get("model"), dict) else {}
    return Kit(slots, "kit", d.get("sample_rate"), model, {"kit_seed": d.get("kit_seed")}).validate()


def load_kit(path: Union[str, Path]) -> Kit:
    """A kit from a ``kit.json`` file or a kit folder holding one."""
    p = Path(path)
    if p.is_dir():
        p = p / KIT_FILE
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such kit file")
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{p}: not valid JSON ({e})") from None
    except RecursionError:
        raise ValueError(f"{p}: not a kit (JSON nested too deeply)") from None
    except ValueError:  # Python refuses to read an integer of more than 4300 digits
        raise ValueError(f"{p}: not a kit (a number too long to read)") from None
    return Kit.from_dict(d, str(p))


def model_info(engine: Engine) -> dict:
    """What identifies the engine's model in a kit: the weights' sha256 and the bundle path."""
    return {"sha256": engine.model_sha256, "path": engine.model_path}


def new_kit(engine: Engine, seed: Optional[int] = 0, temperature: Optional[float] = None,
            classes: Optional[Sequence[str]] = None) -> Kit:
    """One prior-sample slot per class (all the model's classes by default), each with its own seed drawn from
    the kit ``seed`` (a random one when None), at ``temperature`` (the model's own when None)."""
    if seed is None:
        seed = secrets.randbelow(2 ** 31)
    rng = np.random.default_rng(seed)
    t = engine.prior_temperature(temperature)
    slots = []
    for cls in classes or engine.classes:
        cls = engine.classes[engine.class_index(cls)]
        slots.append(Slot(cls, Voice(cls, seed=int(rng.integers(0, 2 ** 31 - 1)), temperature=t),
                          DEFAULT_NOTES.get(cls)))
    return Kit(slots, f"kit-{seed}", engine.sample_rate, model_info(engine),
               {"kit_seed": seed, "temperature": t}).validate()


def render_kit(engine: Engine, kit: Kit) -> list[np.ndarray]:
    """Each slot's sound, rendered one voice at a time (so a slot's sound does not depend on its neighbours)."""
    kit.validate()
    sha = kit.model.get("sha256")
    if sha and sha != engine.model_sha256:
        warnings.warn(f"kit {kit.name!r} was made with another model (weights {sha[:12]}…); its sounds will differ",
                      stacklevel=2)
    return [engine.render([s.voice])[0] for s in kit.slots]


def check_kit_folder(out: Union[str, Path]) -> Path:
    """``out`` as a Path, if a kit may be written there: it does not exist, or is an empty folder, or a kit folder
    (a ``kit.json`` that loads as a kit, and nothing but the files a kit writes: its slots' WAVs, ``kit.sfz``,
    ``drumkit.xml``). Anything else (a file, a user's folder, a kit folder a user added files to) is refused, so
    a kit never replaces it."""
    out = Path(out)
    if out.exists():
        if not out.is_dir():
            raise FileExistsError(f"{out}: exists and is not a folder")
        entries = list(out.iterdir())
        if entries and not (out / KIT_FILE).is_file():
            raise FileExistsError(f"{out}: a folder that is not a kit; choose a new or empty folder")
        if entries:
            try:
                old = load_kit(out)
            except (OSError, ValueError) as e:
                why = str(e).removeprefix(f"{out / KIT_FILE}: ")
                raise FileExistsError(f"{out}: a folder whose {KIT_FILE} does not load as a kit ({why}); choose a "
                                      "new or empty folder") from None
            ours = {KIT_FILE, SFZ_FILE, HYDROGEN_FILE} | {f"{s.name}.wav" for s in old.slots}  # (export.kits)
            other = foreign_entries(out, ours.__contains__)
            if other:
                raise FileExistsError(f"{out}: a kit folder that also holds {some(other)}, which a new kit would "
                                      "delete; move them, or choose a new or empty folder")
    return out


def write_kit(engine: Engine, kit: Kit, out: Union[str, Path]) -> Path:
    """Render ``kit`` into the folder ``out`` (``<slot>.wav`` + ``kit.json``), which appears whole or not at all.
    An existing ``out`` is replaced only if it is empty or a kit folder (:func:`check_kit_folder`)."""
    out = check_kit_folder(out)
    waves = render_kit(engine, kit)
    info = {k: v for k, v in kit.info.items() if k != "hifi"}  # how it was rendered: remade the same way
    saved = Kit(kit.slots, kit.name, engine.sample_rate, model_info(engine),
                {**info, "hifi": engine.hifi} if getattr(engine, "hifi", 0) else info)  # (a stub may have none)
    with atomic_folder(out) as tmp:
        for s, w in zip(kit.slots, waves):
            save_wav(tmp / f"{s.name}.wav", w, engine.sample_rate)
        saved.save(tmp / KIT_FILE)
    return out


def write_sounds(engine: Engine, voices: Sequence[Voice], names: Sequence[str], out: Union[str, Path]) -> list[Path]:
    """Render ``voices`` (one batch) and save each as ``out/<name>.wav``. Returns the paths."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out}: exists and is not a folder")
    waves = engine.render(voices)
    return [save_wav(out / f"{n}.wav", w, engine.sample_rate) for n, w in zip(names, waves)]
