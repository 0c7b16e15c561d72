"""The model shipped in the package: it loads, is small, records how it was made, and makes sound."""
import numpy as np

from neuraldrum.bundle import DEFAULT_BUNDLE, read_meta
from neuraldrum.engine import Engine
from neuraldrum.taxonomy import CLASSES


def test_default_bundle_is_small_and_self_describing():
    size = sum(f.stat().st_size for f in DEFAULT_BUNDLE.iterdir())
    assert size <= 20 * 2 ** 20
    meta = read_meta(DEFAULT_BUNDLE)
    assert meta["classes"] == list(CLASSES)
    assert "neuraldrum train wae" in meta["training"]["wae"]["command"]
    assert "neuraldrum train mcnn" in meta["training"]["mcnn"]["command"]
    assert meta["corpus"]["n_clips"] >= 800  # trained on the real corpus, not a test one
    m = meta["metrics"]
    assert m["recon/split"] == "test" and m["recon/n"] > 50
    assert m["clf/test_acc"] > 0.5  # the listener does better than chance (1/11) on held-out kits
    # a shipped model must make sounds the listener hears as their class far above chance; a worse one fails here
    assert m["gen/class_acc"] > 0.6 and m["gen/n_per_class"] >= 50
    assert m["latency/generate_ms_median"] < 1000


def test_default_engine_generates_every_class():
    eng = Engine()
    waves = eng.generate_batch(list(CLASSES), eng.sample_prior(len(CLASSES), 0))
    assert waves.shape == (len(CLASSES), eng.n_samples)
    assert np.all(np.isfinite(waves))
    peak = np.abs(waves).max(axis=1)
    assert np.all(peak > 0.5)  # normalised sound, not silence
    # a kick's energy sits lower than a closed hat's
    spec = np.abs(np.fft.rfft(waves, axis=1))
    f = np.fft.rfftfreq(eng.n_samples, 1 / eng.sample_rate)
    centroid = (spec * f).sum(1) / spec.sum(1)
    assert centroid[CLASSES.index("kick")] < centroid[CLASSES.index("hh_closed")]
