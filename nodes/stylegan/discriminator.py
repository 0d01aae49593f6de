"""StyleGAN2 residual discriminator (Karras et al. 2020, fig. 7b; rosinality ``Discriminator``,
same state_dict keys).

    image (B x 3 x size x size, [-1, 1]) -> ConvLayer 1x1 (fromRGB)
      -> ResBlock per resolution size .. 8 (conv 3x3, blur + conv 3x3 stride 2; skip: blur + 1x1
         stride 2, no bias; sum / sqrt 2)
      -> minibatch stddev (groups of <= 4, one feature) -> ConvLayer 3x3 -> EqualLinear (lrelu)
      -> EqualLinear -> logit (B x 1)
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .net import Blur, EqualLinear, FusedLeakyReLU, StyleGANConfig
from .ops import BLUR_KERNEL


class EqualConv2d(nn.Module):
    """Conv with equalised learning rate (weight used as ``weight / sqrt(in k^2)``)."""

    def __init__(self, in_ch: int, out_ch: int, k: int, stride: int = 1, padding: int = 0,
                 bias: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, k, k))
        self.scale = 1 / math.sqrt(in_ch * k * k)
        self.stride, self.padding = stride, padding
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, self.stride, self.padding)

    def __repr__(self) -> str:
        o, i, k, _ = self.weight.shape
        return f"EqualConv2d({i}, {o}, {k}, stride={self.stride}, padding={self.padding})"


class ConvLayer(nn.Sequential):
    """[Blur] -> EqualConv2d (stride 2 when ``downsample``) -> [FusedLeakyReLU]; keys ``0, 1, 2``
    as the official Sequential (the blur, when present, is index 0)."""

    def __init__(self, in_ch: int, out_ch: int, k: int, downsample: bool = False,
                 blur_kernel: tuple[int, ...] = BLUR_KERNEL, bias: bool = True, activate: bool = True) -> None:
        layers: list[nn.Module] = []
        if downsample:
            p = (len(blur_kernel) - 2) + (k - 1)
            layers.append(Blur(blur_kernel, pad=((p + 1) // 2, p // 2)))
            stride, padding = 2, 0
        else:
            stride, padding = 1, k // 2
        layers.append(EqualConv2d(in_ch, out_ch, k, stride, padding, bias=bias and not activate))
        if activate:
            layers.append(FusedLeakyReLU(out_ch, bias=bias))
        super().__init__(*layers)


class ResBlock(nn.Module):
    """Residual block halving the resolution: (conv2(conv1(x)) + skip(x)) / sqrt(2)."""

    def __init__(self, in_ch: int, out_ch: int, blur_kernel: tuple[int, ...] = BLUR_KERNEL) -> None:
        super().__init__()
        self.conv1 = ConvLayer(in_ch, in_ch, 3)
        self.conv2 = ConvLayer(in_ch, out_ch, 3, downsample=True, blur_kernel=blur_kernel)
        self.skip = ConvLayer(in_ch, out_ch, 1, downsample=True, blur_kernel=blur_kernel, activate=False, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.conv2(self.conv1(x)) + self.skip(x)) / math.sqrt(2)


def stddev_group(batch: int, group: int = 4) -> int:
    """Largest divisor of ``batch`` that is <= ``group`` (official: min(batch, 4), which must divide)."""
    g = min(batch, group)
    while batch % g:
        g -= 1
    return g


class Discriminator(nn.Module):
    """D: image B x 3 x size x size in [-1, 1] -> logits B x 1 (real > 0 after training).

    Judge fake and real in separate calls: minibatch stddev mixes the samples of a batch.
    """

    def __init__(self, cfg: StyleGANConfig, blur_kernel: tuple[int, ...] = BLUR_KERNEL) -> None:
        super().__init__()
        self.cfg = cfg
        ch = cfg.channels()
        convs: list[nn.Module] = [ConvLayer(3, ch[cfg.size], 1)]
        c_in = ch[cfg.size]
        for i in range(cfg.log_size, 2, -1):
            convs.append(ResBlock(c_in, ch[2 ** (i - 1)], blur_kernel))
            c_in = ch[2 ** (i - 1)]
        self.convs = nn.Sequential(*convs)
        self.stddev_group, self.stddev_feat = 4, 1
        self.final_conv = ConvLayer(c_in + 1, ch[4], 3)
        self.final_linear = nn.Sequential(EqualLinear(ch[4] * 4 * 4, ch[4], activation="fused_lrelu"),
                                          EqualLinear(ch[4], 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.convs(x)
        b, c, h, w = out.shape
        g = stddev_group(b, self.stddev_group)
        # samples i, i + b/g, i + 2b/g, ... form a group (the official view(group, -1, ...))
        s = out.view(g, -1, self.stddev_feat, c // self.stddev_feat, h, w)
        s = torch.sqrt(s.var(0, unbiased=False) + 1e-8).mean([2, 3, 4], keepdim=True).squeeze(2)
        out = torch.cat([out, s.repeat(g, 1, h, w)], 1)
        return self.final_linear(self.final_conv(out).view(b, -1))
