"""``kill -9`` of a training run, then ``--resume``: the run ends exactly where an uninterrupted one does.

Each run is the plain CLI command in its own process. The killed one carries a hook that stops it at a chosen
point and says so in a marker file; the test waits for the marker and sends SIGKILL, so the kill lands at the
same point every time whatever the machine's speed:

* ``save``: halfway through writing ``last.pt`` (half a checkpoint in its temp file, the previous
  ``last.pt`` intact, ``best.pt`` of this step already written);
* ``step``: between two checkpoints, after a step's metrics line went to ``metrics.jsonl``.

After ``--resume`` the final checkpoints (weights, optimiser, schedule, loop, RNG) and every metrics record
equal the uninterrupted run's bit for bit (CPU, one thread), and the run folder holds no temp debris.
"""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from helpers_corpus import write_corpus

from neuraldrum.train.checkpoint import load_checkpoint

STEPS = 4
TRAIN = ["--preset", "tiny", "--steps", str(STEPS), "--ckpt-every", "2", "--val-every", "2", "--log-every", "1"]
ENV = dict(os.environ, CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1")
HANG = 1800  # seconds: only stops a hung process; no speed limit (timings belong in the bench)
RUN_FILES = ["best.pt", "command.json", "last.pt", "metrics.jsonl"]

# the killed run: the CLI with a hook that blocks at KILL_MODE / KILL_AT after writing the marker KILL_READY
CHILD = r"""
import io, os, sys, threading
from pathlib import Path
import torch
from neuraldrum import cli
from neuraldrum.train import loop

mode, at, ready = os.environ["KILL_MODE"], int(os.environ["KILL_AT"]), Path(os.environ["KILL_READY"])

def block():
    ready.write_text(str(os.getpid()))
    threading.Event().wait()

if mode == "save":  # half of last.pt's bytes in its temp file, then stop
    real_save = torch.save
    def save(obj, f, *a, **k):
        if isinstance(obj, dict) and obj.get("loop", {}).get("step") == at and ".last.pt.tmp-" in str(f):
            buf = io.BytesIO()
            real_save(obj, buf, *a, **k)
            with open(f, "wb") as fh:
                fh.write(buf.getvalue()[: len(buf.getvalue()) // 2])
            block()
        return real_save(obj, f, *a, **k)
    torch.save = save
else:  # stop right after the training record of step KILL_AT reached metrics.jsonl
    real_write = loop.MetricsLog.write
    def write(self, rec):
        real_write(self, rec)
        if rec.get("step") == at and "lr" in rec and not any(k.startswith("val/") for k in rec):
            block()
    loop.MetricsLog.write = write
sys.exit(cli.main(sys.argv[1:]))
"""


def _train(args, **kw):
    cmd = [sys.executable, "-m", "neuraldrum", "train", *args, "--threads", "1", "--quiet"]
    proc = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=HANG, **kw)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus"), per_class=2)


@pytest.fixture(scope="module")
def uninterrupted(corpus, tmp_path_factory):
    """{task: run folder} of runs never interrupted, made once per task."""
    runs = {}

    def get(task):
        if task not in runs:
            runs[task] = tmp_path_factory.mktemp("full") / task
            _train([task, "--data", str(corpus), "--out", str(runs[task]), *TRAIN])
        return runs[task]
    return get


def _kill_at(task, corpus, run, mode, at, tmp_path):
    """Start the run with the hook, SIGKILL it once the hook says it has stopped at ``at``."""
    ready = tmp_path / "ready"
    env = dict(ENV, KILL_MODE=mode, KILL_AT=str(at), KILL_READY=str(ready))
    err = tmp_path / "child.err"
    with open(err, "w") as f:
        proc = subprocess.Popen([sys.executable, "-c", CHILD, "train", task, "--data", str(corpus), "--out", str(run),
                                 *TRAIN, "--threads", "1", "--quiet"], env=env, stdout=subprocess.DEVNULL, stderr=f)
    try:
        deadline = time.monotonic() + HANG
        while not ready.exists():  # polling for the marker; the interval is no assertion
            assert proc.poll() is None, f"the run ended before the kill point:\n{err.read_text()[-3000:]}"
            assert time.monotonic() < deadline, "the run hangs"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL


def _records(run):
    """metrics.jsonl without the timings."""
    return [{k: v for k, v in json.loads(ln).items() if not k.startswith("time/")}
            for ln in (run / "metrics.jsonl").read_text().splitlines()]


def _assert_same_tensors(a, b, where=""):
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for k in a:
            _assert_same_tensors(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same_tensors(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


@pytest.mark.slow
@pytest.mark.parametrize("task,mode,at", [("mcnn", "save", 4), ("wae", "step", 3)])
def test_kill_9_then_resume_equals_an_uninterrupted_run(corpus, uninterrupted, tmp_path, task, mode, at):
    full, run = uninterrupted(task), tmp_path / "run"
    _kill_at(task, corpus, run, mode, at, tmp_path)

    # what the kill left: last.pt of step 2, whole; for "save" (at the last step) half a checkpoint beside it, and
    # best.pt already the final one; for "step" a metrics record past the checkpoint
    assert load_checkpoint(run / "last.pt")["loop"]["step"] == 2
    debris = [p.name for p in run.iterdir() if p.name.startswith(".")]
    if mode == "save":
        assert len(debris) == 1 and debris[0].startswith(".last.pt.tmp-"), debris
        assert 0 < (run / debris[0]).stat().st_size < (run / "last.pt").stat().st_size
        _assert_same_tensors(load_checkpoint(full / "best.pt")["model"], load_checkpoint(run / "best.pt")["model"])
    else:
        assert debris == [] and _records(run)[-1]["step"] == at > 2

    _train([task, "--data", str(corpus), "--out", str(run), "--resume", "--steps", str(STEPS)])

    assert sorted(p.name for p in run.iterdir()) == sorted(p.name for p in full.iterdir()) == RUN_FILES
    assert _records(run) == _records(full)
    for name in ("last.pt", "best.pt"):
        a, b = load_checkpoint(full / name), load_checkpoint(run / name)
        for key in ("model", "optimizer", "scheduler", "loop", "standardiser", "rng", "metrics"):
            _assert_same_tensors(a.get(key), b.get(key), f"{name}:{key}")
