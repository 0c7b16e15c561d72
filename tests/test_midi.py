"""MIDI without devices: mido messages in, drum machine events and rendered audio out. The note map, velocity,
CCs, program changes, the hat choke, the mixer's sample-exact placement, offline rendering of type 0 and 1
files with tempo changes (against a mix computed by hand), the `render` verb, the live player fed messages and
pulled by an offline sound card (a CC re-renders with no dropout), and clear errors without a sound card or
MIDI port."""
import json
import sys
import threading
import time
import types
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf

mido = pytest.importorskip("mido")

from neuraldrum import cli  # noqa: E402
from neuraldrum.control.live import DeviceError, LivePlayer, audio_output, open_midi_input  # noqa: E402
from neuraldrum.control.midi import (DEFAULT_CC, TOM_STEPS, DrumMachine, Hit, Key, Render, SelectKit,  # noqa: E402
                                     cc_value, key_map, parse_cc_map)
from neuraldrum.control.mixer import Mixer  # noqa: E402
from neuraldrum.control.render import render_midi  # noqa: E402
from neuraldrum.kit import Kit, new_kit, render_kit  # noqa: E402
from neuraldrum.service import SoundService  # noqa: E402
from neuraldrum.voice import Controls, Voice  # noqa: E402

SR = 22050


@pytest.fixture(scope="module")
def kit(engine):
    return new_kit(engine, 3)


@pytest.fixture(scope="module")
def waves(engine, kit):
    return render_kit(engine, kit)


def note(n, velocity=100, channel=9, time=0):
    return mido.Message("note_on", note=n, velocity=velocity, channel=channel, time=time)


# ---------------------------------------------------------------- mapping, pure


def test_key_map_gm_notes_reach_the_kit(kit):
    keys = key_map(kit)
    slot = {s.name: k for k, s in enumerate(kit.slots)}
    assert keys[36] == Key(slot["kick"]) and keys[35] == Key(slot["kick"])
    assert keys[38] == keys[40] == Key(slot["snare"]) and keys[44] == Key(slot["hh_closed"])
    assert keys[46] == Key(slot["hh_open"]) and keys[54] == keys[82] == Key(slot["shaker"])
    for n, steps in TOM_STEPS.items():  # the tom slot is on 45; the other GM toms play it tuned
        assert keys[n] == Key(slot["tom"], steps)
    assert 60 not in keys and 127 not in keys  # hand drums and empty notes play nothing


def test_machine_events(kit):
    m = DrumMachine(kit, SR)
    k = [s.name for s in kit.slots].index("hh_open")
    [hit] = m.handle(note(46, 100))
    assert hit == Hit(Key(k), (100 / 127) ** 2, "hh_open", frozenset({"hh_open"}))
    assert m.handle(note(42))[0].chokes == frozenset({"hh_open"})  # a closed hat cuts the open one
    assert m.handle(note(38))[0].chokes == frozenset()
    assert m.handle(note(38, velocity=0)) == [] and m.handle(mido.Message("note_off", note=38, channel=9)) == []


def test_a_slot_chokes_by_its_role_not_its_sounds_class(kit):
    """A closed-hat sound put in the snare slot plays as the snare: it cuts no open hat."""
    k = [s.name for s in kit.slots].index("snare")
    hat = Voice("hh_closed", seed=5)
    slots = [replace(s, voice=hat) if i == k else s for i, s in enumerate(kit.slots)]
    m = DrumMachine(Kit(slots, kit.name, kit.sample_rate, kit.model, kit.info), SR)
    [hit] = m.handle(note(38))
    assert hit.key == Key(k) and hit.group == "snare" and hit.chokes == frozenset()
    assert m.handle(note(42))[0].chokes == frozenset({"hh_open"})
    assert m.handle(note(61)) == []  # no slot
    assert m.handle(mido.Message("program_change", program=5, channel=9)) == [SelectKit(5)]
    assert m.handle(mido.Message("pitchwheel", pitch=100, channel=9)) == []
    only10 = DrumMachine(kit, SR, channel=9)
    assert only10.handle(note(36, channel=0)) == [] and only10.handle(note(36, channel=9))


def test_cc_moves_the_last_hit_slot(kit):
    m = DrumMachine(kit, SR)
    assert m.handle(mido.Message("control_change", control=16, value=100, channel=9)) == []  # nothing hit yet
    m.handle(note(38))
    snare = [s.name for s in kit.slots].index("snare")
    [r] = m.handle(mido.Message("control_change", control=16, value=127, channel=9))
    assert isinstance(r, Render) and r.slot == snare and r.voice.controls == Controls(x=1.0)
    assert r.voice.seed == kit.slots[snare].voice.seed  # moves from the slot's own start
    [r2] = m.handle(mido.Message("control_change", control=18, value=0, channel=9))
    assert r2.voice.controls == Controls(x=1.0, fine=-1.0)
    assert m.handle(mido.Message("control_change", control=18, value=0, channel=9)) == []  # unchanged
    assert m.handle(mido.Message("control_change", control=7, value=0, channel=9)) == []  # not mapped
    assert m.set_wave(snare, r.voice, np.zeros(10)) is False  # stale: r2 is the slot's voice now
    assert m.set_wave(snare, r2.voice, np.ones(10)) is True and m.sound(Key(snare))[0] == 1.0


def test_cc_values_and_maps():
    assert (cc_value(0), cc_value(1), cc_value(64), cc_value(127)) == (-1.0, -1.0, 0.0, 1.0)
    assert parse_cc_map("x=1, y=2,fine=74") == {1: "x", 2: "y", 74: "fine"}
    assert parse_cc_map("x=16,y=17,fine=18") == DEFAULT_CC
    for bad in ("x=128", "z=3", "x=a", "x=1,y=1"):
        with pytest.raises(ValueError, match="--cc"):
            parse_cc_map(bad)


# ---------------------------------------------------------------- the mixer


def test_mixer_places_sounds_on_exact_samples_and_chokes():
    mix = Mixer(1000, fade_s=0.004)  # a 4-sample fade
    a, b = np.ones(20, np.float32), np.full(5, 2.0, np.float32)
    out = [mix.render(3)]
    mix.play(a, 0.5, group="hh_open")
    out.append(mix.render(7))
    mix.play(b, 1.0, group="hh_closed", chokes={"hh_open"})
    out.append(mix.render(10))
    y = np.concatenate(out)
    assert np.all(y[:3] == 0) and np.all(y[3:10] == 0.5)
    ramp = 0.5 * np.array([0.75, 0.5, 0.25, 0.0], np.float32)
    assert np.allclose(y[10:15], 2.0 + np.append(ramp, 0.0)) and np.all(y[15:] == 0)
    assert mix.active() == 0
    many = Mixer(1000, max_voices=2)
    for _ in range(3):
        many.play(np.ones(100, np.float32))
    many.render(50)
    assert many.active() == 2  # the oldest was faded out


# ---------------------------------------------------------------- offline rendering


def song(type_=1, events=((0, 36, 100), (480, 38, 64), (960, 42, 127), (1200, 46, 90), (1440, 42, 80)),
         tempo_change_at=960):
    """A GM drum song: (tick, note, velocity) on channel 10 at 120 bpm, then 60 bpm from ``tempo_change_at``;
    a piano note on channel 1 that must be ignored."""
    tempo = [(0, mido.MetaMessage("set_tempo", tempo=500000)),
             (tempo_change_at, mido.MetaMessage("set_tempo", tempo=1000000))]
    drums = [(t, note(n, v)) for t, n, v in events] + [(t + 10, mido.Message("note_off", note=n, channel=9))
                                                       for t, n, _ in events]
    drums.append((240, mido.Message("note_on", note=60, velocity=100, channel=0)))

    def track(items):
        tr, last = mido.MidiTrack(), 0
        for t, msg in sorted(items, key=lambda x: x[0]):
            tr.append(msg.copy(time=t - last))
            last = t
        return tr

    mid = mido.MidiFile(type=type_, ticks_per_beat=480)
    if type_ == 0:
        mid.tracks.append(track(tempo + drums))
    else:
        mid.tracks += [track(tempo), track(drums)]
    return mid


def seconds(tick, change=960):
    """Tick → seconds for song(): 0.5 s a beat, then 1 s a beat from ``change``."""
    return tick / 480 * 0.5 if tick <= change else change / 480 * 0.5 + (tick - change) / 480 * 1.0


def test_render_matches_a_mix_computed_by_hand(engine, kit, waves):
    r = render_midi(engine, song(1), [kit], limit=False)
    names = [s.name for s in kit.slots]
    hits = [(0, "kick", 100), (480, "snare", 64), (960, "hh_closed", 127), (1440, "hh_closed", 80)]
    want = np.zeros(len(r.audio), np.float32)
    for tick, name, v in hits:
        at = round(seconds(tick) * SR)
        w = waves[names.index(name)]
        want[at:at + len(w)] += (v / 127) ** 2 * w
    # the open hat (tick 1200) rings until the closed hat at 1440 chokes it over the 3 ms fade
    o_at, c_at = round(seconds(1200) * SR), round(seconds(1440) * SR)
    fade = round(0.003 * SR)
    w = waves[names.index("hh_open")][:c_at - o_at + fade] * (90 / 127) ** 2
    w[c_at - o_at:] *= np.linspace(1, 0, fade + 1, dtype=np.float32)[1:]
    want[o_at:o_at + len(w)] += w
    assert len(r.audio) == c_at + len(waves[names.index("hh_closed")])  # ends when the last sound ends
    assert np.allclose(r.audio, want, atol=1e-6)
    assert (r.notes, r.skipped_notes, r.gain) == (5, 0, 1.0)


def test_render_is_deterministic_and_type_0_equals_type_1(engine, kit):
    a = render_midi(engine, song(1), [kit])
    assert np.array_equal(a.audio, render_midi(engine, song(1), [kit]).audio)
    assert np.array_equal(a.audio, render_midi(engine, song(0), [kit]).audio)
    every = render_midi(engine, song(1), [kit], channel=None)  # the piano note on channel 1 has no slot
    assert every.skipped_notes == 1


def test_render_sample_rate_and_limit(engine, kit):
    r = render_midi(engine, song(1, events=((0, 36, 127), (960, 38, 127))), [kit], sample_rate=44100)
    onset = round(seconds(960) * 44100)
    kick_end = 2 * 22016  # the kick (at 0 s) lasts 22016 samples at 22 050 Hz: 44 032 at 44 100 Hz
    assert r.sample_rate == 44100 and np.abs(r.audio[kick_end - 50:kick_end]).max() > 0
    assert np.all(r.audio[kick_end:onset] == 0) and np.abs(r.audio[onset:onset + 50]).max() > 0
    loud = render_midi(engine, song(1, events=tuple((0, n, 127) for n in (36, 38, 42, 49, 51, 39))), [kit])
    assert loud.gain < 1.0 and np.abs(loud.audio).max() == pytest.approx(10 ** (-1 / 20), rel=1e-5)
    for bad in (0, 7999, 192001):  # (0 was taken for "the model's rate")
        with pytest.raises(ValueError, match=f"sample rate {bad} must be in 8000..192000"):
            render_midi(engine, song(1), [kit], sample_rate=bad)


def test_render_cc_and_program_change(engine):
    tr = mido.MidiTrack([note(38, 127), mido.Message("control_change", control=16, value=127, channel=9, time=480),
                         note(38, 127, time=0), mido.Message("program_change", program=7, channel=9, time=960),
                         note(38, 127, time=0)])
    mid = mido.MidiFile(type=0, ticks_per_beat=480)  # no tempo message: 120 bpm, so hits at 0, 0.5 and 1.5 s
    mid.tracks.append(tr)
    r = render_midi(engine, mid)  # no kit given: the kit of seed 0, then program 7 → the kit of seed 7
    k0, k7 = new_kit(engine, 0), new_kit(engine, 7)
    snare0 = k0.slots[[s.name for s in k0.slots].index("snare")].voice
    first = engine.render([snare0])[0]
    moved = engine.render([Voice("snare", seed=snare0.seed, temperature=snare0.temperature,
                                 controls=Controls(x=1.0))])[0]  # CC 16 = 127 moved the snare's pad to x = 1
    seven = render_kit(engine, k7)[[s.name for s in k7.slots].index("snare")]
    at1, at2 = round(0.5 * SR), round(1.5 * SR)
    want = np.zeros(at2 + len(seven), np.float32)
    want[:len(first)] += first
    want[at1:at1 + len(moved)] += moved
    want[at2:] += seven
    assert np.allclose(r.audio, want, atol=1e-6)
    assert r.kits == ["kit-0", "kit-7"] and r.renders == 1 and r.notes == 3


def test_type_2_and_junk_files_are_refused(engine, tmp_path):
    mid = mido.MidiFile(type=2)
    mid.tracks.append(mido.MidiTrack())
    mid.save(tmp_path / "t2.mid")
    with pytest.raises(ValueError, match="type 2"):
        render_midi(engine, tmp_path / "t2.mid")
    (tmp_path / "junk.mid").write_bytes(b"not midi at all")
    with pytest.raises(ValueError, match="not a readable MIDI file"):
        render_midi(engine, tmp_path / "junk.mid")


def test_render_verb(bundle_dir, engine, kit, tmp_path, capsys):
    song(1).save(tmp_path / "song.mid")
    kit.save(tmp_path / "kit.json")
    out = tmp_path / "song.wav"
    assert cli.main(["render", str(tmp_path / "song.mid"), "--kit", str(tmp_path / "kit.json"), "-o", str(out),
                     "--model", str(bundle_dir), "--sample-rate", "48000", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    x, sr = sf.read(out)
    assert sr == 48000 and len(x) == info["samples"] and info["notes"] == 5
    assert info["other_channels"] == {"1": 1}  # the piano note
    # nothing on the channel asked for: said, with where the notes are (it wrote a silent file without a word)
    assert cli.main(["render", str(tmp_path / "song.mid"), "-o", str(tmp_path / "ch2.wav"), "--channel", "2",
                     "--model", str(bundle_dir)]) == 0
    err = capsys.readouterr().err
    assert "no notes on channel 2" in err and "channel 1 (1), 10 (5)" in err and "--channel 10" in err
    assert cli.main(["render", str(tmp_path / "nope.mid"), "-o", str(out), "--model", str(bundle_dir)]) == 1
    capsys.readouterr()
    # an existing output is not replaced without --overwrite, the song itself never, and a WAV is named so
    before = out.read_bytes()
    for o, extra, words in [(out, [], "exists; pass --overwrite"), (tmp_path / "song.mid", ["--overwrite"],
                            "that is the MIDI file being rendered"), (tmp_path / "song.flac", [], "name it ….wav")]:
        assert cli.main(["render", str(tmp_path / "song.mid"), "-o", str(o), "--model", str(bundle_dir)] + extra) == 1
        assert words in capsys.readouterr().err
    assert out.read_bytes() == before and mido.MidiFile(str(tmp_path / "song.mid")).length > 0
    assert not (tmp_path / "song.flac").exists()
    assert cli.main(["render", str(tmp_path / "song.mid"), "--kit", str(tmp_path / "kit.json"), "-o", str(out),
                     "--model", str(bundle_dir), "--overwrite", "--channel", "all"]) == 0
    assert out.read_bytes() != before  # (the piano note plays too)
    capsys.readouterr()
    hifi = tmp_path / "song_hifi.wav"  # --hifi: the same notes, each sound the hi-fi engine's
    assert cli.main(["render", str(tmp_path / "song.mid"), "--kit", str(tmp_path / "kit.json"), "-o", str(hifi),
                     "--model", str(bundle_dir), "--hifi", "--float"]) == 0
    from neuraldrum.control.render import read_midi
    from neuraldrum.engine import Engine

    want = render_midi(Engine(bundle_dir, warm=False, hifi=True), read_midi(tmp_path / "song.mid"), [kit]).audio
    lo = render_midi(engine, read_midi(tmp_path / "song.mid"), [kit]).audio
    got = sf.read(hifi, dtype="float32")[0]
    assert got.shape == want.shape and np.abs(got - want).max() < 1e-5 < np.abs(want - lo).max()
    made_hifi = Kit(kit.slots, kit.name, kit.sample_rate, kit.model, {**kit.info, "hifi": 24})
    made_hifi.save(tmp_path / "kit_hifi.json")  # a kit made in hi-fi plays in hi-fi without --hifi
    assert cli.main(["render", str(tmp_path / "song.mid"), "--kit", str(tmp_path / "kit_hifi.json"), "-o",
                     str(tmp_path / "as_made.wav"), "--model", str(bundle_dir), "--float"]) == 0
    assert "rendering in hi-fi, as the kit was made" in capsys.readouterr().err
    assert np.abs(sf.read(tmp_path / "as_made.wav", dtype="float32")[0] - want).max() < 1e-5


# ---------------------------------------------------------------- live, without devices


class Gated:
    """The engine behind a gate that the test opens, to hold a re-render in progress."""

    def __init__(self, engine):
        self.engine, self.gate = engine, threading.Event()
        self.gate.set()

    def render(self, voices):
        assert self.gate.wait(10)
        return self.engine.render(voices)

    def __getattr__(self, name):
        return getattr(self.engine, name)


def test_live_player_plays_with_no_dropout_while_a_cc_renders(engine, kit):
    gated = Gated(engine)
    with SoundService(gated) as svc:
        player = LivePlayer(svc, [kit], sample_rate=SR).prepare()
        snare = [s.name for s in kit.slots].index("snare")
        old = player.machine.sound(Key(snare))
        card = np.zeros((256, 1), np.float32)

        def hit_and_pull():
            player.on_message(note(38, 127))
            player.callback(card, 256)
            y = card[:, 0].copy()
            player.mixer._voices.clear()  # next hit alone in the block
            return y

        assert np.allclose(hit_and_pull(), old[:256])
        gated.gate.clear()  # a re-render that takes its time
        player.on_message(mido.Message("control_change", control=16, value=127, channel=9))
        assert np.allclose(hit_and_pull(), old[:256])  # notes go on with the old sound: no dropout, no wait
        gated.gate.set()
        t = time.time()
        while player.counts["renders"] < 1 and time.time() - t < 10:
            time.sleep(0.01)
        new = engine.render([player.machine.voices[snare]])[0]
        assert np.allclose(hit_and_pull(), new[:256]) and not np.allclose(new[:256], old[:256])
        player.on_message(mido.Message("program_change", program=0, channel=9))  # kits[0 % 1]: the same kit
        assert player.counts["hits"] == 3 and not player.errors


def test_live_player_plays_kits_in_hifi_and_a_still_cc_render_again_in_hifi(engine, bundle_dir, kit):
    """With a hi-fi service the kit's slots are its renders; a control change plays live at once, and once the
    controls are still the slot is rendered again in hi-fi; a newer change in between wins over the older hi-fi."""
    from neuraldrum.engine import Engine

    hi = Engine(bundle_dir, warm=False, hifi=2)
    with SoundService(engine) as svc, SoundService(hi) as hsvc:
        player = LivePlayer(svc, [kit], sample_rate=SR, hifi=hsvc).prepare()
        player.HIFI_AFTER_S = 0.05
        snare = [s.name for s in kit.slots].index("snare")
        assert np.allclose(player.machine.sound(Key(snare)), hi.render([kit.slots[snare].voice])[0], atol=1e-5)
        player.on_message(note(38, 127))  # the last slot hit is the one CCs move
        player.on_message(mido.Message("control_change", control=16, value=127, channel=9))
        t = time.time()
        while player.counts["hifi_renders"] < 1 and time.time() - t < 10:
            time.sleep(0.01)
        voice = player.machine.voices[snare]
        assert player.counts["renders"] == 1 and player.counts["hifi_renders"] == 1
        assert np.allclose(player.machine.sound(Key(snare)), hi.render([voice])[0], atol=1e-5)
        assert not np.allclose(hi.render([voice])[0], engine.render([voice])[0], atol=1e-3)
        player.close()
        assert not player.errors


def test_no_sound_card_or_midi_port_is_said_clearly(monkeypatch, bundle_dir, capsys):
    class PortAudioError(Exception):
        pass

    def no_devices(device=None, kind=None):
        raise PortAudioError("Error querying device -1")

    fake_sd = types.SimpleNamespace(query_devices=no_devices, PortAudioError=PortAudioError)
    monkeypatch.setitem(sys.modules, "sounddevice", fake_sd)
    with pytest.raises(DeviceError, match="no audio output device"):
        audio_output()
    assert cli.main(["play", "--midi", "--model", str(bundle_dir)]) == 1
    assert "no audio output device" in capsys.readouterr().err

    fake_sd.query_devices = lambda device=None, kind=None: {"name": "fake", "max_output_channels": 2,
                                                             "default_samplerate": 48000.0}
    monkeypatch.setattr(mido, "get_input_names", lambda: [])
    assert cli.main(["play", "--midi", "--model", str(bundle_dir)]) == 1
    assert "no MIDI input ports" in capsys.readouterr().err
    monkeypatch.setattr(mido, "get_input_names", lambda: ["Pads:0", "Keys:1"])
    with pytest.raises(DeviceError, match="no MIDI input port 'Drums'; ports: Pads:0; Keys:1"):
        open_midi_input("Drums", False, print)
    assert cli.main(["play", "--list"]) == 0
    assert "MIDI inputs:" in capsys.readouterr().out
    assert cli.main(["play", "--model", str(bundle_dir)]) == 2


def test_virtual_port_when_rtmidi_offers_one(engine, kit):
    try:
        out = mido.open_output("neuraldrum-test-out", virtual=True)
    except Exception as e:
        pytest.skip(f"no virtual MIDI ports here ({type(e).__name__}: {str(e)[:80]})")
    with SoundService(engine) as svc:
        player = LivePlayer(svc, [kit]).prepare()
        inport = open_midi_input(None, True, player.on_message)
        try:
            names = [n for n in mido.get_output_names() if "neuraldrum" in n and "test" not in n]
            if not names:
                pytest.skip(f"the virtual input is not listed among the outputs: {mido.get_output_names()}")
            with mido.open_output(names[0]) as o:
                o.send(note(36))
            t = time.time()
            while player.counts["hits"] < 1 and time.time() - t < 5:
                time.sleep(0.01)
            assert player.counts["hits"] == 1
        finally:
            inport.close()
            out.close()


def test_render_with_the_kits_mixer_level_pan_mute_solo_and_choke_groups(engine, kit, waves):
    """A kit's mixer section: level is a gain, pan puts √2·cos θ, √2·sin θ (θ = (pan + 1)·π/4) on the left and
    right, a hit cuts the ringing sound of its choke group over the 3 ms fade, a muted slot is silent; no pan off
    the centre stays mono and equals the same mix without a mixer."""
    names = [s.name for s in kit.slots]
    mixer = {"version": 1, "slots": {"kick": {"level": 0.5, "pan": -0.5, "choke": 2},
                                     "snare": {"pan": 1.0, "choke": 2}, "hh_closed": {"mute": True}}}
    events = ((0, 36, 100), (480, 38, 64), (960, 42, 127))
    r = render_midi(engine, song(1, events=events), [kit], limit=False, mixers=[mixer])
    assert r.audio.ndim == 2 and r.audio.shape[1] == 2 and (r.notes, r.muted_notes) == (2, 1)
    k_at, s_at = round(seconds(0) * SR), round(seconds(480) * SR)
    fade = round(0.003 * SR)
    kick = waves[names.index("kick")][:s_at - k_at + fade] * 0.5 * (100 / 127) ** 2
    kick[s_at - k_at:] *= np.linspace(1, 0, fade + 1, dtype=np.float32)[1:]  # the snare (group 2) cuts it
    snare = waves[names.index("snare")] * (64 / 127) ** 2
    left, right = np.zeros(len(r.audio), np.float32), np.zeros(len(r.audio), np.float32)
    kl, kr = np.sqrt(2) * np.cos(np.pi / 8), np.sqrt(2) * np.sin(np.pi / 8)  # pan -0.5: θ = π/8
    left[k_at:k_at + len(kick)] += kl * kick
    right[k_at:k_at + len(kick)] += kr * kick
    right[s_at:s_at + len(snare)] += np.sqrt(2) * snare  # hard right: +3 dB on the right, nothing on the left
    assert len(r.audio) == s_at + len(snare)  # the muted closed hat adds nothing, not even length
    assert np.allclose(r.audio[:, 0], left, atol=1e-6) and np.allclose(r.audio[:, 1], right, atol=1e-6)
    # without the snare, the kick rings on: the ratio of the channels is the pan law's, the level halves it
    alone = render_midi(engine, song(1, events=events[:1]), [kit], limit=False, mixers=[mixer]).audio
    full = render_midi(engine, song(1, events=events[:1]), [kit], limit=False).audio
    i = int(np.argmax(np.abs(full)))
    assert alone[i, 0] / alone[i, 1] == pytest.approx(1 / np.tan(np.pi / 8), rel=1e-5)
    assert alone[i, 0] / full[i] == pytest.approx(0.5 * np.sqrt(2) * np.cos(np.pi / 8), rel=1e-5)
    # solo: only the soloed slot plays; centred, the song is mono and the same as no mixer for that slot
    solo = {"version": 1, "slots": {"snare": {"solo": True}}}
    a = render_midi(engine, song(1, events=events), [kit], limit=False, mixers=[solo])
    b = render_midi(engine, song(1, events=events[1:2]), [kit], limit=False)
    assert a.audio.ndim == 1 and a.muted_notes == 2 and np.array_equal(a.audio, b.audio)


def test_mixer_choke_groups_replace_the_hat_choke(engine, kit, waves):
    """With a mixer, a closed hat in no group lets the open hat ring; a kick in the hats' group cuts it. Without a
    mixer the closed hat chokes the open hat, as before."""
    hats = ((0, 46, 100), (480, 42, 100))
    names = [s.name for s in kit.slots]
    o = waves[names.index("hh_open")] * (100 / 127) ** 2
    at = round(seconds(480) * SR)
    free = render_midi(engine, song(1, events=hats), [kit], limit=False,
                       mixers=[{"version": 1, "slots": {"hh_closed": {"choke": 0}}}]).audio
    cut = render_midi(engine, song(1, events=hats), [kit], limit=False).audio
    assert np.allclose(free[at + 200:len(o)] - cut[at + 200:len(o)], o[at + 200:], atol=1e-6)
    kick = render_midi(engine, song(1, events=((0, 46, 100), (480, 36, 100))), [kit], limit=False,
                       mixers=[{"version": 1, "slots": {"kick": {"choke": 1}}}]).audio  # the open hat is in 1
    plain = render_midi(engine, song(1, events=((480, 36, 100),)), [kit], limit=False).audio
    assert np.allclose(kick[at + 200:len(plain)], plain[at + 200:], atol=1e-6)  # only the kick is left
    with pytest.raises(ValueError, match="mixer.slots.kick.pan"):
        render_midi(engine, song(1), [kit], mixers=[{"version": 1, "slots": {"kick": {"pan": 3}}}])


def test_render_verb_plays_the_mixer_of_kit_json(bundle_dir, engine, kit, tmp_path, capsys):
    """`neuraldrum render --kit kit.json` applies the kit.json's mixer section (a panned slot: a stereo file whose
    channels are those of render_midi with that mixer); a bad mixer is one line naming the file and field."""
    song(1).save(tmp_path / "song.mid")
    kit.save(tmp_path / "kit.json")
    d = json.loads((tmp_path / "kit.json").read_text())
    d["mixer"] = {"version": 1, "slots": {"kick": {"pan": 0.4, "level": 0.7}, "snare": {"mute": True}}}
    (tmp_path / "kit.json").write_text(json.dumps(d))
    out = tmp_path / "song.wav"
    assert cli.main(["render", str(tmp_path / "song.mid"), "--kit", str(tmp_path / "kit.json"), "-o", str(out),
                     "--model", str(bundle_dir), "--float", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["channels"] == 2 and info["muted_notes"] == 1 and info["notes"] == 4
    x, _ = sf.read(out, dtype="float32")
    want = render_midi(engine, song(1), [kit], mixers=[d["mixer"]]).audio
    assert x.shape == want.shape and np.allclose(x, want, atol=1e-6)
    d["mixer"]["slots"]["kick"]["pan"] = "left"
    (tmp_path / "kit.json").write_text(json.dumps(d))
    assert cli.main(["render", str(tmp_path / "song.mid"), "--kit", str(tmp_path / "kit.json"), "-o",
                     str(tmp_path / "bad.wav"), "--model", str(bundle_dir)]) == 1
    assert "kit.json: mixer.slots.kick.pan" in capsys.readouterr().err
