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
from xml.parsers import expat
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence

from ..audio.io import PathLike, safe_text
from ..taxonomy import CLASSES, NO_KEYWORD, REFINES, classify_name, normalise_name
from .candidate import Candidate, file_loader
from .drumsynth import DRUMSYNTH_DIR
from .drumsynth import drumsynth_presets as _drumsynth_presets
from .soundfont import SoundFontError, avl_kit, gm_drum_kits

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
# the Debian packages whose Hydrogen kits the corpus reads; other kits in the same folders (Hydrogen's own
# hydrogen-data, a user's) are read only when named (``hydrogen_kits(extra_kits=…)``, ``data build --hydrogen-kit``)
HYDROGEN_PACKAGES = ("hydrogen-drumkits", "hydrogen-drumkits-effects")
DPKG_INFO = "/var/lib/dpkg/info"  # <package>.list: the files each installed package owns
OTHER_PACKAGE = "kit of a package the build does not read"
MAX_XML_BYTES = 16 << 20  # a drumkit.xml larger than this is refused (Hydrogen's largest are ~100 kB)
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


def _audio_files(root: Path, recursive: bool) -> tuple[list[Path], list[tuple[Path, str]]]:
    """The audio files in ``root`` (and, when ``recursive``, its subfolders, linked ones included, each real
    folder once; names starting with "." are skipped), and the folders left out: [(folder, reason)]."""
    skipped: list[tuple[Path, str]] = []

    def unreadable(e: OSError) -> None:
        skipped.append((Path(e.filename), f"unreadable folder ({e.strerror or e})"))

    if not recursive:
        try:
            names = sorted(os.listdir(root))
        except OSError as e:
            unreadable(e)
            return [], skipped
        return [root / f for f in names if Path(f).suffix.lower() in AUDIO_EXTENSIONS and (root / f).is_file()], skipped
    out = []
    seen = {os.path.realpath(root)}
    for d, dirs, files in os.walk(root, onerror=unreadable, followlinks=True):
        keep = []
        for x in sorted(dirs, key=lambda x: (os.path.islink(os.path.join(d, x)), x)):  # real folders first
            if x.startswith("."):
                continue
            real = os.path.realpath(os.path.join(d, x))
            if real in seen:  # a link to a folder listed already (or to one of its parents: a loop)
                skipped.append((Path(d) / x, f"linked folder listed already (links to {safe_text(real)})"))
            else:
                seen.add(real)
                keep.append(x)
        dirs[:] = keep
        out += [Path(d) / f for f in sorted(files)
                if not f.startswith(".") and Path(f).suffix.lower() in AUDIO_EXTENSIONS]
    return out, skipped


# ---------------------------------------------------------------- Hydrogen

def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child_text(el: ET.Element, name: str) -> Optional[str]:
    for c in el:
        if _local(c.tag) == name:
            return (c.text or "").strip()
    return None


def package_files(packages: Iterable[str], info_dir: Optional[PathLike] = None) -> dict[str, str]:
    """{path: package} of every file the named installed Debian packages own (dpkg's ``<package>.list``, also
    ``<package>:<arch>.list``); {} where dpkg keeps no such lists."""
    owned: dict[str, str] = {}
    for pkg in packages:
        folder = Path(DPKG_INFO if info_dir is None else info_dir)
        for lst in sorted(folder.glob(f"{pkg}.list")) + sorted(folder.glob(f"{pkg}:*.list")):
            try:
                for line in lst.read_text(encoding="utf-8", errors="surrogateescape").splitlines():
                    owned.setdefault(line, pkg)
            except OSError:
                continue
    return owned


def package_of(path: PathLike) -> Optional[str]:
    """The installed Debian package that owns ``path`` (``dpkg-query -S``), or None (no package, or no dpkg)."""
    import subprocess

    try:
        r = subprocess.run(["dpkg-query", "-S", str(path)], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    for line in r.stdout.splitlines() if r.returncode == 0 else ():
        pkgs, _, owned = line.partition(": ")
        if owned == str(path):
            return pkgs.split(",")[0].split(":")[0].strip()
    return None


def hydrogen_kits(roots: Sequence[PathLike] = HYDROGEN_DIRS, packages: Optional[Sequence[str]] = None,
                  extra_kits: Sequence[str] = (), info_dir: Optional[PathLike] = None,
                  found: Optional[list] = None) -> Iterator[Candidate]:
    """Every layer of every instrument of every ``*/drumkit.xml`` under ``roots``.

    Labels come from the instrument's name, then the layer's file name. Old kits (Hydrogen < 0.9.7) put
    ``<filename>`` directly in ``<instrument>``; that is read as a single layer. A kit whose own name is
    an exclusion (the guitar-strum "kit") is excluded whole; unnamed and empty slots are excluded.

    ``packages``: read only the kits whose ``drumkit.xml`` one of these Debian packages installed (dpkg's lists
    in ``info_dir``), and the kit folders named in ``extra_kits``; any other kit is excluded as
    :data:`OTHER_PACKAGE`, naming its package. None: every kit (a folder of the user's). ``found``: a list that
    gets ``{"kit", "folder", "package"}`` for each kit read.
    """
    owned = package_files(packages, info_dir) if packages is not None else {}
    missing = set(extra_kits)
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            continue
        try:
            kit_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        except OSError as e:
            kit_dirs = []
            yield from _skipped("hydrogen", safe_text(root.name), root, [(root, f"unreadable folder ({e.strerror})")])
        for kit_dir in kit_dirs:
            try:
                os.stat(kit_dir / "drumkit.xml")
            except (FileNotFoundError, NotADirectoryError):
                continue
            except OSError as e:  # a kit folder that cannot be read: say so rather than skip it
                yield from _skipped("hydrogen", safe_text(kit_dir.name), root,
                                    [(kit_dir, f"unreadable folder ({e.strerror or e})")])
                continue
            package = owned.get(str(kit_dir / "drumkit.xml"))
            if packages is not None and package is None and kit_dir.name not in extra_kits:
                other = package_of(kit_dir / "drumkit.xml")
                yield Candidate("hydrogen", safe_text(kit_dir.name), "", "", safe_text(str(kit_dir)), None,
                                f"{OTHER_PACKAGE} (from {'package ' + other if other else 'no Debian package'}, "
                                f"not {' or '.join(packages)}; --hydrogen-kit {safe_text(kit_dir.name)!r} reads it)")
                continue
            missing.discard(kit_dir.name)
            if found is not None:
                found.append({"kit": safe_text(kit_dir.name), "folder": safe_text(str(kit_dir)),
                              "package": package if package is not None else package_of(kit_dir / "drumkit.xml")})
            yield from _hydrogen_kit(kit_dir / "drumkit.xml")
    if missing:
        raise FileNotFoundError(f"--hydrogen-kit {', '.join(sorted(missing))}: no such kit folder (with a "
                                f"drumkit.xml) in {', '.join(str(r) for r in roots)}")


def _parse_xml(path: Path) -> ET.Element:
    """The root of an XML file (at most :data:`MAX_XML_BYTES`), through defusedxml: entity declarations (the
    "billion laughs", external entities) are refused.

    Raises:
        OSError: the file cannot be read.
        ET.ParseError, ValueError: not well-formed XML, an unknown declared encoding, or an entity declaration
            (defusedxml's errors are ValueErrors).
    """
    from defusedxml.ElementTree import fromstring

    with open(path, "rb") as f:
        data = f.read(MAX_XML_BYTES + 1)
    if len(data) > MAX_XML_BYTES:
        raise ValueError(f"larger than {MAX_XML_BYTES >> 20} MB")
    try:
        return fromstring(data)
    except LookupError as e:  # <?xml … encoding="U"?>: a codec Python does not know
        raise ValueError(str(e)) from None


def _inside(path: Path, folder: Path) -> bool:
    """True if ``path``, links resolved, lies in ``folder`` (links resolved)."""
    root = os.path.realpath(folder)
    return os.path.commonpath([root, os.path.realpath(path)]) == root


def _hydrogen_kit(xml: Path) -> Iterator[Candidate]:
    kit_dir = xml.parent
    kit_name = safe_text(kit_dir.name)
    try:
        doc = _parse_xml(xml)
    except (OSError, ET.ParseError, expat.ExpatError, ValueError) as e:
        why = e.strerror if isinstance(e, OSError) and e.strerror else f"{e.__class__.__name__}: {e}"
        yield Candidate("hydrogen", kit_name, "", "", safe_text(str(xml)), None, f"unreadable drumkit.xml ({why})")
        return
    kit = _child_text(doc, "name") or kit_name
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
            yield Candidate("hydrogen", kit, name, "", f"{safe_text(str(kit_dir))}#{i}", None, "empty slot",
                            order=(kit, i, 0))
            continue
        for j, (fn, vmax) in enumerate(rows):
            fn = fn.replace("\0", "")  # a NUL cannot be in a file name (and makes os calls raise)
            # a kit reads its own folder only: an absolute name is looked up by its base name in the kit folder,
            # and a relative one that leads out of it (.., a link) is excluded, not followed
            path = kit_dir / (os.path.basename(fn) if os.path.isabs(fn) else fn)
            if not _inside(path, kit_dir):
                yield Candidate("hydrogen", kit, name, f"{j + 1}/{len(rows)}", safe_text(str(path)), None,
                                "file outside the kit folder", order=(kit, i, j))
                continue
            try:
                velocity = min(127, max(0, int(round(127 * float(vmax))))) if vmax is not None else None
            except (ValueError, OverflowError):  # not a number, inf, nan
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
            yield Candidate("hydrogen", kit, name, f"{j + 1}/{len(rows)}", safe_text(str(path)), label, rule, velocity,
                            file_loader(path), link=os.path.realpath(path), order=(kit, i, j))


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
        try:
            items = list(gm_drum_kits(path) if role == "fluidr3" else avl_kit(path))
        except SoundFontError as e:
            items = [Candidate("soundfont", path.stem, "", "", safe_text(str(path)), None,
                               f"unreadable SoundFont ({e.reason})")]
        yield from items


# ---------------------------------------------------------------- sample folders

def lmms_samples(root: PathLike = LMMS_DIR) -> Iterator[Candidate]:
    """The LMMS drum samples, labelled from their file names (one instrument per file)."""
    root = Path(root)
    if not root.is_dir():
        return
    files, skipped = _audio_files(root, recursive=False)
    yield from _skipped("lmms", "lmms drums", root, skipped)
    for p in files:
        stem = safe_text(p.stem)
        label, rule = classify_name(stem)
        yield Candidate("lmms", "lmms drums", stem, "", safe_text(str(p)), label, rule,
                        load=file_loader(p), link=os.path.realpath(p), order=(p.name,))


def sonicpi_samples(root: PathLike = SONICPI_DIR) -> Iterator[Candidate]:
    """The Sonic Pi samples whose file-name prefix names drums (``drum_``, ``elec_``, ``bd_``, ``sn_``,
    ``perc_``); "_hard"/"_soft" endings are velocity layers of one instrument."""
    root = Path(root)
    if not root.is_dir():
        return
    files, skipped = _audio_files(root, recursive=False)
    yield from _skipped("sonicpi", "sonic pi", root, skipped)
    for p in files:
        stem = safe_text(p.stem)
        prefix = stem.split("_", 1)[0].lower()
        instrument, layer = split_velocity(stem)
        if prefix in SONICPI_PREFIXES:
            label, rule = classify_name(stem)
        else:
            label, rule = None, f"not a drum sample (Sonic Pi prefix {prefix}_)"
        yield Candidate("sonicpi", "sonic pi", instrument, layer, safe_text(str(p)), label, rule,
                        load=file_loader(p), link=os.path.realpath(p), order=(p.name,))


_OPEN = re.compile(r"\bopen|semiopen|\bohh?\b")
_CLOSED = re.compile(r"\b(closed?|pedal|foot|tight|chh?)\b")


def folder_samples(root: PathLike, cls: Optional[str] = None) -> Iterator[Candidate]:
    """Every audio file under ``root`` (recursively), labelled ``cls`` or from its file name, then its
    folders' names (nearest first, ``root`` itself last).

    Linked subfolders are followed, each real folder once; a subfolder that cannot be read, or a link to a
    folder listed already (a loop), is an excluded candidate that says so. Names that are not UTF-8 are
    kept with their odd bytes as ``\\xff`` escapes (:func:`neuraldrum.audio.io.safe_text`); the file still loads.

    Raises:
        FileNotFoundError: ``root`` is not a folder.
        ValueError: ``cls`` is not a class name.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"--folder {safe_text(str(root))}: "
                                f"{'a file, not a folder' if root.exists() else 'no such folder'}")
    if cls is not None and cls not in CLASSES:
        raise ValueError(f"--class {cls!r}: not a class; choose from {', '.join(CLASSES)}")
    root = root.resolve()
    kit = safe_text(root.name)
    files, skipped = _audio_files(root, recursive=True)
    yield from _skipped("folder", kit, root, skipped)
    for p in files:
        rel = p.relative_to(root)
        instrument, layer = split_velocity(safe_text(rel.with_suffix("").as_posix()))
        if cls is not None:
            label, rule = cls, "--class"
        else:
            names = [safe_text(p.stem), *map(safe_text, reversed(rel.parent.parts)), kit]
            label, rule = classify_name(*names)
            if label == "hh_closed":  # "Hats/Open/01.wav": a hat by its folder, open by another part of the path
                words = " ".join(normalise_name(n) for n in names[:-1])
                if _OPEN.search(words) and not _CLOSED.search(words):
                    label, rule = "hh_open", f"{rule}, and 'open' in {rel.parent.as_posix()!r} or the file name"
        yield Candidate("folder", kit, instrument, layer, safe_text(str(p)), label, rule,
                        load=file_loader(p), link=str(p), order=(safe_text(rel.as_posix()),))


def _skipped(source: str, kit: str, root: Path, skipped: list[tuple[Path, str]]) -> Iterator[Candidate]:
    """An excluded candidate for each folder that :func:`_audio_files` left out (unreadable, a loop)."""
    for folder, reason in skipped:
        rel = safe_text(os.path.relpath(folder, root))
        yield Candidate(source, kit, rel, "", safe_text(str(folder)), None, reason, order=(rel,))


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
                    drumsynth_seed: int = 0, hydrogen_extra: Sequence[str] = (),
                    kits_read: Optional[list] = None) -> Iterator[Candidate]:
    """Candidates of the named library sources, then of each folder. ``drumsynth_variants`` and
    ``drumsynth_seed``: jittered variants per DrumSynth preset, and their seed. Hydrogen kits: those of
    :data:`HYDROGEN_PACKAGES` and the kit folders named in ``hydrogen_extra``; each one read is appended to
    ``kits_read`` (see :func:`hydrogen_kits`)."""
    table = {"hydrogen": lambda: hydrogen_kits(HYDROGEN_DIRS, HYDROGEN_PACKAGES, hydrogen_extra, found=kits_read),
             "soundfont": soundfont_kits, "lmms": lmms_samples,
             "sonicpi": sonicpi_samples,
             "drumsynth": lambda: drumsynth_presets(variants=drumsynth_variants, seed=drumsynth_seed)}
    for name in sources:
        if name not in table:
            raise ValueError(f"unknown source {name!r}; choose from {', '.join(ALL_SOURCES)}")
        yield from table[name]()
    for folder in folders:
        yield from folder_samples(folder, folder_class)
