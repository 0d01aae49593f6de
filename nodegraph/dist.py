"""torchrun support for mapped jobs: rank and world size from torchrun's environment, a gloo
(CPU) or NCCL process group when there is more than one rank, a barrier, and sums across ranks.

Nothing here schedules anything: ``torchrun --nproc_per_node N nodegraph run G --over ...``
starts N copies; each takes the items ``i`` with ``i % N == rank`` (``nodegraph.mapper``).
"""

from __future__ import annotations

import os

import torch
import torch.distributed as tdist


def rank_world() -> tuple[int, int]:
    """(rank, world size) from torchrun's ``RANK`` / ``WORLD_SIZE`` (0, 1 outside torchrun)."""
    try:
        return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 0, 1


def active() -> bool:
    return tdist.is_available() and tdist.is_initialized() and tdist.get_world_size() > 1


def init() -> None:
    """Join torchrun's process group (gloo on CPU, nccl with CUDA) if there is more than one rank."""
    if rank_world()[1] <= 1 or not tdist.is_available() or tdist.is_initialized():
        return
    backend = "nccl" if torch.cuda.is_available() and os.environ.get("NODEGRAPH_DIST_BACKEND") != "gloo" else "gloo"
    tdist.init_process_group(backend=backend)
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))


def barrier() -> None:
    if active():
        tdist.barrier()


def sum_counts(counts: dict[str, int]) -> dict[str, int]:
    """Sum integer counters over ranks (the same keys on every rank)."""
    if not active():
        return dict(counts)
    keys = sorted(counts)
    dev = "cuda" if tdist.get_backend() == "nccl" else "cpu"
    t = torch.tensor([float(counts[k]) for k in keys], dtype=torch.float64, device=dev)
    tdist.all_reduce(t)
    return {k: int(v) for k, v in zip(keys, t.tolist(), strict=True)}
