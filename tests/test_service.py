"""The sound service: latest-wins streams, micro-batching, the voice cache, cancellation, overload, errors,
many threads at once and shutdown. A gate in front of the engine makes the worker's timing deterministic."""
import threading
import time
from concurrent.futures import CancelledError

import numpy as np
import pytest

from helpers_bundle import random_bundle
from neuraldrum.engine import Engine
from neuraldrum.sampler import SamplerControls
from neuraldrum.service import ServiceClosed, ServiceOverloaded, SoundService
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


def test_waiting_requests_render_in_one_batch(engine):
    g = Gated(engine)
    with SoundService(g, max_batch=4) as svc:
        busy(svc, g)
        futs = [svc.submit(Voice("tom", seed=s)) for s in range(6)]
        g.gate.set()
        [f.result(10) for f in futs]
        assert [len(b) for b in g.batches] == [1, 4, 2]
        assert svc.stats()["batches"] == 3


def test_cache_returns_the_same_read_only_sound(engine):
    with SoundService(engine, cache_size=2) as svc:
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


def test_cancelled_request_is_not_rendered(engine):
    g = Gated(engine)
    with SoundService(g) as svc:
        busy(svc, g)
        f = svc.submit(Voice("rim", seed=1))
        keep = svc.submit(Voice("rim", seed=2))
        assert f.cancel()
        g.gate.set()
        keep.result(10)
        assert all(v.seed != 1 for b in g.batches for v in b)
        assert svc.stats()["cancelled"] == 1


def test_overload_is_an_error_not_a_wait(engine):
    g = Gated(engine)
    with SoundService(g, max_queue=2) as svc:
        busy(svc, g)
        svc.submit(Voice("kick", seed=1))
        svc.submit(Voice("kick", seed=2), stream="pad")
        with pytest.raises(ServiceOverloaded, match="overloaded"):
            svc.submit(Voice("kick", seed=3))
        svc.submit(Voice("kick", seed=4), stream="pad")  # a stream's newer move replaces, so it still fits
        assert svc.stats()["overloaded"] == 1 and svc.queued() == 2
        g.gate.set()


def test_bad_voices_and_failed_renders(engine):
    g = Gated(engine, open_=True)
    with SoundService(g) as svc:
        with pytest.raises(ValueError, match="unknown class"):
            svc.submit(Voice("banjo", seed=1))
        with pytest.raises(ValueError, match="latent has"):
            svc.submit(Voice("kick", z=(0.0, 1.0)))
        g.fail = True
        with pytest.raises(RuntimeError, match="render failed"):
            svc.render(Voice("kick", seed=1), timeout=10)
        g.fail = False  # the worker survived its failed batch
        assert svc.render(Voice("kick", seed=1), timeout=10).shape == (engine.n_samples,)
        assert svc.stats()["errors"] == 1


def test_many_threads_get_the_sounds_one_thread_gets(engine):
    rng = np.random.default_rng(0)
    pool = ([Voice(c, seed=int(s)) for c, s in zip(engine.classes, rng.integers(0, 1000, 11))]
            + [Voice("snare", controls=Controls(x=float(x), y=float(-x))) for x in np.linspace(-1, 1, 9)]
            + [Voice("hh_open", seed=3, sampler=SamplerControls(tune=float(t), velocity=90.0)) for t in (-5, 0, 7)]
            + [Voice("tom", z=tuple(float(v) for v in rng.standard_normal(engine.latent_dim)))]
            + [Voice("crash", controls=Controls(fine=0.5), amount=0.4, variation_seed=s) for s in range(4)])
    ref = {v: engine.render([v])[0] for v in pool}
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

    svc = SoundService(engine, max_queue=16, max_batch=8, cache_size=8)
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


def test_close_cancels_waiting_requests_and_refuses_new_ones(engine):
    g = Gated(engine)
    svc = SoundService(g)
    running = busy(svc, g)
    waiting = [svc.submit(Voice("shaker", seed=s)) for s in range(3)]
    closer = threading.Thread(target=svc.close)
    closer.start()
    time.sleep(0.05)
    g.gate.set()  # the batch in progress finishes
    closer.join(10)
    assert not closer.is_alive() and not svc.alive()
    assert running.result(0).shape == (engine.n_samples,)
    assert all(f.cancelled() for f in waiting)
    with pytest.raises(ServiceClosed):
        svc.submit(Voice("shaker", seed=9))


def test_a_newer_move_keeps_its_streams_place_in_line(engine):
    g = Gated(engine)
    with SoundService(g, max_batch=1) as svc:
        busy(svc, g)
        svc.submit(Voice("kick", controls=Controls(x=0.1)), stream="a")
        svc.submit(Voice("kick", controls=Controls(x=0.2)), stream="b")
        last = svc.submit(Voice("kick", controls=Controls(x=0.3)), stream="a")  # a moves again: still first
        g.gate.set()
        last.result(10)
        order = [b[0].controls.x for b in g.batches[1:]]
        assert order[0] == 0.3
