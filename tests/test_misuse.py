"""Careless and hostile input found by trying to break neuraldrum: each case fails with one clear line (or is
refused) instead of a traceback, a half-written folder, or a file written where it should not be."""
import json
import os
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neuraldrum import cli
from neuraldrum.kit import Kit, load_kit, new_kit


@pytest.fixture
def kit_json(engine, tmp_path):
    """A valid kit.json's dict and where to write it."""
    return new_kit(engine, 0).to_dict(), tmp_path / "kit.json"


# ---------------------------------------------------------------- kit.json

@pytest.mark.parametrize("name", ["kick\n", "kick\nsample=../../etc/passwd", "a\r", "kick\n\n"])
def test_a_slot_name_with_a_line_break_is_refused(kit_json, name):
    d, path = kit_json
    d["slots"][0]["name"] = name
    path.write_text(json.dumps(d))
    with pytest.raises(ValueError, match=r"slots\[0\]\.name=.*use 1–64 letters"):
        load_kit(path)


def test_kit_from_with_a_line_break_in_a_name_writes_nothing(kit_json, bundle_dir, tmp_path, capsys):
    d, path = kit_json
    d["slots"][0]["name"] = "kick\n"
    path.write_text(json.dumps(d))
    out = tmp_path / "out"
    assert cli.main(["kit", "--from", str(path), "-o", str(out), "--model", str(bundle_dir),
                     "--format", "wav,sfz"]) == 1
    assert "name='kick\\n'" in capsys.readouterr().err
    assert not out.exists()


def test_a_deeply_nested_kit_is_one_line_naming_the_file(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match=f"^{path}: not a kit \\(JSON nested too deeply\\)$"):
        load_kit(path)


def test_a_seed_of_100000_digits_names_the_file(kit_json):
    d, path = kit_json
    text = json.dumps(d).replace('"seed": ', '"seed": ' + "9" * 100_000 + ", \"x\": ", 1)
    path.write_text(text)
    with pytest.raises(ValueError, match=f"^{path}: not a kit \\(a number too long to read\\)$"):
        load_kit(path)


def test_a_kit_of_more_slots_than_midi_notes_is_refused_before_rendering(kit_json, engine):
    d, path = kit_json
    one = d["slots"][0]
    d["slots"] = [{**one, "name": f"s{k}"} for k in range(2000)]
    path.write_text(json.dumps(d))
    with pytest.raises(ValueError, match=f"^{path}: 2000 slots; a kit holds at most 128 "):
        load_kit(path)
    d["slots"] = d["slots"][:128]
    path.write_text(json.dumps(d))
    assert len(load_kit(path).slots) == 128  # the cap itself is a kit
    with pytest.raises(ValueError, match="^256 slots; a kit holds at most 128"):
        Kit(load_kit(path).slots * 2).validate()


# ---------------------------------------------------------------- the Python API

def test_encode_refuses_a_long_integer_array_before_converting_it(engine):
    x = np.broadcast_to(np.int16(1000), (10_000_000,))  # 20 MB as int16 would be 80 MB as float64
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="the engine takes at most 60 s"):
            engine.encode(x, sample_rate=1000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000, peak
    stereo = np.broadcast_to(np.int16(1000), (2, 10_000_000))
    with pytest.raises(ValueError, match="the engine takes at most 60 s"):
        engine.encode(stereo, sample_rate=1000)


def test_anti_phase_stereo_says_the_channels_cancel(engine):
    t = np.arange(engine.sample_rate // 2) / engine.sample_rate
    left = (np.sin(2 * np.pi * 200 * t) * np.exp(-t * 8)).astype(np.float32)
    for x in (np.stack([left, -left]), np.stack([left, -left], axis=1)):
        with pytest.raises(ValueError, match="channels cancel when mixed to mono"):
            engine.encode(x)
    engine.encode(np.stack([left, left]))  # in phase: fine


@pytest.mark.parametrize("seed", [-1, 1.5, True, "3"])
def test_generate_names_a_bad_seed(engine, seed):
    with pytest.raises(ValueError, match=f"^seed={seed!r} must be a whole number ≥ 0"):
        engine.generate(engine.classes[0], seed=seed)


# ---------------------------------------------------------------- the verbs

def test_kit_on_a_full_disk_is_one_line_and_leaves_nothing(bundle_dir, tmp_path):
    """A real write error from the kernel (a file-size limit: EFBIG, as a full disk gives ENOSPC) under libsndfile,
    in a child process so the limit binds it alone."""
    import resource
    import signal
    import subprocess
    import sys

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails instead of killing the process
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    out = tmp_path / "kit"
    p = subprocess.run([sys.executable, "-m", "neuraldrum", "kit", "-o", str(out), "--model", str(bundle_dir)],
                       capture_output=True, text=True, preexec_fn=limit,
                       env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}, timeout=300)
    assert p.returncode == 1, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"neuraldrum: error: {out}/") \
        and lines[0].endswith(".wav: File too large"), p.stderr
    assert os.listdir(tmp_path) == []  # no kit, no temp folder


def test_kit_o_a_link_keeps_the_link_and_leaves_no_debris(bundle_dir, tmp_path, capsys):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "mine").symlink_to(real)
    for _ in range(2):  # into the empty folder, then over the kit it made
        assert cli.main(["kit", "-o", str(tmp_path / "mine"), "--model", str(bundle_dir)]) == 0, capsys.readouterr()
        assert os.path.islink(tmp_path / "mine") and os.readlink(tmp_path / "mine") == str(real)
        assert sorted(os.listdir(tmp_path)) == ["mine", "real"]
        assert (real / "kit.json").is_file() and load_kit(tmp_path / "mine").slots


def _header(tracks: int) -> bytes:
    import struct

    return b"MThd" + struct.pack(">IHHH", 6, 1, tracks, 480)


@pytest.mark.parametrize("body,why", [
    (_header(0) + np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8).tobytes(),
     "not a playable MIDI file (its header promises no tracks)"),
    (_header(1) + b"MTrk" + (4).to_bytes(4, "big") + b"\x00\xff\x2f\x00", "no notes on any channel; nothing to render"),
    (_header(1) + np.random.default_rng(1).integers(0, 256, 2000, dtype=np.uint8).tobytes(),
     "not a readable MIDI file")])
def test_render_refuses_a_midi_file_with_nothing_to_play(bundle_dir, tmp_path, capsys, body, why):
    mid = tmp_path / "song.mid"
    mid.write_bytes(body)
    out = tmp_path / "song.wav"
    assert cli.main(["render", str(mid), "-o", str(out), "--model", str(bundle_dir)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"neuraldrum: error: {mid}: {why}") and err.count("\n") == 1, err
    assert not out.exists()


def test_the_web_kit_zip_refuses_a_line_break_in_a_slot_name(engine):
    from fastapi.testclient import TestClient

    from neuraldrum.web.app import create_app

    kit = new_kit(engine, 0).to_dict()
    kit["slots"][0]["name"] = "kick\n"
    with TestClient(create_app(engine)) as c:
        r = c.post("/api/kit/zip", json=kit)
    assert r.status_code == 422 and "use 1–64 letters" in r.json()["error"], r.text


@settings(max_examples=300, deadline=None, database=None)
@given(st.one_of(st.text(max_size=70),  # and names that are nearly right, ending in a control or space character
                 st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,8}[\n\r\t\x00 /]{1,2}", fullmatch=True)))
def test_every_slot_name_accepted_is_safe_in_a_file_name_and_a_line(name):
    try:
        Kit.from_dict({"format": "neuraldrum-kit", "version": 1, "slots": [
            {"name": name, "voice": {"class": "kick", "seed": 1}}]})
    except ValueError:
        return
    assert 1 <= len(name) <= 64 and name == os.path.basename(name) and name not in (".", "..")
    assert all(ch.isascii() and (ch.isalnum() or ch in "_-.") for ch in name), repr(name)
