"""The plugin's core without a host (plugin/build/cmake/neuraldrum-plugin-tool, built by `make plugin`): its
reproduction of numpy's seeded normal draws, and kits — a kit from `neuraldrum kit` renders that kit's WAVs, and
the kit the plugin saves renders the same sounds with `neuraldrum kit --from`."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
# where `make plugin` builds (another build folder: NEURALDRUM_PLUGIN_BUILD)
BUILD = Path(os.environ.get("NEURALDRUM_PLUGIN_BUILD") or ROOT / "plugin" / "build" / "cmake")
TOOL = BUILD / "neuraldrum-plugin-tool"
MODEL = BUILD / "bin" / "neuraldrum.lv2" / "model"  # what the bundles carry
pytestmark = pytest.mark.skipif(not TOOL.is_file() or not (MODEL / "export.json").is_file(),
                                reason="the plugin is not built (make plugin)")


def tool(*args, cwd=None) -> str:
    return subprocess.run([str(TOOL), *map(str, args)], capture_output=True, text=True, check=True, cwd=cwd,
                          timeout=300).stdout


@pytest.mark.parametrize("seed", [0, 17, 2 ** 31 - 2, 2 ** 40 + 3, 2 ** 63 - 1])
def test_seeded_normal_draws_are_numpys(seed):
    n = 20000 if seed == 0 else 2000
    got = np.array(tool("rng", seed, n).split(), dtype=np.float64)
    want = np.random.default_rng(seed).standard_normal(n)
    assert got.shape == want.shape
    assert np.abs(got - want).max() < 1e-9


def pads(tmp: Path, kit: Path | None = None, *extra) -> list[np.ndarray]:
    tmp.mkdir(parents=True, exist_ok=True)
    tool("pads", MODEL, 44100, *([kit] if kit else []), *extra, cwd=tmp)
    return [np.fromfile(tmp / f"pad{i}.f32", dtype=np.float32) for i in range(11)]


@pytest.fixture(scope="module")
def engine():
    from neuraldrum.engine import Engine

    return Engine(threads=1)


def test_a_kit_from_neuraldrum_kit_plays_its_wavs(engine, tmp_path):
    from dataclasses import replace

    from neuraldrum.kit import Kit, new_kit, write_kit
    from neuraldrum.sampler import SamplerControls
    from neuraldrum.voice import Controls

    kit = new_kit(engine, seed=5)
    slots = list(kit.slots)  # a moved kick and a tuned, decayed, quieter snare: controls and sampler covered too
    slots[0] = replace(slots[0], voice=replace(slots[0].voice, controls=Controls(x=0.3, y=-0.7, range=5)))
    slots[1] = replace(slots[1], voice=replace(slots[1].voice, sampler=SamplerControls(tune=-2.5, decay=0.4,
                                                                                       velocity=90)))
    kit = Kit(slots, kit.name, kit.sample_rate, kit.model, kit.info)
    out = write_kit(engine, kit, tmp_path / "kit")
    got = pads(tmp_path / "plugin", out / "kit.json")
    for i, slot in enumerate(kit.slots):
        wav, rate = sf.read(out / f"{slot.name}.wav", dtype="float32")
        assert rate == 44100
        assert np.abs(got[i] - wav).max() < 1e-4, slot.name


def test_the_kit_the_plugin_saves_renders_the_same_with_the_cli(tmp_path):
    from neuraldrum import cli

    src = tmp_path / "src.json"
    src.write_text(json.dumps({"format": "neuraldrum-kit", "version": 1, "name": "k", "sample_rate": 44100,
                               "model": {}, "slots": [
                                   {"name": "kick", "note": 36, "voice": {"class": "kick", "seed": 123456789012}},
                                   {"name": "snare", "note": 38, "voice": {
                                       "class": "snare", "controls": {"x": -0.25, "y": 0.5, "fine": 0.1,
                                                                      "range": 10, "axes": "pca"},
                                       "amount": 0.3, "variation_seed": 9}}]}))
    got = pads(tmp_path / "plugin", src)
    saved = tmp_path / "plugin" / "kit.json"
    assert cli.main(["kit", "--from", str(saved), "-o", str(tmp_path / "cli")]) == 0
    kit = json.loads(saved.read_text())
    assert [s["voice"].get("seed") for s in kit["slots"][:2]] == [123456789012, None]
    for i, slot in enumerate(kit["slots"]):  # OpenVINO's graph against torch: up to ~2.2e-4 on the class centres
        wav, _ = sf.read(tmp_path / "cli" / f"{slot['name']}.wav", dtype="float32")
        assert np.abs(got[i] - wav).max() < 5e-4, slot["name"]


def test_humanise_renders_takes_around_the_pads_sound(engine, tmp_path):
    """A humanised pad keeps 4 takes: its sound, then z + 0.5 · humanise · default_rng(k).standard_normal(D)."""
    from neuraldrum.voice import Voice

    kit = {"format": "neuraldrum-kit", "version": 1, "name": "k", "model": {}, "info": {"humanise": [0.8, 0]},
           "slots": [{"name": "kick", "note": 36, "voice": {"class": "kick", "seed": 42}},
                     {"name": "snare", "note": 38, "voice": {"class": "snare", "seed": 43}}]}
    src = tmp_path / "kit.json"
    src.write_text(json.dumps(kit))
    got = pads(tmp_path / "plugin", src)
    z = engine.voice_z(Voice("kick", seed=42))
    for k in range(1, 4):
        take = np.fromfile(tmp_path / "plugin" / f"pad0_{k}.f32", dtype=np.float32)
        zk = z + 0.5 * 0.8 * np.random.default_rng(k).standard_normal(z.shape[0])
        want = engine.generate_batch(["kick"], zk[None].astype(np.float32))[0]
        assert np.abs(take - want).max() < 5e-4, k
        assert np.abs(take - got[0]).max() > 1e-2, k  # a take is not the pad's own sound
    assert not (tmp_path / "plugin" / "pad1_1.f32").exists()  # no takes without humanise
    saved = json.loads((tmp_path / "plugin" / "kit.json").read_text())
    assert saved["info"]["humanise"][:2] == [0.8, 0]


def test_load_sample_starts_a_pad_from_the_analyzers_latent(engine, tmp_path):
    """A 48 kHz stereo FLAC kick, late and longer than the model's second: read, mixed, resampled, onset-aligned,
    cut with the model's fade and encoded as the engine does, then decoded as the pad's sound."""
    rate = 48000
    t = np.arange(int(1.6 * rate)) / rate
    hit = np.sin(2 * np.pi * (50 * t + 80 * (1 - np.exp(-t / 0.03)))) * np.exp(-t / 0.4)
    x = np.concatenate([np.zeros(int(0.1 * rate)), hit])
    path = tmp_path / "my kick.flac"
    sf.write(path, np.stack([0.8 * x, 0.6 * x], axis=1), rate, subtype="PCM_24")
    got = pads(tmp_path / "plugin", None, "--sample", 2, path)
    e = engine.encode(str(path))
    slot = json.loads((tmp_path / "plugin" / "kit.json").read_text())["slots"][2]
    assert slot["voice"]["class"] == e.cls
    assert "seed" not in slot["voice"]
    assert np.abs(np.array(slot["voice"]["z"]) - e.z).max() < 1e-3
    want = engine.generate(e.cls, z=np.array(slot["voice"]["z"], np.float32))
    assert np.abs(got[2] - want).max() < 5e-4


def test_load_sample_refuses_a_file_that_is_not_audio_in_one_line(tmp_path):
    bad = tmp_path / "notes.wav"
    bad.write_text("not a sound")
    r = subprocess.run([str(TOOL), "pads", str(MODEL), "44100", "--sample", "0", str(bad)], capture_output=True,
                       text=True, cwd=tmp_path, timeout=300)
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and str(bad) in r.stderr and "unreadable" in r.stderr
