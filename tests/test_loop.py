"""The training loop's bookkeeping on a few MCNN steps: what it refuses, what it logs, how a signal stops it and
how a resumed run rewrites its logs. (Bit-exact resume across a learning-rate cut: test_resume.py.)"""
import json
import os
import signal
import sys
import time
from datetime import datetime

import numpy as np
import pytest
from helpers_corpus import write_corpus

import neuraldrum
from neuraldrum.config import preset, to_dict
from neuraldrum.taxonomy import CLASSES
from neuraldrum.train import loop as loop_mod
from neuraldrum.train.checkpoint import load_checkpoint
from neuraldrum.train.loop import train
from neuraldrum.train.tasks import MCNNTask

FAST = {"val_every": 2, "ckpt_every": 100, "log_every": 1, "batch_size": 4, "val_max_clips": 4}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus"), per_class=3)


def _records(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_refusals(corpus, tmp_path):
    with pytest.raises(ValueError, match=r"unknown model 'gan'; choose from \['mcnn', 'vocos', 'vocos_gan', 'wae'\]"):
        train("gan", corpus, tmp_path / "r", "tiny", steps=1, progress=False)
    with pytest.raises(FileNotFoundError, match="last.pt: nothing to resume; start without --resume"):
        train("mcnn", corpus, tmp_path / "r", resume=True, steps=1, progress=False)
    train("mcnn", corpus, tmp_path / "r", "tiny", steps=1, overrides=FAST, progress=False)
    with pytest.raises(FileExistsError, match="last.pt exists; pass --resume to continue it, or choose another"):
        train("mcnn", corpus, tmp_path / "r", "tiny", steps=1, overrides=FAST, progress=False)
    with pytest.raises(ValueError, match="last.pt: a mcnn run, not wae"):
        train("wae", corpus, tmp_path / "r", resume=True, steps=2, progress=False)
    other = write_corpus(tmp_path / "short", classes=["kick", "snare"], per_class=2, n_samples=16000)
    with pytest.raises(ValueError, match="clips are 16000 samples at 22050 Hz, the model expects 22016 at 22050 Hz"):
        train("mcnn", other, tmp_path / "r2", "tiny", steps=1, overrides=FAST, progress=False)


def test_logs_and_records(corpus, tmp_path, capsys):
    run = tmp_path / "runs" / "run"  # parent folders are made too
    t0 = time.perf_counter()
    r = train("mcnn", corpus, run, "tiny", steps=5, overrides=FAST, seed=11, threads=1, augment=False,
              command="neuraldrum train mcnn …", progress=False)
    elapsed = time.perf_counter() - t0
    assert "train mcnn" not in capsys.readouterr().err  # no progress bar when asked for none
    assert r["step"] == 5 and r["stopped"] == "max_steps" and r["run"] == str(run) and r["rank"] == 0
    recs = _records(run)
    train_recs = [x for x in recs if "mcnn/loss" in x]
    val_recs = [x for x in recs if "val/mcnn/loss" in x]
    assert [x["step"] for x in train_recs] == [1, 2, 3, 4, 5]  # log_every 1
    assert [x["step"] for x in val_recs] == [2, 4]  # val_every 2
    for x in train_recs:
        assert x["lr"] == 1e-3 and x["time/step_s"] > 0 and np.isfinite(x["mcnn/loss"])
    assert sum(x["time/step_s"] for x in train_recs) < elapsed  # seconds per step, each step once
    best = min(x["val/mcnn/loss"] for x in val_recs)
    assert val_recs[-1]["best"] == best and r["best"] == best
    assert r["best_step"] == next(x["step"] for x in val_recs if x["val/mcnn/loss"] == best)
    assert recs[-1] == {"step": 5, "event": "max_steps", "best": best, "best_step": r["best_step"]}
    ck = load_checkpoint(run / "last.pt")  # the last step is saved even off the ckpt_every grid
    assert ck["loop"]["step"] == 5 and ck["loop"]["best"] == best and ck["metrics"] == \
        {k: v for k, v in val_recs[-1].items() if k.startswith("val/")}
    assert (ck["task"], ck["preset"], ck["classes"]) == ("mcnn", "tiny", list(CLASSES))
    assert set(ck["loop"]) == {"step", "best", "best_step", "bad"}
    assert ck["corpus"]["n_clips"] == 33 and ck["configs"]["model"] == to_dict(preset("tiny").mcnn)
    assert load_checkpoint(run / "best.pt")["loop"]["step"] == r["best_step"]
    t = ck["configs"]["train"]
    assert t["seed"] == 11 and not any(t["augment"][k] for k in ("pitch", "gain", "filter"))
    assert t["val_every"] == 2 and t["max_steps"] == 5
    cmd = json.loads((run / "command.json").read_text())
    assert cmd["command"] == "neuraldrum train mcnn …" and cmd["task"] == "mcnn" and cmd["preset"] == "tiny"
    assert cmd["start_step"] == 0 and cmd["world_size"] == 1 and cmd["device"] == "cpu"
    assert cmd["corpus"]["n_clips"] == 33 and cmd["data"] == str(corpus.resolve()) and "resumed" not in cmd
    assert cmd["out"] == str(run) and cmd["argv"] == sys.argv and cmd["version"] == neuraldrum.__version__
    assert datetime.fromisoformat(cmd["time"]).tzinfo is not None


def test_a_fresh_run_starts_a_fresh_record_and_shows_progress(corpus, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "command.json").write_text('{"command": "an earlier attempt that died before its first checkpoint"}')
    (run / "metrics.jsonl").write_text('{"step": 1, "mcnn/loss": 99.0}\n')
    train("mcnn", corpus, run, "tiny", steps=1, overrides=FAST)  # progress is shown by default
    assert "train mcnn" in capsys.readouterr().err
    cmd = json.loads((run / "command.json").read_text())
    assert "resumed" not in cmd and cmd["start_step"] == 0
    assert _records(run)[0].get("mcnn/loss") != 99.0  # the old attempt's records are gone


def test_checkpoints_every_ckpt_every_steps_and_at_the_end(corpus, tmp_path, monkeypatch):
    saved = []
    real = loop_mod.save_checkpoint
    monkeypatch.setattr(loop_mod, "save_checkpoint", lambda ck, path: (saved.append((path.name, ck["loop"]["step"])),
                                                                        real(ck, path)))
    train("mcnn", corpus, tmp_path / "run", "tiny", steps=5, progress=False,
          overrides=dict(FAST, ckpt_every=2, val_every=100))
    assert saved == [("last.pt", 2), ("last.pt", 4), ("last.pt", 5)]


def test_gradient_clipping_runs(corpus, tmp_path):
    r = train("mcnn", corpus, tmp_path / "run", "tiny", steps=1, overrides=dict(FAST, grad_clip=1e-3), progress=False)
    assert r["step"] == 1 and load_checkpoint(tmp_path / "run" / "last.pt")["configs"]["train"]["grad_clip"] == 1e-3


def test_each_model_gets_its_own_configs():
    for task in ("wae", "mcnn"):
        c = loop_mod._configs(task, "tiny", None, True, None)
        p = preset("tiny")
        assert c.model == (p.wae if task == "wae" else p.mcnn)
        assert c.train == (p.train_wae if task == "wae" else p.train_mcnn)


def test_records_past_the_checkpoint_are_dropped_on_resume(corpus, tmp_path):
    run = tmp_path / "run"
    train("mcnn", corpus, run, "tiny", steps=5, overrides=dict(FAST, ckpt_every=2), progress=False)
    # last.pt is at step 5; pretend the run died after step 4's checkpoint by restoring it as last.pt
    ck4 = run / "last.pt"
    train("mcnn", corpus, tmp_path / "ref", "tiny", steps=4, overrides=dict(FAST, ckpt_every=2), progress=False)
    os.replace(tmp_path / "ref" / "last.pt", ck4)
    train("mcnn", corpus, run, resume=True, steps=6, progress=False, command="again")
    steps = [x["step"] for x in _records(run) if "mcnn/loss" in x]
    assert steps == [1, 2, 3, 4, 5, 6]  # step 5's first record is gone, not doubled
    assert sum(1 for x in _records(run) if x.get("event")) == 1
    cmd = json.loads((run / "command.json").read_text())
    assert cmd["start_step"] == 0 and [x["start_step"] for x in cmd["resumed"]] == [4]
    assert cmd["resumed"][0]["command"] == "again"


class _Interrupted(MCNNTask):
    """SIGINT arrives during step 2 (as from Ctrl-C); a second one during step 3 would abort at once."""

    def train_step(self, step):
        if step == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return super().train_step(step)


def test_a_signal_saves_at_a_step_boundary_and_stops(corpus, tmp_path, monkeypatch):
    monkeypatch.setitem(loop_mod.TASKS, "mcnn", _Interrupted)
    before = signal.getsignal(signal.SIGINT)
    # a single process stops at the next step, not at the next log step (that is where DDP processes agree)
    r = train("mcnn", corpus, tmp_path / "run", "tiny", steps=6, overrides=dict(FAST, log_every=4), progress=False)
    assert r["stopped"] == "signal" and r["step"] == 2
    assert signal.getsignal(signal.SIGINT) is before  # the handlers are given back
    assert load_checkpoint(tmp_path / "run" / "last.pt")["loop"]["step"] == 2
    assert _records(tmp_path / "run")[-1]["event"] == "signal"
    monkeypatch.setitem(loop_mod.TASKS, "mcnn", MCNNTask)
    metrics = load_checkpoint(tmp_path / "run" / "last.pt")["metrics"]  # step 2's validation
    assert train("mcnn", corpus, tmp_path / "run", resume=True, steps=3, progress=False)["step"] == 3
    # step 3 has no validation: the checkpoint keeps the last one's metrics, carried over the resume
    assert load_checkpoint(tmp_path / "run" / "last.pt")["metrics"] == metrics and "val/mcnn/loss" in metrics


def test_a_second_signal_gives_up_at_once():
    with loop_mod._StopRequest() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.flag
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
