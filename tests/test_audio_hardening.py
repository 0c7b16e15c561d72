"""Issue #15 items 4 and 7: the audio loader's memory follows the audio, not a header or a channel count; odd
files and folders get messages that say what is wrong; and hypothesis throws damaged files at the loader."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from neuraldrum.audio import io
from neuraldrum.audio.io import AudioError
from neuraldrum.data.build import build_corpus
from neuraldrum.data.sources import folder_samples
from neuraldrum.data.synth import synth

hyp = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

SR = 22050
FUZZ = settings(max_examples=80, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _hit(n: int = SR, f: float = 200.0, sr: int = SR) -> np.ndarray:
    t = np.arange(n) / sr
    return (0.5 * np.sin(2 * np.pi * f * t) * np.exp(-8 * t)).astype(np.float32)


def lying_flac(path: Path, channels: int, sr: int, seconds_claimed: float, frames: int) -> Path:
    """A FLAC of ``frames`` real frames whose STREAMINFO claims ``seconds_claimed`` (libsndfile believes it)."""
    x = _hit(frames, 300.0, sr)[:, None] * np.ones(channels, np.float32)
    sf.write(str(path), x, sr, format="FLAC")
    b = bytearray(path.read_bytes())
    total = int.from_bytes(b[18:26], "big")  # STREAMINFO: the low 36 bits of these 8 bytes are the frame count
    b[18:26] = ((total & ~((1 << 36) - 1)) | int(seconds_claimed * sr)).to_bytes(8, "big")
    path.write_bytes(bytes(b))
    return path


def _run(code: str, as_nobody: bool = False) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (as the user nobody when asked and we are root: root reads
    everything, so permission errors need another user)."""
    prefix = []
    if as_nobody and os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv: cannot make a permission error")
        prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    return subprocess.run(prefix + [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          cwd="/")


@pytest.fixture
def shared_dir():
    """A temp folder that another user can read (pytest's tmp_path is private to its owner)."""
    d = Path(tempfile.mkdtemp(prefix="nd-harden-"))
    d.chmod(0o755)
    yield d
    for root, dirs, _ in os.walk(d):
        for x in dirs:
            os.chmod(os.path.join(root, x), 0o755)
    shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------- item 4: memory and rates

def test_many_channels_cost_their_mono_length(tmp_path):
    """256 channels × 1 s at 96 kHz: 98 MB as a float32 (frames, channels) array; decoded in blocks and mixed
    at once, it costs a few MB. Measured in a subprocess, with a wide margin."""
    path = tmp_path / "wide.wav"
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal((96000, 256)) * np.exp(-np.arange(96000) / 20000)[:, None]).astype(np.float32)
    sf.write(str(path), x, 96000, subtype="PCM_16")
    del x
    sf.write(str(tmp_path / "small.wav"), _hit(), SR)
    r = _run(f"""
        import resource
        from neuraldrum.audio.io import load
        load({str(tmp_path / 'small.wav')!r})  # imports, soxr and libsndfile warm
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        y = load({str(path)!r}, 22050)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print((after - before) // 1024, y.size)
    """)
    assert r.returncode == 0, r.stderr
    extra_mb, n = map(int, r.stdout.split())
    assert n == 22050 and extra_mb < 40, (extra_mb, n)


def test_a_header_that_promises_more_gives_what_decodes(tmp_path):
    """5 kB of FLAC whose header claims 59 s of 8 channels at 192 kHz: the 2000 real frames load."""
    path = lying_flac(tmp_path / "liar.flac", 8, 192000, 59.0, 2000)
    assert sf.info(str(path)).frames == 59 * 192000 and path.stat().st_size < 8000
    y = io.load(path, SR)
    assert y.dtype == np.float32 and abs(y.size - round(2000 * SR / 192000)) <= 2
    with pytest.raises(AudioError, match=r"too long \(61\.0 s"):  # the header still counts for the cap
        io.load(lying_flac(tmp_path / "long.flac", 2, 192000, 61.0, 2000), SR)


def test_without_soundfiles_private_reader_the_public_read_is_used(tmp_path, monkeypatch):
    """If a soundfile release drops its private reader, files still load the same through ``SoundFile.read``;
    a lying header then either keeps its whole blocks or is refused as unreadable, never a traceback."""
    x = np.stack([_hit(), -0.5 * _hit()], axis=1)
    sf.write(str(tmp_path / "st.wav"), x, 44100, subtype="FLOAT")
    want = io.load(tmp_path / "st.wav", SR)
    monkeypatch.setattr(io, "PRIVATE_READ", False)
    np.testing.assert_array_equal(io.load(tmp_path / "st.wav", SR), want)
    try:
        y = io.load(lying_flac(tmp_path / "liar.flac", 8, 192000, 59.0, 2000), SR)
        assert y.dtype == np.float32 and np.all(np.isfinite(y))
    except AudioError as e:
        assert "unreadable" in str(e) and "liar.flac" in str(e)


@pytest.mark.parametrize("rate", [1, 999, 800000])
def test_absurd_rates_are_refused(tmp_path, rate):
    path = tmp_path / f"r{rate}.wav"
    sf.write(str(path), _hit(50), rate)
    with pytest.raises(AudioError, match=rf"sample rate {rate} Hz is outside 1000–768000 Hz") as e:
        io.load(path, SR)
    assert str(path) in str(e.value)
    with pytest.raises(ValueError, match="sample_rate=1 must be"):
        io.load(tmp_path / "r1.wav" if rate == 1 else path, sample_rate=1)


def test_rates_at_the_limits_load(tmp_path):
    for rate in (1000, 768000):
        sf.write(str(tmp_path / "x.wav"), _hit(rate // 4, 100.0, rate), rate)
        assert abs(io.load(tmp_path / "x.wav", SR).size - SR // 4) <= 2


# ---------------------------------------------------------------- item 7: messages that say what is wrong

def test_anti_phase_stereo_says_the_channels_cancel(tmp_path):
    x = _hit()
    sf.write(str(tmp_path / "anti.wav"), np.stack([x, -x], 1), SR)
    with pytest.raises(AudioError, match="channels cancel when mixed to mono") as e:
        io.load(tmp_path / "anti.wav")
    assert "silent" not in str(e.value)
    sf.write(str(tmp_path / "one.wav"), np.stack([x, np.zeros_like(x)], 1), SR)  # one quiet channel: fine
    assert abs(float(np.abs(io.load(tmp_path / "one.wav")).max()) - 0.25) < 0.01
    sf.write(str(tmp_path / "quiet.wav"), np.zeros((SR, 2), np.float32), SR)  # truly silent: still "silent"
    with pytest.raises(AudioError, match="silent"):
        io.load(tmp_path / "quiet.wav")


def test_a_folder_is_not_a_missing_file(tmp_path):
    (tmp_path / "kick.wav").mkdir()
    with pytest.raises(AudioError, match="a folder, not an audio file"):
        io.load(tmp_path / "kick.wav")
    with pytest.raises(AudioError, match="no such file"):
        io.load(tmp_path / "nothing.wav")
    os.mkfifo(tmp_path / "pipe.wav")  # and a FIFO neither hangs nor reads as "no such file"
    with pytest.raises(AudioError, match="not a regular file"):
        io.load(tmp_path / "pipe.wav")


def test_permission_denied_says_so(shared_dir):
    path = shared_dir / "locked.wav"
    sf.write(str(path), _hit(), SR)
    path.chmod(0)
    r = _run(f"""
        from neuraldrum.audio.io import load, AudioError
        try:
            load({str(path)!r})
        except AudioError as e:
            print(e)
    """, as_nobody=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"{path}: permission denied"


def test_names_that_are_not_utf8_load_and_build(tmp_path):
    folder = tmp_path / "kicks"
    folder.mkdir()
    raw = os.fsencode(folder) + b"/kick_\xff\xfe.wav"
    with open(raw, "wb") as f:
        sf.write(f, _hit(f=60.0), SR, format="WAV")
    assert io.load(raw).size == SR and io.load(os.fsdecode(raw)).size == SR  # bytes and surrogate-escaped str
    sf.write(str(folder / "kick_b.wav"), 0.5 * synth("kick", rng=np.random.default_rng(1)), SR)
    info = build_corpus(tmp_path / "c", sources=(), folders=[folder], progress=False, near_threshold=1.01)
    assert info["n_clips"] == 2 and info["exclusions"] == []
    text = (tmp_path / "c" / "manifest.jsonl").read_bytes().decode("utf-8")  # strict UTF-8: no surrogates
    paths = sorted(json.loads(line)["path"] for line in text.splitlines())
    assert paths == [str(folder / "kick_\\xff\\xfe.wav"), str(folder / "kick_b.wav")]
    json.loads((tmp_path / "c" / "build.json").read_bytes().decode("utf-8"))


def test_linked_and_looping_folders(tmp_path):
    root, elsewhere = tmp_path / "tree", tmp_path / "elsewhere"
    (root / "kick").mkdir(parents=True)
    (elsewhere / "snare").mkdir(parents=True)
    sf.write(str(root / "kick" / "kick_a.wav"), _hit(f=60.0), SR)
    sf.write(str(elsewhere / "snare" / "snare_a.wav"), _hit(f=250.0), SR)
    (root / "linked").symlink_to(elsewhere)
    (root / "kick" / "loop").symlink_to(root)  # a link to a parent: listed once, then refused with a reason
    got = {Path(c.path).relative_to(root).as_posix(): c for c in folder_samples(root)}
    assert set(got) == {"kick/kick_a.wav", "linked/snare/snare_a.wav", "kick/loop"}
    assert got["linked/snare/snare_a.wav"].label == "snare"
    assert got["kick/loop"].label is None and got["kick/loop"].rule.startswith("linked folder listed already")


def test_unreadable_subfolder_is_an_exclusion_and_a_warning(shared_dir):
    root = shared_dir / "tree"
    (root / "kick").mkdir(parents=True)
    (root / "locked" / "snare").mkdir(parents=True)
    sf.write(str(root / "kick" / "kick_a.wav"), 0.5 * synth("kick", rng=np.random.default_rng(0)), SR)
    sf.write(str(root / "locked" / "snare" / "snare_a.wav"), 0.5 * synth("snare", rng=np.random.default_rng(1)), SR)
    (root / "locked").chmod(0)
    out = shared_dir / "out"
    out.mkdir()
    out.chmod(0o777)
    r = _run(f"""
        import argparse, json
        from neuraldrum.data import commands  # `neuraldrum data build`, without the whole CLI's imports
        parser = argparse.ArgumentParser()
        commands.register(parser.add_subparsers())
        args = parser.parse_args(["data", "build", "--out", {str(out / 'c')!r}, "--folder", {str(root)!r},
                                  "--sources", "none", "--no-progress"])
        assert args.func(args) == 0
        print(json.dumps(json.load(open({str(out / 'c' / 'build.json')!r}))["exclusions"]))
    """, as_nobody=True)
    assert r.returncode == 0, r.stderr
    assert f"warning: {root / 'locked'}: unreadable folder (Permission denied)" in r.stderr
    (excl,) = json.loads(r.stdout.strip().splitlines()[-1])
    assert (excl["path"], excl["reason"]) == (str(root / "locked"), "unreadable folder")


def test_unreadable_hydrogen_kit_folder_is_reported(shared_dir):
    kits = shared_dir / "kits"
    (kits / "Locked").mkdir(parents=True)
    (kits / "Locked" / "drumkit.xml").write_text("<drumkit_info><name>Locked</name></drumkit_info>")
    (kits / "Locked").chmod(0)
    r = _run(f"""
        from neuraldrum.data.sources import hydrogen_kits
        print([(c.kit, c.label, c.rule) for c in hydrogen_kits([{str(kits)!r}])])
    """, as_nobody=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[('Locked', None, 'unreadable folder (Permission denied)')]"


def test_folder_option_that_is_a_file(tmp_path):
    sf.write(str(tmp_path / "x.wav"), _hit(), SR)
    with pytest.raises(FileNotFoundError, match="a file, not a folder"):
        build_corpus(tmp_path / "c", sources=(), folders=[tmp_path / "x.wav"], progress=False)


# ---------------------------------------------------------------- properties of the loader

def _seeds() -> dict[str, bytes]:
    """Small valid files in the formats the loader reads, to truncate and mutate."""
    import io as _io

    x = _hit(2000)
    out = {}
    for name, fmt, sub, data in [("wav", "WAV", "PCM_16", np.stack([x, 0.5 * x], 1)), ("f32.wav", "WAV", "FLOAT", x),
                                 ("flac", "FLAC", "PCM_16", x), ("aiff", "AIFF", "PCM_24", x),
                                 ("ogg", "OGG", "VORBIS", x), ("6ch.wav", "WAV", "PCM_U8", np.tile(x[:, None], 6))]:
        b = _io.BytesIO()
        sf.write(b, data, SR, format=fmt, subtype=sub)
        out[name] = b.getvalue()
    return out


SEEDS = _seeds()
MAX_SECONDS = 2.0


def _check_load(path: Path) -> None:
    """The property: a finite mono float32 array no longer than ``MAX_SECONDS`` (plus resampling's rounding), or
    an AudioError naming the file; nothing else."""
    try:
        y = io.load(path, SR, MAX_SECONDS)
    except AudioError as e:
        assert str(path) in str(e) and e.reason
        return
    assert isinstance(y, np.ndarray) and y.dtype == np.float32 and y.ndim == 1
    assert 0 < y.size <= MAX_SECONDS * SR + 64 and np.all(np.isfinite(y))


@FUZZ
@given(data=st.binary(max_size=4096))
def test_any_bytes_load_or_raise_audio_error(tmp_path, data):
    path = tmp_path / "any.wav"
    path.write_bytes(data)
    _check_load(path)


@FUZZ
@given(name=st.sampled_from(sorted(SEEDS)), cut=st.integers(0, 100_000),
       flips=st.lists(st.tuples(st.integers(0, 100_000), st.integers(0, 255)), max_size=6),
       header=st.booleans())
def test_damaged_files_load_or_raise_audio_error(tmp_path, name, cut, flips, header):
    b = bytearray(SEEDS[name])
    for pos, value in flips:  # a header flip (the first 64 bytes) half the time: rates, channels, lengths
        b[pos % (64 if header else len(b))] = value
    path = tmp_path / f"x.{name}"
    path.write_bytes(bytes(b[: cut % (len(b) + 1)]))
    _check_load(path)
