"""The web app in-process (FastAPI TestClient): every endpoint, its errors, the WebSocket, limits, the SFZ."""
import io
import json
import warnings
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
with warnings.catch_warnings():  # starlette's note about its httpx-based client
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient  # noqa: E402

from starlette.websockets import WebSocketDisconnect  # noqa: E402

from helpers_bundle import random_bundle  # noqa: E402
from neuraldrum import cli  # noqa: E402
from neuraldrum.engine import Engine  # noqa: E402
from neuraldrum.export.sfz import kit_sfz  # noqa: E402
from neuraldrum.kit import DEFAULT_NOTES, Kit, write_kit  # noqa: E402
from neuraldrum.web import uploads  # noqa: E402
from neuraldrum.web.app import STATIC, create_app  # noqa: E402
from neuraldrum.web.live import pack_sound, unpack_sound  # noqa: E402


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    return Engine(random_bundle(tmp_path_factory.mktemp("web") / "bundle"), warm=False)


@pytest.fixture(scope="module")
def client(engine):
    with TestClient(create_app(engine)) as c:
        yield c


def wav_bytes(x, sr=22050, fmt="WAV", subtype="PCM_16"):
    b = io.BytesIO()
    sf.write(b, x, sr, format=fmt, subtype=subtype)
    return b.getvalue()


def kick(seconds=0.5, sr=22050):
    t = np.arange(int(seconds * sr)) / sr
    return (np.exp(-t * 12) * np.sin(2 * np.pi * (50 + 120 * np.exp(-t * 30)) * t)).astype(np.float32)


# ---------------------------------------------------------------- page and info

def test_page_and_static_files_need_no_network(client):
    r = client.get("/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert 'id="pad"' in r.text and "/static/js/main.js" in r.text
    for f in STATIC.rglob("*"):
        if f.is_file():
            text = f.read_text()
            assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text), f"{f} loads something remote"
            assert "@import" not in text and "cdn" not in text.lower(), f
            assert client.get(f"/static/{f.relative_to(STATIC).as_posix()}").status_code == 200


def test_info_describes_the_model(client, engine):
    d = client.get("/api/info").json()
    assert d["classes"] == engine.classes and d["sample_rate"] == engine.sample_rate
    assert d["n_samples"] == engine.n_samples and d["latent_dim"] == engine.latent_dim
    assert d["notes"]["kick"] == 36 and d["notes"]["snare"] == 38
    assert d["limits"]["upload_bytes"] == uploads.MAX_UPLOAD_BYTES and d["map_source"] == "model"


def test_openapi_documents_the_paths_the_page_uses(client):
    paths = client.get("/openapi.json").json()["paths"]
    for p in ("/api/info", "/api/generate", "/api/encode", "/api/map", "/api/kit/new", "/api/kit/check",
              "/api/kit/zip", "/api/stats"):
        assert p in paths, p
    js = "".join(f.read_text() for f in (STATIC / "js").glob("*.js"))
    for used in re.findall(r"""["'`](/api/[a-z/]+)""", js):
        assert used in paths, f"the page calls {used}, which the API does not document"


# ---------------------------------------------------------------- generate

def test_generate_returns_the_voices_wav(client, engine):
    voice = {"class": "snare", "controls": {"x": 0.5, "y": -0.2, "range": 5}}
    r = client.post("/api/generate", json={"voice": voice, "name": "my snare!"})
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
    assert 'filename="my_snare.wav"' in r.headers["content-disposition"]
    x, sr = sf.read(io.BytesIO(r.content), dtype="float32")
    assert sr == engine.sample_rate and x.shape == (engine.n_samples,)
    from neuraldrum.voice import Voice
    want = engine.render([Voice.from_dict(voice)])[0]
    assert np.abs(x - want).max() <= 1 / 32767 + 1e-6  # the same sound, 16-bit


def test_generate_sampler_length_and_limits(client, engine):
    r = client.post("/api/generate", json={"voice": {"class": "kick", "seed": 3, "sampler": {"length": 0.25}}})
    x, sr = sf.read(io.BytesIO(r.content))
    assert x.shape == (round(0.25 * sr),)
    r = client.post("/api/generate", json={"voice": {"class": "kick", "sampler": {"length": 30}}})
    assert r.status_code == 422 and "at most 5 s" in r.json()["error"]


@pytest.mark.parametrize("voice, words", [
    ({"class": "snar"}, "unknown class 'snar'"),
    ({"class": "kick", "z": [1, 2]}, "latent has"),
    ({"class": "kick", "controls": {"x": 3}}, "control x"),
    ({"class": "kick", "seed": 10 ** 40}, "seed"),
    ({"class": "kick", "sampler": [1]}, "Sampler"),
    ({"class": "kick", "sampler": {"tune": 40}}, "tune"),
    ({"class": "kick", "amount": 0.5}, "variation_seed"),
    ({"class": "kick", "colour": "red"}, "unknown field"),
    ("kick", "voice"),
])
def test_generate_bad_voices_are_422_naming_the_field(client, voice, words):
    r = client.post("/api/generate", json={"voice": voice})
    assert r.status_code == 422 and words in r.json()["error"]


def test_unknown_paths_and_methods_answer_json(client):
    r = client.get("/api/nothing")
    assert r.status_code == 404 and r.json() == {"error": "Not Found"}
    assert client.get("/api/generate").status_code == 405 and "error" in client.get("/api/generate").json()


def test_bad_json_and_oversize_bodies(client):
    r = client.post("/api/generate", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and "error" in r.json()
    r = client.post("/api/kit/check", content=b" " * (2 * 2 ** 20), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "too large" in r.json()["error"]


# ---------------------------------------------------------------- encode (uploads)

@pytest.mark.parametrize("fmt, subtype", [("WAV", "PCM_16"), ("FLAC", "PCM_16"), ("OGG", "VORBIS"),
                                          ("AIFF", "PCM_24")])
def test_encode_reads_each_kind(client, engine, fmt, subtype):
    r = client.post("/api/encode?name=dir/kick.x", content=wav_bytes(kick(0.5, 44100), 44100, fmt, subtype))
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["name"] == "kick.x" and d["class"] in engine.classes and len(d["z"]) == engine.latent_dim
    assert abs(sum(d["probabilities"].values()) - 1) < 1e-2
    assert d["probabilities"][d["class"]] == max(d["probabilities"].values())
    assert abs(d["seconds"] - 0.5) < 0.01 and len(d["map"]) == 2


def test_encode_matches_the_engine(client, engine):
    x = kick()
    d = client.post("/api/encode", content=wav_bytes(x, subtype="FLOAT")).json()
    e = engine.encode(x)
    assert d["class"] == e.cls and np.allclose(d["z"], e.z, atol=1e-4)


def test_encode_refusals(client, tmp_path):
    t = np.arange(22050 * 12) / 22050
    cases = [
        (b"", 422, "empty"),
        (b"just some text, not sound" * 10, 415, "not an audio file"),
        (b"\x89PNG\r\n\x1a\n" + bytes(100), 415, "WAV, FLAC, OGG or AIFF"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(40), 422, "cannot be read"),
        (wav_bytes(np.zeros(22050, np.float32)), 422, "silent"),
        (wav_bytes((0.5 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)), 422, "12.0 s long"),
    ]
    for data, status, words in cases:
        r = client.post("/api/encode", content=data)
        assert r.status_code == status and words in r.json()["error"], (status, r.text)
    big = b"RIFF" + bytes(uploads.MAX_UPLOAD_BYTES)
    r = client.post("/api/encode", content=big)
    assert r.status_code == 413 and "too large" in r.json()["error"]


def test_uploads_leave_nothing_behind(tmp_path, monkeypatch):
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    uploads.decode(wav_bytes(kick()), 22050)
    with pytest.raises(uploads.UploadError):
        uploads.decode(wav_bytes(np.zeros(100, np.float32)), 22050)
    assert list(tmp_path.iterdir()) == []


def test_sniff_by_content_not_name():
    assert uploads.sniff(wav_bytes(kick())[:16]) == "wav"
    assert uploads.sniff(wav_bytes(kick(), fmt="FLAC")[:16]) == "flac"
    assert uploads.sniff(b"ID3\x03" + bytes(12)) is None and uploads.sniff(b"") is None


# ---------------------------------------------------------------- map

def test_map_without_a_corpus_shows_each_class(client, engine):
    d = client.get("/api/map").json()
    assert d["source"] == "model" and "No corpus" in d["about"]
    pts = d["points"]
    assert {p["class"] for p in pts} == set(engine.classes) and len(pts) == 40 * len(engine.classes)
    ins = client.app.state.instrument
    p = pts[7]
    assert np.allclose(ins.project(np.asarray(p["z"], np.float32)), (p["x"], p["y"]), atol=1e-3)
    x0, y0, x1, y1 = d["bounds"]
    inside = [x0 <= p["x"] <= x1 and y0 <= p["y"] <= y1 for p in pts]
    assert 0.97 <= np.mean(inside) < 1  # the view leaves out only the few farthest points


def test_map_of_a_corpus(engine, tiny_corpus):
    with TestClient(create_app(engine, corpus=str(tiny_corpus))) as c:
        d = c.get("/api/map").json()
        assert c.get("/api/info").json()["map_source"] == "corpus"
    assert d["source"] == "corpus" and len(d["points"]) > 11
    assert all(p["class"] in engine.classes for p in d["points"])
    first = d["points"][0]
    assert first["label"].startswith(first["class"] + ":")


# ---------------------------------------------------------------- kit

def test_kit_new_check_and_zip(client, engine, tmp_path):
    kit = client.post("/api/kit/new", json={"seed": 5}).json()
    assert [s["name"] for s in kit["slots"]] == engine.classes
    kit["slots"][1]["voice"] = {"class": "clap", "controls": {"x": 0.3, "y": 0.1, "fine": 0, "range": 5, "axes": "pca"},
                                "amount": 0.2, "variation_seed": 9, "sampler": {"tune": 2}}
    checked = client.post("/api/kit/check", json=kit).json()
    assert checked["same_model"] and checked["slots"][1]["voice"]["controls"]["range"] == 5
    r = client.post("/api/kit/zip", json=kit)
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    z = zipfile.ZipFile(io.BytesIO(r.content))
    names = set(z.namelist())
    assert names == {f"{c}.wav" for c in engine.classes} | {"kit.json", "kit.sfz"}
    k = Kit.from_dict(json.loads(z.read("kit.json")))
    assert k.slots[1].voice.sampler.tune == 2 and k.slots[1].voice.cls == "clap"
    write_kit(engine, Kit.from_dict(kit), tmp_path / "ref")  # the CLI's kit writer: the same files, bit for bit
    for c in engine.classes:
        assert z.read(f"{c}.wav") == (tmp_path / "ref" / f"{c}.wav").read_bytes(), c
    sfz = z.read("kit.sfz").decode()
    for c in engine.classes:
        n = DEFAULT_NOTES[c]
        assert f"<region> sample={c}.wav key={n} pitch_keycenter={n}" in sfz


def test_kit_zips_are_rendered_by_the_kit_engine(engine, bundle_dir, tmp_path):
    """With a kit engine (neuraldrum serve: the model in hi-fi), kit zips are its renders, made once (when the app
    starts: it also renders hi-fi pads); `serve` makes one for a bundle, none for an ONNX export folder."""
    import argparse

    from neuraldrum.web.server import _kit_engine

    made = []

    def make():
        made.append(Engine(bundle_dir, warm=False, hifi=2))
        return made[-1]

    with TestClient(create_app(engine, kit_engine=make)) as c:
        kit = c.post("/api/kit/new", json={"seed": 5}).json()
        zips = [zipfile.ZipFile(io.BytesIO(c.post("/api/kit/zip", json=kit).content)) for _ in range(2)]
    assert len(made) == 1
    assert json.loads(zips[0].read("kit.json"))["info"]["hifi"] == 2
    write_kit(made[0], Kit.from_dict(kit), tmp_path / "hi")
    write_kit(engine, Kit.from_dict(kit), tmp_path / "lo")
    c0 = engine.classes[0]
    assert zips[1].read(f"{c0}.wav") == (tmp_path / "hi" / f"{c0}.wav").read_bytes()
    assert zips[1].read(f"{c0}.wav") != (tmp_path / "lo" / f"{c0}.wav").read_bytes()
    args = argparse.Namespace(model=str(bundle_dir), threads=None)
    assert _kit_engine(args)().hifi == 24
    (tmp_path / "export.json").write_text("{}")
    assert _kit_engine(argparse.Namespace(model=str(tmp_path), threads=None)) is None


def test_ws_hifi_requests_are_rendered_by_the_hifi_engine(engine, bundle_dir, capfd):
    """``"quality": "hifi"`` renders go to the hi-fi engine (made when the app starts, shared with kit zips) and
    say so; a live render of the same voice is the playing engine's; a server without hi-fi plays them live;
    an unknown quality is an error naming it, and the connection stays open."""
    import time

    from neuraldrum.voice import Voice

    hi = Engine(bundle_dir, warm=False, hifi=2)
    voice = {"class": "snare", "controls": {"x": 0.3, "y": -0.4}}
    want_hi, want_lo = hi.render([Voice.from_dict(voice)])[0], engine.render([Voice.from_dict(voice)])[0]
    assert np.abs(want_hi - want_lo).max() > 1e-3
    app = create_app(engine, kit_engine=lambda: hi)
    with TestClient(app) as c:
        ins = app.state.instrument
        t0 = time.time()
        while ins.hifi() is None and time.time() - t0 < 30:
            time.sleep(0.05)
        assert c.get("/api/info").json()["hifi"] is True
        with c.websocket_connect("/ws?format=f32") as ws:
            ws.send_text(json.dumps({"type": "render", "id": 1, "stream": "pad", "quality": "hifi", "voice": voice}))
            h1, w1 = unpack_sound(ws.receive_bytes())
            ws.send_text(json.dumps({"type": "render", "id": 2, "stream": "pad", "voice": voice}))
            h2, w2 = unpack_sound(ws.receive_bytes())
            ws.send_text(json.dumps({"type": "render", "id": 3, "quality": "ultra", "voice": voice}))
            err = json.loads(ws.receive_text())
            ws.send_text(json.dumps({"type": "ping", "id": 4}))
            assert json.loads(ws.receive_text())["type"] == "pong"
        wav = c.post("/api/generate", json={"voice": voice, "quality": "hifi"})  # download WAV: hi-fi too
        bad = c.post("/api/generate", json={"voice": voice, "quality": "best"})
    assert (h1["quality"], h2["quality"]) == ("hifi", "live")
    assert np.abs(sf.read(io.BytesIO(wav.content), dtype="float32")[0] - want_hi).max() < 1e-4
    assert bad.status_code == 422 and "quality='best'" in bad.json()["error"]
    assert np.array_equal(w1, want_hi) and np.array_equal(w2, want_lo)
    assert err["type"] == "error" and err["id"] == 3 and "quality='ultra'" in err["message"]
    def broken():
        raise OSError("no such bundle")

    app = create_app(engine, kit_engine=broken)
    with TestClient(app) as c:  # a hi-fi engine that fails to load: said once, and hi-fi requests play live
        t0, err = time.time(), ""
        while "hi-fi rendering is off" not in err and time.time() - t0 < 10:
            time.sleep(0.05)
            err += capfd.readouterr().err
        assert "hi-fi rendering is off: OSError: no such bundle" in err
        with c.websocket_connect("/ws?format=f32") as ws:
            ws.send_text(json.dumps({"type": "render", "id": 1, "quality": "hifi", "voice": voice}))
            assert unpack_sound(ws.receive_bytes())[0]["quality"] == "live"
    assert app.state.instrument.hifi() is None
    with TestClient(create_app(engine)) as c:  # no hi-fi engine: played live, and the header says so
        assert c.get("/api/info").json()["hifi"] is False
        with c.websocket_connect("/ws?format=f32") as ws:
            ws.send_text(json.dumps({"type": "render", "id": 1, "quality": "hifi", "voice": voice}))
            h, w = unpack_sound(ws.receive_bytes())
    assert h["quality"] == "live" and np.array_equal(w, want_lo)


def test_kit_refusals(client):
    kit = client.post("/api/kit/new", json={"seed": 1}).json()
    bad = json.loads(json.dumps(kit))
    bad["slots"][2]["voice"]["class"] = "gong"
    r = client.post("/api/kit/check", json=bad)
    assert r.status_code == 422 and "slots[2]" in r.json()["error"] and "gong" in r.json()["error"]
    many = dict(kit, slots=[dict(kit["slots"][0], name=f"s{k}") for k in range(40)])
    assert "at most 32 slots" in client.post("/api/kit/zip", json=many).json()["error"]
    assert client.post("/api/kit/check", json={"format": "other"}).status_code == 422
    assert client.post("/api/kit/check", json=[1, 2]).status_code == 422
    assert client.post("/api/kit/new", json={"seed": -1}).status_code == 422
    other = dict(kit, model={"sha256": "0" * 64})
    assert client.post("/api/kit/check", json=other).json()["same_model"] is False


def test_sfz_gives_unmapped_slots_free_keys():
    text = kit_sfz([("a.wav", 60), ("b.wav", None), ("c.wav", 36), ("d.wav", None)], "x\ny")
    assert "sample=b.wav key=61" in text and "sample=d.wav key=62" in text and "sample=c.wav key=36" in text
    assert text.startswith("// x y:")


# ---------------------------------------------------------------- the WebSocket

def render_msg(i, voice, stream="pad"):
    return json.dumps({"type": "render", "id": i, "stream": stream, "voice": voice})


def test_ws_renders_sounds_of_the_right_length(client, engine):
    with client.websocket_connect("/ws") as ws:
        ws.send_text(render_msg(1, {"class": "kick", "controls": {"x": 0.2}}))
        h, w = unpack_sound(ws.receive_bytes())
        assert h["type"] == "sound" and h["id"] == 1 and h["stream"] == "pad" and h["n"] == engine.n_samples
        assert w.shape == (engine.n_samples,) and w.dtype == np.float32 and np.isfinite(w).all()
        assert h["sample_rate"] == engine.sample_rate and len(h["map"]) == 2 and h["render_ms"] >= 0
        ws.send_text(json.dumps({"type": "ping", "id": "p"}))
        assert json.loads(ws.receive_text()) == {"type": "pong", "id": "p"}


def test_ws_sound_is_the_engine_sound_in_16_bits(client, engine):
    """The sound that arrives is the engine's own render of the voice, rounded 96 dB under its peak, in half
    the bytes of float32."""
    voice = {"class": "snare", "controls": {"x": -0.3, "y": 0.5}}
    with client.websocket_connect("/ws") as ws:
        ws.send_text(render_msg(1, voice))
        data = ws.receive_bytes()
    h, w = unpack_sound(data)
    from neuraldrum.voice import Voice

    ref = engine.render([Voice.from_dict(voice)])[0]
    peak = float(np.abs(ref).max())
    assert h["format"] == "s16" and peak > 0
    assert np.abs(w - ref).max() <= peak / 32767 * 0.5 + 1e-7 * peak
    assert len(data) < 2 * engine.n_samples + 1024


def test_ws_format_f32_on_request(client, engine):
    """/ws?format=f32 sends the engine's float32 samples exactly; an unknown format closes the socket, naming it."""
    from starlette.websockets import WebSocketDisconnect

    from neuraldrum.voice import Voice

    voice = {"class": "kick", "controls": {"x": 0.6}}
    with client.websocket_connect("/ws?format=f32") as ws:
        ws.send_text(render_msg(1, voice))
        h, w = unpack_sound(ws.receive_bytes())
    assert h["format"] == "f32" and np.array_equal(w, engine.render([Voice.from_dict(voice)])[0])
    with pytest.raises(WebSocketDisconnect) as e:
        with client.websocket_connect("/ws?format=mp3") as ws:
            ws.receive_text()
    assert e.value.code == 1008 and "format='mp3'" in e.value.reason


def test_sound_message_formats():
    """int16 scaled to the peak (the peak itself exact), float32 exact, silence stays silence, and an
    unknown format is refused."""
    rng = np.random.default_rng(0)
    w = (rng.standard_normal(1001) * 0.3).astype(np.float32)
    h, got = unpack_sound(pack_sound({"id": 3}, w))
    assert h["id"] == 3 and h["format"] == "s16" and got.dtype == np.float32 and got.shape == w.shape
    i = int(np.abs(w).argmax())
    assert got[i] == pytest.approx(w[i], rel=1e-6)
    assert 0 < np.abs(got - w).max() <= np.abs(w).max() / 65534 * 1.0001
    h, got = unpack_sound(pack_sound({"id": 4}, w, fmt="f32"))
    assert h["format"] == "f32" and np.array_equal(got, w)
    _, got = unpack_sound(pack_sound({}, np.zeros(10, np.float32)))
    assert np.array_equal(got, np.zeros(10, np.float32))
    _, got = unpack_sound(pack_sound({}, np.array([0.5, np.nan, -np.inf, -0.25], np.float32)))
    assert np.allclose(got, [0.5, 0.0, 0.0, -0.25], atol=1e-4)  # a broken sample arrives silent
    with pytest.raises(ValueError, match="sound format"):
        pack_sound({}, w, fmt="mp3")


def test_a_broken_sample_is_silent_in_a_wav_too():
    """/api/generate's WAV writes a NaN or infinite sample as silence, as the WebSocket does (it was written as
    -32768: a sound gone NaN became a full-scale DC click)."""
    from neuraldrum.web.app import _wav_bytes

    x, sr = sf.read(io.BytesIO(_wav_bytes(np.array([0.5, np.nan, np.inf, -np.inf, -2.0], np.float32), 44100)))
    assert sr == 44100 and np.allclose(x, [0.5, 0.0, 0.0, 0.0, -1.0], atol=1e-4)


def test_ws_latest_wins_answers_every_move(client):
    n = 40
    with client.websocket_connect("/ws") as ws:
        for i in range(n):
            ws.send_text(render_msg(i, {"class": "snare", "controls": {"x": i / n, "y": -i / n}}))
        got = {}
        while len(got) < n:
            m = ws.receive()
            if m.get("bytes") is not None:
                h, _ = unpack_sound(m["bytes"])
                got[h["id"]] = "sound"
            else:
                d = json.loads(m["text"])
                got[d["id"]] = d["type"]
    assert got[n - 1] == "sound" and set(got.values()) <= {"sound", "superseded"}
    assert client.get("/api/stats").json()["superseded"] >= list(got.values()).count("superseded")


def test_ws_a_burst_on_one_stream_ends_on_its_last_move(engine, monkeypatch):
    """100 moves on one stream read before any reply is sent (a burst the server reads in one go) while the
    renderer is busy: none is refused, and only two wait (the one rendering, the last); the replaced ones used to
    count towards the page's 32 waiting requests until their "superseded" was sent, so the newest moves of a
    burst were refused and the pad stayed on an old sound."""
    import asyncio
    import threading

    from neuraldrum.service import SoundService
    from neuraldrum.web.app import Instrument
    from neuraldrum.web.live import MAX_IN_FLIGHT, Connection

    gate, render = threading.Event(), engine.render

    def held(voices):
        gate.wait(20)
        return render(voices)

    monkeypatch.setattr(engine, "render", held)
    service = SoundService(engine)

    async def burst():
        con = Connection(None, Instrument(engine, service))  # (requests only: nothing is sent)
        replies = [con._handle(render_msg(i, {"class": "snare", "controls": {"x": i / 100}}), None)
                   for i in range(100)]
        waiting = {con.pending[f] for f in con.pending if not f.done()}
        gate.set()
        last = next((f for f, rid in con.pending.items() if rid == 99), None)
        return replies, waiting, None if last is None else await asyncio.wrap_future(last)

    try:
        replies, waiting, wave = asyncio.run(burst())
    finally:
        gate.set()
        service.close()
    assert replies == [None] * 100 and MAX_IN_FLIGHT < 100  # (None: submitted; a refusal is an error reply)
    assert 99 in waiting and len(waiting) <= 2, waiting
    assert wave.shape == (engine.n_samples,)


def test_ws_a_page_that_never_reads_is_closed(engine, monkeypatch):
    """Replies a page does not read pile up in the server (a ping loop grew it by ~300 bytes a message without
    end); past MAX_UNSENT the connection is closed with a reason."""
    import asyncio

    from neuraldrum.web import live

    async def stuck(self):  # the page reads nothing: the sender never gets a reply out
        await asyncio.Event().wait()

    monkeypatch.setattr(live.Connection, "_send_loop", stuck)
    with TestClient(create_app(engine)) as c, c.websocket_connect("/ws") as ws:
        for i in range(live.MAX_UNSENT + 1):
            ws.send_text(json.dumps({"type": "ping", "id": i}))
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
    assert closed.value.code == 1008 and "unread" in closed.value.reason


def test_ws_errors_keep_the_connection(client):
    with client.websocket_connect("/ws") as ws:
        for text, words in [("nope", "not valid JSON"), ("[1]", "JSON object"), ('{"type": "dance"}', "unknown message"),
                            (render_msg(3, {"class": "kick", "z": [0.1]}), "latent has"),
                            (render_msg(4, {"class": "kick"}, stream="x" * 40), "stream"),
                            ("x" * 70000, "too long")]:
            ws.send_text(text)
            d = json.loads(ws.receive_text())
            assert d["type"] == "error" and words in d["message"], (text[:30], d)
        ws.send_bytes(b"\x00\x01")
        assert "JSON text" in json.loads(ws.receive_text())["message"]
        ws.send_text(render_msg(5, {"class": "rim"}))
        assert unpack_sound(ws.receive_bytes())[0]["id"] == 5


def test_other_sites_cannot_play_it(engine):
    with TestClient(create_app(engine, hosts=["127.0.0.1", "localhost"]), base_url="http://127.0.0.1:8000") as c:
        assert c.get("/api/info").status_code == 200
        assert c.get("/api/info", headers={"host": "evil.example:8000"}).status_code == 400  # DNS rebinding
        with c.websocket_connect("ws://127.0.0.1:8000/ws", headers={"origin": "http://127.0.0.1:8000"}) as ws:
            ws.send_text(json.dumps({"type": "ping", "id": 1}))
            assert json.loads(ws.receive_text())["type"] == "pong"
        with pytest.raises(WebSocketDisconnect) as refused:  # a page of another site
            with c.websocket_connect("ws://127.0.0.1:8000/ws", headers={"origin": "http://evil.example"}) as ws:
                ws.receive_text()
        assert refused.value.code == 1008
        # a POST from another site's page (a "simple" request: no CORS preflight) is refused before it runs
        voice = {"voice": {"class": "kick"}}
        r = c.post("/api/generate", json=voice, headers={"origin": "http://evil.example"})
        assert r.status_code == 403 and "cross-origin" in r.json()["error"]
        r = c.post("/api/encode", content=b"RIFF....WAVE", headers={"origin": "http://evil.example:8000"})
        assert r.status_code == 403
        # the instrument's own page and non-browser clients (no Origin) are served
        r = c.post("/api/generate", json=voice, headers={"origin": "http://127.0.0.1:8000"})
        assert r.status_code == 200 and r.content[:4] == b"RIFF"
        assert c.post("/api/generate", json=voice).status_code == 200


# ---------------------------------------------------------------- the command

def test_serve_is_a_verb(monkeypatch):
    p = cli.build_parser()
    a = p.parse_args(["serve", "--port", "0", "--no-browser", "--data", "corpus"])
    assert a.port == 0 and a.no_browser and a.data == "corpus" and a.host == "127.0.0.1"
    assert cli.main(["serve", "--data", "/no/such/corpus", "--no-browser"]) == 1


def test_static_files_are_package_data():
    text = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    assert "web/static" in text


def test_serve_with_osc_shares_one_renderer(tiny_bundle, tmp_path):
    """`neuraldrum serve --osc PORT` answers the page's HTTP API and OSC from Max / Pd at once."""
    import re
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    from pythonosc.osc_message import OscMessage
    from pythonosc.osc_message_builder import OscMessageBuilder

    env = {**__import__("os").environ, "NEURALDRUM_CACHE": str(tmp_path / "cache")}
    proc = subprocess.Popen([sys.executable, "-m", "neuraldrum", "serve", "--model", str(tiny_bundle), "--port", "0",
                             "--osc", "0", "--no-browser", "--backend", "torch"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)
    try:
        lines, deadline = [], time.time() + 120
        while time.time() < deadline and not any("playing at" in x for x in lines):
            lines.append(proc.stdout.readline())
        text = "".join(lines)
        url = re.search(r"playing at (\S+)", text).group(1)
        osc_port = int(re.search(r"OSC on udp://[\d.]+:(\d+)", text).group(1))
        info = json.loads(urllib.request.urlopen(url.rstrip("/") + "/api/info", timeout=30).read())
        assert info["classes"][0] == "kick"
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.settimeout(60)
        b = OscMessageBuilder("/play")
        for a in ("snare", 0.2, -0.1, 0.0):
            b.add_arg(a)
        s.sendto(b.build().dgram, ("127.0.0.1", osc_port))
        msg = OscMessage(s.recv(65536))
        assert msg.address == "/sound" and msg.params[1] == 22016
    finally:
        proc.terminate()
        proc.wait(30)


def test_served_websocket_declines_compression(engine):
    """The real server (uvicorn) declines permessage-deflate, which a browser and the websockets client offer:
    deflating every sound cost more time than the bytes it saved (README, "How good, how fast"). The sound
    still arrives whole."""
    import threading
    import time

    from websockets.sync.client import connect

    from neuraldrum.web.server import bound_url, make_server

    srv = make_server(engine, port=0)
    th = threading.Thread(target=srv.run, daemon=True)
    th.start()
    end = time.monotonic() + 60  # a guard against a hang only
    while not srv.started and th.is_alive() and time.monotonic() < end:
        time.sleep(0.05)
    try:
        assert srv.started
        url = bound_url(srv).replace("http://", "ws://").rstrip("/") + "/ws"
        with connect(url, compression="deflate", origin=bound_url(srv).rstrip("/"), max_size=2 ** 24) as ws:
            assert ws.request.headers.get("Sec-WebSocket-Extensions", "").startswith("permessage-deflate")
            assert "Sec-WebSocket-Extensions" not in ws.response.headers
            ws.send(render_msg(1, {"class": "kick"}))
            h, w = unpack_sound(ws.recv())
        assert h["id"] == 1 and w.shape == (engine.n_samples,)
    finally:
        srv.should_exit = True
        th.join(10)


def test_beat_export_refuses_a_kit_without_a_good_beat(client):
    kit = client.post("/api/kit/new", json={"seed": 5}).json()
    r = client.post("/api/beat/mid", json=kit)
    assert r.status_code == 422 and "no patterns section" in r.json()["error"]
    kit["patterns"] = {"version": 1, "tempo": 120, "swing": 0, "steps": 16, "chain": ["A"],
                       "patterns": {"A": {"kick": [100] + [0] * 15, "nope": [0] * 16}}}
    r = client.post("/api/beat/wav", json=kit)
    assert r.status_code == 422 and "patterns.patterns.A.nope: the kit has no slot" in r.json()["error"]
    del kit["patterns"]["patterns"]["A"]["nope"]
    r = client.post("/api/beat/mid", json=kit)
    assert r.status_code == 200 and r.content[:4] == b"MThd"


def test_kit_zip_keeps_the_beat_and_the_mixers_choke_groups(client):
    kit = client.post("/api/kit/new", json={"seed": 5}).json()
    kit["mixer"] = {"version": 1, "slots": {"kick": {"choke": 3}, "snare": {"choke": 3, "level": 0.5},
                                            "hh_open": {"choke": 0}}}
    kit["patterns"] = {"version": 1, "tempo": 100, "swing": 10, "steps": 16, "chain": ["A"],
                       "patterns": {"A": {"kick": [100] + [0] * 15}}}
    z = zipfile.ZipFile(io.BytesIO(client.post("/api/kit/zip", json=kit).content))
    d = json.loads(z.read("kit.json"))
    assert d["mixer"] == kit["mixer"] and d["patterns"] == kit["patterns"]
    regions = {ln.split()[1]: ln for ln in z.read("kit.sfz").decode().splitlines() if ln.startswith("<region>")}
    assert regions["sample=kick.wav"].endswith("group=3 off_by=3 off_mode=fast")
    assert regions["sample=snare.wav"].endswith("group=3 off_by=3 off_mode=fast")
    assert regions["sample=hh_closed.wav"].endswith("group=1 off_by=1 off_mode=fast")  # the hats' default
    assert "group=" not in regions["sample=hh_open.wav"] and "group=" not in regions["sample=tom.wav"]
    kit["mixer"]["slots"]["kick"]["choke"] = 9
    r = client.post("/api/kit/zip", json=kit)
    assert r.status_code == 422 and "kit: mixer.slots.kick.choke: 9" in r.json()["error"]


def test_beat_wav_is_neuraldrum_render_of_beat_mid_with_kit_json(client, engine, tmp_path):
    """The API's beat WAV is `neuraldrum render beat.mid --kit kit.json` of its own beat MIDI, sample for sample,
    the mixer applied (a panned slot: stereo); the MIDI holds the steps' velocities, muted slots' notes too."""
    import mido

    kit = client.post("/api/kit/new", json={"seed": 5}).json()
    kit["mixer"] = {"version": 1, "slots": {"kick": {"level": 0.5, "pan": 0.8}, "snare": {"mute": True},
                                            "hh_closed": {"choke": 2}, "hh_open": {"choke": 2}}}
    kit["patterns"] = {"version": 1, "tempo": 120, "swing": 0, "steps": 16, "chain": ["A"],
                       "patterns": {"A": {"kick": [90] + [0] * 15, "snare": [0] * 4 + [127] + [0] * 11,
                                          "hh_open": [0, 0, 100] + [0] * 13, "hh_closed": [0] * 6 + [60] + [0] * 9}}}
    mid, wav = (client.post(f"/api/beat/{f}", json=kit) for f in ("mid", "wav"))
    assert mid.status_code == wav.status_code == 200
    (tmp_path / "beat.mid").write_bytes(mid.content)
    (tmp_path / "kit.json").write_text(json.dumps(kit))
    on = [(m.note, m.velocity) for m in mido.MidiFile(file=io.BytesIO(mid.content)).tracks[0] if m.type == "note_on"]
    assert sorted(on) == sorted([(36, 90), (38, 127), (46, 100), (42, 60)])
    assert cli.main(["render", str(tmp_path / "beat.mid"), "--kit", str(tmp_path / "kit.json"), "-o",
                     str(tmp_path / "cli.wav"), "--model", str(engine.bundle.path)]) == 0
    a, sra = sf.read(io.BytesIO(wav.content), dtype="int16")
    b, srb = sf.read(tmp_path / "cli.wav", dtype="int16")
    assert sra == srb and a.ndim == 2 and a.shape == b.shape and np.array_equal(a, b)
    assert np.abs(a[:, 1]).max() > np.abs(a[:, 0]).max() > 0  # the kick is panned right
