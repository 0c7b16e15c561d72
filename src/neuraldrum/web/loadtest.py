"""A bounded load test of ``neuraldrum serve`` on loopback: N clients dragging pads at once.

It starts the server as a child process (``neuraldrum serve --no-browser --port 0``, 127.0.0.1), connects
``clients`` WebSockets and has each one "drag" for ``seconds``: one move every ``1 / rate_hz`` s on its own
stream (a page sends at most one per animation frame), along a Lissajous path, each client on its own class.
Latency is measured per delivered sound, from sending the move to receiving its sound; moves a newer one
replaced are counted as superseded (latest-wins), not as errors. Then the child is stopped.

The reference is the time the same model takes to render ``clients`` sounds in one batch, measured in this
process first: the service's target is p95 ≤ 1.5 × that. The report also gives the batch time inside the
server during the run (run time / batches: the render worker never idles under this load), which is the fairer
reference on a machine shared with other work, and ``server_ms``, submit → sound ready inside the server.

    python -m neuraldrum.web.loadtest --clients 8 --seconds 20
"""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import subprocess
import sys
import time
import urllib.request
from typing import Optional

import numpy as np

from .live import SOUND_FORMATS, unpack_sound


def batch_ms(model: Optional[str], n: int, threads: Optional[int], repeats: int = 7) -> tuple[float, list, int]:
    """Median time (ms) to render ``n`` different voices in one batch with ``model``; also its classes and
    sound length."""
    from ..engine import Engine
    from ..voice import Controls, Voice

    eng = Engine(model, threads=threads)
    voices = [Voice(eng.classes[k % len(eng.classes)], controls=Controls(x=0.1 * k - 0.3)) for k in range(n)]
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        eng.render(voices)
        times.append((time.perf_counter() - t) * 1e3)
    return float(np.median(times)), eng.classes, eng.n_samples


async def _client(url: str, k: int, cls: str, seconds: float, rate_hz: float, out: dict) -> None:
    import websockets

    sent: dict[int, float] = {}
    lat, counts = out["latencies"], out["counts"]
    async with websockets.connect(url, max_size=2 ** 24) as ws:
        async def reader():
            async for msg in ws:
                now = time.perf_counter()
                if isinstance(msg, bytes):
                    h, w = unpack_sound(msg)
                    out["server_ms"].append(h["render_ms"])
                    t_sent = sent.pop(h["id"], None)
                    if t_sent is not None:
                        lat.append((now - t_sent) * 1e3)
                    counts["sounds"] += 1
                    if w.shape[0] != out["n_samples"]:
                        counts["wrong_length"] += 1
                    continue
                m = json.loads(msg)
                sent.pop(m.get("id"), None)
                counts["superseded" if m["type"] == "superseded" else "errors"] += 1
                if m["type"] == "error":
                    out["error_messages"].append(m.get("message"))

        task = asyncio.create_task(reader())
        t0, i = time.perf_counter(), 0
        while (t := time.perf_counter() - t0) < seconds:
            x, y = math.sin(2.1 * t + k), math.cos(1.3 * t + 2 * k)
            voice = {"class": cls, "controls": {"x": round(x, 3), "y": round(y, 3)}}
            sent[i] = time.perf_counter()
            await ws.send(json.dumps({"type": "render", "id": i, "stream": "pad", "voice": voice}))
            counts["moves"] += 1
            i += 1
            await asyncio.sleep(max(0.0, t0 + i / rate_hz - time.perf_counter()))
        deadline = time.perf_counter() + 10
        while sent and time.perf_counter() < deadline:  # the last replies
            await asyncio.sleep(0.02)
        counts["unanswered"] += len(sent)
        task.cancel()


def start_server(model: Optional[str], threads: Optional[int], timeout: float = 120,
                 backend: str = "auto") -> tuple[subprocess.Popen, str]:
    """Start ``neuraldrum serve --backend backend`` on a free loopback port; returns (process, ws:// URL)."""
    cmd = [sys.executable, "-m", "neuraldrum", "serve", "--no-browser", "--port", "0", "--host", "127.0.0.1"]
    cmd += ["--model", model] if model else []
    cmd += ["--threads", str(threads)] if threads else []
    cmd += ["--backend", backend]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    t0 = time.time()
    for line in proc.stdout:
        m = re.search(r"playing at http://([^/]+)/", line)
        if m:
            return proc, f"ws://{m.group(1)}/ws"
        if time.time() - t0 > timeout:
            break
    proc.kill()
    raise RuntimeError("the server did not start")


def run(clients: int = 8, seconds: float = 20.0, rate_hz: float = 60.0, model: Optional[str] = None,
        threads: Optional[int] = None, fmt: str = "s16", backend: str = "auto") -> dict:
    """Run the load test; returns throughput, latency percentiles (ms), counts and the service target. ``fmt``:
    the sound message format the clients ask for (``/ws?format=``); ``backend``: the server's ``--backend``
    (the reference batch is timed with torch either way)."""
    if not (1 <= clients <= 64 and 0 < seconds <= 120 and 0 < rate_hz <= 240):
        raise ValueError("clients 1–64, seconds ≤ 120, rate_hz ≤ 240: the load test is bounded")
    ref, classes, n_samples = batch_ms(model, clients, threads)
    proc, base = start_server(model, threads, backend=backend)
    url = f"{base}?format={fmt}"
    out = {"latencies": [], "server_ms": [], "error_messages": [], "n_samples": n_samples,
           "counts": {"moves": 0, "sounds": 0, "superseded": 0, "errors": 0, "unanswered": 0, "wrong_length": 0}}
    try:
        async def main():
            await asyncio.gather(*[_client(url, k, classes[k % len(classes)], seconds, rate_hz, out)
                                   for k in range(clients)])
        t0 = time.perf_counter()
        asyncio.run(main())
        wall = time.perf_counter() - t0
        with urllib.request.urlopen(base.replace("ws://", "http://").replace("/ws", "/api/stats"), timeout=10) as r:
            service = json.loads(r.read())
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    def pct(xs) -> dict:
        a = np.asarray(xs, dtype=float) if len(xs) else np.full(1, np.nan)
        return {f"p{q}": round(float(np.percentile(a, q)), 1) for q in (50, 95, 99)} | {"max": round(float(a.max()), 1)}

    c = out["counts"]
    lat = pct(out["latencies"])
    in_situ = 1e3 * wall / max(1, service["batches"])  # the worker never idles under this load
    return {"clients": clients, "format": fmt, "seconds": round(wall, 2), "rate_hz": rate_hz, **c,
            "sounds_per_s": round(c["sounds"] / wall, 1), "moves_per_s": round(c["moves"] / wall, 1),
            "latency_ms": lat, "server_ms": pct(out["server_ms"]),
            "batches": service["batches"], "mean_batch": round(service["rendered"] / max(1, service["batches"]), 2),
            "batch_ms": round(ref, 1), "batch_ms_in_server": round(in_situ, 1),
            "target_p95_ms": round(1.5 * ref, 1), "meets_target": lat["p95"] <= 1.5 * ref,
            "p95_over_batch_in_server": round(lat["p95"] / in_situ, 2),
            "error_messages": out["error_messages"][:5]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m neuraldrum.web.loadtest", description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--rate", type=float, default=60.0, help="moves per second per client")
    p.add_argument("--model", default=None)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--format", choices=SOUND_FORMATS, default="s16", help="sound message format (default s16)")
    p.add_argument("--backend", choices=("auto", "onnx", "torch"), default="auto", help="the server's --backend")
    a = p.parse_args(argv)
    print(json.dumps(run(a.clients, a.seconds, a.rate, a.model, a.threads, a.format, a.backend), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
