"""Reading a built corpus folder (see :mod:`neuraldrum.data.build` for writing one).

Layout::

    DIR/manifest.jsonl   one clip a line: id, index (row in audio.npy), class, source, kit, instrument,
                         layer, velocity, path, split, peak, rule
    DIR/audio.npy        float32 (N, n_samples), onset-aligned, peak-normalised clips
    DIR/build.json       counts per class × source × split, options, exclusions with reasons, version
    DIR/pool.npy         optional (``data build --pool``): float32 (P, n_samples) unlabelled percussive clips for
    DIR/pool.jsonl       the inverters, one row each: id, index, source, kit, instrument, layer, path, peak, rule
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from ..taxonomy import CLASS_INDEX, CLASSES

CORPUS_FORMAT = 1
SPLITS = ("train", "val", "test")
SYNTHETIC_SOURCES = ("drumsynth",)  # rendered from presets rather than recorded


class CorpusError(ValueError):
    pass


@dataclass
class Corpus:
    root: Path
    items: list[dict]  # manifest rows, in audio.npy row order
    audio: np.ndarray  # (N, n_samples) float32, memory-mapped
    info: dict  # build.json
    pool: Optional[np.ndarray] = None  # (P, n_samples) float32 memory-mapped unlabelled clips, or None
    pool_items: list[dict] = field(default_factory=list)  # pool.jsonl rows, in pool.npy row order

    @property
    def sample_rate(self) -> int:
        return int(self.info["options"]["sample_rate"])

    @property
    def n_samples(self) -> int:
        return int(self.audio.shape[1])

    def __len__(self) -> int:
        return len(self.items)

    def indices(self, split: Optional[Union[str, Sequence[str]]] = None,
                classes: Optional[Sequence[str]] = None) -> np.ndarray:
        """Row indices of the clips in ``split`` (one name or several) and ``classes``."""
        if isinstance(split, str):
            split = (split,)
        for s in split or ():
            if s not in SPLITS:
                raise CorpusError(f"unknown split {s!r}; choose from {SPLITS}")
        keep = [i for i, it in enumerate(self.items)
                if (split is None or it["split"] in split) and (classes is None or it["class"] in classes)]
        return np.asarray(keep, dtype=np.int64)

    def synthetic(self, idx: Optional[np.ndarray] = None) -> np.ndarray:
        """Whether rows ``idx`` (all rows by default) were synthesised (a source in :data:`SYNTHETIC_SOURCES`)."""
        rows = self.items if idx is None else [self.items[i] for i in idx]
        return np.asarray([it.get("source") in SYNTHETIC_SOURCES for it in rows], dtype=bool)

    def labels(self, idx: Optional[np.ndarray] = None) -> np.ndarray:
        """Class indices (int64) of rows ``idx`` (all rows by default), in :data:`CLASSES` order."""
        rows = self.items if idx is None else [self.items[i] for i in idx]
        return np.asarray([CLASS_INDEX[it["class"]] for it in rows], dtype=np.int64)

    def summary(self) -> dict:
        """Counts per class and split (a small dict that can travel in a model bundle)."""
        counts = {c: {s: 0 for s in SPLITS} for c in CLASSES}
        for it in self.items:
            counts[it["class"]][it["split"]] += 1
        return {"n_clips": len(self.items), "counts": counts,
                "sources": sorted({it["source"] for it in self.items}),
                "build_options": self.info.get("options", {}),
                **({"pool_clips": len(self.pool_items)} if self.pool is not None else {})}


def untrained_classes(summary: dict) -> Optional[str]:
    """A warning naming the classes with no clip in the train split (a small folder's few recordings of a class
    may all land in validation and test), or None when every class has some."""
    gone = {c: sum(v.values()) for c, v in summary["counts"].items() if not v.get("train")}
    if not gone:
        return None
    parts = [f"{c} ({n} clip{'s' * (n != 1)} in validation/test)" if n else f"{c} (no clips)" for c, n in gone.items()]
    return (f"no training clips for {', '.join(parts)}: a model trained on this corpus does not learn "
            f"{'that class' if len(gone) == 1 else 'those classes'} (add recordings; a class's clips reach the train "
            "split once it has several instruments)")


def load_corpus(root: Union[str, Path]) -> Corpus:
    """Open a corpus folder. Raises :class:`CorpusError` naming the file that is missing or wrong."""
    root = Path(root)
    man, arr, bj = root / "manifest.jsonl", root / "audio.npy", root / "build.json"
    for p in (man, arr, bj):
        if not p.is_file():
            raise CorpusError(f"{p}: missing; build the corpus with `neuraldrum data build --out {root}`")
    try:
        info = json.loads(bj.read_text())
    except json.JSONDecodeError as e:
        raise CorpusError(f"{bj}: not valid JSON ({e})") from None
    if info.get("format") != CORPUS_FORMAT:
        raise CorpusError(f"{bj}: corpus format {info.get('format')!r}, this version reads {CORPUS_FORMAT}")
    items = []
    for n, line in enumerate(man.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            it = json.loads(line)
        except json.JSONDecodeError as e:
            raise CorpusError(f"{man}:{n}: not valid JSON ({e})") from None
        if it.get("class") not in CLASS_INDEX:
            raise CorpusError(f"{man}:{n}: unknown class {it.get('class')!r}")
        if it.get("split") not in SPLITS:
            raise CorpusError(f"{man}:{n}: unknown split {it.get('split')!r}")
        items.append(it)
    audio = np.load(arr, mmap_mode="r")
    if audio.ndim != 2 or audio.shape[0] != len(items) or audio.dtype != np.float32:
        raise CorpusError(f"{arr}: shape {audio.shape} {audio.dtype} does not match {len(items)} manifest rows")
    for i, it in enumerate(items):
        if it.get("index", i) != i:
            raise CorpusError(f"{man}: row {i} has index {it.get('index')}; the manifest is out of order")
    pool, pool_items = _load_pool(root, audio.shape[1])
    return Corpus(root, items, audio, info, pool, pool_items)


def _load_pool(root: Path, n_samples: int) -> tuple[Optional[np.ndarray], list[dict]]:
    """The unlabelled pool of a corpus folder, or (None, []) when it has none."""
    arr, man = root / "pool.npy", root / "pool.jsonl"
    if not arr.is_file() and not man.is_file():
        return None, []
    for p in (arr, man):
        if not p.is_file():
            raise CorpusError(f"{p}: missing (the pool is pool.npy with pool.jsonl); rebuild the corpus")
    rows = []
    for n, line in enumerate(man.read_text().splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise CorpusError(f"{man}:{n}: not valid JSON ({e})") from None
    pool = np.load(arr, mmap_mode="r")
    if pool.ndim != 2 or pool.shape != (len(rows), n_samples) or pool.dtype != np.float32:
        raise CorpusError(f"{arr}: shape {pool.shape} {pool.dtype} does not match {len(rows)} rows of "
                          f"{n_samples} samples")
    return pool, rows
