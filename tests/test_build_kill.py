"""A corpus build killed with SIGKILL at any point leaves no half corpus and no debris once the next build has run,
and that build is byte for byte the uninterrupted one (``build.json``'s time stamp and duration aside).

The build runs in a child process that stops itself at a chosen point (a file appears, then it sleeps); the test
kills it there with SIGKILL, so the kill lands at a known step with no timing guesswork.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from neuraldrum.data.build import build_corpus
from neuraldrum.data.synth import write_sample_folder

CHILD = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from neuraldrum.data import build

    out, folder, stage, flag, seed = sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4]), int(sys.argv[5])

    def stop():  # tell the test where we are, then wait for its SIGKILL
        flag.write_text(str(os.getpid()))
        time.sleep(600)
        os._exit(3)

    def after(fn, when=lambda *a, **k: True):
        def wrapped(*a, **k):
            r = fn(*a, **k)
            if when(*a, **k):
                stop()
            return r
        return wrapped

    calls = []
    if stage == "loading":  # the fifth clip is prepared: nothing written yet
        build.prepare_clip = after(build.prepare_clip, lambda *a, **k: calls.append(1) or len(calls) == 5)
    elif stage == "audio written":  # the temp folder holds audio.npy
        build.atomic_save_npy = after(build.atomic_save_npy)
    elif stage == "inside build.json":  # a temp file inside the temp folder, half written
        real = Path.write_bytes

        def half(self, data):
            if ".build.json.tmp-" not in self.name:
                return real(self, data)
            real(self, data[: len(data) // 2])
            stop()

        Path.write_bytes = half
    elif stage == "between renames":  # the old corpus renamed aside, the new one not yet in
        os.rename = after(os.rename, lambda src, dst, *a, **k: ".old-" in os.fspath(dst))
    build.build_corpus(out, sources=(), folders=[folder], progress=False, seed=seed)
    os._exit(4)  # the stop was never reached
""")


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    root = tmp_path_factory.mktemp("samples")
    write_sample_folder(root, per_class=2, seed=3)
    return root


@pytest.fixture(scope="module")
def reference(samples, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "corpus"
    build_corpus(out, sources=(), folders=[samples], progress=False)
    return out


def _killed_build(out: Path, samples: Path, stage: str, seed: int = 0) -> None:
    flag = out.parent / "stopped.flag"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(out), str(samples), stage, str(flag), str(seed)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        while not flag.exists():  # the child reaches its stop (or dies: then its stderr says why)
            if child.poll() is not None:
                pytest.fail(f"the build ended before the {stage!r} stop (rc {child.returncode}): {child.stderr.read()}")
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.communicate()
    assert child.returncode == -signal.SIGKILL
    flag.unlink()


def _same_corpus(a: Path, b: Path) -> None:
    for name in ("audio.npy", "manifest.jsonl"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    info_a, info_b = (json.loads((d / "build.json").read_text()) for d in (a, b))
    for info in (info_a, info_b):
        del info["created"], info["build_seconds"]
    assert info_a == info_b


@pytest.mark.parametrize("stage", ["loading", "audio written", "inside build.json"])
def test_first_build_killed_then_rebuilt(tmp_path, samples, reference, stage):
    out = tmp_path / "corpus"
    _killed_build(out, samples, stage)
    assert not out.exists()  # never a half corpus
    build_corpus(out, sources=(), folders=[samples], progress=False)
    _same_corpus(out, reference)
    assert sorted(os.listdir(tmp_path)) == ["corpus"]  # the killed build's temp folder is gone


@pytest.mark.parametrize("stage", ["audio written", "between renames"])
def test_rebuild_killed_keeps_or_restores_the_old_corpus(tmp_path, samples, reference, stage):
    out = tmp_path / "corpus"
    build_corpus(out, sources=(), folders=[samples], progress=False, seed=1)  # an old corpus, another split
    old = tmp_path / "old-copy"
    shutil.copytree(out, old)
    _killed_build(out, samples, stage)
    debris = sorted(p for p in os.listdir(tmp_path) if p.startswith(".corpus."))
    assert debris and all(p.startswith((".corpus.tmp-", ".corpus.old-")) for p in debris)
    if stage == "between renames":
        assert not out.exists()  # killed between the two renames: the old corpus waits beside it
    else:
        _same_corpus(out, old)  # the old corpus is whole
    build_corpus(out, sources=(), folders=[samples], progress=False)
    _same_corpus(out, reference)
    assert sorted(os.listdir(tmp_path)) == ["corpus", "old-copy"]
