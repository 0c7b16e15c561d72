import json
import os

# Tests never use a GPU: training picks one automatically, and GPU kernels would break the bit-identical resume
# tests. Set, not setdefault (which would keep a "0" that a GPU machine may export), and before torch is
# imported, because CUDA reads it once, when it initialises.
os.environ["CUDA_VISIBLE_DEVICES"] = ""
# live verbs export the model to ONNX once into a cache: in tests, a fresh one, never the user's ~/.cache
os.environ.setdefault("NEURALDRUM_CACHE", __import__("tempfile").mkdtemp(prefix="neuraldrum-test-cache-"))

import numpy as np
import pytest
import torch
from helpers_corpus import write_corpus

from neuraldrum import cli
from neuraldrum.train.loop import train

if torch.cuda.is_available():  # CUDA was initialised before this file ran (a plugin imported torch and used it)
    raise pytest.UsageError("tests must not see a GPU: run them with CUDA_VISIBLE_DEVICES= (empty)")
# and never more threads than the CI machine has
torch.set_num_threads(min(2, os.cpu_count() or 1))


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


# ---------------------------------------------------------------- a tiny random bundle (no training), shared read-only

@pytest.fixture(scope="session")
def bundle_dir(tmp_path_factory):
    from helpers_bundle import random_bundle

    return random_bundle(tmp_path_factory.mktemp("random") / "bundle")


@pytest.fixture(scope="session")
def engine(bundle_dir):
    from neuraldrum.engine import Engine

    return Engine(bundle_dir, warm=False)
