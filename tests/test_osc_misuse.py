"""OSC cases found by trying to break the server: the default sounds folder is really private (made by the CLI
too, never a planted link), a message cut short is refused, and --save-root keeps the file commands in a folder."""
import os
import re
import socket
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pythonosc.osc_message import OscMessage

from helpers_osc import Wire
from neuraldrum.audio.io import save_wav
from neuraldrum.control.osc_server import OscApp, encode_message, start_osc
from neuraldrum.control.soundfolder import SoundFolder
from neuraldrum.service import SoundService

ME = ("127.0.0.1", 50000)


def start_cli(bundle_dir, env, *extra):
    return subprocess.Popen([sys.executable, "-m", "neuraldrum", "osc", "--port", "0", "--model", str(bundle_dir),
                             *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


@pytest.fixture
def tmp_env(tmp_path):
    t = tmp_path / "tmp"
    t.mkdir()
    return t, {**os.environ, "TMPDIR": str(t)}


def test_the_cli_makes_the_default_folder_private(bundle_dir, tmp_env):
    t, env = tmp_env
    proc = start_cli(bundle_dir, env)
    try:
        line = proc.stdout.readline()
        assert "udp://" in line, line + (proc.stderr.read() if proc.poll() is not None else "")
        folder = t / f"neuraldrum-osc-{os.getuid()}-0"
        assert folder.is_dir() and stat.S_IMODE(folder.lstat().st_mode) == 0o700
    finally:
        proc.terminate()
        proc.wait(10)


def test_the_cli_refuses_a_planted_link_and_writes_nothing_there(bundle_dir, tmp_env, tmp_path):
    t, env = tmp_env
    elsewhere = tmp_path / "somewhere"
    elsewhere.mkdir()
    (elsewhere / "nd_000001.wav").write_bytes(b"a file of the user's")
    (t / f"neuraldrum-osc-{os.getuid()}-0").symlink_to(elsewhere)
    proc = start_cli(bundle_dir, env)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, out + err
    assert err.strip().splitlines() == [f"neuraldrum: error: {t}/neuraldrum-osc-{os.getuid()}-0: exists but is "
                                        "not a private folder of this user (a link, another user's, or writable by "
                                        "others); pass --out FOLDER"]
    assert sorted(p.name for p in elsewhere.iterdir()) == ["nd_000001.wav"]
    assert (elsewhere / "nd_000001.wav").read_bytes() == b"a file of the user's"


# ---------------------------------------------------------------- messages cut short

@pytest.fixture
def app(engine, tmp_path):
    svc = SoundService(engine)
    wire = Wire()
    a = OscApp(svc, SoundFolder(tmp_path / "sounds"), wire.send, save_root=tmp_path / "root")
    (tmp_path / "root").mkdir()
    a.wire = wire
    yield a
    a.close()
    svc.close()


def send(app, data):
    n = app.wire.count() + 1
    app.handle_packet(data, ME)
    return app.wire.wait(n)[:2]


@pytest.mark.parametrize("cut", [1, 2, 3, 4])
def test_a_message_cut_short_is_refused(app, cut):
    whole = encode_message("/play", "kick", 0.1)
    address, args = send(app, whole[:-cut])
    assert address == "/error" and args[0] == "" and "malformed OSC packet" in args[1], args
    assert send(app, whole)[0] == "/sound"  # the whole message still plays


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(st.integers(-2 ** 31, 2 ** 31 - 1), st.floats(width=32, allow_nan=False, allow_infinity=False),
                          st.text(alphabet="abcxyz ./", min_size=1, max_size=12)), min_size=1, max_size=6),
       st.integers(1, 3))
def test_any_message_missing_bytes_of_its_last_argument_is_refused(app, args, cut):
    whole = encode_message("/ping", *args)
    assert send(app, whole) == ("/pong", [a if not isinstance(a, float) else np.float32(a) for a in args])
    address, reply = send(app, whole[:-cut])
    assert address == "/error" and "malformed OSC packet" in reply[1]


# ---------------------------------------------------------------- --save-root

def test_save_root_confines_the_file_commands(app, engine, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    t = np.arange(engine.sample_rate // 4) / engine.sample_rate
    wav = save_wav(outside / "hit.wav", np.sin(2 * np.pi * 150 * t) * np.exp(-t * 20), engine.sample_rate)
    (tmp_path / "root" / "link").symlink_to(outside)  # a link inside that leads out is outside too
    for address, path in [("/kit/save", outside / "kit"), ("/kit/save", tmp_path / "root" / "link" / "kit"),
                          ("/kit/save", tmp_path / "root" / ".." / "kit"), ("/encode", wav),
                          ("/kit/load", outside)]:
        reply = send(app, encode_message(address, str(path)))
        assert reply[0] == "/error" and "is outside the folder this server may use" in reply[1][1], reply
    assert sorted(p.name for p in outside.iterdir()) == ["hit.wav"] and not (tmp_path / "kit").exists()
    inside = tmp_path / "root" / "kit"
    assert send(app, encode_message("/kit/save", str(inside))) == ("/kit/saved", [str(inside)])
    assert send(app, encode_message("/kit/load", str(inside))) == ("/kit", [app.kit.name, *[s.name for s in app.kit.slots]])


def test_an_open_host_confines_to_the_sounds_folder_by_default(engine, tmp_path):
    with start_osc(engine, host="0.0.0.0", port=0, out=tmp_path / "snd", thread=False) as server:
        assert server.app.save_root == (tmp_path / "snd").resolve()
    with start_osc(engine, port=0, out=tmp_path / "snd2", thread=False) as server:
        assert server.app.save_root is None  # this machine only: any path, as documented
    with pytest.raises(NotADirectoryError, match="--save-root .*: not a folder"):
        start_osc(engine, port=0, out=tmp_path / "snd3", save_root=tmp_path / "nope", thread=False)


def test_the_cli_takes_save_root(bundle_dir, tmp_env, tmp_path):
    _, env = tmp_env
    root = tmp_path / "kits"
    root.mkdir()
    proc = start_cli(bundle_dir, env, "--out", str(tmp_path / "snd"), "--save-root", str(root))
    try:
        line = proc.stdout.readline()
        port = int(re.search(r"udp://127\.0\.0\.1:(\d+)", line).group(1))
        c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        c.settimeout(30)
        c.sendto(encode_message("/kit/save", str(tmp_path / "k")), ("127.0.0.1", port))
        m = OscMessage(c.recvfrom(65536)[0])
        assert m.address == "/error" and "outside the folder" in m.params[1]
        c.sendto(encode_message("/kit/save", str(root / "k")), ("127.0.0.1", port))
        m = OscMessage(c.recvfrom(65536)[0])
        assert (m.address, m.params) == ("/kit/saved", [str(root / "k")]) and (root / "k" / "kit.json").is_file()
    finally:
        proc.terminate()
        proc.wait(10)
    assert not (tmp_path / "k").exists() and Path(root / "k").is_dir()
