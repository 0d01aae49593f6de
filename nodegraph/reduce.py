"""Dataset-level statistics of a mapped job: mean and covariance of a per-item output over all
items, summed across torchrun ranks with ``torch.distributed.all_reduce`` -- what a Fréchet
distance needs (mu, Sigma of a feature) without keeping every feature.

An output of rank >= 2 is N rows (its first dim) of flattened features; rank 1 is one row; a
0-d value is a row of one. Sums are float64: ``n``, ``sum x``, ``sum x x^T``; then
``mu = s / n`` and ``Sigma = (ss - n mu mu^T) / (n - 1)`` (the unbiased estimate, as
``numpy.cov``). Items done in an earlier run (resume) are not in the sums; ``n`` says how many rows
are.
"""

from __future__ import annotations

from pathlib import Path

import torch

from . import dist


def rows(v: torch.Tensor) -> torch.Tensor:
    v = v.detach().to(torch.float64).cpu()
    if v.dim() == 0:
        return v.reshape(1, 1)
    if v.dim() == 1:
        return v.reshape(1, -1)
    return v.reshape(v.shape[0], -1)


class Moments:
    """Running ``n``, ``sum x``, ``sum x x^T`` of one output."""

    def __init__(self) -> None:
        self.n = 0.0
        self.s: torch.Tensor | None = None
        self.ss: torch.Tensor | None = None

    def add(self, v: torch.Tensor) -> None:
        x = rows(v)
        if self.s is None:
            self.s = torch.zeros(x.shape[1], dtype=torch.float64)
            self.ss = torch.zeros(x.shape[1], x.shape[1], dtype=torch.float64)
        if x.shape[1] != self.s.shape[0]:
            raise ValueError(f"feature size changed from {self.s.shape[0]} to {x.shape[1]}")
        self.n += x.shape[0]
        self.s += x.sum(0)
        self.ss += x.T @ x

    def all_reduce(self, dim: int) -> None:
        """Sum over ranks (every rank must call it, with the feature size ``dim``)."""
        if self.s is None:
            self.s = torch.zeros(dim, dtype=torch.float64)
            self.ss = torch.zeros(dim, dim, dtype=torch.float64)
        if not dist.active():
            return
        dev = "cuda" if torch.distributed.get_backend() == "nccl" else "cpu"
        flat = torch.cat([torch.tensor([self.n], dtype=torch.float64), self.s, self.ss.flatten()]).to(dev)
        torch.distributed.all_reduce(flat)
        flat = flat.cpu()
        self.n, self.s, self.ss = float(flat[0]), flat[1:1 + dim], flat[1 + dim:].reshape(dim, dim)

    def mu_sigma(self) -> tuple[torch.Tensor, torch.Tensor]:
        assert self.s is not None and self.ss is not None
        n = max(self.n, 1.0)
        mu = self.s / n
        sigma = (self.ss - n * torch.outer(mu, mu)) / max(self.n - 1, 1.0)
        return mu, sigma


def reduce_and_save(moments: dict[str, Moments], path: Path, write: bool) -> dict[str, int]:
    """All-reduce every key's moments (feature sizes agreed across ranks first) and, where
    ``write``, save ``<key>.mu``, ``<key>.sigma``, ``<key>.n`` as safetensors; returns rows per key."""
    from safetensors.torch import save_file

    keys = sorted(moments)
    dims = torch.tensor([float(moments[k].s.shape[0]) if moments[k].s is not None else 0.0 for k in keys])
    if dist.active():
        torch.distributed.all_reduce(dims, op=torch.distributed.ReduceOp.MAX)
    tensors, counts = {}, {}
    for k, d in zip(keys, dims.tolist(), strict=True):
        m = moments[k]
        m.all_reduce(int(d))
        mu, sigma = m.mu_sigma()
        tensors.update({f"{k}.mu": mu, f"{k}.sigma": sigma, f"{k}.n": torch.tensor(m.n)})
        counts[k] = int(m.n)
    if write and tensors:
        from .fsutil import publish

        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp))
        publish(tmp, path)
    return counts
