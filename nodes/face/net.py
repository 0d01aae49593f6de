"""Face-parsing networks: the U-Net parser P_F and BiSeNet (face-parsing.PyTorch layout).

Both are plain ``nn.Module`` s taking images in [0, 1] (N x 3 x H x W) and returning class
logits at the input resolution, usable without the engine.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# ---- P_F: pix2pix-style U-Net parser ------------------------------------------------------------


class UNetParserNet(nn.Module):
    """P_F of Gu et al. 2019: a pix2pix U-Net (4x4 stride-2 convs, skip connections) -> class logits.

    Level i has ``ngf * min(2**i, max_mult)`` channels; ``depth`` levels halve the resolution
    ``depth`` times (6 in the thesis). Unlike the official parser (Tanh, then Softmax, then a
    cross-entropy on those probabilities: a double softmax whose loss never falls below ~1.5),
    the head returns raw logits for a plain cross-entropy.
    """

    def __init__(self, n_classes: int = 11, ngf: int = 16, depth: int = 6, max_mult: int = 8,
                 norm: str = "batch", dropout: float = 0.0):
        super().__init__()
        self.depth = depth
        ch = [ngf * min(2 ** i, max_mult) for i in range(depth)]
        self.downs = nn.ModuleList()
        self.ups = nn.ModuleList()
        for i in range(depth):
            cin = 3 if i == 0 else ch[i - 1]
            layers: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(0.2)]
            layers.append(nn.Conv2d(cin, ch[i], 4, 2, 1, bias=False))
            if 0 < i < depth - 1:  # pix2pix: no norm at the outermost and innermost levels
                layers.append(_norm(norm, ch[i]))
            self.downs.append(nn.Sequential(*layers))
        for i in reversed(range(depth)):
            cin = ch[i] if i == depth - 1 else 2 * ch[i]
            if i == 0:
                self.ups.append(nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(cin, n_classes, 4, 2, 1)))
                continue
            layers = [nn.ReLU(), nn.ConvTranspose2d(cin, ch[i - 1], 4, 2, 1, bias=False), _norm(norm, ch[i - 1])]
            if dropout > 0 and i >= depth - 3:
                layers.append(nn.Dropout(dropout))
            self.ups.append(nn.Sequential(*layers))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        h, w = image.shape[-2:]
        m = 2 ** self.depth
        ph, pw = (-h) % m, (-w) % m
        x = image * 2 - 1
        if ph or pw:  # any size: pad to a multiple of 2**depth, crop the logits back
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        skips = []
        for down in self.downs:
            x = down(x)
            skips.append(x)
        x = skips.pop()
        for k, up in enumerate(self.ups):
            if k:
                x = torch.cat([x, skips.pop()], 1)
            x = up(x)
        return x[..., :h, :w]


def _norm(kind: str, ch: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(ch)
    if kind == "instance":
        return nn.InstanceNorm2d(ch, affine=True)
    raise ValueError(f"unknown norm {kind!r} (batch, instance)")


# ---- BiSeNet (zllrunning/face-parsing.PyTorch, 19 classes) ---------------------------------------
# Attribute names reproduce the official state_dict keys (cp.resnet.layer1.0.conv1.weight, ...),
# so a converted 79999_iter.pth loads with strict key matching.


class ConvBNReLU(nn.Module):
    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1, pad: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, pad, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if cin != cout or stride != 1:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        s = x if self.downsample is None else self.downsample(x)
        return F.relu(s + r)


class ResNet18Trunk(nn.Module):
    """ResNet-18 without its classifier; returns the stride 8, 16 and 32 features."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        widths = [(64, 64, 1), (64, 128, 2), (128, 256, 2), (256, 512, 2)]
        for i, (cin, cout, s) in enumerate(widths, 1):
            setattr(self, f"layer{i}", nn.Sequential(BasicBlock(cin, cout, s), BasicBlock(cout, cout)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        f8 = self.layer2(self.layer1(x))
        f16 = self.layer3(f8)
        return f8, f16, self.layer4(f16)


class AttentionRefinement(nn.Module):
    """ARM: features re-weighted by a sigmoid of their global average (channel attention)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = ConvBNReLU(cin, cout)
        self.conv_atten = nn.Conv2d(cout, cout, 1, bias=False)
        self.bn_atten = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.conv(x)
        a = torch.sigmoid(self.bn_atten(self.conv_atten(f.mean((2, 3), keepdim=True))))
        return f * a


class ContextPath(nn.Module):
    def __init__(self):
        super().__init__()
        self.resnet = ResNet18Trunk()
        self.arm16 = AttentionRefinement(256, 128)
        self.arm32 = AttentionRefinement(512, 128)
        self.conv_head32 = ConvBNReLU(128, 128)
        self.conv_head16 = ConvBNReLU(128, 128)
        self.conv_avg = ConvBNReLU(512, 128, 1, 1, 0)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        f8, f16, f32 = self.resnet(x)
        glob = self.conv_avg(f32.mean((2, 3), keepdim=True))
        up32 = self.conv_head32(F.interpolate(self.arm32(f32) + glob, f16.shape[-2:], mode="nearest"))
        up16 = self.conv_head16(F.interpolate(self.arm16(f16) + up32, f8.shape[-2:], mode="nearest"))
        return f8, up16, up32


class FeatureFusion(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.convblk = ConvBNReLU(cin, cout, 1, 1, 0)
        self.conv1 = nn.Conv2d(cout, cout // 4, 1, bias=False)
        self.conv2 = nn.Conv2d(cout // 4, cout, 1, bias=False)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        f = self.convblk(torch.cat([a, b], 1))
        att = torch.sigmoid(self.conv2(F.relu(self.conv1(f.mean((2, 3), keepdim=True)))))
        return f + f * att


class OutputHead(nn.Module):
    def __init__(self, cin: int, mid: int, n_classes: int):
        super().__init__()
        self.conv = ConvBNReLU(cin, mid)
        self.conv_out = nn.Conv2d(mid, n_classes, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.conv(x))


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class BiSeNet(nn.Module):
    """BiSeNet as in face-parsing.PyTorch: ResNet-18 context path + ARMs + feature fusion; the
    stride-8 ResNet features stand in for the spatial path. ``forward`` takes [0, 1] images,
    applies the ImageNet normalisation the checkpoint was trained with, and returns the main
    head's logits (19 classes, BISENET_ORDER) upsampled to the input size (bilinear,
    align_corners as in the original). ``aux=True`` also returns the two auxiliary heads."""

    def __init__(self, n_classes: int = 19):
        super().__init__()
        self.cp = ContextPath()
        self.ffm = FeatureFusion(256, 256)
        self.conv_out = OutputHead(256, 256, n_classes)
        self.conv_out16 = OutputHead(128, 64, n_classes)
        self.conv_out32 = OutputHead(128, 64, n_classes)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, image: torch.Tensor, aux: bool = False):
        size = image.shape[-2:]
        x = (image - self.mean) / self.std
        f8, cp8, cp16 = self.cp(x)
        heads = [self.conv_out(self.ffm(f8, cp8))]
        if aux:
            heads += [self.conv_out16(cp8), self.conv_out32(cp16)]
        heads = [F.interpolate(h, size, mode="bilinear", align_corners=True) for h in heads]
        return tuple(heads) if aux else heads[0]
