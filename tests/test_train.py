"""The training loop end to end on a tiny synthetic corpus: checkpoints, exact resume, DDP, the CLI."""
import json
import shutil
import os
import subprocess
import sys

import pytest
import torch

from helpers_corpus import write_corpus
from neuraldrum import cli
from neuraldrum.audio.mel import MelFrontend
from neuraldrum.models import MCNN, ConditionalWAE
from neuraldrum.train import (build_model_from_checkpoint, build_standardiser_from_checkpoint, checkpoint_configs,
                              load_checkpoint, save_checkpoint)
from neuraldrum.train.checkpoint import CheckpointError
from neuraldrum.train.loop import train

FAST = {"val_every": 4, "ckpt_every": 4, "log_every": 1}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    # 11 classes × (2 train + 1 val) clips
    return write_corpus(tmp_path_factory.mktemp("corpus"), per_class=3)


def records(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def losses_by_step(run, prefix):
    """{step: {key: value}} of the loss records (train and val) whose keys start with ``prefix``."""
    out = {}
    for r in records(run):
        vals = {k: v for k, v in r.items() if k.startswith(prefix) or k.startswith("val/" + prefix)}
        if vals:
            out.setdefault(r["step"], {}).update(vals)
    return out


@pytest.mark.parametrize("task", ["wae", "mcnn"])
def test_resume_gives_the_same_next_losses(corpus, tmp_path, task):
    full, part = tmp_path / "full", tmp_path / "part"
    train(task, corpus, full, "tiny", steps=8, overrides=FAST, progress=False)
    r1 = train(task, corpus, part, "tiny", steps=4, overrides=FAST, progress=False)
    assert r1["step"] == 4 and (part / "last.pt").is_file()
    with pytest.raises(FileExistsError):
        train(task, corpus, part, "tiny", steps=8, overrides=FAST, progress=False)
    r2 = train(task, corpus, part, resume=True, steps=8, progress=False)
    assert r2["step"] == 8
    a, b = losses_by_step(full, task), losses_by_step(part, task)
    assert sorted(a) == sorted(b) == list(range(1, 9))
    for step in range(5, 9):
        assert a[step] == b[step], step  # bit-identical, not just close
    sa, sb = load_checkpoint(full / "last.pt")["model"], load_checkpoint(part / "last.pt")["model"]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    cmd = json.loads((part / "command.json").read_text())
    assert cmd["corpus"]["n_clips"] == 33 and cmd["resumed"][0]["start_step"] == 4


def test_checkpoint_rebuilds_identical_models(corpus, tmp_path):
    train("wae", corpus, tmp_path / "wae", "tiny", steps=3, overrides=FAST, progress=False)
    train("mcnn", corpus, tmp_path / "mcnn", "tiny", steps=3, overrides=FAST, progress=False)
    ck = load_checkpoint(tmp_path / "wae" / "last.pt")
    assert ck["task"] == "wae" and ck["loop"]["step"] == 3 and ck["configs"]["model"]["n_mels"] == 32
    wae = build_model_from_checkpoint(ck)
    assert isinstance(wae, ConditionalWAE) and not wae.training
    std = build_standardiser_from_checkpoint(ck)
    cfgs = checkpoint_configs(ck)
    x = torch.randn(3, cfgs["model"].n_mels, cfgs["model"].n_frames)
    cls = torch.tensor([0, 4, 9])
    save_checkpoint(ck, tmp_path / "copy.pt")
    again = build_model_from_checkpoint(load_checkpoint(tmp_path / "copy.pt"))
    with torch.no_grad():
        assert torch.equal(wae(x, cls)[0], again(x, cls)[0])
    assert torch.equal(std.mean, load_checkpoint(tmp_path / "copy.pt")["standardiser"]["mean"])
    # the standardiser is the train split's statistics of the log-Mel (no augmentation)
    fe = MelFrontend(cfgs["mel"])
    assert std.mean.shape == (32, 87) and float(std.std.min()) >= 0.1 and torch.isfinite(fe.log(std.mean)).all()

    ck = load_checkpoint(tmp_path / "mcnn" / "last.pt")
    mcnn = build_model_from_checkpoint(ck)
    assert isinstance(mcnn, MCNN) and ck["standardiser"] is None
    fresh = MCNN(checkpoint_configs(ck)["model"])
    fresh.load_state_dict(ck["model"])
    mel = torch.rand(2, 32, 87)
    with torch.no_grad():
        assert torch.equal(mcnn.infer(mel), fresh.infer(mel))


def test_checkpoint_loading_refuses_foreign_files(tmp_path):
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a neuraldrum checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")


def test_early_stopping_without_progress(corpus, tmp_path):
    # lr = 0 and no BatchNorm (MCNN): validation never improves after the first, so patience 2 stops at step 3
    r = train("mcnn", corpus, tmp_path / "run", "tiny", steps=50, progress=False,
              overrides={"lr": 0.0, "val_every": 1, "ckpt_every": 100, "early_stop_patience": 2})
    assert r["stopped"] == "early_stop" and r["step"] == 3 and r["best_step"] == 1
    assert load_checkpoint(tmp_path / "run" / "last.pt")["loop"]["bad"] == 2
    assert (tmp_path / "run" / "best.pt").is_file()


@pytest.mark.slow
def test_ddp_two_cpu_processes_under_torchrun(corpus, tmp_path):
    """The plain CLI command under torchrun: 2 processes, DDP over gloo, only rank 0 writes."""
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "neuraldrum", "train", "wae", "--data", str(corpus), "--out", str(out), "--preset", "tiny",
           "--steps", "4", "--val-every", "2", "--log-every", "1", "--quiet"]
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1")
    # the timeout only stops a hung process group; it is no speed limit (timings belong in the bench)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("stopped at step 4") == 1  # rank 0 speaks
    recs = records(out)  # one record per step, not one per process
    assert [r["step"] for r in recs if "wae/loss" in r] == [1, 2, 3, 4]
    assert json.loads((out / "command.json").read_text())["world_size"] == 2
    assert load_checkpoint(out / "last.pt")["loop"]["step"] == 4


def test_cli_train_runs_in_process(corpus, tmp_path, capsys):
    run = tmp_path / "run"
    base = ["train", "wae", "--data", str(corpus), "--out", str(run), "--preset", "tiny", "--quiet"]
    assert cli.main(base + ["--steps", "3", "--val-every", "3", "--seed", "7", "--no-augment"]) == 0
    assert "stopped at step 3" in capsys.readouterr().out
    assert {"last.pt", "best.pt", "metrics.jsonl", "command.json"} <= {p.name for p in run.iterdir()}
    cmd = json.loads((run / "command.json").read_text())
    assert cmd["command"].startswith("neuraldrum train wae --data") and "--no-augment" in cmd["command"]
    assert cmd["corpus"]["counts"]["kick"] == {"train": 2, "val": 1, "test": 0}
    keys = set().union(*records(run))
    assert {"wae/mse", "wae/mmd", "wae/loss", "val/wae/mse", "val/wae/loss", "lr"} <= keys
    ck = load_checkpoint(run / "last.pt")
    assert ck["configs"]["train"]["seed"] == 7 and not ck["configs"]["train"]["augment"]["pitch"]
    for bad in ("0", "-3"):  # (-3 ran; 0 left a run folder with no checkpoint)
        assert cli.main([a if a != str(run) else str(tmp_path / "bad") for a in base] + ["--steps", bad]) == 1
        assert f"--steps {bad}: train until a step ≥ 1" in capsys.readouterr().err and not (tmp_path / "bad").exists()
    assert cli.main(base + ["--steps", "3"]) == 1  # refuses to overwrite a run
    assert "--resume" in capsys.readouterr().err
    other = [a if a != "tiny" else "cpu" for a in base]
    assert cli.main(other + ["--steps", "5", "--resume"]) == 1  # a resumed run keeps its preset
    assert "--preset: cannot change on --resume" in capsys.readouterr().err
    assert cli.main(base + ["--steps", "4", "--resume"]) == 0  # the same one may be said again (the README's + --resume)
    assert load_checkpoint(run / "last.pt")["loop"]["step"] == 4
    base.remove("tiny")
    base.remove("--preset")
    assert cli.main(base + ["--steps", "5", "--resume"]) == 0
    assert load_checkpoint(run / "last.pt")["loop"]["step"] == 5
    assert cli.main(["train", "mcnn", "--data", str(corpus), "--out", str(run), "--resume", "--quiet"]) == 1


def test_cli_synthetic_share_is_recorded_checked_and_fixed_on_resume(corpus, tmp_path, capsys):
    run = tmp_path / "run"
    base = ["train", "mcnn", "--data", str(corpus), "--out", str(run), "--quiet"]
    assert cli.main(base + ["--preset", "tiny", "--steps", "2", "--synthetic-share", "1.5"]) == 1
    assert "--synthetic-share 1.5" in capsys.readouterr().err
    with pytest.warns(UserWarning, match="no synthesised clips"):  # this corpus has none
        assert cli.main(base + ["--preset", "tiny", "--steps", "2", "--synthetic-share", "0.25"]) == 0
    assert "--synthetic-share 0.25" in json.loads((run / "command.json").read_text())["command"]
    assert load_checkpoint(run / "last.pt")["configs"]["train"]["synthetic_share"] == 0.25
    assert cli.main(base + ["--steps", "3", "--resume", "--synthetic-share", "0.5"]) == 1
    assert "cannot change on --resume" in capsys.readouterr().err


def test_cli_lr_sets_the_learning_rate_and_is_fixed_on_resume(corpus, tmp_path, capsys):
    run = tmp_path / "run"
    base = ["train", "mcnn", "--data", str(corpus), "--out", str(run), "--quiet"]
    for bad in ("0", "-1e-3", "nan"):
        assert cli.main(base + ["--preset", "tiny", "--steps", "1", f"--lr={bad}"]) == 1
        assert "--lr" in capsys.readouterr().err and not run.exists()
    assert cli.main(base + ["--preset", "tiny", "--steps", "2", "--lr", "3e-5"]) == 0
    assert "--lr 3e-05" in json.loads((run / "command.json").read_text())["command"]
    ck = load_checkpoint(run / "last.pt")
    assert ck["configs"]["train"]["lr"] == 3e-5 and ck["optimizer"]["param_groups"][0]["lr"] == pytest.approx(3e-5)
    assert cli.main(base + ["--steps", "3", "--resume", "--lr", "1e-3"]) == 1
    assert "cannot change on --resume" in capsys.readouterr().err


def test_classes_without_training_clips_are_named(corpus, tmp_path):
    """A small folder can put all of a class's few recordings in validation and test: the WAE's training says
    which classes it will not learn (it said nothing, and kits of those classes came out of an untrained model)."""
    from neuraldrum.data.corpus import load_corpus, untrained_classes

    summary = load_corpus(corpus).summary()
    assert untrained_classes(summary) is None  # every class has train clips here
    counts = {c: dict(v) for c, v in summary["counts"].items()}
    counts["tom"] = {"train": 0, "val": 1, "test": 2}
    counts["ride"] = {"train": 0, "val": 0, "test": 0}
    said = untrained_classes({**summary, "counts": counts})
    assert said.startswith("no training clips for tom (3 clips in validation/test), ride (no clips): ")
    thin = tmp_path / "thin"  # a corpus whose toms are all held out
    shutil.copytree(corpus, thin)
    lines = (thin / "manifest.jsonl").read_text().splitlines()
    items = [json.loads(x) for x in lines]
    for it in items:
        if it["class"] == "tom" and it["split"] == "train":
            it["split"] = "val"
    (thin / "manifest.jsonl").write_text("".join(json.dumps(it) + "\n" for it in items))
    with pytest.warns(UserWarning, match=r"no training clips for tom \("):
        train("wae", thin, tmp_path / "run", "tiny", steps=1, progress=False)
