"""What every corpus source yields: a :class:`Candidate` (one possible clip, its provenance and label, and a
loader for its audio). The sources themselves are in :mod:`neuraldrum.data.sources`, which gathers them, and
:mod:`neuraldrum.data.soundfont` and :mod:`neuraldrum.data.drumsynth`, which it imports.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from ..audio.io import PathLike, load

Loader = Callable[[int, float], np.ndarray]  # (sample_rate, max_seconds) → (n,) float32 mono; raises AudioError


@dataclass
class Candidate:
    """One possible clip and where it came from.

    Attributes:
        source: library name (:data:`neuraldrum.data.sources.ALL_SOURCES` or "folder").
        kit: kit, SoundFont preset or folder name.
        instrument: instrument (Hydrogen ``<name>``, "36 Std Kick" for a SoundFont note, file stem otherwise).
        layer: velocity layer within the instrument ("3/5", "hard"), "" when there is one.
        path: the original file ("font.sf2#bank:prog:note:vel" for rendered notes).
        label: class name, or None when the item is excluded.
        rule: the rule that gave ``label``, or the exclusion reason when ``label`` is None.
        velocity: MIDI velocity (0..127) of the layer when known.
        load: returns the audio (also of an item excluded for want of a label: the unlabelled pool reads
            it); None where there is nothing to read.
        link: items with the same non-empty link share a recording (one file, one SoundFont sample) and
            must land in the same split.
        order: sort key within the source; of two duplicates the one that sorts first is kept.
    """

    source: str
    kit: str
    instrument: str
    layer: str
    path: str
    label: Optional[str]
    rule: str
    velocity: Optional[int] = None
    load: Optional[Loader] = None
    link: str = ""
    order: tuple = ()

    @property
    def id(self) -> str:
        """Stable 16-hex-digit id from source, kit, instrument, layer and the file's name."""
        key = "\x1f".join((self.source, self.kit, self.instrument, self.layer, os.path.basename(self.path)))
        return hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]

    @property
    def group(self) -> tuple[str, str, str]:
        """The unit of the train/val/test split: all layers of one instrument."""
        return (self.source, self.kit, self.instrument)


def file_loader(path: PathLike) -> Loader:
    """A loader that reads ``path`` with :func:`neuraldrum.audio.io.load`."""
    return lambda sr, max_seconds: load(path, sr, max_seconds)
