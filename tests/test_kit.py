"""Voices and kits as data: how a voice becomes a latent, JSON round trips, bit-for-bit remakes, refusals,
and the `kit` / `generate` verbs."""
import json

import numpy as np
import pytest

from neuraldrum import cli
from neuraldrum.audio.io import load
from neuraldrum.kit import DEFAULT_NOTES, Kit, Slot, load_kit, new_kit, write_kit
from neuraldrum.sampler import SamplerControls
from neuraldrum.voice import Controls, Voice, generate_voices


def test_voice_latent_follows_its_recipe(engine):
    D, pca = engine.latent_dim, engine.bundle.pca["snare"]
    mean = pca.mean.numpy()
    assert np.allclose(engine.voice_z(Voice("snare")), mean)  # no seed, no z: the class centre
    t = engine.prior_temperature()
    draw = t * np.random.default_rng(7).standard_normal((1, D))[0]
    assert np.allclose(engine.voice_z(Voice("snare", seed=7)), draw, atol=1e-6)
    assert np.allclose(engine.voice_z(Voice("snare", seed=7, temperature=0.0)), 0.0)
    up = engine.voice_z(Voice("snare", seed=7, controls=Controls(x=1.0, range=2.0)))  # controls move the draw
    assert np.allclose(up - draw, (pca.scales[0] * pca.components[0]).numpy(), atol=1e-5)
    z = tuple(float(i) / D for i in range(D))
    noise = 0.5 * np.random.default_rng(3).standard_normal(D)
    assert np.allclose(engine.voice_z(Voice("snare", z=z, amount=0.5, variation_seed=3)), np.array(z) + noise,
                       atol=1e-6)


def test_voice_validation_names_the_field():
    for bad, field in [(Voice("kick", seed=-1), "seed"), (Voice("kick", temperature=float("nan")), "temperature"),
                       (Voice("kick", z=(0.0, float("inf"))), r"z\[1\]"), (Voice("kick", amount=0.5), "variation_seed"),
                       (Voice("kick", controls=Controls(x=2.0)), "control x"),
                       (Voice("kick", controls=Controls(range=float("inf"))), "range"),
                       (Voice("kick", sampler=SamplerControls(tune=13.0)), "tune"), (Voice(True), "class"),
                       (Voice("kick", seed=True), "seed")]:
        with pytest.raises(ValueError, match=field):
            bad.validate()
    with pytest.raises(ValueError, match=r"voice: unknown field\(s\) \['colour'\]"):
        Voice.from_dict({"class": "kick", "colour": 1})


def test_voice_json_round_trip():
    v = Voice("hh_open", seed=3, temperature=0.7, controls=Controls(x=0.2, y=-0.4, fine=0.1, range=5.0, axes=(2, 7)),
              amount=0.3, variation_seed=11, sampler=SamplerControls(tune=-2.0, decay=0.3, velocity=80.0, length=0.5))
    d = json.loads(json.dumps(v.to_dict()))
    assert Voice.from_dict(d) == v and hash(Voice.from_dict(d)) == hash(v)
    assert Voice.from_dict({"class": "kick"}).to_dict() == {"class": "kick"}


def test_generate_voices_matches_the_old_verb():
    vs = generate_voices("kick", 3, seed=5)
    assert [v.seed for v in vs] == [5, 6, 7] and all(v.controls is None for v in vs)
    c = Controls(x=0.5)
    vs = generate_voices("kick", 3, seed=5, controls=c)
    assert vs[0] == Voice("kick", controls=c) and [v.variation_seed for v in vs[1:]] == [6, 7]
    assert all(v.amount == 0.3 for v in vs[1:])
    with pytest.raises(ValueError, match="at least one"):
        generate_voices("kick", 0, seed=1)


def test_kit_remakes_bit_for_bit_and_edits_one_slot(engine, tmp_path):
    kit = new_kit(engine, seed=3)
    assert [s.name for s in kit.slots] == engine.classes
    assert [s.note for s in kit.slots] == [DEFAULT_NOTES[c] for c in engine.classes]
    write_kit(engine, kit, tmp_path / "a")
    again = load_kit(tmp_path / "a")
    assert again.slots == kit.slots and again.model["sha256"] == engine.bundle.meta["weights"]["sha256"]
    write_kit(engine, again, tmp_path / "b")
    for s in kit.slots:
        assert (tmp_path / "a" / f"{s.name}.wav").read_bytes() == (tmp_path / "b" / f"{s.name}.wav").read_bytes()
    # edit one slot: only its file changes
    slots = list(kit.slots)
    slots[1] = Slot(slots[1].name, Voice(slots[1].voice.cls, seed=1, sampler=SamplerControls(velocity=64.0)), 38)
    write_kit(engine, Kit(slots, "edited"), tmp_path / "a")
    changed = [s.name for s in kit.slots
               if (tmp_path / "a" / f"{s.name}.wav").read_bytes() != (tmp_path / "b" / f"{s.name}.wav").read_bytes()]
    assert changed == [slots[1].name]
    quiet = load(tmp_path / "a" / f"{slots[1].name}.wav", engine.sample_rate)
    assert np.abs(quiet).max() == pytest.approx(0.8913 * (64 / 127) ** 2, abs=2e-4)


def test_kit_refusals(engine, tmp_path):
    kit = new_kit(engine, seed=0)
    user = tmp_path / "music"
    user.mkdir()
    (user / "song.wav").write_bytes(b"mine")
    with pytest.raises(FileExistsError, match="not a kit"):
        write_kit(engine, kit, user)
    assert (user / "song.wav").read_bytes() == b"mine" and len(list(user.iterdir())) == 1
    bad = kit.to_dict()
    bad["slots"][2]["voice"]["seed"] = "x"
    with pytest.raises(ValueError, match=r"slots\[2\].voice"):
        Kit.from_dict(bad)
    bad = kit.to_dict()
    bad["version"] = 7
    with pytest.raises(ValueError, match="version 7"):
        Kit.from_dict(bad)
    bad = kit.to_dict()
    bad["slots"][1]["name"] = bad["slots"][0]["name"]
    with pytest.raises(ValueError, match="unique"):
        Kit.from_dict(bad)
    with pytest.raises(ValueError, match="name"):
        Slot("../evil", Voice("kick")).validate()
    with pytest.raises(FileNotFoundError):
        load_kit(tmp_path / "nope")


def test_kit_from_neuraldrum_0_1_is_read(engine, tmp_path):
    z = [0.1] * engine.latent_dim
    (tmp_path / "kit.json").write_text(json.dumps({"kit_seed": 0, "temperature": 0.8, "sample_rate": 22050,
                                                   "model": {"sha256": "x"}, "sounds": [
                                                       {"class": "kick", "file": "kick.wav", "seed": 1, "z": z}]}))
    kit = load_kit(tmp_path)
    assert kit.slots[0].voice == Voice("kick", z=tuple(z)) and kit.slots[0].note == 36
    with pytest.warns(UserWarning, match="another model"):
        write_kit(engine, kit, tmp_path / "out")


def test_kit_and_generate_verbs(bundle_dir, tmp_path, capsys):
    m = ["--model", str(bundle_dir)]
    assert cli.main(["kit", "-o", str(tmp_path / "k"), "--seed", "2", "--json"] + m) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["format"] == "neuraldrum-kit" and len(printed["slots"]) == 11
    assert cli.main(["kit", "--from", str(tmp_path / "k" / "kit.json"), "-o", str(tmp_path / "k2")] + m) == 0
    assert (tmp_path / "k" / "tom.wav").read_bytes() == (tmp_path / "k2" / "tom.wav").read_bytes()
    assert cli.main(["generate", "snare", "-n", "2", "--seed", "4", "--tune", "12", "--length", "0.5", "--json",
                     "-o", str(tmp_path / "g")] + m) == 0
    files = json.loads(capsys.readouterr().out.split("\n", 1)[1])["files"]
    w = load(files[0]["file"], 22050)
    assert len(w) == 11025 and files[0]["voice"]["sampler"]["tune"] == 12.0 and files[1]["seed"] == 5
    assert cli.main(["generate", "snare", "--velocity", "0", "-o", str(tmp_path / "g")] + m) == 1
    assert "velocity" in capsys.readouterr().err
