"""The instrument's web app: the page, its HTTP API and its WebSocket, over one engine and one sound service.

HTTP (JSON in and out unless said; every error is a 4xx/5xx with ``{"error": "<what to do>"}``):

- ``GET /`` the page; ``GET /static/…`` its files.
- ``GET /api/info``: classes, sample rate, sound length, GM notes, limits, the model, the map's source.
- ``POST /api/generate`` ``{"voice": {...}, "name": "snare"}`` → ``audio/wav`` (16-bit) of that voice.
- ``POST /api/encode?name=…`` with the raw bytes of a WAV/FLAC/OGG/AIFF file as the body → predicted
  class, probabilities, latent z and its map position (413 too large, 415 not audio, 422 unusable).
- ``GET /api/map``: the latent map's points (see :mod:`neuraldrum.web.latent_map`).
- ``POST /api/kit/new`` ``{"seed": 3}`` → a new kit (one prior sample per class); ``POST /api/kit/check``
  a kit JSON → the same kit, checked and in canonical form; ``POST /api/kit/zip`` a kit JSON → a zip of its
  WAVs, ``kit.sfz`` (GM key map) and ``kit.json`` (rendered by the app's kit engine: under ``neuraldrum serve``,
  in hi-fi).
- ``GET /api/stats``: the sound service's counters.
- ``WS /ws``: live rendering, latest-wins (see :mod:`neuraldrum.web.live`).
"""
from __future__ import annotations

import asyncio
import io
import logging
import re
import sys
import tempfile
import threading
import warnings
import zipfile
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Callable, Optional

from fastapi import Body, FastAPI, HTTPException, Query, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.middleware.trustedhost import TrustedHostMiddleware

from .. import __version__
from ..beat import add_sections, read_sections
from ..engine import QUALITIES, Engine
from ..export.sfz import kit_sfz
from ..kit import DEFAULT_NOTES, KIT_FILE, Kit, new_kit, write_kit
from ..roles import kit_roles
from ..service import ServiceClosed, ServiceOverloaded, SoundService
from . import latent_map, uploads
from .limits import BodyLimit, SameOrigin
from .live import MAX_LENGTH_S, Connection, parse_voice

log = logging.getLogger("neuraldrum.web")
STATIC = Path(__file__).parent / "static"
MAX_SLOTS = 32
RANGES = (2, 5, 10)


class Instrument:
    """What the app serves from: the engine, the service, the map (built once, on demand) and its frame, and the
    hi-fi service (``hifi_engine``: makes the engine that renders in hi-fi; None: no hi-fi)."""

    def __init__(self, engine: Engine, service: SoundService, corpus: Optional[str] = None,
                 hifi_engine: Optional[Callable[[], Engine]] = None):
        self.engine, self.service, self.corpus = engine, service, corpus
        self.mean, self.axes = latent_map.frame(engine)
        self._map: Optional[latent_map.LatentMap] = None
        self._map_lock = threading.Lock()
        self._heavy: dict = {}
        self._hifi_engine = hifi_engine
        self._hifi: Optional[SoundService] = None
        self._hifi_lock = threading.Lock()

    def start_hifi(self) -> None:
        """Make the hi-fi service (its engine loads for a second or two: call it off the event loop). A failure is
        said once on stderr; hi-fi requests are then played live."""
        if self._hifi_engine is None:
            return
        with self._hifi_lock:
            if self._hifi is None:
                try:
                    self._hifi = SoundService(self._hifi_engine())
                except Exception as e:  # (the page keeps playing; it only loses the hi-fi re-renders)
                    print(f"neuraldrum: hi-fi rendering is off: {type(e).__name__}: {e}", file=sys.stderr, flush=True)

    def hifi(self) -> Optional[SoundService]:
        """The hi-fi sound service: None when there is none, or while it is still being made."""
        return self._hifi

    def service_for(self, quality: Any) -> tuple[SoundService, str]:
        """The service a request's ``quality`` asks for, and the quality it gets: ``"hifi"`` without a hi-fi
        service is played live. ValueError naming the field for anything but :data:`~neuraldrum.engine.QUALITIES`."""
        if not (isinstance(quality, str) and quality in QUALITIES):
            raise ValueError(f"quality={str(quality)[:20]!r}: use {' or '.join(map(repr, QUALITIES))}")
        hifi = self._hifi if quality == "hifi" else None
        return (hifi, "hifi") if hifi is not None else (self.service, "live")

    def close(self) -> None:
        with self._hifi_lock:
            if self._hifi is not None:
                self._hifi.close()

    @property
    def heavy(self) -> asyncio.Semaphore:
        """Encodes, kit zips and the map share two worker threads at most (one semaphore per event loop)."""
        loop = asyncio.get_running_loop()
        return self._heavy.setdefault(id(loop), asyncio.Semaphore(2))

    def project(self, z) -> tuple[float, float]:
        p = self.axes @ (z - self.mean)
        return float(p[0]), float(p[1])

    def latent_map(self) -> latent_map.LatentMap:
        with self._map_lock:
            if self._map is None:
                self._map = (latent_map.corpus_map(self.engine, self.corpus) if self.corpus
                             else latent_map.model_map(self.engine))
            return self._map


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _wav_bytes(wave, sample_rate: int) -> bytes:
    import numpy as np
    import soundfile as sf

    buf = io.BytesIO()  # (int16 has no NaN: a broken sample is silent, as on the WebSocket, not full scale)
    wave = np.clip(np.nan_to_num(wave, nan=0.0, posinf=0.0, neginf=0.0), -1.0, 1.0)
    sf.write(buf, wave, sample_rate, subtype="PCM_16", format="WAV")
    return buf.getvalue()


def _filename(name: Any, default: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name or default))[:64].strip("._")
    return s or default


def _kit(d: Any) -> Kit:
    if isinstance(d, dict) and isinstance(d.get("slots"), list) and len(d["slots"]) > MAX_SLOTS:
        raise ValueError(f"a kit in the instrument has at most {MAX_SLOTS} slots (this one has {len(d['slots'])})")
    try:
        return Kit.from_dict(d, "kit")
    except ValueError:
        raise
    except Exception as e:  # odd JSON values that slip past the kit's own checks
        raise ValueError(f"kit: {e}") from None


def kit_zip(engine: Engine, kit: Kit, groups: Optional[list] = None, sections: Optional[dict] = None) -> bytes:
    """A zip of the kit rendered by :func:`neuraldrum.kit.write_kit` (WAVs + kit.json) plus ``kit.sfz``; ``groups``:
    each slot's choke group from the page's mixer (None: the hats', by role); ``sections``: the beat sections
    (:mod:`neuraldrum.beat`) kit.json keeps."""
    buf = io.BytesIO()
    with tempfile.TemporaryDirectory(prefix="neuraldrum-kit-") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a kit made with another model: its sounds differ, as the page says
        folder = write_kit(engine, kit, Path(tmp) / "kit")
        add_sections(folder / KIT_FILE, sections or {})
        sfz = kit_sfz([(f"{s.name}.wav", s.note) for s in kit.slots], kit.name,
                      classes=kit_roles(kit, engine.classes), groups=groups)
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for s in kit.slots:
                z.write(folder / f"{s.name}.wav", f"{s.name}.wav")
            z.write(folder / KIT_FILE, KIT_FILE)
            z.writestr("kit.sfz", sfz)
    return buf.getvalue()


def create_app(engine: Engine, corpus: Optional[str] = None, service: Optional[SoundService] = None,
               hosts: Optional[list[str]] = None, kit_engine: Optional[Callable[[], Engine]] = None) -> FastAPI:
    """The app for ``engine``. ``corpus``: a corpus folder for the latent map (else the model's own summary).
    ``service``: a sound service to use (one is made, and closed with the app, when None). ``hosts``: the only
    Host headers answered (``neuraldrum serve`` on loopback passes its own names, so a web page of another
    site cannot reach the instrument by DNS rebinding); None answers any. ``kit_engine``: makes the engine that
    renders kit zips (``neuraldrum serve``: the same model rendering in hi-fi), made when the app starts, and
    also renders the WebSocket's ``"quality": "hifi"`` requests; None: ``engine`` renders zips, and hi-fi requests
    are played live."""
    own = service is None
    state: dict = {}
    made: dict = {}
    made_lock = threading.Lock()

    def render_engine() -> Engine:
        if kit_engine is None:
            return engine
        with made_lock:
            if "engine" not in made:
                made["engine"] = kit_engine()
            return made["engine"]

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if corpus:  # encoding a corpus takes seconds: start now, so the map is ready when the page asks
            threading.Thread(target=state["ins"].latent_map, name="neuraldrum-map", daemon=True).start()
        if kit_engine is not None:  # and the hi-fi engine, so a still pad is re-rendered in hi-fi (docs: live.py)
            threading.Thread(target=state["ins"].start_hifi, name="neuraldrum-hifi", daemon=True).start()
        yield
        state["ins"].close()
        if own:
            state["ins"].service.close()

    app = FastAPI(title="neuraldrum", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="A neural drum machine you play in the browser. Sounds are defined by voices: "
                              "see neuraldrum.voice.Voice for the JSON fields.")
    ins = state["ins"] = Instrument(engine, service or SoundService(engine), corpus,
                                    hifi_engine=render_engine if kit_engine is not None else None)
    app.state.instrument = ins
    app.add_middleware(BodyLimit, default=1024 * 1024, limits={"/api/encode": uploads.MAX_UPLOAD_BYTES})
    app.add_middleware(SameOrigin)
    if hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=hosts)

    @app.exception_handler(StarletteHTTPException)  # ours, and the router's 404 / 405
    async def http_error(request: Request, exc: StarletteHTTPException):
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        errs = exc.errors()
        where = ".".join(str(p) for p in errs[0].get("loc", ())) if errs else "request"
        msg = errs[0].get("msg", "invalid") if errs else "invalid request"
        return _error(422, f"{where}: {msg}")

    @app.exception_handler(ClientDisconnect)  # an upload the browser abandoned: one line, not a traceback
    async def client_left(request: Request, exc: ClientDisconnect):
        log.warning("neuraldrum: %s %s: the client left before sending the whole body", request.method,
                    request.url.path)
        return _error(400, "the client disconnected")

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception):
        return _error(500, f"internal error ({exc.__class__.__name__}); the server keeps running")

    def bad(e: Exception) -> HTTPException:
        if isinstance(e, uploads.UploadError):
            return HTTPException(e.status, e.message)
        if isinstance(e, (ServiceOverloaded, ServiceClosed)):
            return HTTPException(503, str(e))
        msg = str(e)
        return HTTPException(422, msg if len(msg) <= 400 else msg[:400] + "…")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/api/info", summary="The model and the instrument's limits")
    async def info():
        return {"version": __version__, "classes": engine.classes, "sample_rate": engine.sample_rate,
                "n_samples": engine.n_samples, "latent_dim": engine.latent_dim,
                "prior_temperature": engine.prior_temperature(),
                "notes": {c: DEFAULT_NOTES.get(c) for c in engine.classes}, "ranges": list(RANGES),
                "has_pca": bool(engine.pca), "has_classifier": engine.has_classifier,
                "model": {"sha256": engine.model_sha256, "name": engine.model_name,
                          "backend": engine.backend.name},
                "map_source": "corpus" if corpus else "model", "hifi": kit_engine is not None,
                "limits": {"upload_bytes": uploads.MAX_UPLOAD_BYTES, "upload_seconds": uploads.MAX_UPLOAD_SECONDS,
                           "max_length_s": MAX_LENGTH_S, "max_slots": MAX_SLOTS}}

    @app.post("/api/generate", summary="Render one voice as a 16-bit WAV", response_class=Response,
              responses={200: {"content": {"audio/wav": {}}}})
    async def generate(voice: dict = Body(..., embed=True), name: Optional[str] = Body(None, embed=True),
                       quality: str = Body("live", embed=True)):
        try:
            service, _ = ins.service_for(quality)
            v = parse_voice(engine, voice)
            wave = await asyncio.wrap_future(service.submit(v))
        except (ValueError, ServiceOverloaded, ServiceClosed) as e:
            raise bad(e) from None
        fname = _filename(name, v.cls) + ".wav"
        return Response(_wav_bytes(wave, engine.sample_rate), media_type="audio/wav",
                        headers={"Content-Disposition": f'attachment; filename="{fname}"'})

    @app.post("/api/encode", summary="Analyse an uploaded sound: class, probabilities, latent",
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})
    async def encode(request: Request, name: str = Query("upload", max_length=200)):
        data = bytearray()
        async for chunk in request.stream():
            data += chunk
            if len(data) > uploads.MAX_UPLOAD_BYTES:
                raise bad(uploads.UploadError(413, f"the file is too large; the limit is "
                                                   f"{uploads.MAX_UPLOAD_BYTES / 2 ** 20:.0f} MiB"))
        async with ins.heavy:
            try:
                x = await asyncio.to_thread(uploads.decode, bytes(data), engine.sample_rate, name)
                e = await asyncio.to_thread(engine.encode, x, engine.sample_rate)
            except ValueError as err:
                raise bad(err) from None
        return {"name": Path(name).name[:80], "class": e.cls, "seconds": round(len(x) / engine.sample_rate, 3),
                "probabilities": {c: round(p, 4) for c, p in e.probs.items()},
                "z": [round(float(v), 5) for v in e.z], "map": [round(v, 4) for v in ins.project(e.z)]}

    @app.get("/api/map", summary="The latent map: points coloured by class")
    async def get_map():
        async with ins.heavy:
            m = await asyncio.to_thread(ins.latent_map)
        return m.to_json()

    @app.post("/api/kit/new", summary="A new kit: one prior sample per class")
    async def kit_new(seed: Optional[int] = Body(None, embed=True, ge=0, lt=2 ** 31)):
        return new_kit(engine, seed).to_dict()

    def checked_kit(kit: Any) -> Kit:
        """A kit JSON from the page, every voice checked against this model; 422 naming the field otherwise."""
        try:
            k = _kit(kit)
            for k_, s in enumerate(k.slots):
                parse_voice(engine, s.voice.to_dict(), f"kit: slots[{k_}].voice")
        except ValueError as e:
            raise bad(e) from None
        return k

    @app.post("/api/kit/check", summary="Check a kit JSON and return it in canonical form")
    async def kit_check(kit: Any = Body(...)):
        k = checked_kit(kit)
        d = k.to_dict()
        same = not k.model.get("sha256") or k.model.get("sha256") == engine.model_sha256
        return {**d, "same_model": same}

    @app.post("/api/kit/zip", summary="Render a kit: zip of WAVs + kit.sfz + kit.json", response_class=Response,
              responses={200: {"content": {"application/zip": {}}}})
    async def kit_zip_route(kit: Any = Body(...)):
        k = checked_kit(kit)
        try:  # the page's patterns and mixer travel in kit.json; its choke groups go into kit.sfz
            sections = read_sections(kit, [s.name for s in k.slots], "kit")
        except ValueError as e:
            raise bad(e) from None
        groups = None
        if "mixer" in sections:
            mix, roles = sections["mixer"]["slots"], kit_roles(k, engine.classes)
            groups = [mix.get(s.name, {}).get("choke", 1 if r in ("hh_open", "hh_closed") else 0)
                      for s, r in zip(k.slots, roles)]
        async with ins.heavy:
            data = await asyncio.to_thread(lambda: kit_zip(render_engine(), k, groups, sections))
        fname = _filename(k.name, "kit") + ".zip"
        return Response(data, media_type="application/zip",
                        headers={"Content-Disposition": f'attachment; filename="{fname}"'})

    @app.post("/api/beat/mid", summary="A kit's beat (its patterns and mixer sections) as a General MIDI file",
              response_class=Response, responses={200: {"content": {"audio/midi": {}}}})
    async def beat_mid(kit: Any = Body(...)):
        return await beat_file("mid", kit)

    @app.post("/api/beat/wav", summary="A kit's beat rendered with the kit: its MIDI file as `neuraldrum render` "
              "plays it with the kit's mixer (16-bit WAV; stereo when a slot is panned)", response_class=Response, responses={200: {"content": {"audio/wav": {}}}})
    async def beat_wav(kit: Any = Body(...)):
        return await beat_file("wav", kit)

    async def beat_file(fmt: str, kit: Any) -> Response:
        from ..beat import beat_midi

        k = checked_kit(kit)
        try:
            if not isinstance(kit.get("patterns"), dict):
                raise ValueError("kit: no patterns section: nothing to play")
            mid = beat_midi(k, kit["patterns"])
            mixer = read_sections(kit, [s.name for s in k.slots], "kit").get("mixer")
        except ValueError as e:
            raise bad(e) from None
        fname = _filename(k.name, "beat")
        if fmt == "mid":
            return Response(mid, media_type="audio/midi",
                            headers={"Content-Disposition": f'attachment; filename="{fname}.mid"'})

        def render() -> bytes:
            import mido

            from ..control.render import render_midi

            r = render_midi(engine, mido.MidiFile(file=io.BytesIO(mid)), [k], mixers=[mixer])
            return _wav_bytes(r.audio, r.sample_rate)

        async with ins.heavy:
            data = await asyncio.to_thread(render)
        return Response(data, media_type="audio/wav",
                        headers={"Content-Disposition": f'attachment; filename="{fname}.wav"'})

    @app.get("/api/stats", summary="The sound service's counters")
    async def stats():
        return ins.service.stats()

    @app.websocket("/ws")
    async def live(ws: WebSocket):
        await Connection(ws, ins).run()

    return app
