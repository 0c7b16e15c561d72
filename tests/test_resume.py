"""Resuming a run across a learning-rate cut: the optimiser, the plateau schedule and the loop state all
come back, so the resumed run is bit-identical to one that was never interrupted."""
import json

import pytest
import torch
from helpers_corpus import write_corpus

from neuraldrum.train.checkpoint import load_checkpoint
from neuraldrum.train.loop import train

LR = 0.1
# validate every step; patience 1: the second validation in a row without improvement halves the lr. A large
# lr makes the validation loss wobble, so cuts come within a few steps.
SCHEDULE = {"lr": LR, "val_every": 1, "ckpt_every": 100, "log_every": 1, "plateau_patience": 1,
            "plateau_factor": 0.5, "batch_size": 4, "val_max_clips": 4}
STEPS = 8


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus"), per_class=3)


def _records(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _by_step(run, kind):
    """{step: record} of the training ("train") or validation ("val") records, times left out."""
    out = {}
    for r in _records(run):
        if "event" in r or ("val/mcnn/loss" in r) != (kind == "val"):
            continue
        out[r["step"]] = {k: v for k, v in r.items() if not k.startswith("time/")}
    return out


def test_resume_across_a_learning_rate_cut_is_bit_identical(corpus, tmp_path):
    full, part = tmp_path / "full", tmp_path / "part"
    train("mcnn", corpus, full, "tiny", steps=STEPS, overrides=SCHEDULE, progress=False)
    val = _by_step(full, "val")
    assert sorted(val) == list(range(1, STEPS + 1))
    # the first cut: the step whose validation leaves the lr at LR / 2. With patience 1 it follows two
    # validations without improvement, the one before it included: stopping just before the cut, that
    # validation is in the checkpoint's schedule only (a fresh schedule would count the next one as its best)
    cut = min(s for s, r in val.items() if r["lr"] < LR)
    assert val[cut]["lr"] == LR / 2 and cut >= 3

    train("mcnn", corpus, part, "tiny", steps=cut - 1, overrides=SCHEDULE, progress=False)
    ck = load_checkpoint(part / "last.pt")
    assert ck["loop"]["step"] == cut - 1 and ck["scheduler"]["num_bad_epochs"] == 1
    assert ck["optimizer"]["param_groups"][0]["lr"] == LR
    r = train("mcnn", corpus, part, resume=True, steps=STEPS, progress=False)
    assert r["step"] == STEPS and r["stopped"] == "max_steps"

    # every record after the resume, training and validation, equals the uninterrupted run's, bit for bit
    for kind in ("train", "val"):
        a, b = _by_step(full, kind), _by_step(part, kind)
        assert sorted(a) == sorted(b) == list(range(1, STEPS + 1))
        for step in range(cut, STEPS + 1):
            assert a[step] == b[step], (kind, step)
    assert _by_step(part, "train")[cut + 1]["lr"] == LR / 2  # the step after the cut trains at the new lr
    fa, fb = load_checkpoint(full / "last.pt"), load_checkpoint(part / "last.pt")
    assert fa["loop"] == fb["loop"] and fa["scheduler"] == fb["scheduler"]
    for k, v in fa["model"].items():
        assert torch.equal(v, fb["model"][k]), k
    sa, sb = fa["optimizer"]["state"], fb["optimizer"]["state"]
    assert sa.keys() == sb.keys() and fa["optimizer"]["param_groups"] == fb["optimizer"]["param_groups"]
    for i in sa:
        for k in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(sa[i][k], sb[i][k]), (i, k)
