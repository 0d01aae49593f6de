"""Perceptual-loss backbones on [0, 1] images, and the (optionally masked) layer distance.

``build(name)`` returns a frozen extractor whose ``forward(image)`` gives a list of feature maps
and the layer weights ``loss.Perceptual`` uses for it by default:

==============  ===========================================  ==================================
backbone        taps (stride)                                default weights
==============  ===========================================  ==================================
effnet_lite0    s2 (2), s4 (4), s8 (8), s16 (16), s32 (32)   1/16, 1/8, 1/4, 1/2, 1
vgg19           relu1_1 (1), 2_1 (2), 3_1 (4), 4_1 (8), 5_1  1/32, 1/16, 1/8, 1/4, 1 (SPADE /
                (16)                                         pix2pixHD ``VGGLoss``)
vgg16           relu1_2 (1), 2_2 (2), 3_3 (4), 4_3 (8), 5_3  1, 1, 1, 1, 1 (the LPIPS / Johnson
                (16)                                         et al. layers)
==============  ===========================================  ==================================

Which EfficientNet-Lite0 taps stand in for which VGG layers, and why: a perceptual term compares
images at a ladder of scales, from edges and colour (shallow, fine) to parts and objects (deep,
coarse). VGG's relu_k_1 sit at strides 1, 2, 4, 8, 16; Lite0's stem already halves the image, so
its stage ends at strides 2, 4, 8, 16 (s2, s4, s8, s16) take the places of relu2_1, relu3_1,
relu4_1, relu5_1 -- the same resolution each -- and s32 (320 ch, the last MBConv stage) adds one
deeper level where relu1_1 (raw-pixel-like edges at full resolution, which the L1 pixel term
usually covers) drops out. The weights keep SPADE's ladder (each level twice the one before,
the deepest 1). Lite0's maps are narrower (16 .. 320 channels against 64 .. 512) and its block
outputs are linear (no ReLU after the projection), so magnitudes differ from VGG's: the
per-layer weights are a param, and ``benchmarks/features_perceptual.py`` gives the cost ratio.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from nodes.common.vgg import sliced, vgg_features

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BACKBONES = ("effnet_lite0", "vgg19", "vgg16")
DEFAULT_WEIGHTS = {
    "effnet_lite0": (1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0),
    "vgg19": (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0),
    "vgg16": (1.0, 1.0, 1.0, 1.0, 1.0),
}
EFFNET_TAPS = ("s2", "s4", "s8", "s16", "s32")

# torchvision's configuration "D" (VGG16), all 13 convs
VGG16_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
VGG16_SLICES = ((0, 4), (4, 9), (9, 16), (16, 23), (23, 30))
"""features[a:b] ends at relu1_2, relu2_2, relu3_3, relu4_3, relu5_3."""


def imagenet_normalize(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] RGB -> (x - mean) / std with torchvision's ImageNet statistics."""
    mean = torch.tensor(IMAGENET_MEAN, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - mean) / std


class VGG16Features(nn.Module):
    """features[0:30] of torchvision's VGG16 (keys ``features.{0,2,5,...,28}.{weight,bias}``);
    ``forward`` takes ImageNet-normalised input and returns relu1_2, 2_2, 3_3, 4_3, 5_3."""

    def __init__(self) -> None:
        super().__init__()
        self.features = vgg_features(VGG16_CFG)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return sliced(self.features, VGG16_SLICES, x)


class UnitInput(nn.Module):
    """Wraps an ImageNet-normalised extractor so it takes [0, 1] images (as all built-ins do)."""

    takes_unit_images = True

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> UnitInput:
        return super().train(False)

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        return self.net(imagenet_normalize(image))


def build(name: str, weights: str = "", base_dir: Path | None = None,
          taps: Sequence[str] | None = None) -> nn.Module:
    """The frozen backbone ``name`` (a ``BACKBONES`` entry) taking [0, 1] images. ``weights``:
    vgg19 / vgg16 only, a manifest name or .safetensors path (default ``vgg19`` / ``vgg16``, from
    ``nodegraph convert vgg19|vgg16``); ``taps``: effnet_lite0 only. Raises ValueError for an
    unknown name or taps, FileNotFoundError (WeightsError) for missing VGG weights."""
    if name == "effnet_lite0":
        from .net import Lite0Features, load_pretrained

        return Lite0Features(load_pretrained(), tuple(taps or EFFNET_TAPS))
    if taps:
        raise ValueError(f"the {name} backbone has fixed layers; 'layers' applies to effnet_lite0 only")
    if name in ("vgg19", "vgg16"):
        from nodegraph import weights as weights_mod
        from nodes.common.vgg import VGG19Features

        net: nn.Module = VGG19Features() if name == "vgg19" else VGG16Features()
        weights_mod.load_into(net, weights or name, base_dir)
        return UnitInput(net)
    raise ValueError(f"unknown backbone {name!r}; choose from {', '.join(BACKBONES)}")


def layer_distance(fa: torch.Tensor, fb: torch.Tensor, kind: str, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean |fa - fb| (``l1``) or (fa - fb)^2 (``mse``) over channels and positions; with ``mask``
    (B x 1 x H x W in [0, 1], any size) the mean is over the mask: the mask is area-resized to the
    layer's grid (each cell keeps the fraction of its pixels that are inside), so
    sum(m d) / (C sum(m)) -- the masked perceptual loss of dual-domain synthesis."""
    d = (fa.float() - fb.float()).abs() if kind == "l1" else (fa.float() - fb.float()).square()
    if mask is None:
        return d.mean()
    m = F.adaptive_avg_pool2d(mask.float(), d.shape[-2:]) if mask.shape[-2:] != d.shape[-2:] else mask.float()
    m = m.expand(d.shape[0], 1, *d.shape[-2:])
    return (d * m).sum() / (m.sum() * d.shape[1]).clamp(min=1e-8)
