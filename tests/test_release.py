"""End to end on tiny models (the ``tiny_bundle`` fixture of conftest.py: both models and the classifier trained,
assembled into a bundle with metrics), then every sound verb of the CLI against it."""
import json

import numpy as np
import pytest
import soundfile as sf

from neuraldrum import cli
from neuraldrum.bundle import read_meta
from neuraldrum.classifier import confusion
from neuraldrum.data.synth import synth
from neuraldrum.taxonomy import CLASSES


def test_bundle_records_provenance_and_metrics(tiny_bundle, tiny_corpus):
    meta = read_meta(tiny_bundle)
    assert meta["classes"] == list(CLASSES)
    for task in ("wae", "mcnn"):  # each run's command.json, and the step its checkpoint was taken at
        run = meta["training"][task]
        assert (run["task"], run["preset"], run["start_step"]) == (task, "tiny", 0), task
        assert run["data"] == str(tiny_corpus.resolve()) and run["corpus"]["n_clips"] == 44
        assert meta["training"][f"{task}_step"] in (10, 20)  # best.pt: taken at a validation step
    assert meta["corpus"]["n_clips"] == 44
    m = meta["metrics"]
    for k in ("recon/logmel_l1", "recon/mel_sc", "inv/mcnn_sc", "inv/mcnn_mel_sc", "inv/gl32_sc", "e2e/mel_sc",
              "e2e/lsd_db", "e2e/mrstft", "e2e/onset_ms", "e2e/env_db"):
        s = m[k]
        assert s["n"] == len(CLASSES) and np.isfinite(s["mean"]), k  # one test clip per class, all measured
        assert s["mean"] <= s["max"] and s["median"] <= s["p95"] <= s["max"], k
    assert set(m["inv/mcnn_sc_per_class"]) == set(CLASSES)
    assert "inv/gl100_sc" not in m  # the bundle measures Griffin-Lim 32 only; `neuraldrum eval` adds 100
    assert m["recon/n"] == len(CLASSES) and m["recon/split"] == "test"
    assert m["gen/n_per_class"] == 2 and m["gen/temperature"] == 1.0  # --per-class 2, the default temperature
    assert m["latency/runs"] == 5 and m["latency/threads"] == 1  # --latency-runs 5
    assert 0 < m["latency/generate_ms_median"] <= m["latency/generate_ms_p95"]
    assert set(meta["pca"]) >= {"all"}


def test_bundle_metrics_are_what_the_models_give(tiny_bundle, tiny_corpus):
    """The recorded metrics recomputed from the bundle's parts on the corpus's test split, by hand."""
    import torch

    from neuraldrum.audio.mel import MelFrontend
    from neuraldrum.bundle import load_bundle
    from neuraldrum.data.corpus import load_corpus
    from neuraldrum.engine import Engine

    b, corpus = load_bundle(tiny_bundle), load_corpus(tiny_corpus)
    m = read_meta(tiny_bundle)["metrics"]
    fe = MelFrontend(b.mel)
    te = corpus.indices("test")
    y = torch.as_tensor(corpus.labels(te))
    with torch.inference_mode():
        x = torch.as_tensor(np.asarray(corpus.audio[te], dtype=np.float32))
        mel = fe.mel(x)
        lm = torch.log(torch.clamp(mel, min=b.mel.log_floor))
        rec = b.wae.decode(b.wae.encode((lm - b.standardiser.mean) / b.standardiser.std, y), y)
        rec = rec * b.standardiser.std + b.standardiser.mean
        l1 = (rec - lm).abs().mean(dim=(1, 2))
        rec_mel = torch.clamp(torch.exp(rec) - b.mel.log_floor, min=0)
        sc = torch.linalg.norm((rec_mel - mel).flatten(1), dim=1) / torch.linalg.norm(mel.flatten(1), dim=1)
        pred = b.classifier(lm).argmax(dim=1)
    assert m["recon/logmel_l1"]["mean"] == pytest.approx(float(l1.mean()), rel=1e-4)
    assert m["recon/logmel_l1"]["max"] == pytest.approx(float(l1.max()), rel=1e-4)
    assert m["recon/mel_sc"]["mean"] == pytest.approx(float(sc.mean()), rel=1e-3)
    assert m["recon/logmel_l1_per_class"] == pytest.approx({CLASSES[int(c)]: float(v) for c, v in zip(y, l1)},
                                                           rel=1e-4)
    assert m["clf/n"] == len(CLASSES) and m["clf/test_acc"] == pytest.approx(float((pred == y).float().mean()))
    assert m["clf/test_confusion"] == confusion(y.numpy(), pred.numpy(), len(CLASSES)).tolist()
    # the listen test: 2 prior draws per class (seed = the class's index), classified by the listener
    eng = Engine(b, warm=False)
    right = {}
    for ci, cls in enumerate(CLASSES):
        waves = eng.generate_batch([cls] * 2, np.random.default_rng(ci).standard_normal((2, eng.latent_dim)))
        with torch.inference_mode():
            p = b.classifier(fe(torch.as_tensor(waves))).argmax(dim=1)
        right[cls] = float((p == ci).float().mean())
    assert m["gen/class_acc_per_class"] == pytest.approx(right)
    assert m["gen/class_acc"] == pytest.approx(np.mean(list(right.values())))


def test_sound_verbs(tiny_bundle, tmp_path, capsys):
    m = ["--model", str(tiny_bundle)]
    assert cli.main(["generate", "kick", "-n", "2", "--seed", "1", "-o", str(tmp_path / "g"), "--json"] + m) == 0
    files = json.loads(capsys.readouterr().out)["files"]
    assert len(files) == 2
    x, sr = sf.read(files[0]["file"])
    assert sr == 22050 and x.shape == (22016,)
    assert cli.main(["generate", "snare", "--x", "0.5", "--y", "-0.5", "--fine", "0.2", "--range", "5",
                     "-o", str(tmp_path / "c")] + m) == 0
    assert cli.main(["generate", "snare", "--x", "2", "-o", str(tmp_path / "bad")] + m) == 1
    assert "--x 2: must be a finite number in [-1, 1]" in capsys.readouterr().err  # names the option typed
    src = tmp_path / "in.wav"
    sf.write(str(src), synth("kick", seed=0), 44100)
    capsys.readouterr()
    assert cli.main(["encode", str(src), "--json"] + m) == 0
    enc = json.loads(capsys.readouterr().out)
    assert enc["class"] in CLASSES and len(enc["z"]) == 8
    assert sum(enc["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
    assert cli.main(["resynth", str(src), "-o", str(tmp_path / "r.wav")] + m) == 0
    assert sf.info(str(tmp_path / "r.wav")).frames == 22016
    assert cli.main(["variations", str(src), "-n", "3", "--amount", "0.3", "-o", str(tmp_path / "v")] + m) == 0
    assert len(list((tmp_path / "v").glob("*.wav"))) == 3
    hat = tmp_path / "hat.wav"
    sf.write(str(hat), synth("hh_closed", seed=0), 22050)
    assert cli.main(["morph", str(src), str(hat), "--steps", "4", "-o", str(tmp_path / "m")] + m) == 0
    assert len(list((tmp_path / "m").glob("*.wav"))) == 4
    assert cli.main(["encode", str(tmp_path / "missing.wav")] + m) == 1
    assert "missing.wav" in capsys.readouterr().err


def test_kit_is_reproducible_from_kit_json(tiny_bundle, tmp_path, capsys):
    m = ["--model", str(tiny_bundle)]
    assert cli.main(["kit", "-o", str(tmp_path / "k1"), "--seed", "7"] + m) == 0
    assert cli.main(["kit", "-o", str(tmp_path / "k2"), "--seed", "7"] + m) == 0
    kit = json.loads((tmp_path / "k1" / "kit.json").read_text())
    assert [s["voice"]["class"] for s in kit["slots"]] == list(CLASSES)
    for s in kit["slots"]:
        a, _ = sf.read(str(tmp_path / "k1" / s["file"]))
        b, _ = sf.read(str(tmp_path / "k2" / s["file"]))
        assert np.array_equal(a, b)
    capsys.readouterr()
    assert cli.main(["classes", "--json"] + m) == 0
    assert json.loads(capsys.readouterr().out)["classes"] == list(CLASSES)


def test_confusion_matrix_counts():
    cm = confusion(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 2]), 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]


def test_prior_temperature(tiny_bundle, tmp_path, capsys):
    from neuraldrum.engine import Engine, Voice

    eng = Engine(tiny_bundle)
    assert eng.temperature == 1.0  # the tiny bundle was made with the default
    z1, z_half = eng.sample_prior(4, 3), eng.sample_prior(4, 3, temperature=0.5)
    assert np.allclose(z_half, 0.5 * z1)
    with pytest.raises(ValueError, match="temperature"):
        eng.sample_prior(1, 0, temperature=-1)
    m = ["--model", str(tiny_bundle)]
    assert cli.main(["kit", "-o", str(tmp_path / "k0"), "--temperature", "0", "--json"] + m) == 0
    kit = json.loads(capsys.readouterr().out)
    assert kit["info"]["temperature"] == 0.0 and all(s["voice"]["temperature"] == 0.0 for s in kit["slots"])
    assert all(not eng.voice_z(Voice.from_dict(s["voice"])).any() for s in kit["slots"])  # the prior's centre, z = 0
    assert cli.main(["generate", "kick", "--seed", "3", "--temperature", "0.5", "-o", str(tmp_path / "g"),
                     "--json"] + m) == 0
    g = json.loads(capsys.readouterr().out)["files"][0]
    assert g["temperature"] == 0.5 and np.allclose(g["z"], z_half[0], atol=1e-5)


def test_bundle_verbs_never_replace_a_folder_that_is_not_a_bundle(tiny_bundle, tiny_corpus, tmp_path, capsys):
    """bundle, bundle-inverter and bundle-prior replaced whatever --out named (a user's sample folder, the very
    training run being bundled); now only a new, an empty or a bundle folder, before any work."""
    runs = tiny_bundle.parent
    user = tmp_path / "samples"
    user.mkdir()
    (user / "kick.wav").write_bytes(b"mine")
    (user / "808s").mkdir()
    copy = tmp_path / "copy"  # a bundle folder a user put a file into
    assert cli.main(["bundle-prior", "--model", str(tiny_bundle), "--data", str(tiny_corpus), "--out", str(copy),
                     "--no-metrics"]) == 0
    (copy / "notes.txt").write_text("mine")
    capsys.readouterr()
    for argv, words in [
            (["bundle", "--wae", runs / "wae", "--mcnn", runs / "mcnn", "--data", tiny_corpus, "--out", user,
              "--no-metrics"], "a folder that is not a model bundle"),
            (["bundle", "--wae", runs / "wae", "--mcnn", runs / "mcnn", "--data", tiny_corpus, "--out", runs / "wae",
              "--no-metrics"], "a folder that is not a model bundle"),
            (["bundle-inverter", "--model", tiny_bundle, "--inverter", runs / "mcnn", "--data", tiny_corpus, "--out",
              user, "--no-metrics"], "a folder that is not a model bundle"),
            (["bundle-prior", "--model", tiny_bundle, "--data", tiny_corpus, "--out", user], "not a model bundle"),
            (["bundle-prior", "--model", tiny_bundle, "--data", tiny_corpus, "--out", copy, "--no-metrics"],
             "a bundle folder that also holds notes.txt")]:
        assert cli.main(list(map(str, argv))) == 1
        err = capsys.readouterr().err
        assert words in err and "choose a new or empty folder" in err, err
    assert (user / "kick.wav").read_bytes() == b"mine" and (user / "808s").is_dir()
    assert (runs / "wae" / "best.pt").is_file() and (copy / "notes.txt").read_text() == "mine"
    (copy / "notes.txt").unlink()  # a bundle folder is replaced (in place, too)
    assert cli.main(["bundle-prior", "--model", str(copy), "--data", str(tiny_corpus), "--out", str(copy),
                     "--no-metrics"]) == 0


def test_an_interrupted_measurement_leaves_no_bundle(tiny_bundle, tiny_corpus, tmp_path, monkeypatch):
    """The bundle is measured in a folder beside --out and written once with its metrics: Ctrl-C while measuring
    leaves neither a bundle without metrics nor the measuring folder."""
    from neuraldrum import release

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(release, "measure", interrupted)
    runs, out = tiny_bundle.parent, tmp_path / "new"
    with pytest.raises(KeyboardInterrupt):
        release.make_bundle(runs / "wae", runs / "mcnn", out, tiny_corpus)
    with pytest.raises(KeyboardInterrupt):
        release.swap_inverter(tiny_bundle, runs / "mcnn", tiny_corpus, out)
    assert list(tmp_path.iterdir()) == []


def test_bundling_with_another_corpus_is_said(tiny_bundle, tiny_corpus, tmp_path):
    """The corpus given to bundle is recorded as the model's and its PCA fitted there: one the WAE was not trained
    on (other counts) is said; the one it was trained on is not."""
    import shutil
    import warnings

    from neuraldrum import release

    runs, other = tiny_bundle.parent, tmp_path / "other"
    shutil.copytree(tiny_corpus, other)
    items = [json.loads(x) for x in (other / "manifest.jsonl").read_text().splitlines()]
    items[0]["split"] = "test" if items[0]["split"] != "test" else "val"
    (other / "manifest.jsonl").write_text("".join(json.dumps(it) + "\n" for it in items))
    with pytest.warns(UserWarning, match="not the corpus .* was trained on"):
        release.make_bundle(runs / "wae", runs / "mcnn", tmp_path / "b1", other, metrics=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        release.make_bundle(runs / "wae", runs / "mcnn", tmp_path / "b2", tiny_corpus, metrics=False)


def test_measuring_says_each_stage(tiny_bundle, tiny_corpus, monkeypatch, capsys):
    """bundle and bundle-inverter were silent for the minutes of measuring: each stage is said on stderr."""
    from neuraldrum import evaluate, release
    from neuraldrum.data.corpus import load_corpus

    for name in ("reconstruction", "generation", "latency"):
        monkeypatch.setattr(evaluate, name, lambda *a, name=name, **k: {name: 1})
    m = release.measure(tiny_bundle, load_corpus(tiny_corpus), per_class=3, latency_runs=7)
    assert m == {"reconstruction": 1, "generation": 1, "latency": 1}
    err = capsys.readouterr().err.splitlines()
    assert [ln.split(": ")[2].split(" (")[0] for ln in err] == ["reconstruction and inversion on the test split",
                                                                 "generation", "latency"]
    assert "3 prior samples a class" in err[1] and "7 sounds" in err[2]
