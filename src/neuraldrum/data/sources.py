"""Where corpus clips come from: one generator per sample library, each yielding :class:`Candidate` items.

A candidate carries its provenance (source, kit, instrument, layer, velocity, original path), the label
that the taxonomy gave it (or the reason it is excluded), and a loader that returns its audio. Nothing
is read or rendered until the builder calls ``load``, so excluded items cost nothing.

Sources (Debian packages in brackets):

- ``hydrogen``: Hydrogen drum kits, every ``<layer>`` its own recording [hydrogen-drumkits].
- ``soundfont``: FluidR3's General MIDI drum kits and the AVL drum kits, rendered with FluidSynth
  [fluid-soundfont-gm, avldrums.lv2-soundfont, libfluidsynth3]; see :mod:`neuraldrum.data.soundfont`.
- ``lmms``: the LMMS drum samples [lmms-common].
- ``sonicpi``: the Sonic Pi drum samples [sonic-pi-samples].
- ``drumsynth``: the LMMS DrumSynth presets, rendered in numpy [lmms-common]; not in the default set (see
  :data:`OPTIONAL_SOURCES`); see :mod:`neuraldrum.data.drumsynth`.
- ``folder``: any folder of audio files, labelled from file and folder names or all as one class.
"""
from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence

from ..audio.io import PathLike
from ..taxonomy import CLASSES, NO_KEYWORD, REFINES, classify_name, normalise_name
from .candidate import Candidate, file_loader
from .drumsynth import DRUMSYNTH_DIR
from .drumsynth import drumsynth_presets as _drumsynth_presets
from .soundfont import avl_kit, gm_drum_kits

SOURCES = ("hydrogen", "soundfont", "lmms", "sonicpi")  # the default libraries, in the order a duplicate is kept
OPTIONAL_SOURCES = ("drumsynth",)  # used only when asked for (synthesised, not recorded)
ALL_SOURCES = SOURCES + OPTIONAL_SOURCES
SOURCE_RANK = {name: i for i, name in enumerate(ALL_SOURCES + ("folder",))}

HYDROGEN_DIRS = ("/usr/share/hydrogen/data/drumkits", "/usr/local/share/hydrogen/data/drumkits")
SOUNDFONT_DIRS = ("/usr/share/sounds/sf2", "/usr/share/soundfonts")
LMMS_DIR = "/usr/share/lmms/samples/drums"
SONICPI_DIR = "/usr/share/sonic-pi/samples"
# DRUMSYNTH_DIR (the LMMS DrumSynth presets) is defined beside the DrumSynth source, in .drumsynth
APT_PACKAGES = {
    "hydrogen": "hydrogen-drumkits hydrogen-drumkits-effects",
    "soundfont": "fluid-soundfont-gm avldrums.lv2-soundfont libfluidsynth3",
    "lmms": "lmms-common",
    "sonicpi": "sonic-pi-samples",
    "drumsynth": "lmms-common",
}
AUDIO_EXTENSIONS = {".wav", ".wave", ".flac", ".ogg", ".oga", ".aif", ".aiff", ".aifc", ".mp3"}

# file-name endings that name a velocity layer rather than an instrument ("drum_snare_hard", "Kick-Softest")
_VELOCITY_SUFFIX = re.compile(r"[ _.-]+(softest|soft|medium|med|hardest|hard|pp|mp|mf|ff|fff|v\d{1,3}|vel\d{1,3})$",
                              re.IGNORECASE)
# Sonic Pi file-name prefixes worth classifying; the rest are synths, loops of noise, voices, FX
SONICPI_PREFIXES = ("drum", "elec", "bd", "sn", "perc", "tabla", "loop")


def split_velocity(stem: str) -> tuple[str, str]:
    """"drum_snare_hard" → ("drum_snare", "hard"); names without a velocity ending → (stem, "")."""
    m = _VELOCITY_SUFFIX.search(stem)
    if m and m.start() > 0:
        return stem[: m.start()], m.group(1).lower()
    return stem, ""


def _named(name: str) -> bool:
    """Whether an instrument slot has a real name (a word of three letters), not "17" or "f#4 - "."""
    return any(len(w) >= 3 and w.isalpha() for w in normalise_name(name).split())


def _audio_files(root: Path, recursive: bool) -> list[Path]:
    if not recursive:
        return sorted(p for p in root.iterdir() if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())
    out = []
    for d, dirs, files in os.walk(root):
        dirs[:] = sorted(x for x in dirs if not x.startswith("."))
        out += [Path(d) / f for f in sorted(files)
                if not f.startswith(".") and Path(f).suffix.lower() in AUDIO_EXTENSIONS]
    return out


# ---------------------------------------------------------------- Hydrogen

def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child_text(el: ET.Element, name: str) -> Optional[str]:
    for c in el:
        if _local(c.tag) == name:
            return (c.text or "").strip()
    return None


def hydrogen_kits(roots: Sequence[PathLike] = HYDROGEN_DIRS) -> Iterator[Candidate]:
    """Every layer of every instrument of every ``*/drumkit.xml`` under ``roots``.

    Labels come from the instrument's name, then the layer's file name. Old kits (Hydrogen < 0.9.7) put
    ``<filename>`` directly in ``<instrument>``; that is read as a single layer. A kit whose own name is
    an exclusion (the guitar-strum "kit") is excluded whole; unnamed and empty slots are excluded.
    """
    for root in roots:
        if Path(root).is_dir():
            for xml in sorted(Path(root).glob("*/drumkit.xml")):
                yield from _hydrogen_kit(xml)


def _hydrogen_kit(xml: Path) -> Iterator[Candidate]:
    kit_dir = xml.parent
    try:
        doc = ET.parse(xml).getroot()
    except ET.ParseError as e:
        yield Candidate("hydrogen", kit_dir.name, "", "", str(xml), None, f"unreadable drumkit.xml ({e})")
        return
    kit = _child_text(doc, "name") or kit_dir.name
    kit_cls, kit_reason = classify_name(kit)
    kit_excluded = kit_cls is None and kit_reason != NO_KEYWORD
    instruments = [el for el in doc.iter() if _local(el.tag) == "instrument"]
    for i, inst in enumerate(instruments):
        name = _child_text(inst, "name") or ""
        layers = [el for el in inst.iter() if _local(el.tag) == "layer"]
        if layers:
            rows = [(_child_text(el, "filename"), _child_text(el, "max")) for el in layers]
        else:
            rows = [(_child_text(inst, "filename"), None)]
        rows = [(f, m) for f, m in rows if f]
        if not rows:
            yield Candidate("hydrogen", kit, name, "", f"{kit_dir}#{i}", None, "empty slot", order=(kit, i, 0))
            continue
        for j, (fn, vmax) in enumerate(rows):
            path = kit_dir / fn if not os.path.isabs(fn) else Path(fn)
            if not path.exists() and os.path.isabs(fn):
                path = kit_dir / os.path.basename(fn)
            try:
                velocity = int(round(127 * float(vmax))) if vmax is not None else None
            except ValueError:
                velocity = None
            if kit_excluded:
                label, rule = None, f"{kit_reason} (kit {kit!r})"
            else:
                label, rule = classify_name(name, Path(fn).stem)
                if label is None and rule == NO_KEYWORD and not _named(name):
                    rule = "unnamed slot"
                file_label, file_rule = classify_name(Path(fn).stem)
                if (label, file_label) in REFINES:
                    label, rule = file_label, f"{file_rule}, refining instrument {name!r}"
            yield Candidate("hydrogen", kit, name, f"{j + 1}/{len(rows)}", str(path), label, rule, velocity,
                            file_loader(path) if label else None, link=os.path.realpath(path), order=(kit, i, j))


# ---------------------------------------------------------------- SoundFonts

def find_soundfonts(dirs: Sequence[PathLike] = SOUNDFONT_DIRS) -> dict[str, Path]:
    """The SoundFonts this source knows, by role: "fluidr3", "avl:<name>"."""
    found: dict[str, Path] = {}
    for d in dirs:
        d = Path(d)
        if (d / "FluidR3_GM.sf2").is_file() and "fluidr3" not in found:
            found["fluidr3"] = d / "FluidR3_GM.sf2"
        for name in ("Black_Pearl_4_LV2", "Red_Zeppelin_4_LV2"):
            if (d / f"{name}.sf2").is_file() and f"avl:{name}" not in found:
                found[f"avl:{name}"] = d / f"{name}.sf2"
    return found


def soundfont_kits(dirs: Sequence[PathLike] = SOUNDFONT_DIRS) -> Iterator[Candidate]:
    """FluidR3's bank-128 drum kits and the AVL kits, one candidate per (kit, note, distinct velocity layer).

    Rendering needs libfluidsynth (through pyfluidsynth); it happens in each candidate's loader.
    """
    for role, path in sorted(find_soundfonts(dirs).items(), key=lambda kv: kv[0] != "fluidr3"):
        yield from (gm_drum_kits(path) if role == "fluidr3" else avl_kit(path))


# ---------------------------------------------------------------- sample folders

def lmms_samples(root: PathLike = LMMS_DIR) -> Iterator[Candidate]:
    """The LMMS drum samples, labelled from their file names (one instrument per file)."""
    root = Path(root)
    if not root.is_dir():
        return
    for p in _audio_files(root, recursive=False):
        label, rule = classify_name(p.stem)
        yield Candidate("lmms", "lmms drums", p.stem, "", str(p), label, rule,
                        load=file_loader(p) if label else None, link=os.path.realpath(p), order=(p.name,))


def sonicpi_samples(root: PathLike = SONICPI_DIR) -> Iterator[Candidate]:
    """The Sonic Pi samples whose file-name prefix names drums (``drum_``, ``elec_``, ``bd_``, ``sn_``,
    ``perc_``); "_hard"/"_soft" endings are velocity layers of one instrument."""
    root = Path(root)
    if not root.is_dir():
        return
    for p in _audio_files(root, recursive=False):
        prefix = p.stem.split("_", 1)[0].lower()
        instrument, layer = split_velocity(p.stem)
        if prefix in SONICPI_PREFIXES:
            label, rule = classify_name(p.stem)
        else:
            label, rule = None, f"not a drum sample (Sonic Pi prefix {prefix}_)"
        yield Candidate("sonicpi", "sonic pi", instrument, layer, str(p), label, rule,
                        load=file_loader(p) if label else None, link=os.path.realpath(p), order=(p.name,))


def folder_samples(root: PathLike, cls: Optional[str] = None) -> Iterator[Candidate]:
    """Every audio file under ``root`` (recursively), labelled ``cls`` or from its file name, then its
    folders' names (nearest first, ``root`` itself last).

    Raises:
        FileNotFoundError: ``root`` is not a folder.
        ValueError: ``cls`` is not a class name.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"--folder {root}: no such folder")
    if cls is not None and cls not in CLASSES:
        raise ValueError(f"--class {cls!r}: not a class; choose from {', '.join(CLASSES)}")
    root = root.resolve()
    for p in _audio_files(root, recursive=True):
        rel = p.relative_to(root)
        instrument, layer = split_velocity(rel.with_suffix("").as_posix())
        if cls is not None:
            label, rule = cls, "--class"
        else:
            label, rule = classify_name(p.stem, *reversed(rel.parent.parts), root.name)
        yield Candidate("folder", root.name, instrument, layer, str(p), label, rule,
                        load=file_loader(p) if label else None, link=str(p), order=(rel.as_posix(),))


# ---------------------------------------------------------------- all together

def _has_fluidsynth() -> bool:
    try:
        import fluidsynth  # noqa: F401  (pyfluidsynth; raises ImportError when libfluidsynth is missing)
    except (ImportError, OSError):
        return False
    return True


def available_sources() -> dict[str, bool]:
    """Which libraries are installed here."""
    has_h2 = any(Path(d).is_dir() and any(Path(d).glob("*/drumkit.xml")) for d in HYDROGEN_DIRS)
    return {
        "hydrogen": has_h2,
        "soundfont": bool(find_soundfonts()) and _has_fluidsynth(),
        "lmms": Path(LMMS_DIR).is_dir(),
        "sonicpi": Path(SONICPI_DIR).is_dir(),
        "drumsynth": Path(DRUMSYNTH_DIR).is_dir(),
    }


def drumsynth_presets(root: Optional[PathLike] = None, variants: int = 0, seed: int = 0) -> Iterator[Candidate]:
    """The LMMS DrumSynth presets under ``root`` (default :data:`DRUMSYNTH_DIR`) and ``variants`` jittered
    variants of each labelled one (:func:`neuraldrum.data.drumsynth.drumsynth_presets`)."""
    yield from _drumsynth_presets(DRUMSYNTH_DIR if root is None else root, variants, seed)


def iter_candidates(sources: Iterable[str] = SOURCES, folders: Sequence[PathLike] = (),
                    folder_class: Optional[str] = None, drumsynth_variants: int = 0,
                    drumsynth_seed: int = 0) -> Iterator[Candidate]:
    """Candidates of the named library sources, then of each folder. ``drumsynth_variants`` and
    ``drumsynth_seed``: jittered variants per DrumSynth preset, and their seed."""
    table = {"hydrogen": hydrogen_kits, "soundfont": soundfont_kits, "lmms": lmms_samples,
             "sonicpi": sonicpi_samples,
             "drumsynth": lambda: drumsynth_presets(variants=drumsynth_variants, seed=drumsynth_seed)}
    for name in sources:
        if name not in table:
            raise ValueError(f"unknown source {name!r}; choose from {', '.join(ALL_SOURCES)}")
        yield from table[name]()
    for folder in folders:
        yield from folder_samples(folder, folder_class)
