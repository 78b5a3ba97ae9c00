"""Process setup: one process, or one per rank under ``torchrun`` (gloo on CPU, nccl on GPU)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as torch_dist


class TrainError(ValueError):
    """Training cannot start as asked: one clear sentence, nothing stored changed."""


@dataclass(frozen=True)
class Dist:
    rank: int
    world: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup(device: str) -> Dist:
    """Pick the device (TrainError for cuda without a GPU) and join torchrun's group if any."""
    if device == "cuda" and not torch.cuda.is_available():
        raise TrainError("--device cuda: no CUDA GPU is visible here; use --device cpu")
    cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    gpus = torch.cuda.device_count() if cuda else 0
    if cuda:
        torch.cuda.set_device(local % gpus)
    if world > 1 and not torch_dist.is_initialized():
        # NCCL refuses two ranks on one GPU; with fewer GPUs than local ranks they share
        # GPUs and talk through gloo (which reduces CUDA tensors too), slower but correct
        backend = "nccl" if cuda and gpus >= local_world else "gloo"
        torch_dist.init_process_group(backend, timeout=timedelta(minutes=30))
    return Dist(rank, world, torch.device("cuda", local % gpus) if cuda else torch.device("cpu"))


def barrier(d: Dist) -> None:
    if d.world > 1:
        torch_dist.barrier()


def gather(d: Dist, obj) -> list:
    """Every rank's ``obj``, in rank order (a list of one without torchrun)."""
    if d.world == 1:
        return [obj]
    out = [None] * d.world
    torch_dist.all_gather_object(out, obj)
    return out


def mean(d: Dist, value: float) -> float:
    if d.world == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=d.device)
    torch_dist.all_reduce(t)
    return float(t.item()) / d.world


def sync_buffers(d: Dist, module: torch.nn.Module) -> None:
    """Copy rank 0's buffers (BatchNorm running stats) to every rank. DDP does this before each
    forward, so after the last forward each rank holds stats of its own last batch."""
    if d.world > 1:
        for buf in module.buffers():
            torch_dist.broadcast(buf, 0)


def teardown(d: Dist) -> None:
    if d.world > 1 and torch_dist.is_initialized():
        torch_dist.destroy_process_group()
