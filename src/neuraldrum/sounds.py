"""Sound-making verbs: generate, encode, resynth, variations, morph, kit, classes.

Each parses its arguments, calls the library (:mod:`neuraldrum.engine`, :mod:`neuraldrum.voice`,
:mod:`neuraldrum.kit`) and prints; ``--json`` prints what a program may read.

Options are checked before anything is loaded or written, and errors name the option (``--seed -1: …``).
Outputs never replace a file unless ``--overwrite`` is given: ``generate``, ``variations`` and ``morph`` name
their sounds ``<prefix>_000.wav``, ``_001``, … and skip an index that a file already has, claiming each name
atomically (:func:`~neuraldrum.atomic.write_new`), so concurrent runs into one folder never collide; each
name is printed as its file lands, and ``--json`` lists the names written. ``resynth`` refuses an existing
``-o`` file. A folder a failed run made is removed again when it is empty.
"""
from __future__ import annotations

import argparse
import io
import json
import math
import os
import secrets
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Optional, Sequence

from .atomic import atomic_file, remove_stale, target_of, write_new

if TYPE_CHECKING:  # (numpy is imported where a verb needs it: `classes` starts without it)
    import numpy as np

CHUNK = 64  # sounds rendered at once by `generate`: memory stays flat however large -n is
LONG_RUN = 1000  # from this many sounds, progress lines go to stderr even when it is not a terminal
# option → (lowest, highest, lowest excluded): the library's own bounds, checked here to name the option
_NUMBERS = {"x": (-1.0, 1.0, False), "y": (-1.0, 1.0, False), "fine": (-1.0, 1.0, False),
            "range": (0.0, 1e3, True), "temperature": (0.0, 10.0, False), "amount": (0.0, 100.0, False),
            "tune": (-12.0, 12.0, False), "decay": (0.0, math.inf, True), "velocity": (1.0, 127.0, False)}


def _option(attr: str) -> str:
    return {"n": "-n", "out": "-o"}.get(attr, f"--{attr}")


def _check_options(args: argparse.Namespace) -> None:
    """Refuse any option of ``args`` out of its range, with one line naming the option, before anything runs."""
    from .sampler import MAX_LENGTH_S

    numbers = {**_NUMBERS, "length": (0.0, MAX_LENGTH_S, True)}
    for attr, (lo, hi, lo_open) in numbers.items():
        v = getattr(args, attr, None)
        if v is not None and not (math.isfinite(v) and lo <= v <= hi and not (lo_open and v == lo)):
            where = f"> {lo:g}" if hi == math.inf else f"{'(' if lo_open else '['}{lo:g}, {hi:g}]"
            raise ValueError(f"{_option(attr)} {v:g}: must be a finite number {'' if hi == math.inf else 'in '}{where}")
    n = getattr(args, "n", 1)
    cpus = os.cpu_count() or 1
    for attr, lo, hi in (("n", 1, None), ("steps", 2, None), ("seed", 0, 2 ** 63 - max(n, 1)),
                         ("threads", 1, 4 * cpus)):
        v = getattr(args, attr, None)
        if v is not None and not (lo <= v and (hi is None or v <= hi)):
            raise ValueError(f"{_option(attr)} {v}: must be a whole number " + (f"≥ {lo}" if hi is None else
                             f"from {lo} to {hi}" + (" (4 × the CPU count)" if attr == "threads" else "")))
    if getattr(args, "out", None) == "":
        raise ValueError("-o '': an empty path; name the output")


def _engine(args: argparse.Namespace, hifi: int = 0):
    """The engine the options ask for; ``hifi``: Griffin-Lim iterations when --hifi is not given (a kit's own)."""
    from .engine import Engine, player_model

    model, backend = player_model(args.model, getattr(args, "backend", "auto"))
    return Engine(model, threads=getattr(args, "threads", None), backend=backend, warm=False,  # (a batch of work:
                  hifi=True if getattr(args, "hifi", False) else hifi)  # no first call to hide a slow start of)


def _controls(args: argparse.Namespace):
    """The XY pad controls of ``generate``, or None when none is given (options already in range)."""
    from .engine import Controls

    if all(getattr(args, k) is None for k in ("x", "y", "fine", "range")) and args.axes is None:
        return None
    if args.temperature is not None:
        raise ValueError("--temperature: applies to prior samples only; --x/--y/--fine/--range/--axes start from "
                         "the class centre, so leave it out")
    axes: Any = "pca"
    if args.axes not in (None, "pca"):
        try:
            axes = tuple(int(a) for a in args.axes.split(","))
        except ValueError:
            axes = ()
        if len(axes) != 2 or min(axes) < 0:
            raise ValueError(f"--axes {args.axes}: use 'pca' or two latent dimensions 'i,j' (whole numbers ≥ 0)")
    return Controls(x=args.x or 0.0, y=args.y or 0.0, fine=args.fine or 0.0,
                    range=args.range if args.range is not None else 2.0, axes=axes).validate()


def _folders_to_make(out: Path, folder: bool) -> list[Path]:
    """The missing folders on the way to ``out`` (deepest first, ``out`` itself too when it is to be a ``folder``);
    a file in the way is refused, naming it."""
    made, p = [], out
    while not p.exists() and not p.is_symlink():
        made.append(p)
        p = p.parent
    if p == out and folder and not p.is_dir():
        raise FileExistsError(f"{out}: exists and is not a folder")
    if p != out and not p.is_dir():
        raise NotADirectoryError(f"{out}: {p} is a file, not a folder")
    return made


def _remove_empty(made: list[Path]) -> None:
    """Remove the folders a failed run made (deepest first) while they are empty."""
    for p in made:
        try:
            p.rmdir()
        except OSError:
            break


def _wav_bytes(x: np.ndarray, sample_rate: int, name: Path) -> bytes:
    """A 16-bit WAV of ``x`` in memory (as :func:`~neuraldrum.audio.io.save_wav` writes it)."""
    import numpy as np
    import soundfile as sf

    from .audio.io import AudioError

    if not np.all(np.isfinite(x)):
        raise AudioError(name, "the model made NaN or Inf samples; nothing written for it")
    buf = io.BytesIO()
    sf.write(buf, np.clip(np.asarray(x, np.float32).reshape(-1), -1.0, 1.0), sample_rate, subtype="PCM_16",
             format="WAV")
    return buf.getvalue()


def _write(tmp: Path, data: bytes) -> None:
    """Fill a temp file; an OS error (a full disk …) names the file it stands for."""
    try:
        with open(tmp, "wb") as f:
            f.write(data)
    except OSError as e:
        raise type(e)(e.errno, e.strerror, str(target_of(tmp))) from None


def _put(names: Iterator[Path], data: bytes, overwrite: bool, clean: bool = True) -> Path:
    """Write WAV ``data`` under the first of ``names``, replacing a file there, with ``overwrite``; else under the
    first name that no file has, claimed atomically. Returns the path written."""
    if overwrite:
        path = next(names)
        with atomic_file(path, ".wav") as tmp:
            _write(tmp, data)
        return path
    return write_new(names, lambda tmp: _write(tmp, data), ".wav", clean=clean)


class _Outputs:
    """A verb's output folder and the numbered WAVs it writes there, each printed as it lands.

    Sound k goes to ``<prefix><k:03d>.wav``. With ``overwrite`` a file of that name is replaced; without it no file
    is ever replaced: each sound takes the next index that no file has, claimed atomically, so a user's files
    and concurrent runs' are safe. A folder made for the run is removed again if the run fails while it is empty.
    """

    def __init__(self, args: argparse.Namespace, prefix: str, sample_rate: int, total: int):
        self.out, self.prefix, self.sample_rate, self.total = Path(args.out), prefix, sample_rate, total
        self.overwrite, self.json = bool(args.overwrite), bool(getattr(args, "json", False))
        self.paths: list[Path] = []
        self.k = 0
        self.tty = sys.stderr.isatty()
        self._made = _folders_to_make(self.out, folder=True)

    def __enter__(self) -> "_Outputs":
        self.out.mkdir(parents=True, exist_ok=True)
        for name in os.listdir(self.out):  # killed runs' temp files, once per run rather than once per sound
            if name.startswith(f".{self.prefix}") and ".tmp-" in name:
                remove_stale(target_of(self.out / name), ".wav")
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.tty and self.total > 1:
            print("\r\033[K", end="", file=sys.stderr, flush=True)
        if exc_type is not None:
            _remove_empty(self._made)

    def _names(self) -> Iterator[Path]:
        while True:
            yield self.out / f"{self.prefix}{self.k:03d}.wav"
            self.k += 1

    def save(self, x: np.ndarray) -> Path:
        """Write one sound under the next name; print it (text mode) and the progress. Returns its path."""
        data = _wav_bytes(x, self.sample_rate, self.out / f"{self.prefix}{self.k:03d}.wav")
        path = _put(self._names(), data, self.overwrite, clean=False)
        self.k += 1
        self.paths.append(path)
        done = len(self.paths)
        if self.tty and self.total > 1:
            print("\r\033[K", end="", file=sys.stderr, flush=True)
        if not self.json:
            print(path, flush=True)
        if self.tty and self.total > 1:
            print(f"\r{done}/{self.total} sounds written", end="", file=sys.stderr, flush=True)
        elif self.total >= LONG_RUN and (done % max(1, self.total // 10) == 0 or done == self.total):
            print(f"neuraldrum: {done}/{self.total} sounds written", file=sys.stderr, flush=True)
        return path


def _print(args: argparse.Namespace, payload: dict, text: Optional[str]) -> None:
    """``payload`` as JSON with ``--json``, else ``text`` (None: the lines were printed already)."""
    if getattr(args, "json", False):
        print(json.dumps(payload, indent=1))
    elif text is not None:
        print(text)


def _sampler(args: argparse.Namespace):
    from .sampler import SamplerControls

    return SamplerControls(tune=args.tune, decay=args.decay, velocity=args.velocity, length=args.length).validate()


def cmd_generate(args: argparse.Namespace) -> int:
    from .voice import generate_voices

    _check_options(args)
    controls = _controls(args)
    eng = _engine(args)
    if controls is not None and controls.axes != "pca" and max(controls.axes) >= eng.latent_dim:
        raise ValueError(f"--axes {args.axes}: this model's latent dimensions are 0..{eng.latent_dim - 1}")
    cls = eng.classes[eng.class_index(args.cls)]
    _say_untrained(args, [cls])
    seed = secrets.randbelow(2 ** 31) if args.seed is None else args.seed
    voices = generate_voices(cls, args.n, seed, args.temperature, controls, sampler=_sampler(args))
    t = None if controls is not None else eng.prior_temperature(args.temperature)
    files = []
    with _Outputs(args, f"{cls}_", eng.sample_rate, len(voices)) as out:
        for i in range(0, len(voices), CHUNK):
            chunk = voices[i:i + CHUNK]
            for v, w in zip(chunk, eng.render(chunk)):
                p = out.save(w)
                files.append({"file": str(p), "class": cls, "seed": v.seed if v.controls is None else v.variation_seed,
                              "temperature": t, "voice": v.to_dict(),
                              "z": [round(float(x), 6) for x in eng.voice_z(v)]})
    _print(args, {"files": files}, None)
    return 0


def cmd_encode(args: argparse.Namespace) -> int:
    import numpy as np

    _check_options(args)
    eng = _engine(args)
    e = eng.encode(args.file, cls=args.cls)
    payload = {"file": args.file, "class": e.cls, "probabilities": {k: round(v, 4) for k, v in e.probs.items()},
               "z": [round(float(v), 6) for v in e.z]}
    top = sorted(e.probs.items(), key=lambda kv: -kv[1])[:3]
    _print(args, payload, f"{args.file}: {e.cls}  (" + ", ".join(f"{c} {p:.2f}" for c, p in top) + ")\n"
           f"z = {np.array2string(e.z, precision=3, max_line_width=100)}")
    return 0


def cmd_resynth(args: argparse.Namespace) -> int:
    _check_options(args)
    out = Path(args.out)
    if out.is_dir():
        raise IsADirectoryError(f"{out}: is a folder; -o names the WAV file to write")
    if os.path.lexists(out) and not args.overwrite:
        raise FileExistsError(f"{out}: exists; pass --overwrite to replace it")
    made = _folders_to_make(out, folder=False)[1:]
    eng = _engine(args)
    wav = eng.resynth(args.file, cls=args.cls)
    try:
        p = _put(iter([out]), _wav_bytes(wav, eng.sample_rate, out), args.overwrite)
    except BaseException:
        _remove_empty(made)
        raise
    _print(args, {"file": str(p)}, str(p))
    return 0


def cmd_variations(args: argparse.Namespace) -> int:
    _check_options(args)
    eng = _engine(args)
    e = eng.encode(args.file, cls=args.cls)
    with _Outputs(args, f"{Path(args.file).stem}_var", eng.sample_rate, args.n) as out:
        for waves in eng.iter_variations(e, args.n, args.amount, seed=args.seed, chunk=CHUNK):  # flat memory
            for w in waves:
                out.save(w)
    _print(args, {"class": e.cls, "files": [str(p) for p in out.paths]}, None)
    return 0


def cmd_morph(args: argparse.Namespace) -> int:
    _check_options(args)
    eng = _engine(args)
    a = eng.encode(args.a)
    b = eng.encode(args.b)
    with _Outputs(args, "morph_", eng.sample_rate, args.steps) as out:
        for waves in eng.iter_morph(a, b, args.steps, chunk=CHUNK):  # flat memory
            for w in waves:
                out.save(w)
    _print(args, {"from": a.cls, "to": b.cls, "files": [str(p) for p in out.paths]}, None)
    return 0


def _say_untrained(args: argparse.Namespace, classes: Sequence[str]) -> None:
    """A warning when the model's corpus (as its bundle records it) had no training clip of some of ``classes``:
    their sounds come from a decoder that never learnt them."""
    if args.model and (Path(args.model) / "export.json").is_file():  # an export folder (maybe no torch here)
        return
    if args.model:
        from .bundle import read_meta

        meta = read_meta(Path(args.model))
    else:  # the packaged bundle's (read as it is: no torch needed)
        from .config import DEFAULT_EXPORT

        meta = json.loads((DEFAULT_EXPORT.parent / "default" / "bundle.json").read_text())
    corpus = meta.get("corpus")
    counts = corpus.get("counts") if isinstance(corpus, dict) else None
    if not isinstance(counts, dict):
        return
    never = [c for c in dict.fromkeys(classes) if isinstance(counts.get(c), dict) and not counts[c].get("train")]
    if never:
        print(f"neuraldrum: warning: this model was trained without {', '.join(never)} (no training clips in its "
              f"corpus): {'that sound is' if len(never) == 1 else 'those sounds are'} guesswork", file=sys.stderr)


def cmd_kit(args: argparse.Namespace) -> int:
    from .config import MAX_GL_ITERS, gl_iters_ok
    from .beat import add_sections, load_sections
    from .kit import KIT_FILE, load_kit, new_kit, write_kit

    _check_options(args)
    src = load_kit(args.from_kit) if args.from_kit else None
    beat = load_sections(args.from_kit, [s.name for s in src.slots]) if src is not None else {}  # patterns, mixer
    hifi = src.info.get("hifi", 0) if src is not None else 0  # a kit rendered in hi-fi is remade so
    if not gl_iters_ok(hifi):
        raise ValueError(f"{args.from_kit}: info.hifi must be a whole number of Griffin-Lim iterations, 0 to "
                         f"{MAX_GL_ITERS}")
    eng = _engine(args, hifi)
    kit = src if src is not None else new_kit(eng, args.seed, args.temperature)
    _say_untrained(args, [sl.voice.cls for sl in kit.slots])
    if args.format == "wav":
        out = write_kit(eng, kit, args.out)
    else:  # WAVs + kit.json, plus kit.sfz and/or drumkit.xml (Hydrogen) in the same folder
        from .export.kits import write_kit_formats

        out = write_kit_formats(eng, kit, args.out, args.format)
    add_sections(Path(out) / KIT_FILE, beat)  # the beat travels with the kit
    d = kit.to_dict()
    _print(args, d, f"{len(kit.slots)} sounds in {out}/: " + ", ".join(s["file"] for s in d["slots"]))
    return 0


def cmd_classes(args: argparse.Namespace) -> int:
    from .config import DEFAULT_EXPORT

    folder = Path(args.model) if args.model else DEFAULT_EXPORT  # (the default model's shipped graphs)
    if (folder / "export.json").is_file():  # an export folder: no torch needed
        classes = json.loads((folder / "export.json").read_text())["classes"]
    else:
        from .bundle import DEFAULT_BUNDLE, read_meta

        classes = read_meta(args.model or DEFAULT_BUNDLE)["classes"]
    _print(args, {"classes": classes}, "\n".join(classes))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    def common(p, json_flag=True, render=True):
        p.add_argument("--model", default=None, help="model bundle folder (default: the bundled model)")
        p.add_argument("--threads", type=int, default=None, help="CPU threads for the model")
        p.add_argument("--backend", choices=("auto", "torch", "onnx"), default="auto",
                       help="auto (default): onnxruntime for the default model (its graphs ship in the package) and "
                            "for a `neuraldrum export --format onnx` folder as --model, torch for a model bundle; "
                            "torch: the default model's bundle in PyTorch (the [train] extra)")
        if json_flag:
            p.add_argument("--json", action="store_true", help="print machine-readable JSON")
        if render:
            p.add_argument("--hifi", action="store_true",
                           help="render in hi-fi: Griffin-Lim iterations started from the inverter's output "
                                "(≈ 20 ms more a sound)")

    overwrite = ("replace files of the same names (default: never replace a file; a name that is taken is "
                 "skipped for the next free index)")
    p = sub.add_parser("generate", help="make new sounds of a class")
    p.add_argument("cls", metavar="CLASS")
    p.add_argument("-n", type=int, default=1, help="how many sounds (≥ 1; large runs stream, 64 at a time)")
    p.add_argument("--seed", type=int, default=None, help="seed of the first sound (≥ 0; sound k uses seed + k)")
    p.add_argument("--x", type=float, default=None, help="XY pad x in [-1, 1] (P1)")
    p.add_argument("--y", type=float, default=None, help="XY pad y in [-1, 1] (P2)")
    p.add_argument("--fine", type=float, default=None, help="fine knob in [-1, 1] (P3)")
    p.add_argument("--range", type=float, default=None, help="how far the pad reaches (2, 5, 10)")
    p.add_argument("--axes", default=None, help="'pca' (default) or two latent dimensions 'i,j'")
    p.add_argument("--temperature", type=float, default=None,
                   help="spread of prior samples, 0..10 (default: the model's; lower = nearer the class centre); "
                        "not with the pad controls, which start from the class centre")
    p.add_argument("--tune", type=float, default=0.0, help="semitones, -12..12 (pitch and length, as a sampler)")
    p.add_argument("--decay", type=float, default=None, help="seconds to fall 60 dB (default: the sound's own)")
    p.add_argument("--velocity", type=float, default=127.0, help="1..127 → gain (velocity/127)²")
    p.add_argument("--length", type=float, default=None, help="output length in seconds (default: the model's)")
    p.add_argument("-o", "--out", required=True,
                   help="output folder (made if missing); sounds are CLASS_000.wav, CLASS_001.wav, …, each taking the "
                        "next index no file has (claimed atomically: concurrent runs never collide); the names "
                        "written are printed as they land (--json lists them)")
    p.add_argument("--overwrite", action="store_true", help=overwrite)
    common(p)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("encode", help="latent, predicted class and probabilities of a sound file")
    p.add_argument("file")
    p.add_argument("--class", dest="cls", default=None, help="encode as this class instead of the predicted one")
    common(p, render=False)
    p.set_defaults(func=cmd_encode)

    p = sub.add_parser("resynth", help="encode and decode a sound file")
    p.add_argument("file")
    p.add_argument("-o", "--out", required=True, help="output WAV (refused if it exists, unless --overwrite)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output WAV")
    p.add_argument("--class", dest="cls", default=None)
    common(p)
    p.set_defaults(func=cmd_resynth)

    p = sub.add_parser("variations", help="sounds near a sound file")
    p.add_argument("file")
    p.add_argument("-n", type=int, default=8)
    p.add_argument("--amount", type=float, default=0.5, help="latent noise scale (0 = the resynthesis)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--class", dest="cls", default=None)
    p.add_argument("-o", "--out", required=True,
                   help="output folder; sounds are FILE_var000.wav, …, named as generate's (never replacing a file)")
    p.add_argument("--overwrite", action="store_true", help=overwrite)
    common(p)
    p.set_defaults(func=cmd_variations)

    p = sub.add_parser("morph", help="latent interpolation between two sound files")
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("-o", "--out", required=True,
                   help="output folder; sounds are morph_000.wav, …, named as generate's (never replacing a file)")
    p.add_argument("--overwrite", action="store_true", help=overwrite)
    common(p)
    p.set_defaults(func=cmd_morph)

    p = sub.add_parser("kit", help="one new sound per class, with kit.json to remake it (or remake a kit.json)")
    p.add_argument("-o", "--out", required=True, help="kit folder (replaced whole if it is a kit folder)")
    p.add_argument("--seed", type=int, default=0, help="kit seed (each slot's prior seed is drawn from it)")
    p.add_argument("--from", dest="from_kit", default=None, metavar="KIT",
                   help="render this kit.json (or kit folder) instead of making a new kit")
    p.add_argument("--temperature", type=float, default=None,
                   help="spread of prior samples (default: the model's; lower = nearer the class centre)")
    p.add_argument("--format", default="wav", metavar="LIST",
                   help="comma-separated: wav (WAVs + kit.json, always), sfz (kit.sfz for SFZ samplers), "
                        "hydrogen (drumkit.xml: the folder is a Hydrogen drum kit); default wav")
    common(p)
    p.set_defaults(func=cmd_kit)

    p = sub.add_parser("classes", help="the classes of a model")
    p.add_argument("--model", default=None)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_classes)

