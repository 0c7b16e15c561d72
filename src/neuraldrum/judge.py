"""``neuraldrum judge``: several models, of any sample rate, judged by one listener at its own rate.

A bundle's own ``neuraldrum eval`` judges its prior samples with its own classifier at its own sample rate, so a
22.05 kHz and a 44.1 kHz model are not measured on one footing. Here every model draws the same prior samples as
``eval`` does (``per_class`` per class, seed ``seed + class index``, the bundle's temperature and class prior); the
samples are resampled (soxr) to the listener's rate and cut or padded to the corpus's clip length, and one
listener (a bundle's classifier or a classifier folder) hears them all and the real clips of the corpus's held-out
split: class accuracy (overall and per class), Fréchet distance and KID of its embeddings against the real clips.

    neuraldrum judge --listener BUNDLE|CLASSIFIER --data CORPUS --model NAME=BUNDLE ... [--out FILE.json]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from . import metrics as M
from .taxonomy import CLASSES


def _hear(clf, fe, waves: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(B, N) waves → the listener's class probabilities (B, C) and embeddings (B, E)."""
    from .evaluate import listen

    return listen(clf, fe, waves)[:2]


def to_rate(waves: np.ndarray, sr_in: int, sr_out: int, n_samples: int) -> np.ndarray:
    """(B, N) at ``sr_in`` → (B, n_samples) at ``sr_out``: soxr resampling, then cut or zero-padded."""
    from .audio.io import resample

    out = np.zeros((len(waves), n_samples), dtype=np.float32)
    for i, w in enumerate(waves):
        r = resample(w, sr_in, sr_out) if sr_in != sr_out else np.asarray(w, dtype=np.float32)
        out[i, :min(n_samples, len(r))] = r[:n_samples]
    return out


def _accuracy(y: np.ndarray, p: np.ndarray) -> dict:
    """Class accuracy of probabilities ``p`` (B, C) for true classes ``y``: overall, balanced, per class."""
    pred = p.argmax(1)
    per = {c: float((pred[y == i] == i).mean()) for i, c in enumerate(CLASSES) if np.any(y == i)}
    return {"class_acc": float((pred == y).mean()), "balanced_acc": float(np.mean(list(per.values()))),
            "class_acc_per_class": per}


def _scores(y: np.ndarray, p: np.ndarray, e: np.ndarray, e_real: np.ndarray, seed: int) -> dict:
    kid, kid_std = M.kernel_inception_distance(e, e_real, seed=seed)
    return {**_accuracy(y, p), "fd": M.frechet_distance(e, e_real), "kid": kid, "kid_std": kid_std}


def judge(models: dict[str, Path], listener: Path, data: Path, per_class: int = 50, seed: int = 0,
          split: str = "test", temperature: Optional[float] = None, progress: bool = False,
          hifi: bool = False) -> dict:
    """``{"listener", "data", "sample_rate", "real": {...}, "models": {name: {...}}}``; each entry has
    ``class_acc``, ``balanced_acc``, ``class_acc_per_class``, ``fd``, ``kid``, ``kid_std`` (``real``: the
    listener on the held-out clips themselves, distances against themselves left out). ``hifi``: each model is
    also judged rendering in hi-fi (``Engine(hifi=True)``), as ``"<name> hi-fi"``, from the same draws."""
    from tqdm import tqdm

    from .audio.mel import MelFrontend
    from .classifier import load_listener
    from .data.corpus import load_corpus
    from .engine import Engine

    clf, mel = load_listener(listener)
    corpus = load_corpus(data)
    if corpus.sample_rate != mel.sample_rate:
        raise ValueError(f"--data {data}: its clips are at {corpus.sample_rate} Hz; the listener {listener} hears "
                         f"{mel.sample_rate} Hz (give a corpus at the listener's rate)")
    fe = MelFrontend(mel)
    frames = fe(torch.zeros(1, corpus.n_samples)).shape[-1]
    if frames != clf.cfg.n_frames:
        raise ValueError(f"--data {data}: {corpus.n_samples}-sample clips give {frames} Mel frames; the listener "
                         f"{listener} hears {clf.cfg.n_frames}")
    idx = corpus.indices(split)
    y_real = corpus.labels(idx)
    p_real, e_real = _hear(clf, fe, corpus.audio[idx])
    out: dict = {"listener": str(listener), "data": str(data), "split": split, "n_real": int(len(idx)),
                 "sample_rate": corpus.sample_rate, "per_class": per_class, "seed": seed,
                 "real": _accuracy(y_real, p_real),
                 "models": {}}
    runs = [(name, path, False) for name, path in models.items()]
    if hifi:
        runs = [r for name, path in models.items() for r in ((name, path, False), (f"{name} hi-fi", path, True))]
    for name, path, hi in tqdm(runs, desc="judge", disable=not progress):
        eng = Engine(path, device="cpu", hifi=hi)
        missing = [c for c in CLASSES if c not in eng.classes]
        if missing:
            raise ValueError(f"--model {name}={path}: has no class {', '.join(missing)}")
        waves, y = [], []
        for ci, cls in enumerate(CLASSES):  # the same draws as `neuraldrum eval`'s generation test
            z = eng.sample_prior(per_class, seed + eng.class_index(cls), temperature, cls=cls)
            waves.append(eng.generate_batch([cls] * per_class, z))
            y.append(np.full(per_class, ci))
        w = to_rate(np.concatenate(waves), eng.sample_rate, corpus.sample_rate, corpus.n_samples)
        p, e = _hear(clf, fe, w)
        rec = _scores(np.concatenate(y), p, e, e_real, seed)
        rec.update({"bundle": str(eng.bundle.path), "sample_rate": eng.sample_rate,
                    "temperature": eng.prior_temperature(temperature), "hifi": eng.hifi})
        out["models"][name] = rec
    return out


def format_table(res: dict) -> str:
    """A Markdown table: one row per model (and the real clips), class accuracy, KID, FD, then per class."""
    lines = [f"listener {res['listener']} at {res['sample_rate']} Hz, {res['per_class']} prior samples per class; "
             f"real: {res['n_real']} {res['split']} clips of {res['data']}", "",
             "| | class acc | balanced | KID | FD | " + " | ".join(CLASSES) + " |",
             "|---|" + "---|" * (4 + len(CLASSES))]
    rows = {"real clips": res["real"], **res["models"]}
    for n, r in rows.items():
        kid = f"{r['kid']:.2f} ± {r['kid_std']:.2f}" if "kid" in r else ""
        fd = f"{r['fd']:.1f}" if "fd" in r else ""
        pc = r["class_acc_per_class"]
        lines.append(f"| {n} | {100 * r['class_acc']:.1f} % | {100 * r['balanced_acc']:.1f} % | {kid} | {fd} | "
                     + " | ".join(f"{100 * pc[c]:.0f}" if c in pc else "" for c in CLASSES) + " |")
    return "\n".join(lines)


def _parse_models(items: list[str]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for it in items:
        name, sep, path = it.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"--model {it!r}: write NAME=BUNDLE")
        if name in out:
            raise ValueError(f"--model {name}: named twice")
        out[name] = Path(path)
    return out


def _cmd(args: argparse.Namespace) -> int:
    from .audio.io import atomic_write_text

    models = _parse_models(args.model)
    res = judge(models, Path(args.listener), Path(args.data), per_class=args.per_class, seed=args.seed,
                split=args.split, temperature=args.temperature, progress=not args.quiet, hifi=args.hifi)
    if args.out:
        atomic_write_text(Path(args.out), json.dumps(res, indent=1))
    print(format_table(res))
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("judge", help="judge models of any sample rate with one listener at its rate",
                              description=__doc__.split("\n\n")[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--listener", required=True, metavar="BUNDLE",
                   help="a bundle or classifier folder: its classifier hears every model's samples")
    p.add_argument("--data", required=True, metavar="CORPUS",
                   help="a corpus at the listener's sample rate: its held-out clips are the real reference")
    p.add_argument("--model", action="append", required=True, metavar="NAME=BUNDLE",
                   help="a model bundle to judge (repeatable; 'default' is not special: give its folder)")
    p.add_argument("--split", default="test", choices=("val", "test"), help="held-out split (default test)")
    p.add_argument("--per-class", type=int, default=50, metavar="N", help="prior samples per class (default 50)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--temperature", type=float, default=None,
                   help="prior spread (default: each bundle's own prior_temperature)")
    p.add_argument("--out", metavar="FILE.json", help="also write the results here")
    p.add_argument("--hifi", action="store_true",
                   help="also judge each model rendering in hi-fi (as 'NAME hi-fi'; the same prior draws)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd)
