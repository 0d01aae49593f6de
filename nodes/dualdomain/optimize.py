"""The mask-guided latent optimisation of one DDS pass (sec. 3; official ``DDS_main.py`` loops).

W+ (B x L x D) starts at the mean of f(z) over ``n_mean`` z ~ N(0, I) (official 10,000) on every
layer; the noise maps are fixed (drawn once, never optimised); Adam, constant lr 0.01 (official),
``iterations`` steps (official 1002, keeping the step-1000 snapshot; 1,000 here). Gradients reach
the code only (every network frozen); the constant sides of the loss are computed once
(``losses.PassLoss``).

``compat``:

- ``"official"`` reproduces the official loop's numbers: targets and crossover clamped to
  [-1, 1] before the loop (officially done in place while saving the pictures), masks in float64,
  the noise used raw at step 0 and re-normalised (per map: minus mean, over unbiased std) after
  every step, so from step 1 on.
- ``"clean"`` (default): images, masks and loss in float32 (2x less memory and time than float64,
  which GPUs run far slower), the noise normalised once before step 0 so every step sees the same
  maps, nothing clamped. The optimum is the same up to those details; ``official`` is for
  comparing against the released code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn as nn

from nodes.common.autograd import frozen

from .losses import TERMS, PassLoss

Compat = Literal["clean", "official"]


def mean_code(G: nn.Module, n: int, seed: int, batch: int = 1) -> torch.Tensor:
    """W+ init: mean of f(z) over ``n`` z ~ N(0, I) drawn from ``seed`` on the CPU, repeated on
    every layer: B x L x D (official ``latent_mean`` repeated ``n_latent`` times)."""
    with torch.no_grad():
        w = G.mean_latent(n, torch.Generator().manual_seed(seed))
    return w.view(1, 1, -1).repeat(batch, G.n_latent, 1)


def normalize_noise_(noise: list[torch.Tensor]) -> None:
    """Per map, in place: (n - mean) / std (unbiased; official ``noise_normalize_``)."""
    with torch.no_grad():
        for n in noise:
            n.sub_(n.mean()).div_(n.std())


def run_pass(G: nn.Module, loss: PassLoss, w0: torch.Tensor, noise: list[torch.Tensor], *, lr: float = 0.01,
             iterations: int = 1000, every: int = 100, compat: Compat = "clean",
             progress: Callable[[int, int, float], None] | None = None,
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Optimise W+ from ``w0`` with x_hat = ``G.synthesis(w, noise)[0]``. ``noise`` is copied
    (the caller's maps are not normalised in place). Returns (w*, per-step losses ``iterations x
    6``: L then the ``TERMS`` before that step's update, float64; snapshots ``K x B x L x D``, the
    code after steps every, 2 every, .. (official ``latent_path``); K = 0 with ``every`` 0)."""
    noise = [n.detach().clone() for n in noise]
    if compat == "clean":
        normalize_noise_(noise)
    curve = torch.zeros(iterations, 1 + len(TERMS), dtype=torch.float64)
    snaps = []
    with frozen(G):
        w = w0.detach().clone().requires_grad_(True)
        opt = torch.optim.Adam([w], lr=lr)
        for i in range(iterations):
            total, terms = loss(G.synthesis(w, noise)[0])
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
            if compat == "official":
                normalize_noise_(noise)
            curve[i, 0], curve[i, 1:] = total.detach().double(), terms
            if every and (i + 1) % every == 0:
                snaps.append(w.detach().clone())
            if progress is not None:
                progress(i + 1, iterations, float(curve[i, 0]))
    empty = w0.new_zeros(0, *w0.shape)
    return w.detach(), curve, torch.stack(snaps) if snaps else empty
