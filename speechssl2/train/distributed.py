"""torchrun-style process groups: read the launcher's env vars, pick the backend, reduce.

``torchrun`` (single node, or one per node under Slurm) sets RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR and MASTER_PORT; a plain ``python -m`` run sets none of them and
gets a world of one with no process group at all, so every helper here is a no-op then.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, List, Mapping

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Only the main process writes checkpoints, TensorBoard and logs."""
        return self.rank == 0


def env_info(env: Mapping[str, str] = os.environ) -> DistInfo:
    """The rank layout torchrun describes in ``env`` (a world of one when it is absent)."""
    try:
        info = DistInfo(
            rank=int(env.get("RANK", 0)),
            world_size=int(env.get("WORLD_SIZE", 1)),
            local_rank=int(env.get("LOCAL_RANK", 0)),
        )
    except ValueError as err:
        raise ValueError(f"RANK/WORLD_SIZE/LOCAL_RANK must be integers: {err}") from err
    if not 0 <= info.rank < info.world_size:
        raise ValueError(f"RANK={info.rank} is outside WORLD_SIZE={info.world_size}")
    if info.world_size > 1 and "MASTER_ADDR" not in env:
        raise ValueError("WORLD_SIZE > 1 but MASTER_ADDR is unset: launch with torchrun")
    return info


def device_for(info: DistInfo) -> torch.device:
    """One GPU per process (``cuda:LOCAL_RANK``) when there are GPUs, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", info.local_rank)
    return torch.device("cpu")


def init_distributed(env: Mapping[str, str] = os.environ) -> DistInfo:
    """Join the process group torchrun prepared: nccl on GPUs, gloo on CPUs."""
    info = env_info(env)
    if info.world_size > 1 and not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(info.local_rank)
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend, rank=info.rank, world_size=info.world_size)
    return info


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over ranks in place (identity in a world of one)."""
    if is_distributed():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_gather_object(obj: Any) -> List[Any]:
    """Every rank's picklable ``obj``, indexed by rank (``[obj]`` in a world of one)."""
    if not is_distributed():
        return [obj]
    gathered: List[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def cleanup() -> None:
    """Leave the group together: a rank 0 that exits first takes the rendezvous store with it."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
