"""Multi-process training with PyTorch's own tools: ``torchrun`` sets the environment, we read it.

With ``WORLD_SIZE`` > 1 in the environment, :func:`init` starts a process group (gloo on CPU, nccl on GPU)
from the ``env://`` variables torchrun sets; otherwise it is a single process and nothing is started.
Only rank 0 writes logs and checkpoints.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as tdist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def pick_device(local_rank: int = 0) -> torch.device:
    """The GPU of this local rank when CUDA is usable, else the CPU."""
    if torch.cuda.is_available() and torch.cuda.device_count() > 0:
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def init() -> DistInfo:
    """Read torchrun's environment; start the process group if there is more than one process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(local_rank)
    if world > 1 and not tdist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        tdist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo", init_method="env://")
    return DistInfo(rank, world, local_rank, device)


def shutdown(info: DistInfo) -> None:
    """Tear the process group down (if :func:`init` started one)."""
    if info.enabled and tdist.is_initialized():
        tdist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.enabled:
        tdist.barrier()


def all_reduce_sum(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum of ``t`` over processes (in place; returned for convenience)."""
    if info.enabled:
        tdist.all_reduce(t, op=tdist.ReduceOp.SUM)
    return t


def mean_metrics(metrics: dict[str, float], info: DistInfo) -> dict[str, float]:
    """Average scalar metrics over processes (same keys on every rank)."""
    if not info.enabled or not metrics:
        return metrics
    keys = sorted(metrics)
    t = torch.tensor([metrics[k] for k in keys], dtype=torch.float64, device=info.device)
    all_reduce_sum(t, info)
    return {k: float(v) / info.world for k, v in zip(keys, t.tolist())}


def broadcast_object(obj: Any, info: DistInfo) -> Any:
    """Rank 0's ``obj`` on every rank (picklable Python objects)."""
    if not info.enabled:
        return obj
    box = [obj]
    tdist.broadcast_object_list(box, src=0, device=info.device if info.device.type == "cuda" else None)
    return box[0]


def wrap(model: torch.nn.Module, info: DistInfo) -> torch.nn.Module:
    """``model`` wrapped in DistributedDataParallel when running multi-process, else itself."""
    if not info.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [info.device.index] if info.device.type == "cuda" else None
    return DDP(model, device_ids=ids)
