"""Timing and resource measurements shared by ``neuraldrum bench`` and ``neuraldrum eval``."""
from __future__ import annotations

import contextlib
import resource
import time
from typing import Callable

import numpy as np
import torch


def time_calls(fn: Callable[[], object], runs: int = 100, warmup: int = 5, max_seconds: float = 30.0) -> dict:
    """Call ``fn`` ``warmup`` times untimed, then up to ``runs`` times timed (stopping early after
    ``max_seconds`` but never before 5 timed calls). Returns median / p95 / min in ms and the number timed."""
    for _ in range(warmup):
        fn()
    t, start = [], time.perf_counter()
    while len(t) < runs and (len(t) < 5 or time.perf_counter() - start < max_seconds):
        t0 = time.perf_counter()
        fn()
        t.append((time.perf_counter() - t0) * 1000.0)
    return summarise_ms(t)


def summarise_ms(times_ms) -> dict:
    """median / p95 / min of a list of times in ms, and how many."""
    a = np.asarray(times_ms, dtype=np.float64)
    return {"median_ms": float(np.median(a)), "p95_ms": float(np.percentile(a, 95)), "min_ms": float(a.min()),
            "runs": int(a.size)}


def flops(fn: Callable[[], object]) -> int:
    """Floating-point operations of one call (torch's FLOP counter: matmuls and convolutions, 2 per MAC)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc:
        fn()
    return int(fc.get_total_flops())


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


@contextlib.contextmanager
def torch_threads(n: int):
    """torch intra-op threads set to ``n`` inside the block, restored after."""
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)
