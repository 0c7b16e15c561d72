"""The sound service: latest-wins streams, micro-batching, the voice cache, cancellation, overload, errors,
many threads at once and shutdown. A gate in front of the engine makes the worker's timing deterministic.

The service never looks inside a sound, so most tests run it over :class:`Stub`, a stand-in engine whose sound
names its voice (fast, and exact); ``test_latest_wins_drops_superseded_moves`` runs it over the tiny random model."""
import threading
import time
from concurrent.futures import CancelledError

import numpy as np
import pytest

from helpers_bundle import random_bundle
from neuraldrum.engine import Engine
from neuraldrum.sampler import SamplerControls
from neuraldrum.service import ServiceClosed, ServiceOverloaded, SoundService
from neuraldrum.taxonomy import CLASSES
from neuraldrum.voice import Controls, Voice


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    return Engine(random_bundle(tmp_path_factory.mktemp("s") / "bundle"), warm=False)


class Gated:
    """The engine behind a gate: each render waits until the test opens it; batch sizes are recorded."""

    def __init__(self, engine, open_=False):
        self.engine, self.gate, self.entered = engine, threading.Event(), threading.Event()
        self.batches: list[list[Voice]] = []
        self.fail = False
        if open_:
            self.gate.set()

    def voice_z(self, v):
        return self.engine.voice_z(v)

    def render(self, voices):
        self.entered.set()
        assert self.gate.wait(10), "gate never opened"
        self.batches.append(list(voices))
        if self.fail:
            raise RuntimeError("render failed")
        return self.engine.render(voices)


class Clock:
    """A stand-in for the service's clock: each render takes exactly 0.25 s of it."""

    def __init__(self):
        self.t = 100.0

    def perf_counter(self):
        return self.t


class Stub:
    """What the service uses of an engine: voice_z's checks and render (a short array per voice, a new one per
    call), behind a gate like :class:`Gated`; each render moves the clock by 0.25 s."""

    classes = CLASSES

    def __init__(self, clock=None, open_=True, delay=0.0):
        self.gate, self.entered = threading.Event(), threading.Event()
        self.delay = delay
        self.batches: list[list[Voice]] = []
        self.fail: Exception | None = None
        self.clock = clock
        self.threads: list[int] = []
        if open_:
            self.gate.set()

    def voice_z(self, v):
        v.validate()
        if v.cls not in self.classes:
            raise ValueError(f"unknown class {v.cls!r}")
        if v.z is not None and len(v.z) != 4:
            raise ValueError(f"voice z has {len(v.z)} values; this model's latent has 4")

    @staticmethod
    def sound(v):
        """A sound that tells its voice: the seed, the class, the control x and the sampler's tune."""
        x = v.controls.x if v.controls is not None else 0.0
        return np.array([v.seed or 0, Stub.classes.index(v.cls), x, v.sampler.tune], np.float32)

    def render(self, voices):
        import torch

        self.entered.set()
        assert self.gate.wait(10), "gate never opened"
        self.threads.append(torch.get_num_threads())
        self.batches.append(list(voices))
        if self.delay:
            time.sleep(self.delay)
        if self.clock is not None:
            self.clock.t += 0.25
        if self.fail is not None:
            raise self.fail
        return [self.sound(v) for v in voices]


def busy(svc, gated):
    """Submit a first voice and wait until the worker is inside its render (so later submits queue)."""
    f = svc.submit(Voice("kick", seed=999))
    assert gated.entered.wait(10)
    return f


def test_latest_wins_drops_superseded_moves(engine):
    g = Gated(engine)
    with SoundService(g) as svc:
        first = busy(svc, g)
        moves = [svc.submit(Voice("snare", controls=Controls(x=x)), stream="pad") for x in (0.1, 0.2, 0.3)]
        other = svc.submit(Voice("snare", controls=Controls(x=0.9)), stream="other pad")
        assert moves[0].cancelled() and moves[1].cancelled() and not moves[2].cancelled()
        assert svc.queued() == 2
        g.gate.set()
        last = moves[2].result(10)
        other.result(10)
        first.result(10)
        with pytest.raises(CancelledError):
            moves[0].result(0)
        rendered = [v.controls.x for b in g.batches for v in b if v.controls is not None]
        assert sorted(rendered) == [0.3, 0.9]  # 0.1 and 0.2 were never rendered
        assert np.allclose(last, engine.render([Voice("snare", controls=Controls(x=0.3))])[0], atol=1e-5)
        s = svc.stats()
        assert s["superseded"] == 2 and s["rendered"] == 3 and s["submitted"] == 5


def test_waiting_requests_render_in_one_batch():
    g = Gated(Stub())
    with SoundService(g, max_batch=4) as svc:
        busy(svc, g)
        futs = [svc.submit(Voice("tom", seed=s)) for s in range(6)]
        g.gate.set()
        [f.result(10) for f in futs]
        assert [len(b) for b in g.batches] == [1, 4, 2]
        assert svc.stats()["batches"] == 3


def test_cache_returns_the_same_read_only_sound():
    with SoundService(Stub(), cache_size=2) as svc:
        v = Voice("clap", seed=4, sampler=SamplerControls(tune=-3.0))
        a = svc.render(v, timeout=10)
        b = svc.render(v, timeout=10)
        assert a is b and svc.stats()["cache_hits"] == 1
        with pytest.raises(ValueError):
            a[0] = 1.0
        for s in (5, 6):  # two newer voices push v out of a 2-entry cache
            svc.render(Voice("clap", seed=s), timeout=10)
        c = svc.render(v, timeout=10)
        assert c is not a and np.array_equal(c, a) and svc.stats()["cache_hits"] == 1


def test_cancelled_request_is_not_rendered():
    g = Gated(Stub())
    with SoundService(g) as svc:
        busy(svc, g)
        f = svc.submit(Voice("rim", seed=1))
        keep = svc.submit(Voice("rim", seed=2))
        assert f.cancel()
        g.gate.set()
        keep.result(10)
        assert all(v.seed != 1 for b in g.batches for v in b)
        assert svc.stats()["cancelled"] == 1


def test_overload_is_an_error_not_a_wait():
    g = Gated(Stub())
    with SoundService(g, max_queue=2) as svc:
        busy(svc, g)
        svc.submit(Voice("kick", seed=1))
        svc.submit(Voice("kick", seed=2), stream="pad")
        with pytest.raises(ServiceOverloaded, match="overloaded"):
            svc.submit(Voice("kick", seed=3))
        svc.submit(Voice("kick", seed=4), stream="pad")  # a stream's newer move replaces, so it still fits
        assert svc.stats()["overloaded"] == 1 and svc.queued() == 2
        g.gate.set()


def test_bad_voices_and_failed_renders():
    g = Gated(Stub(), open_=True)
    with SoundService(g) as svc:
        with pytest.raises(ValueError, match="unknown class"):
            svc.submit(Voice("banjo", seed=1))
        with pytest.raises(ValueError, match="latent has"):
            svc.submit(Voice("kick", z=(0.0, 1.0)))
        g.fail = True
        with pytest.raises(RuntimeError, match="render failed"):
            svc.render(Voice("kick", seed=1), timeout=10)
        g.fail = False  # the worker survived its failed batch
        assert np.array_equal(svc.render(Voice("kick", seed=1), timeout=10), Stub.sound(Voice("kick", seed=1)))
        assert svc.stats()["errors"] == 1


def test_many_threads_get_the_sounds_one_thread_gets():
    rng = np.random.default_rng(0)
    stub = Stub(delay=0.002)  # each batch takes a moment, so requests wait and are batched
    pool = ([Voice(c, seed=int(s)) for c, s in zip(CLASSES, rng.integers(0, 1000, 11))]
            + [Voice("snare", controls=Controls(x=float(x), y=float(-x))) for x in np.linspace(-1, 1, 9)]
            + [Voice("hh_open", seed=3, sampler=SamplerControls(tune=float(t), velocity=90.0)) for t in (-5, 0, 7)]
            + [Voice("tom", z=tuple(float(v) for v in rng.standard_normal(4)))]
            + [Voice("crash", controls=Controls(fine=0.5), amount=0.4, variation_seed=s) for s in range(4)])
    ref = {v: Stub.sound(v) for v in pool}
    results, errors = [], []

    def client(k):
        r = np.random.default_rng(k)
        for i in range(200):
            v = pool[int(r.integers(len(pool)))]
            stream = f"t{k}" if i % 2 else None
            while True:
                try:
                    f = svc.submit(v, stream=stream)
                    break
                except ServiceOverloaded:
                    time.sleep(0.001)
                except Exception as e:  # noqa: BLE001 - any other error fails the test
                    errors.append(e)
                    return
            results.append((v, f))

    svc = SoundService(stub, max_queue=16, max_batch=8, cache_size=8)
    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    [t.start() for t in threads]
    [t.join(60) for t in threads]
    done = [(v, f) for v, f in results if not f.cancelled()]
    for v, f in done:
        w = f.result(30)
        assert w.shape == ref[v].shape and np.allclose(w, ref[v], atol=1e-5), v
    svc.close(timeout=10)
    assert not errors and len(results) == 1600 and not svc.alive()
    s = svc.stats()
    assert s["rendered"] + s["cache_hits"] == len(done) and s["superseded"] == len(results) - len(done)
    assert s["rendered"] > 0 and s["cache_hits"] > 0 and s["batches"] < s["rendered"]  # it did batch


def test_close_cancels_waiting_requests_and_refuses_new_ones():
    g = Gated(Stub())
    svc = SoundService(g)
    running = busy(svc, g)
    waiting = [svc.submit(Voice("shaker", seed=s)) for s in range(3)]
    closer = threading.Thread(target=svc.close)
    closer.start()
    while svc.queued() and closer.is_alive():  # until close has cancelled the waiting requests
        time.sleep(0.001)
    g.gate.set()  # the batch in progress finishes
    closer.join(10)
    assert not closer.is_alive() and not svc.alive()
    assert np.array_equal(running.result(0), Stub.sound(Voice("kick", seed=999)))
    assert all(f.cancelled() for f in waiting) and svc.stats()["cancelled"] == 3
    with pytest.raises(ServiceClosed):
        svc.submit(Voice("shaker", seed=9))


def test_a_newer_move_keeps_its_streams_place_in_line():
    g = Gated(Stub())
    with SoundService(g, max_batch=1) as svc:
        busy(svc, g)
        svc.submit(Voice("kick", controls=Controls(x=0.1)), stream="a")
        svc.submit(Voice("kick", controls=Controls(x=0.2)), stream="b")
        last = svc.submit(Voice("kick", controls=Controls(x=0.3)), stream="a")  # a moves again: still first
        g.gate.set()
        last.result(10)
        order = [b[0].controls.x for b in g.batches[1:]]
        assert order[0] == 0.3


# ---------------------------------------------------------------- counters, settings, the cache, shutdown

ZERO = {"submitted": 0, "rendered": 0, "batches": 0, "superseded": 0, "cancelled": 0, "cache_hits": 0,
        "overloaded": 0, "errors": 0, "max_queue_seen": 0, "render_ms": 0.0, "queued": 0, "cached": 0,
        "mean_batch_ms": 0.0}


def test_defaults_and_refused_settings():
    stub = Stub()
    with SoundService(stub) as svc:
        assert (svc.max_queue, svc.max_batch, svc.cache_size) == (64, 4, 256)
        assert svc.stats() == ZERO and svc.alive()
        assert [w.name for w in svc._workers] == ["neuraldrum-render-0"] and all(w.daemon for w in svc._workers)
    assert not svc.alive()
    with SoundService(stub, max_queue=1, max_batch=1, cache_size=0, workers=2) as svc:
        assert [w.name for w in svc._workers] == ["neuraldrum-render-0", "neuraldrum-render-1"] and svc.alive()
        assert np.array_equal(svc.render(Voice("tom", seed=1), timeout=10), Stub.sound(Voice("tom", seed=1)))
    for name, bad, lo in [("max_queue", 0, 1), ("max_batch", 0, 1), ("cache_size", -1, 0), ("workers", 0, 1),
                          ("max_queue", True, 1), ("max_batch", 2.0, 1), ("workers", "1", 1)]:
        with pytest.raises(ValueError) as e:
            SoundService(stub, **{name: bad})
        assert str(e.value) == f"SoundService {name}={bad!r} must be an integer ≥ {lo}"


def test_counters_by_hand(monkeypatch):
    import neuraldrum.service as service_module

    clock = Clock()
    monkeypatch.setattr(service_module, "time", clock)
    stub = Stub(clock, open_=False)
    with SoundService(stub, max_queue=3, max_batch=2, cache_size=8) as svc:
        first = svc.submit(Voice("kick", seed=1))  # 1 submitted; the worker takes it and waits at the gate
        assert stub.entered.wait(10)
        a = svc.submit(Voice("kick", seed=2), stream="s")  # queue: a
        svc.submit(Voice("kick", seed=3), stream="s")  # supersedes a in its place; queue: a'
        b = svc.submit(Voice("snare", seed=4))  # queue: a', b
        c = svc.submit(Voice("snare", seed=5))  # queue: a', b, c (full)
        with pytest.raises(ServiceOverloaded) as e:
            svc.submit(Voice("tom", seed=6))
        assert str(e.value) == ("the sound service is overloaded (3 requests waiting); try again later or send fewer "
                                "requests")
        assert c.cancel() and a.cancelled()
        # the refused request counts as submitted too
        assert svc.stats() == dict(ZERO, submitted=6, superseded=1, overloaded=1, max_queue_seen=3, queued=3)
        stub.gate.set()
        b.result(10)
        first.result(10)
        # batches: [kick 1], then [kick 3, snare 4] (c was cancelled when taken)
        assert [[v.seed for v in batch] for batch in stub.batches] == [[1], [3, 4]]
        svc.render(Voice("kick", seed=1), timeout=10)  # a cache hit
        s = svc.stats()
    assert s == dict(ZERO, submitted=7, rendered=3, batches=2, superseded=1, cancelled=1, cache_hits=1, overloaded=1,
                     max_queue_seen=3, render_ms=500.0, cached=3, mean_batch_ms=250.0)


def test_errors_count_every_request_of_the_failed_batch():
    stub = Stub(open_=False)
    with SoundService(stub, max_batch=8) as svc:
        busy = svc.submit(Voice("kick", seed=0))
        assert stub.entered.wait(10)
        futs = [svc.submit(Voice("tom", seed=s)) for s in range(3)]
        stub.fail = RuntimeError("no sound")
        stub.gate.set()
        for f in [busy] + futs:
            with pytest.raises(RuntimeError, match="no sound"):
                f.result(10)
        assert futs[0].exception() is futs[2].exception() is stub.fail  # the batch's own error, as raised
        assert svc.stats()["errors"] == 4 and svc.stats()["rendered"] == 0 and svc.stats()["batches"] == 0
        stub.fail = None
        v = Voice("tom", seed=0)
        assert np.array_equal(svc.render(v, timeout=10), Stub.sound(v))  # the worker lives on


def test_the_cache_drops_the_least_recently_used_voice():
    stub = Stub()
    with SoundService(stub, cache_size=2) as svc:
        a, b, c = (Voice("kick", seed=s) for s in (1, 2, 3))
        wa = svc.render(a, timeout=10)
        svc.render(b, timeout=10)
        assert svc.render(a, timeout=10) is wa  # a hit: a is now the most recently used
        svc.render(c, timeout=10)  # drops b, the least recently used, not a
        assert svc.stats()["cached"] == 2
        assert svc.render(a, timeout=10) is wa
        n = len(stub.batches)
        svc.render(b, timeout=10)
        assert len(stub.batches) == n + 1 and svc.stats()["cache_hits"] == 2
    with SoundService(stub, cache_size=0) as svc:  # no cache: every request renders, still read-only
        w1, w2 = svc.render(a, timeout=10), svc.render(a, timeout=10)
        assert w1 is not w2 and svc.stats()["cache_hits"] == 0 and svc.stats()["cached"] == 0
        with pytest.raises(ValueError):
            w1[0] = 0.0


def test_the_cache_is_bounded_in_bytes_too():
    """Past cache_mb the least recently used sounds go, however few (256 sounds of 5 s took a server from 725 to
    1 276 MB); a sound larger than the bound is not kept at all. The stub's sounds are 16 bytes."""
    stub = Stub()
    with SoundService(stub, cache_size=100, cache_mb=40 / 2 ** 20) as svc:
        waves = [svc.render(Voice("kick", seed=s), timeout=10) for s in (1, 2, 3)]
        assert svc.stats()["cached"] == 2
        assert svc.render(Voice("kick", seed=3), timeout=10) is waves[2]  # kept: the newest two
        assert svc.render(Voice("kick", seed=1), timeout=10) is not waves[0]  # dropped: rendered again
    with SoundService(stub, cache_mb=8 / 2 ** 20) as svc:
        svc.render(Voice("kick", seed=1), timeout=10)
        assert svc.stats()["cached"] == 0
    for bad in (-1, float("nan"), "64", True):
        with pytest.raises(ValueError, match="cache_mb"):
            SoundService(stub, cache_mb=bad)


def test_stream_bookkeeping_ends_with_the_request():
    stub = Stub(open_=False)
    with SoundService(stub, max_batch=1) as svc:
        running = svc.submit(Voice("kick", seed=1), stream="pad")
        assert stub.entered.wait(10)
        later = svc.submit(Voice("kick", seed=2), stream="pad")  # the running one cannot be replaced: queued
        assert not running.cancelled() and svc.queued() == 1
        other = svc.submit(Voice("kick", seed=3))  # no stream: never replaced
        svc.submit(Voice("kick", seed=4), stream=None)
        assert not other.cancelled()
        stub.gate.set()
        assert running.result(10)[0] == 1.0 and later.result(10)[0] == 2.0 and other.result(10)[0] == 3.0
        assert svc._streams == {}  # taken requests leave the stream table (one entry per client otherwise)


def test_render_waits_for_its_own_request():
    from concurrent.futures import TimeoutError as FutureTimeout

    stub = Stub(open_=False)
    with SoundService(stub) as svc:
        busy = svc.submit(Voice("kick", seed=1))
        assert stub.entered.wait(10)
        with pytest.raises(FutureTimeout):
            svc.render(Voice("kick", seed=2), timeout=0.05)  # not rendered within its timeout
        outcome = []
        t = threading.Thread(target=lambda: outcome.append(pytest.raises(CancelledError, svc.render,
                                                                         Voice("tom", seed=1), "pad", 10)))
        t.start()
        while svc.queued() < 2 and t.is_alive():  # until the thread's request is queued
            time.sleep(0.001)
        svc.submit(Voice("tom", seed=2), stream="pad")  # replaces it: the waiting render is cancelled
        t.join(10)
        assert not t.is_alive() and outcome
        stub.gate.set()
        busy.result(10)


def test_close_waits_for_the_worker_at_most_its_timeout():
    stub = Stub(open_=False)
    svc = SoundService(stub)
    svc.submit(Voice("kick", seed=1))
    assert stub.entered.wait(10)
    closer = threading.Thread(target=svc.close, args=(0.05,))
    closer.start()
    closer.join(10)  # returns though the render in progress is stuck
    assert not closer.is_alive() and svc.alive()
    with pytest.raises(ServiceClosed) as e:
        svc.submit(Voice("kick", seed=2))
    assert str(e.value) == "the sound service is closed" and svc.stats()["submitted"] == 1
    stub.gate.set()
    svc.close(10)
    assert not svc.alive()


def test_close_from_a_render_callback(caplog):
    stub = Stub()
    svc = SoundService(stub)
    f = svc.submit(Voice("kick", seed=1))
    closed = threading.Event()
    f.add_done_callback(lambda _: (svc.close(), closed.set()))  # runs in the worker thread
    assert closed.wait(10)
    svc.close(10)
    assert not svc.alive() and not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


def test_threads_per_worker_sets_the_workers_own_torch_threads():
    import torch

    before = torch.get_num_threads()
    stub = Stub()
    with SoundService(stub, threads_per_worker=1) as svc:
        svc.render(Voice("kick", seed=1), timeout=10)
    assert stub.threads == [1] and torch.get_num_threads() == before


def test_a_batch_of_cancelled_requests_leaves_the_worker_waiting_for_more():
    stub = Stub(open_=False)
    with SoundService(stub) as svc:
        busy = svc.submit(Voice("kick", seed=1))
        assert stub.entered.wait(10)
        dropped = [svc.submit(Voice("kick", seed=s)) for s in (2, 3)]
        assert all(f.cancel() for f in dropped)  # the worker's next take finds only cancelled requests
        stub.gate.set()
        busy.result(10)
        end = time.monotonic() + 10  # a hang guard
        while svc.queued() and time.monotonic() < end:  # until the worker has taken (and dropped) them
            time.sleep(0.001)
        assert svc.queued() == 0
        v = Voice("snare", seed=4)
        assert np.array_equal(svc.render(v, timeout=10), Stub.sound(v))  # and it still renders what comes next
        assert svc.stats()["cancelled"] == 2 and len(stub.batches) == 2
