"""``neuraldrum bundle``: assemble trained runs into a model bundle, with PCA axes and measured metrics.

    neuraldrum bundle --wae RUN --inverter RUN --classifier DIR --data CORPUS --out BUNDLE

The PCA of the latents is fitted on the corpus's **train** split (per class and overall); every metric is
measured on the **test** split (held-out kits and instruments) and written into bundle.json.

``neuraldrum bundle-prior``: a copy of a bundle with a class prior added (see :mod:`neuraldrum.bundle`):

    neuraldrum bundle-prior --model BUNDLE --data CORPUS --out NEWBUNDLE

fits, per class, the mean and covariance of the WAE encodings of the corpus's **train** clips (with their true
class); prior draws of that class are then N(mean_c, t²·Σ_c) instead of N(0, t²·I).

``neuraldrum bundle-inverter``: a copy of a bundle with another inverter (an MCNN or Vocos-style run trained on
the same Mel settings), every metric measured again:

    neuraldrum bundle-inverter --model BUNDLE --inverter RUN --data CORPUS --out NEWBUNDLE
"""
from __future__ import annotations

import argparse
import contextlib
import json
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from .atomic import scratch_folder
from .bundle import (PCA, check_bundle_folder, inverter_kind, load_bundle, save_bundle, write_with_inverter,
                     write_with_prior)
from .data.corpus import load_corpus
from .taxonomy import CLASSES
from .train.checkpoint import run_checkpoint


INVERTER_TASKS = ("mcnn", "vocos", "vocos_gan")


@contextlib.contextmanager
def _draft(out: Path):
    """Where the bundle is measured before ``out`` is written with its metrics (so an interrupted measurement
    leaves no bundle without them): a scratch folder beside ``out``, removed afterwards."""
    with scratch_folder(out) as tmp:
        yield tmp / "bundle"


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

    import sys

    def say(what: str) -> None:  # (each stage takes from seconds to minutes: say where it is)
        print(f"neuraldrum: measuring the bundle: {what} …", file=sys.stderr, flush=True)

    eng = Engine(load_bundle(bundle_dir))
    m = {}
    say(f"reconstruction and inversion on the test split ({len(corpus.indices('test'))} clips, Griffin-Lim 32 beside)")
    m.update(evaluate.reconstruction(eng, corpus, "test", limit=limit, gl_iters=(32,)))
    if eng.bundle.classifier is not None:
        say(f"generation ({per_class} prior samples a class, judged by the listener)")
        m.update(evaluate.generation(eng, corpus, per_class=per_class))
    say(f"latency ({latency_runs} sounds, one thread)")
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
    check_bundle_folder(out)  # before minutes of work
    from .audio.mel import MelFrontend
    from .classifier import load_classifier
    from .train.checkpoint import (build_model_from_checkpoint, build_standardiser_from_checkpoint,
                                   checkpoint_configs, load_checkpoint)

    wck, mck = load_checkpoint(run_checkpoint(wae_run)), load_checkpoint(run_checkpoint(mcnn_run))
    if wck["task"] != "wae" or mck["task"] not in INVERTER_TASKS:
        raise ValueError(f"--wae must be a WAE run and --inverter an MCNN or Vocos-style run (got {wck['task']}, "
                         f"{mck['task']})")
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
    trained_on = (wck.get("corpus") or {}).get("counts") if isinstance(wck.get("corpus"), dict) else None
    if trained_on is not None and trained_on != corpus.summary()["counts"]:
        import warnings

        warnings.warn(f"{data}: not the corpus {wae_run} was trained on (other clip counts per class and split); "
                      "its PCA axes, metrics and recorded corpus will be this one's", stacklevel=2)
    pca = fit_pca(wae, std, MelFrontend(wc["mel"]), corpus)
    extra = {
        "corpus": corpus.summary(),
        "training": {"wae": _command(wae_run), inverter_kind(mcnn): _command(mcnn_run),
                     "wae_step": wck.get("loop", {}).get("step"),
                     f"{inverter_kind(mcnn)}_step": mck.get("loop", {}).get("step"),
                     "classifier": {k: v for k, v in clf_meta.items() if not k.endswith("history")}},
        "metrics": {},
        "prior_temperature": float(temperature),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    kw = dict(audio=wc["audio"], mel=wc["mel"], wae=wae, inverter=mcnn, standardiser=std, classes=list(CLASSES),
              pca=pca, classifier=clf)
    if metrics:
        with _draft(out) as draft:
            save_bundle(draft, **kw, extra=extra)
            extra["metrics"] = measure(draft, corpus, per_class=per_class, latency_runs=latency_runs)
    save_bundle(out, **kw, extra=extra)
    return extra["metrics"]


PRIOR_RIDGE = 1e-4  # added to each class covariance's diagonal (classes with fewer clips than D are rank-deficient)


def fit_class_prior(engine, corpus, split: str = "train",
                    ridge: float = PRIOR_RIDGE) -> tuple[np.ndarray, np.ndarray, dict]:
    """Per class c: the mean and covariance (numpy ``np.cov``, N − 1) of the encodings of the ``split`` clips of
    class c with their true class, plus ``ridge`` · I, as (mean (C, D), lower Cholesky factor (C, D, D)) float32
    and the fit record. A class with fewer than 2 clips keeps N(0, I) (mean 0, chol I), listed under
    ``fallback``."""
    from .evaluate import _test_latents

    idx = corpus.indices(split)
    y = corpus.labels(idx)
    z = _test_latents(engine, corpus, idx).astype(np.float64)
    C, D = len(engine.classes), engine.latent_dim
    mean, chol = np.zeros((C, D), np.float64), np.tile(np.eye(D), (C, 1, 1))
    clips, fallback = {}, []
    for ci, cls in enumerate(engine.classes):
        zc = z[y == ci]
        clips[cls] = int(len(zc))
        if len(zc) < 2:
            fallback.append(cls)
            continue
        mean[ci] = zc.mean(axis=0)
        chol[ci] = np.linalg.cholesky(np.cov(zc, rowvar=False) + ridge * np.eye(D))
    fit = {"split": split, "clips_per_class": clips, "ridge": ridge, "fallback": fallback,
           "fallback_means": "N(0, I): mean 0, chol I, for classes with fewer than 2 clips",
           "encoder": "the bundle's WAE encoder (Analyzer.logmel → latent) with each clip's true class",
           "covariance": "np.cov (N - 1) + ridge · I; chol = its lower Cholesky factor"}
    return mean.astype(np.float32), np.tril(chol).astype(np.float32), fit


def add_prior(model: Optional[Path], data: Path, out: Path, force: bool = False, command: Optional[str] = None,
              metrics: bool = True, per_class: int = 50) -> dict:
    """Write ``out``: the bundle ``model`` (None = the default) with a class prior fitted on ``data``'s train split
    (:func:`fit_class_prior`). Refused when the corpus's counts differ from the bundle's recorded corpus (or it
    has none) unless ``force``. With ``metrics`` (and a listener in the bundle), the generation metrics (``gen/*``,
    test split, as ``neuraldrum bundle`` measures them) are measured again with the new prior and replace the
    source's; every other metric is kept (the prior changes no other graph). Returns the fit record."""
    from .bundle import DEFAULT_BUNDLE
    from .engine import Engine

    src = Path(model) if model is not None else DEFAULT_BUNDLE
    check_bundle_folder(out)
    bundle = load_bundle(src)
    corpus = load_corpus(data)
    summary = corpus.summary()
    recorded = (bundle.meta.get("corpus") or {}).get("counts") if isinstance(bundle.meta.get("corpus"), dict) else None
    if recorded != summary["counts"] and not force:
        raise ValueError(f"{data}: its clip counts per class and split differ from the corpus recorded in {src} "
                         f"({'none recorded' if recorded is None else 'different counts'}); the prior must be fitted on "
                         "the corpus the model was trained on (--force to fit anyway)")
    with torch.inference_mode():
        mean, chol, fit = fit_class_prior(Engine(bundle, warm=False, device="cpu"), corpus)
    fit.update({"corpus": {"path": str(data), "n_clips": summary["n_clips"], "counts": summary["counts"],
                           "matches_bundle_corpus": recorded == summary["counts"]},
                "source_sha256": bundle.meta["weights"]["sha256"],
                "metrics_note": "bundle.json metrics were measured with the source bundle's N(0, t²·I) prior",
                "command": command, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    if metrics and bundle.classifier is not None and isinstance(bundle.meta.get("metrics"), dict):
        from . import evaluate

        with _draft(out) as draft:
            write_with_prior(src, draft, mean, chol, fit)
            with torch.inference_mode():
                gen = evaluate.generation(Engine(draft, warm=False, device="cpu"), corpus, per_class=per_class)
        kept = {k: v for k, v in bundle.meta["metrics"].items() if not k.startswith("gen/")}
        fit["metrics_note"] = ("gen/* metrics measured again with this class prior (test split, "
                               f"{per_class} per class); the other metrics are the source bundle's")
        write_with_prior(src, out, mean, chol, fit, extra={"metrics": {**kept, **gen}})
    else:
        write_with_prior(src, out, mean, chol, fit)
    return fit


def swap_inverter(model: Optional[Path], run: Path, data: Path, out: Path, command: Optional[str] = None,
                  metrics: bool = True, per_class: int = 50, latency_runs: int = 100,
                  mel_match: Optional[int] = None, mel_match_momentum: Optional[float] = None) -> dict:
    """Write ``out``: the bundle ``model`` (None = the default) with its inverter replaced by the inverter of
    training run ``run`` (:func:`neuraldrum.bundle.write_with_inverter`), then measure every metric again on
    ``data``'s test split (the inverter changes every sound, so none of the source's metrics carry over).
    ``mel_match``: rounds of Mel matching for a Vocos-style inverter (:class:`neuraldrum.models.vocos.MelMatch`;
    None keeps the run's own; it adds no weights), ``mel_match_momentum`` their momentum (None: the run's own).
    Returns the metrics."""
    from .bundle import DEFAULT_BUNDLE
    from .train.checkpoint import build_model_from_checkpoint, checkpoint_configs, load_checkpoint

    src = Path(model) if model is not None else DEFAULT_BUNDLE
    check_bundle_folder(out)
    ck = load_checkpoint(run_checkpoint(run))
    if ck["task"] not in INVERTER_TASKS:
        raise ValueError(f"{run}: a {ck['task']} run; --inverter takes an MCNN or Vocos-style run")
    cfgs = checkpoint_configs(ck)
    b = load_bundle(src)
    if cfgs["mel"] != b.mel or cfgs["audio"].sample_rate != b.audio.sample_rate:
        raise ValueError(f"{run}: trained on other Mel settings than {src}'s")
    mm = {k: v for k, v in (("mel_match", mel_match), ("mel_match_momentum", mel_match_momentum)) if v is not None}
    if mm:
        if ck["task"] not in ("vocos", "vocos_gan"):
            flag = "--mel-match" if mel_match is not None else "--mel-match-momentum"
            raise ValueError(f"{run}: {flag} is for a Vocos-style inverter, not a {ck['task']} run")
        ck = {**ck, "configs": {**ck["configs"], "model": {**ck["configs"]["model"], **mm}}}
    inverter = build_model_from_checkpoint(ck)
    record = {**(_command(run) or {}), "step": ck.get("loop", {}).get("step"), "swap_command": command}
    record.update(mm)
    m = {}
    if metrics:
        with _draft(out) as draft:
            write_with_inverter(src, draft, inverter, record)
            m = measure(draft, load_corpus(data), per_class=per_class, latency_runs=latency_runs)
        write_with_inverter(src, out, inverter, record, extra={"metrics": m})
    else:
        write_with_inverter(src, out, inverter, record)
    return m


def _swap_cmd(args: argparse.Namespace) -> int:
    import shlex
    import sys

    command = "neuraldrum " + shlex.join(sys.argv[1:]) if sys.argv and "bundle-inverter" in sys.argv else None
    m = swap_inverter(Path(args.model) if args.model else None, Path(args.inverter), Path(args.data),
                      Path(args.out), command=command, metrics=not args.no_metrics, per_class=args.per_class,
                      mel_match=args.mel_match, mel_match_momentum=args.mel_match_momentum)
    print(f"bundle with the inverter of {args.inverter} written to {args.out}"
          + (f" (measured on the test split of {args.data})" if m else ""))
    return 0


def _prior_cmd(args: argparse.Namespace) -> int:
    import shlex
    import sys

    command = "neuraldrum " + shlex.join(sys.argv[1:]) if sys.argv and "bundle-prior" in sys.argv else (
        f"neuraldrum bundle-prior{' --model ' + shlex.quote(args.model) if args.model else ''} --data "
        f"{shlex.quote(args.data)} --out {shlex.quote(args.out)}{' --force' if args.force else ''}")
    fit = add_prior(Path(args.model) if args.model else None, Path(args.data), Path(args.out), force=args.force,
                    command=command, metrics=not args.no_metrics, per_class=args.per_class)
    print(json.dumps(fit, indent=1) if args.json else
          f"bundle with a class prior written to {args.out} (train clips per class: "
          + ", ".join(f"{c} {n}" for c, n in fit["clips_per_class"].items())
          + (f"; N(0, I) kept for {', '.join(fit['fallback'])}" if fit["fallback"] else "") + ")")
    return 0


def _cmd(args: argparse.Namespace) -> int:
    m = make_bundle(Path(args.wae), Path(args.inverter), Path(args.out), Path(args.data),
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
    p.add_argument("--inverter", "--mcnn", dest="inverter", required=True,
                   help="inverter run folder or checkpoint (MCNN or Vocos-style; --mcnn is the old name)")
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

    p = sub.add_parser("bundle-inverter", help="copy a bundle with its inverter replaced by a trained one, re-measured")
    p.add_argument("--model", default=None, help="model bundle (default: the bundled default model)")
    p.add_argument("--inverter", required=True, help="inverter run folder or checkpoint (same Mel settings)")
    p.add_argument("--data", required=True, help="the corpus to measure on (its test split)")
    p.add_argument("--out", required=True, help="new bundle folder to write (whole or not at all)")
    p.add_argument("--no-metrics", action="store_true", help="do not measure (the copy then has no metrics)")
    p.add_argument("--per-class", type=int, default=50, help="prior samples per class for the listen test")
    p.add_argument("--mel-match", type=int, default=None, metavar="K",
                   help="rounds of Mel matching after a Vocos-style inverter (0: none; default: the run's own)")
    p.add_argument("--mel-match-momentum", type=float, default=None, metavar="A",
                   help="their momentum, 0 to 0.999 (fast Griffin-Lim's; 0: plain rounds; default: the run's own)")
    p.set_defaults(func=_swap_cmd)

    p = sub.add_parser("bundle-prior", help="copy a bundle with a per-class Gaussian prior fitted on the train split")
    p.add_argument("--model", default=None, help="model bundle (default: the bundled default model)")
    p.add_argument("--data", required=True, help="the corpus the model was trained on")
    p.add_argument("--out", required=True, help="new bundle folder to write (whole or not at all)")
    p.add_argument("--force", action="store_true", help="fit even when the corpus differs from the bundle's record")
    p.add_argument("--no-metrics", action="store_true", help="keep the source's generation metrics (not re-measured)")
    p.add_argument("--per-class", type=int, default=50, help="prior samples per class for the re-measured listen test")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_prior_cmd)
