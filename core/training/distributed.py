"""Training on more than one process (``torchrun``): process group, DDP, barrier, sync check.

With ``WORLD_SIZE`` > 1 the process group is NCCL on GPUs and gloo on CPUs; each process uses
the GPU of its ``LOCAL_RANK``. With one process every helper here does nothing.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist

from ..device import resolve_device


def setup_distributed(device_option: str) -> tuple[int, int, torch.device, bool]:
    """(rank, world size, device, whether this call created the process group)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    device = resolve_device(device_option)
    if world_size <= 1:
        return 0, 1, device, False
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    created = not dist.is_initialized()
    if created:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size(), device, created


def data_parallel(module: torch.nn.Module, device: torch.device, world_size: int) -> torch.nn.Module:
    """``module`` wrapped in DistributedDataParallel when there is more than one process."""
    if world_size <= 1:
        return module
    from torch.nn.parallel import DistributedDataParallel as DDP
    return DDP(module, device_ids=[device.index] if device.type == "cuda" else None)


def barrier(world_size: int) -> None:
    if world_size > 1:
        dist.barrier()


def all_reduce_sum(tensor: torch.Tensor, world_size: int) -> torch.Tensor:
    """The sum of ``tensor`` over all processes (in place)."""
    if world_size > 1:
        dist.all_reduce(tensor)
    return tensor


def check_ranks_in_sync(fingerprint: str, world_size: int, device: torch.device) -> None:
    """Raise if the weights ``fingerprint`` (hex) differs between ranks. DDP keeps every rank's
    weights identical; checking once at the end catches non-deterministic ops or a rank that diverged."""
    if world_size <= 1:
        return
    local = torch.tensor([int(fingerprint[:8], 16), int(fingerprint[8:16], 16)], dtype=torch.int64, device=device)
    gathered = [torch.zeros_like(local) for _ in range(world_size)]
    dist.all_gather(gathered, local)
    if any(not torch.equal(g, gathered[0]) for g in gathered):
        raise RuntimeError(f"ranks ended with different weights: fingerprints {[g.tolist() for g in gathered]}")


def shutdown(created: bool) -> None:
    """Destroy the process group if :func:`setup_distributed` created it."""
    if created:
        dist.destroy_process_group()
