import numpy as np
import pytest

from neuraldrum.data.synth import synth, write_sample_folder
from neuraldrum.taxonomy import CLASSES, classify_name


def _centroid(x, sr=22050):
    spec = np.abs(np.fft.rfft(x))
    f = np.fft.rfftfreq(x.size, 1 / sr)
    return float((spec * f).sum() / spec.sum())


@pytest.mark.parametrize("cls", CLASSES)
def test_every_voice_is_finite_normalised_and_seeded(cls):
    a, b = synth(cls, seed=1), synth(cls, seed=1)
    assert a.dtype == np.float32 and np.all(np.isfinite(a))
    assert np.max(np.abs(a)) == pytest.approx(1.0, rel=1e-5)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, synth(cls, seed=2))


def test_voices_have_their_class_signature():
    assert _centroid(synth("kick")) < 300  # energy low
    assert _centroid(synth("hh_closed")) > 5000  # energy high
    assert _centroid(synth("tom")) < _centroid(synth("snare")) < _centroid(synth("hh_open"))
    assert synth("hh_closed").size < synth("hh_open").size  # a closed hat is short


def test_sample_folder_names_carry_the_label(tmp_path):
    paths = write_sample_folder(tmp_path, per_class=2)
    assert len(paths) == 2 * len(CLASSES)
    for p in paths:
        assert classify_name(p.parent.name)[0] == p.parent.name
