"""The one-shot part segmenter of DDS (Repurposing-GANs ``FewShotCNN`` size "S", official
``model_repurpose.py``) and the feature stack it reads.

Features: conv1's and every StyledConv's output of the StyleGAN2 synthesis network (13 maps at
256 px), nearest-upsampled to the largest map's size and concatenated on channels (5,376 channels
at 256 px with the official widths: 512 x 9 + 256 x 2 + 128 x 2). Segmenter: five 3 x 3 convs
C -> 128 -> 64 -> 64 -> 32 -> n_class, dilations 1, 2, 1, 2, 1 (padding = dilation, so the size is
kept), LeakyReLU(0.2) between them, none after the last; state_dict keys ``layers.{0,2,4,6,8}``
as officially (a trained official ``.pt`` loads as is).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

DILATIONS = (1, 2, 1, 2, 1)
WIDTHS = (128, 64, 64, 32)


def concat_features(features: list[torch.Tensor]) -> torch.Tensor:
    """B x sum(C_r) x H x W: every map nearest-upsampled to the largest H x W (official
    ``concat_features``)."""
    h = max(f.shape[-2] for f in features)
    w = max(f.shape[-1] for f in features)
    return torch.cat([F.interpolate(f, (h, w), mode="nearest") for f in features], dim=1)


class FewShotCNN(nn.Module):
    """Concatenated features B x C x H x W -> class logits B x n_class x H x W."""

    def __init__(self, in_ch: int, n_class: int = 2) -> None:
        super().__init__()
        chans = (in_ch, *WIDTHS, n_class)
        layers: list[nn.Module] = []
        for d, c_in, c_out in zip(DILATIONS, chans[:-1], chans[1:], strict=True):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=d, dilation=d), nn.LeakyReLU(0.2)]
        self.layers = nn.Sequential(*layers[:-1])
        self.in_ch = in_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
