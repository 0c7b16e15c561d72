"""``neuraldrum bundle``: assemble trained runs into a model bundle, with PCA axes and measured metrics.

    neuraldrum bundle --wae RUN --mcnn RUN --classifier DIR --data CORPUS --out BUNDLE

The PCA of the latents is fitted on the corpus's **train** split (per class and overall); every metric is
measured on the **test** split (held-out kits and instruments) and written into bundle.json.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from .bundle import PCA, load_bundle, save_bundle
from .data.corpus import load_corpus
from .taxonomy import CLASSES


def _run_ckpt(run: Path) -> Path:
    """A run folder's best checkpoint (or last), or the file itself."""
    run = Path(run)
    if run.is_file():
        return run
    for name in ("best.pt", "last.pt"):
        if (run / name).is_file():
            return run / name
    raise FileNotFoundError(f"{run}: no best.pt or last.pt in this run folder")


def _command(run: Path) -> Optional[dict]:
    p = Path(run) / "command.json" if Path(run).is_dir() else Path(run).parent / "command.json"
    return json.loads(p.read_text()) if p.is_file() else None


@torch.inference_mode()
def fit_pca(wae, standardiser, frontend, corpus, k: int = 3) -> dict[str, PCA]:
    """PCA of the train-split latents: one per class (k axes) and one overall (all axes)."""
    idx = corpus.indices("train")
    zs, ys = [], []
    for i in range(0, len(idx), 64):
        j = idx[i:i + 64]
        x = torch.as_tensor(np.asarray(corpus.audio[j], dtype=np.float32))
        y = torch.as_tensor(corpus.labels(j))
        zs.append(wae.encode(standardiser(frontend(x)), y))
        ys.append(y)
    z, y = torch.cat(zs), torch.cat(ys)
    out = {"all": PCA.fit(z)}
    for ci, cls in enumerate(CLASSES):
        zc = z[y == ci]
        if len(zc) >= k + 1:
            out[cls] = PCA.fit(zc, k=k)
    return out


def measure(bundle_dir: Path, corpus, per_class: int = 50, latency_runs: int = 100, limit: Optional[int] = None) -> dict:
    """All the bundle's metrics on the test split (see :mod:`neuraldrum.evaluate`)."""
    from . import evaluate
    from .engine import Engine

    eng = Engine(load_bundle(bundle_dir))
    m = {}
    m.update(evaluate.reconstruction(eng, corpus, "test", limit=limit, gl_iters=(32,)))
    if eng.bundle.classifier is not None:
        m.update(evaluate.generation(eng, corpus, per_class=per_class))
    m.update(evaluate.latency(eng, runs=latency_runs, threads=1))
    return m


def make_bundle(wae_run: Path, mcnn_run: Path, out: Path, data: Path, classifier_dir: Optional[Path] = None,
                metrics: bool = True, per_class: int = 50, latency_runs: int = 100,
                temperature: float = 1.0) -> dict:
    """Assemble, save, then measure and re-save with the metrics. Returns the metrics.

    ``temperature`` is stored as the bundle's ``prior_temperature``: the spread of prior samples that
    ``generate``/``kit`` use unless told otherwise (choose it on the validation split, never on test)."""
    if not 0 < temperature <= 1.5:
        raise ValueError(f"--temperature {temperature}: use a value in (0, 1.5]")
    from .audio.mel import MelFrontend
    from .classifier import load_classifier
    from .train.checkpoint import (build_model_from_checkpoint, build_standardiser_from_checkpoint,
                                   checkpoint_configs, load_checkpoint)

    wck, mck = load_checkpoint(_run_ckpt(wae_run)), load_checkpoint(_run_ckpt(mcnn_run))
    if wck["task"] != "wae" or mck["task"] != "mcnn":
        raise ValueError(f"--wae must be a WAE run and --mcnn an MCNN run (got {wck['task']}, {mck['task']})")
    wc, mc = checkpoint_configs(wck), checkpoint_configs(mck)
    if wc["mel"] != mc["mel"]:
        raise ValueError(f"Mel settings differ between {wae_run} and {mcnn_run}: {wc['mel']} vs {mc['mel']}")
    wae, mcnn = build_model_from_checkpoint(wck), build_model_from_checkpoint(mck)
    std = build_standardiser_from_checkpoint(wck)
    clf, clf_meta = None, {}
    if classifier_dir is not None:
        clf, clf_mel, clf_meta = load_classifier(classifier_dir)
        if clf_mel != wc["mel"]:
            raise ValueError(f"{classifier_dir}: the classifier's Mel settings differ from the models'")
    corpus = load_corpus(data)
    pca = fit_pca(wae, std, MelFrontend(wc["mel"]), corpus)
    extra = {
        "corpus": corpus.summary(),
        "training": {"wae": _command(wae_run), "mcnn": _command(mcnn_run),
                     "wae_step": wck.get("loop", {}).get("step"), "mcnn_step": mck.get("loop", {}).get("step"),
                     "classifier": {k: v for k, v in clf_meta.items() if not k.endswith("history")}},
        "metrics": {},
        "prior_temperature": float(temperature),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    kw = dict(audio=wc["audio"], mel=wc["mel"], wae=wae, mcnn=mcnn, standardiser=std, classes=list(CLASSES),
              pca=pca, classifier=clf)
    save_bundle(out, **kw, extra=extra)
    if metrics:
        extra["metrics"] = measure(out, corpus, per_class=per_class, latency_runs=latency_runs)
        save_bundle(out, **kw, extra=extra)
    return extra["metrics"]


def _cmd(args: argparse.Namespace) -> int:
    m = make_bundle(Path(args.wae), Path(args.mcnn), Path(args.out), Path(args.data),
                    Path(args.classifier) if args.classifier else None, metrics=not args.no_metrics,
                    per_class=args.per_class, latency_runs=args.latency_runs, temperature=args.temperature)
    print(json.dumps(m, indent=1) if args.json else f"bundle written to {args.out}")
    if m and not args.json:
        for k, v in m.items():
            if isinstance(v, dict) and "mean" in v:
                print(f"  {k:28s} mean {v['mean']:.4f}  median {v['median']:.4f}")
            elif isinstance(v, float):
                print(f"  {k:28s} {v:.4f}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bundle", help="assemble trained runs into a model bundle (with PCA and metrics)")
    p.add_argument("--wae", required=True, help="WAE run folder (or checkpoint)")
    p.add_argument("--mcnn", required=True, help="MCNN run folder (or checkpoint)")
    p.add_argument("--classifier", default=None, help="classifier folder (from `neuraldrum classifier`)")
    p.add_argument("--data", required=True, help="the corpus the models were trained on")
    p.add_argument("--out", required=True, help="bundle folder to write")
    p.add_argument("--no-metrics", action="store_true", help="skip measuring (faster)")
    p.add_argument("--per-class", type=int, default=50, help="prior samples per class for the listen test")
    p.add_argument("--latency-runs", type=int, default=100)
    p.add_argument("--temperature", type=float, default=1.0,
                   help="default spread of prior samples stored in the bundle (choose it on the val split)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd)
