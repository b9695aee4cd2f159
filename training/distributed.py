"""torchrun's process group, and waiting for rank 0 without tripping a training collective's timeout."""

from __future__ import annotations

import os
from datetime import timedelta

import torch.distributed as dist

from policies.acting import select_device


def distributed_context() -> tuple[int, int, int]:
    """(rank, local_rank, world_size) from torchrun's environment; (0, 0, 1) for a plain run."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("LOCAL_RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


_MAIN_PROCESS_GROUP: dist.ProcessGroup | None = None  # gloo, with a long timeout: see wait_for_main_process


def init_distributed(device: str, timeout_s: float = 600.0, main_process_timeout_s: float = 86_400.0
                     ) -> tuple[int, int, int]:
    """Join torchrun's process group once (NCCL for CUDA devices, else gloo); returns distributed_context().

    Collectives of training steps wait at most `timeout_s` for a rank. Waiting for rank 0's own work
    (collecting demonstrations, evaluating) goes through a second, gloo group whose timeout is
    `main_process_timeout_s`: a long evaluation must not trip NCCL's watchdog on the waiting ranks.
    """
    global _MAIN_PROCESS_GROUP
    rank, local_rank, world_size = distributed_context()
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if select_device(device).type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s))
        _MAIN_PROCESS_GROUP = dist.new_group(backend="gloo", timeout=timedelta(seconds=main_process_timeout_s))
    return rank, local_rank, world_size


def wait_for_main_process() -> None:
    """Every rank waits here until rank 0 arrives (after its evaluations or collection); no-op alone."""
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier(group=_MAIN_PROCESS_GROUP)
