"""Dual-domain synthesis: the naive crossover and one optimisation pass's loss (Bazazian et al.,
CVPR-W 2022, sec. 3; official ``DDS_main.py`` ``caluclate_loss`` and the two loops).

Symbols: x_s (source image, G1), x_t (target image, G2), y_s / y_t (their part masks, 1 = part),
x_hat = G(w) the image being optimised; every image on the official [-1, 1] scale, B x 3 x S x S;
masks B|1 x 1 x S x S in [0, 1] (hard {0, 1} from the segmenter).

Pass D1 (inside y_s from the target, outside from the source), as the code builds it::

    L = 2 [P(x_hat, x_t, y_s) + P(x_hat, x_s, 1 - y_s)] + MSE(x_hat y_s, x_t y_s)
        + MSE(x_hat (1 - y_s), x_s (1 - y_s)) + 3 MSE(x_hat, x_A),   x_A = x_s (1 - y_s) + x_t y_t

Pass D2 (inside y_s from the source, outside 1 - y_t from the target)::

    L = 2 [P(x_hat, x_s, y_s) + P(x_hat, x_t, 1 - y_t)] + MSE(x_hat y_s, x_s y_s)
        + MSE(x_hat (1 - y_t), x_t (1 - y_t)) + 3 MSE(x_hat, x_B),   x_B = x_s y_s + x_t (1 - y_t)

Each MSE is a plain mean over all elements (B x 3 x S x S), so an empty mask makes its two
terms exactly 0 (never NaN): the pass then fits the other side and the crossover only.

Masked perceptual P(a, b, m) = sum_l mean((f_l(a) m_l - f_l(b) m_l)^2) over the backbone's maps
f_l, after resizing a, b and m bilinearly to ``size`` (official 256); m_l is the mask resized
bilinearly from the previous map's grid to map l's grid (official: x1 to 256, x0.25 to 64, x0.5 to
32). The constant side f_l(b) m_l is computed once per pass (officially at every call, twice a step),
and f_l(x_hat) once per step for both terms (officially twice).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

Direction = Literal["A", "B", "paper"]
Pass = Literal["D1", "D2"]
OFFICIAL_CUTS = (2, 4, 14, 21)
"""torchvision VGG16 ``features`` indices ending each official slice: relu1_1, relu1_2, relu3_2,
relu4_2 (``perceptual_model.py`` n_layers; its comment naming conv1_1 .. conv3_3 is wrong)."""


def crossover(x_s: torch.Tensor, y_s: torch.Tensor, x_t: torch.Tensor, y_t: torch.Tensor,
              direction: Direction = "B") -> torch.Tensor:
    """Naive crossover x_c (sec. 3). "A": ``x_s (1 - y_s) + x_t y_t`` (official
    ``cross_over_source``, D1's); "B": ``x_s y_s + x_t (1 - y_t)`` (official ``cross_over_target``,
    D2's; the poster's x_s y_s + x_t y-bar_t); "paper": ``x_s y_s + x_t y_t``, the formula quoted
    without the complement (not what the code runs). Shapes broadcast (images B x C x H x W,
    masks B|1 x 1 x H x W); no clamping."""
    if direction == "A":
        return x_s * (1 - y_s) + x_t * y_t
    if direction == "B":
        return x_s * y_s + x_t * (1 - y_t)
    if direction == "paper":
        return x_s * y_s + x_t * y_t
    raise ValueError(f"unknown crossover direction {direction!r}; choose A, B or paper")


class OfficialVGG16(nn.Module):
    """The official perceptual net: torchvision VGG16 ``features[0:21]`` cut after relu1_1,
    relu1_2, relu3_2, relu4_2 (64, 64, 256, 512 channels at strides 1, 1, 4, 8), fed the raw
    [-1, 1] image with no ImageNet normalisation (as officially). ``features``: an
    ``nn.Sequential`` with torchvision's indices (``nodes.features.backbones.VGG16Features``'s)."""

    takes_unit_images = False

    def __init__(self, features: nn.Sequential, cuts: tuple[int, ...] = OFFICIAL_CUTS) -> None:
        super().__init__()
        starts = (0, *cuts[:-1])
        self.slices = nn.ModuleList(nn.Sequential(*features[a:b]) for a, b in zip(starts, cuts, strict=True))
        self.requires_grad_(False).eval()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for s in self.slices:
            x = s(x)
            out.append(x)
        return out


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear (align_corners False) to size x size; identity at the same size."""
    return x if x.shape[-1] == size and x.shape[-2] == size else F.interpolate(x, size=(size, size),
                                                                               mode="bilinear")


def chained_masks(m: torch.Tensor, maps: list[torch.Tensor]) -> list[torch.Tensor]:
    """The mask on each map's grid, each resized bilinearly from the previous one (official)."""
    out = []
    for f in maps:
        m = m if m.shape[-2:] == f.shape[-2:] else F.interpolate(m, size=f.shape[-2:], mode="bilinear")
        out.append(m)
    return out


class MaskedPerceptual:
    """P(., b, m) for a constant b and m: ``f_l(b) m_l`` and ``m_l`` computed once at construction.
    ``feats``: image on the [-1, 1] scale at ``size`` -> list of maps (``as_backbone`` wraps one)."""

    def __init__(self, feats: Callable[[torch.Tensor], list[torch.Tensor]], b: torch.Tensor, m: torch.Tensor,
                 size: int) -> None:
        self.feats, self.size = feats, size
        with torch.no_grad():
            fb = feats(resize(b, size))
        self.masks = chained_masks(resize(m, size), fb)
        self.fb_m = [f * ml for f, ml in zip(fb, self.masks, strict=True)]

    def __call__(self, a: torch.Tensor) -> torch.Tensor:
        return self.of_features(self.feats(resize(a, self.size)))

    def of_features(self, fa: list[torch.Tensor]) -> torch.Tensor:
        """P from the maps of a (already through ``feats`` at ``size``): shared by both terms of a
        pass, so x_hat goes through the backbone once per step (officially twice)."""
        return sum(F.mse_loss(f * ml, t) for f, ml, t in zip(fa, self.masks, self.fb_m, strict=True))


def as_backbone(net: nn.Module) -> Callable[[torch.Tensor], list[torch.Tensor]]:
    """[-1, 1] image -> maps: raw for nets with ``takes_unit_images = False`` (the official VGG16
    slices), else through (x + 1) / 2 (our [0, 1] backbones, e.g. EfficientNet-Lite0)."""
    if getattr(net, "takes_unit_images", True):
        return lambda x: list(net((x + 1) / 2))
    return lambda x: list(net(x))


TERMS = ("perceptual_source", "perceptual_target", "mse_source", "mse_target", "mse_crossover")


class PassLoss:
    """One pass's loss (module docstring) for constant x_s, x_t, y_s, y_t; ``__call__(x_hat)`` ->
    (L scalar, the five unweighted terms in ``TERMS`` order). ``official``: the masks in float64
    (``np.zeros`` + ``ToTensor`` officially), so every masked term is float64 and the crossover
    MSE float32, as the official loop computes them; else all in the images' dtype."""

    def __init__(self, feats: Callable[[torch.Tensor], list[torch.Tensor]], x_s: torch.Tensor,
                 x_t: torch.Tensor, y_s: torch.Tensor, y_t: torch.Tensor, pass_: Pass, size: int,
                 official: bool = False) -> None:
        if official:  # official: imgs_gen.clamp_ before the loop, float64 masks
            x_s, x_t, y_s, y_t = x_s.clamp(-1, 1), x_t.clamp(-1, 1), y_s.double(), y_t.double()
        if pass_ == "D1":
            (m_s, m_t), x_c = (1 - y_s, y_s), crossover(x_s, y_s, x_t, y_t, "A")
        elif pass_ == "D2":
            (m_s, m_t), x_c = (y_s, 1 - y_t), crossover(x_s, y_s, x_t, y_t, "B")
        else:
            raise ValueError(f"unknown pass {pass_!r}; choose D1 or D2")
        if official:
            x_c = x_c.clamp(-1, 1)  # official cross_over_*.clamp_ while saving the picture
        self.m_s, self.m_t, self.x_c = m_s, m_t, x_c.float()
        self.xs_m, self.xt_m = x_s * m_s, x_t * m_t
        self.p_s = MaskedPerceptual(feats, x_s, m_s, size)
        self.p_t = MaskedPerceptual(feats, x_t, m_t, size)

    def __call__(self, x_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fa = self.p_s.feats(resize(x_hat, self.p_s.size))  # one backbone pass for both terms
        p_s, p_t = self.p_s.of_features(fa), self.p_t.of_features(fa)
        mse_s = F.mse_loss(x_hat * self.m_s, self.xs_m)
        mse_t = F.mse_loss(x_hat * self.m_t, self.xt_m)
        mse_c = F.mse_loss(x_hat.float(), self.x_c)
        total = 2 * (p_t + p_s) + (mse_s + mse_t) + 3 * mse_c
        terms = torch.stack([t.detach().double() for t in (p_s, p_t, mse_s, mse_t, mse_c)])
        return total, terms
