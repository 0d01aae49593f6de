"""Stage-II shape2image generator: pix2pix's U-Net (``UnetGenerator``, Isola et al. 2017 §3.2.1)
with the non-shape attributes injected at the bottleneck through conditioning augmentation.

Paper §3.3: "skip connections between each layer i and layer n - i ... Each skip connection
directly concatenates entire channels at layer i with those at layer n - i." The block layout
is pix2pix's (num_downs = log2(size): 6 at 64 px, giving a 1 x 1 bottleneck)::

    enc  conv(1 -> ngf) | LReLU conv BN (ngf -> 2ngf -> 4ngf -> 8ngf -> 8ngf) | LReLU conv (8ngf, 1 x 1)
    dec  ReLU convT BN [Dropout 0.5 in the num_downs - 5 middle 8ngf blocks]; output block ReLU convT Tanh

Where the attributes enter is not in the paper. "At the bottleneck" with a 1 x 1 bottleneck is a
channel concat of the CA code c_o to the innermost up-conv's input (research note §4);
``inject_decoder`` also concatenates c_o, tiled, before the 2 and 4 px up-convs (AttGAN's
``inject_layers``), giving the colours more say in a short training. Input: a mask in [0, 1]
(fed as 2s - 1); output: RGB in [-1, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .net import CANet, init_weights


@dataclass(frozen=True)
class Shape2ImageConfig:
    """pix2pix: ngf 64, dropout on, BatchNorm. CPU default ngf 16; t_dim 270 non-shape attributes.
    Preset ``glu``: ngf 16 with StackGAN-v2's GLU CA (sigma may drop below 1; v1's ReLU CA keeps
    sigma >= 1, so the colour code fights unit noise: the first shipped weights' KL was 0.0002 and
    their colours ignored a_o)."""

    size: int = 64
    t_dim: int = 270
    c_dim: int = 128
    ngf: int = 16
    ca_act: str = "relu"
    inject_decoder: bool = False
    dropout: bool = True


PRESETS_S2 = {"cpu": Shape2ImageConfig(), "glu": Shape2ImageConfig(ca_act="glu"), "pix2pix": Shape2ImageConfig(ngf=64)}


def _widths(cfg: Shape2ImageConfig) -> list[int]:
    """Encoder output widths, outermost first: ngf, 2ngf, 4ngf, then 8ngf down to 1 x 1."""
    n = int(math.log2(cfg.size))
    return [cfg.ngf * min(2 ** i, 8) for i in range(n)]


class Shape2ImageNet(nn.Module):
    """G_II(s, a_o) -> x_g. Forward returns (image in [-1, 1], mu, logvar, kl)."""

    def __init__(self, cfg: Shape2ImageConfig) -> None:
        super().__init__()
        if cfg.size & (cfg.size - 1) or cfg.size < 32:
            raise ValueError(f"Shape2Image size must be a power of two >= 32, got {cfg.size}")
        self.cfg = cfg
        w = _widths(cfg)
        n = len(w)
        self.ca = CANet(cfg.t_dim, cfg.c_dim, cfg.ca_act)
        downs: list[nn.Module] = [nn.Conv2d(1, w[0], 4, 2, 1, bias=False)]
        for i in range(1, n):
            norm = [] if i == n - 1 else [nn.BatchNorm2d(w[i])]  # innermost down has no norm
            downs.append(nn.Sequential(nn.LeakyReLU(0.2, True), nn.Conv2d(w[i - 1], w[i], 4, 2, 1, bias=False), *norm))
        self.downs = nn.ModuleList(downs)
        ups: list[nn.Module] = []
        for i in range(n - 1, 0, -1):  # up-conv producing the map that meets encoder level i - 1
            cin = w[i] if i == n - 1 else 2 * w[i]
            cin += cfg.c_dim if self._injects(i, n) else 0
            drop = [nn.Dropout(0.5)] if cfg.dropout and 4 <= i <= n - 2 else []  # the n - 5 middle 8ngf blocks
            ups.append(nn.Sequential(nn.ReLU(True), nn.ConvTranspose2d(cin, w[i - 1], 4, 2, 1, bias=False),
                                     nn.BatchNorm2d(w[i - 1]), *drop))
        ups.append(nn.Sequential(nn.ReLU(True), nn.ConvTranspose2d(2 * w[0], 3, 4, 2, 1), nn.Tanh()))
        self.ups = nn.ModuleList(ups)
        self.apply(init_weights)

    def _injects(self, i: int, n: int) -> bool:
        """c_o enters the innermost up-conv (1 x 1 input), and with inject_decoder the 2 and 4 px ones."""
        return i == n - 1 or (self.cfg.inject_decoder and i >= n - 3)

    def forward(self, s: torch.Tensor, a_o: torch.Tensor,
                eps: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        c, mu, logvar, kl = self.ca(a_o, eps)
        h, skips = s * 2 - 1, []
        for down in self.downs:
            h = down(h)
            skips.append(h)  # (B, w_i, size / 2^(i+1), ...)
        n = len(self.downs)
        for k, up in enumerate(self.ups[:-1]):
            i = n - 1 - k
            if self._injects(i, n):
                h = torch.cat([h, c[:, :, None, None].expand(-1, -1, h.shape[2], h.shape[3])], 1)
            h = torch.cat([skips[i - 1], up(h)], 1)  # skip: layer i-1 concatenated with its mirror
        return self.ups[-1](h), mu, logvar, kl
