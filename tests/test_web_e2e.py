"""End to end in real headless Chromium (Debian's ``chromium`` driven by Playwright's Python package).

Loads the page from a real server on loopback, drags the XY pad and checks in the page that sounds of the
right length arrived and played; uploads a WAV and sees its class; plays pads by mouse, keyboard and MIDI
messages; runs the sequencer; puts the pad's sound in a slot, downloads the kit zip and checks it; loads a
kit JSON back. Skips (with the reason) where Chromium or Playwright is missing; scripts/setup.sh installs both.
"""
import io
import json
import os
import re
import shutil
import threading
import time
import zipfile

import numpy as np
import pytest
import soundfile as sf

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (scripts/setup.sh installs it)")
CHROMIUM = os.environ.get("NEURALDRUM_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
if not CHROMIUM:
    pytest.skip("Debian's chromium is not installed (scripts/setup.sh installs it)", allow_module_level=True)

from helpers_bundle import random_bundle  # noqa: E402
from neuraldrum.engine import Engine  # noqa: E402
from neuraldrum.kit import Kit  # noqa: E402
from neuraldrum.voice import Voice  # noqa: E402
from neuraldrum.web import dragbench  # noqa: E402
from neuraldrum.web.server import bound_url, make_server  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    return Engine(random_bundle(tmp_path_factory.mktemp("e2e") / "bundle"), warm=False)


@pytest.fixture(scope="module")
def url(engine):
    srv = make_server(engine, port=0)
    th = threading.Thread(target=srv.run, daemon=True)
    th.start()
    end = time.monotonic() + 60  # only a guard against a hang: how fast it starts is not tested here
    while not srv.started and th.is_alive() and time.monotonic() < end:
        time.sleep(0.05)
    assert srv.started, "the server did not start"
    yield bound_url(srv)
    srv.should_exit = True
    th.join(10)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        try:
            b = p.chromium.launch(executable_path=CHROMIUM, args=["--autoplay-policy=no-user-gesture-required"])
        except Exception as e:  # a chromium that cannot start here (no sandbox support, …)
            pytest.skip(f"chromium at {CHROMIUM} does not start: {e}")
        yield b
        b.close()


@pytest.fixture
def page(browser, url):
    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    pg = ctx.new_page()
    errors = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(url)
    pg.wait_for_function("window.nd && window.nd.ready", timeout=30000)
    yield pg
    ctx.close()
    assert not errors, errors


def drag(page, steps=25):
    box = page.locator("#pad").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    for k in range(steps):
        page.mouse.move(box["x"] + box["width"] * (0.5 + 0.4 * k / steps), box["y"] + box["height"] * (0.5 - 0.3 * k / steps))
        page.wait_for_timeout(15)
    page.mouse.up()


def test_drag_the_pad_hear_sounds_of_the_right_length(page, engine):
    drag(page)
    page.wait_for_function("nd.received >= 3 && nd.ended >= 1", timeout=20000)
    nd = page.evaluate("({received: nd.received, played: nd.played, ended: nd.ended, lengths: nd.lengths, "
                       "latencies: nd.latencies, errors: nd.errors})")
    assert set(nd["lengths"]) == {engine.n_samples}, "every sound arrives whole"
    assert nd["played"] >= 3 and nd["ended"] >= 1 and not nd["errors"]
    assert len(nd["latencies"]) >= 2 and all(0 < ms < 10000 for ms in nd["latencies"])
    assert "p95" in page.locator("#latency").inner_text()
    x = float(page.locator("#x").input_value())
    assert 0.3 < x <= 1.0, "the pad moved the x slider"
    # keyboard: the pad moves with arrow keys
    page.locator("#pad").focus()
    before = page.evaluate("nd.received")
    page.keyboard.press("ArrowLeft")
    page.wait_for_function(f"nd.received > {before}", timeout=10000)


@pytest.fixture
def probed(browser, url):
    """A fresh page with the drag probe (requests, sounds, AudioBufferSourceNode.start, pad moves), kit loaded."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    pg = ctx.new_page()
    errors = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.add_init_script(dragbench.PROBE_JS)
    pg.goto(url)
    pg.wait_for_function("window.nd && nd.ready && ndKit.slots.every(s => s.buffer) && nd.pendingMoves === 0",
                         timeout=30000)
    yield pg
    ctx.close()
    assert not errors, errors


def test_a_drag_plays_every_sound_newer_than_the_last_played(probed):
    """At 60 moves a second the server answers many moves after a newer one was sent: each such sound is still
    played, as long as no newer sound was played before it; an older one never is. Counted outside the page:
    WebSocket replies against AudioBufferSourceNode.start (matched by their samples)."""
    pg = probed
    since = pg.evaluate("performance.now()")
    dragbench.drag(pg, rate_hz=60, seconds=1.5)
    pg.wait_for_function("nd.pendingMoves === 0", timeout=30000)
    probe = pg.evaluate("__probe")
    fresh = dragbench.fresh_replies(probe, since=since)
    played = dragbench.starts_matched(probe, since=since)
    replies = [r for r in probe["replies"] if r["stream"] == "pad" and r["t"] > since]
    assert len(fresh) >= 3 and None not in played
    assert [r["id"] for r in played] == [r["id"] for r in fresh], (len(replies), len(fresh), len(played))
    assert len(fresh) == len(replies) - sum(1 for r in replies if r not in fresh)


def test_the_latency_shown_is_every_moves_wait_for_its_sound(probed):
    """The header's p50/p95 count every move, from the move to the first sound played whose request left after
    it (its own, or a newer move's that replaced it): the same figures as the probe's timestamps give."""
    pg = probed
    dragbench.drag(pg, rate_hz=60, seconds=1.5)
    pg.wait_for_function("nd.pendingMoves === 0", timeout=30000)
    probe = pg.evaluate("__probe")
    lat = dragbench.move_latencies(probe)
    assert len(lat) == len(probe["moves"]) == pg.evaluate("nd.latencies.length") >= 20
    m = re.search(r"p50 (\d+) ms · p95 (\d+) ms \(last (\d+) moves\)", pg.locator("#latency").inner_text())
    assert m, pg.locator("#latency").inner_text()
    assert int(m.group(3)) == len(lat)
    for got, p in ((int(m.group(1)), 0.5), (int(m.group(2)), 0.95)):
        assert abs(got - dragbench.nearest_rank(lat, p)) <= 1.5, (got, p, sorted(lat))


def test_page_reads_both_sound_formats(page):
    """The page's decoder (net.js unpackSound) gives the samples Python's unpack_sound gives, for int16 and
    float32 messages."""
    from neuraldrum.web.live import pack_sound, unpack_sound

    w = (np.random.default_rng(1).standard_normal(333) * 0.2).astype(np.float32)
    for fmt in ("s16", "f32"):
        msg = pack_sound({"id": 9}, w, fmt=fmt)
        got = page.evaluate("async (b) => { const m = await import('/static/js/net.js');"
                            " const r = m.unpackSound(new Uint8Array(b).buffer);"
                            " return {id: r.header.id, s: Array.from(r.samples)}; }", list(msg))
        want = unpack_sound(msg)[1]
        assert got["id"] == 9 and np.allclose(np.float32(got["s"]), want, rtol=0, atol=1e-7), fmt


def test_upload_a_wav_shows_its_class_and_recentres(page, engine, tmp_path):
    t = np.arange(11025) / 22050
    f = tmp_path / "my kick.wav"
    sf.write(f, (np.exp(-t * 15) * np.sin(2 * np.pi * 55 * t)).astype(np.float32), 22050)
    want = engine.encode(sf.read(f, dtype="float32")[0]).cls
    before = page.evaluate("nd.received")
    page.set_input_files("#file", str(f))
    page.wait_for_function("document.querySelector('#upload-result').textContent.includes('my kick.wav:')", timeout=20000)
    assert f"my kick.wav: {want}" in page.locator("#upload-result").inner_text()
    assert page.locator("#cls").input_value() == want
    assert "your sound: my kick.wav" in page.locator("#start-label").inner_text()
    assert page.locator("#x").input_value() == "0" and page.locator("#probs span").count() == 15
    page.wait_for_function(f"nd.received > {before}", timeout=10000)  # you hear the model's version
    page.set_input_files("#file", {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hello" * 100})
    page.wait_for_function("nd.errors.length > 0", timeout=10000)
    assert "not an audio file" in page.locator("#message").inner_text()


def test_kit_pads_sequencer_zip_and_load(page, engine, tmp_path):
    page.wait_for_function("ndKit.slots.length === 11 && ndKit.slots.every(s => s.buffer)", timeout=30000)
    assert page.locator("#pads .pad").count() == 11
    page.locator("#pads .pad").nth(0).click()  # mouse
    page.locator("body").focus()
    page.keyboard.press("2")  # keyboard
    assert page.evaluate("ndKit.onMidi([0x99, 38, 100])") is True  # a GM snare note-on, channel 10
    assert page.evaluate("ndKit.onMidi([0x89, 38, 0])") is False  # note-off plays nothing
    assert page.evaluate("ndKit.stats.hits") == 3
    page.click("#seq-play")
    page.wait_for_function("ndKit.stats.hits > 4", timeout=20000)  # the default beat plays (a hang guard only)
    page.click("#seq-play")
    # put the pad's sound (moved, with a variation and tune) into slot 3 ("clap")
    page.select_option("#cls", "tom")
    drag(page, 10)
    page.locator("#tune").fill("3")
    page.locator("#amount").fill("0.3")
    page.locator("#pads .pad").nth(2).click()
    n = page.evaluate("ndKit.stats.rendered")
    page.click("#to-slot")
    page.wait_for_function(f"ndKit.stats.rendered > {n}", timeout=10000)
    with page.expect_download() as dl:
        page.click("#kit-zip")
    path = tmp_path / "kit.zip"
    dl.value.save_as(path)
    z = zipfile.ZipFile(path)
    assert {f"{c}.wav" for c in engine.classes} | {"kit.json", "kit.sfz"} == set(z.namelist())
    kit = Kit.from_dict(json.loads(z.read("kit.json")))
    v = kit.slots[2].voice
    assert kit.slots[2].name == "clap" and v.cls == "tom" and v.sampler.tune == 3 and v.amount == 0.3
    assert v.controls is not None and v.controls.x > 0
    x, sr = sf.read(io.BytesIO(z.read("clap.wav")))
    assert sr == engine.sample_rate and x.shape == (engine.n_samples,)
    assert "key=39" in z.read("kit.sfz").decode()
    # load a kit JSON back: two slots, renamed (its beat still names the old slots: refused, naming the field)
    d = json.loads(z.read("kit.json"))
    assert d["patterns"]["version"] == d["mixer"]["version"] == 1  # the zip's kit.json keeps the beat
    d["slots"] = [dict(d["slots"][0], name="boom"), dict(d["slots"][2], name="thing", note=60)]
    f = tmp_path / "small.json"
    f.write_text(json.dumps(d))
    page.set_input_files("#kit-file", str(f))
    page.wait_for_function("nd.errors.length > 0", timeout=10000)
    assert "kit.json: mixer.slots.kick: the kit has no slot of that name" in page.evaluate("nd.errors.at(-1)")
    del d["patterns"], d["mixer"]
    f.write_text(json.dumps(d))
    page.set_input_files("#kit-file", str(f))
    page.wait_for_function("document.querySelectorAll('#pads .pad').length === 2 && ndKit.slots.every(s => s.buffer)",
                           timeout=10000)
    assert page.locator("#pads .pad").nth(1).inner_text().startswith("thing")
    assert page.evaluate("ndKit.onMidi([0x90, 60, 127])") is True


def test_latent_map_hear_load_and_drop(page, engine, tmp_path):
    page.wait_for_function("nd.mapPoints === 40 * 11", timeout=20000)
    page.locator("#map").focus()
    page.keyboard.press("ArrowRight")  # the first point plays
    page.wait_for_function("document.querySelector('#map-tip').textContent.includes('click to load')")
    label = page.locator("#map-tip").inner_text().split(" — ")[0]
    before = page.evaluate("nd.received")
    page.keyboard.press("Enter")  # and loads into the pad
    page.wait_for_function(f"nd.received > {before}", timeout=10000)
    assert page.locator("#start-label").inner_text() == label
    assert page.locator("#cls").input_value() == label.split(" ")[0]
    t = np.arange(8000) / 22050
    b = io.BytesIO()
    sf.write(b, (np.exp(-t * 30) * np.sin(2 * np.pi * 900 * t)).astype(np.float32), 22050, format="WAV")
    page.evaluate("""([bytes, name]) => {
        const dt = new DataTransfer();
        dt.items.add(new File([new Uint8Array(bytes)], name, {type: "audio/wav"}));
        document.querySelector('#map').dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true}));
    }""", [list(b.getvalue()), "ping.wav"])
    page.wait_for_function("nd.mapPoints === 40 * 11 + 1", timeout=10000)
    assert "added 1" in page.locator("#map-tip").inner_text()


def test_phone_width_has_no_sideways_scroll(browser, url):
    """At phone width the XY pad and every kit pad are on the first screen, the sequencer's cells are finger-sized
    (its box scrolls sideways, the page does not)."""
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    pg = ctx.new_page()
    pg.goto(url)
    pg.wait_for_function("window.nd && window.nd.ready && ndKit.slots.length === 11", timeout=30000)
    assert pg.evaluate("document.documentElement.scrollWidth") <= 390
    box = pg.locator("#pad").bounding_box()
    assert box["width"] > 200 and box["y"] + box["height"] <= 844
    for k in range(11):
        b = pg.locator("#pads .pad").nth(k).bounding_box()
        assert b["y"] + b["height"] <= 844 and b["x"] >= 0 and b["x"] + b["width"] <= 390, (k, b)
    cell = pg.locator("#seq button").first.bounding_box()
    assert cell["width"] >= 36 and cell["height"] >= 36, cell
    ctx.close()


def test_the_selected_slot_and_the_focused_one_look_different(page):
    page.wait_for_function("ndKit.slots.length === 11")
    page.locator("#pads .pad").nth(0).click()
    page.locator("#pads .pad").nth(0).focus()
    page.keyboard.press("Tab")  # keyboard focus on slot 2, slot 1 stays selected
    style = ("(el) => { const s = getComputedStyle(el); return [s.outlineStyle, s.outlineColor, s.backgroundImage,"
             " s.borderColor, s.boxShadow]; }")
    sel, foc = (page.locator("#pads .pad").nth(k).evaluate(style) for k in (0, 1))
    plain = page.locator("#pads .pad").nth(2).evaluate(style)
    assert page.evaluate("document.activeElement === document.querySelectorAll('#pads .pad')[1]")
    assert sel != plain and foc != plain and sel != foc
    assert foc[0] == "dashed" and sel[0] == "none"  # focus: a dashed outline; selected: no outline,
    assert sel[2] != "none" and foc[2] == "none"  # but a filled tab of its own
    assert page.locator("#pads .pad").nth(0).get_attribute("aria-current") == "true"


CHOKE_PROBE = """
(() => {
  const srcs = (window.__srcs = []);
  const start = AudioBufferSourceNode.prototype.start, stop = AudioBufferSourceNode.prototype.stop;
  AudioBufferSourceNode.prototype.start = function (when = 0, ...a) { this.__t0 = when; srcs.push(this); return start.call(this, when, ...a); };
  AudioBufferSourceNode.prototype.stop = function (when = 0) { this.__t1 = when; return stop.call(this, when); };
})();
"""


def test_the_sequencer_chokes_a_ringing_open_hat(browser, url):
    """The default beat's open hat (step 15) is cut by the next closed hat (step 1 of the next bar): its source
    stops 3 ms after that closed hat starts, on the audio clock; a closed-hat sound in the snare slot chokes
    nothing (it plays as the snare)."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    pg = ctx.new_page()
    pg.add_init_script(CHOKE_PROBE)
    pg.goto(url)
    pg.wait_for_function("window.nd && nd.ready && ndKit.slots.length === 11 && ndKit.slots.every(s => s.buffer)",
                         timeout=30000)
    pg.fill("#tempo", "240")
    pg.evaluate("__srcs.length = 0")
    pg.click("#seq-play")
    pg.wait_for_function("ndKit.step >= 4 && __srcs.some(s => s.buffer === ndKit.slots[ndKit.slots.findIndex("
                         "x => x.name === 'hh_open')].buffer) && ndKit.stats.hits > 20", timeout=30000)
    pg.click("#seq-play")
    got = pg.evaluate("""() => { const idx = (n) => ndKit.slots.findIndex((s) => s.name === n);
        const of = (n) => __srcs.filter((s) => s.buffer === ndKit.slots[idx(n)].buffer).map((s) => [s.__t0, s.__t1 ?? null]);
        return {open: of('hh_open'), closed: of('hh_closed'), snare: of('snare')}; }""")
    closed = sorted(t0 for t0, _ in got["closed"])
    assert got["open"], "the open hat played"
    for t0, t1 in got["open"]:
        nxt = [c for c in closed if c > t0]
        if nxt:  # the next closed hat was scheduled: it cuts this open hat over 3 ms
            assert t1 is not None and abs(t1 - (nxt[0] + 0.003)) < 1e-6, (t0, t1, nxt[0])
    assert any(t1 is not None for _, t1 in got["open"])
    ctx.close()


def test_every_control_is_reachable_by_keyboard(page):
    seen = set()
    for _ in range(60):
        page.keyboard.press("Tab")
        seen.add(page.evaluate("document.activeElement.id || document.activeElement.className"))
    for id_ in ("cls", "random", "pad", "x", "fine", "amount", "direction", "play", "tune", "map", "kit-new", "seq-play"):
        assert id_ in seen, f"#{id_} is not reachable with Tab"


def test_pad_on_two_latent_dimensions(page):
    page.select_option("#axes", "dims")
    page.fill("#dim-i", "5")
    page.locator("#dim-i").dispatch_event("change")
    assert page.locator("#pad .ax").inner_text() == "z5 →" and page.locator("#fine").is_disabled()
    before = page.evaluate("nd.received")
    drag(page, 8)
    page.wait_for_function(f"nd.received > {before}", timeout=10000)
    assert not page.evaluate("nd.errors")


def test_a_still_pad_is_rendered_again_in_hifi(browser, engine, tmp_path):
    """With a hi-fi engine (``neuraldrum serve``), the pad's sound is rendered again in hi-fi once the pad is still,
    replacing the current sound (the badge says "hi-fi"); a move plays live again; the kit's slots come in hi-fi."""
    hi = Engine(engine.bundle, warm=False, hifi=2)
    srv = make_server(engine, port=0, kit_engine=lambda: hi)
    th = threading.Thread(target=srv.run, daemon=True)
    th.start()
    end = time.monotonic() + 60
    while not (srv.started and srv.config.loaded_app) and th.is_alive() and time.monotonic() < end:
        time.sleep(0.05)
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        pg = ctx.new_page()
        pg.goto(bound_url(srv))
        pg.wait_for_function("window.nd && window.nd.ready", timeout=30000)
        pg.wait_for_function("nd.hifi >= 1", timeout=20000)  # the first sound, still: its hi-fi comes first
        drag(pg, steps=10)
        pg.wait_for_function("nd.hifi >= 2 && nd.pendingMoves === 0", timeout=20000)
        assert pg.locator("#quality").inner_text() == "hi-fi"
        cur = pg.evaluate("nd.current")  # the current sound is now the hi-fi engine's (to 16-bit rounding)
        v = Voice.from_dict(cur["voice"])
        got, want_hi, want_lo = np.float32(cur["head"]), hi.render([v])[0][:2048], engine.render([v])[0][:2048]
        assert np.abs(got - want_hi).max() <= 2e-4 < np.abs(want_hi - want_lo).max()
        before = pg.evaluate("nd.received")
        pg.locator("#pad").focus()
        pg.keyboard.press("ArrowLeft")
        pg.wait_for_function(f"nd.received > {before}", timeout=10000)
        assert pg.locator("#quality").inner_text() in ("live", "hi-fi")  # (live at once, hi-fi 250 ms later)
        pg.wait_for_function("nd.hifi >= 3", timeout=20000)
        slots = len(engine.classes)  # the first kit: one slot a class, each rendered ahead
        pg.wait_for_function(f"ndKit.stats.rendered >= {slots}", timeout=30000)
        assert pg.evaluate("ndKit.stats.hifi") == pg.evaluate("ndKit.stats.rendered") >= slots
        assert not pg.evaluate("nd.errors")
    finally:
        ctx.close()
        srv.should_exit = True
        th.join(10)


def test_mixer_level_pan_mute_solo_choke_and_save_load(browser, url, tmp_path):
    """Each slot's level and pan reach its sound's gain and pan nodes; mute silences it, solo silences the others;
    a choke group set by hand (kick with snare) cuts; kit.json keeps the mixer and loads it back; a bad value is
    refused with the field named."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    pg = ctx.new_page()
    pg.add_init_script(CHOKE_PROBE)
    pg.goto(url)
    pg.wait_for_function("window.nd && nd.ready && ndKit.slots.length === 11 && ndKit.slots.every(s => s.buffer)",
                         timeout=30000)
    row = {n: k for k, n in enumerate(pg.evaluate("ndKit.slots.map(s => s.name)"))}
    kick, snare, hat = row["kick"], row["snare"], row["hh_closed"]
    pg.locator(f"#seq input.level >> nth={snare}").fill("0.5")
    pg.locator(f"#seq input.pan >> nth={snare}").fill("-1")
    assert pg.evaluate(f"ndKit.hit({snare}) && [ndKit.last.gainNode.gain.value, ndKit.last.panNode.pan.value]") == [0.5, -1]
    pg.locator(f"#seq button.mute >> nth={kick}").click()
    assert pg.evaluate(f"ndKit.hit({kick})") is False
    pg.locator(f"#seq button.mute >> nth={kick}").click()
    pg.locator(f"#seq button.solo >> nth={hat}").click()
    assert pg.evaluate(f"[ndKit.hit({kick}), ndKit.hit({hat})]") == [False, True]
    pg.locator(f"#seq button.solo >> nth={hat}").click()
    pg.locator(f"#seq select.choke >> nth={kick}").select_option("2")
    pg.locator(f"#seq select.choke >> nth={snare}").select_option("2")
    pg.evaluate("__srcs.length = 0")
    t = pg.evaluate(f"(() => {{ const t = ndKit.last.context.currentTime + 0.2; ndKit.hit({kick}, 1, t);"
                    f" ndKit.hit({snare}, 1, t + 0.1); return t; }})()")
    got = pg.evaluate("__srcs.map(s => [s.__t0, s.__t1 ?? null])")
    assert got[0][0] == pytest.approx(t) and got[0][1] == pytest.approx(t + 0.1 + 0.003)  # the kick, cut by the snare
    assert got[1][1] is None
    with pg.expect_download() as dl:
        pg.click("#kit-json")
    path = tmp_path / "kit.json"
    dl.value.save_as(path)
    d = json.loads(path.read_text())
    assert d["mixer"]["version"] == 1
    assert d["mixer"]["slots"]["snare"] == {"level": 0.5, "pan": -1, "mute": False, "solo": False, "choke": 2}
    assert d["mixer"]["slots"]["hh_open"]["choke"] == 1 and d["mixer"]["slots"]["tom"]["choke"] == 0
    Kit.from_dict(d)  # still a kit for `neuraldrum kit --from`
    pg.click("#kit-new")
    pg.wait_for_function(f"ndKit.mix[{snare}].level === 1", timeout=10000)
    pg.set_input_files("#kit-file", str(path))
    pg.wait_for_function(f"ndKit.mix[{snare}].level === 0.5 && ndKit.slots.every(s => s.buffer)", timeout=20000)
    assert pg.locator(f"#seq input.pan >> nth={snare}").input_value() == "-1"
    assert pg.locator(f"#seq select.choke >> nth={kick}").input_value() == "2"
    d["mixer"]["slots"]["snare"]["pan"] = 3
    path.write_text(json.dumps(d))
    pg.set_input_files("#kit-file", str(path))
    pg.wait_for_function("nd.errors.length > 0", timeout=10000)
    assert "mixer.slots.snare.pan: 3" in pg.evaluate("nd.errors.at(-1)")
    ctx.close()


def test_patterns_accents_32_steps_and_chain_survive_save_and_load(browser, url, tmp_path):
    """A step cycles hit → accent → off; 32 steps repeat the bar; pattern B starts as a copy of A; the chain plays
    A then B with each step's velocity as (v/127)²; kit.json keeps it all (in the format neuraldrum.beat reads)
    and load kit.json brings it back."""
    from neuraldrum.beat import check_patterns

    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    pg = ctx.new_page()
    pg.add_init_script(CHOKE_PROBE)
    pg.goto(url)
    pg.wait_for_function("window.nd && nd.ready && ndKit.slots.length === 11 && ndKit.slots.every(s => s.buffer)",
                         timeout=30000)
    names = pg.evaluate("ndKit.slots.map(s => s.name)")
    kick, snare = names.index("kick"), names.index("snare")
    cell = lambda k, i: pg.locator(f'#seq button[data-k="{k}"][data-i="{i}"]')  # noqa: E731
    cell(kick, 1).click()
    cell(kick, 1).click()
    assert cell(kick, 1).get_attribute("aria-label").endswith("accent")
    pg.select_option("#steps", "32")
    assert pg.locator(f'#seq button[data-k="{kick}"][data-i]').count() == 32
    assert cell(kick, 17).get_attribute("aria-label").endswith("accent")  # the bar repeated
    pg.locator("#pat-buttons button", has_text="B").click()
    pg.click("#seq-clear")
    cell(snare, 0).click()
    pg.fill("#chain", "a b")
    pg.locator("#chain").dispatch_event("change")
    with pg.expect_download() as dl:
        pg.click("#kit-json")
    path = tmp_path / "kit.json"
    dl.value.save_as(path)
    d = json.loads(path.read_text())
    p = check_patterns(d["patterns"], names)
    assert p["steps"] == 32 and p["chain"] == ["A", "B"] and p["tempo"] == 110
    assert p["patterns"]["A"]["kick"][1] == p["patterns"]["A"]["kick"][17] == 127
    assert p["patterns"]["B"]["snare"] == [100] + [0] * 31 and not any(p["patterns"]["B"]["kick"])
    pg.click("#kit-new")
    pg.select_option("#steps", "16")
    pg.wait_for_function("ndKit.beat.steps === 16")
    pg.set_input_files("#kit-file", str(path))
    pg.wait_for_function("ndKit.beat.steps === 32 && ndKit.slots.every(s => s.buffer)", timeout=20000)
    assert pg.evaluate("ndKit.toDict().patterns") == d["patterns"]
    assert pg.locator("#chain").input_value() == "A B"
    # play the chain: A's accent at full gain, its hits at (100/127)², then B's snare
    pg.fill("#tempo", "240")
    pg.evaluate("__srcs.length = 0")
    pg.click("#seq-play")
    pg.wait_for_function("ndKit.chainPos === 1 && ndKit.step > 2", timeout=30000)
    pg.click("#seq-play")
    got = pg.evaluate("__srcs.map(s => [ndKit.slots.findIndex(x => x.buffer === s.buffer), s.gainNode.gain.value])")
    gains = {round(g, 4) for k, g in got if k == kick}
    assert gains == {1.0, round((100 / 127) ** 2, 4)}
    assert [k for k, _ in got].count(snare) >= 1
    ctx.close()


def test_the_exported_beat_wav_is_neuraldrum_render_of_its_midi(browser, url, engine, tmp_path):
    """export beat MIDI: the chain's hits on the slots' GM notes, channel 10, swing as played, the steps' velocities
    (muted slots too: the mixer stays in kit.json); export beat WAV: the same samples `neuraldrum render --kit
    kit.json beat.mid` writes, the mixer applied (a panned slot makes it stereo, a muted one is silent)."""
    import mido

    from neuraldrum import cli

    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    pg = ctx.new_page()
    pg.goto(url)
    pg.wait_for_function("window.nd && nd.ready && ndKit.slots.length === 11 && ndKit.slots.every(s => s.buffer)",
                         timeout=30000)
    pg.fill("#chain", "A A")
    pg.locator("#chain").dispatch_event("change")
    pg.fill("#tempo", "150")
    pg.locator("#swing").fill("60")  # 20 ms late: a whole number of samples, as the sequencer's grid
    clap = pg.evaluate("ndKit.slots.findIndex(s => s.name === 'clap')")
    pg.locator(f"#seq button.mute >> nth={clap}").click()
    hat = pg.evaluate("ndKit.slots.findIndex(s => s.name === 'hh_closed')")
    pg.locator(f"#seq button.mute >> nth={hat}").click()
    kick = pg.evaluate("ndKit.slots.findIndex(s => s.name === 'kick')")
    pg.locator(f"#seq input.level >> nth={kick}").fill("0.6")
    pg.locator(f"#seq input.pan >> nth={kick}").fill("-0.7")
    snare = pg.evaluate("ndKit.slots.findIndex(s => s.name === 'snare')")
    pg.select_option(f"#seq select.choke >> nth={snare}", "1")  # the snare cuts the open hat ringing on
    bounce = pg.evaluate("ndKit.bounce().then(b => [b.sampleRate, Array.from(b.getChannelData(0)), "
                         "Array.from(b.getChannelData(1))])")
    got = {}
    for name, button in (("beat.mid", "#beat-mid"), ("beat.wav", "#beat-wav"), ("kit.json", "#kit-json")):
        with pg.expect_download(timeout=60000) as dl:
            pg.click(button)
        got[name] = tmp_path / name
        dl.value.save_as(got[name])
    ctx.close()
    mid = mido.MidiFile(str(got["beat.mid"]))
    assert mid.ticks_per_beat == 960 and round(mido.tempo2bpm(mid.tracks[0][0].tempo)) == 150
    t, on = 0, []
    for msg in mid.tracks[0]:
        t += msg.time
        if msg.type == "note_on":
            on.append((t, msg.note, msg.velocity, msg.channel))
    assert {c for *_, c in on} == {9} and 39 in {n for _, n, _, _ in on}  # channel 10; the muted clap's notes
    kicks = [tt for tt, n, _, _ in on if n == 36]
    assert kicks == [0, 7 * 240 + 48, 8 * 240, 16 * 240, 23 * 240 + 48, 24 * 240]  # steps 0, 7 (late: swing), 8
    assert {v for _, n, v, _ in on if n == 36} == {100}  # the step's velocity, not the level
    out = tmp_path / "render.wav"
    assert cli.main(["render", str(got["beat.mid"]), "-o", str(out), "--kit", str(got["kit.json"]),
                     "--model", str(engine.bundle.path)]) == 0
    a, sra = sf.read(got["beat.wav"], dtype="int16")
    b, srb = sf.read(out, dtype="int16")
    assert sra == srb and a.shape == b.shape and np.array_equal(a, b)
    assert a.ndim == 2 and a.shape[1] == 2 and np.abs(a).max() > 1000, "a stereo beat, not silence"
    # the kick plays alone for the first 0.3 s (the hats muted): left/right = cot((pan + 1)·π/4)
    seg = np.abs(a[:round(0.3 * sra)].astype(np.float64)).sum(axis=0)
    assert seg[0] / seg[1] == pytest.approx(1 / np.tan(0.3 * np.pi / 4), rel=0.01)
    # the page's own sequencer and mixer, bounced in Chromium (OfflineAudioContext), sound as the WAV: the same
    # mix but for the WAV's limiter (one gain for the whole song) and its 16 bits
    assert bounce[0] == sra
    page, wav = np.stack([bounce[1], bounce[2]], axis=1), a.astype(np.float64) / 32767
    assert len(page) >= len(wav) and np.abs(page[len(wav):]).max(initial=0) < 1e-4  # silence after the WAV ends
    page = page[:len(wav)]
    g = float((wav * page).sum() / (page * page).sum())
    assert g == pytest.approx(1, abs=2e-3) or np.abs(wav).max() == pytest.approx(0.891, abs=2e-3)
    err = np.linalg.norm(wav - g * page) / np.linalg.norm(wav)
    print(f"page bounce vs beat WAV: gain {g:.4f}, relative error {err:.2e}")
    assert err < 5e-3


def test_undo_redo_favourites_and_ab(page):
    """Undo brings back the sound before the last gesture exactly (the same voice, the same samples), redo the one
    after; a kept sound stays in the strip across a reload and loads back; A/B plays the kept sound, then the
    current one."""
    page.wait_for_function("nd.current && nd.pendingMoves === 0")
    before = page.evaluate("nd.current")
    page.locator("#x").fill("0.6")  # a gesture
    page.wait_for_function("nd.current && nd.current.voice.controls.x === 0.6 && nd.pendingMoves === 0")
    page.wait_for_timeout(500)
    page.select_option("#cls", "kick")  # another, after a pause
    page.wait_for_function("nd.current.voice.class === 'kick' && nd.pendingMoves === 0")
    after = page.evaluate("nd.current")
    page.click("#undo")
    page.wait_for_function("nd.current.voice.class !== 'kick'")
    mid = page.evaluate("nd.current")
    assert mid["voice"]["class"] == before["voice"]["class"] and mid["voice"]["controls"]["x"] == 0.6
    page.click("#undo")
    page.wait_for_function("nd.current.voice.controls.x === 0 && nd.pendingMoves === 0")
    got = page.evaluate("nd.current")
    assert got["voice"] == before["voice"] and got["head"] == before["head"]  # exactly the sound before
    assert page.locator("#undo").is_disabled()
    page.locator("body").focus()
    page.keyboard.press("Control+Shift+Z")
    page.keyboard.press("Control+Shift+Z")
    page.wait_for_function("nd.current.voice.class === 'kick' && nd.pendingMoves === 0")
    got = page.evaluate("nd.current")
    assert got["voice"] == after["voice"] and got["head"] == after["head"]
    page.click("#keep")
    assert page.locator("#favs .fav").all_inner_texts() == ["kick 1"]
    page.reload()
    page.wait_for_function("window.nd && nd.ready", timeout=30000)
    assert page.locator("#favs .fav").all_inner_texts() == ["kick 1"]
    page.locator("#favs .fav").first.click()
    page.wait_for_function("nd.current.voice.class === 'kick' && nd.pendingMoves === 0")
    assert page.evaluate("nd.current.voice") == after["voice"]
    page.select_option("#cls", "tom")
    page.click("#ab")
    page.wait_for_function("nd.ab.played === 1")
    assert page.locator("#ab-out").inner_text() == "hearing B: kick 1"
    page.click("#ab")
    page.wait_for_function("nd.ab.played === 2")
    assert page.locator("#ab-out").inner_text() == "hearing A: the current sound"
    page.locator("#favs .fav-x").first.click()
    assert page.locator("#favs .fav").count() == 0


def test_midi_learn_binds_a_knob_to_x_variation_and_a_slot_level(page):
    page.wait_for_function("ndKit.slots.length === 11 && nd.pendingMoves === 0")
    snare = page.evaluate("ndKit.slots.findIndex(s => s.name === 'snare')")
    for target, cc in (("x", 21), ("amount", 22), ("level:snare", 23)):
        page.select_option("#learn-target", target)
        page.click("#learn")
        assert "move a knob" in page.locator("#learn-out").inner_text()
        assert page.evaluate(f"ndKit.onMidi([0xB0, {cc}, 5])") is True  # the first knob moved: bound
    assert page.evaluate("nd.learned()") == {"21": "x", "22": "amount", "23": "level:snare"}
    before = page.evaluate("nd.received")
    assert page.evaluate("ndKit.onMidi([0xB1, 21, 127])") is True  # any channel
    assert page.locator("#x").input_value() == "1"
    page.wait_for_function(f"nd.received > {before}", timeout=10000)  # the knob is a move: a new sound
    page.evaluate("ndKit.onMidi([0xB0, 21, 64]); ndKit.onMidi([0xB0, 22, 127]); ndKit.onMidi([0xB0, 23, 0])")
    assert page.locator("#x").input_value() == "0" and page.locator("#amount").input_value() == "1.5"
    assert page.evaluate(f"ndKit.mix[{snare}].level") == 0
    assert page.locator(f"#seq input.level >> nth={snare}").input_value() == "0"
    assert page.evaluate("ndKit.onMidi([0xB0, 99, 10])") is False  # an unbound knob does nothing
    page.select_option("#learn-target", "y")  # learning y on CC 21 takes it from x
    page.click("#learn")
    page.evaluate("ndKit.onMidi([0xB0, 21, 0])")
    assert page.evaluate("nd.learned()")["21"] == "y"


def test_drag_the_sound_out_as_a_wav_file(page, engine):
    """Starting a drag on "drag out" hands Chromium a DownloadURL (type:name:url) whose file is the current sound
    as a 16-bit WAV."""
    page.wait_for_function("nd.current && nd.pendingMoves === 0")
    got = page.evaluate("""async () => {
        const dt = new DataTransfer();
        document.querySelector('#drag-out').dispatchEvent(new DragEvent('dragstart', {dataTransfer: dt, bubbles: true}));
        const d = dt.getData('DownloadURL'), url = d.split(':').slice(2).join(':');
        const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
        return {d, bytes: Array.from(bytes), head: Array.from(nd.current.head), cls: nd.current.voice.class}; }""")
    kind, name, url = got["d"].split(":", 2)
    assert kind == "audio/wav" and name == f"{got['cls']}.wav" and url.startswith("blob:")
    x, sr = sf.read(io.BytesIO(bytes(got["bytes"])), dtype="int16")
    assert sr == engine.sample_rate and x.shape == (engine.n_samples,)
    want = np.round(32767 * np.clip(np.float64(got["head"]), -1, 1))
    assert np.abs(x[:2048].astype(np.int64) - want).max() <= 1  # the samples, 16-bit
    assert np.abs(x).max() > 3000


def test_latent_map_one_class_zoom_pan_and_slots(page):
    page.wait_for_function("nd.mapPoints === 40 * 11 && nd.map.slots === 11", timeout=30000)
    assert page.evaluate("nd.map.shown") == 440
    page.select_option("#map-class", "kick")
    assert page.evaluate("nd.map.shown") == 40
    page.locator("#map").focus()
    page.keyboard.press("ArrowRight")  # walks the kick points only
    page.wait_for_function("document.querySelector('#map-tip').textContent.includes('click to load')")
    assert page.locator("#map-tip").inner_text().startswith("kick")
    box = page.locator("#map").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx, cy)
    page.mouse.wheel(0, -300)
    page.wait_for_function("nd.map.zoom > 2")
    w0 = page.evaluate("nd.map.window")
    label = page.locator("#start-label").inner_text()
    page.mouse.down()
    page.mouse.move(cx + 60, cy + 30, steps=5)
    page.mouse.up()
    w1 = page.evaluate("nd.map.window")
    assert w1[0] < w0[0] and w1[1] > w0[1], (w0, w1)  # dragged right and down: the window moved left and up
    assert page.locator("#start-label").inner_text() == label, "a drag pans; it does not load a point"
    page.keyboard.press("0")
    assert page.evaluate("nd.map.zoom") == 1
    page.click("#map-reset")
    page.select_option("#map-class", "all")
    assert page.evaluate("nd.map.shown") == 440
