"""The live path: one WebSocket per page; every control move is a render request, latest-wins per stream.

Messages from the page are JSON text::

    {"type": "render", "id": 7, "stream": "pad", "voice": {"class": "snare", "controls": {"x": 0.4, ...}}}
    {"type": "render", "id": 9, "stream": "pad", "quality": "hifi", "voice": {...}}
    {"type": "ping", "id": 8}

``quality`` (optional): ``"live"`` (default: the playing path, for every move) or ``"hifi"``: rendered in hi-fi
(Griffin-Lim iterations after the inverter: ~20 ms more a sound) by a second service with its own worker and its
own latest-wins streams, for what stays: the page asks for it when the pad has been still for a moment, and for
its kit's slots. A server without hi-fi (an ONNX export; while the hi-fi engine still loads) plays it live; the
sound's header says which it got.

``stream`` (optional, 1–32 of ``A-Z a-z 0-9 _ . : -``) names a control: while a request of the same stream of
the same connection still waits, a new one replaces it (the sound service's latest-wins). Replies:

- a **sound**: one binary message, ``uint32 LE h`` · ``h bytes of JSON header`` · ``int16 LE samples``, the
  header padded with spaces so the samples start 4-byte aligned. Header: ``{"type": "sound", "id", "stream",
  "n", "sample_rate", "render_ms", "map": [x, y], "quality", "format": "s16", "scale"}`` (``render_ms``: submit → sound
  ready, in the server); sample i is ``int16[i] · scale``, ``scale`` = the sound's peak / 32767, so the
  rounding stays 96 dB under each sound's own peak, and a 1 s sound at 44.1 kHz is 88 KB instead of 176.
  A client may ask for float32 LE samples by connecting to ``/ws?format=f32`` (header ``"format": "f32"``;
  :func:`unpack_sound` and the page read both; a sound without ``format`` is float32).
- ``{"type": "superseded", "id"}``: a newer move of the same stream replaced it (no sound comes).
- ``{"type": "error", "id", "message"}``: a bad message, a bad voice (the message names the field) or an
  overloaded service. The connection stays open; nothing a page sends can stop the server.
- ``{"type": "pong", "id"}``.
"""
from __future__ import annotations

import asyncio
import json
import re
import struct
import time
from typing import Any, Optional
from urllib.parse import urlsplit

import numpy as np
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..service import ServiceClosed, ServiceOverloaded
from ..voice import Voice

MAX_MESSAGE_CHARS = 64 * 1024  # a voice with a 64-d latent is ≈ 2 kB
MAX_IN_FLIGHT = 32  # requests of one connection waiting for their sound (not counting those a newer one replaced)
MAX_UNSENT = 256  # replies a connection may leave unread before it is closed (a page that never reads)
MAX_LENGTH_S = 5.0  # longest sound the page may ask for (the sampler's own limit is 60 s)
STREAM = re.compile(r"^[A-Za-z0-9_.:-]{1,32}$")


def parse_voice(engine, d: Any, where: str = "voice", model_checks: bool = True) -> Voice:
    """A voice from JSON, checked against the engine (class, latent size) unless ``model_checks`` is False
    (the sound service makes them again on submit); ValueError naming the field."""
    try:
        v = Voice.from_dict(d, where)
    except ValueError:
        raise
    except Exception as e:  # TypeError, OverflowError from odd JSON values: still the caller's mistake
        raise ValueError(f"{where}: {e}") from None
    if model_checks:
        try:
            engine.voice_z(v)  # the checks only the model can make: class name, latent size
        except Exception as e:
            raise ValueError(f"{where}: {e}") from None
    if v.sampler.length is not None and v.sampler.length > MAX_LENGTH_S:
        raise ValueError(f"{where}.sampler.length={v.sampler.length:g} s: the instrument plays at most "
                         f"{MAX_LENGTH_S:g} s")
    return v


def same_origin(headers) -> bool:
    """True unless a browser says the socket is opened by a page of another site (its Origin's host:port is
    not the Host it connects to): no other web site may play this instrument. Non-browser clients send no
    Origin and are let in."""
    origin = headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc.lower() == (headers.get("host") or "").lower()


SOUND_FORMATS = ("s16", "f32")  # what /ws?format= may ask for; s16 when not asked


def pack_sound(header: dict, wave: np.ndarray, fmt: str = "s16") -> bytes:
    """The binary sound message: length-prefixed JSON header, padded to 4 bytes, then the samples as int16
    scaled to the sound's peak (``fmt="s16"``, header ``format`` and ``scale``) or as float32 (``"f32"``)."""
    wave = np.asarray(wave, dtype=np.float32)
    if fmt == "s16":
        wave = np.nan_to_num(wave, nan=0.0, posinf=0.0, neginf=0.0)  # int16 has no NaN: a broken sample is silent
        peak = float(np.max(np.abs(wave))) if wave.size else 0.0
        scale = peak / 32767.0 if peak > 0 else 1.0
        body = np.clip(np.rint(wave / scale), -32767, 32767).astype("<i2").tobytes()
        header = {**header, "format": "s16", "scale": scale}
    elif fmt == "f32":
        body = np.ascontiguousarray(wave, dtype="<f4").tobytes()
        header = {**header, "format": "f32"}
    else:
        raise ValueError(f"sound format {fmt!r}: choose one of {', '.join(SOUND_FORMATS)}")
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-(4 + len(h)) % 4)
    return struct.pack("<I", len(h)) + h + body


def unpack_sound(data: bytes) -> tuple[dict, np.ndarray]:
    """Inverse of :func:`pack_sound`: (header, samples (n,) float32)."""
    (h,) = struct.unpack_from("<I", data)
    header = json.loads(data[4:4 + h])
    if header.get("format", "f32") == "s16":
        return header, np.frombuffer(data, dtype="<i2", offset=4 + h).astype(np.float32) * np.float32(header["scale"])
    return header, np.frombuffer(data, dtype="<f4", offset=4 + h)


class Connection:
    """One page's WebSocket: reads requests, submits them, and one sender task writes the replies in order of
    completion. Nothing here is shared between connections except the service."""

    def __init__(self, ws: WebSocket, instrument):
        self.ws, self.ins = ws, instrument
        self.loop = asyncio.get_running_loop()
        self.out: asyncio.Queue = asyncio.Queue()
        self.pending: dict = {}  # future → request id
        self.key = f"ws{id(self)}"

    async def run(self) -> None:
        if not same_origin(self.ws.headers):
            await self.ws.close(code=1008, reason="cross-origin WebSocket refused")  # another site's page
            return
        fmt = self.ws.query_params.get("format", "s16")
        if fmt not in SOUND_FORMATS:
            await self.ws.close(code=1008, reason=f"format={fmt[:20]!r}: choose one of {', '.join(SOUND_FORMATS)}")
            return
        self.fmt = fmt
        await self.ws.accept()
        sender = asyncio.create_task(self._send_loop())
        try:
            while True:
                msg = await self.ws.receive()
                if msg["type"] == "websocket.disconnect":
                    break
                if self.out.qsize() >= MAX_UNSENT:
                    await self.ws.close(code=1008, reason=f"{MAX_UNSENT} replies unread: read the replies")
                    break
                reply = self._handle(msg.get("text"), msg.get("bytes"))
                if reply is not None:
                    self.out.put_nowait(reply)
        except (WebSocketDisconnect, RuntimeError):
            pass  # the page went away mid-message
        finally:
            for fut in list(self.pending):
                fut.cancel()
            sender.cancel()

    # ------------------------------------------------------------------ requests
    def _handle(self, text: Optional[str], data: Optional[bytes]) -> Optional[dict]:
        if text is None:
            return {"type": "error", "id": None, "message": "send JSON text messages, not binary ones"}
        if len(text) > MAX_MESSAGE_CHARS:
            return {"type": "error", "id": None, "message": f"message too long ({len(text)} characters; "
                                                            f"at most {MAX_MESSAGE_CHARS})"}
        try:
            d = json.loads(text)
        except (ValueError, RecursionError):
            return {"type": "error", "id": None, "message": "not valid JSON"}
        if not isinstance(d, dict):
            return {"type": "error", "id": None, "message": "expected a JSON object with a 'type'"}
        rid = d.get("id")
        if not (rid is None or isinstance(rid, (int, str)) and not isinstance(rid, bool) and len(str(rid)) <= 64):
            return {"type": "error", "id": None, "message": "id must be a number or a short string"}
        kind = d.get("type")
        if kind == "ping":
            return {"type": "pong", "id": rid}
        if kind != "render":
            return {"type": "error", "id": rid, "message": f"unknown message type {str(kind)[:40]!r}; "
                                                          "use 'render' or 'ping'"}
        try:
            self._submit(rid, d)
        except (ValueError, ServiceOverloaded, ServiceClosed) as e:
            return {"type": "error", "id": rid, "message": str(e)}
        return None

    def _submit(self, rid, d: dict) -> None:
        stream = d.get("stream")
        if stream is not None and not (isinstance(stream, str) and STREAM.fullmatch(stream)):
            raise ValueError("stream must be 1–32 letters, digits or _ . : -")
        # (a request a newer one on its stream replaced is cancelled at once: only those still waiting count)
        if sum(not f.done() for f in self.pending) >= MAX_IN_FLIGHT:
            raise ServiceOverloaded(f"{MAX_IN_FLIGHT} requests of this page are already waiting; "
                                    "wait for their sounds before sending more")
        service, quality = self.ins.service_for(d.get("quality", "live"))
        voice = parse_voice(self.ins.engine, d.get("voice"), model_checks=False)
        t0 = time.perf_counter()
        try:  # submit makes the model's checks (class, latent size) before queueing
            fut = service.submit(voice, stream=f"{self.key}/{stream}" if stream else None)
        except (ServiceOverloaded, ServiceClosed):
            raise
        except Exception as e:
            raise ValueError(f"voice: {e}") from None
        self.pending[fut] = rid

        def done(f, stream=stream, voice=voice, t0=t0, quality=quality):
            item = (rid, stream, voice, f, (time.perf_counter() - t0) * 1e3, quality)
            try:
                self.loop.call_soon_threadsafe(self.out.put_nowait, item)
            except RuntimeError:  # the server's loop has closed: nobody is waiting any more
                pass

        fut.add_done_callback(done)

    # ------------------------------------------------------------------ replies
    async def _send_loop(self) -> None:
        while True:
            item = await self.out.get()
            try:
                if isinstance(item, dict):
                    await self.ws.send_text(json.dumps(item))
                else:
                    await self._send_result(*item)
            except Exception:  # the socket closed under us: nothing more to send
                return

    async def _send_result(self, rid, stream, voice: Voice, fut, ms: float, quality: str) -> None:
        self.pending.pop(fut, None)
        if fut.cancelled():
            await self.ws.send_text(json.dumps({"type": "superseded", "id": rid}))
            return
        err = fut.exception()
        if err is not None:
            await self.ws.send_text(json.dumps({"type": "error", "id": rid, "message": f"render failed: {err}"}))
            return
        wave = fut.result()
        header = {"type": "sound", "id": rid, "stream": stream, "n": int(wave.shape[0]),
                  "sample_rate": self.ins.engine.sample_rate, "render_ms": round(ms, 2),
                  "map": [round(v, 4) for v in self.ins.project(self.ins.engine.voice_z(voice))],
                  "quality": quality}
        await self.ws.send_bytes(pack_sound(header, wave, self.fmt))
