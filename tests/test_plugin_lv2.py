"""The LV2 bundle (`make plugin`): Debian's lv2_validate passes it, lilv's lv2info reads it, and a real LV2 host
(plugin/tools/lv2host.cpp, on lilv) plays notes through it that sound as the Python engine's."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
# where `make plugin` builds (another build folder: NEURALDRUM_PLUGIN_BUILD)
BUILD = Path(os.environ.get("NEURALDRUM_PLUGIN_BUILD") or ROOT / "plugin" / "build" / "cmake")
LV2 = BUILD / "bin" / "neuraldrum.lv2"
HOST = BUILD / "neuraldrum-lv2-host"
URI = "https://github.com/neuraldrum/neuraldrum#instrument"
pytestmark = pytest.mark.skipif(not (LV2 / "manifest.ttl").is_file(), reason="the plugin is not built (make plugin)")


@pytest.fixture(scope="module")
def lv2_path(tmp_path_factory):
    """An LV2_PATH holding only this bundle (as ~/.lv2 would after copying it there)."""
    d = tmp_path_factory.mktemp("lv2")
    (d / "neuraldrum.lv2").symlink_to(LV2)
    return d


@pytest.mark.skipif(shutil.which("lv2_validate") is None, reason="lv2_validate (Debian lv2-dev) is not installed")
def test_lv2_validate_passes():
    ttl = sorted(str(p) for p in LV2.glob("*.ttl"))
    r = subprocess.run(["lv2_validate", *ttl], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Found 0 errors" in r.stdout + r.stderr, (r.stdout + r.stderr)[-2000:]


@pytest.mark.skipif(shutil.which("lv2info") is None, reason="lv2info (Debian lilv-utils) is not installed")
def test_lv2info_reads_the_bundle(lv2_path):
    r = subprocess.run(["lv2info", URI], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "LV2_PATH": str(lv2_path)})
    assert r.returncode == 0, r.stderr
    assert "Name:              neuraldrum" in r.stdout
    names = {line.split("Name:", 1)[1].strip() for line in r.stdout.splitlines() if line.strip().startswith("Name:")}
    assert {"kick x", "snare seed", "shaker level", "Latency"} <= names
    assert sum(n.endswith(" class") for n in names) == 11


@pytest.mark.skipif(not HOST.is_file(), reason="the LV2 test host was not built (liblilv-dev missing)")
def test_a_lilv_host_plays_notes_on_time(lv2_path, tmp_path):
    import soxr

    from neuraldrum.engine import Engine
    from neuraldrum.voice import Controls, Voice

    rate, out = 48000, tmp_path / "out.f32"
    subprocess.run([str(HOST), URI, str(rate), "2.5", str(out), "0.25:36:127", "1.25:42:64"], check=True,
                   capture_output=True, timeout=300, env={**os.environ, "LV2_PATH": str(lv2_path)})
    got = np.fromfile(out, dtype=np.float32)
    assert got.shape == (int(2.5 * rate),)
    engine = Engine(threads=1)
    for t, cls, gain in ((0.25, "kick", 1.0), (1.25, "hh_closed", (64 / 127) ** 2)):
        want = soxr.resample(engine.render([Voice(cls, controls=Controls())])[0], 44100, rate, quality="HQ") * gain
        start = int(t * rate)
        assert np.abs(got[start:start + len(want)] - want).max() < 1e-3, cls
    assert np.abs(got[:int(0.25 * rate)]).max() == 0.0
