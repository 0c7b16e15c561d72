"""The sound service: what every live front end (web page, OSC, MIDI) holds to turn requests into sounds.

One render worker thread takes requests from a bounded queue and renders them through the engine's generator:

- **latest-wins streams**: a request submitted with ``stream=KEY`` replaces that stream's request still waiting
  in the queue, in its place in line (a pad drag sends ~60 moves a second; only the newest matters, and a
  stream that keeps moving is not pushed to the back). The replaced request's future is cancelled, never
  rendered.
- **micro-batching**: whatever is waiting when the worker becomes free (up to ``max_batch``, 4 by default) is
  rendered in one batch; streams keep their place in line, so 8 dragging clients take turns 4 at a time.
- **a voice cache**: the last ``cache_size`` rendered voices, so replaying a pad or a kit slot costs nothing.
  Returned arrays are read-only because the cache shares them.
- **cancellation**: ``future.cancel()`` before the render starts drops the request.
- **overload**: when ``max_queue`` requests are already waiting, :meth:`SoundService.submit` raises
  :class:`ServiceOverloaded` at once instead of letting waits grow without bound.

Requests are :class:`~neuraldrum.voice.Voice` objects, so a sound is defined by data and cached by it. The
engine's graphs are stateless; the worker is the only thread that runs them for the service.
"""
from __future__ import annotations

import collections
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .engine import Engine
from .voice import Voice


class ServiceOverloaded(RuntimeError):
    """The queue is full: the caller should drop the request or retry later."""


class ServiceClosed(RuntimeError):
    """The service was closed; no more requests are taken."""


@dataclass
class _Job:
    voice: Voice
    future: Future
    stream: Optional[str]
    submitted: float = field(default_factory=time.perf_counter)


class SoundService:
    """A render worker with a bounded queue, latest-wins streams, micro-batching and a voice cache.

    Args:
        engine: the engine whose generator renders (shared, not copied).
        max_queue: requests that may wait at once; one more raises :class:`ServiceOverloaded`.
        max_batch: most requests rendered in one batch. 4, not more: on a 2-core CPU a batch of 8 costs more than
            two of 4 (one run under load: 234 vs 2 × 82 ms), and 8 clients dragging pads heard their moves with
            p95 161 ms at 4 vs 364 ms at 8 (torch; ONNX 121 vs 254 ms).
        cache_size: rendered voices kept (least recently used dropped first); 0 = no cache.
        cache_mb: and at most this many MB of them (256 sounds of 5 s would be 226 MB: 1 s ones are 0.18 MB).
    """

    def __init__(self, engine: Engine, max_queue: int = 64, max_batch: int = 4, cache_size: int = 256,
                 workers: int = 1, threads_per_worker: Optional[int] = None, cache_mb: float = 64.0):
        for name, v, lo in (("max_queue", max_queue, 1), ("max_batch", max_batch, 1), ("cache_size", cache_size, 0),
                            ("workers", workers, 1)):
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ValueError(f"SoundService {name}={v!r} must be an integer ≥ {lo}")
        if isinstance(cache_mb, bool) or not isinstance(cache_mb, (int, float)) or not cache_mb >= 0:
            raise ValueError(f"SoundService cache_mb={cache_mb!r} must be a number ≥ 0")
        self.cache_bytes = int(cache_mb * 2 ** 20)
        self._cached_bytes = 0
        self.engine = engine
        self.max_queue, self.max_batch, self.cache_size = max_queue, max_batch, cache_size
        self._queue: collections.deque[_Job] = collections.deque()
        self._streams: dict[str, _Job] = {}
        self._cache: collections.OrderedDict[Voice, np.ndarray] = collections.OrderedDict()
        self._cond = threading.Condition()
        self._closed = False
        self.counts = {"submitted": 0, "rendered": 0, "batches": 0, "superseded": 0, "cancelled": 0,
                       "cache_hits": 0, "overloaded": 0, "errors": 0, "max_queue_seen": 0, "render_ms": 0.0}
        self.threads_per_worker = threads_per_worker
        self._workers = [threading.Thread(target=self._run, name=f"neuraldrum-render-{k}", daemon=True)
                         for k in range(workers)]
        for w in self._workers:
            w.start()

    # ------------------------------------------------------------------ the API front ends call
    def submit(self, voice: Voice, stream: Optional[str] = None) -> Future:
        """Queue a voice; returns a Future of its sound ((N,) float32, read-only). With ``stream``, a request of
        that stream still waiting is replaced (its future cancelled). Raises ValueError for a bad voice (before
        queueing), :class:`ServiceOverloaded` when the queue is full, :class:`ServiceClosed` after :meth:`close`."""
        self.engine.voice_z(voice)  # every check a render would make, before anything is queued
        fut: Future = Future()
        with self._cond:
            if self._closed:
                raise ServiceClosed("the sound service is closed")
            self.counts["submitted"] += 1
            hit = self._cache.get(voice)
            if hit is not None:
                self._cache.move_to_end(voice)
                self.counts["cache_hits"] += 1
                fut.set_result(hit)
                return fut
            job = _Job(voice, fut, stream)
            old = self._streams.get(stream) if stream is not None else None
            if old is not None and old.future.cancel():  # the newer move takes the older one's place in line
                self._queue[self._queue.index(old)] = job
                self.counts["superseded"] += 1
            elif len(self._queue) >= self.max_queue:
                self.counts["overloaded"] += 1
                raise ServiceOverloaded(f"the sound service is overloaded ({len(self._queue)} requests waiting); "
                                        "try again later or send fewer requests")
            else:
                self._queue.append(job)
            if stream is not None:
                self._streams[stream] = job
            self.counts["max_queue_seen"] = max(self.counts["max_queue_seen"], len(self._queue))
            self._cond.notify()
        return fut

    def render(self, voice: Voice, stream: Optional[str] = None, timeout: Optional[float] = None) -> np.ndarray:
        """Submit and wait for the sound (raises ``concurrent.futures.CancelledError`` if superseded)."""
        return self.submit(voice, stream).result(timeout)

    def queued(self) -> int:
        """Requests waiting now."""
        with self._cond:
            return len(self._queue)

    def stats(self) -> dict:
        """Counters since start: submitted, rendered, batches, superseded, cancelled, cache_hits, overloaded,
        errors, max_queue_seen, render_ms (time spent rendering); plus queued and cached (now) and
        mean_batch_ms (render time per batch)."""
        with self._cond:
            return {**self.counts, "queued": len(self._queue), "cached": len(self._cache),
                    "mean_batch_ms": self.counts["render_ms"] / max(1, self.counts["batches"])}

    def close(self, timeout: Optional[float] = 10.0) -> None:
        """Stop taking requests, cancel those still waiting, let the batch in progress finish, join the worker."""
        with self._cond:
            self._closed = True
            while self._queue:
                job = self._queue.popleft()
                if job.future.cancel():
                    self.counts["cancelled"] += 1
            self._streams.clear()
            self._cond.notify_all()
        for w in self._workers:
            if w is not threading.current_thread():
                w.join(timeout)

    def alive(self) -> bool:
        """Whether any render worker is still running."""
        return any(w.is_alive() for w in self._workers)

    def __enter__(self) -> "SoundService":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ the worker
    def _take(self) -> list[_Job]:
        """Wait for work; return up to max_batch jobs marked running (empty list: closed)."""
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            jobs = []
            while self._queue and len(jobs) < self.max_batch:
                job = self._queue.popleft()
                if job.stream is not None and self._streams.get(job.stream) is job:
                    del self._streams[job.stream]
                if job.future.set_running_or_notify_cancel():
                    jobs.append(job)
                else:
                    self.counts["cancelled"] += 1
            return jobs

    def _run(self) -> None:
        if self.threads_per_worker:
            import torch

            torch.set_num_threads(self.threads_per_worker)  # OpenMP: this thread's own team size
        while True:
            jobs = self._take()
            if not jobs:
                if self._closed:
                    return
                continue
            t0 = time.perf_counter()
            try:
                waves = self.engine.render([j.voice for j in jobs])
            except BaseException as e:  # a bad batch fails its requests, never the worker
                with self._cond:
                    self.counts["errors"] += len(jobs)
                for j in jobs:
                    j.future.set_exception(e)
                continue
            with self._cond:
                self.counts["rendered"] += len(jobs)
                self.counts["batches"] += 1
                self.counts["render_ms"] += (time.perf_counter() - t0) * 1000.0
                for j, w in zip(jobs, waves):
                    w.setflags(write=False)
                    if self.cache_size and w.nbytes <= self.cache_bytes:
                        old = self._cache.pop(j.voice, None)
                        self._cached_bytes += w.nbytes - (0 if old is None else old.nbytes)
                        self._cache[j.voice] = w
                        while len(self._cache) > self.cache_size or self._cached_bytes > self.cache_bytes:
                            self._cached_bytes -= self._cache.popitem(last=False)[1].nbytes
            for j, w in zip(jobs, waves):
                j.future.set_result(w)
