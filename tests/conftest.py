import json
import os

import numpy as np
import pytest
import torch

from helpers_corpus import write_corpus
from neuraldrum import cli
from neuraldrum.train.loop import train

# tests never use more threads than the CI machine has, and never a GPU
torch.set_num_threads(min(2, os.cpu_count() or 1))
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


# ---------------------------------------------------------------- a tiny trained bundle, shared by the end-to-end tests

@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    root = write_corpus(tmp_path_factory.mktemp("corpus"), per_class=4, val_per_class=2)
    rows = [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines()]
    for r in rows:  # the last clip of each class is the test split
        if r["id"].endswith("/3"):
            r["split"] = "test"
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


@pytest.fixture(scope="session")
def tiny_bundle(tiny_corpus, tmp_path_factory):
    d = tmp_path_factory.mktemp("runs")
    fast = {"val_every": 10, "ckpt_every": 10, "log_every": 5}
    train("wae", tiny_corpus, d / "wae", "tiny", steps=20, overrides=fast, progress=False)
    train("mcnn", tiny_corpus, d / "mcnn", "tiny", steps=20, overrides=fast, progress=False)
    assert cli.main(["classifier", "--data", str(tiny_corpus), "--out", str(d / "clf"), "--preset", "tiny",
                     "--epochs", "3", "--no-progress"]) == 0
    out = d / "bundle"
    assert cli.main(["bundle", "--wae", str(d / "wae"), "--mcnn", str(d / "mcnn"), "--classifier", str(d / "clf"),
                     "--data", str(tiny_corpus), "--out", str(out), "--per-class", "2", "--latency-runs", "5"]) == 0
    return out
