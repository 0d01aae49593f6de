"""Data streams and process groups for training.

The stream of items is the concatenation of per-epoch permutations, each drawn from
``(seed, epoch)``; step ``s`` takes global positions ``[s*B, (s+1)*B)``. So the batch of any step
is a pure function of (seed, step, B): resuming needs no loader state, and under ``torchrun``
rank ``r`` of ``W`` takes the ``r``-th slice of the same global batch (one process with batch B
sees exactly what W processes with B/W each see together).
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, Sampler, default_collate


def derive_seed(*parts: int | str) -> int:
    """A 63-bit seed from a tuple (stable across runs and machines)."""
    h = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(h[:8], "little") & ((1 << 63) - 1)


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % (2**32))


class StreamSampler(Sampler[list[int]]):
    """Yields, forever, this rank's slice of each global batch, starting at ``start_step``."""

    def __init__(self, n: int, batch_size: int, seed: int, start_step: int = 0,
                 rank: int = 0, world: int = 1) -> None:
        if n <= 0:
            raise ValueError("the dataset is empty")
        self.n, self.batch, self.seed = n, batch_size, seed
        self.start_step, self.rank, self.world = start_step, rank, world
        self.local = batch_size // world
        self._perm: tuple[int, torch.Tensor] | None = None

    def perm(self, epoch: int) -> torch.Tensor:
        if self._perm is None or self._perm[0] != epoch:
            g = torch.Generator().manual_seed(derive_seed("epoch", self.seed, epoch))
            self._perm = (epoch, torch.randperm(self.n, generator=g))
        return self._perm[1]

    def indices(self, step: int) -> list[int]:
        first = step * self.batch + self.rank * self.local
        out = []
        for pos in range(first, first + self.local):
            out.append(int(self.perm(pos // self.n)[pos % self.n]))
        return out

    def __iter__(self) -> Iterator[list[int]]:
        step = self.start_step
        while True:
            yield self.indices(step)
            step += 1

    def __len__(self) -> int:  # DataLoader asks; the stream is unbounded
        return 2**62


def _worker_init(worker_id: int) -> None:
    s = torch.initial_seed() % (2**32)
    random.seed(s)
    np.random.seed(s)


def make_loader(ds: Dataset, sampler: StreamSampler, workers: int, pin: bool, seed: int) -> Iterator[Any]:
    loader = DataLoader(ds, batch_sampler=sampler, num_workers=workers, collate_fn=default_collate,
                        pin_memory=pin, worker_init_fn=_worker_init if workers else None,
                        persistent_workers=workers > 0,
                        # own generator: creating the iterator must not draw from the global RNG
                        generator=torch.Generator().manual_seed(derive_seed("loader", seed)))
    return iter(loader)


@dataclass
class Dist:
    """This process's place in a ``torchrun`` job (world 1 = a plain run)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    BUCKET: ClassVar[int] = 1 << 22
    """Elements per gradient all-reduce (bounds the flat buffer, as DDP's 25 MB buckets do)."""

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def mean_(self, t: torch.Tensor) -> torch.Tensor:
        if self.active:
            dist.all_reduce(t)
            t /= self.world
        return t

    def sum_(self, t: torch.Tensor) -> torch.Tensor:
        if self.active:
            dist.all_reduce(t)
        return t

    def broadcast_module(self, module: torch.nn.Module) -> None:
        """Make every rank start from rank 0's parameters and buffers."""
        if not self.active:
            return
        with torch.no_grad():
            for t in list(module.parameters()) + list(module.buffers()):
                dist.broadcast(t.data, src=0)

    def average_grads(self, params: list[torch.nn.Parameter]) -> None:
        """All-reduce gradients (mean over ranks), as DistributedDataParallel's reducer does.

        A parameter that got no gradient on any rank keeps ``grad=None`` (the optimizer skips it,
        as in a single process); one that got a gradient on some ranks is averaged with zeros.
        """
        if not self.active or not params:
            return
        has = torch.tensor([p.grad is not None for p in params], dtype=torch.float32, device=params[0].device)
        dist.all_reduce(has)
        bucket: list[torch.nn.Parameter] = []
        size = 0
        for p, h in zip(params, has.tolist(), strict=True):
            if h == 0:
                p.grad = None
                continue
            if p.grad is None:  # some other rank has a gradient for it: contribute zeros
                p.grad = torch.zeros_like(p)
            bucket.append(p)
            size += p.numel()
            if size >= self.BUCKET:
                self._reduce(bucket)
                bucket, size = [], 0
        if bucket:
            self._reduce(bucket)

    def _reduce(self, bucket: list[torch.nn.Parameter]) -> None:
        flat = torch.cat([p.grad.reshape(-1).float() for p in bucket])  # type: ignore[union-attr]
        dist.all_reduce(flat)
        flat /= self.world
        i = 0
        for p in bucket:
            n = p.numel()
            p.grad = flat[i:i + n].view_as(p).to(p.dtype).clone()
            i += n


class GracefulStop:
    """Ctrl-C / SIGTERM ask the loop to stop after the current step; a second Ctrl-C stops at once.

    ``agreed()`` is true on every rank as soon as any rank was asked (torchrun forwards the
    signal to each worker, but not necessarily within the same step).
    """

    def __init__(self, dist_: Dist, device: torch.device) -> None:
        self.dist, self.device = dist_, device
        self.requested = False
        self._old: dict[int, Any] = {}

    def _handler(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> GracefulStop:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, h in self._old.items():
            signal.signal(sig, h)
        self._old.clear()

    def agreed(self) -> bool:
        flag = torch.tensor([1.0 if self.requested else 0.0], device=self.device)
        return bool(self.dist.sum_(flag).item() > 0)


def init_dist(device: torch.device) -> tuple[Dist, torch.device]:
    """Join the process group when started by torchrun (gloo on CPU, nccl on CUDA)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(), device
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Dist(rank, world, local), device
