"""Running as one of several processes launched by torchrun, and talking to the others.

torchrun starts one process per device and tells each who it is through the environment:
RANK (0..WORLD_SIZE-1 over every node), WORLD_SIZE, LOCAL_RANK (its index on this node, which
picks its GPU), and MASTER_ADDR/MASTER_PORT where the processes meet. Without torchrun
(WORLD_SIZE unset or 1) there is no process group and every helper below answers for the
single process, so callers need no special case: rank 0 of 1 is the main process, a barrier
returns at once, an all-gather returns a one-element list.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel


@dataclass(frozen=True)
class Launch:
    """Where this process sits among those torchrun started."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def launch_from_env() -> Launch:
    """This process's place, from torchrun's environment variables (one process without)."""
    env = os.environ
    return Launch(
        rank=int(env.get("RANK", 0)),
        world_size=int(env.get("WORLD_SIZE", 1)),
        local_rank=int(env.get("LOCAL_RANK", 0)),
    )


@contextmanager
def process_group(backend: str | None = None, timeout: timedelta | None = None) -> Iterator[Launch]:
    """Join the other processes for the duration of the block (nothing to join without
    torchrun). The default backend is nccl when CUDA is there, else gloo; each process then
    uses the GPU of its LOCAL_RANK as its "cuda" device."""
    launch = launch_from_env()
    if not launch.distributed or dist.is_initialized():
        yield launch
        return
    if torch.cuda.is_available():
        torch.cuda.set_device(launch.local_rank)
    backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    dist.init_process_group(backend, timeout=timeout)
    try:
        yield launch
        # Leave together: a rank that closes its connections while a peer still sends on them
        # (the end of the last collective) can abort the peer.
        dist.barrier()
    finally:
        dist.destroy_process_group()


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def is_main() -> bool:
    """Rank 0: the one process that writes files and reports progress."""
    return rank() == 0


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def all_gather_objects(value: Any) -> list[Any]:
    """Every rank's `value` (small, picklable), in rank order, on every rank."""
    if not dist.is_initialized():
        return [value]
    gathered: list[Any] = [None] * world_size()
    dist.all_gather_object(gathered, value)
    return gathered


def all_reduce_sum(values: list[float]) -> list[float]:
    """The element-wise sum of every rank's `values` (float64, so counts stay exact)."""
    tensor = torch.tensor(values, dtype=torch.float64, device=_collective_device())
    if dist.is_initialized():
        dist.all_reduce(tensor)
    return tensor.tolist()


def all_reduce_mean(value: Tensor) -> float:
    """The mean over ranks of a one-element tensor."""
    if not dist.is_initialized():
        return value.item()
    reduced = value.detach().to(_collective_device(), torch.float64)
    dist.all_reduce(reduced)
    return reduced.item() / world_size()


def broadcast_from_main(tensors: list[Tensor]) -> None:
    """Overwrite each rank's `tensors` with rank 0's, in place."""
    if dist.is_initialized():
        for tensor in tensors:
            dist.broadcast(tensor, src=0)


def _collective_device() -> torch.device:
    """nccl moves only CUDA tensors; gloo only CPU ones."""
    if dist.is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def data_parallel(module: nn.Module) -> nn.Module:
    """The module wrapped in DistributedDataParallel under torchrun (its backward averages the
    gradients over ranks), else the module itself. Buffers are not re-sent on every forward:
    the trained modules' buffers do not change while they train."""
    if not dist.is_initialized():
        return module
    return DistributedDataParallel(module, forward_sync_buffers=False)


def sync_gradients(module: nn.Module, sync: bool) -> AbstractContextManager:
    """Around a backward: with sync False, DDP keeps the gradients local (accumulation), and
    the next backward with sync True averages everything accumulated."""
    if sync or not isinstance(module, DistributedDataParallel):
        return nullcontext()
    return module.no_sync()
