"""Write a small synthetic corpus in the corpus format, so model and training tests need no builder.

Layout (what :func:`neuraldrum.data.corpus.load_corpus` reads): ``manifest.jsonl`` (one clip a line, in
``audio.npy`` row order), ``audio.npy`` float32 (N, n_samples) onset-aligned peak-normalised clips and
``build.json`` with ``"format": 1`` and ``"options": {"sample_rate", "n_samples"}``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from neuraldrum.data.corpus import CORPUS_FORMAT
from neuraldrum.data.synth import synth
from neuraldrum.taxonomy import CLASSES


def write_corpus(root: Path, classes: Sequence[str] = CLASSES, per_class: int = 4, val_per_class: int = 1,
                 sample_rate: int = 22050, n_samples: int = 22016, seed: int = 0) -> Path:
    """Synthesise ``per_class`` clips of each class (the last ``val_per_class`` go to "val") into ``root``.

    Returns:
        ``root``.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    audio = np.zeros((len(classes) * per_class, n_samples), dtype=np.float32)
    rows = []
    for c, cls in enumerate(classes):
        for k in range(per_class):
            i = c * per_class + k
            x = synth(cls, sr=sample_rate, rng=rng)[:n_samples]
            audio[i, : len(x)] = x / max(float(np.abs(x).max()), 1e-9)
            rows.append({"id": f"synth/{cls}/{k}", "index": i, "class": cls, "source": "synth", "kit": "synth",
                         "instrument": cls, "layer": 0, "velocity": 1.0, "path": f"synth/{cls}_{k}.wav",
                         "split": "val" if k >= per_class - val_per_class else "train", "peak": 1.0,
                         "rule": "synth"})
    np.save(root / "audio.npy", audio)
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    counts: dict = {}
    for r in rows:
        counts.setdefault(r["class"], {}).setdefault(r["split"], 0)
        counts[r["class"]][r["split"]] += 1
    (root / "build.json").write_text(json.dumps({
        "format": CORPUS_FORMAT, "version": "test", "counts": counts, "exclusions": [],
        "options": {"sample_rate": sample_rate, "n_samples": n_samples}}, indent=1))
    return root
