"""A kit folder in the formats other tools load: ``neuraldrum kit --format wav,sfz,hydrogen``.

One folder holds everything: the WAVs and ``kit.json`` (always; :func:`neuraldrum.kit.write_kit`), ``kit.sfz``
for SFZ samplers (``sfz``) and ``drumkit.xml`` for Hydrogen (``hydrogen``), each pointing at the same WAVs.
The folder appears whole or not at all, and replaces only an empty or kit folder.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence, Union

from ..atomic import atomic_folder, write_text
from ..roles import kit_roles
from ..engine import Engine
from ..kit import HYDROGEN_FILE, SFZ_FILE, Kit, check_kit_folder, write_kit
from .hydrogen import drumkit_xml
from .sfz import kit_sfz

FORMATS = ("wav", "sfz", "hydrogen")
__all__ = ["FORMATS", "HYDROGEN_FILE", "SFZ_FILE", "parse_formats", "write_kit_formats"]


def parse_formats(text: Union[str, Sequence[str]]) -> tuple[str, ...]:
    """"sfz,hydrogen" or ["sfz"] → the formats in :data:`FORMATS` order, "wav" always among them."""
    names = [t.strip().lower() for t in (text.split(",") if isinstance(text, str) else text) if t.strip()]
    bad = [n for n in names if n not in FORMATS]
    if bad:
        raise ValueError(f"unknown kit format(s) {', '.join(bad)}; choose from {','.join(FORMATS)}")
    return tuple(f for f in FORMATS if f in names or f == "wav")


def write_kit_formats(engine: Engine, kit: Kit, out: Union[str, Path], formats: Sequence[str] = FORMATS) -> Path:
    """Render ``kit`` into the folder ``out`` with the files of each of ``formats``. Returns ``out``."""
    formats = parse_formats(formats)
    out = check_kit_folder(out)
    kit.validate()
    files = [f"{s.name}.wav" for s in kit.slots]
    with atomic_folder(out) as tmp:
        write_kit(engine, kit, tmp)  # WAVs + kit.json, into the (empty) folder that becomes ``out``
        if "sfz" in formats:
            write_text(tmp / SFZ_FILE, kit_sfz([(f, s.note) for f, s in zip(files, kit.slots)], kit.name,
                                               classes=kit_roles(kit, engine.classes)))
        if "hydrogen" in formats:
            slots = [(s.name, s.voice.cls, f, s.note) for f, s in zip(files, kit.slots)]
            write_text(tmp / HYDROGEN_FILE, drumkit_xml(slots, kit.name, info=f"{kit.name}: made by neuraldrum "
                                                        f"(remake it with `neuraldrum kit --from kit.json`)"))
    return out
