"""Measurements of a model bundle on held-out real clips: how good (see :mod:`neuraldrum.bench` for how fast).

Every function takes an :class:`~neuraldrum.engine.Engine` and a corpus, and returns '/'-namespaced metrics
shared by logs, bundle.json and reports:

- ``recon/*``  the WAE alone (encode → decode, true class) on the log-Mel;
- ``e2e/*``    encode → decode → MCNN, the waveform against the real clip;
- ``inv/*``    inversion alone (true Mel → waveform): the bundle's inverter (``inv/mcnn_*`` or ``inv/vocos_*``)
               beside Griffin-Lim with 32 and 100 iterations;
- ``clf/*``    the listener: the bundle's classifier (trained on the real train split only) on the real test clips;
- ``gen/*``    prior samples judged by that listener: class accuracy, Inception-style score, Fréchet distance
               and KID on its embeddings against the real test clips (real validation vs test as the ceiling),
               diversity, and the distance to the nearest training clip (a memorisation check);
- ``control/*`` an XY-pad grid: neighbour distances and how monotonically descriptors follow each axis.

Waveforms are peak-normalised (estimate and reference alike) before they are compared, so a level offset
is not counted as error. Everything is computed on the split you name (``test`` by default), never on
training data, except the nearest-training-clip search, which is what it is for.
"""
from __future__ import annotations

import time
from typing import Optional, Sequence

import numpy as np
import torch

from . import metrics as M
from .audio.mel import MelFrontend
from .classifier import confusion
from .data.corpus import Corpus
from .engine import Controls, Engine
from .models.baselines import griffin_lim, mel_to_linear
from .timing import time_calls, torch_threads

WAVE_METRICS = ("sc", "mel_sc", "lsd_db", "mrstft", "logmel_l1", "onset_ms", "env_db")
GATE_DROP_DB = 24.0  # a level fall steeper than this within 5 ms (from above -70 dBFS) counts as a hard gate


# ---------------------------------------------------------------- helpers

def _peak(w: np.ndarray) -> np.ndarray:
    """(B, N) → each row scaled to peak 1 (silent rows left at 0)."""
    w = np.asarray(w, dtype=np.float32)
    return w / np.maximum(np.abs(w).max(axis=1, keepdims=True), 1e-8)


def _audio(corpus: Corpus, idx: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.array(corpus.audio[idx], dtype=np.float32))


def wave_metrics(est: np.ndarray, ref: np.ndarray, fe: MelFrontend) -> dict[str, np.ndarray]:
    """Per-item distances between waveforms. est, ref: (B, N) → {name: (B,)} for :data:`WAVE_METRICS`."""
    est, ref = _peak(est), _peak(ref)
    sr, cfg = fe.cfg.sample_rate, fe.cfg
    te, tr = torch.from_numpy(est), torch.from_numpy(ref)
    me, mr = fe.mel(te), fe.mel(tr)
    return {
        "sc": M.spectral_convergence(M.stft_mag(te, cfg.n_fft, cfg.hop_length), M.stft_mag(tr, cfg.n_fft, cfg.hop_length)).numpy(),
        "mel_sc": M.spectral_convergence(me, mr).numpy(),
        "lsd_db": M.log_spectral_distance(est, ref, cfg.n_fft, cfg.hop_length),
        "mrstft": M.multi_resolution_stft(est, ref),
        "logmel_l1": M.log_l1(me, mr, cfg.log_floor).numpy(),
        "onset_ms": M.onset_error_ms(est, ref, sr),
        "env_db": M.envelope_error_db(est, ref, sr),
    }


def _gated(w: np.ndarray, sample_rate: int) -> np.ndarray:
    """(B, N) → (B,) 1.0 where a sound's level falls by more than :data:`GATE_DROP_DB` within 5 ms (a hard gate;
    real clips have some too, where a source sample was cut short), else 0.0."""
    return (M.max_level_drop_db(w, sample_rate) > GATE_DROP_DB).astype(np.float64)


def _nanmean(v) -> float:
    v = np.asarray(v, dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if len(v) else float("nan")


def per_class_summary(prefix: str, values: dict[str, np.ndarray], labels: np.ndarray,
                      classes: Sequence[str]) -> dict:
    """{name: (B,)} → ``{prefix/name: summary, prefix/name_per_class: {class: mean}}``."""
    out = {}
    for name, v in values.items():
        v = np.asarray(v, dtype=np.float64)
        out[f"{prefix}/{name}"] = M.summarise(v)
        out[f"{prefix}/{name}_per_class"] = {
            c: _nanmean(v[labels == i]) for i, c in enumerate(classes) if np.any(labels == i)}
    return out


# ---------------------------------------------------------------- reconstruction and inversion

@torch.inference_mode()
def reconstruction(engine: Engine, corpus: Corpus, split: str = "test", limit: Optional[int] = None,
                   gl_iters: Sequence[int] = (32, 100), batch: int = 32, progress: bool = False,
                   keep_examples: bool = False) -> dict:
    """WAE reconstruction, end-to-end resynthesis and inversion alone, per class and overall.

    With ``keep_examples`` the result also holds ``_examples``: one (real, reconstructed) log-Mel pair per class.
    """
    from tqdm import tqdm

    b, fe = engine.bundle, engine.frontend
    idx = corpus.indices(split)
    if limit:
        idx = idx[:limit]
    if len(idx) == 0:
        raise ValueError(f"the corpus has no clips in split {split!r}")
    labels = corpus.labels(idx)
    acc: dict[str, dict[str, list]] = {k: {} for k in ("recon", "e2e", "inv")}

    def add(group: str, vals: dict):
        for k, v in vals.items():
            acc[group].setdefault(k, []).append(np.asarray(v))

    examples: dict[int, tuple] = {}
    for s in tqdm(range(0, len(idx), batch), desc="reconstruction", disable=not progress):
        j = idx[s:s + batch]
        x = _audio(corpus, j)
        y = torch.as_tensor(labels[s:s + batch])
        mel = fe.mel(x)
        logmel = fe.log(mel)
        rec_log = engine.generator.logmel(y, engine.analyzer.latent(logmel, y))
        rec_mel = (torch.exp(rec_log) - b.mel.log_floor).clamp(min=0)
        add("recon", {"logmel_l1": (rec_log - logmel).abs().flatten(1).mean(1).numpy(),
                      "mel_sc": M.spectral_convergence(rec_mel, mel).numpy()})
        ref = x.numpy()
        e2e, inv = engine.generator.invert(rec_log).numpy(), engine.generator.invert(logmel).numpy()
        add("e2e", {**wave_metrics(e2e, ref, fe), "gated": _gated(e2e, b.audio.sample_rate)})
        kind = b.inverter_kind  # inv/mcnn_* or inv/vocos_*
        add("inv", {f"{kind}_{k}": v for k, v in wave_metrics(inv, ref, fe).items()})
        add("inv", {f"{kind}_gated": _gated(inv, b.audio.sample_rate), "real_gated": _gated(ref, b.audio.sample_rate)})
        lin = [mel_to_linear(m.numpy(), b.mel) for m in mel] if gl_iters else []
        for n in gl_iters:
            gl = np.stack([griffin_lim(S, b.mel, n, x.shape[1]) for S in lin])
            add("inv", {f"gl{n}_{k}": v for k, v in wave_metrics(gl, ref, fe).items()})
        if keep_examples:
            for r, ci in enumerate(y.tolist()):
                examples.setdefault(ci, (logmel[r].numpy(), rec_log[r].numpy()))
    out: dict = {"recon/n": int(len(idx)), "recon/split": split}
    for group, vals in acc.items():
        out.update(per_class_summary(group, {k: np.concatenate(v) for k, v in vals.items()}, labels, engine.classes))
    if keep_examples:
        out["_examples"] = examples
    return out


# ---------------------------------------------------------------- the listener and generation

def _listen(engine: Engine, waves: np.ndarray, batch: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The bundle's own listener: :func:`listen` with its classifier and Mel front end."""
    return listen(engine.bundle.classifier, engine.frontend, waves, batch)


@torch.inference_mode()
def listen(clf, frontend, waves: np.ndarray, batch: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(B, N) waves through ``frontend`` (wave → log-Mel) and the classifier ``clf`` → class probabilities (B, C),
    classifier embeddings (B, E), log-Mels (B, n_mels, T)."""
    probs, embs, logs = [], [], []
    for s in range(0, len(waves), batch):
        lm = frontend(torch.as_tensor(np.asarray(waves[s:s + batch], dtype=np.float32)))
        e = clf.embed(lm)
        probs.append(torch.softmax(clf.out(e), dim=1).numpy())
        embs.append(e.numpy())
        logs.append(lm.numpy())
    return np.concatenate(probs), np.concatenate(embs), np.concatenate(logs)


def generation(engine: Engine, corpus: Corpus, per_class: int = 50, seed: int = 0, split: str = "test",
               keep_examples: bool = False, temperature: Optional[float] = None) -> dict:
    """The listener on real clips, then on ``per_class`` prior samples of every class (see module docstring),
    drawn at ``temperature`` (default: the bundle's)."""
    if engine.bundle.classifier is None:
        raise ValueError("this bundle has no classifier: generation cannot be judged (bundle it with --classifier)")
    C = len(engine.classes)
    te, tr = corpus.indices(split), corpus.indices("train")
    y_te = corpus.labels(te)
    p_te, e_te, l_te = _listen(engine, corpus.audio[te])
    pred_te = p_te.argmax(1)
    per_real = {c: float((pred_te[y_te == i] == i).mean()) for i, c in enumerate(engine.classes) if np.any(y_te == i)}
    out = {"clf/test_acc": float((pred_te == y_te).mean()), "clf/test_balanced_acc": float(np.mean(list(per_real.values()))),
           "clf/test_acc_per_class": per_real, "clf/test_confusion": confusion(y_te, pred_te, C).tolist(), "clf/n": int(len(te))}

    waves, y_gen = [], []
    for ci, cls in enumerate(engine.classes):
        waves.append(engine.generate_batch([cls] * per_class, engine.sample_prior(per_class, seed + ci, temperature, cls=cls)))
        y_gen.append(np.full(per_class, ci))
    waves, y_gen = np.concatenate(waves), np.concatenate(y_gen)
    p_g, e_g, l_g = _listen(engine, waves)
    pred_g = p_g.argmax(1)
    out["gen/n_per_class"] = per_class
    out["gen/temperature"] = engine.prior_temperature(temperature)
    out["gen/class_acc"] = float((pred_g == y_gen).mean())
    out["gen/class_acc_per_class"] = {c: float((pred_g[y_gen == i] == i).mean()) for i, c in enumerate(engine.classes)}
    out["gen/confusion"] = confusion(y_gen, pred_g, C).tolist()
    out["gen/gated_frac"] = float(np.mean(_gated(waves, engine.sample_rate)))
    out["gen/max_level_drop_db"] = M.summarise(M.max_level_drop_db(waves, engine.sample_rate))
    out["gen/inception_score"] = M.inception_score(p_g)
    out["gen/inception_score_real_test"] = M.inception_score(p_te)
    out["gen/inception_score_max"] = float(C)

    out["gen/fd"] = M.frechet_distance(e_g, e_te)
    out["gen/kid"], out["gen/kid_std"] = M.kernel_inception_distance(e_g, e_te, seed=seed)
    # real-vs-real reference: the two held-out splits against each other (model-free, so measuring on val
    # does not select anything on test); both distances are symmetric
    other = corpus.indices("test" if split == "val" else "val")
    if len(other) > 2:
        e_o = _listen(engine, corpus.audio[other])[1]
        out["gen/fd_real_val_vs_test"] = M.frechet_distance(e_o, e_te)
        out["gen/kid_real_val_vs_test"] = M.kernel_inception_distance(e_o, e_te, seed=seed)[0]

    # diversity within each class, generated vs real test clips of that class (classifier embeddings)
    div_g = [M.diversity(e_g[y_gen == i]) for i in range(C)]
    div_r = [M.diversity(e_te[y_te == i]) for i in range(C) if np.sum(y_te == i) > 1]
    out["gen/diversity"], out["gen/diversity_real_test"] = _nanmean(div_g), _nanmean(div_r)

    # memorisation: log-Mel distance (RMS, nats) to the nearest training clip, generated vs real test clips
    l_tr = _listen(engine, corpus.audio[tr])[2].reshape(len(tr), -1)
    scale = 1.0 / np.sqrt(l_tr.shape[1])
    nn_g = M.nearest_distance(l_g.reshape(len(l_g), -1), l_tr) * scale
    nn_r = M.nearest_distance(l_te.reshape(len(l_te), -1), l_tr) * scale
    out["gen/nearest_train_rms"] = M.summarise(nn_g)
    out["gen/nearest_train_rms_real_test"] = M.summarise(nn_r)
    out["gen/closer_than_any_test_clip"] = float(np.mean(nn_g < nn_r.min()))
    if keep_examples:
        out["_gen_logmels"] = l_g[:: per_class][:C]
        out["_latent_test"] = (_test_latents(engine, corpus, te), y_te)
    return out


@torch.inference_mode()
def _test_latents(engine: Engine, corpus: Corpus, idx: np.ndarray) -> np.ndarray:
    """(len(idx), D) latents of real clips with their true classes."""
    out = []
    for s in range(0, len(idx), 64):
        j = idx[s:s + 64]
        lm = engine.analyzer.logmel(_audio(corpus, j))
        out.append(engine.analyzer.latent(lm, torch.as_tensor(corpus.labels(j))).numpy())
    return np.concatenate(out)


# ---------------------------------------------------------------- control

def control(engine: Engine, classes: Optional[Sequence[str]] = None, n: int = 7, range_: float = 2.0,
            keep_grids: Sequence[str] = ()) -> dict:
    """Walk an n×n grid of the XY pad (PCA axes, fine = 0) for each class.

    Neighbour distance: RMS log-Mel difference (nats) between adjacent cells — mean, p95 and max/median
    (a large max/median means a jump). Monotonicity: |Spearman ρ| of the spectral centroid and the −40 dB
    decay time along each axis (per row for x, per column for y), averaged.
    """
    classes = list(classes or engine.classes)
    vals = np.linspace(-1.0, 1.0, n)
    dists, rho = [], {f"{d}_{a}": [] for d in ("centroid", "decay") for a in ("x", "y")}
    grids = {}
    sr = engine.sample_rate
    for cls in classes:
        z = np.stack([engine.controls_to_z(cls, Controls(x=float(x), y=float(y), range=range_))
                      for y in vals for x in vals])
        waves = engine.generate_batch([cls] * len(z), z)
        with torch.inference_mode():
            lm = engine.frontend(torch.from_numpy(waves)).numpy()
        feats = lm.reshape(n, n, -1) / np.sqrt(lm[0].size)
        dists.append(M.grid_neighbour_distances(feats))
        desc = {"centroid": M.spectral_centroid(waves, sr).reshape(n, n),
                "decay": M.decay_time(waves, sr).reshape(n, n)}
        for d, g in desc.items():  # g[row = y index, col = x index]
            rho[f"{d}_x"] += [abs(M.spearman(vals, g[r])) for r in range(n)]
            rho[f"{d}_y"] += [abs(M.spearman(vals, g[:, c])) for c in range(n)]
        if cls in keep_grids:
            grids[cls] = lm.reshape(n, n, *lm.shape[1:])[::-1]  # row 0 = largest y
    d = np.concatenate(dists)
    s = M.summarise(d)
    out = {"control/grid": n, "control/range": range_, "control/neighbour_rms": s,
           "control/neighbour_max_over_median": float(s["max"] / max(s["median"], 1e-12))}
    for k, v in rho.items():
        out[f"control/monotonic_{k}"] = _nanmean(v)
    if keep_grids:
        out["_grids"], out["_grid_values"] = grids, vals
    return out


# ---------------------------------------------------------------- latency (for the bundle; see bench for more)

def latency(engine: Engine, runs: int = 100, warmup: int = 10, threads: int = 1) -> dict:
    """Wall time of ``engine.generate`` for one 1 s sound (ms): median and p95 over ``runs``."""
    cls, z = engine.classes[0], engine.sample_prior(1, 0)[0]
    with torch_threads(threads):
        t = time_calls(lambda: engine.generate(cls, z=z), runs=runs, warmup=warmup, max_seconds=float("inf"))
    return {"latency/generate_ms_median": t["median_ms"], "latency/generate_ms_p95": t["p95_ms"],
            "latency/threads": threads, "latency/runs": runs}


# ---------------------------------------------------------------- the whole evaluation and its report

def run_eval(model=None, data="corpus", split: str = "test", per_class: int = 50, grid: int = 7,
             limit: Optional[int] = None, gl_iters: Sequence[int] = (32, 100), report=None, seed: int = 0,
             progress: bool = True, temperature: Optional[float] = None) -> dict:
    """Every measurement above on one bundle and corpus; with ``report`` (a folder) also JSON, Markdown, PNGs."""
    import sys

    from . import __version__
    from .data.corpus import load_corpus

    t0 = time.perf_counter()
    eng = Engine(model, device="cpu")
    corpus = load_corpus(data)
    keep = report is not None
    meta = {"model": str(eng.bundle.path), "data": str(data), "split": split, "per_class": per_class,
            "grid": grid, "seed": seed, "neuraldrum": __version__}
    trained_on = eng.bundle.meta.get("corpus", {}).get("counts")
    if trained_on is not None and trained_on != corpus.summary()["counts"]:
        meta["warning"] = ("this corpus is not the one the model was trained on: its test split may hold "
                           "training clips, so the numbers may be optimistic")
        print(f"neuraldrum eval: warning: {meta['warning']}", file=sys.stderr)
    m: dict = {"meta": meta}
    m.update(reconstruction(eng, corpus, split, limit, gl_iters=gl_iters, progress=progress, keep_examples=keep))
    if eng.bundle.classifier is not None:
        m.update(generation(eng, corpus, per_class=per_class, seed=seed, split=split, keep_examples=keep,
                            temperature=temperature))
    shown = [c for c in ("kick", "hh_closed") if c in eng.classes] or eng.classes[:1]
    m.update(control(eng, n=grid, keep_grids=shown if keep else ()))
    meta["seconds"] = round(time.perf_counter() - t0, 1)
    if keep:
        write_report(eng, m, report)
    return {k: v for k, v in m.items() if not k.startswith("_")}


def write_report(engine: Engine, m: dict, out) -> None:
    """report.json, report.md and the figures into folder ``out`` (the private ``_*`` entries feed the plots)."""
    import json
    from pathlib import Path

    from . import report as R
    from .audio.io import atomic_write_text

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    classes, b = engine.classes, engine.bundle
    figs: dict[str, str] = {}
    ex = m.get("_examples", {})
    if ex:
        ks = sorted(ex)
        R.plot_spectrogram_pairs(np.stack([ex[k][0] for k in ks]), np.stack([ex[k][1] for k in ks]),
                                 [classes[k] for k in ks], out / "recon_spectrograms.png",
                                 sample_rate=b.mel.sample_rate, hop=b.mel.hop_length)
        figs["real (top) and WAE reconstruction (bottom), one held-out clip per class"] = "recon_spectrograms.png"
    bars = {name: m[f"inv/{key}_sc_per_class"] for name, key in
            (("MCNN", "mcnn"), ("Vocos-style", "vocos"), ("Griffin-Lim 32", "gl32"), ("Griffin-Lim 100", "gl100"))
            if f"inv/{key}_sc_per_class" in m}
    if bars:
        R.plot_bars(bars, out / "inversion_sc.png", ylabel="spectral convergence (lower is better)",
                    title="inversion from the true Mel, per class")
        figs["inversion alone: spectral convergence per class"] = "inversion_sc.png"
    for key, fname, title in (("clf/test_confusion", "confusion_real.png", "listener on real test clips"),
                              ("gen/confusion", "confusion_generated.png", "listener on prior samples")):
        if key in m:
            R.plot_confusion(np.asarray(m[key]), classes, out / fname, title=title)
            figs[title] = fname
    if "_latent_test" in m and "all" in b.pca:
        z, y = m["_latent_test"]
        p = b.pca["all"]
        xy = (torch.as_tensor(z) - p.mean) @ p.components[:2].T
        R.plot_latent_map(xy.numpy(), y, classes, out / "latent_map.png", title="held-out clips on P1, P2")
        figs["latent map of held-out clips (overall P1, P2)"] = "latent_map.png"
    for cls, g in m.get("_grids", {}).items():
        vals = m["_grid_values"]
        R.plot_grid_spectrograms(g, out / f"xy_grid_{cls}.png", list(vals), list(vals[::-1]),
                                 title=f"{cls}: XY pad (P1 → x, P2 → y), range {m['control/range']}")
        figs[f"XY pad grid, {cls}"] = f"xy_grid_{cls}.png"
    public = {k: v for k, v in m.items() if not k.startswith("_")}
    atomic_write_text(out / "report.json", json.dumps(public, indent=1))
    R.write_markdown({k: v for k, v in public.items() if not k.endswith("confusion")}, out / "report.md", images=figs)


def _cmd(args) -> int:
    import json

    m = run_eval(args.model, args.data, args.split, per_class=args.per_class, grid=args.grid, limit=args.limit,
                 gl_iters=tuple(args.gl_iters), report=args.report, seed=args.seed, progress=not args.json,
                 temperature=args.temperature)
    if args.json:
        print(json.dumps(m, indent=1))
        return 0
    for k, v in m.items():
        if isinstance(v, dict) and "mean" in v:
            print(f"{k:34s} mean {v['mean']:.4g}  median {v['median']:.4g}  p95 {v['p95']:.4g}")
        elif isinstance(v, (float, int)) and not isinstance(v, bool):
            print(f"{k:34s} {v:.4g}")
    if args.report:
        print(f"report: {args.report}/report.md")
    return 0


def register(sub) -> None:
    p = sub.add_parser("eval", help="measure a model bundle on held-out real clips (how good)")
    p.add_argument("--model", default=None, help="model bundle (default: the bundled default model)")
    p.add_argument("--data", default="corpus", help="the corpus the model was trained on (default: ./corpus)")
    p.add_argument("--split", default="test", choices=("test", "val"), help="held-out split to measure on")
    p.add_argument("--per-class", type=int, default=50, help="prior samples per class for the generation test")
    p.add_argument("--grid", type=int, default=7, help="XY-pad grid size for the control test")
    p.add_argument("--limit", type=int, default=None, help="only the first N held-out clips (quick look)")
    p.add_argument("--gl-iters", type=int, nargs="*", default=[32, 100], help="Griffin-Lim iterations to compare")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--temperature", type=float, default=None, help="prior spread for the generation test "
                   "(default: the model's prior_temperature)")
    p.add_argument("--report", default=None, help="folder for report.json, report.md and PNG plots")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.set_defaults(func=_cmd)
