"""Low-level StyleGAN2 ops in pure PyTorch: FIR resampling (upfirdn2d), blur kernels and the
fused bias + leaky ReLU.

The official code (rosinality ``op/``) JIT-compiles CUDA kernels at import and falls back to
``upfirdn2d_native`` / a leaky-ReLU branch on CPU. These are the fallbacks' semantics, written
once for every device: nothing is compiled, nothing is built at import.

Conventions (as the official ops): tensors are N x C x H x W; a kernel is a 2-D FIR filter
applied as a true convolution (flipped); ``pad = (p0, p1)`` pads (negative: crops) both spatial
axes by ``p0`` before and ``p1`` after the zero-insertion upsampling.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

BLUR_KERNEL: tuple[int, ...] = (1, 3, 3, 1)
"""The official resampling filter (a binomial low-pass, StyleGAN2 paper sec. 2 / appendix B)."""

LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)
"""He gain of leaky ReLU: keeps the activation variance at 1 (StyleGAN2, ``fused_lrelu``)."""


def make_kernel(k: Sequence[float]) -> torch.Tensor:
    """The separable 2-D filter ``outer(k, k) / sum``: a 1-D list of taps -> K x K float32,
    summing to 1 (rosinality ``model.make_kernel``)."""
    t = torch.tensor(list(k), dtype=torch.float32)
    if t.dim() == 1:
        t = t[None, :] * t[:, None]
    return t / t.sum()


def upfirdn2d(x: torch.Tensor, kernel: torch.Tensor, up: int = 1, down: int = 1,
              pad: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """Upsample by zero insertion (``up``), pad, FIR-filter with ``kernel``, keep every
    ``down``-th sample: N x C x H x W -> N x C x H' x W' with
    ``H' = (H * up + p0 + p1 - K) // down + 1``.

    Same arithmetic as rosinality ``upfirdn2d_native`` (every channel filtered alike), run as one
    depthwise convolution: for ``up = 1`` a conv2d, for ``up = 2`` with ``p0 = p1 + 1 <= K - 1``
    (StyleGAN2's (2, 1) with 4 taps) a stride-2 transposed conv with padding ``K - 1 - p0``, which
    is zero insertion + pad + filter in one op; any other case zero-inserts explicitly.
    """
    c, (kh, kw) = x.shape[1], kernel.shape
    p0, p1 = pad
    kernel = kernel.to(x.dtype)
    if up == 2 and p0 == p1 + 1 and 0 <= p1 and p0 <= min(kh, kw) - 1:
        w = kernel.expand(c, 1, kh, kw)  # transposed conv correlates with the unflipped kernel
        out = F.conv_transpose2d(x, w, stride=2, padding=(kh - 1 - p0, kw - 1 - p0), groups=c)
        return out if down == 1 else out[:, :, ::down, ::down]
    if up > 1:
        n, _, h, wd = x.shape
        z = x.new_zeros(n, c, h * up, wd * up)
        z[:, :, ::up, ::up] = x
        x = z
    if p0 < 0 or p1 < 0:
        hh, ww = x.shape[-2:]
        x = x[:, :, max(-p0, 0): hh - max(-p1, 0), max(-p0, 0): ww - max(-p1, 0)]
        p0, p1 = max(p0, 0), max(p1, 0)
    w = torch.flip(kernel, [0, 1]).expand(c, 1, kh, kw)
    if p0 == p1:
        return F.conv2d(x, w, stride=down, padding=p0, groups=c)
    return F.conv2d(F.pad(x, [p0, p1, p0, p1]), w, stride=down, groups=c)


def fused_leaky_relu_(x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """In-place ``fused_leaky_relu`` on a tensor nobody else holds (inference only)."""
    if bias is not None:
        x.add_(bias.view(1, bias.shape[0], *([1] * (x.dim() - 2))))
    return F.leaky_relu_(x, LRELU_SLOPE).mul_(LRELU_GAIN)


def fused_leaky_relu(x: torch.Tensor, bias: torch.Tensor | None,
                     negative_slope: float = LRELU_SLOPE, scale: float = LRELU_GAIN) -> torch.Tensor:
    """``leaky_relu(x + bias, 0.2) * sqrt(2)``, the bias broadcast over dim 1 (channels) of an
    N x C (x H x W) tensor (rosinality ``fused_leaky_relu``, CPU branch)."""
    if bias is not None:
        x = x + bias.view(1, bias.shape[0], *([1] * (x.dim() - 2)))
    return F.leaky_relu(x, negative_slope) * scale
