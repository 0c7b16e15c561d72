"""``neuraldrum compare-inverters``: inverter families side by side, on one corpus's held-out split.

Every inverter (a training run of the MCNN or of the Vocos-style inverter, at the corpus's sample rate) and
librosa Griffin-Lim get the true Mel of each held-out clip; their waveforms are compared with the clip
(:func:`neuraldrum.evaluate.wave_metrics`: STFT spectral convergence, LSD, multi-resolution STFT, …, per
class), checked for hard gates (a level falling > 24 dB within 5 ms), timed for one 1 s sound on one thread
in the same run, and counted (parameters, training steps and time from the run's metrics.jsonl). With
``--listener BUNDLE`` (a bundle, or a classifier folder, for the same Mel settings) the listener also judges
every inverted clip: its accuracy there beside its accuracy on the clips themselves.

    neuraldrum compare-inverters --data CORPUS --run mcnn=RUN --run vocos=RUN [--listener BUNDLE] --out FILE.json
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from .audio.mel import MelFrontend
from .evaluate import GATE_DROP_DB, _audio, _gated, per_class_summary, wave_metrics
from .graphs import PolyphaseMCNN
from .models.mcnn import MCNN
from .models.baselines import griffin_lim, mel_to_linear
from .taxonomy import CLASSES

TABLE_KEYS = ("sc", "lsd_db", "mrstft", "mel_sc", "onset_ms", "env_db")


def _run_record(run: Path) -> dict:
    """Steps and wall-clock training time of a run, from its metrics.jsonl (the sum of the logged seconds per
    step × the steps between logs), and its training command."""
    steps, seconds, last = 0, 0.0, 0
    path = run / "metrics.jsonl" if run.is_dir() else run.parent / "metrics.jsonl"
    if path.is_file():
        for line in path.read_text().splitlines():
            rec = json.loads(line)
            if "time/step_s" in rec:
                seconds += rec["time/step_s"] * (rec["step"] - last)
                last = rec["step"]
            steps = max(steps, int(rec.get("step", 0)))
    from .release import _command

    return {"steps": steps, "train_minutes": seconds / 60.0, "command": (_command(run) or {}).get("command")}


def _median_ms(fn, runs: int = 20) -> float:
    fn()
    t = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        t.append(time.perf_counter() - t0)
    return float(np.median(t) * 1000.0)


@torch.inference_mode()
def compare_inverters(data: Path, runs: dict[str, Path], split: str = "test", gl_iters: int = 32,
                      listener: Optional[Path] = None, batch: int = 16, time_runs: int = 20,
                      progress: bool = False) -> dict:
    """The comparison as a dict: ``{name: {"metrics": {...per_class_summary...}, "ms_t1", "params", "steps",
    "train_minutes", "command", "listener_acc"}}``, with Griffin-Lim under ``gl{gl_iters}`` and the clips' own
    listener accuracy under ``real``. A run is a training run folder (its best.pt, else last.pt), a checkpoint,
    or a bundle folder (its inverter)."""
    from tqdm import tqdm

    from .data.corpus import load_corpus
    from .train.checkpoint import build_model_from_checkpoint, checkpoint_configs, load_checkpoint, run_checkpoint

    corpus = load_corpus(data)
    models, mel_cfg = {}, None
    for name, run in runs.items():
        if (run / "bundle.json").is_file():  # a bundle's inverter, with the training record the bundle keeps
            from .bundle import load_bundle

            b = load_bundle(run)
            model, audio, mel = b.inverter, b.audio, b.mel
            tr = b.meta.get("training", {}).get(b.inverter_kind, {})
            info = {"checkpoint": str(run), "command": tr.get("command"),
                    "steps": b.meta.get("training", {}).get(f"{b.inverter_kind}_step")}
        else:
            p = run_checkpoint(run)
            ck = load_checkpoint(p)
            if ck["task"] not in ("mcnn", "vocos", "vocos_gan"):
                raise ValueError(f"{run}: a {ck['task']} run, not an inverter")
            cfgs = checkpoint_configs(ck)
            model, audio, mel = build_model_from_checkpoint(ck), cfgs["audio"], cfgs["mel"]
            info = {**_run_record(run), "checkpoint": str(p), "step": ck.get("loop", {}).get("step")}
        if audio.sample_rate != corpus.sample_rate or audio.n_samples != corpus.n_samples:
            raise ValueError(f"{run}: made for {audio.n_samples} samples at {audio.sample_rate} Hz; {data} has "
                             f"{corpus.n_samples} at {corpus.sample_rate} Hz")
        if mel_cfg is not None and mel != mel_cfg:
            raise ValueError(f"{run}: its Mel settings differ from the other runs'")
        mel_cfg = mel
        models[name] = (model.eval(), info)
    if mel_cfg is None:
        raise ValueError("give at least one --run NAME=RUN")
    fe = MelFrontend(mel_cfg)
    clf = None
    if listener is not None:  # a bundle's classifier, or a classifier folder (neuraldrum classifier --out)
        from .classifier import load_listener

        clf, clf_mel = load_listener(listener)
        if clf_mel != mel_cfg:
            raise ValueError(f"{listener}: its classifier hears other Mel settings than the runs'")
    idx = corpus.indices(split)
    labels = corpus.labels(idx)
    names = list(models) + [f"gl{gl_iters}"]
    vals: dict[str, dict[str, list]] = {n: {} for n in names + ["real"]}
    N = corpus.n_samples
    for s in tqdm(range(0, len(idx), batch), desc="compare", disable=not progress):
        x = _audio(corpus, idx[s:s + batch])
        ref = x.numpy()
        mel = fe.mel(x)
        outs = {n: m.infer(mel)[:, :N].numpy() for n, (m, _) in models.items()}
        outs[f"gl{gl_iters}"] = np.stack([griffin_lim(mel_to_linear(m.numpy(), mel_cfg), mel_cfg, gl_iters, N)
                                          for m in mel])
        for n, w in outs.items():
            for k, v in {**wave_metrics(w, ref, fe), "gated": _gated(w, corpus.sample_rate)}.items():
                vals[n].setdefault(k, []).append(v)
            if clf is not None:
                pred = clf(fe(torch.from_numpy(np.ascontiguousarray(w)))).argmax(1).numpy()
                vals[n].setdefault("heard", []).append(pred == labels[s:s + batch])
        vals["real"].setdefault("gated", []).append(_gated(ref, corpus.sample_rate))
        if clf is not None:
            vals["real"].setdefault("heard", []).append(clf(fe(x)).argmax(1).numpy() == labels[s:s + batch])
    out: dict = {"data": str(data), "split": split, "n": int(len(idx)), "sample_rate": corpus.sample_rate,
                 "mel": {k: getattr(mel_cfg, k) for k in ("n_fft", "hop_length", "n_mels")},
                 "gated_drop_db": GATE_DROP_DB, "torch_threads_timing": 1, "inverters": {}}
    one = fe.mel(_audio(corpus, idx[:1]))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for n in names + ["real"]:
            v = {k: np.concatenate(a) for k, a in vals[n].items()}
            rec: dict = {"metrics": per_class_summary("inv", {k: a for k, a in v.items() if k != "heard"},
                                                      labels, CLASSES)}
            if "heard" in v:
                rec["listener_acc"] = float(np.mean(v["heard"]))
            if n in models:
                m, info = models[n]
                rec.update(info)
                rec["params"] = int(sum(p.numel() for p in m.parameters()))
                # timed as the engine plays it: an MCNN as polyphase convolutions (the same function, faster)
                play = PolyphaseMCNN(m) if isinstance(m, MCNN) else m.infer
                rec["ms_t1"] = _median_ms(lambda play=play: play(one), time_runs)
            elif n.startswith("gl"):
                lin = mel_to_linear(one[0].numpy(), mel_cfg)
                rec["ms_t1"] = _median_ms(lambda lin=lin: griffin_lim(lin, mel_cfg, gl_iters, N), max(3, time_runs // 4))
            out["inverters"][n] = rec
    finally:
        torch.set_num_threads(threads)
    return out


def format_table(res: dict) -> str:
    """A Markdown table: one row per inverter (means over the held-out clips; lower is better except the
    listener's accuracy), then one row per class of STFT SC."""
    inv = res["inverters"]
    head = ("| inverter | STFT SC | LSD dB | MR-STFT | Mel SC | onset ms | env dB | hard gates | listener | "
            "ms (1 thread) | params | steps | train min |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for n, r in inv.items():
        m = r["metrics"]
        cells = [f"{m[f'inv/{k}']['mean']:.3g}" if f"inv/{k}" in m else "" for k in TABLE_KEYS]
        gated = f"{100 * m['inv/gated']['mean']:.1f} %" if "inv/gated" in m else ""
        acc = f"{100 * r['listener_acc']:.1f} %" if "listener_acc" in r else ""
        ms = f"{r['ms_t1']:.1f}" if "ms_t1" in r else ""
        lines.append(f"| {n} | " + " | ".join(cells) + f" | {gated} | {acc} | {ms} | {r.get('params', '')} | "
                     f"{r.get('steps', '')} | " + (f"{r['train_minutes']:.0f}" if "train_minutes" in r else "") + " |")
    lines += ["", "STFT spectral convergence per class:", "",
              "| inverter | " + " | ".join(CLASSES) + " |", "|---|" + "---|" * len(CLASSES)]
    for n, r in inv.items():
        pc = r["metrics"].get("inv/sc_per_class")
        if pc:
            lines.append(f"| {n} | " + " | ".join(f"{pc.get(c, float('nan')):.2f}" for c in CLASSES) + " |")
    return "\n".join(lines)


def register(subparsers) -> None:
    p = subparsers.add_parser("compare-inverters", help="compare inverter runs and Griffin-Lim on held-out clips",
                              description=__doc__.split("\n\n")[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, metavar="CORPUS", help="corpus folder (its sample rate = the runs')")
    p.add_argument("--run", action="append", required=True, metavar="NAME=RUN",
                   help="an inverter: a training run (folder or checkpoint) or a bundle folder; repeatable")
    p.add_argument("--listener", metavar="BUNDLE",
                   help="a bundle or classifier folder whose classifier judges the inverted clips (same Mel settings)")
    p.add_argument("--split", default="test", choices=("val", "test"), help="held-out split (default test)")
    p.add_argument("--gl-iters", type=int, default=32, metavar="N", help="Griffin-Lim iterations (default 32)")
    p.add_argument("--out", required=True, metavar="FILE.json", help="where to write the results")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd)


def _cmd(args: argparse.Namespace) -> int:
    from .atomic import write_text

    runs = {}
    for item in args.run:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"--run {item!r}: use NAME=RUN")
        if name in runs:
            raise ValueError(f"--run: the name {name!r} is given twice")
        if not Path(path).exists():
            raise FileNotFoundError(f"{path}: no such run")
        runs[name] = Path(path)
    if args.gl_iters < 1:
        raise ValueError("--gl-iters must be at least 1")
    res = compare_inverters(Path(args.data), runs, args.split, args.gl_iters,
                            Path(args.listener) if args.listener else None, progress=not args.quiet)
    write_text(Path(args.out), json.dumps(res, indent=1))
    print(format_table(res))
    print(f"wrote {args.out}")
    return 0
