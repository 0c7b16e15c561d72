"""Training checkpoints without training: a checkpoint dict written and read back rebuilds the same models,
standardiser and front end; foreign, unknown and damaged files are refused; RNG states come back exactly."""
import json
import pickle
import random

import numpy as np
import pytest
import torch

from neuraldrum.audio.mel import MelFrontend
from neuraldrum.config import preset, to_dict
from neuraldrum.models import MCNN, ConditionalWAE
from neuraldrum.train.checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_KIND,
    CheckpointError,
    build_frontend_from_checkpoint,
    build_model_from_checkpoint,
    build_standardiser_from_checkpoint,
    checkpoint_configs,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)

P = preset("tiny")


def _ckpt(task: str) -> tuple:
    torch.manual_seed(3)
    model = ConditionalWAE(P.wae) if task == "wae" else MCNN(P.mcnn)
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.uniform_(0.5, 1.5)  # BatchNorm statistics too: nothing left at its initial value
    cfg = P.wae if task == "wae" else P.mcnn
    std = None
    if task == "wae":
        std = {"mean": torch.randn(32, 87), "std": torch.rand(32, 87) + 0.5, "eps": 0.01}
    return {"format": CHECKPOINT_FORMAT, "kind": CHECKPOINT_KIND, "task": task, "version": "test",
            "configs": {"audio": to_dict(P.audio), "mel": to_dict(P.mel), "model": to_dict(cfg),
                        "train": to_dict(P.train_wae)},
            "model": model.state_dict(), "standardiser": std}, model


def test_checkpoint_round_trip_rebuilds_the_saved_models(tmp_path):
    for task in ("wae", "mcnn"):
        ck, model = _ckpt(task)
        save_checkpoint(ck, tmp_path / task / "last.pt")  # the folder is created
        assert [p.name for p in (tmp_path / task).iterdir()] == ["last.pt"]  # no temporary file left
        back = load_checkpoint(tmp_path / task / "last.pt")
        rebuilt = build_model_from_checkpoint(back)
        assert type(rebuilt) is type(model) and not rebuilt.training
        for k, v in model.state_dict().items():
            assert torch.equal(rebuilt.state_dict()[k], v), (task, k)
        cfgs = checkpoint_configs(back)
        assert (cfgs["audio"], cfgs["mel"], cfgs["train"]) == (P.audio, P.mel, P.train_wae)
        assert cfgs["model"] == (P.wae if task == "wae" else P.mcnn)
    ck, _ = _ckpt("wae")
    st = build_standardiser_from_checkpoint(ck)
    assert torch.equal(st.mean, ck["standardiser"]["mean"]) and torch.equal(st.std, ck["standardiser"]["std"])
    assert st.eps == 0.01
    x = torch.randn(2, 32, 87)
    assert torch.allclose(st(x), (x - ck["standardiser"]["mean"]) / ck["standardiser"]["std"])
    fe = build_frontend_from_checkpoint(ck)
    assert isinstance(fe, MelFrontend) and fe.cfg == P.mel
    with pytest.raises(CheckpointError, match="a mcnn checkpoint holds no standardiser statistics"):
        build_standardiser_from_checkpoint(_ckpt("mcnn")[0])


def test_a_failed_save_keeps_the_old_checkpoint(tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint({"kind": CHECKPOINT_KIND, "n": 1}, path)
    before = path.read_bytes()
    with pytest.raises((AttributeError, pickle.PicklingError)):
        save_checkpoint({"kind": CHECKPOINT_KIND, "bad": lambda: 0}, path)  # a lambda cannot be pickled
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["last.pt"]


@pytest.mark.parametrize("change,message", [
    (lambda c: c.update(kind="other"), "not a neuraldrum checkpoint"),
    (lambda c: c.pop("kind"), "not a neuraldrum checkpoint"),
    (lambda c: c.update(format=CHECKPOINT_FORMAT + 1),
     f"checkpoint format {CHECKPOINT_FORMAT + 1}; this version reads {CHECKPOINT_FORMAT}"),
    (lambda c: c.pop("format"), "checkpoint format None"),
    (lambda c: c.update(task="gan"), "unknown task 'gan'"),
])
def test_foreign_or_unknown_checkpoints_are_refused(tmp_path, change, message):
    ck, _ = _ckpt("mcnn")
    change(ck)
    save_checkpoint(ck, tmp_path / "c.pt")
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(tmp_path / "c.pt")


def test_unreadable_and_missing_files(tmp_path):
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="list.pt: not a neuraldrum checkpoint"):
        load_checkpoint(tmp_path / "list.pt")
    (tmp_path / "junk.pt").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(CheckpointError, match=r"junk.pt: not a readable checkpoint \(\w+"):
        load_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(FileNotFoundError, match="nope.pt: no such checkpoint"):
        load_checkpoint(tmp_path / "nope.pt")


def test_pickled_objects_are_not_unpickled(tmp_path):
    torch.save({"kind": CHECKPOINT_KIND, "format": CHECKPOINT_FORMAT, "task": "wae", "x": random.Random(0)},
               tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "evil.pt")


def test_rng_state_round_trip(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    np.random.standard_normal()  # leaves a cached Gaussian in NumPy's state
    state = rng_state()
    save_checkpoint({"rng": state}, tmp_path / "rng.pt")
    expected = (random.random(), np.random.standard_normal(3).tolist(), torch.rand(3).tolist())
    random.seed(9)
    np.random.seed(9)
    torch.manual_seed(9)
    set_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True)["rng"])
    assert (random.random(), np.random.standard_normal(3).tolist(), torch.rand(3).tolist()) == expected
    # Python's state written as lists (as JSON would) is taken back as the tuples random.setstate needs
    state["python"] = json.loads(json.dumps(state["python"]))
    set_rng_state(state)
    assert random.random() == expected[0]
    assert state["cuda"] == [] or torch.cuda.is_available()
