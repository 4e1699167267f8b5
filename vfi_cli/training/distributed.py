"""Several processes under ``torchrun``: each trains on its share of every epoch (DistributedDataParallel);
rank 0 alone logs, validates and writes checkpoints. A single process is a world of one."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from vfi_cli.backends.eager import resolve_device


@dataclass
class Distributed:
    """This process's place: its rank among ``world`` processes and its device."""

    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device_name: str) -> Distributed:
    """Join the process group ``torchrun`` set up (``WORLD_SIZE`` > 1; NCCL on CUDA, gloo on the CPU),
    or resolve ``device_name`` for a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Distributed(device=resolve_device(device_name))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device_name != "cpu"
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    device = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    return Distributed(rank=dist.get_rank(), world=dist.get_world_size(), device=device)


def wrap(module: nn.Module, env: Distributed) -> nn.Module:
    """``module`` in DistributedDataParallel when there are several processes, else itself."""
    if env.world <= 1:
        return module
    return nn.parallel.DistributedDataParallel(module, device_ids=[env.device.index] if env.device.type == "cuda" else None)


def unwrap(module: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel wrapper (or the module itself)."""
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module


def barrier(env: Distributed) -> None:
    """Wait for every process (a no-op for one)."""
    if env.world > 1:
        dist.barrier()


def leave(env: Distributed) -> None:
    """Tear down the process group this process joined.

    A process that exits with the gloo group alive can abort in its C++ destructors
    ("terminate called without an active exception"), which fails the whole launch.
    """
    if env.world > 1 and dist.is_initialized():
        dist.destroy_process_group()
