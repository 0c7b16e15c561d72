"""The server never dies on bad input: hypothesis throws odd JSON, voices, bytes and WebSocket messages at it.

Every HTTP answer must be a 2xx or a 4xx with a JSON ``error``; every WebSocket message must get a reply
(sound, superseded, pong or error) and leave the connection usable.
"""
import io
import json
import warnings
import math

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
hyp = pytest.importorskip("hypothesis")
with warnings.catch_warnings():  # starlette's note about its httpx-based client
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from helpers_bundle import random_bundle  # noqa: E402
from neuraldrum.engine import Engine  # noqa: E402
from neuraldrum.web.app import create_app  # noqa: E402
from neuraldrum.web.live import unpack_sound  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
FUZZ = settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                       HealthCheck.too_slow])
CLASSES = ["kick", "snare", "clap", "hh_closed", "hh_open", "tom", "ride", "crash", "rim", "cowbell", "shaker"]


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    eng = Engine(random_bundle(tmp_path_factory.mktemp("fuzz") / "bundle"), warm=False)
    with TestClient(create_app(eng), raise_server_exceptions=False) as c:
        yield c


scalars = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12))
json_values = st.recursive(scalars, lambda kids: st.one_of(st.lists(kids, max_size=5),
                                                           st.dictionaries(st.text(max_size=8), kids, max_size=5)),
                           max_leaves=20)
numberish = st.one_of(st.floats(-1e6, 1e6), st.floats(-1.5, 1.5), st.integers(-10 ** 30, 10 ** 30), st.none(),
                      st.text(max_size=4), st.booleans(), st.lists(st.floats(-2, 2), max_size=3))
controls = st.fixed_dictionaries({}, optional={"x": numberish, "y": numberish, "fine": numberish,
                                               "range": numberish, "axes": st.one_of(st.just("pca"), numberish,
                                                                                     st.lists(st.integers(-3, 80), max_size=3))})
sampler = st.fixed_dictionaries({}, optional={"tune": numberish, "decay": numberish, "velocity": numberish,
                                              "length": numberish, "normalise": numberish, "bogus": numberish})
voices = st.fixed_dictionaries(
    {"class": st.one_of(st.sampled_from(CLASSES), st.text(max_size=6), numberish)},
    optional={"seed": numberish, "temperature": numberish, "z": st.one_of(numberish, st.lists(st.floats(-5, 5), max_size=70)),
              "controls": st.one_of(controls, numberish), "amount": numberish, "variation_seed": numberish,
              "sampler": st.one_of(sampler, numberish)})


def ok_or_4xx(r):
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        assert isinstance(r.json()["error"], str) and r.json()["error"]


@FUZZ
@given(voice=voices)
def test_generate_survives_any_voice(client, voice):
    r = client.post("/api/generate", json={"voice": voice})
    ok_or_4xx(r)
    if r.status_code == 200:
        x, _ = sf.read(io.BytesIO(r.content))
        assert np.isfinite(x).all()


@FUZZ
@given(body=json_values)
def test_json_endpoints_survive_any_json(client, body):
    for path in ("/api/generate", "/api/kit/check", "/api/kit/zip", "/api/kit/new"):
        ok_or_4xx(client.post(path, json=body))


@FUZZ
@given(body=st.one_of(st.binary(max_size=2048),
                      st.tuples(st.sampled_from([b"RIFF\x00\x00\x00\x00WAVE", b"fLaC", b"OggS", b"FORM\x00\x00\x00\x00AIFF"]),
                                st.binary(max_size=2048)).map(b"".join)))
def test_encode_survives_any_bytes(client, body):
    ok_or_4xx(client.post("/api/encode", content=body))


@FUZZ
@given(cut=st.integers(0, 4000), flip=st.lists(st.tuples(st.integers(0, 3999), st.integers(0, 255)), max_size=8),
       fmt=st.sampled_from(["WAV", "FLAC", "AIFF"]))
def test_encode_survives_damaged_audio_files(client, cut, flip, fmt):
    t = np.arange(2000) / 22050
    b = io.BytesIO()
    sf.write(b, (np.exp(-t * 20) * np.sin(2 * np.pi * 80 * t)).astype(np.float32), 22050, format=fmt)
    data = bytearray(b.getvalue()[:cut] if cut else b.getvalue())
    for i, v in flip:
        if i < len(data):
            data[i] = v
    ok_or_4xx(client.post("/api/encode", content=bytes(data)))


ws_messages = st.one_of(
    st.text(max_size=200),
    json_values.map(json.dumps),
    st.fixed_dictionaries({"type": st.sampled_from(["render", "ping", "x"]), "id": json_values},
                          optional={"stream": json_values, "voice": st.one_of(voices, json_values)}).map(json.dumps),
    st.binary(max_size=64),
)


@settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(msgs=st.lists(ws_messages, min_size=1, max_size=6))
def test_websocket_survives_any_messages(client, msgs):
    with client.websocket_connect("/ws") as ws:
        for m in msgs:
            (ws.send_bytes if isinstance(m, bytes) else ws.send_text)(m)
        ws.send_text(json.dumps({"type": "render", "id": "last", "voice": {"class": "kick"}}))
        while True:  # every message gets its reply; the connection still renders afterwards
            m = ws.receive()
            assert m["type"] == "websocket.send", m
            if m.get("bytes") is not None:
                h, w = unpack_sound(m["bytes"])
                assert np.isfinite(w).all()
                if h["id"] == "last":
                    break
            else:
                d = json.loads(m["text"])
                assert d["type"] in {"error", "pong", "superseded"} and (d["type"] != "error" or d["message"])
    assert client.get("/api/info").status_code == 200


def test_nan_and_infinity_in_json_are_refused(client):
    for bad in ("NaN", "Infinity", "-Infinity"):
        body = '{"voice": {"class": "kick", "controls": {"x": %s}}}' % bad
        r = client.post("/api/generate", content=body, headers={"content-type": "application/json"})
        ok_or_4xx(r)
        assert r.status_code == 422
    assert math.isfinite(1.0)
