"""``neuraldrum train wae|mcnn``: a thin wrapper over :func:`neuraldrum.train.loop.train`.

Runs as is under ``torchrun --nproc_per_node K -m neuraldrum train …`` (DDP, gloo on CPU, nccl on GPU).
"""
from __future__ import annotations

import argparse
import json
import math
import shlex
from pathlib import Path
from typing import Optional

from ..config import PRESETS


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train the WAE or the MCNN inverter on a corpus",
        description="Train one model on a built corpus. Checkpoints (last.pt, best.pt), metrics.jsonl and "
                    "command.json go to --out; --resume continues exactly where last.pt left off.")
    p.add_argument("model", choices=("wae", "mcnn", "vocos", "vocos_gan"),
                   help="which model to train (vocos, vocos_gan: the frame-rate inverters of the cpu44 preset)")
    p.add_argument("--data", required=True, metavar="DIR", help="corpus folder (neuraldrum data build)")
    p.add_argument("--out", required=True, metavar="RUN", help="run folder for checkpoints and logs")
    p.add_argument("--preset", choices=sorted(PRESETS), help="model and training sizes (default: cpu)")
    p.add_argument("--resume", action="store_true", help="continue from RUN/last.pt (its configs are used)")
    p.add_argument("--steps", type=int, metavar="N", help="train until step N in total (default: the preset's)")
    p.add_argument("--seed", type=int, metavar="S", help="random seed (default: the preset's)")
    p.add_argument("--threads", type=int, metavar="T", help="torch threads per process (default: torch's)")
    p.add_argument("--no-augment", action="store_true", help="switch audio augmentation off")
    p.add_argument("--no-pool", action="store_true",
                   help="inverters: leave out the corpus's unlabelled pool (built with `data build --pool`)")
    p.add_argument("--synthetic-share", type=float, metavar="S",
                   help="share (0-1) of each class's draws taken from synthesised clips such as DrumSynth renders "
                        "(default: in proportion to their number)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="change one field of the model's config (VALUE as JSON: 1024, 0.5, [1, 2], true), e.g. "
                        "--set n_fft=1024; repeatable; fresh runs only")
    p.add_argument("--init", metavar="RUN",
                   help="start from the weights of another run (folder or checkpoint) of the same architecture, "
                        "e.g. a vocos run fine-tuned as vocos_gan; fresh runs only")
    p.add_argument("--lr", type=float, metavar="LR",
                   help="initial learning rate (default: the preset's), e.g. lower to fine-tune an --init run")
    p.add_argument("--val-every", type=int, metavar="N", help="validate every N steps")
    p.add_argument("--ckpt-every", type=int, metavar="N", help="save RUN/last.pt every N steps")
    p.add_argument("--log-every", type=int, metavar="N", help="log training losses every N steps")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_train)


def command_line(args: argparse.Namespace) -> str:
    """The canonical command line equivalent to the parsed ``args``."""
    parts = ["neuraldrum", "train", args.model, "--data", args.data, "--out", args.out]
    for flag in ("preset", "steps", "seed", "threads", "synthetic_share", "init", "lr", "val_every", "ckpt_every",
                 "log_every"):
        v = getattr(args, flag)
        if v is not None:
            parts += ["--" + flag.replace("_", "-"), str(v)]
    for item in args.set:
        parts += ["--set", item]
    for flag in ("resume", "no_augment", "no_pool", "quiet"):
        if getattr(args, flag):
            parts.append("--" + flag.replace("_", "-"))
    return shlex.join(parts)


def _run_preset(run) -> Optional[str]:
    """The preset a training run was started with (its command.json), or None."""
    try:
        return json.loads((Path(run) / "command.json").read_text(encoding="utf-8")).get("preset")
    except (OSError, ValueError, AttributeError):
        return None


def run_train(args: argparse.Namespace) -> int:
    from .loop import train  # torch and friends only when the verb runs

    overrides = {k: getattr(args, k) for k in ("val_every", "ckpt_every", "log_every") if getattr(args, k)}
    for k, v in overrides.items():
        if v < 1:
            raise ValueError(f"--{k.replace('_', '-')} must be at least 1")
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set {item!r}: use FIELD=VALUE")
        try:
            v = json.loads(value)
        except ValueError:
            raise ValueError(f"--set {item!r}: the value must be JSON (a number, true/false, a list)") from None
        overrides["model." + key] = tuple(v) if isinstance(v, list) else v
    if args.synthetic_share is not None:
        if not 0.0 <= args.synthetic_share <= 1.0:
            raise ValueError(f"--synthetic-share {args.synthetic_share}: use a value in [0, 1]")
        overrides["synthetic_share"] = args.synthetic_share
    if args.no_pool:
        overrides["use_pool"] = False
    if args.lr is not None:
        if not (args.lr > 0 and math.isfinite(args.lr)):
            raise ValueError(f"--lr {args.lr}: use a positive number")
        overrides["lr"] = args.lr
    if args.steps is not None and args.steps < 1:
        raise ValueError(f"--steps {args.steps}: train until a step ≥ 1")
    if args.resume:
        if args.preset is not None and args.preset == _run_preset(args.out):  # the README's command + --resume
            args.preset = None
        fixed = [f for f, v in (("--preset", args.preset), ("--seed", args.seed), ("--no-augment", args.no_augment),
                                ("--no-pool", args.no_pool),
                                ("--set", args.set),
                                ("--synthetic-share", args.synthetic_share is not None),
                                ("--lr", args.lr is not None),
                                ("--val-every", args.val_every), ("--ckpt-every", args.ckpt_every),
                                ("--log-every", args.log_every)) if v]
        if fixed:
            raise ValueError(f"{', '.join(fixed)}: cannot change on --resume (the run keeps its own configs)")
    result = train(args.model, args.data, args.out, args.preset or "cpu", resume=args.resume, steps=args.steps,
                   seed=args.seed, threads=args.threads, augment=not args.no_augment, overrides=overrides,
                   command=command_line(args), progress=not args.quiet, init=args.init)
    best = result["best"]
    best_s = f"{best:.5g} at step {result['best_step']}" if best != float("inf") else "none (no validation yet)"
    if result["rank"] == 0:
        print(f"{args.model}: stopped at step {result['step']} ({result['stopped']}); best validation loss {best_s}; "
              f"checkpoints in {result['run']}" + (" (continue with --resume)" if result["stopped"] == "signal" else ""))
    return 130 if result["stopped"] == "signal" else 0
