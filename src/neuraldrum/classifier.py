"""Training and judging with the drum classifier (:class:`neuraldrum.models.classifier.DrumClassifier`).

``neuraldrum classifier --data CORPUS --out DIR`` trains it on the train split, picks the epoch with the
best validation accuracy, and reports accuracy and the confusion matrix on the test split.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn

from .atomic import atomic_file, write_text
from .audio.mel import MelFrontend
from .config import MelConfig
from .data.corpus import Corpus, load_corpus
from .models.classifier import ClassifierConfig, DrumClassifier
from .taxonomy import CLASSES


def logmels(audio: np.ndarray, mel_cfg: MelConfig, batch: int = 64) -> torch.Tensor:
    """(N, n_samples) float audio → (N, n_mels, T) log-Mel."""
    fe = MelFrontend(mel_cfg)
    out = []
    with torch.no_grad():
        for i in range(0, len(audio), batch):
            out.append(fe(torch.as_tensor(np.array(audio[i:i + batch], dtype=np.float32))))
    return torch.cat(out) if out else torch.zeros(0, mel_cfg.n_mels, 0)


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n: int = len(CLASSES)) -> np.ndarray:
    """(n, n) counts: row = true class, column = predicted."""
    m = np.zeros((n, n), dtype=np.int64)
    np.add.at(m, (y_true, y_pred), 1)
    return m


@torch.no_grad()
def predict(model: DrumClassifier, x: torch.Tensor, batch: int = 128) -> np.ndarray:
    """(N, n_mels, T) log-Mel → (N, n_classes) probabilities."""
    model.eval()
    probs = [torch.softmax(model(x[i:i + batch]), dim=1) for i in range(0, len(x), batch)]
    return torch.cat(probs).numpy() if probs else np.zeros((0, model.cfg.n_classes), np.float32)


def _augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Cheap log-Mel augmentation: a random level offset and a small shift along the Mel axis."""
    b = x.shape[0]
    x = x + (torch.rand(b, 1, 1, generator=g) - 0.5) * 2.0  # ±1 nat ≈ ±8.7 dB
    shift = int(torch.randint(-2, 3, (1,), generator=g))
    if shift:
        x = torch.roll(x, shift, dims=1)
    return x


def train_classifier(corpus: Corpus, mel_cfg: MelConfig, epochs: int = 40, batch_size: int = 32,
                     lr: float = 1e-3, seed: int = 0, cfg: Optional[ClassifierConfig] = None,
                     progress: bool = True) -> tuple[DrumClassifier, dict]:
    """Train on the corpus's train split; keep the weights with the best validation accuracy.

    Returns (model, metrics) where metrics hold val and test accuracy and the test confusion matrix.
    """
    from tqdm import tqdm

    torch.manual_seed(seed)
    tr, va, te = (corpus.indices(s) for s in ("train", "val", "test"))
    X = logmels(corpus.audio, mel_cfg)
    y = torch.as_tensor(corpus.labels())
    cfg = cfg or ClassifierConfig(n_mels=mel_cfg.n_mels, n_frames=X.shape[2])
    model = DrumClassifier(cfg)
    model.bin_mean.copy_(X[tr].mean(dim=(0, 2)).unsqueeze(1))
    model.bin_std.copy_(X[tr].std(dim=(0, 2)).clamp(min=1e-3).unsqueeze(1))
    # inverse-frequency class weights: small classes (shaker, clap) count as much as large ones
    counts = torch.bincount(y[tr], minlength=cfg.n_classes).float().clamp(min=1)
    loss_fn = nn.CrossEntropyLoss(weight=counts.sum() / counts / cfg.n_classes)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-3)
    g = torch.Generator().manual_seed(seed)
    best, best_state, history = -1.0, None, []
    bar = tqdm(range(epochs), desc="classifier", disable=not progress)
    for _ in bar:
        model.train()
        perm = torch.as_tensor(tr)[torch.randperm(len(tr), generator=g)]
        for i in range(0, len(perm), batch_size):
            idx = perm[i:i + batch_size]
            loss = loss_fn(model(_augment(X[idx], g)), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        val_acc = float((predict(model, X[va]).argmax(1) == y[va].numpy()).mean()) if len(va) else 0.0
        history.append(val_acc)
        bar.set_postfix(loss=f"{float(loss.detach()):.3f}", val_acc=f"{val_acc:.3f}")
        if val_acc > best:
            best, best_state = val_acc, {k: v.clone() for k, v in model.state_dict().items()}
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    pred = predict(model, X[te]).argmax(1)
    yt = y[te].numpy()
    cm = confusion(yt, pred, cfg.n_classes)
    per_class = {c: (float(cm[i, i] / cm[i].sum()) if cm[i].sum() else None) for i, c in enumerate(CLASSES)}
    metrics = {"classifier/val_acc": best, "classifier/test_acc": float((pred == yt).mean()) if len(te) else None,
               "classifier/test_balanced_acc": float(np.mean([v for v in per_class.values() if v is not None])),
               "classifier/test_per_class": per_class, "classifier/test_confusion": cm.tolist(),
               "classifier/epochs": epochs, "classifier/val_history": history,
               "classifier/n": {"train": len(tr), "val": len(va), "test": len(te)}}
    return model, metrics


def save_classifier(model: DrumClassifier, mel_cfg: MelConfig, metrics: dict, out: Path) -> None:
    """Write ``out/classifier.safetensors`` and ``out/classifier.json`` (config, Mel config, metrics)."""
    from safetensors.torch import save_file

    out = Path(out)
    with atomic_file(out / "classifier.safetensors") as tmp:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp))
    meta = {"config": asdict(model.cfg), "mel": asdict(mel_cfg), "metrics": metrics}
    write_text(out / "classifier.json", json.dumps(meta, indent=1))


def load_classifier(out: Path) -> tuple[DrumClassifier, MelConfig, dict]:
    """Read what :func:`save_classifier` wrote."""
    from safetensors.torch import load_file

    from .config import from_dict

    out = Path(out)
    meta = json.loads((out / "classifier.json").read_text())
    model = DrumClassifier(from_dict(ClassifierConfig, meta["config"]))
    model.load_state_dict(load_file(str(out / "classifier.safetensors")))
    model.eval()
    return model, from_dict(MelConfig, meta["mel"]), meta["metrics"]


def load_listener(path: Path) -> tuple[DrumClassifier, MelConfig]:
    """A listener: the classifier of a classifier folder (``neuraldrum classifier --out``) or of a bundle, with
    the Mel settings it hears through."""
    path = Path(path)
    if (path / "classifier.json").is_file():
        clf, mel, _ = load_classifier(path)
        return clf, mel
    from .bundle import load_bundle

    if not (path / "bundle.json").is_file():
        raise ValueError(f"{path}: not a classifier folder (classifier.json) or a bundle (bundle.json)")
    b = load_bundle(path)
    if b.classifier is None:
        raise ValueError(f"{path}: this bundle has no classifier (bundle it with --classifier)")
    return b.classifier.eval(), b.mel


def _cmd(args: argparse.Namespace) -> int:
    from .config import preset

    corpus = load_corpus(args.data)
    mel_cfg = preset(args.preset).mel
    t0 = time.time()
    model, metrics = train_classifier(corpus, mel_cfg, epochs=args.epochs, seed=args.seed,
                                      progress=not args.no_progress)
    metrics["classifier/train_seconds"] = round(time.time() - t0, 1)
    save_classifier(model, mel_cfg, metrics, Path(args.out))
    print(f"val accuracy {metrics['classifier/val_acc']:.3f}  test accuracy {metrics['classifier/test_acc']:.3f}  "
          f"(balanced {metrics['classifier/test_balanced_acc']:.3f})  → {args.out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("classifier", help="train the drum classifier (the listener used by encode and eval)")
    p.add_argument("--data", required=True, help="corpus folder")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--preset", default="cpu", help="Mel settings of this preset (default: cpu)")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cmd)
