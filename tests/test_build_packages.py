"""The corpus reads only the Hydrogen kits of the Debian packages it names: a kit another package (Hydrogen's own
hydrogen-data) or a user put in the same folder is left out, said so, and read only when named; build.json lists
each kit read with its package, so the same command gives the same corpus on another machine."""
import json
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from neuraldrum.data import sources
from neuraldrum.data.build import build_corpus
from neuraldrum.data.sources import HYDROGEN_PACKAGES, OTHER_PACKAGE, hydrogen_kits
from neuraldrum.data.synth import synth

SR = 22050


def make_kit(folder, name, cls, seed):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for k in range(2):
        sf.write(folder / f"{cls}{k}.wav", 0.5 * synth(cls, rng=rng), SR)
    (folder / "drumkit.xml").write_text(
        f'<?xml version="1.0"?><drumkit_info xmlns="http://www.hydrogen-music.org/drumkit"><name>{name}</name>'
        "<instrumentList>" + "".join(f"<instrument><name>{cls.title()} {k}</name><filename>{cls}{k}.wav</filename>"
                                     "</instrument>" for k in range(2)) + "</instrumentList></drumkit_info>")


@pytest.fixture
def system(tmp_path, monkeypatch):
    """A drumkits folder holding a kit of hydrogen-drumkits (listed in a dpkg info folder) and one of another
    package (GMRockKit, as hydrogen-data installs it)."""
    root, info = tmp_path / "drumkits", tmp_path / "dpkg-info"
    make_kit(root / "Packaged", "Packaged Kit", "kick", 0)
    make_kit(root / "GMRockKit", "GMRockKit", "snare", 1)
    info.mkdir()
    (info / "hydrogen-drumkits.list").write_text(f"/.\n{root}\n{root}/Packaged\n{root}/Packaged/drumkit.xml\n")
    (info / "hydrogen-data.list").write_text(f"{root}/GMRockKit/drumkit.xml\n")
    monkeypatch.setattr(sources, "HYDROGEN_DIRS", (str(root),))
    monkeypatch.setattr(sources, "DPKG_INFO", str(info))
    monkeypatch.setattr(sources, "available_sources", lambda: {s: s == "hydrogen" for s in sources.ALL_SOURCES})
    return root


def test_only_the_named_packages_kits_are_read(system):
    found = []
    cands = list(hydrogen_kits([system], HYDROGEN_PACKAGES, found=found))
    read = {c.kit for c in cands if c.label is not None}
    assert read == {"Packaged Kit"}
    other = [c for c in cands if c.rule.startswith(OTHER_PACKAGE)]
    assert [c.kit for c in other] == ["GMRockKit"] and "--hydrogen-kit 'GMRockKit' reads it" in other[0].rule
    assert found == [{"kit": "Packaged", "folder": str(system / "Packaged"), "package": "hydrogen-drumkits"}]
    assert {c.kit for c in hydrogen_kits([system]) if c.label} == {"Packaged Kit", "GMRockKit"}  # a user's folder


def test_build_lists_the_kits_it_read_and_takes_others_only_when_named(system, tmp_path):
    info = build_corpus(tmp_path / "c1", sources=["hydrogen"], progress=False)
    assert info["hydrogen_kits"] == [{"kit": "Packaged", "folder": str(system / "Packaged"),
                                      "package": "hydrogen-drumkits"}]
    assert {json.loads(r)["kit"] for r in (tmp_path / "c1" / "manifest.jsonl").read_text().splitlines()} == \
        {"Packaged Kit"}
    assert [e["kit"] for e in info["exclusions"] if e["reason"] == OTHER_PACKAGE] == ["GMRockKit"]
    info = build_corpus(tmp_path / "c2", sources=["hydrogen"], progress=False, hydrogen_kits=["GMRockKit"])
    assert [k["kit"] for k in info["hydrogen_kits"]] == ["GMRockKit", "Packaged"]
    assert info["options"]["hydrogen_kits"] == ["GMRockKit"]
    assert {json.loads(r)["kit"] for r in (tmp_path / "c2" / "manifest.jsonl").read_text().splitlines()} == \
        {"Packaged Kit", "GMRockKit"}
    with pytest.raises(FileNotFoundError, match="--hydrogen-kit Nope: no such kit folder"):
        build_corpus(tmp_path / "c3", sources=["hydrogen"], progress=False, hydrogen_kits=["Nope"])


@pytest.mark.skipif(shutil.which("dpkg-query") is None or not any(sources.Path(d).is_dir()
                                                                   for d in sources.HYDROGEN_DIRS),
                    reason="no Debian package database or no Hydrogen kits here")
def test_this_machines_kits_are_those_dpkg_says_the_packages_installed():
    listed = set()
    for pkg in HYDROGEN_PACKAGES:
        r = subprocess.run(["dpkg-query", "-L", pkg], capture_output=True, text=True)
        listed |= {line.rsplit("/", 2)[-2] for line in r.stdout.splitlines() if line.endswith("/drumkit.xml")}
    found = []
    for _ in hydrogen_kits(sources.HYDROGEN_DIRS, HYDROGEN_PACKAGES, found=found):
        pass
    assert {k["kit"] for k in found} == listed
    assert {k["package"] for k in found} <= set(HYDROGEN_PACKAGES)
