"""Where a process runs: its device, its rank under ``torchrun``, and its seeds."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.distributed as dist

from fgood_bench.errors import FgoodError


@dataclass
class Runtime:
    """Where this process runs: its rank among ``world`` processes and its device."""

    rank: int = 0
    world: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


def setup_runtime(device: str = "auto") -> Runtime:
    """Join the ``torchrun`` process group if launched by it; pick the device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise FgoodError("--device cuda asked for, but PyTorch sees no CUDA device")
        if world > 1 and local_rank >= torch.cuda.device_count():
            # one process per GPU: NCCL refuses two ranks on one device
            raise FgoodError(f"torchrun started more processes on this node than the {torch.cuda.device_count()} CUDA "
                             f"device(s) PyTorch sees: use --nproc-per-node {torch.cuda.device_count()} (or fewer)")
        torch_device = torch.device("cuda", local_rank if world > 1 else torch.device(device).index or 0)
        torch.cuda.set_device(torch_device)
    else:
        torch_device = torch.device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch_device.type == "cuda" else "gloo")
    rank = dist.get_rank() if world > 1 else 0
    return Runtime(rank=rank, world=world, device=torch_device)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
