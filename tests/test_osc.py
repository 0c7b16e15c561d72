"""The OSC server: the protocol's parsing (pure), what each address does (with a fake socket), the bounded
sound folder, latest-wins per client, a real UDP round trip, the shared-service entry point
for the web server, the `osc` verb, and docs/osc.md agreeing with the address table."""
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("pythonosc")
from pythonosc.osc_message import OscMessage  # noqa: E402

from helpers_osc import Wire  # noqa: E402
from neuraldrum.control.osc import (ADDRESSES, SOUND_KEYS, OscError, Request, make_voice, parse,  # noqa: E402
                                    voice_for)
from neuraldrum.control.osc_server import OscApp, encode_message, pad_position, start_osc  # noqa: E402
from neuraldrum.control.soundfolder import SoundFolder  # noqa: E402
from neuraldrum.data.synth import synth  # noqa: E402
from neuraldrum.kit import load_kit  # noqa: E402
from neuraldrum.sampler import SamplerControls  # noqa: E402
from neuraldrum.service import SoundService  # noqa: E402
from neuraldrum.voice import Controls, Voice  # noqa: E402

CLASSES = ("kick", "snare", "clap", "hh_closed", "hh_open", "tom", "ride", "crash", "rim", "cowbell", "shaker")
ROOT = Path(__file__).resolve().parents[1]


def until(condition, timeout=10.0):
    """Wait for ``condition()`` to hold; False if it still does not after ``timeout`` s (a hang guard)."""
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(0.002)
    return True


@pytest.fixture
def app(engine, tmp_path):
    svc = SoundService(engine)
    wire = Wire()
    a = OscApp(svc, SoundFolder(tmp_path / "sounds"), wire.send)
    a.wire = wire
    yield a
    a.close()
    svc.close()


ME = ("127.0.0.1", 50000)


def ask(app, address, *args):
    """Send one message; return the reply it causes (the next one to arrive)."""
    n = len(app.wire.replies) + 1
    app.handle_packet(encode_message(address, *args), ME)
    return app.wire.wait(n)


# ---------------------------------------------------------------- the protocol, pure


def test_parse_play_positional_pad_then_keys():
    r = parse("/play", ["snare", 0.3, -0.2, 0.1, "range", 5.0, "seed", 7.0, "tune", -2, "id", "pad1"], CLASSES)
    assert r.target == "snare" and r.pad == (0.3, -0.2, 0.1)
    assert r.options == {"range": 5.0, "seed": 7, "tune": -2.0, "id": "pad1"} and r.id == "pad1"
    assert parse("/play", [3.0], CLASSES).target == "hh_closed"  # Pd's menus send the index as a float
    assert parse("/play", ["kick", 0.5], CLASSES).pad == (0.5, 0.0, 0.0)  # missing pad values are 0
    assert parse("/play", ["kick", "velocity", 64], CLASSES).pad is None


@pytest.mark.parametrize("address,args,match", [
    ("/nope", [], "unknown address '/nope'"),
    ("/play", [], "needs a class"),
    ("/play", ["snarex"], "unknown class 'snarex'"),
    ("/play", [11], r"class index=11 must be in \[0, 10\]"),
    ("/play", [2.5], "whole number"),
    ("/play", ["kick", 1.5], r"x=1.5 must be in \[-1, 1\]"),
    ("/play", ["kick", 0.1, "range"], "'range' has no partner"),
    ("/play", ["snare", "a", 0, 0], r"/play: x must be a number in \[-1, 1\], not 'a'"),  # (it said "0 has no partner")
    ("/play", ["snare", 0.2, True], "y must be a number .*not True"),
    ("/play", ["snare", "rnage", 5], "unknown key 'rnage'"),
    ("/play", ["kick", "colour", 1], "unknown key 'colour'"),
    ("/play", ["kick", "seed", 1, "seed", 2], "given twice"),
    ("/play", ["kick", "seed", 1, "source", "s1"], "not both"),
    ("/play", ["kick", "range", 0], r"range=0 must be in \(0, 1000\]"),
    ("/play", ["kick", "tune", 13], "tune=13"),
    ("/play", ["kick", "id", b"\x00"], "blobs are not accepted"),
    ("/play", ["kick", "id", "x" * 2000], "at most 1024"),
    ("/play", ["kick"] * 65, "at most 64"),
    ("/play", ["kick", "decay", float("nan")], "not a finite number"),
    ("/classes", [1], "takes no arguments"),
    ("/reply", [70000], r"port=70000 must be in \[1, 65535\]"),
    ("/kit/save", ["/tmp/x", "wav,mp3"], "unknown kit format"),
    ("/encode", [], "needs a file path"),
    ("/encode", ["a.wav", 0.5, 1], "unknown key 0.5"),
])
def test_parse_refusals_say_what_is_wrong(address, args, match):
    with pytest.raises(OscError, match=match):
        parse(address, args, CLASSES)


def test_make_voice_applies_the_request_to_a_start():
    base = Voice("tom", seed=3, sampler=SamplerControls(velocity=90.0))
    v = make_voice(base, (0.2, -0.4, 0.0), {"range": 5.0, "tune": 3.0, "amount": 0.2})
    assert v.controls == Controls(0.2, -0.4, 0.0, 5.0) and v.seed == 3
    assert v.sampler == SamplerControls(tune=3.0, velocity=90.0) and v.amount == 0.2 and v.variation_seed == 0
    assert make_voice(base, None, {}) == base  # nothing asked, nothing changed
    src = make_voice(base, None, {}, source=("kick", (0.5,) * 8))
    assert src.cls == "kick" and src.z == (0.5,) * 8 and src.seed is None
    r = Request("/play", "snare", None, {"source": "s1"})
    assert voice_for(r, ("kick", (0.5,) * 8)).cls == "snare"  # /play's class decodes the source's latent


def test_pad_position_inverts_the_controls(engine):
    for x, y, fine, rng in [(0.5, -0.25, 0.75, 2.0), (0.9, 0.1, -0.3, 5.0), (0.0, 0.0, 0.0, 2.0)]:
        z = engine.controls_to_z("snare", Controls(x, y, fine, rng))
        got = pad_position(engine, "snare", z)
        assert got[3] == (2.0 if max(abs(x), abs(y), abs(fine)) * rng / 2 <= 1 else got[3])
        assert np.allclose(np.array(got[:3]) * got[3], np.array([x, y, fine]) * rng, atol=1e-4)


# ---------------------------------------------------------------- what each address does


def test_play_writes_a_file_and_replies_with_its_path(app, engine):
    address, args, to = ask(app, "/play", "snare", 0.3, -0.2, 0.1, "range", 5.0, "id", "p1")
    assert address == "/sound" and to == ME
    path, n, sr, tag = args
    assert (n, sr, tag) == (engine.n_samples, engine.sample_rate, "p1")
    x, file_sr = sf.read(path, dtype="float32")
    want = engine.render([Voice("snare", controls=Controls(0.3, -0.2, 0.1, 5.0))])[0]
    assert file_sr == sr and len(x) == n and np.abs(x - want).max() <= 1 / 32767  # 16-bit WAV
    assert ask(app, "/play", "snare", 0.3, -0.2, 0.1, "range", 5.0)[1][0] == path  # same sound: same file
    _, args, _ = ask(app, "/play", 1, "length", 0.5, "tune", 2)
    assert args[1] == round(0.5 * engine.sample_rate)


def test_info_classes_ping_reply(app, engine):
    assert ask(app, "/classes")[:2] == ("/classes", list(engine.classes))
    _, info, _ = ask(app, "/info")
    assert info[:3] == [engine.sample_rate, engine.n_samples, engine.latent_dim]
    assert info[3] == engine.bundle.meta["weights"]["sha256"]
    assert ask(app, "/ping", 1, "x")[:2] == ("/pong", [1, "x"])
    assert ask(app, "/reply", 9001.0) == ("/reply", [9001], ("127.0.0.1", 9001))  # confirmed on the new port
    assert ask(app, "/ping")[2] == ("127.0.0.1", 9001)


def test_reply_redirects_only_the_client_that_asked(app):
    """Max's patch sends /reply 9001 on load; replies to a Pd patch on the same machine (another port) went
    there too, until the server restarted. /reply is per client (host and port)."""
    other = ("127.0.0.1", 50001)
    assert ask(app, "/reply", 9002)[2] == ("127.0.0.1", 9002)
    n = len(app.wire.replies) + 1
    app.handle_packet(encode_message("/ping", "pd"), other)
    assert app.wire.wait(n) == ("/pong", ["pd"], other)  # answered where it came from
    assert ask(app, "/ping")[2] == ("127.0.0.1", 9002)
    assert ask(app, "/reply", 50000)[2] == ME  # (back to the sender's own port, for the tests after this one)


def test_errors_reply_and_the_server_goes_on(app):
    expected = "unknown class 'nope'; choose from " + " ".join(CLASSES)
    assert ask(app, "/play", "nope")[:2] == ("/error", ["/play", expected])
    n = len(app.wire.replies)
    app.handle_packet(b"\x00garbage", ME)
    address, args, _ = app.wire.wait(n + 1)
    assert address == "/error" and args[0] == "" and "malformed OSC packet" in args[1]
    address, args, _ = ask(app, "/encode", "/no/such/file.wav")
    assert address == "/error" and args[0] == "/encode" and "no such file" in args[1]
    assert ask(app, "/ping")[0] == "/pong"


def test_encode_then_play_the_source(app, engine, tmp_path):
    wav = tmp_path / "my_snare.wav"
    sf.write(wav, synth("snare", seed=2), 44100)
    address, (handle, cls, prob, x, y, fine, rng, tag), _ = ask(app, "/encode", str(wav), "class", "snare", "id", "e1")
    assert address == "/encoded" and (cls, tag) == ("snare", "e1") and handle.startswith("s") and 0 <= prob <= 1
    assert all(-1 <= v <= 1 for v in (x, y, fine)) and rng in (2.0, 5.0, 10.0)
    enc = engine.encode(synth("snare", seed=2), sample_rate=44100, cls="snare")
    _, (path, *_), _ = ask(app, "/play", "snare", "source", handle)
    want = engine.render([Voice("snare").with_z(enc.z)])[0]
    assert np.abs(sf.read(path, dtype="float32")[0] - want).max() <= 2 / 32767
    assert "unknown source 'zz'" in ask(app, "/play", "snare", "source", "zz")[1][1]
    _, (slot_path, *_), _ = ask(app, "/kit/slot", "rim", "source", handle)  # your sample into a slot
    assert np.abs(sf.read(slot_path, dtype="float32")[0] - want).max() <= 2 / 32767  # decoded as its own class
    assert app.kit.slots[[s.name for s in app.kit.slots].index("rim")].voice.cls == "snare"


def test_variations_reply_once_each(app, engine):
    app.handle_packet(encode_message("/variations", "tom", "n", 3, "amount", 0.4, "variation", 10, "id", "v"), ME)
    replies = [app.wire.wait(k) for k in (1, 2, 3)]
    assert sorted(r[1][3] for r in replies) == ["v:0", "v:1", "v:2"]
    assert len({r[1][0] for r in replies}) == 3  # three different sounds, three files


def test_kit_slots_new_save(app, engine, tmp_path):
    address, args, _ = ask(app, "/kit/new", 4)
    assert address == "/kit" and args[0] == "kit-4" and args[1:] == list(engine.classes)
    _, (path, n, sr, tag), _ = ask(app, "/kit/slot", 38)  # by GM note
    assert tag == "slot:snare"
    _, (path2, *_), _ = ask(app, "/kit/slot", "snare", 0.5, "tune", -3)  # changes the slot
    assert path2 != path
    assert "no slot 'bongo'" in ask(app, "/kit/slot", "bongo")[1][1]
    address, (folder,), _ = ask(app, "/kit/save", str(tmp_path / "saved"), "wav,sfz,hydrogen")
    assert address == "/kit/saved"
    kit = load_kit(folder)
    snare = [s for s in kit.slots if s.name == "snare"][0]
    assert snare.voice.controls.x == 0.5 and snare.voice.sampler.tune == -3.0
    assert {"kit.sfz", "drumkit.xml", "snare.wav"} <= {p.name for p in Path(folder).iterdir()}
    assert ask(app, "/kit/load", folder)[1][0] == "kit-4"


class Slow:
    """The engine behind a gate: each render says it has begun (``entered``) and waits until ``gate`` is open."""

    def __init__(self, e, gate, entered):
        self.e, self.gate, self.entered = e, gate, entered
        self.sample_rate, self.classes = e.sample_rate, e.classes

    def voice_z(self, v):
        return self.e.voice_z(v)

    def render(self, voices):
        self.entered.set()
        assert self.gate.wait(10)
        return self.e.render(voices)

    def __getattr__(self, name):
        return getattr(self.e, name)


def test_latest_wins_per_client(engine, tmp_path):
    """A render in progress blocks the worker; three moves of one client queue behind it: only the newest is
    rendered and answered. Another client's move is not superseded by them."""
    gate, entered = threading.Event(), threading.Event()
    svc = SoundService(Slow(engine, gate, entered), cache_size=0)
    wire = Wire()
    app = OscApp(svc, SoundFolder(tmp_path / "s"), wire.send)
    try:
        a, b = ("127.0.0.1", 1), ("127.0.0.1", 2)
        app.handle_packet(encode_message("/play", "kick", 0.0, "id", "first"), a)
        assert entered.wait(10)  # the worker has taken it and waits at the gate
        for k, x in enumerate((0.1, 0.2, 0.3)):
            app.handle_packet(encode_message("/play", "kick", x, "id", f"a{k}"), a)
        app.handle_packet(encode_message("/play", "kick", 0.5, "id", "b"), b)
        gate.set()
        wire.wait(3)
        assert until(lambda: app.counts["sounds"] + app.counts["superseded"] >= 5)  # every request settled
        assert sorted(r[1][3] for r in wire.replies) == ["a2", "b", "first"]
        assert app.counts["superseded"] == 2 and app.counts["sounds"] == 3
    finally:
        app.close()
        svc.close()


def test_an_older_sound_never_follows_a_newer_one(engine, tmp_path):
    """A move whose sound is cached is answered at once, while an older move of the same client still renders:
    the older sound, done later, is not sent (it came after the newer one and left a patch on an old sound)."""
    gate, entered = threading.Event(), threading.Event()
    gate.set()
    svc = SoundService(Slow(engine, gate, entered))
    wire = Wire()
    app = OscApp(svc, SoundFolder(tmp_path / "s"), wire.send)
    try:
        me = ("127.0.0.1", 3)
        app.handle_packet(encode_message("/play", "kick", 0.3, "id", "cached"), me)
        wire.wait(1)  # rendered once: now in the cache
        gate.clear()
        entered.clear()
        app.handle_packet(encode_message("/play", "kick", 0.0, "id", "old"), me)
        assert entered.wait(10)  # rendering, held at the gate
        app.handle_packet(encode_message("/play", "kick", 0.3, "id", "new"), me)  # a cache hit: answered now
        assert wire.wait(2)[1][3] == "new"
        gate.set()
        assert until(lambda: app.counts["superseded"] >= 1)
        assert [r[1][3] for r in wire.replies] == ["cached", "new"] and app.counts["sounds"] == 2
    finally:
        gate.set()
        app.close()
        svc.close()


# ---------------------------------------------------------------- the sound folder


def test_sound_folder_is_bounded_and_recycles(tmp_path):
    x = np.zeros(1000, np.float32)
    folder = SoundFolder(tmp_path / "f", max_files=3)
    paths = [folder.write(x + k / 10, 22050) for k in range(5)]
    assert [p.exists() for p in paths] == [False, False, True, True, True]
    assert folder.write(x, 22050, key="a") == folder.write(x, 22050, key="a")  # same key: same file
    (tmp_path / "f" / "mine.txt").write_text("not ours")
    again = SoundFolder(tmp_path / "f", max_files=2)  # a new server takes over the files and the numbering
    assert again.stats()["files"] == 2 and (tmp_path / "f" / "mine.txt").exists()
    assert again.write(x, 22050).name == "nd_000007.wav"
    small = SoundFolder(tmp_path / "g", max_files=100, max_bytes=5000)  # ~2 KB per file
    for _ in range(6):
        small.write(x, 22050)
    assert small.stats()["bytes"] <= 5000 and small.stats()["files"] == 2
    with pytest.raises(ValueError, match="max_files"):
        SoundFolder(tmp_path / "h", max_files=0)


# ---------------------------------------------------------------- over UDP


def test_udp_round_trip(engine, tmp_path):
    """`start_osc` sharing a service (as the web server does): requests over a real socket, replies to the sender
    or to the /reply port. (How fast: docs/osc.md and the bench, not this test.)"""
    with SoundService(engine) as svc:
        server = start_osc(engine, service=svc, port=0, out=tmp_path / "out")
        try:
            c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            c.settimeout(10)
            c.bind(("127.0.0.1", 0))

            def rt(address, *args):
                c.sendto(encode_message(address, *args), server.address)
                m = OscMessage(c.recvfrom(65536)[0])
                return m.address, m.params

            assert rt("/ping", "hi") == ("/pong", ["hi"])
            files = set()
            for k in range(10):  # distinct sounds, each answered with its own file
                address, args = rt("/play", "hh_open", k / 10 - 0.5, 0.2)
                assert address == "/sound" and Path(args[0]).is_file()
                files.add(args[0])
            assert len(files) == 10
            c.sendto(b"#bundle\x00" + b"\x00" * 7, server.address)  # a truncated bundle
            assert OscMessage(c.recvfrom(65536)[0]).address == "/error"
            r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            r.bind(("127.0.0.1", 0))
            r.settimeout(10)
            c.sendto(encode_message("/reply", r.getsockname()[1]), server.address)
            assert OscMessage(r.recvfrom(65536)[0]).address == "/reply"  # the confirmation goes to the new port
            c.sendto(encode_message("/ping"), server.address)
            assert OscMessage(r.recvfrom(65536)[0]).address == "/pong"
        finally:
            server.stop()
        assert svc.alive()  # the web server's service is not closed by the OSC server


def test_osc_verb_starts_and_answers(bundle_dir, tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "neuraldrum", "osc", "--port", "0", "--model", str(bundle_dir),
                             "--out", str(tmp_path / "snd")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        line = proc.stdout.readline()
        m = re.search(r"udp://127\.0\.0\.1:(\d+)", line)
        assert m, line + proc.stderr.read() if proc.poll() is not None else line
        c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        c.settimeout(10)
        c.sendto(encode_message("/play", "kick"), ("127.0.0.1", int(m.group(1))))
        msg = OscMessage(c.recvfrom(65536)[0])
        assert msg.address == "/sound" and Path(msg.params[0]).parent == (tmp_path / "snd").resolve()
    finally:
        proc.terminate()
        proc.wait(10)


def test_port_in_use_is_a_clear_error(engine, tmp_path):
    with start_osc(engine, port=0, out=tmp_path / "a") as first:
        with pytest.raises(OSError, match=f"cannot listen for OSC on udp://127.0.0.1:{first.address[1]}"):
            start_osc(engine, port=first.address[1], out=tmp_path / "b")


def test_docs_list_every_address_and_key():
    doc = (ROOT / "docs" / "osc.md").read_text()
    for address in ADDRESSES:
        assert f"`{address}`" in doc, address
    for key in SOUND_KEYS:
        assert f"`{key}`" in doc, key


def test_quality_hifi_renders_with_the_hifi_engine_and_kits_save_in_hifi(engine, bundle_dir, tmp_path):
    """``quality hifi`` (on /play, /variations, /kit/slot) renders with the hi-fi engine, in a file of its own
    beside the live one; /kit/save writes the hi-fi renders; a server without hi-fi refuses the key, naming it,
    before it changes a slot."""
    from neuraldrum.engine import Engine

    hi = Engine(bundle_dir, warm=False, hifi=2)
    svc, hsvc, wire = SoundService(engine), SoundService(hi), Wire()
    a = OscApp(svc, SoundFolder(tmp_path / "sounds"), wire.send, hifi=hsvc)
    a.wire = wire
    try:
        _, (live_path, *_), _ = ask(a, "/play", "snare", 0.3, -0.2)
        _, (hifi_path, n, sr, tag), _ = ask(a, "/play", "snare", 0.3, -0.2, "quality", "hifi")
        assert hifi_path != live_path and tag == "play"
        v = Voice("snare", controls=Controls(x=0.3, y=-0.2))
        for path, eng in ((live_path, engine), (hifi_path, hi)):
            got = sf.read(path, dtype="float32")[0]
            assert np.abs(got - eng.render([v])[0]).max() < 1e-4, path
        assert np.abs(sf.read(live_path)[0] - sf.read(hifi_path)[0]).max() > 1e-3
        address, (folder,), _ = ask(a, "/kit/save", str(tmp_path / "saved"))
        assert address == "/kit/saved"
        kit = load_kit(folder)
        c0 = kit.slots[0]
        assert np.abs(sf.read(Path(folder) / f"{c0.name}.wav", dtype="float32")[0]
                      - hi.render([c0.voice])[0]).max() < 1e-4
        assert "quality 'best'" in ask(a, "/play", "kick", "quality", "best")[1][1]
    finally:
        a.close()
        svc.close()
        hsvc.close()
    wire2 = Wire()
    b = OscApp(SoundService(engine), SoundFolder(tmp_path / "sounds2"), wire2.send)
    b.wire = wire2
    try:
        before = list(b.kit.slots)
        address, args, _ = ask(b, "/kit/slot", "snare", 0.5, "quality", "hifi")
        assert address == "/error" and "quality hifi: this server renders live only" in args[1]
        assert b.kit.slots == before
    finally:
        b.close()
        b.service.close()
