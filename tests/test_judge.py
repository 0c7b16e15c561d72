"""`neuraldrum judge`: one listener judges models of any sample rate."""
import json

import numpy as np
import pytest

from neuraldrum import cli
from neuraldrum.judge import judge, to_rate


def test_to_rate_keeps_pitch_level_and_length():
    sr_in, sr_out, f = 44100, 22050, 1000.0
    t = np.arange(44032) / sr_in
    x = (0.5 * np.sin(2 * np.pi * f * t)).astype(np.float32)[None]
    y = to_rate(x, sr_in, sr_out, 22016)
    assert y.shape == (1, 22016) and y.dtype == np.float32
    spec = np.abs(np.fft.rfft(y[0] * np.hanning(22016)))
    assert abs(np.argmax(spec) * sr_out / 22016 - f) < 2.0
    mid = y[0, 2000:20000]
    assert np.sqrt(np.mean(mid ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.01)
    # a content above the new Nyquist is removed, not folded down
    hi = (0.5 * np.sin(2 * np.pi * 15000.0 * t)).astype(np.float32)[None]
    assert np.abs(to_rate(hi, sr_in, sr_out, 22016)[0, 2000:20000]).max() < 0.01
    # longer than asked: cut; shorter: zero-padded
    assert to_rate(x, sr_in, sr_out, 100).shape == (1, 100)
    z = to_rate(x[:, :4410], sr_in, sr_out, 4000)
    assert np.all(z[0, 2300:] == 0) and np.abs(z[0, :2000]).max() > 0.4


def test_judge_agrees_with_eval_on_the_bundles_own_listener(tiny_bundle, tiny_corpus):
    """Through its own loading path (the classifier and Mel read back from the bundle), `judge` hears the same
    samples `eval` draws: the same accuracy, per-class accuracy, FD and KID."""
    from neuraldrum.data.corpus import load_corpus
    from neuraldrum.engine import Engine
    from neuraldrum.evaluate import generation

    g = generation(Engine(tiny_bundle, warm=False), load_corpus(tiny_corpus), per_class=3, seed=4)
    res = judge({"a": tiny_bundle, "b": tiny_bundle}, tiny_bundle, tiny_corpus, per_class=3, seed=4)
    assert res["real"]["class_acc"] == pytest.approx(g["clf/test_acc"])
    for r in res["models"].values():
        assert r["class_acc"] == pytest.approx(g["gen/class_acc"])
        assert r["class_acc_per_class"] == pytest.approx(g["gen/class_acc_per_class"])
        assert r["fd"] == pytest.approx(g["gen/fd"], rel=1e-5)
        assert r["kid"] == pytest.approx(g["gen/kid"], rel=1e-5, abs=1e-9)
        assert r["sample_rate"] == 22050


def test_judge_cli_and_refusals(tiny_bundle, tiny_corpus, tmp_path, capsys):
    out = tmp_path / "j.json"
    assert cli.main(["judge", "--listener", str(tiny_bundle), "--data", str(tiny_corpus), "--model",
                     f"mine={tiny_bundle}", "--per-class", "2", "--out", str(out), "--quiet"]) == 0
    res = json.loads(out.read_text())
    assert set(res["models"]) == {"mine"} and res["per_class"] == 2
    assert "| mine |" in capsys.readouterr().out
    assert cli.main(["judge", "--listener", str(tiny_bundle), "--data", str(tiny_corpus), "--model",
                     f"mine={tiny_bundle}", "--per-class", "2", "--out", str(out), "--quiet", "--hifi"]) == 0
    res = json.loads(out.read_text())  # the same draws again, and in hi-fi: other sounds, so other embeddings
    assert [(n, r["hifi"]) for n, r in res["models"].items()] == [("mine", 0), ("mine hi-fi", 24)]
    assert res["models"]["mine"]["fd"] != res["models"]["mine hi-fi"]["fd"]
    assert "| mine hi-fi |" in capsys.readouterr().out
    assert cli.main(["judge", "--listener", str(tiny_bundle), "--data", str(tiny_corpus), "--model",
                     str(tiny_bundle)]) == 1
    assert "write NAME=BUNDLE" in capsys.readouterr().err
    assert cli.main(["judge", "--listener", str(tmp_path), "--data", str(tiny_corpus), "--model",
                     f"x={tiny_bundle}"]) == 1
    assert "not a classifier folder" in capsys.readouterr().err
    from helpers_corpus import write_corpus

    other = write_corpus(tmp_path / "c44", per_class=2, sample_rate=44100, n_samples=44032)
    assert cli.main(["judge", "--listener", str(tiny_bundle), "--data", str(other), "--model",
                     f"x={tiny_bundle}"]) == 1
    err = capsys.readouterr().err
    assert "44100 Hz" in err and "22050 Hz" in err and str(other) in err
    assert not (tmp_path / "never.json").exists()
