"""Sound-making verbs: generate, encode, resynth, variations, morph, kit, classes.

Each parses its arguments, calls the library (:mod:`neuraldrum.engine`, :mod:`neuraldrum.voice`,
:mod:`neuraldrum.kit`) and prints; ``--json`` prints what a program may read.
"""
from __future__ import annotations

import argparse
import json
import secrets
from pathlib import Path
import numpy as np

from .audio.io import load, save_wav


def _engine(args: argparse.Namespace):
    from .engine import Engine

    return Engine(args.model, threads=getattr(args, "threads", None), backend=getattr(args, "backend", "torch"))


def _controls(args: argparse.Namespace):
    from .engine import Controls

    if all(getattr(args, k) is None for k in ("x", "y", "fine", "range")) and args.axes is None:
        return None
    axes = "pca" if args.axes in (None, "pca") else tuple(int(a) for a in args.axes.split(","))
    return Controls(x=args.x or 0.0, y=args.y or 0.0, fine=args.fine or 0.0,
                    range=args.range if args.range is not None else 2.0, axes=axes).validate()


def _out_dir(path: str) -> Path:
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _print(args: argparse.Namespace, payload: dict, text: str) -> None:
    print(json.dumps(payload, indent=1) if getattr(args, "json", False) else text)


def _load_input(path: str, sr: int) -> np.ndarray:
    return load(path, sample_rate=sr)


def _sampler(args: argparse.Namespace):
    from .sampler import SamplerControls

    return SamplerControls(tune=args.tune, decay=args.decay, velocity=args.velocity, length=args.length).validate()


def cmd_generate(args: argparse.Namespace) -> int:
    from .kit import write_sounds
    from .voice import generate_voices

    eng = _engine(args)
    cls = eng.classes[eng.class_index(args.cls)]
    seed = secrets.randbelow(2 ** 31) if args.seed is None else args.seed
    voices = generate_voices(cls, args.n, seed, args.temperature, _controls(args), sampler=_sampler(args))
    paths = write_sounds(eng, voices, [f"{cls}_{k:03d}" for k in range(len(voices))], _out_dir(args.out))
    files = [{"file": str(p), "class": cls, "seed": v.seed if v.controls is None else v.variation_seed,
              "temperature": eng.prior_temperature(args.temperature), "voice": v.to_dict(),
              "z": [round(float(x), 6) for x in eng.voice_z(v)]} for p, v in zip(paths, voices)]
    _print(args, {"files": files}, "\n".join(f["file"] for f in files))
    return 0


def cmd_encode(args: argparse.Namespace) -> int:
    eng = _engine(args)
    e = eng.encode(_load_input(args.file, eng.sample_rate), cls=args.cls)
    payload = {"file": args.file, "class": e.cls, "probabilities": {k: round(v, 4) for k, v in e.probs.items()},
               "z": [round(float(v), 6) for v in e.z]}
    top = sorted(e.probs.items(), key=lambda kv: -kv[1])[:3]
    _print(args, payload, f"{args.file}: {e.cls}  (" + ", ".join(f"{c} {p:.2f}" for c, p in top) + ")\n"
           f"z = {np.array2string(e.z, precision=3, max_line_width=100)}")
    return 0


def cmd_resynth(args: argparse.Namespace) -> int:
    eng = _engine(args)
    wav = eng.resynth(_load_input(args.file, eng.sample_rate), cls=args.cls)
    p = save_wav(args.out, wav, eng.sample_rate)
    _print(args, {"file": str(p)}, str(p))
    return 0


def cmd_variations(args: argparse.Namespace) -> int:
    eng = _engine(args)
    e = eng.encode(_load_input(args.file, eng.sample_rate), cls=args.cls)
    waves = eng.variations(e, args.n, args.amount, seed=args.seed)
    out = _out_dir(args.out)
    files = [str(save_wav(out / f"{Path(args.file).stem}_var{k:03d}.wav", w, eng.sample_rate))
             for k, w in enumerate(waves)]
    _print(args, {"class": e.cls, "files": files}, "\n".join(files))
    return 0


def cmd_morph(args: argparse.Namespace) -> int:
    eng = _engine(args)
    a = eng.encode(_load_input(args.a, eng.sample_rate))
    b = eng.encode(_load_input(args.b, eng.sample_rate))
    waves = eng.morph(a, b, args.steps)
    out = _out_dir(args.out)
    files = [str(save_wav(out / f"morph_{k:03d}.wav", w, eng.sample_rate)) for k, w in enumerate(waves)]
    _print(args, {"from": a.cls, "to": b.cls, "files": files}, "\n".join(files))
    return 0


def cmd_kit(args: argparse.Namespace) -> int:
    from .kit import load_kit, new_kit, write_kit

    eng = _engine(args)
    kit = load_kit(args.from_kit) if args.from_kit else new_kit(eng, args.seed, args.temperature)
    if args.format == "wav":
        out = write_kit(eng, kit, args.out)
    else:  # WAVs + kit.json, plus kit.sfz and/or drumkit.xml (Hydrogen) in the same folder
        from .export.kits import write_kit_formats

        out = write_kit_formats(eng, kit, args.out, args.format)
    d = kit.to_dict()
    _print(args, d, f"{len(kit.slots)} sounds in {out}/: " + ", ".join(s["file"] for s in d["slots"]))
    return 0


def cmd_classes(args: argparse.Namespace) -> int:
    if args.model and (Path(args.model) / "export.json").is_file():  # an export folder: no torch needed
        classes = json.loads((Path(args.model) / "export.json").read_text())["classes"]
    else:
        from .bundle import DEFAULT_BUNDLE, read_meta

        classes = read_meta(args.model or DEFAULT_BUNDLE)["classes"]
    _print(args, {"classes": classes}, "\n".join(classes))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    def common(p, json_flag=True):
        p.add_argument("--model", default=None, help="model bundle folder (default: the bundled model)")
        p.add_argument("--threads", type=int, default=None, help="CPU threads for the model")
        p.add_argument("--backend", choices=("torch", "onnx"), default="torch",
                       help="torch (a model bundle) or onnx (a `neuraldrum export --format onnx` folder as --model; "
                            "no torch needed)")
        if json_flag:
            p.add_argument("--json", action="store_true", help="print machine-readable JSON")

    p = sub.add_parser("generate", help="make new sounds of a class")
    p.add_argument("cls", metavar="CLASS")
    p.add_argument("-n", type=int, default=1)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--x", type=float, default=None, help="XY pad x in [-1, 1] (P1)")
    p.add_argument("--y", type=float, default=None, help="XY pad y in [-1, 1] (P2)")
    p.add_argument("--fine", type=float, default=None, help="fine knob in [-1, 1] (P3)")
    p.add_argument("--range", type=float, default=None, help="how far the pad reaches (2, 5, 10)")
    p.add_argument("--axes", default=None, help="'pca' (default) or two latent dimensions 'i,j'")
    p.add_argument("--temperature", type=float, default=None,
                   help="spread of prior samples (default: the model's; lower = nearer the class centre)")
    p.add_argument("--tune", type=float, default=0.0, help="semitones, -12..12 (pitch and length, as a sampler)")
    p.add_argument("--decay", type=float, default=None, help="seconds to fall 60 dB (default: the sound's own)")
    p.add_argument("--velocity", type=float, default=127.0, help="1..127 → gain (velocity/127)²")
    p.add_argument("--length", type=float, default=None, help="output length in seconds (default: the model's)")
    p.add_argument("-o", "--out", required=True, help="output folder")
    common(p)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("encode", help="latent, predicted class and probabilities of a sound file")
    p.add_argument("file")
    p.add_argument("--class", dest="cls", default=None, help="encode as this class instead of the predicted one")
    common(p)
    p.set_defaults(func=cmd_encode)

    p = sub.add_parser("resynth", help="encode and decode a sound file")
    p.add_argument("file")
    p.add_argument("-o", "--out", required=True, help="output WAV")
    p.add_argument("--class", dest="cls", default=None)
    common(p)
    p.set_defaults(func=cmd_resynth)

    p = sub.add_parser("variations", help="sounds near a sound file")
    p.add_argument("file")
    p.add_argument("-n", type=int, default=8)
    p.add_argument("--amount", type=float, default=0.5, help="latent noise scale (0 = the resynthesis)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--class", dest="cls", default=None)
    p.add_argument("-o", "--out", required=True)
    common(p)
    p.set_defaults(func=cmd_variations)

    p = sub.add_parser("morph", help="latent interpolation between two sound files")
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("-o", "--out", required=True)
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

