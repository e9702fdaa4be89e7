"""Where training runs: the accelerator, checked before any image is decoded, and, across processes and machines
through Lightning (DDP by default), which process this is and which share of the data it reads. Only the main
process (global rank 0) writes the run folder, its record, weights, checkpoints and logs; the others train their
share and write nothing.

Processes come from Lightning (``devices`` > 1 on one machine: it starts the others, running the same command), from
``torchrun`` (``RANK``) or from SLURM (``SLURM_PROCID`` in a job of several tasks).
"""

from __future__ import annotations

import os

from cnnkit.errors import ConfigError


def check_accelerator(name: str) -> None:
    """Fail now, before any image is decoded, when the accelerator is not on this machine."""
    import torch

    mps = getattr(torch.backends, "mps", None)
    available = {"auto": True, "cpu": True, "cuda": torch.cuda.is_available(),
                 "mps": bool(mps and mps.is_available())}
    available["gpu"] = available["cuda"] or available["mps"]
    if not available.get(name, False):
        raise ConfigError(f"The accelerator {name!r} is not available on this machine; set `accelerator` to "
                          "'cpu' or 'auto'.")


def global_rank(devices: int = 1) -> int:
    """This process's rank among all: torchrun's ``RANK``, SLURM's task id, or Lightning's node and local ranks."""
    if os.environ.get("RANK"):
        return int(os.environ["RANK"])
    if os.environ.get("SLURM_PROCID") and int(os.environ.get("SLURM_NTASKS", "1")) > 1:
        return int(os.environ["SLURM_PROCID"])
    return int(os.environ.get("NODE_RANK", "0")) * devices + int(os.environ.get("LOCAL_RANK", "0"))


def is_main(devices: int = 1) -> bool:
    return global_rank(devices) == 0


def world_size(config) -> int:
    return config.devices * config.num_nodes


def lightning_strategy(config) -> str:
    """The Trainer's strategy: Lightning's own choice for one process, else ``distributed`` (auto: DDP)."""
    if world_size(config) == 1:
        return "auto"
    return "ddp" if config.distributed == "auto" else config.distributed


def shard(config) -> tuple[int, int] | None:
    """(rank, processes) when several processes train, else None."""
    world = world_size(config)
    return (global_rank(config.devices), world) if world > 1 else None
