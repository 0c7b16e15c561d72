"""The pad drag as a player does it, in real Chromium: how long the longest stretch with no new sound is.

Starts ``neuraldrum serve`` on loopback (as :mod:`neuraldrum.web.loadtest` does), opens the page in headless
Chromium (Debian's ``chromium`` through Playwright), waits for the kit to load and drags once for half a second
to warm up, then drags the XY pad at ``rate_hz`` moves a second for ``seconds`` along a circle. Everything is
measured outside the page's own code, by a probe added to the page before it loads (:data:`PROBE_JS`): the render
requests sent on the WebSocket, the sounds that came back, every ``AudioBufferSourceNode.start`` (with the first
samples of what it plays), and every pointer event on the pad. From those it reports:

- ``longest_gap_ms``: the longest stretch of the drag with no new sound starting (from the first move to the
  first sound, between sounds, and from the last sound started during the drag to the one that answers its
  last move); the target on a 2-core laptop-class CPU is ≤ 150 ms. ``longest_move_gap_ms`` beside it is the
  longest stretch with no move reaching the page (a page busy on its main thread delays the moves themselves);
- ``replies`` / ``played``: the drag's sounds that came back and those started (every reply newer than the last
  one played should be);
- ``move_ms``: each move's wait for the first sound started whose request left after the move (p50, p95), beside
  what the page's header says.

    python -m neuraldrum.web.dragbench --rate 60 --seconds 2
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import time
from typing import Optional

# Added to the page before its own scripts: records requests, sounds, plays and pad moves in window.__probe,
# all on the page's performance.now() clock (a pointer event's timeStamp is on the same clock).
PROBE_JS = r"""
(() => {
  const P = (window.__probe = { sent: [], replies: [], starts: [], moves: [] });
  const head = (a) => Array.from({ length: 32 }, (_, i) => a[i * 61] ?? 0); // a fingerprint: 32 samples spread
  const WS = window.WebSocket;
  window.WebSocket = class extends WS {
    constructor(...a) {
      super(...a);
      this.addEventListener("message", (ev) => {
        if (typeof ev.data === "string") return;
        const t = performance.now(), buf = ev.data;
        const h = new DataView(buf).getUint32(0, true);
        const hd = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 4, h)));
        const x = hd.format === "s16" ? Float32Array.from(new Int16Array(buf, 4 + h), (v) => v * hd.scale)
          : new Float32Array(buf, 4 + h);
        P.replies.push({ id: hd.id, stream: hd.stream, t, head: head(x) });
      });
    }
    send(d) {
      try {
        const m = JSON.parse(d);
        if (m.type === "render") P.sent.push({ id: m.id, stream: m.stream, t: performance.now() });
      } catch (e) { /* not JSON */ }
      return super.send(d);
    }
  };
  const start = AudioBufferSourceNode.prototype.start;
  AudioBufferSourceNode.prototype.start = function (...a) {
    P.starts.push({ t: performance.now(), head: this.buffer ? head(this.buffer.getChannelData(0)) : null });
    return start.apply(this, a);
  };
  for (const type of ["pointerdown", "pointermove"]) {
    window.addEventListener(type, (e) => {
      if (e.target && e.target.id === "pad" && e.buttons & 1) P.moves.push(e.timeStamp);
    }, true);
  }
})();
"""


def same_head(a, b, tol: float = 1e-6) -> bool:
    return a is not None and b is not None and len(a) == len(b) and all(abs(x - y) <= tol for x, y in zip(a, b))


def fresh_replies(probe: dict, stream: str = "pad", since: float = -math.inf) -> list:
    """The replies of ``stream`` that arrived after ``since`` and were newer (by request id) than every earlier
    reply of the stream: the ones a player should hear, in arrival order."""
    newest, out = 0, []
    for r in probe["replies"]:
        if r["stream"] != stream:
            continue
        if r["id"] > newest and r["t"] > since:
            out.append(r)
        newest = max(newest, r["id"])
    return out


def played_reply(start: dict, replies: list) -> Optional[dict]:
    """The reply a ``start`` played: the latest one that came before it with the same samples (None: none)."""
    return next((r for r in reversed(replies) if r["t"] <= start["t"] and same_head(start["head"], r["head"])), None)


def starts_matched(probe: dict, stream: str = "pad", since: float = -math.inf) -> list:
    """For each ``start`` after ``since`` (in order), the reply of ``stream`` it played, or None."""
    replies = [r for r in probe["replies"] if r["stream"] == stream]
    return [played_reply(s, replies) for s in probe["starts"] if s["t"] > since]


def move_latencies(probe: dict, stream: str = "pad") -> list:
    """Each pad move's wait (ms): from the move to the first sound started whose request left after the move."""
    sent = {s["id"]: s["t"] for s in probe["sent"] if s["stream"] == stream}
    replies = [r for r in probe["replies"] if r["stream"] == stream]
    played = []  # (start time, send time of the request it answered)
    for s in probe["starts"]:
        r = played_reply(s, replies)
        if r is not None and r["id"] in sent:
            played.append((s["t"], sent[r["id"]]))
    out = []
    for m in probe["moves"]:
        t = next((ts for ts, tsent in played if tsent >= m), None)
        if t is not None:
            out.append(t - m)
    return out


def longest_gap(probe: dict) -> float:
    """The longest stretch (ms) of the drag with no new sound starting: first move → first start, start → start
    during the drag, last start → the first start after the last move."""
    if not probe["moves"]:
        return math.nan
    t0, t1 = probe["moves"][0], probe["moves"][-1]
    starts = sorted(s["t"] for s in probe["starts"] if s["t"] > t0)
    during = [t for t in starts if t <= t1]
    after = [t for t in starts if t > t1]
    points = [t0] + during + ([after[0]] if after else [t1])
    return max(b - a for a, b in zip(points, points[1:])) if len(points) > 1 else math.nan


def nearest_rank(values: list, p: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(p * len(v)))] if v else math.nan


def drag(page, rate_hz: float, seconds: float, selector: str = "#pad") -> int:
    """Hold the mouse down on the pad and move it ``rate_hz`` times a second for ``seconds`` along a circle (on
    wall-clock time: a late move is not made up for). Returns the number of moves made."""
    box = page.locator(selector).bounding_box()
    cx, cy, r = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, 0.4 * min(box["width"], box["height"])
    page.mouse.move(cx + r, cy)
    page.mouse.down()
    n, t0 = int(rate_hz * seconds), time.perf_counter()
    for k in range(1, n + 1):
        wait = t0 + k / rate_hz - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        a = 2 * math.pi * k / (rate_hz * 1.5)  # a full circle every 1.5 s
        page.mouse.move(cx + r * math.cos(a), cy - r * math.sin(a))
    page.mouse.up()
    return n


def chromium_path() -> Optional[str]:
    return os.environ.get("NEURALDRUM_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def measure(page, rate_hz: float = 60.0, seconds: float = 2.0, settle_s: float = 10.0) -> dict:
    """Drag a loaded page's pad (the probe in place) and measure it; waits up to ``settle_s`` for the last move's
    sound."""
    page.evaluate("__probe.starts.length = 0; __probe.moves.length = 0; nd.latencies.length = 0")
    since = page.evaluate("performance.now()")
    n = drag(page, rate_hz, seconds)
    # (a page from before per-move latency has no pendingMoves: give it a fixed time)
    page.wait_for_function("nd.pendingMoves === 0 || nd.pendingMoves === undefined", timeout=settle_s * 1000)
    page.wait_for_timeout(100 if page.evaluate("nd.pendingMoves === 0") else 2000)
    probe = page.evaluate("__probe")
    replies = fresh_replies(probe, since=since)
    all_pad = [r for r in probe["replies"] if r["stream"] == "pad" and r["t"] > since]
    lat = move_latencies(probe)
    return {"rate_hz": rate_hz, "seconds": seconds, "moves_sent": n, "moves_seen": len(probe["moves"]),
            "requests": sum(1 for s in probe["sent"] if s["stream"] == "pad" and s["t"] > since),
            "replies": len(all_pad), "fresh_replies": len(replies), "played": len(probe["starts"]),
            "longest_gap_ms": round(longest_gap(probe), 1),
            "longest_move_gap_ms": round(max((b - a for a, b in zip(probe["moves"], probe["moves"][1:])),
                                             default=math.nan), 1),
            "move_ms": {"p50": round(nearest_rank(lat, 0.5), 1), "p95": round(nearest_rank(lat, 0.95), 1),
                        "n": len(lat)},
            "header": page.locator("#latency").inner_text()}


def run(rate_hz: float = 60.0, seconds: float = 2.0, model: Optional[str] = None, threads: Optional[int] = None,
        repeats: int = 3) -> dict:
    from playwright.sync_api import sync_playwright

    from .loadtest import start_server

    exe = chromium_path()
    if not exe:
        raise RuntimeError("chromium is not installed (scripts/setup.sh installs it)")
    proc, ws = start_server(model, threads)
    url = ws.replace("ws://", "http://").rsplit("/ws", 1)[0] + "/"
    try:
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=exe, args=["--autoplay-policy=no-user-gesture-required"])
            runs = []
            for _ in range(repeats):
                ctx = b.new_context(viewport={"width": 1280, "height": 800})
                page = ctx.new_page()
                page.add_init_script(PROBE_JS)
                page.goto(url)
                page.wait_for_function("window.nd && nd.ready && ndKit.slots.every(s => s.buffer)", timeout=120000)
                drag(page, rate_hz, 0.5)  # a warm-up drag (the server's first batches are slower), not measured
                page.wait_for_timeout(1000)
                runs.append(measure(page, rate_hz, seconds))
                ctx.close()
            b.close()
    finally:
        proc.terminate()
        proc.wait(10)
    gaps = sorted(r["longest_gap_ms"] for r in runs)
    return {"runs": runs, "longest_gap_ms_median": gaps[len(gaps) // 2], "longest_gap_ms_worst": gaps[-1],
            "target_ms": 150, "met": gaps[-1] <= 150}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m neuraldrum.web.dragbench", description=__doc__.split("\n")[0])
    ap.add_argument("--rate", type=float, default=60.0, help="pad moves a second (default 60)")
    ap.add_argument("--seconds", type=float, default=2.0, help="how long each drag lasts (default 2)")
    ap.add_argument("--repeats", type=int, default=3, help="drags, each in a fresh page (default 3)")
    ap.add_argument("--model", help="a model bundle (default: the one shipped)")
    ap.add_argument("--threads", type=int, help="torch threads of the server")
    a = ap.parse_args(argv)
    if a.rate <= 0 or a.seconds <= 0 or a.repeats < 1:
        ap.error("--rate and --seconds must be > 0, --repeats ≥ 1")
    print(json.dumps(run(a.rate, a.seconds, a.model, a.threads, a.repeats), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
