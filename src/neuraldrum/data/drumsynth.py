"""DrumSynth presets (the ``.ds`` files LMMS ships): parse them, label them, jitter them, list them as a source.

A ``.ds`` file is an INI file written by DrumSynth 2 (Paul Kellett, maxim digital audio, 2000) and read by
LMMS's DrumSynth player. Seven sections, every key optional (older files, "DrumSynth v1.0", lack
``[NoiseBand2]``, ``[Distortion]`` and some keys; defaults fill them in):

- ``[General]`` Tuning (semitones), Stretch (% of every envelope's length), Level (output dB), Filter (on/off),
  HighPass (the filter is a high-pass instead of a low-pass), Resonance (0..100), FilterEnv (cutoff envelope);
- ``[Tone]`` On, Level, F1 → F2 (a sine whose pitch falls from F1 to F2), Droop (how fast), Phase (start, °),
  Envelope;
- ``[Noise]`` On, Level, Slope (-100 dark .. +100 bright), Envelope, FixedSeq (ignored: all noise here is seeded);
- ``[Overtones]`` On, Level, F1/Wave1/Track1 and F2/Wave2/Track2 (two oscillators that may follow the tone's
  pitch fall), Method (0 add, 1 FM, 2 ring modulation, 3 metallic), Param (depth of the method), Filter
  (read; the renderer ignores it), Envelope1, Envelope2;
- ``[NoiseBand]``, ``[NoiseBand2]`` On, Level, F (centre, Hz), dF (width, % of F), Envelope;
- ``[Distortion]`` On, Clipping (drive, dB), Bits (bit-depth reduction: 16 − 2·Bits bits), Rate (sample rate
  divided by 2^Rate).

Envelopes are space-separated ``time,level`` points, time in samples at 44.1 kHz, level 0..100. Levels are
0..181 (128 nominal, 181 = √2·128); they become gains ``(level/128)²``. Files in the wild use CRLF, Latin-1
comments ("©1997 Paul Kellett"), integer or decimal numbers, points beyond 10 s (the editor's end marker at
442000) and a few levels outside 0..100 (clamped); a comma decimal separator in a plain number is accepted.
Absurd numbers are clamped so that rendering stays finite: every number to ±1e6, tuning to ±48 semitones,
the output level and the distortion's drive to ±96 dB, envelope times to 1e8 samples.
A file that is not such an INI file raises :class:`DrumSynthError` naming the file.

Labels come from the folder (kit) and file name (instrument) through :func:`neuraldrum.taxonomy.classify_name`,
after DrumSynth-specific spellings are expanded ("K_8bit" → kick, "Hat_o" → open hat, "linn_clp" → clap); the
folder name is a fallback ("misc_hats/sleepy_1" is a hat). Folders of effects and tonal instruments, and bass
synths ("worm_bass", but not "bass drum") are excluded.

Variants (:func:`jitter`) move a preset within a musically sensible neighbourhood: tuning ±2 semitones, stretch
×0.8–1.25, the tonal/noisy balance ±4 dB, filter cutoff and noise-band centres ×0.85–1.15, and each envelope's
time axis ×0.8–1.25 — drawn from a generator seeded by (seed, kit, file, variant), so a variant does not
depend on how many others are made. The sound model itself, the :class:`Preset` in physical units and its DSP,
is :mod:`neuraldrum.data.drumsynth_render`.
"""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from ..audio.io import PathLike, safe_text
from ..taxonomy import NO_KEYWORD, classify_name, normalise_name
from .candidate import Candidate
from .drumsynth_render import Band, Distortion, Envelope, Noise, Overtones, Preset, Tone, render_clip

DRUMSYNTH_DIR = "/usr/share/lmms/samples/drumsynth"  # LMMS's presets [lmms-common]

SECTIONS = ("general", "tone", "noise", "overtones", "noiseband", "noiseband2", "distortion")
SOUND_SECTIONS = SECTIONS[1:6]
_DEFAULT_ENV = "0,100 4410,0"
NUMBER_LIMIT = 1e6  # numbers are clamped to ±this, envelope times to 0..ENVELOPE_LIMIT samples (real files: < 5e5)
ENVELOPE_LIMIT = 1e8
TUNING_LIMIT = 48.0  # semitones either way
LEVEL_DB_LIMIT = 96.0  # [General] Level and [Distortion] Clipping, dB


class DrumSynthError(ValueError):
    """A ``.ds`` file that cannot be read as a DrumSynth preset; the message names the file."""

    def __init__(self, path: PathLike, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: {reason}")


# ---------------------------------------------------------------- parsing

def _ini(text: str, path: PathLike) -> dict[str, dict[str, str]]:
    """{section: {key: value}}, names lower-cased; the last of repeated keys wins."""
    if "\0" in text:
        raise DrumSynthError(path, "binary data, not an INI text file")
    out: dict[str, dict[str, str]] = {}
    section: Optional[dict[str, str]] = None
    for i, line in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), 1):
        line = line.strip()
        if not line or line[0] in ";#":
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise DrumSynthError(path, f"line {i}: unterminated section header {line[:40]!r}")
            section = out.setdefault(line[1:-1].strip().lower(), {})
        elif "=" not in line:
            raise DrumSynthError(path, f"line {i}: expected key=value, got {line[:40]!r}")
        elif section is not None:  # keys before the first section are ignored
            key, value = line.split("=", 1)
            section[key.strip().lower()] = value.strip()
    if not any(s in out for s in SOUND_SECTIONS):
        raise DrumSynthError(path, "no [Tone], [Noise], [Overtones] or [NoiseBand] section: not a DrumSynth preset")
    return out


def _number(ini: dict, section: str, key: str, default: float, path: PathLike) -> float:
    raw = ini.get(section, {}).get(key.lower())
    if raw is None or raw == "":
        return default
    try:
        value = float(raw.replace(",", ".")) if raw.count(",") == 1 and "." not in raw else float(raw)
    except ValueError:
        raise DrumSynthError(path, f"[{section}] {key}={raw[:40]!r} is not a number") from None
    if not np.isfinite(value):
        raise DrumSynthError(path, f"[{section}] {key}={raw[:40]!r} is not finite")
    return min(max(value, -NUMBER_LIMIT), NUMBER_LIMIT)


def _envelope(ini: dict, section: str, key: str, path: PathLike, default: str = _DEFAULT_ENV) -> Envelope:
    raw = ini.get(section, {}).get(key.lower()) or default
    points = []
    for token in raw.split():
        m = re.fullmatch(r"(-?\d+(?:\.\d+)?),(-?\d+(?:\.\d+)?)", token)
        if not m:
            raise DrumSynthError(path, f"[{section}] {key}: bad envelope point {token[:40]!r} (want time,level)")
        points.append((min(max(0.0, float(m.group(1))), ENVELOPE_LIMIT),
                       min(100.0, max(0.0, float(m.group(2)))) / 100.0))
    if not points:
        raise DrumSynthError(path, f"[{section}] {key}: empty envelope")
    points.sort(key=lambda p: p[0])  # stable: points at one time keep their order (a vertical step)
    return Envelope(tuple(p[0] for p in points), tuple(p[1] for p in points))


def _gain(level: float) -> float:
    return (max(level, 0.0) / 128.0) ** 2


def parse_preset(text: str, path: PathLike = "<string>", name: Optional[str] = None) -> Preset:
    """A :class:`Preset` from the text of a ``.ds`` file. Raises :class:`DrumSynthError` naming ``path``."""
    ini = _ini(text, path)

    def num(section: str, key: str, default: float) -> float:
        return _number(ini, section, key, default, path)

    def on(section: str) -> bool:
        return section in ini and num(section, "On", 0) != 0

    def env(section: str, key: str = "Envelope") -> Envelope:
        return _envelope(ini, section, key, path)

    def band(section: str) -> Band:
        return Band(on(section), _gain(num(section, "Level", 128)), num(section, "F", 1000),
                    max(0.0, num(section, "dF", 50)) / 100, env(section))

    stretch = num("general", "Stretch", 100)
    name = name or Path(str(path)).stem
    return Preset(
        name=name,
        tuning=min(max(num("general", "Tuning", 0), -TUNING_LIMIT), TUNING_LIMIT),
        stretch=stretch / 100 if stretch > 0 else 1.0,  # 0 (three old files) means "not set"
        level_db=min(max(num("general", "Level", 0), -LEVEL_DB_LIMIT), LEVEL_DB_LIMIT),
        filter_on=num("general", "Filter", 0) != 0,
        highpass=num("general", "HighPass", 0) != 0,
        resonance=min(max(num("general", "Resonance", 0), 0.0), 100.0) / 100,
        filter_env=_envelope(ini, "general", "FilterEnv", path, "0,100 442000,100"),
        tone=Tone(on("tone"), _gain(num("tone", "Level", 128)), num("tone", "F1", 200), num("tone", "F2", 50),
                  min(max(num("tone", "Droop", 0), 0.0), 100.0) / 100, num("tone", "Phase", 0), env("tone")),
        noise=Noise(on("noise"), _gain(num("noise", "Level", 128)),
                    min(max(num("noise", "Slope", 0), -100.0), 100.0) / 100, env("noise")),
        overtones=Overtones(
            on("overtones"), _gain(num("overtones", "Level", 128)),
            num("overtones", "F1", 200), int(num("overtones", "Wave1", 0)), num("overtones", "Track1", 0) != 0,
            num("overtones", "F2", 120), int(num("overtones", "Wave2", 0)), num("overtones", "Track2", 0) != 0,
            int(num("overtones", "Method", 0)), min(max(num("overtones", "Param", 50), 0.0), 100.0) / 100,
            num("overtones", "Filter", 0) != 0, env("overtones", "Envelope1"), env("overtones", "Envelope2")),
        band1=band("noiseband"),
        band2=band("noiseband2"),
        distortion=Distortion(on("distortion"), min(max(num("distortion", "Clipping", 0), 0.0), LEVEL_DB_LIMIT),
                              int(min(max(num("distortion", "Bits", 0), 0), 7)),
                              int(min(max(num("distortion", "Rate", 0), 0), 7))),
        seed=stable_seed(name),
    )


def read_preset(path: PathLike, name: Optional[str] = None) -> Preset:
    """Parse a ``.ds`` file (UTF-8 or Latin-1, any line endings). Raises :class:`DrumSynthError` naming it."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise DrumSynthError(path, f"cannot read ({e.strerror or e})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return parse_preset(text, path, name)


def stable_seed(*parts: object) -> int:
    """A 63-bit seed from a hash of ``parts`` (the same in every process, unlike ``hash``)."""
    return int.from_bytes(hashlib.sha1("\x1f".join(map(str, parts)).encode("utf-8")).digest()[:8], "big") >> 1


# ---------------------------------------------------------------- variants

def jitter(p: Preset, rng: np.random.Generator) -> Preset:
    """A parameter-jittered neighbour of ``p`` (see the module docstring for the ranges)."""

    def factor(lo: float, hi: float) -> float:  # log-uniform: ×0.8 is as likely as ×1.25
        return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))

    balance = 10 ** (rng.uniform(-4.0, 4.0) / 40)  # ±4 dB between tonal and noisy parts: ±2 dB each way
    tuning = p.tuning + float(rng.uniform(-2.0, 2.0))
    stretch = p.stretch * factor(0.8, 1.25)
    cutoff = p.cutoff_scale * float(rng.uniform(0.85, 1.15))
    env = [factor(0.8, 1.25) for _ in range(6)]
    f1, f2 = float(rng.uniform(0.85, 1.15)), float(rng.uniform(0.85, 1.15))
    ot = p.overtones
    return replace(
        p, tuning=tuning, stretch=stretch, cutoff_scale=cutoff, seed=int(rng.integers(2 ** 62)),
        tone=replace(p.tone, gain=p.tone.gain * balance, env=p.tone.env.scaled(env[0])),
        overtones=replace(ot, gain=ot.gain * balance, env1=ot.env1.scaled(env[1]), env2=ot.env2.scaled(env[2])),
        noise=replace(p.noise, gain=p.noise.gain / balance, env=p.noise.env.scaled(env[3])),
        band1=replace(p.band1, gain=p.band1.gain / balance, freq=p.band1.freq * f1, env=p.band1.env.scaled(env[4])),
        band2=replace(p.band2, gain=p.band2.gain / balance, freq=p.band2.freq * f2, env=p.band2.env.scaled(env[5])),
    )


def variant(p: Preset, k: int, seed: int = 0) -> Preset:
    """Variant ``k`` (1, 2, …) of ``p`` under ``seed``: the same (p.name, k, seed) always gives the same preset."""
    return jitter(p, np.random.default_rng(stable_seed("drumsynth variant", p.name, k, seed)))


# ---------------------------------------------------------------- labels

EXCLUDED_KITS = {"effects": "zap/fx", "misc_fx": "zap/fx", "instrument": "tonal", "misc_synth": "tonal"}
# whole-word spellings of the DrumSynth libraries, replaced before the taxonomy reads a name
_WORDS = {"clp": "clap", "popclap": "pop clap", "clapfilt": "clap filter", "popsnare": "pop snare",
          "syntom": "synth tom", "cga": "conga", "cgam": "conga", "cow": "cowbell", "stk": "sticks",
          "cab": "cabasa", "cui": "cuica", "scratchy": "gritty", "ramacymlong": "cymbal long",
          "ramacymshort": "cymbal short", "rimshot": "rim shot"}  # a drum machine's rim shot is a rim click
_FIRST_LETTER = {"k": "kick", "s": "snare", "h": "hat"}  # "K_8bit", "S_Linn", "H_closed", "s_spit", "simple-k"
_HAT_LETTER = {"o": "open", "c": "closed"}  # "Hat_o", "TR606_Hat_C"
_BASS_SYNTH = re.compile(r"\bbass\b(?! drum)")  # "worm_bass", "misc_bass/synthbass": bass synths, not kicks
_PHRASES = [(re.compile(r"\boh so\b"), "so")]  # "oh_so_high_hat": the word "oh", not an open hat


def preset_name(stem: str) -> str:
    """The name the taxonomy reads: the file stem in words, DrumSynth spellings expanded."""
    words = " ".join(_WORDS.get(w, w) for w in normalise_name(stem).split()).split()
    if len(words) > 1 and words[0] in _FIRST_LETTER:
        words[0] = _FIRST_LETTER[words[0]]
    elif len(words) == 2 and words[1] in _FIRST_LETTER:  # "simple-k"
        words[1] = _FIRST_LETTER[words[1]]
    for i in range(1, len(words)):
        if words[i] in _HAT_LETTER and words[i - 1] in ("hat", "hh", "hihat"):
            words[i] = _HAT_LETTER[words[i]]
    name = " ".join(words)
    for rx, text in _PHRASES:
        name = rx.sub(text, name)
    return name


def classify_preset(kit: str, stem: str) -> tuple[Optional[str], str]:
    """``(class, rule)`` of the preset ``kit/stem.ds``, or ``(None, reason)``.

    The file name decides; the folder name joins it only when the file name has no class keyword
    ("misc_hats/sleepy_1" is a hat, "misc_hats/threshold_noise_open" an open hat).
    """
    if kit.lower() in EXCLUDED_KITS:
        return None, f"{EXCLUDED_KITS[kit.lower()]} (DrumSynth folder {kit!r})"
    if "&" in stem:
        return None, f"layered instruments ({stem!r})"
    name, folder = preset_name(stem), normalise_name(kit)
    if _BASS_SYNTH.search(name) or (_BASS_SYNTH.search(folder) and classify_name(name)[1] == NO_KEYWORD):
        return None, f"tonal (bass synth {kit}/{stem})"
    return classify_name(name, f"{name} {folder}")


# ---------------------------------------------------------------- the source

def _loader(preset: Preset):
    def load(sample_rate: int, max_seconds: float) -> np.ndarray:
        return render_clip(preset, sample_rate, max_seconds)

    return load


def drumsynth_presets(root: PathLike = DRUMSYNTH_DIR, variants: int = 0, seed: int = 0) -> Iterator[Candidate]:
    """Every ``*/*.ds`` under ``root``: kit = folder, instrument = file stem, and ``variants`` jittered
    variants of each labelled preset (layer "variant k"); all of one preset share a split (``link``)."""
    root = Path(root)
    if variants < 0:
        raise ValueError(f"variants must be >= 0, not {variants}")
    if not root.is_dir():
        return
    for path in sorted(p for p in root.glob("*/*") if p.suffix.lower() == ".ds" and p.is_file()):
        kit, stem = safe_text(path.parent.name), safe_text(path.stem)
        label, rule = classify_preset(kit, stem)
        base = Candidate("drumsynth", kit, stem, "", safe_text(str(path)), label, rule, link=os.path.realpath(path),
                         order=(kit, stem, 0))
        if label is None:
            yield base
            continue
        try:
            preset = read_preset(path, name=f"{kit}/{stem}")
        except DrumSynthError as e:
            yield replace(base, label=None, rule=f"unreadable preset ({e.reason})")
            continue
        yield replace(base, load=_loader(preset))
        for k in range(1, variants + 1):
            yield replace(base, layer=f"variant {k}", path=f"{base.path}#variant{k}:seed{seed}",
                          load=_loader(variant(preset, k, seed)), order=(kit, stem, k))
