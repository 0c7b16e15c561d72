"""One plain training loop for both models.

``train("wae" | "mcnn", data=CORPUS, out=RUN, preset="cpu")`` builds the task, then steps: batch → loss →
Adam, with a tqdm bar showing live losses. Every ``val_every`` steps it validates on the "val" split, steps
a ReduceLROnPlateau schedule and the early-stopping counter, and saves ``RUN/best.pt`` on improvement;
every ``ckpt_every`` steps (and at the end) it saves ``RUN/last.pt``. Metrics go to ``RUN/metrics.jsonl``
(and TensorBoard when it is installed); ``RUN/command.json`` records the command and the corpus.

``resume=True`` reloads ``RUN/last.pt`` (model, optimiser, schedule, step, early-stopping state, RNG states)
and continues exactly: batches and augmentation are functions of (seed, step), so the next losses equal
those of an uninterrupted run. Under ``torchrun`` the same call trains with DDP; only rank 0 writes.
"""
from __future__ import annotations

import dataclasses
import json
import math
import random
import signal
import sys
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import torch
from tqdm import tqdm

from .. import __version__
from ..config import from_dict, to_dict
from ..config import preset as get_preset
from ..data.corpus import load_corpus, untrained_classes
from ..taxonomy import CLASSES
from . import dist
from .checkpoint import (CHECKPOINT_FORMAT, CHECKPOINT_KIND, checkpoint_configs, load_checkpoint, rng_state,
                         run_checkpoint, save_checkpoint, set_rng_state)
from .tasks import TASKS, RunConfigs, Task


class MetricsLog:
    """Appends one JSON object per line to ``RUN/metrics.jsonl`` (and to TensorBoard if importable)."""

    def __init__(self, run_dir: Path, enabled: bool, resume_step: Optional[int] = None):
        self.path = run_dir / "metrics.jsonl"
        self.enabled = enabled
        self.tb = None
        if not enabled:
            return
        if resume_step is None:  # a fresh run: no records from an earlier attempt
            self.path.write_text("")
        elif self.path.exists():  # drop records past the checkpoint we resume from
            keep = [ln for ln in self.path.read_text().splitlines() if ln.strip()
                    and json.loads(ln).get("step", 0) <= resume_step]
            self.path.write_text("".join(ln + "\n" for ln in keep))
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(run_dir / "tb"))
        except Exception:  # tensorboard is optional
            self.tb = None

    def write(self, record: dict) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.tb is not None:
            for k, v in record.items():
                if k != "step" and isinstance(v, (int, float)):
                    self.tb.add_scalar(k, v, record["step"])

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


class _StopRequest:
    """SIGINT/SIGTERM set a flag; the loop saves and stops at the next step boundary."""

    def __init__(self):
        self.flag = False
        self._old: dict = {}

    def __enter__(self) -> "_StopRequest":
        try:
            for s in (signal.SIGINT, signal.SIGTERM):
                self._old[s] = signal.signal(s, self._handle)
        except ValueError:  # not the main thread: no handlers, the loop simply runs
            self._old = {}
        return self

    def _handle(self, signum, frame) -> None:
        if self.flag:  # a second Ctrl-C: give up at once
            raise KeyboardInterrupt
        self.flag = True

    def __exit__(self, *exc) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)


def _finite(x: float) -> Optional[float]:
    return x if math.isfinite(x) else None


def _configs(task: str, preset: str, seed: Optional[int], augment: bool, overrides: Optional[dict]) -> RunConfigs:
    p = get_preset(preset)
    tcfg = p.train(task)
    changes = {k: v for k, v in (overrides or {}).items() if not k.startswith("model.")}
    model_changes = {k[len("model."):]: v for k, v in (overrides or {}).items() if k.startswith("model.")}
    model = p.model(task)
    if model_changes:
        unknown = sorted(set(model_changes) - {f.name for f in dataclasses.fields(model)})
        if unknown:
            raise ValueError(f"--set {unknown[0]}: not a field of the {task} config "
                             f"({', '.join(f.name for f in dataclasses.fields(model))})")
        model = from_dict(type(model), {**to_dict(model), **model_changes})
    if seed is not None:
        changes["seed"] = seed
    if not augment:
        changes["augment"] = tcfg.augment.off()
    tcfg = dataclasses.replace(tcfg, **changes)
    return RunConfigs(task, p.name, p.audio, p.mel, model, tcfg)


def _make_checkpoint(task: Task, cfgs: RunConfigs, opt, sched, loop: dict, corpus_summary: dict,
                     metrics: dict) -> dict:
    return {"format": CHECKPOINT_FORMAT, "kind": CHECKPOINT_KIND, "task": cfgs.task, "version": __version__,
            "preset": cfgs.preset, "classes": list(CLASSES),
            "configs": {"audio": to_dict(cfgs.audio), "mel": to_dict(cfgs.mel), "model": to_dict(cfgs.model),
                        "train": to_dict(cfgs.train)},
            "model": task.model.state_dict(), **task.extra_state(),
            "optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "loop": dict(loop),
            "rng": rng_state(), "corpus": corpus_summary, "metrics": dict(metrics)}


def _write_command(run_dir: Path, record: dict, resume: bool) -> None:
    path = run_dir / "command.json"
    if resume and path.exists():
        doc = json.loads(path.read_text())
        doc.setdefault("resumed", []).append(record)
    else:
        doc = record
    path.write_text(json.dumps(doc, indent=2) + "\n")


def train(task: str, data: Union[str, Path], out: Union[str, Path], preset: str = "cpu", *, resume: bool = False,
          steps: Optional[int] = None, seed: Optional[int] = None, threads: Optional[int] = None,
          augment: bool = True, overrides: Optional[dict[str, Any]] = None, command: Optional[str] = None,
          progress: bool = True, init: Optional[Union[str, Path]] = None) -> dict:
    """Train a model on a corpus; see the module docstring.

    Args:
        task: "wae" or "mcnn".
        data: corpus folder (``neuraldrum data build``).
        out: run folder (created); holds last.pt, best.pt, metrics.jsonl, command.json.
        preset: "tiny", "cpu" or "paper" (ignored on resume: the checkpoint's configs are used).
        resume: continue from ``out/last.pt``.
        steps: train until this total step count (default: the config's ``max_steps``).
        seed: overrides the preset's seed (fresh runs only).
        threads: torch intra-op threads (0/None = the config's ``num_threads``, then torch's default).
        augment: False switches every augmentation off (fresh runs only).
        overrides: TrainConfig fields to replace, e.g. {"val_every": 10}, and model config fields as
            {"model.n_fft": 1024} (fresh runs only).
        command: the command line to record in command.json.
        progress: show the tqdm bar (rank 0 only).
        init: start from the weights of this checkpoint or run folder (its best.pt, else last.pt) instead of a
            fresh initialisation (fresh runs only): the same architecture and audio/Mel settings, e.g. a
            ``vocos`` run fine-tuned as ``vocos_gan``. The optimiser and step count start afresh.
    Returns:
        {"step", "best", "best_step", "stopped": "max_steps" | "early_stop" | "signal", "run", "rank"}.
        "signal": SIGINT/SIGTERM arrived; the loop saved last.pt at a step boundary and stopped.
    """
    if task not in TASKS:
        raise ValueError(f"unknown model {task!r}; choose from {sorted(TASKS)}")
    info = dist.init()
    try:
        return _train(task, Path(data), Path(out), preset, resume, steps, seed, threads, augment, overrides,
                      command, progress, info, init)
    finally:
        dist.shutdown(info)


def _init_checkpoint(init: Path, cfgs: RunConfigs, device) -> dict:
    """The checkpoint ``init`` (a file, or a run folder's best.pt, else last.pt), checked to fit ``cfgs``."""
    path = run_checkpoint(init)
    ck = load_checkpoint(path, map_location=device)
    c = checkpoint_configs(ck)
    if (c["audio"], c["mel"]) != (cfgs.audio, cfgs.mel) or type(c["model"]) is not type(cfgs.model):
        raise ValueError(f"--init {path}: a {ck['task']} model for other audio or Mel settings; it must be the "
                         f"same kind of model as {cfgs.task}'s, for the same settings")
    ck["init_path"] = str(path)
    return ck


def _train(task_name, data, run_dir, preset, resume, steps, seed, threads, augment, overrides, command, progress,
           info: dist.DistInfo, init=None) -> dict:
    last_path, best_path = run_dir / "last.pt", run_dir / "best.pt"
    ckpt = None
    if init is not None and resume:
        raise ValueError("--init starts a fresh run; a resumed run keeps its own weights")
    if resume:
        if not last_path.is_file():
            raise FileNotFoundError(f"{last_path}: nothing to resume; start without --resume")
        ckpt = load_checkpoint(last_path, map_location=info.device)
        if ckpt["task"] != task_name:
            raise ValueError(f"{last_path}: a {ckpt['task']} run, not {task_name}")
        c = checkpoint_configs(ckpt)
        cfgs = RunConfigs(task_name, ckpt.get("preset", "?"), c["audio"], c["mel"], c["model"], c["train"])
    else:
        if last_path.exists():
            raise FileExistsError(f"{last_path} exists; pass --resume to continue it, or choose another --out")
        cfgs = _configs(task_name, preset, seed, augment, overrides)
    if steps is not None:
        cfgs = dataclasses.replace(cfgs, train=dataclasses.replace(cfgs.train, max_steps=int(steps)))
    tc = cfgs.train
    n_threads = threads or tc.num_threads
    if n_threads:
        torch.set_num_threads(int(n_threads))

    corpus = load_corpus(data)
    if corpus.sample_rate != cfgs.audio.sample_rate or corpus.n_samples != cfgs.audio.n_samples:
        raise ValueError(f"{data}: clips are {corpus.n_samples} samples at {corpus.sample_rate} Hz, the model "
                         f"expects {cfgs.audio.n_samples} at {cfgs.audio.sample_rate} Hz")
    random.seed(tc.seed)
    np.random.seed(tc.seed)
    torch.manual_seed(tc.seed)
    start = _init_checkpoint(init, cfgs, info.device) if init is not None else None
    task: Task = TASKS[task_name](corpus, cfgs, info, ckpt)
    if ckpt is not None:
        task.model.load_state_dict(ckpt["model"])
    elif start is not None:
        # a model may name parts that start neutral (INIT_OPTIONAL prefixes): an --init checkpoint may lack them
        optional = tuple(getattr(task.model, "INIT_OPTIONAL", ()))
        try:
            res = task.model.load_state_dict(start["model"], strict=False)
            wrong = [k for k in res.missing_keys if not k.startswith(optional)]
            if wrong or res.unexpected_keys:
                raise RuntimeError(f"missing {wrong}, unexpected {res.unexpected_keys}")
        except RuntimeError as e:
            raise ValueError(f"--init {start['init_path']}: its weights do not fit this model ({e})") from None
    task.net = dist.wrap(task.model, info)
    opt = torch.optim.Adam(task.model.parameters(), lr=tc.lr)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=tc.plateau_factor,
                                                       patience=tc.plateau_patience, min_lr=tc.min_lr)
    loop = {"step": 0, "best": math.inf, "best_step": 0, "bad": 0}
    val_metrics: dict = {}
    if ckpt is not None:
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        loop.update(ckpt["loop"])
        val_metrics = dict(ckpt.get("metrics", {}))
        set_rng_state(ckpt["rng"])

    summary = corpus.summary()
    thin = untrained_classes(summary) if task_name == "wae" else None  # (inverters need no labels)
    if thin and info.is_main:
        warnings.warn(f"{data}: {thin}", stacklevel=2)
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        _write_command(run_dir, {"command": command, "argv": list(sys.argv), "task": task_name,
                                 "preset": cfgs.preset, "data": str(Path(data).resolve()), "out": str(run_dir),
                                 "world_size": info.world, "device": str(info.device), "version": __version__,
                                 "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                 "start_step": loop["step"], "corpus": summary,
                                 **({"init": {"path": start["init_path"], "task": start["task"],
                                              "step": start.get("loop", {}).get("step")}} if start else {})}, resume)
    log = MetricsLog(run_dir, info.is_main, loop["step"] if resume else None)

    def save(path: Path) -> None:
        if info.is_main:
            save_checkpoint(_make_checkpoint(task, cfgs, opt, sched, loop, summary, val_metrics), path)

    stopped = "max_steps"
    bar = tqdm(total=tc.max_steps, initial=loop["step"], desc=f"train {task_name}", dynamic_ncols=True,
               disable=not (progress and info.is_main), mininterval=0.5)
    t_last, saved_step, logged_step = time.perf_counter(), loop["step"], loop["step"]
    with _StopRequest() as stop:
        while loop["step"] < tc.max_steps:
            step = loop["step"] + 1
            task.net.train()
            losses = task.train_step(step)
            loss = losses[f"{task_name}/loss"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if tc.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(task.model.parameters(), tc.grad_clip)
            opt.step()
            loop["step"] = step
            bar.update(1)

            if step % tc.log_every == 0 or step == tc.max_steps:
                rec = dist.mean_metrics({k: float(v.detach()) for k, v in losses.items()}, info)
                now = time.perf_counter()
                rec.update(step=step, lr=opt.param_groups[0]["lr"],
                           **{"time/step_s": (now - t_last) / (step - logged_step)})
                t_last, logged_step = now, step
                log.write(rec)
                bar.set_postfix({k.split("/")[-1]: f"{v:.4g}" for k, v in rec.items() if k.startswith(task_name)})
            if step % tc.val_every == 0:
                val_metrics = dist.broadcast_object(task.validate() if info.is_main else None, info)
                value = val_metrics[task.val_key]
                sched.step(value)
                improved = value < loop["best"]
                if improved:
                    loop.update(best=value, best_step=step, bad=0)
                else:
                    loop["bad"] += 1
                log.write({"step": step, **val_metrics, "lr": opt.param_groups[0]["lr"], "best": _finite(loop["best"])})
                if improved:
                    save(best_path)
                if loop["bad"] >= tc.early_stop_patience:
                    stopped = "early_stop"
            if step % tc.ckpt_every == 0 or stopped != "max_steps":
                save(last_path)
                saved_step = step
            if stopped != "max_steps":
                break
            if info.enabled and step % tc.log_every == 0:  # agree on a signal at the same step everywhere
                flag = torch.tensor([float(stop.flag)], device=info.device)
                stop.flag = bool(dist.all_reduce_sum(flag, info).item() > 0)
            if stop.flag and (not info.enabled or step % tc.log_every == 0):
                stopped = "signal"
                break
    bar.close()
    if saved_step != loop["step"]:
        save(last_path)
    log.write({"step": loop["step"], "event": stopped, "best": _finite(loop["best"]), "best_step": loop["best_step"]})
    log.close()
    dist.barrier(info)
    return {"step": loop["step"], "best": loop["best"], "best_step": loop["best_step"], "stopped": stopped,
            "run": str(run_dir), "rank": info.rank}
