"""VGG19 feature extractor for perceptual losses (pix2pixHD / SPADE's ``VGGLoss``).

torchvision's ``vgg19().features`` cut after relu5_1 (indices 0..29), returning the five
activations relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 that SPADE weights 1/32, 1/16, 1/8,
1/4, 1. State-dict keys are torchvision's (``features.{0,2,5,...,28}.{weight,bias}``), so weights
converted from the ImageNet checkpoint (``nodegraph convert vgg19 vgg19-dcbb9e9d.pth OUT``) load
by name. There is no embedded default: the ImageNet weights cannot be fetched at run time and a
perceptual loss on random features is not the paper's loss.
"""

from __future__ import annotations

import torch
import torch.nn as nn

# torchvision's configuration "E" (VGG19) up to relu5_1
_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512)
SLICES = ((0, 2), (2, 7), (7, 12), (12, 21), (21, 30))
"""features[a:b] ends at relu1_1, relu2_1, relu3_1, relu4_1, relu5_1."""
SPADE_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)


def vgg_features(cfg: tuple[int | str, ...]) -> nn.Sequential:
    """torchvision's ``features`` stack for a VGG configuration (3x3 conv + ReLU, "M" = 2x2 max
    pool), so its indices and state-dict keys are torchvision's."""
    layers: list[nn.Module] = []
    c = 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c, int(v), 3, padding=1), nn.ReLU(inplace=False)]
            c = int(v)
    return nn.Sequential(*layers)


def sliced(features: nn.Sequential, slices: tuple[tuple[int, int], ...], x: torch.Tensor) -> list[torch.Tensor]:
    """Run ``features`` on ``x`` once, returning the activation at the end of each ``[a, b)`` slice."""
    out = []
    for a, b in slices:
        for layer in features[a:b]:
            x = layer(x)
        out.append(x)
    return out


class VGG19Features(nn.Module):
    """features[0:30] of torchvision's VGG19; forward returns the 5 relu_k_1 activations."""

    def __init__(self) -> None:
        super().__init__()
        self.features = vgg_features(_CFG)
        assert len(self.features) == SLICES[-1][1]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return sliced(self.features, SLICES, x)


def conv_keys() -> dict[str, tuple[int, ...]]:
    """Expected key -> shape of the converted file."""
    return {k: tuple(v.shape) for k, v in VGG19Features().state_dict().items()}
