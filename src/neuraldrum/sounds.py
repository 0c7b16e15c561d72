"""Sound-making verbs: generate, encode, resynth, variations, morph, kit, classes.

Each is a thin layer over :class:`neuraldrum.engine.Engine`; ``--json`` prints what a program may read.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Optional

import numpy as np

from .audio.io import atomic_write_text, load, save_wav

KIT_FILE = "kit.json"


def _engine(args: argparse.Namespace):
    from .engine import Engine

    return Engine(args.model, threads=getattr(args, "threads", None))


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


def cmd_generate(args: argparse.Namespace) -> int:
    eng = _engine(args)
    cls = eng.classes[eng.class_index(args.cls)]
    ctrl = _controls(args)
    out = _out_dir(args.out)
    files = []
    for k in range(args.n):
        seed = None if args.seed is None else args.seed + k
        if ctrl is not None and k == 0:
            z = eng.controls_to_z(cls, ctrl)
        elif ctrl is not None:  # around the controlled point
            z = eng.controls_to_z(cls, ctrl) + 0.3 * eng.sample_prior(1, seed, 1.0)[0]
        else:
            z = eng.sample_prior(1, seed, args.temperature)[0]
        wav = eng.generate(cls, z=z)
        p = save_wav(out / f"{cls}_{k:03d}.wav", wav, eng.sample_rate)
        files.append({"file": str(p), "class": cls, "seed": seed, "temperature": eng.prior_temperature(args.temperature),
                      "z": [round(float(v), 6) for v in z]})
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


def make_kit(eng, out: Path, seed: Optional[int] = 0, temperature: Optional[float] = None) -> dict:
    """One sound per class into ``out/<class>.wav`` and ``out/kit.json`` recording how each was made."""
    rng = np.random.default_rng(seed)
    t = eng.prior_temperature(temperature)
    entries = []
    for cls in eng.classes:
        s = int(rng.integers(0, 2 ** 31 - 1))
        z = eng.sample_prior(1, s, t)[0]
        p = save_wav(out / f"{cls}.wav", eng.generate(cls, z=z), eng.sample_rate)
        entries.append({"class": cls, "file": p.name, "seed": s, "z": [float(v) for v in z]})
    meta = eng.bundle.meta
    kit = {"kit_seed": seed, "temperature": t, "sample_rate": eng.sample_rate,
           "model": {"path": str(eng.bundle.path), "sha256": meta["weights"]["sha256"]}, "sounds": entries}
    atomic_write_text(out / KIT_FILE, json.dumps(kit, indent=1))
    return kit


def cmd_kit(args: argparse.Namespace) -> int:
    eng = _engine(args)
    out = _out_dir(args.out)
    kit = make_kit(eng, out, args.seed, args.temperature)
    _print(args, kit, f"{len(kit['sounds'])} sounds in {out}/: " + ", ".join(s["file"] for s in kit["sounds"]))
    return 0


def cmd_classes(args: argparse.Namespace) -> int:
    from .bundle import read_meta, DEFAULT_BUNDLE

    classes = read_meta(args.model or DEFAULT_BUNDLE)["classes"]
    _print(args, {"classes": classes}, "\n".join(classes))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    def common(p, json_flag=True):
        p.add_argument("--model", default=None, help="model bundle folder (default: the bundled model)")
        p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
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

    p = sub.add_parser("kit", help="one new sound per class, with kit.json to remake it")
    p.add_argument("-o", "--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--temperature", type=float, default=None,
                   help="spread of prior samples (default: the model's; lower = nearer the class centre)")
    common(p)
    p.set_defaults(func=cmd_kit)

    p = sub.add_parser("classes", help="the classes of a model")
    p.add_argument("--model", default=None)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_classes)

