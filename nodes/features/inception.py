"""Inception-v3 in the FID layout (TF's 2015-12-05 graph as ported by pytorch-fid), so FID
figures are comparable to papers'. Weights: the user's own ``pt_inception-2015-12-05-6726825d.pth``
(pytorch-fid's release file) converted once with ``nodegraph convert inception``; no download.

    image [0,1] -> bilinear 299 x 299 -> 2x - 1 -> Conv2d_1a..4a, two max pools (35 x 35 x 192)
        -> Mixed_5b..5d (A) -> 6a (B) -> 6b..6e (C) -> 7a (D) -> 7b (E_1) -> 7c (E_2) -> mean -> 2048-d

Where the FID network differs from torchvision's Inception-v3 (pytorch-fid ``inception.py``
``FIDInceptionA/C/E_1/E_2``): every A, C and E block's pool branch is a 3x3 average that leaves
the zero padding out of the mean (TF's ``AVG`` pool), and the last block (``Mixed_7c``) max-pools
its pool branch instead. 1008 classes (TF's label map), no auxiliary head. Module and key names
are torchvision's (``Mixed_6b.branch7x7_2.conv.weight``), so the release file loads by name.
Each conv is ``BasicConv2d``: conv (no bias) -> BatchNorm (eps 1e-3) -> ReLU.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

FID_SIZE, FID_DIMS, FID_CLASSES = 299, 2048, 1008


class BasicConv2d(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int | tuple[int, int], stride: int = 1,
                 padding: int | tuple[int, int] = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=1e-3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _tf_avg3(x: torch.Tensor) -> torch.Tensor:
    """3x3 / stride 1 average over the valid pixels only (TF's pool; torchvision counts the pad)."""
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


def _conv_1xn_nx1(c_in: int, c_out: int, n: int, first_row: bool) -> BasicConv2d:
    """1 x n (``first_row``) or n x 1 conv with 'same' padding."""
    return BasicConv2d(c_in, c_out, (1, n) if first_row else (n, 1), padding=(0, n // 2) if first_row else (n // 2, 0))


class InceptionA(nn.Module):
    """35 x 35 block: 1x1 | 1x1 -> 5x5 | 1x1 -> 3x3 -> 3x3 | avg -> 1x1 (64 + 64 + 96 + pool_features)."""

    def __init__(self, c_in: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(c_in, 64, 1)
        self.branch5x5_1 = BasicConv2d(c_in, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(c_in, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(c_in, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1x1(x), self.branch5x5_2(self.branch5x5_1(x)),
                          self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                          self.branch_pool(_tf_avg3(x))], 1)


class InceptionB(nn.Module):
    """35 -> 17 reduction: 3x3/2 (384) | 1x1 -> 3x3 -> 3x3/2 (96) | max 3x3/2 (c_in)."""

    def __init__(self, c_in: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(c_in, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(c_in, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch3x3(x), self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                          F.max_pool2d(x, 3, stride=2)], 1)


class InceptionC(nn.Module):
    """17 x 17 block with factorised 7x7 convs (c7 inner channels); 4 x 192 out."""

    def __init__(self, c_in: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(c_in, 192, 1)
        self.branch7x7_1 = BasicConv2d(c_in, c7, 1)
        self.branch7x7_2 = _conv_1xn_nx1(c7, c7, 7, True)
        self.branch7x7_3 = _conv_1xn_nx1(c7, 192, 7, False)
        self.branch7x7dbl_1 = BasicConv2d(c_in, c7, 1)
        self.branch7x7dbl_2 = _conv_1xn_nx1(c7, c7, 7, False)
        self.branch7x7dbl_3 = _conv_1xn_nx1(c7, c7, 7, True)
        self.branch7x7dbl_4 = _conv_1xn_nx1(c7, c7, 7, False)
        self.branch7x7dbl_5 = _conv_1xn_nx1(c7, 192, 7, True)
        self.branch_pool = BasicConv2d(c_in, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = x
        for conv in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                     self.branch7x7dbl_5):
            d = conv(d)
        return torch.cat([self.branch1x1(x), b7, d, self.branch_pool(_tf_avg3(x))], 1)


class InceptionD(nn.Module):
    """17 -> 8 reduction: 1x1 -> 3x3/2 (320) | 1x1 -> 1x7 -> 7x1 -> 3x3/2 (192) | max 3x3/2."""

    def __init__(self, c_in: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(c_in, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(c_in, 192, 1)
        self.branch7x7x3_2 = _conv_1xn_nx1(192, 192, 7, True)
        self.branch7x7x3_3 = _conv_1xn_nx1(192, 192, 7, False)
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), b7, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionE(nn.Module):
    """8 x 8 block with split 1x3 / 3x1 outputs; 320 + 768 + 768 + 192 = 2048 out. ``max_pool``:
    the FID graph's last block (``Mixed_7c``) max-pools its pool branch (pytorch-fid E_2)."""

    def __init__(self, c_in: int, max_pool: bool) -> None:
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(c_in, 320, 1)
        self.branch3x3_1 = BasicConv2d(c_in, 384, 1)
        self.branch3x3_2a = _conv_1xn_nx1(384, 384, 3, True)
        self.branch3x3_2b = _conv_1xn_nx1(384, 384, 3, False)
        self.branch3x3dbl_1 = BasicConv2d(c_in, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = _conv_1xn_nx1(384, 384, 3, True)
        self.branch3x3dbl_3b = _conv_1xn_nx1(384, 384, 3, False)
        self.branch_pool = BasicConv2d(c_in, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.branch3x3_1(x)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pool = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else _tf_avg3(x)
        return torch.cat([self.branch1x1(x), self.branch3x3_2a(s), self.branch3x3_2b(s),
                          self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d), self.branch_pool(pool)], 1)


class FIDInceptionV3(nn.Module):
    """The FID Inception-v3. ``forward(image)``: B x 3 x H x W in [0, 1] -> B x 2048 pool_3
    features (float32), after pytorch-fid's bilinear resize to 299 (align_corners False, no
    antialias) and 2x - 1. ``logits(image)``: B x 1008."""

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = InceptionA(192, 32)
        self.Mixed_5c = InceptionA(256, 64)
        self.Mixed_5d = InceptionA(288, 64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, 128)
        self.Mixed_6c = InceptionC(768, 160)
        self.Mixed_6d = InceptionC(768, 160)
        self.Mixed_6e = InceptionC(768, 192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, max_pool=False)
        self.Mixed_7c = InceptionE(2048, max_pool=True)
        self.fc = nn.Linear(FID_DIMS, FID_CLASSES)

    def pool3(self, x: torch.Tensor) -> torch.Tensor:
        """Network input ([-1, 1], B x 3 x 299 x 299) -> B x 2048."""
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = F.max_pool2d(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)), 3, stride=2)  # 192 x 35 x 35
        for name in ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
                     "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c"):
            x = getattr(self, name)(x)
        return x.mean((2, 3))

    @staticmethod
    def to_input(image: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(image, size=(FID_SIZE, FID_SIZE), mode="bilinear", align_corners=False)
        return 2 * x - 1

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.pool3(self.to_input(image))

    def logits(self, image: torch.Tensor) -> torch.Tensor:
        return self.fc(self.forward(image))
