import numpy as np
import pytest
import soundfile as sf

from neuraldrum.audio import io
from neuraldrum.audio.io import AudioError
from neuraldrum.data.synth import synth


def _write(path, x, sr, subtype="PCM_16", fmt=None):
    sf.write(str(path), x, sr, subtype=subtype, format=fmt)
    return path


@pytest.mark.parametrize("ext,fmt,subtype", [
    ("wav", "WAV", "PCM_16"), ("wav", "WAV", "PCM_24"), ("wav", "WAV", "FLOAT"),
    ("flac", "FLAC", "PCM_16"), ("ogg", "OGG", "VORBIS"), ("aiff", "AIFF", "PCM_16"),
])
def test_load_formats_rates_channels(tmp_path, ext, fmt, subtype):
    sr = 44100
    t = np.arange(sr // 2) / sr
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    stereo = np.stack([tone, tone], axis=1)
    p = _write(tmp_path / f"x.{ext}", stereo, sr, subtype, fmt)
    y = io.load(p, sample_rate=22050)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(y.size - sr // 4) <= 2  # resampled by half
    assert abs(np.max(np.abs(y)) - 0.5) < 0.02  # mono = mean of the channels keeps the level
    # the pitch survives resampling: the spectral peak is still at 440 Hz
    spec = np.abs(np.fft.rfft(y * np.hanning(y.size)))
    f = np.argmax(spec) * 22050 / y.size
    assert abs(f - 440) < 5


def test_bad_inputs_name_the_file(tmp_path):
    sr = 22050
    empty = _write(tmp_path / "empty.wav", np.zeros(0), sr)
    silent = _write(tmp_path / "silent.wav", np.zeros(sr), sr)
    nan = _write(tmp_path / "nan.wav", np.full(100, np.nan, dtype=np.float32), sr, "FLOAT")
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF not really a wav file")
    long = _write(tmp_path / "long.wav", np.ones(sr * 3, dtype=np.float32) * 0.1, sr)
    for p, reason in [(empty, "empty"), (silent, "silent"), (nan, "NaN"), (junk, "unreadable"),
                      (tmp_path / "missing.wav", "no such file")]:
        with pytest.raises(AudioError) as e:
            io.load(p)
        assert str(p) in str(e.value) and reason in str(e.value)
    with pytest.raises(AudioError, match="too long"):
        io.load(long, max_seconds=2.0)


def test_onset_alignment_and_fit_length():
    x = np.zeros(5000, dtype=np.float32)
    hit = synth("rim", seed=0)
    x = np.concatenate([x, hit])
    y = io.align_onset(x, pre_samples=16)
    assert io.onset_index(y, pre_samples=0) <= 16
    # padding keeps the samples and adds zeros
    z = io.fit_length(hit, 4000)
    assert z.size == 4000 and np.all(z[hit.size:] == 0) and np.allclose(z[: hit.size], hit)
    # cutting fades out to exactly zero at the end
    long = np.ones(30000, dtype=np.float32)
    c = io.fit_length(long, 22016, 22050, fade_ms=10)
    assert c.size == 22016 and c[-1] == pytest.approx(0.0, abs=1e-6) and c[0] == 1.0
    assert np.all(np.diff(c[-220:]) <= 1e-7)  # monotone fade


def test_prepare_clip_normalises_and_keeps_peak():
    x = 0.25 * synth("kick", seed=3)
    clip, peak = io.prepare_clip(np.concatenate([np.zeros(1000, np.float32), x]), 22016, 22050)
    assert clip.shape == (22016,)
    assert peak == pytest.approx(0.25, rel=1e-5)
    assert np.max(np.abs(clip)) == pytest.approx(1.0, rel=1e-6)
    assert np.max(np.abs(clip[:64])) > 0.05  # the onset is at the start


@pytest.mark.parametrize("subtype,tol", [("16", 1 / 32768 * 1.01), ("24", 1 / 2 ** 23 * 1.01), ("float", 1e-7)])
def test_save_wav_roundtrip_and_atomic(tmp_path, subtype, tol):
    x = 0.9 * synth("snare", seed=1)
    p = io.save_wav(tmp_path / "sub" / "s.wav", x, 22050, subtype)
    y, sr = sf.read(str(p), dtype="float32")
    assert sr == 22050 and np.max(np.abs(y - x)) <= tol
    assert [f.name for f in p.parent.iterdir()] == ["s.wav"]  # no temp file left behind
    with pytest.raises(AudioError):
        io.save_wav(tmp_path / "bad.wav", np.array([np.inf], np.float32), 22050)
    assert not (tmp_path / "bad.wav").exists()


def test_atomic_writes_leave_no_temp_file_and_a_normal_mode(tmp_path):
    import os

    from neuraldrum.audio.io import atomic_path, atomic_write_text

    p = atomic_write_text(tmp_path / "a.json", "{}")
    umask = os.umask(0)
    os.umask(umask)
    assert (p.stat().st_mode & 0o777) == 0o666 & ~umask
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "b.txt") as tmp:
            open(tmp, "w").write("half")
            raise RuntimeError("interrupted")
    assert sorted(f.name for f in tmp_path.iterdir()) == ["a.json"]


def test_decay_fade_falls_60_db_then_to_zero():
    """The "decay" fade is linear in dB to −60 dB, times a half cosine: at the midpoint 20·log10(0.5) − 30 dB."""
    g = io.fade_curve(1001, "decay")
    assert g[0] == pytest.approx(1.0) and g[-1] == pytest.approx(0.0, abs=1e-9)
    assert 20 * np.log10(g[500]) == pytest.approx(20 * np.log10(0.5) - 30.0, abs=0.01)
    assert np.all(np.diff(g) <= 0)
    c = io.fade_curve(1001, "cosine")
    assert 20 * np.log10(c[500]) == pytest.approx(20 * np.log10(0.5), abs=0.01)
    ring = np.ones(30000, np.float32)
    y = io.fit_length(ring, 22016, 22050, fade_ms=300, fade_shape="decay")
    n = int(round(22050 * 0.3))
    assert np.all(y[:-n] == 1.0) and y[-n // 2] < 0.02 and y[-1] == 0.0
    with pytest.raises(ValueError, match="fade shape"):
        io.fade_curve(10, "linear")
