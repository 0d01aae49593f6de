"""IDInvert's domain-guided encoder E and its perceptual network F (genforce/idinvert_pytorch
``models/stylegan_encoder_network.py``, ``models/perceptual_model.py``; paper sec. 3.1).

Encoder, ``size`` = 256 (official; ``num_blocks = log2 size``)::

    x [-1,1] 3 x 256 x 256 -> block0: conv3x3 (no bias) 3->64 -> BN -> lrelu 0.2
      -> [avgpool 2x -> ResBlock] x (num_blocks - 2):  128: 64->128, 64: ->256, 32: ->512,
                                                       16: ->1024, 8: 1024, 4: 1024
      -> block{last}: flatten (1024 * 4 * 4) -> FC (no bias, x 1/sqrt(fan_in)) -> BN -> W+ (B x 14 x 512)
    ResBlock(c_in, c_out):  y = shortcut(x) (1x1 conv + BN + lrelu if c_in != c_out, else x)
                            x = lrelu(BN(conv3x3(x) + b1)); x = lrelu(BN(conv3x3(x) + b2)); out x + y
                            (hidden channels min(c_in, c_out))

BN: eps 1e-5, momentum 0.1 (TF decay 0.9), gamma frozen (``requires_grad=False``), beta trained.
The official released model sets ``use_wscale=False``: its residual convs compute
``wscale(conv(x) / s)`` with ``wscale`` multiplying by the same ``s``, i.e. a plain conv plus a bias
(written so here). ``EncoderConfig(channels_base, channels_max)`` is the width knob: official
64 / 1024; our CPU encoders use fewer. ``n_latent = 2 (log2 size - 1)`` = the generator's.

Perceptual F: VGG16 ``layer0 .. layer22`` (ReLU of conv4_3, 512 x H/8 x W/8) with the official
input mapping [-1, 1] -> [0, 255] -> BGR -> minus (103.939, 116.779, 123.68) (Keras caffe mode).
Our ``CaffeVGG16`` takes [0, 1] images (x 255 is the same map) and reuses
``nodes.features.backbones.VGG16Features``'s layer list (identical indices). Networks work in
[-1, 1] except F; the nodes convert.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
CONV4_3_END = 23
"""VGG16 ``features[:23]`` ends at the ReLU of conv4_3 (official ``output_layer_idx=23``)."""


@dataclass(frozen=True)
class EncoderConfig:
    """``size`` input px (8..1024), ``w_dim`` D, channels ``min(channels_base * 2^k, channels_max)``
    for block k (official 64 / 1024)."""

    size: int = 256
    w_dim: int = 512
    channels_base: int = 64
    channels_max: int = 1024

    def __post_init__(self) -> None:
        if self.size < 8 or self.size & (self.size - 1):
            raise ValueError(f"size must be a power of two >= 8, got {self.size}")

    @property
    def n_blocks(self) -> int:
        return int(math.log2(self.size))

    @property
    def n_latent(self) -> int:
        return 2 * (self.n_blocks - 1)

    def channels(self) -> list[int]:
        """Output channels of block0 .. block{n_blocks - 2}."""
        return [min(self.channels_base * 2 ** k, self.channels_max) for k in range(self.n_blocks - 1)]

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | dict[str, Any]) -> EncoderConfig:
        data = json.loads(text) if isinstance(text, str) else dict(text)
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


PRESETS = {"official256": EncoderConfig(256), "cpu64": EncoderConfig(64, channels_base=32, channels_max=256)}


class BatchNormLayer(nn.Module):
    """BatchNorm2d (eps 1e-5, momentum 0.1) under ``.bn`` as the official wrapper; gamma frozen."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, eps=1e-5, momentum=0.1)
        self.bn.weight.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(x)


class Bias(nn.Module):
    """The official ``WScaleLayer``'s bias (its scale cancels in the released use_wscale=False model)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bias.view(1, -1, 1, 1)


class FirstBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.bn = BatchNormLayer(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.bn(self.conv(x)), 0.2)


class ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.add_shortcut = c_in != c_out
        if self.add_shortcut:
            self.conv = nn.Conv2d(c_in, c_out, 1, bias=False)
            self.bn = BatchNormLayer(c_out)
        hidden = min(c_in, c_out)
        self.conv1 = nn.Conv2d(c_in, hidden, 3, padding=1, bias=False)
        self.wscale1, self.bn1 = Bias(hidden), BatchNormLayer(hidden)
        self.conv2 = nn.Conv2d(hidden, c_out, 3, padding=1, bias=False)
        self.wscale2, self.bn2 = Bias(c_out), BatchNormLayer(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.leaky_relu(self.bn(self.conv(x)), 0.2) if self.add_shortcut else x
        x = F.leaky_relu(self.bn1(self.wscale1(self.conv1(x))), 0.2)
        x = F.leaky_relu(self.bn2(self.wscale2(self.conv2(x))), 0.2)
        return x + y


class LastBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.fc = nn.Linear(c_in, c_out, bias=False)
        self.scale = 1 / math.sqrt(c_in)
        self.bn = BatchNormLayer(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fc(x.flatten(1)) * self.scale                     # B x C x 4 x 4 -> B x (L D)
        return self.bn(x[:, :, None, None])[:, :, 0, 0]


class Encoder(nn.Module):
    """E: image B x 3 x size x size in [-1, 1] -> W+ B x n_latent x w_dim."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.size, self.n_latent, self.w_dim = cfg.size, cfg.n_latent, cfg.w_dim
        ch = cfg.channels()
        self.block0 = FirstBlock(3, ch[0])
        for k in range(1, cfg.n_blocks - 1):
            self.add_module(f"block{k}", ResBlock(ch[k - 1], ch[k]))
        self.add_module(f"block{cfg.n_blocks - 1}", LastBlock(ch[-1] * 16, cfg.w_dim * cfg.n_latent))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or tuple(x.shape[1:]) != (3, self.size, self.size):
            raise ValueError(f"E takes B x 3 x {self.size} x {self.size}, got {tuple(x.shape)}")
        x = self.block0(x)
        for k in range(1, self.cfg.n_blocks - 1):
            x = getattr(self, f"block{k}")(F.avg_pool2d(x, 2))
        x = getattr(self, f"block{self.cfg.n_blocks - 1}")(x)
        return x.view(-1, self.n_latent, self.w_dim)


def match_w_statistics(encoder: Encoder, mean: torch.Tensor, std: torch.Tensor) -> None:
    """Start E's codes in the generator's W (a training init; not in the official code): the last
    BN's frozen gamma := ``std`` and its beta := ``mean`` (both D, the per-dimension statistics of
    w = f(z), repeated for every layer).

    Why: with gamma frozen at 1 and beta at 0 (official init) a training-mode BN gives every code
    dimension mean 0 and batch spread 1. That is about where the official FFHQ StyleGAN v1 puts its
    w; a generator whose w sits elsewhere (stylegan2_faces64: |mean| ~0.7, spread ~0.57 per
    dimension) is fed codes far outside its domain, its unclamped output leaves [-1, 1] by orders
    of magnitude and the pixel loss diverges (runs/idinvert_dbg, results_inversion.md)."""
    bn = getattr(encoder, f"block{encoder.cfg.n_blocks - 1}").bn.bn
    with torch.no_grad():
        bn.weight.copy_(std.to(bn.weight).repeat(encoder.n_latent))
        bn.bias.copy_(mean.to(bn.bias).repeat(encoder.n_latent))


class CaffeVGG16(nn.Module):
    """IDInvert's perceptual F: [0, 1] RGB -> x 255 -> BGR -> minus the caffe mean -> VGG16 to
    relu4_3 (B x 512 x H/8 x W/8). Frozen, always in eval mode."""

    takes_unit_images = True

    def __init__(self) -> None:
        super().__init__()
        from nodes.features.backbones import VGG16Features

        self.features = VGG16Features().features[:CONV4_3_END]
        self.register_buffer("mean", torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False).eval()

    def train(self, mode: bool = True) -> CaffeVGG16:
        return super().train(False)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.features(image.flip(1) * 255.0 - self.mean)
