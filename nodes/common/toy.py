"""Toy family: a tiny conditional GAN on procedural shapes, small enough to train on a CPU in
a minute. It exercises the training engine (graphs/tiny_cgan_train.json, tests/test_train.py)
and shows the shape every real family follows: dataset node, generator, discriminator.

Data (``toy.Shapes``): a label map of discs, squares and bars on a background (label set
``toy_shapes``) and the picture it stands for — each class has a fixed colour, the background a
vertical gradient and each disc a radial shading, so the generator must read geometry, not just
colour ids.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from pydantic import Field

from nodegraph import weights
from nodegraph.node import DatasetNode, Node, Params, WeightsRef
from nodegraph.registry import register
from nodegraph.types import Any_, Image, LabelMap, LabelSet, register_label_set

TOY_SHAPES = register_label_set(LabelSet(
    name="toy_shapes",
    names=("background", "disc", "square", "bar"),
    palette=((40, 40, 60), (230, 80, 60), (70, 170, 90), (240, 210, 80)),
))
_COLOURS = torch.tensor(TOY_SHAPES.palette, dtype=torch.float32) / 255.0


def make_shapes(index: int, seed: int, size: int) -> dict[str, torch.Tensor]:
    """Item ``index`` of the procedural set: {"labels": H x W int64, "image": 3 x H x W in [0, 1]}."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + index)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    labels = torch.zeros(size, size, dtype=torch.int64)
    shade = 1.0 - 0.5 * yy  # background: darker towards the bottom
    for _ in range(int(torch.randint(2, 5, (1,), generator=g))):
        kind = int(torch.randint(1, 4, (1,), generator=g))
        cx, cy = torch.rand(2, generator=g).tolist()
        r = 0.12 + 0.15 * float(torch.rand(1, generator=g))
        if kind == 1:
            d = ((xx - cx) ** 2 + (yy - cy) ** 2).sqrt()
            m = d < r
            shade = torch.where(m, 1.0 - 0.6 * (d / r) ** 2, shade)  # lit from the centre
        elif kind == 2:
            m = ((xx - cx).abs() < r) & ((yy - cy).abs() < r)
            shade = torch.where(m, torch.full_like(shade, 0.9), shade)
        else:
            m = ((yy - cy).abs() < r / 3) & ((xx - cx).abs() < 2 * r)
            shade = torch.where(m, 0.7 + 0.3 * torch.sin(xx * 6 * math.pi).abs(), shade)
        labels[m] = kind
    image = _COLOURS[labels].permute(2, 0, 1) * shade.unsqueeze(0)
    return {"labels": labels, "image": image.clamp(0, 1)}


class ShapesDataset(torch.utils.data.Dataset):
    def __init__(self, length: int, seed: int, size: int) -> None:
        self.length, self.seed, self.size = length, seed, size

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return make_shapes(int(i), self.seed, self.size)


@register("toy.Shapes")
class Shapes(DatasetNode):
    """Procedural label maps (``toy_shapes``) with the pictures they stand for."""

    class Params(Params):
        length: int = Field(512, ge=1, description="number of items")
        size: int = Field(32, ge=8, le=256)
        seed: int = 0
        batch_size: int = Field(8, ge=1)

    outputs = {"labels": LabelMap("toy_shapes"), "image": Image()}

    def dataset(self) -> ShapesDataset:
        return ShapesDataset(self.params.length, self.params.seed, self.params.size)


def onehot(labels: torch.Tensor, n: int) -> torch.Tensor:
    return F.one_hot(labels.clamp(0, n - 1), n).permute(0, 3, 1, 2).float()


class ToyGenerator(nn.Module):
    """Label map -> image: one-hot, two stride-2 downs, a residual middle, two ups (pix2pix in small)."""

    def __init__(self, classes: int = 4, ngf: int = 16) -> None:
        super().__init__()
        self.classes = classes
        act = nn.LeakyReLU(0.2)
        self.down = nn.Sequential(nn.Conv2d(classes, ngf, 3, 1, 1), act,
                                  nn.Conv2d(ngf, 2 * ngf, 4, 2, 1), act,
                                  nn.Conv2d(2 * ngf, 2 * ngf, 4, 2, 1), act)
        self.mid = nn.Sequential(nn.Conv2d(2 * ngf, 2 * ngf, 3, 1, 1), act, nn.Conv2d(2 * ngf, 2 * ngf, 3, 1, 1))
        self.up = nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(2 * ngf, ngf, 3, 1, 1), act,
                                nn.Upsample(scale_factor=2), nn.Conv2d(ngf, ngf, 3, 1, 1), act)
        self.out = nn.Conv2d(ngf + classes, 3, 3, 1, 1)

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        x = onehot(labels, self.classes)
        h = self.down(x)
        h = h + self.mid(h)
        h = self.up(h)
        return torch.sigmoid(self.out(torch.cat([h, x], 1)))


class ToyDiscriminator(nn.Module):
    """Conditional multi-scale PatchGAN (pix2pixHD in small): per scale, a list of features whose
    last item is the patch logits."""

    def __init__(self, classes: int = 4, ndf: int = 16, scales: int = 2) -> None:
        super().__init__()
        self.classes = classes
        self.nets = nn.ModuleList()
        for _ in range(scales):
            self.nets.append(nn.ModuleList([
                nn.Sequential(nn.Conv2d(3 + classes, ndf, 4, 2, 1), nn.LeakyReLU(0.2)),
                nn.Sequential(nn.Conv2d(ndf, 2 * ndf, 4, 2, 1), nn.LeakyReLU(0.2)),
                nn.Conv2d(2 * ndf, 1, 3, 1, 1),
            ]))

    def forward(self, image: torch.Tensor, labels: torch.Tensor) -> list[list[torch.Tensor]]:
        x = torch.cat([image * 2 - 1, onehot(labels, self.classes)], 1)
        out = []
        for i, layers in enumerate(self.nets):
            if i:
                x = F.avg_pool2d(x, 3, 2, 1, count_include_pad=False)
            feats, h = [], x
            for layer in layers:
                h = layer(h)
                feats.append(h)
            out.append(feats)
        return out


class _NetParams(Params):
    classes: int = Field(4, ge=2)
    width: int = Field(16, ge=4, le=256, description="base channel count (ngf / ndf)")
    weights: WeightsRef = ""


@register("toy.Generator")
class Generator(Node):
    """G: label map -> image (``ToyGenerator``); train it with graphs/tiny_cgan_train.json."""

    Params = _NetParams
    inputs = {"labels": LabelMap()}
    outputs = {"image": Image()}

    def setup(self) -> None:
        self.net = ToyGenerator(self.params.classes, self.params.width).to(self.device)
        if self.params.weights:
            weights.load_into(self.net, self.params.weights, self.ctx.base_dir)
        self.net.train(self.ctx.training)

    def forward(self, labels: torch.Tensor) -> dict[str, Any]:
        return {"image": self.net(labels.to(self.device))}


@register("toy.Discriminator")
class Discriminator(Node):
    """D: (image, label map) -> multi-scale patch logits with intermediate features.

    One node holds one set of weights, so it judges fake and real together (concatenated on the
    batch, as SPADE's ``discriminate`` does) and returns both.
    """

    class Params(_NetParams):
        scales: int = Field(2, ge=1, le=4)

    inputs = {"fake": Image(), "real": Image(optional=True), "labels": LabelMap()}
    outputs = {"fake": Any_(doc="per scale: [features..., patch logits]"),
               "real": Any_(optional=True, doc="the same for the real images")}

    def setup(self) -> None:
        self.net = ToyDiscriminator(self.params.classes, self.params.width, self.params.scales).to(self.device)
        if self.params.weights:
            weights.load_into(self.net, self.params.weights, self.ctx.base_dir)

    def forward(self, fake: torch.Tensor, labels: torch.Tensor,
                real: torch.Tensor | None = None) -> dict[str, Any]:
        if real is None:
            return {"fake": self.net(fake, labels)}
        n = fake.shape[0]
        both = self.net(torch.cat([fake, real.to(fake.dtype)]), torch.cat([labels, labels]))
        return {"fake": [[f[:n] for f in scale] for scale in both],
                "real": [[f[n:] for f in scale] for scale in both]}
