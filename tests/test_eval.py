"""`neuraldrum eval` end to end on the tiny bundle of conftest.py, and the evaluator's building blocks."""
import json

import numpy as np
import pytest

from helpers_corpus import write_corpus
from neuraldrum import cli
from neuraldrum.audio.mel import MelFrontend
from neuraldrum.config import MelConfig
from neuraldrum.data.synth import synth
from neuraldrum.evaluate import WAVE_METRICS, per_class_summary, run_eval, wave_metrics
from neuraldrum.taxonomy import CLASSES


def test_wave_metrics_zero_for_the_same_sound_at_any_level():
    fe = MelFrontend(MelConfig())
    x = np.zeros((2, 22016), np.float32)
    for i, (c, seed) in enumerate((("kick", 0), ("hh_closed", 1))):
        s = synth(c, seed=seed)[:22016]
        x[i, : len(s)] = s
    same = wave_metrics(0.3 * x, x, fe)  # peak-normalised before comparison: a level offset is not error
    assert set(same) == set(WAVE_METRICS)
    for k, v in same.items():
        assert v.shape == (2,) and np.allclose(v, 0.0, atol=1e-2), k  # float32 rounding only
    swapped = wave_metrics(x[::-1].copy(), x, fe)
    for k in ("sc", "mel_sc", "lsd_db", "mrstft", "logmel_l1", "env_db"):
        assert np.all(swapped[k] > 0.1), k  # a kick is not a hat


def test_per_class_summary_groups_by_label():
    s = per_class_summary("x", {"m": np.array([1.0, 3.0, 10.0])}, np.array([0, 0, 2]), ["a", "b", "c"])
    assert s["x/m"]["mean"] == pytest.approx(14 / 3)
    assert s["x/m_per_class"] == {"a": 2.0, "c": 10.0}


def test_eval_cli_end_to_end_with_report(tiny_bundle, tiny_corpus, tmp_path, capsys):
    rep = tmp_path / "report"
    assert cli.main(["eval", "--model", str(tiny_bundle), "--data", str(tiny_corpus), "--per-class", "3",
                     "--grid", "3", "--gl-iters", "4", "--report", str(rep), "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert m["meta"]["split"] == "test" and "warning" not in m["meta"]
    assert m["recon/n"] == len(CLASSES)
    for group in ("e2e/", "inv/mcnn_", "inv/gl4_"):
        for k in WAVE_METRICS:
            v = m[group + k]
            assert np.isfinite(v["mean"]) and v["mean"] >= 0 and v["n"] == len(CLASSES), group + k
    assert set(m["inv/mcnn_sc_per_class"]) == set(CLASSES)
    assert 0 <= m["clf/test_acc"] <= 1 and np.asarray(m["clf/test_confusion"]).sum() == len(CLASSES)
    assert np.asarray(m["gen/confusion"]).sum() == 3 * len(CLASSES)
    assert 1.0 - 1e-6 <= m["gen/inception_score"] <= len(CLASSES) + 1e-6
    assert m["gen/fd"] >= 0 and np.isfinite(m["gen/kid"])
    assert m["gen/nearest_train_rms"]["n"] == 3 * len(CLASSES)
    assert m["control/neighbour_rms"]["n"] == len(CLASSES) * 2 * 3 * 2  # 2·n·(n−1) pairs per class
    for k in ("centroid_x", "centroid_y", "decay_x", "decay_y"):
        assert 0 <= m[f"control/monotonic_{k}"] <= 1 or np.isnan(m[f"control/monotonic_{k}"])
    saved = json.loads((rep / "report.json").read_text())
    assert saved["gen/class_acc"] == m["gen/class_acc"]
    md = (rep / "report.md").read_text()
    assert "## inv" in md and "## gen" in md
    for png in ("recon_spectrograms.png", "inversion_sc.png", "confusion_real.png", "confusion_generated.png",
                "latent_map.png", "xy_grid_kick.png", "xy_grid_hh_closed.png"):
        assert (rep / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
        assert f"]({png})" in md


def test_eval_warns_when_the_corpus_is_not_the_training_one(tiny_bundle, tmp_path):
    other = write_corpus(tmp_path / "other", per_class=3, val_per_class=1, seed=5)
    rows = [json.loads(line) for line in (other / "manifest.jsonl").read_text().splitlines()]
    for r in rows:
        r["split"] = "test" if r["split"] == "val" else r["split"]
    (other / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    m = run_eval(tiny_bundle, other, per_class=2, grid=2, gl_iters=(), progress=False)
    assert "not the one the model was trained on" in m["meta"]["warning"]
    assert "inv/gl32_sc" not in m


def test_eval_refuses_an_empty_split(tiny_bundle, tmp_path, capsys):
    other = write_corpus(tmp_path / "novals", per_class=2, val_per_class=0)
    assert cli.main(["eval", "--model", str(tiny_bundle), "--data", str(other), "--split", "val"]) == 1
    assert "no clips in split 'val'" in capsys.readouterr().err


def test_real_vs_real_reference_is_the_other_held_out_split(tiny_bundle, tiny_corpus):
    """Measuring on val must not compare val with itself (that reference would be ~0); FD and KID are symmetric,
    so val-vs-test is the same number whichever split is measured."""
    from neuraldrum.bundle import load_bundle
    from neuraldrum.data.corpus import load_corpus
    from neuraldrum.engine import Engine
    from neuraldrum.evaluate import generation

    eng, corpus = Engine(load_bundle(tiny_bundle)), load_corpus(tiny_corpus)
    on_val = generation(eng, corpus, per_class=2, split="val")
    on_test = generation(eng, corpus, per_class=2, split="test")
    for k in ("gen/fd_real_val_vs_test", "gen/kid_real_val_vs_test"):
        assert on_val[k] == pytest.approx(on_test[k], rel=1e-5), k  # val-vs-val would differ
    assert on_val["gen/fd"] != pytest.approx(on_test["gen/fd"], rel=1e-5)  # the split measured did change
