"""From a corpus to training batches: clip loading, stateless batch samplers, DDP sharding.

Every batch is a pure function of ``(seed, step)``: a sampler draws the indices of step ``s`` from a fresh
generator seeded with ``(seed, s, stream)``. There is no hidden sampler position to save, so a resumed run
sees exactly the batches an uninterrupted one would, and every DDP rank draws the same *global* batch and
keeps its own shard of it (:func:`shard`).
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch

from .corpus import Corpus

# independent random streams derived from (seed, step)
STREAM_BATCH, STREAM_AUGMENT, STREAM_PRIOR = 0, 1, 2


def step_generator(seed: int, step: int, stream: int = STREAM_BATCH) -> torch.Generator:
    """A fresh CPU ``torch.Generator`` seeded from ``(seed, step, stream)`` (well mixed by SeedSequence)."""
    state = np.random.SeedSequence([int(seed), int(step), int(stream)]).generate_state(2, dtype=np.uint32)
    g = torch.Generator()
    g.manual_seed((int(state[0]) << 31) ^ int(state[1]))
    return g


def load_clips(corpus: Corpus, idx: Sequence[int]) -> torch.Tensor:
    """Rows ``idx`` of the corpus audio (repeats allowed), in the given order.

    Returns:
        (len(idx), n_samples) float32 tensor (a copy; the memmap is read in ascending row order).
    """
    return read_rows(corpus.audio, idx)


def read_rows(array: np.ndarray, idx: Sequence[int]) -> torch.Tensor:
    """Rows ``idx`` of a (memory-mapped) 2-D array as a float32 tensor copy, repeats allowed, read in ascending
    row order."""
    idx = np.asarray(idx, dtype=np.int64)
    uniq, inverse = np.unique(idx, return_inverse=True)
    rows = np.asarray(array[uniq], dtype=np.float32)
    return torch.from_numpy(rows[inverse])


def share_weights(synthetic: np.ndarray, share: Optional[float]) -> Optional[torch.Tensor]:
    """Draw weights giving synthesised clips (``synthetic`` True) ``share`` of the probability mass.

    None when every clip should be equally likely: no ``share`` asked for, or a pool of one kind only (it
    draws from what it has).
    """
    if share is None:
        return None
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"synthetic share {share}: use a value in [0, 1]")
    synthetic = np.asarray(synthetic, dtype=bool)
    n_syn = int(synthetic.sum())
    if n_syn == 0 or n_syn == len(synthetic):
        return None
    w = np.where(synthetic, share / n_syn, (1.0 - share) / (len(synthetic) - n_syn))
    return torch.as_tensor(w, dtype=torch.float64)


def _draw(n: int, k: int, g: torch.Generator, weights: Optional[torch.Tensor]) -> torch.Tensor:
    """``k`` positions out of ``n``: distinct when ``n >= k``, weighted when ``weights`` is given."""
    if weights is None:
        return torch.randperm(n, generator=g)[:k] if n >= k else torch.randint(n, (k,), generator=g)
    return torch.multinomial(weights, k, replacement=int((weights > 0).sum()) < k, generator=g)


class BalancedBatchSampler:
    """Class-balanced batches: ``per_class`` clips of every class present, per step.

    A class with at least ``per_class`` clips is sampled without replacement within a batch; a smaller
    class with replacement. The batch is laid out class-interleaved (row ``k · C + c`` is the k-th clip of
    the c-th class present), so that :func:`shard` gives every rank every class.

    Args:
        indices: (N,) corpus row indices to draw from.
        labels: (N,) class ids of those rows.
        per_class: clips per class per (global) batch.
        seed: the run's seed.
        synthetic: (N,) whether each row was synthesised; with ``synthetic_share``, each class draws that
            share of its clips from its synthesised ones (None: every clip of a class equally likely).
    """

    def __init__(self, indices: np.ndarray, labels: np.ndarray, per_class: int, seed: int,
                 synthetic: Optional[np.ndarray] = None, synthetic_share: Optional[float] = None):
        if len(indices) != len(labels):
            raise ValueError("BalancedBatchSampler: indices and labels differ in length")
        if len(indices) == 0:
            raise ValueError("BalancedBatchSampler: no clips to sample from")
        self.per_class = int(per_class)
        self.seed = int(seed)
        self.classes = np.unique(labels)  # the classes present, ascending
        self.pools = [np.asarray(indices)[labels == c] for c in self.classes]
        syn = np.zeros(len(indices), bool) if synthetic is None else np.asarray(synthetic, dtype=bool)
        self.weights = [share_weights(syn[labels == c], synthetic_share) for c in self.classes]

    @property
    def batch_size(self) -> int:
        return self.per_class * len(self.classes)

    def batch(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """Indices and labels of step ``step``'s global batch, each (per_class · n_classes,)."""
        g = step_generator(self.seed, step, STREAM_BATCH)
        cols = []
        for pool, w in zip(self.pools, self.weights):
            cols.append(pool[_draw(len(pool), self.per_class, g, w).numpy()])
        idx = np.stack(cols, axis=1).reshape(-1)  # (per_class, C) row-major: class-interleaved
        lab = np.tile(self.classes, self.per_class)
        return idx, lab


class RandomBatchSampler:
    """Uniform batches of ``batch_size`` distinct clips (with replacement only if the pool is smaller).

    With ``synthetic`` and ``synthetic_share``, synthesised clips get that share of the draws.
    """

    def __init__(self, indices: np.ndarray, batch_size: int, seed: int,
                 synthetic: Optional[np.ndarray] = None, synthetic_share: Optional[float] = None):
        if len(indices) == 0:
            raise ValueError("RandomBatchSampler: no clips to sample from")
        self.indices = np.asarray(indices)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.weights = None if synthetic is None else share_weights(synthetic, synthetic_share)

    def batch(self, step: int) -> np.ndarray:
        """Indices of step ``step``'s global batch, (batch_size,)."""
        g = step_generator(self.seed, step, STREAM_BATCH)
        return self.indices[_draw(len(self.indices), self.batch_size, g, self.weights).numpy()]


def shard(n: int, rank: int, world: int, group: int = 1) -> np.ndarray:
    """Positions of a global batch of ``n`` rows that rank ``rank`` of ``world`` keeps.

    Rows come in consecutive blocks of ``group`` (one block = one clip of every class for a balanced batch);
    rank ``r`` keeps blocks ``r, r + world, …``, so each rank sees every class.
    """
    if n % group:
        raise ValueError(f"shard: batch of {n} is not a whole number of blocks of {group}")
    blocks = n // group
    if blocks < world:
        raise ValueError(f"shard: a batch of {blocks} block(s) cannot be split over {world} processes; "
                         "raise the batch size")
    keep = np.arange(rank, blocks, world)
    return (keep[:, None] * group + np.arange(group)[None, :]).reshape(-1)


def fixed_subset(indices: np.ndarray, max_items: Optional[int], seed: int) -> np.ndarray:
    """At most ``max_items`` of ``indices`` (a seeded random choice, returned sorted)."""
    indices = np.asarray(indices)
    if max_items is None or max_items <= 0 or len(indices) <= max_items:
        return indices
    rng = np.random.default_rng([int(seed), 7919])
    return np.sort(rng.choice(indices, size=max_items, replace=False))
