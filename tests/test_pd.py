"""The shipped Pure Data patch, for real: Debian's `pd`, headless, opens patches/neuraldrum.pd as an abstraction,
and the test drives it only through the patch's own named receives (class menu, x slider, length box). Its
`oscformat` → `netsend -u -b` reaches the running OSC server, the reply comes back through `netsend` and
`oscparse`, `soundfiler` loads the returned file into the patch's array, and the patch reports the sample
count, which must be that of the sound the controls asked for. Also: the Max patch is well formed."""
import json
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from helpers_bundle import random_bundle
from neuraldrum.control.osc_server import start_osc
from neuraldrum.engine import Engine
from neuraldrum.sampler import SamplerControls
from neuraldrum.voice import Controls, Voice

PATCHES = Path(__file__).resolve().parents[1] / "patches"
# quits Pd once the patch has loaded a sound of 11025 samples (0.5 s at 22 050 Hz): [r nd-loaded] → [sel 11025]
HARNESS = """#N canvas 0 0 300 200 10;
#X obj 10 10 neuraldrum;
#X obj 10 40 r nd-loaded;
#X obj 10 70 sel 11025;
#X obj 10 100 del 50;
#X msg 10 130 \\; pd quit;
#X connect 1 0 2 0;
#X connect 2 0 3 0;
#X connect 3 0 4 0;
"""


def test_pd_patch_drives_the_server_and_loads_the_sound(tmp_path):
    pd = shutil.which("pd") or shutil.which("puredata")
    if pd is None:
        pytest.skip("Pure Data is not installed (Debian: apt-get install puredata-core; scripts/setup.sh does it)")
    engine = Engine(random_bundle(tmp_path / "bundle"), warm=False)
    (tmp_path / "harness.pd").write_text(HARNESS)
    with start_osc(engine, port=0, out=tmp_path / "sounds") as server:
        port = server.address[1]
        cmd = [pd, "-nogui", "-noaudio", "-nomidi", "-stderr", "-path", str(PATCHES), "-open",
               str(tmp_path / "harness.pd"), "-send", f"nd-server 127.0.0.1 {port}",
               "-send", "nd-class symbol snare", "-send", "nd-x 0.25", "-send", "nd-length 0.5"]
        t = time.perf_counter()
        with open(tmp_path / "pd.log", "w") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        took = time.perf_counter() - t
        out = (tmp_path / "pd.log").read_text()
        assert proc.returncode == 0, f"pd did not quit by itself (no 0.5 s sound loaded); its output:\n{out}"
        loaded = [int(float(v)) for v in
                  [line.split(":")[1] for line in out.splitlines() if line.startswith("neuraldrum-loaded:")]]
        assert loaded and loaded[-1] == 11025, out
        assert "error" not in out.lower(), out
        print(f"Pd: started, sent 3 controls, loaded {loaded} samples, quit in {took:.2f} s")
        assert server.app.counts["sounds"] >= 1 and server.app.counts["errors"] == 0
    # the last file is the sound the patch's controls describe: snare, x = 0.25 (y, fine 0, range 2), 0.5 s
    last = sorted((tmp_path / "sounds").glob("nd_*.wav"))[-1]
    x, sr = sf.read(last, dtype="float32")
    want = engine.render([Voice("snare", controls=Controls(x=0.25), sampler=SamplerControls(length=0.5))])[0]
    assert sr == engine.sample_rate and len(x) == 11025 and np.abs(x - want).max() <= 1 / 32767


def test_max_patch_is_well_formed():
    p = json.loads((PATCHES / "neuraldrum.maxpat").read_text())["patcher"]
    boxes = {b["box"]["id"]: b["box"] for b in p["boxes"]}
    for line in p["lines"]:
        (src, out), (dst, inp) = line["patchline"]["source"], line["patchline"]["destination"]
        assert src in boxes and dst in boxes, line
        assert out < boxes[src]["numoutlets"] and inp < boxes[dst]["numinlets"], line
    texts = [b.get("text", "") for b in boxes.values()]
    for needed in ("udpsend 127.0.0.1 9000", "udpreceive 9001", "buffer~ nd-sample", "play~ nd-sample",
                   "/play $1 $2 $3 $4 range $5", "/reply 9001", "route /sound /error /encoded"):
        assert needed in texts, needed
    assert {"pictslider", "dial", "umenu", "ezdac~"} <= {b["maxclass"] for b in boxes.values()}
    menu = [b for b in boxes.values() if b["maxclass"] == "umenu"][0]
    assert [t for t in menu["items"] if t != ","] == ["kick", "snare", "clap", "hh_closed", "hh_open", "tom", "ride",
                                                     "crash", "rim", "cowbell", "shaker"]


def test_pd_patch_uses_vanilla_objects_only():
    """Every object box is a Pd vanilla object (no externals), and every connection names existing boxes."""
    vanilla = {"vradio", "hradio", "hsl", "vsl", "bng", "loadbang", "r", "s", "list", "msg", "netsend", "t", "sel",
               "pack", "moses", "oscformat", "oscparse", "route", "soundfiler", "print", "table", "tabplay~", "dac~",
               "openpanel"}
    lines = (PATCHES / "neuraldrum.pd").read_text().split(";\n")
    boxes = [ln for ln in lines if ln.startswith("#X ") and not ln.startswith("#X connect")]
    for ln in boxes:
        parts = ln.split()
        if parts[1] == "obj":
            assert parts[4] in vanilla, ln
    for ln in lines:
        if ln.startswith("#X connect"):
            a, _, b, _ = map(int, ln.split()[2:6])
            assert a < len(boxes) and b < len(boxes), ln


def test_pd_patch_plays_each_loaded_sound_from_its_start():
    """[r nd-loaded] carries the loaded sample count; a number into [tabplay~] means "start at that sample", i.e.
    at the end of the sound, so it played nothing until the preview button: the count goes through [t b] and
    tabplay~ gets a bang (play from the start)."""
    lines = (PATCHES / "neuraldrum.pd").read_text().split(";\n")
    boxes = [" ".join(ln.split()[4:]) for ln in lines if ln.startswith("#X ") and not ln.startswith("#X connect")]
    wires = {tuple(map(int, ln.split()[2:6])) for ln in lines if ln.startswith("#X connect")}
    loaded, play = boxes.index("r nd-loaded"), boxes.index("tabplay~ nd-sample")
    into_play = {(a, o) for a, o, b, i in wires if b == play and i == 0}
    assert (loaded, 0) not in into_play
    bang = [a for a, o in into_play if boxes[a] in ("t b", "trigger bang", "bang", "b") and (loaded, 0, a, 0) in wires]
    assert len(bang) == 1
