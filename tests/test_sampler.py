"""Sampler controls checked against answers worked out on paper, not against the module's own formulas."""
import json
import warnings

import numpy as np
import pytest

from neuraldrum.sampler import SamplerControls, apply_sampler

SR = 22050  # 1 s of audio = 22050 samples, so an FFT over 1 s has 1 Hz bins
MINUS_1_DBFS = 0.891251  # 10 ** (-1 / 20), by hand


def sine(freq, seconds=1.0, amp=0.5, sr=SR):
    return (amp * np.sin(2 * np.pi * freq * np.arange(int(seconds * sr)) / sr)).astype(np.float32)


def dominant_hz(y, sr=SR):
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return np.argmax(spectrum) * sr / len(y)


def audible_length(y, floor=1e-4):
    return int(np.flatnonzero(np.abs(y) > floor)[-1]) + 1


# ---------------------------------------------------------------- tune

@pytest.mark.parametrize("tune, hz, audible", [(12, 880, 11025), (-12, 220, 22050), (7, 659.26, 14717)])
def test_tune_changes_pitch_and_length_together(tune, hz, audible):
    y = apply_sampler(sine(440), SR, SamplerControls(tune=tune))
    assert y.shape == (SR,) and y.dtype == np.float32
    assert abs(dominant_hz(y) - hz) <= 1.0  # one 1 Hz bin
    assert abs(audible_length(y) - audible) <= 0.01 * audible  # +12 halves; +7: 22050 / 1.4983


def test_tune_down_is_cut_to_input_length_with_a_fade():
    y = apply_sampler(sine(440), SR, SamplerControls(tune=-12))
    assert len(y) == SR and abs(y[-1]) < 1e-6
    assert np.abs(y[-SR // 10:-SR // 20]).max() > 0.8  # still playing just before the fade
    kick = sine(60) * np.exp(-np.arange(SR) / (0.05 * SR)).astype(np.float32)
    slow = apply_sampler(kick, SR, SamplerControls(tune=-12, normalise=False))
    assert np.abs(slow[:SR // 10]).max() > 0.9 * np.abs(kick).max()  # the onset is kept, not the tail


def test_defaults_only_peak_normalise():
    x = sine(440, amp=0.3) + sine(1234, amp=0.1)
    before = x.copy()
    y = apply_sampler(x, SR, SamplerControls())
    np.testing.assert_allclose(y, x * (MINUS_1_DBFS / np.abs(x).max()), rtol=1e-6, atol=0)
    assert np.abs(y).max() == pytest.approx(MINUS_1_DBFS, abs=1e-6)
    np.testing.assert_array_equal(x, before)  # input untouched
    assert y is not x


def test_normalise_off_with_defaults_returns_the_input_values():
    x = sine(440, amp=0.3)
    np.testing.assert_array_equal(apply_sampler(x.astype(np.float64), SR, SamplerControls(normalise=False)), x)


# ---------------------------------------------------------------- decay

def test_decay_falls_60_db_in_decay_seconds_and_never_rises():
    y = apply_sampler(np.ones(SR, np.float32), SR, SamplerControls(decay=0.1))
    level_db = 20 * np.log10(y[2205] / y[0])  # 2205 samples = 0.1 s
    assert level_db == pytest.approx(-60.0, abs=0.5)
    assert 20 * np.log10(y[1102] / y[0]) == pytest.approx(-30.0, abs=0.5)  # exponential: half-way in dB
    assert np.all(np.diff(y) <= 0)
    assert y[0] == pytest.approx(MINUS_1_DBFS, abs=1e-6)


# ---------------------------------------------------------------- velocity

@pytest.mark.parametrize("velocity, curve, peak", [
    (64, 2.0, 0.2263),  # 0.8913 * (64 / 127) ** 2 = 0.8913 * 0.25395
    (64, 1.0, 0.4491),  # 0.8913 * 0.50394
    (127, 2.0, 0.8913),
    (1, 0.0, 0.8913),  # curve 0: velocity ignored
    (100, 0.0, 0.8913),
])
def test_velocity_gain_after_normalising(velocity, curve, peak):
    y = apply_sampler(sine(440, amp=0.05), SR, SamplerControls(velocity=velocity, velocity_curve=curve))
    assert np.abs(y).max() == pytest.approx(peak, abs=1e-4)


def test_velocity_without_normalise_scales_the_input():
    y = apply_sampler(sine(440, amp=0.5), SR, SamplerControls(velocity=64, normalise=False))
    assert np.abs(y).max() == pytest.approx(0.1270, abs=1e-4)  # 0.5 * 0.25395


# ---------------------------------------------------------------- length

def test_length_shorter_cuts_with_a_5ms_fade():
    y = apply_sampler(np.ones(SR, np.float32), SR, SamplerControls(length=0.25, normalise=False))
    assert len(y) == 5512  # round(5512.5): Python rounds half to even
    assert abs(y[-1]) < 1e-6
    np.testing.assert_array_equal(y[:5000], 1.0)
    fading = np.count_nonzero(y < 0.999)
    assert 0.004 * SR <= fading <= 0.006 * SR  # ~110 samples at 22050 Hz
    assert np.all(np.diff(y) <= 0)
    ramp = np.linspace(0, 1, SR, dtype=np.float32)  # the head is kept, the tail is cut
    np.testing.assert_array_equal(apply_sampler(ramp, SR, SamplerControls(length=0.25, normalise=False))[:5000],
                                  ramp[:5000])


def test_length_longer_zero_pads():
    x = sine(440)
    y = apply_sampler(x, SR, SamplerControls(length=2.0, normalise=False))
    assert len(y) == 44100
    np.testing.assert_array_equal(y[:SR], x)  # no fade when nothing is cut
    np.testing.assert_array_equal(y[SR:], 0.0)


def test_length_after_tune():
    y = apply_sampler(sine(440), SR, SamplerControls(tune=12, length=0.5))
    assert len(y) == 11025 and abs(dominant_hz(y) - 880) <= 2.0  # 2 Hz bins over 0.5 s


# ---------------------------------------------------------------- silence, batches, argument checks

def test_silence_stays_silent():
    controls = SamplerControls(tune=5, decay=0.2, velocity=90, length=0.3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = apply_sampler(np.zeros(SR, np.float32), SR, controls)
    assert len(y) == 6615 and np.all(y == 0) and np.all(np.isfinite(y))


def test_batch_rows_match_single_calls():
    x = np.stack([sine(440), sine(97, amp=0.9), np.zeros(SR, np.float32)])
    controls = SamplerControls(tune=3.5, decay=0.3, velocity=80, length=0.6)
    y = apply_sampler(x, SR, controls)
    assert y.shape == (3, 13230) and y.dtype == np.float32
    for row, out in zip(x, y):
        np.testing.assert_allclose(out, apply_sampler(row, SR, controls), rtol=0, atol=1e-7)
    assert np.abs(y[1]).max() == pytest.approx(np.abs(y[0]).max(), rel=1e-5)  # rows normalised separately


@pytest.mark.parametrize("wave", [np.zeros((2, 3, 4)), np.zeros(0), np.zeros((0, 10)), np.zeros((2, 0)),
                                  np.array([0.0, np.nan])])
def test_bad_wave_is_refused_by_name(wave):
    with pytest.raises(ValueError, match="wave"):
        apply_sampler(wave, SR, SamplerControls())


@pytest.mark.parametrize("sr", [0, -1, True, float("nan"), "22050"])
def test_bad_sample_rate_is_refused_by_name(sr):
    with pytest.raises(ValueError, match="sample_rate"):
        apply_sampler(np.ones(10), sr, SamplerControls())


def test_apply_validates_controls():
    with pytest.raises(ValueError, match="tune"):
        apply_sampler(np.ones(10), SR, SamplerControls(tune=13))
    with pytest.raises(TypeError, match="controls"):
        apply_sampler(np.ones(10), SR, {"tune": 1})


# ---------------------------------------------------------------- SamplerControls

@pytest.mark.parametrize("field, value, allowed", [
    ("tune", 13, r"\[-12, 12\]"), ("tune", -12.5, r"\[-12, 12\]"), ("tune", float("nan"), "tune"),
    ("tune", float("inf"), "tune"), ("tune", True, "tune"), ("tune", "1", "tune"),
    ("velocity", 0, r"\[1, 127\]"), ("velocity", 200, r"\[1, 127\]"), ("velocity", True, "velocity"),
    ("velocity", float("nan"), "velocity"),
    ("velocity_curve", -1, ">= 0"), ("velocity_curve", float("inf"), "velocity_curve"),
    ("decay", 0, "> 0"), ("decay", -0.1, "> 0"), ("decay", float("inf"), "decay"), ("decay", True, "decay"),
    ("length", 0, "length"), ("length", -1, "length"), ("length", float("nan"), "length"), ("length", 61, "60"),
    ("length", 1e-6, r"\[0.001, 60\]"),  # (it rounded to a sound of no samples)
    ("normalise", "yes", "normalise"), ("normalise", 1, "normalise"),
])
def test_validate_rejects_and_names_the_field(field, value, allowed):
    controls = SamplerControls(**{field: value})
    with pytest.raises(ValueError, match=field) as err:
        controls.validate()
    assert err.match(allowed)


@pytest.mark.parametrize("kwargs", [{"tune": -12}, {"tune": 12}, {"velocity": 1}, {"velocity": 64.5},
                                    {"velocity": np.float32(90)}, {"decay": 0.01, "length": 0.1},
                                    {"velocity_curve": 0}, {"normalise": False}])
def test_validate_accepts_edges(kwargs):
    controls = SamplerControls(**kwargs)
    assert controls.validate() is controls


def test_is_identity():
    assert SamplerControls().is_identity()
    assert SamplerControls(normalise=False).is_identity()
    assert SamplerControls(velocity=30, velocity_curve=0).is_identity()  # velocity ignored
    for kwargs in [{"tune": 0.5}, {"tune": -1}, {"decay": 1.0}, {"length": 1.0}, {"velocity": 126}]:
        assert not SamplerControls(**kwargs).is_identity(), kwargs


def test_dict_round_trip_through_json():
    c = SamplerControls(tune=-3.5, decay=0.2, velocity=np.float32(90), velocity_curve=1.5, length=0.4,
                        normalise=False)
    d = json.loads(json.dumps(c.to_dict()))
    assert d == {"tune": -3.5, "decay": pytest.approx(0.2), "velocity": 90.0, "velocity_curve": 1.5,
                 "length": pytest.approx(0.4), "normalise": False}
    assert SamplerControls.from_dict(d) == c
    assert SamplerControls.from_dict(SamplerControls().to_dict()) == SamplerControls()
    assert SamplerControls.from_dict({"tune": 2}) == SamplerControls(tune=2.0)  # missing keys take defaults


def test_from_dict_refuses_unknown_keys_and_bad_values():
    with pytest.raises(ValueError, match="pitch"):
        SamplerControls.from_dict({"tune": 1, "pitch": 3})
    with pytest.raises(ValueError, match="velocity"):
        SamplerControls.from_dict({"velocity": 0})
    with pytest.raises(TypeError):
        SamplerControls.from_dict([("tune", 1)])
