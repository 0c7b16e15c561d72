"""The OSC server never dies on bad input: hypothesis throws raw bytes, wrong types, wrong arity, huge blobs and
strings, and unknown addresses at the handler. Every message that cannot be carried out gets an ``/error``
reply naming its address at once, and the server still answers afterwards."""
import os

import pytest

hyp = pytest.importorskip("hypothesis")
pytest.importorskip("pythonosc")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from pythonosc.osc_message import OscMessage  # noqa: E402
from pythonosc.osc_message_builder import OscMessageBuilder  # noqa: E402

from helpers_bundle import random_bundle  # noqa: E402
from helpers_osc import Wire  # noqa: E402
from neuraldrum.control.osc import ADDRESSES, OscError, parse  # noqa: E402
from neuraldrum.control.osc_server import OscApp  # noqa: E402
from neuraldrum.control.soundfolder import SoundFolder  # noqa: E402
from neuraldrum.engine import Engine  # noqa: E402
from neuraldrum.service import SoundService  # noqa: E402

FUZZ = settings(max_examples=150, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
KEYS = ["range", "seed", "temperature", "source", "amount", "variation", "tune", "decay", "velocity", "length", "id",
        "n", "class", "colour"]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    cwd = os.getcwd()
    os.chdir(root)  # nothing the fuzzer names can land in the repository
    engine = Engine(random_bundle(root / "bundle"), warm=False)
    svc = SoundService(engine, max_queue=8)
    wire = Wire()
    a = OscApp(svc, SoundFolder(root / "sounds", max_files=20), wire.send)
    a.wire = wire
    yield a
    a.close()
    svc.close()
    os.chdir(cwd)


SENDER = ("127.0.0.1", 40000)
# OSC strings end at a NUL and are UTF-8 (no lone surrogates)
text = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)
scalars = st.one_of(
    st.integers(-2 ** 31, 2 ** 31 - 1), st.floats(width=32), text,
    st.sampled_from(KEYS + ["kick", "snare", "hh_open", "nope", "wav,sfz", "/tmp", ""]),
    st.booleans(), st.binary(min_size=1, max_size=64), st.none())
huge = st.one_of(st.binary(min_size=1000, max_size=20000), st.text(alphabet="abc/ ", min_size=1025, max_size=3000))
args = st.lists(st.one_of(scalars, scalars, scalars, huge), max_size=12)
# /kit/save writes a folder wherever it is told: it is tested with chosen paths (test_osc.py), not fuzzed
addresses = st.one_of(st.sampled_from(sorted(set(ADDRESSES) - {"/kit/save"})),
                      st.sampled_from(["/", "/play/x", "/PLAY", "/kit/"]),
                      st.text(alphabet="/abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=20).map(lambda s: "/" + s)
                      ).filter(lambda a: a != "/kit/save")


def build(address, values):
    b = OscMessageBuilder(address)
    for v in values:
        if v is None:
            b.add_arg(None, "N")
        elif isinstance(v, bool):
            b.add_arg(v)
        elif isinstance(v, bytes):
            b.add_arg(v, "b")
        elif isinstance(v, float):
            b.add_arg(v, "f")
        else:
            b.add_arg(v)
    return b.build().dgram


def refused(address, values, classes):
    try:
        parse(address, values, classes)
    except OscError:
        return True
    return False


@FUZZ
@given(address=addresses, values=args)
def test_any_message_is_carried_out_or_refused_with_an_error(app, address, values):
    n = app.wire.count()
    dgram = build(address, values)
    if len(dgram) > 65000:
        return  # no UDP datagram is that large
    decoded = OscMessage(dgram)
    app.handle_packet(dgram, SENDER)
    if refused(decoded.address, list(decoded.params), app.engine.classes):  # answered at once, not later
        assert any(r[0] == "/error" and r[1][0] == decoded.address and r[1][1] for r in app.wire.since(n))
    assert not [r for r in app.wire.since(n) if r[0] == "/error" and "internal error" in r[1][1]]


near_valid = st.tuples(
    st.sampled_from(["/play", "/variations", "/kit/slot"]),
    st.one_of(st.sampled_from(["kick", "snare", "hh_open", "ride", "bongo"]), st.integers(-1, 12), st.integers(35, 82)),
    st.lists(st.floats(-1.25, 1.25, width=32), max_size=3),
    st.lists(st.tuples(st.sampled_from(KEYS), st.one_of(st.floats(-20, 2000, width=32), st.integers(-5, 200),
                                                         st.sampled_from(["s1", "x", "snare"]))), max_size=4))


@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(msg=near_valid)
def test_nearly_valid_sound_requests(app, msg):
    """Messages that parse or nearly parse reach voice building and the renderer: still no internal errors."""
    address, target, pad, pairs = msg
    n = app.wire.count()
    values = [target, *pad] + [x for kv in pairs for x in kv]
    app.handle_packet(build(address, values), SENDER)
    assert not [r for r in app.wire.since(n) if r[0] == "/error" and "internal error" in r[1][1]]


@FUZZ
@given(data=st.one_of(st.binary(max_size=300), st.binary(max_size=20).map(lambda b: b"#bundle\x00" + b),
                      st.binary(max_size=40).map(lambda b: b"/play\x00\x00\x00," + b)))
def test_raw_bytes_never_crash_the_handler(app, data):
    app.handle_packet(data, SENDER)


def test_still_answering_after_the_fuzz(app):
    n = app.wire.count()
    app.handle_packet(build("/ping", ["ok"]), SENDER)
    assert ("/pong", ["ok"]) in app.wire.since(n)
    assert app.service.alive()
    errors = [r for r in app.wire.since(0) if r[0] == "/error"]
    assert errors and not [r for r in errors if "internal error" in r[1][1]]
    print(f"{app.counts['messages']} fuzzed messages: {len(errors)} /error replies, {app.counts['sounds']} sounds")
