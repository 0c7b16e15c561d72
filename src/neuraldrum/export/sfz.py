"""A minimal SFZ instrument for a kit: one region per slot, on its General MIDI drum note.

Any SFZ player (sfizz, Sforzando, LinuxSampler, …) loads the kit's WAVs with it as a drum kit. Slots
without a note get the first free notes from 60 up, and the file says so. Given the slots' classes, the hats
form a choke group, as on a drum machine: a closed hat (``group=2``) cuts a ringing open hat (``off_by=2``).
"""
from __future__ import annotations

from typing import Optional, Sequence


# SFZ choke groups by class: (group, off_by); a region is silenced when a region of its off_by group starts
CHOKE_GROUPS = {"hh_open": (1, 2), "hh_closed": (2, None)}


def kit_sfz(slots: Sequence[tuple[str, Optional[int]]], name: str = "kit", first_free: int = 60,
            classes: Optional[Sequence[str]] = None, groups: Optional[Sequence[int]] = None) -> str:
    """SFZ text for slots given as (file name, MIDI note or None).

    Velocity sets the level with a quadratic curve (``amp_veltrack=100``, the SFZ default); each sample plays
    to its end once (``loop_mode=one_shot``), at its own pitch (``pitch_keycenter`` = its key). ``classes``
    (one per slot) adds the hat choke group (:data:`CHOKE_GROUPS`). ``groups`` (one per slot, 0 for none; the
    page's mixer) replaces it: a region of group g is cut by any region of group g starting, its own included.
    """
    if classes is not None and len(classes) != len(slots):
        raise ValueError(f"{len(classes)} classes for {len(slots)} slots")
    if groups is not None and len(groups) != len(slots):
        raise ValueError(f"{len(groups)} choke groups for {len(slots)} slots")
    used = {n for _, n in slots if n is not None}
    free = (n for n in range(first_free, 128) if n not in used)
    safe = "".join(ch if ch.isprintable() else " " for ch in name)
    lines = [f"// {safe}: drum kit made by neuraldrum", "// one region per sound, General MIDI drum keys", "",
             "<group> loop_mode=one_shot amp_veltrack=100 lovel=1 hivel=127", ""]
    for k, (file, note) in enumerate(slots):
        choke = ""
        if groups is not None:
            choke = f" group={groups[k]} off_by={groups[k]} off_mode=fast" if groups[k] else ""
        elif classes is not None and classes[k] in CHOKE_GROUPS:
            group, off_by = CHOKE_GROUPS[classes[k]]
            choke = f" group={group}" + (f" off_by={off_by} off_mode=fast" if off_by is not None else "")
        if note is None:
            note = next(free, None)
            if note is None:
                lines.append(f"// {file}: no free MIDI note left; not mapped")
                continue
            lines.append(f"// {file}: no note in the kit, given key {note}")
        lines.append(f"<region> sample={file} key={note} pitch_keycenter={note}{choke}")
    return "\n".join(lines) + "\n"
