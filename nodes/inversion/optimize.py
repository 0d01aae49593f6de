"""Domain-regularised optimisation of W+ (IDInvert paper sec. 3.2, eq. 5; official
``utils/inverter.py`` ``invert`` and ``diffuse``).

    w* = argmin_w  lambda_pix ||x - G(w)||^2 + lambda_feat ||F(x) - F(G(w))||^2 + lambda_dom ||w - E(G(w))||^2

Each norm is a mean over elements (official ``torch.mean``), per image; the images of a batch are
optimised independently (the loss is the sum of the per-image losses, so Adam, being per-element,
moves each code as if alone). Official defaults: lambda 1.0 / 5e-5 (VGG16 conv4_3, caffe input) /
2.0, Adam lr 0.01, 100 steps, init ``E(x)``. With a ``mask`` m (semantic diffusion) the pixel and
perceptual terms compare ``x m`` with ``G(w) m`` (pixel mean over the full image, as officially) and
the domain term is off.

Differences from the official loop that change the cost, not the result (benchmarks/inversion_speed.py):
F(x) of the fixed target is computed once, under no_grad (the official loop recomputes it each
step); every network is frozen (``requires_grad=False``, eval mode) for the duration, so backward
builds gradients for the code only (officially every G / E / VGG weight gets a gradient that is
never used). Images are on the [-1, 1] scale here; F takes [0, 1] (``(x + 1) / 2``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn as nn

from nodes.common.autograd import frozen


@dataclass(frozen=True)
class Weights:
    """The loss weights (paper eq. 5 lambdas; official defaults)."""

    lambda_pix: float = 1.0
    lambda_feat: float = 5e-5
    lambda_dom: float = 2.0


def as_list(feats: torch.Tensor | Sequence[torch.Tensor]) -> list[torch.Tensor]:
    return [feats] if isinstance(feats, torch.Tensor) else list(feats)


def feature_distance(fa: list[torch.Tensor], fb: list[torch.Tensor]) -> torch.Tensor:
    """Per image: sum over taps of mean (fa - fb)^2 (one tap = the official conv4_3 term). B."""
    return sum(((a - b) ** 2).flatten(1).mean(1) for a, b in zip(fa, fb, strict=True))


def per_image(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean squared difference per image (B)."""
    return ((a - b) ** 2).flatten(1).mean(1)


def invert(G: nn.Module, x: torch.Tensor, w0: torch.Tensor, *, E: nn.Module | None = None,
           F: nn.Module | None = None, mask: torch.Tensor | None = None, weights: Weights = Weights(),
           lr: float = 0.01, steps: int = 100,
           progress: Callable[[int, int, float], None] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Optimise W+ for targets ``x`` (B x 3 x S x S, [-1, 1]) from ``w0`` (B x L x D).

    ``G(w)`` -> [-1, 1] image; ``E(image)`` -> W+; ``F(unit image)`` -> tensor or list of maps.
    ``mask`` B|1 x 1|3 x S x S in [0, 1] or None. Returns (w*, per-step terms ``steps x 4``: total,
    pixel, perceptual, domain, each the batch mean of the unweighted per-image term, total weighted).
    """
    lam = weights
    use_feat = F is not None and lam.lambda_feat != 0
    use_dom = E is not None and lam.lambda_dom != 0 and mask is None
    with frozen(G, E, F):
        target = x if mask is None else x * mask
        with torch.no_grad():
            f_target = as_list(F((target + 1) / 2)) if use_feat else []   # once, not every step
        w = w0.detach().clone().requires_grad_(True)
        opt = torch.optim.Adam([w], lr=lr)
        curve = torch.zeros(steps, 4)
        for step in range(steps):
            rec = G(w)
            rec_m = rec if mask is None else rec * mask
            pix = per_image(target, rec_m)
            feat = feature_distance(as_list(F((rec_m + 1) / 2)), f_target) if use_feat else torch.zeros_like(pix)
            dom = per_image(w, E(rec)) if use_dom else torch.zeros_like(pix)
            total = lam.lambda_pix * pix + lam.lambda_feat * feat + lam.lambda_dom * dom
            opt.zero_grad(set_to_none=True)
            total.sum().backward()
            opt.step()
            curve[step] = torch.stack([total.mean(), pix.mean(), feat.mean(), dom.mean()]).detach().cpu()
            if progress is not None:
                progress(step + 1, steps, float(curve[step, 0]))
    return w.detach(), curve
