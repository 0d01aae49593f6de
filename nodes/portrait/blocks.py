"""Building blocks of the mask-guided portrait networks (Gu et al., CVPR 2019).

Plain ``nn.Module`` pieces in the pix2pixHD style the official code builds on: a norm factory,
down/up conv blocks, the reflect-padded ResNet block of G_m and the 2-scale PatchGAN
discriminator. They live apart from ``portrait_net`` so that the networks read like the
paper's Figure 3.1; ``nodes/common/layers.py`` (SPADE family) is deliberately not shared because the
official portrait code differs in small ways (BatchNorm everywhere, 4x4 transposed convs).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

NORMS = ("batch", "instance", "none")


def norm_layer(kind: str, channels: int) -> nn.Module:
    """BatchNorm (official), InstanceNorm (the thesis tried it and found it worse) or nothing."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r} (choose from {', '.join(NORMS)})")


def down_block(cin: int, cout: int, norm: str) -> nn.Sequential:
    """Conv 4x4 stride 2 + norm + ReLU: one encoder step (halves H and W)."""
    return nn.Sequential(nn.Conv2d(cin, cout, 4, 2, 1), norm_layer(norm, cout), nn.ReLU(True))


def up_block(cin: int, cout: int, norm: str) -> nn.Sequential:
    """Transposed conv 4x4 stride 2 + norm + ReLU: one decoder step (doubles H and W)."""
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, 4, 2, 1), norm_layer(norm, cout), nn.ReLU(True))


class ResnetBlock(nn.Module):
    """Two reflect-padded 3x3 convs with a skip (the 9 blocks at the heart of G_m)."""

    def __init__(self, channels: int, norm: str) -> None:
        super().__init__()
        c = channels
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3), norm_layer(norm, c), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3), norm_layer(norm, c),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class PatchDiscriminator(nn.Module):
    """pix2pixHD's n-layer PatchGAN; returns every layer's output (the last are the logits).

    No Sigmoid at the end: the official code put one there *and* used BCE-with-logits
    (a double sigmoid); the losses here always take raw logits.
    """

    def __init__(self, in_ch: int, ndf: int = 64, n_layers: int = 3, norm: str = "batch") -> None:
        super().__init__()
        kw, pad = 4, 2  # pix2pixHD's padding = ceil((4 - 1) / 2)
        layers: list[nn.Module] = [nn.Sequential(nn.Conv2d(in_ch, ndf, kw, 2, pad), nn.LeakyReLU(0.2, True))]
        ch = ndf
        for i in range(1, n_layers + 1):
            nxt = min(ch * 2, 512)
            stride = 2 if i < n_layers else 1
            layers.append(nn.Sequential(nn.Conv2d(ch, nxt, kw, stride, pad), norm_layer(norm, nxt),
                                        nn.LeakyReLU(0.2, True)))
            ch = nxt
        layers.append(nn.Sequential(nn.Conv2d(ch, 1, kw, 1, pad)))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for layer in self.layers:
            x = layer(x)
            feats.append(x)
        return feats


class MultiscaleDiscriminator(nn.Module):
    """D_1 at full scale and D_2 on a 2x average-pooled copy (eq 3.3; num_D = 2 officially).

    Input is the image concatenated with the one-hot mask it should match (11 + 3 = 14 ch).
    Returns, per scale, the list of that scale's layer outputs (features..., logits).
    """

    def __init__(self, in_ch: int, ndf: int = 64, n_layers: int = 3, num_d: int = 2,
                 norm: str = "batch") -> None:
        super().__init__()
        self.scales = nn.ModuleList(PatchDiscriminator(in_ch, ndf, n_layers, norm) for _ in range(num_d))

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        out = []
        for i, d in enumerate(self.scales):
            if i:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            out.append(d(x))
        return out
