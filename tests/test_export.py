"""Exports (ONNX, TorchScript for LibTorch) against eager torch, the torch-free ONNX engine (in a virtualenv
that has no torch at all), and the C++ host example."""
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import neuraldrum

from helpers_bundle import random_bundle
from neuraldrum import cli
from neuraldrum.bundle import load_bundle
from neuraldrum.engine import Engine
from neuraldrum.export.models import export
from neuraldrum.graphs import Analyzer, Generator
from neuraldrum.sampler import SamplerControls
from neuraldrum.voice import Controls, Voice

ort = pytest.importorskip("onnxruntime")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    return random_bundle(tmp_path_factory.mktemp("x") / "bundle")


@pytest.fixture(scope="module")
def onnx_dir(bundle_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("x") / "onnx"
    export(bundle_dir, "onnx", out)
    return out


@pytest.fixture(scope="module")
def libtorch_dir(bundle_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("x") / "libtorch"
    export(bundle_dir, "libtorch", out)
    return out


def _inputs(b, batch):
    g = torch.Generator().manual_seed(batch)
    cls = torch.arange(batch) % len(b.classes)  # every class (batch 16 covers all 11)
    z = torch.randn(batch, b.wae.cfg.latent_dim, generator=g)
    t = torch.arange(b.audio.n_samples, dtype=torch.float32)
    wave = torch.randn(batch, b.audio.n_samples, generator=g) * torch.exp(-t / 3000)
    return cls, z, wave / wave.abs().amax(dim=1, keepdim=True)


def test_a_host_that_follows_export_json_encodes_as_the_engine_does(bundle_dir, onnx_dir):
    """export.json says how to prepare a sound for the analyzer and what cls = -1 means; a host's own numpy
    arithmetic from those words (not neuraldrum's code) gives the engine's latent and class, and --seed N's eps."""
    meta = json.loads((onnx_dir / "export.json").read_text())
    an = meta["graphs"]["analyzer"]
    assert "36 dB" in an["wave"] and "16 samples" in an["wave"] and "peak of 1.0" in an["wave"]
    assert "-1" in an["cls"] and "default_rng(N)" in meta["seed"]
    sr, n = meta["sample_rate"], meta["n_samples"]
    rng = np.random.default_rng(4)
    t = np.arange(int(1.6 * sr)) / sr  # silence, then a hit longer than the clip, at a low level
    x = np.r_[np.zeros(700), 0.3 * np.exp(-t * 3) * np.sin(2 * np.pi * 180 * t) + 0.01 * rng.standard_normal(t.size)]
    x = x.astype(np.float32)
    peak = np.abs(x).max()
    start = max(0, int(np.flatnonzero(np.abs(x) >= peak * 10 ** (-36 / 20))[0]) - 16)
    y = x[start:].copy()
    y[:16] *= np.linspace(0, 1, 16, dtype=np.float32)
    y = y[:n].copy()
    k = int(round(sr * meta["fade_ms"] / 1000))
    u = np.linspace(0, 1, k)
    g = 0.5 + 0.5 * np.cos(np.pi * u)
    if meta["fade_shape"] == "decay":
        g = g * 10 ** (-60 / 20 * u)
    y[-k:] *= g.astype(np.float32)
    y = (y / np.abs(y).max()).astype(np.float32)
    sess = ort.InferenceSession(str(onnx_dir / "analyzer.onnx"), providers=["CPUExecutionProvider"])
    z, probs, used = sess.run(None, {"wave": y[None], "cls": np.array([-1], np.int64)})
    e = Engine(bundle_dir, warm=False).encode(x, sr)
    assert meta["classes"][int(used[0])] == e.cls and np.abs(z[0] - e.z).max() < 1e-4
    eng = Engine(bundle_dir, warm=False)
    eps = np.random.default_rng(7).standard_normal((2, meta["latent_dim"]))
    assert np.allclose(eng.sample_prior(2, 7, temperature=1.0), eps, atol=1e-6)  # (no class prior here)


@pytest.mark.parametrize("batch", [1, 16])
def test_onnx_matches_eager_torch(bundle_dir, onnx_dir, batch):
    b = load_bundle(bundle_dir)
    cls, z, wave = _inputs(b, batch)
    pick = torch.where(torch.arange(batch) % 3 == 0, -1, cls)
    with torch.inference_mode():
        ref_w = Generator(b)(cls, z).numpy()
        ref = [t.numpy() for t in Analyzer(b)(wave, pick)]
    gen = ort.InferenceSession(str(onnx_dir / "generator.onnx"), providers=["CPUExecutionProvider"])
    ana = ort.InferenceSession(str(onnx_dir / "analyzer.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in gen.get_inputs()] == ["cls", "z"] and [o.name for o in gen.get_outputs()] == ["wave"]
    assert [o.name for o in ana.get_outputs()] == ["z", "probs", "cls_used"]
    w = gen.run(None, {"cls": cls.numpy(), "z": z.numpy()})[0]
    assert w.shape == (batch, b.audio.n_samples) and np.abs(w - ref_w).max() <= 1e-4  # every sample: a soft mask
    got = ana.run(None, {"wave": wave.numpy(), "cls": pick.numpy()})
    for g_, r in zip(got, ref):
        assert g_.shape == r.shape and np.abs(g_.astype(np.float64) - r).max() <= 1e-4


def test_onnx_metadata_lets_a_host_map_controls(bundle_dir, onnx_dir):
    b = load_bundle(bundle_dir)
    meta = json.loads(ort.InferenceSession(str(onnx_dir / "generator.onnx"), providers=["CPUExecutionProvider"])
                      .get_modelmeta().custom_metadata_map["neuraldrum"])
    assert meta["classes"] == b.classes and meta["sample_rate"] == 22050 and meta["latent_dim"] == 8
    assert meta["bundle_sha256"] == b.meta["weights"]["sha256"] and meta["graph"] == "generator"
    # a host's own arithmetic from the stored axes gives the engine's latent
    p = meta["pca"]["snare"]
    z = np.asarray(p["mean"]) + 5 / 2 * (0.4 * p["scales"][0] * np.asarray(p["axes"][0])
                                         - 0.2 * p["scales"][1] * np.asarray(p["axes"][1]))
    eng = Engine(b, warm=False)
    assert np.allclose(eng.controls_to_z("snare", Controls(x=0.4, y=-0.2, range=5)), z, atol=1e-5)
    written = json.loads((onnx_dir / "export.json").read_text())
    assert written["graphs_revision"] == neuraldrum.GRAPHS_REVISION and max(written["parity"].values()) <= 1e-4
    assert not list(onnx_dir.glob("*.data"))
    assert "classes=" + ",".join(b.classes) in (onnx_dir / "meta.txt").read_text()


@pytest.mark.parametrize("batch", [1, 16])
def test_libtorch_matches_eager_torch(bundle_dir, libtorch_dir, batch):
    b = load_bundle(bundle_dir)
    cls, z, wave = _inputs(b, batch)
    files = {"neuraldrum.json": ""}
    gen = torch.jit.load(str(libtorch_dir / "generator.pt"), _extra_files=files)
    assert json.loads(files["neuraldrum.json"])["classes"] == b.classes
    ana = torch.jit.load(str(libtorch_dir / "analyzer.pt"))
    with torch.inference_mode():
        assert torch.allclose(gen(cls, z), Generator(b)(cls, z), atol=1e-4)
        for g_, r in zip(ana(wave, cls), Analyzer(b)(wave, cls)):
            assert torch.allclose(g_.float(), r.float(), atol=1e-4)


def test_onnx_engine_makes_the_torch_engines_sounds(bundle_dir, onnx_dir):
    t, o = Engine(bundle_dir, warm=False), Engine(onnx_dir, backend="onnx", warm=False)
    assert o.classes == t.classes and o.model_sha256 == t.model_sha256 and o.temperature == t.temperature
    voices = [Voice("kick", seed=3), Voice("snare", controls=Controls(x=0.5, y=-0.5, range=5)),
              Voice("tom", seed=1, amount=0.3, variation_seed=2, sampler=SamplerControls(tune=-4, decay=0.3))]
    for a, b in zip(t.render(voices), o.render(voices)):
        assert a.shape == b.shape and np.abs(a - b).max() <= 1e-4
    clip = t.generate("rim", seed=5)
    et, eo = t.encode(clip), o.encode(clip)
    assert et.cls == eo.cls and np.abs(et.z - eo.z).max() <= 1e-4
    assert np.abs(t.morph(et, et, 3) - o.morph(eo, eo, 3)).max() <= 1e-4
    crash = t.encode(t.generate("crash", seed=1), cls="crash")  # across classes: the mixer graph
    assert np.abs(t.morph(et, crash, 4) - o.morph(et, crash, 4)).max() <= 1e-4
    with pytest.raises(AttributeError, match="only with backend='torch'"):
        _ = o.bundle


def test_onnx_engine_refusals(bundle_dir, onnx_dir, tmp_path):
    with pytest.raises(ValueError, match=r"a model bundle, which runs in PyTorch \(pip install 'neuraldrum\[train\]'\)"):
        Engine(bundle_dir, backend="onnx")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="generator.onnx"):
        Engine(tmp_path / "empty", backend="onnx")
    bad = tmp_path / "bad"
    shutil.copytree(onnx_dir, bad)
    (bad / "analyzer.onnx").write_bytes(b"not onnx")
    with pytest.raises(ValueError, match="analyzer.onnx: not a loadable"):
        Engine(bad, backend="onnx")
    with pytest.raises(ValueError, match="backend='tf'"):
        Engine(bundle_dir, backend="tf")
    with pytest.raises(FileExistsError, match="not an export folder"):
        export(bundle_dir, "onnx", bundle_dir)
    mine = tmp_path / "mine"  # an export folder a user added files to: refused before any work, nothing lost
    shutil.copytree(onnx_dir, mine)
    (mine / "my_notes.txt").write_text("mine")
    (mine / "mydir").mkdir()
    with pytest.raises(FileExistsError, match="also holds my_notes.txt, mydir/, which a new export would delete"):
        export(bundle_dir, "onnx", mine)
    assert (mine / "my_notes.txt").read_text() == "mine" and (mine / "mydir").is_dir()


def test_export_cli_and_onnx_sound_verbs(bundle_dir, onnx_dir, tmp_path, capsys):
    assert cli.main(["export", "--format", "onnx", "--model", str(bundle_dir), "-o", str(tmp_path / "e"),
                     "--json"]) == 0
    p = json.loads(capsys.readouterr().out)["parity"]
    assert max(v for k, v in p.items() if "near" not in k) <= 1e-4
    assert cli.main(["kit", "--backend", "onnx", "--model", str(onnx_dir), "-o", str(tmp_path / "k")]) == 0
    assert cli.main(["kit", "--model", str(bundle_dir), "-o", str(tmp_path / "k2")]) == 0
    import soundfile as sf
    for cls in ("kick", "crash"):
        a, _ = sf.read(str(tmp_path / "k" / f"{cls}.wav"))
        b, _ = sf.read(str(tmp_path / "k2" / f"{cls}.wav"))
        assert np.mean(np.abs(a - b) > 2 / 32768) < 1e-3  # the same sounds, to the 16-bit step
    capsys.readouterr()
    assert cli.main(["classes", "--model", str(onnx_dir), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["classes"]) == 11


@pytest.mark.slow
def test_onnx_engine_runs_in_a_virtualenv_without_torch(onnx_dir, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", "numpy", "soundfile", "soxr", "onnxruntime"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot install onnxruntime into a fresh virtualenv here: {r.stderr[-300:]}")
    script = textwrap.dedent(f"""
        import importlib.util, json, sys
        assert importlib.util.find_spec("torch") is None, "torch is installed in this venv"
        from neuraldrum.engine import Engine, Voice, Controls
        from neuraldrum.kit import new_kit, write_kit
        eng = Engine({str(onnx_dir)!r}, backend="onnx")
        write_kit(eng, new_kit(eng, seed=1), {str(tmp_path / "kit")!r})
        w = eng.render([Voice("snare", controls=Controls(x=0.3))])[0]
        e = eng.encode(w)
        from neuraldrum import cli
        rc = cli.main(["generate", "kick", "-n", "2", "--seed", "1", "--backend", "onnx", "--model",
                       {str(onnx_dir)!r}, "-o", {str(tmp_path / "gen")!r}])
        print(json.dumps({{"torch": "torch" in sys.modules, "n": len(w), "cls": e.cls, "rc": rc}}))
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    r = subprocess.run([str(py), "-c", script], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out == {"torch": False, "n": 22016, "cls": out["cls"], "rc": 0}
    assert len(list((tmp_path / "kit").glob("*.wav"))) == 11 and len(list((tmp_path / "gen").glob("*.wav"))) == 2


@pytest.mark.slow
def test_cpp_host_builds_and_makes_a_kit(libtorch_dir, tmp_path):
    if not (shutil.which("cmake") and (shutil.which("c++") or shutil.which("g++"))):
        pytest.skip("no cmake or C++ compiler on this machine")
    build = tmp_path / "build"
    r = subprocess.run(["cmake", "-S", str(ROOT / "examples" / "cpp"), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release",
                        f"-DCMAKE_PREFIX_PATH={torch.utils.cmake_prefix_path}"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    r = subprocess.run(["cmake", "--build", str(build), "-j", "2"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    out = tmp_path / "wavs"
    out.mkdir()
    r = subprocess.run([str(build / "neuraldrum_host"), str(libtorch_dir), str(out), "3"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    import soundfile as sf
    meta = dict(line.split("=", 1) for line in (libtorch_dir / "meta.txt").read_text().splitlines())
    names = meta["classes"].split(",")
    assert len(names) == int(meta["n_classes"]) == 11
    for c in names:
        x, sr = sf.read(str(out / f"{c}.wav"))
        assert sr == 22050 and x.shape == (22016,) and 0.8 < np.abs(x).max() <= 0.9  # peak −1 dBFS


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["onnx", "libtorch"])
def test_default_model_exports_with_parity(fmt, tmp_path):
    b = load_bundle()
    export(b, fmt, tmp_path / fmt)
    for batch in (1, 16):
        cls, z, wave = _inputs(b, batch)
        with torch.inference_mode():
            ref = Generator(b)(cls, z).numpy()
            ref_a = [t.numpy() for t in Analyzer(b)(wave, cls)]
        if fmt == "onnx":
            w = ort.InferenceSession(str(tmp_path / fmt / "generator.onnx")).run(None, {"cls": cls.numpy(),
                                                                                       "z": z.numpy()})[0]
            a = ort.InferenceSession(str(tmp_path / fmt / "analyzer.onnx")).run(None, {"wave": wave.numpy(),
                                                                                      "cls": cls.numpy()})
        else:
            with torch.inference_mode():
                w = torch.jit.load(str(tmp_path / fmt / "generator.pt"))(cls, z).numpy()
                a = [t.numpy() for t in torch.jit.load(str(tmp_path / fmt / "analyzer.pt"))(wave, cls)]
        assert np.abs(w - ref).max() <= 1e-4
        for g_, r in zip(a, ref_a):
            assert np.abs(g_.astype(np.float64) - r).max() <= 1e-4


def test_playing_engine_exports_a_bundle_for_onnx_once_and_caches_it(bundle_dir, onnx_dir, tmp_path):
    from neuraldrum.engine import playing_engine

    said = []
    assert playing_engine(bundle_dir, cache=tmp_path, say=said.append).backend.name == "torch"  # auto
    assert not said and not list(tmp_path.iterdir())
    e1 = playing_engine(bundle_dir, cache=tmp_path, say=said.append, backend="onnx")
    assert e1.backend.name == "onnx" and len(said) == 1 and e1.model_sha256 == Engine(bundle_dir).model_sha256
    e2 = playing_engine(bundle_dir, cache=tmp_path, say=said.append, backend="onnx")  # the cached export
    assert e2.backend.name == "onnx" and len(said) == 1 and e2.model_path == e1.model_path
    assert Path(e1.model_path).name.endswith(f"-r{neuraldrum.GRAPHS_REVISION}")  # a new graph revision re-exports
    (Path(e1.model_path) / "generator.onnx").write_bytes(b"not a model")  # a damaged cache entry is rebuilt
    e3 = playing_engine(bundle_dir, cache=tmp_path, say=said.append, backend="onnx")
    assert "cannot be used" in said[1] and len(said) == 3 and e3.model_path == e1.model_path
    assert np.abs(e3.generate("kick", seed=1) - e1.generate("kick", seed=1)).max() <= 1e-6
    assert playing_engine(onnx_dir).model_path == str(onnx_dir)
    assert playing_engine(bundle_dir, backend="torch").backend.name == "torch"
