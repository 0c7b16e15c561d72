"""The latent map: sounds as dots in 2-D, coloured by class, for the page to hover (hear) and click (load).

Every point is a latent z projected on two axes: the first two principal axes P1, P2 of all the model's
training latents (the bundle's ``pca["all"]``), so the map, the current sound's dot and any sample a user
drops share one frame. Two sources:

- a **corpus** (``neuraldrum serve --data CORPUS``): each clip (at most ``max_points``, spread over classes)
  is encoded with its true class; a dot is that clip's latent.
- **no corpus**: the bundle stores, per class, the mean of its training latents and their three main axes
  with their spreads. Each class gets ``per_class`` points drawn from that Gaussian: a picture of where the
  class's training sounds lie, not of real clips.

The WAE is conditional (the decoder is told the class), so latents of different classes overlap: the map
shows where a sound sits in the shared latent space (its shape, brightness, decay), not a class clustering.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..engine import Engine


@dataclass
class LatentMap:
    """Points (N) with 2-D positions, classes, labels and latents; ``mean`` (D,), ``axes`` (2, D)."""

    xy: np.ndarray  # (N, 2)
    classes: list[str]
    labels: list[str]
    z: np.ndarray  # (N, D)
    source: str  # "corpus" or "model"
    about: str
    mean: np.ndarray
    axes: np.ndarray

    def project(self, z: np.ndarray) -> tuple[float, float]:
        """A latent (D,) → its map position."""
        p = self.axes @ (np.asarray(z, np.float32) - self.mean)
        return float(p[0]), float(p[1])

    def to_json(self) -> dict:
        """What ``GET /api/map`` sends: points with x, y, class, label and z (4 decimals), and the bounds of
        the view."""
        pts = [{"x": round(float(x), 4), "y": round(float(y), 4), "class": c, "label": lab,
                "z": [round(float(v), 4) for v in z]}
               for (x, y), c, lab, z in zip(self.xy, self.classes, self.labels, self.z)]
        # the view: 0.5th–99.5th percentiles, so a few far-out clips do not squeeze the rest into a corner
        # (the page draws points outside it on its edge)
        lo, hi = ((np.percentile(self.xy, 0.5, axis=0), np.percentile(self.xy, 99.5, axis=0)) if len(self.xy)
                  else (np.full(2, -1.0), np.full(2, 1.0)))
        return {"source": self.source, "about": self.about, "points": pts,
                "bounds": [round(float(v), 4) for v in (*lo, *hi)]}


def frame(engine: Engine, z: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray]:
    """(mean (D,), axes (2, D)): the bundle's global P1, P2, or else the main axes of ``z``."""
    pca = engine.pca.get("all")
    if pca is not None and pca[1].shape[0] >= 2:
        return pca[0].astype(np.float32), pca[1][:2].astype(np.float32)
    if z is None or len(z) < 3:
        eye = np.zeros((2, engine.latent_dim), np.float32)
        eye[0, 0] = eye[1, 1 % engine.latent_dim] = 1.0
        return np.zeros(engine.latent_dim, np.float32), eye
    mean = z.mean(0)
    _, _, vt = np.linalg.svd(z - mean, full_matrices=False)
    return mean.astype(np.float32), vt[:2].astype(np.float32)


def _build(engine: Engine, z: np.ndarray, classes: list[str], labels: list[str], source: str,
           about: str) -> LatentMap:
    z = np.asarray(z, np.float32).reshape(-1, engine.latent_dim)
    mean, axes = frame(engine, z)
    return LatentMap((z - mean) @ axes.T, classes, labels, z, source, about, mean, axes)


def model_map(engine: Engine, per_class: int = 40, seed: int = 0) -> LatentMap:
    """The map without a corpus: ``per_class`` points per class from the class's stored latent Gaussian."""
    rng = np.random.default_rng(seed)
    zs, cls, labels = [], [], []
    for c in engine.classes:
        pca = engine.pca.get(c)
        if pca is None:  # no per-class axes: prior draws around the class centre
            pts = engine.class_centre(c) + engine.sample_prior(per_class, int(rng.integers(2 ** 31)))
        else:  # the class's latents along its main axes (the engine keeps the three the controls move along)
            mean, axes, scales = pca
            w = rng.standard_normal((per_class, axes.shape[0])).astype(np.float32) * scales
            pts = mean + w @ axes
        zs.append(pts)
        cls += [c] * per_class
        labels += [f"{c} (model, #{k + 1})" for k in range(per_class)]
    about = (f"No corpus given: {per_class} points per class drawn from the Gaussian of that class's training "
             "latents stored in the model (mean and three main axes). Axes: P1, P2 of all training latents. "
             "Classes overlap because the decoder is told the class: position is the sound's shape, not its class.")
    return _build(engine, np.concatenate(zs), cls, labels, "model", about)


def corpus_map(engine: Engine, corpus_path, max_points: int = 1500, seed: int = 0) -> LatentMap:
    """The map of a built corpus: up to ``max_points`` clips (spread over classes), each encoded with its class."""
    from ..data.corpus import load_corpus

    corpus = load_corpus(corpus_path)
    rows = [i for i, it in enumerate(corpus.items) if it["class"] in engine.classes]
    if len(rows) > max_points:
        rows = sorted(np.random.default_rng(seed).choice(rows, max_points, replace=False).tolist())
    zs, cls, labels = [], [], []
    for i in rows:
        it = corpus.items[i]
        e = engine.encode(np.asarray(corpus.audio[i]), sample_rate=corpus.sample_rate, cls=it["class"])
        zs.append(e.z)
        cls.append(it["class"])
        labels.append(f"{it['class']}: {it.get('source', '?')} / {it.get('kit', '?')} / {it.get('instrument', '?')}")
    about = (f"{len(rows)} clips of the corpus in {corpus.root.name}/, each encoded with its own class. Axes: P1, P2 "
             "of the model's training latents. Classes overlap because the decoder is told the class: position "
             "is the sound's shape, not its class.")
    return _build(engine, np.stack(zs) if zs else np.zeros((0, engine.latent_dim)), cls, labels, "corpus", about)
