"""Data-parallel set-up for the Trainer: ``torchrun`` first, SLURM as the fallback.

``torchrun --nproc_per_node N -m neuralops train recipe.toml`` sets ``RANK``, ``LOCAL_RANK``,
``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``; under ``srun`` the same come from ``SLURM_PROCID``,
``SLURM_LOCALID`` and ``SLURM_NTASKS`` (``MASTER_ADDR``/``MASTER_PORT`` must then be exported by the job
script). The device of a process is ``cuda:LOCAL_RANK``, never the global rank, so multi-node runs put
every process on a GPU of its own node.

>>> DistEnv.from_env({"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "4"})
DistEnv(rank=3, local_rank=1, world_size=4)
>>> DistEnv.from_env({"SLURM_PROCID": "2", "SLURM_LOCALID": "0", "SLURM_NTASKS": "3"})
DistEnv(rank=2, local_rank=0, world_size=3)
>>> DistEnv.from_env({}).is_distributed
False
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["DistEnv", "barrier", "destroy", "init_distributed", "is_initialized"]

log = logging.getLogger(__name__)

_TORCHRUN = ("RANK", "LOCAL_RANK", "WORLD_SIZE")
_SLURM = ("SLURM_PROCID", "SLURM_LOCALID", "SLURM_NTASKS")


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits in a data-parallel job (``world_size=1``: not distributed)."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DistEnv:
        """Read the torchrun variables, else SLURM's, else a single process.

        An initialized default process group wins over the environment (a user who called
        ``init_process_group`` themselves).
        """
        env = os.environ if environ is None else environ
        if environ is None and is_initialized():
            local = int(env.get("LOCAL_RANK", env.get("SLURM_LOCALID", dist.get_rank())))
            return cls(dist.get_rank(), local, dist.get_world_size())
        for names in (_TORCHRUN, _SLURM):
            if names[0] in env and names[2] in env:
                try:
                    rank, world = int(env[names[0]]), int(env[names[2]])
                    local = int(env.get(names[1], rank))
                except ValueError:
                    raise ValueError(
                        f"{'/'.join(names)} must be integers, got "
                        + ", ".join(f"{n}={env.get(n)!r}" for n in names)
                    ) from None
                if world < 1 or not 0 <= rank < world or local < 0:
                    raise ValueError(
                        f"inconsistent distributed environment: {names[0]}={rank}, "
                        f"{names[1]}={local}, {names[2]}={world} (need 0 <= rank < world size)"
                    )
                return cls(rank, local, world)
        return cls()


def is_initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def init_distributed(env: DistEnv, device: torch.device) -> bool:
    """Join the default process group (NCCL on CUDA, gloo otherwise) if ``env`` is distributed.

    Returns True when this call created the group (the caller then owns :func:`destroy`). torchrun
    exports ``MASTER_ADDR``/``MASTER_PORT``; under SLURM they must be set by the job script.
    """
    if not env.is_distributed or is_initialized():
        return False
    if not dist.is_available():
        raise RuntimeError("torch.distributed is not available in this torch build")
    missing = [v for v in ("MASTER_ADDR", "MASTER_PORT") if v not in os.environ]
    if missing:
        raise RuntimeError(
            f"WORLD_SIZE={env.world_size} but {' and '.join(missing)} not set; launch with "
            "`torchrun --nproc_per_node N -m neuralops train ...`, or export MASTER_ADDR/MASTER_PORT "
            "in the SLURM job script"
        )
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend, rank=env.rank, world_size=env.world_size)
    log.info("joined %s process group: rank %d of %d", backend, env.rank, env.world_size)
    return True


def barrier() -> None:
    """``dist.barrier()`` when a process group is up; a no-op otherwise."""
    if is_initialized():
        dist.barrier()


def destroy() -> None:
    if is_initialized():
        dist.destroy_process_group()
