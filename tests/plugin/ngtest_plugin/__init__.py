"""A third-party node family for the tests, discovered through the `nodegraph.nodes` entry point."""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field

from nodegraph.node import Node, Params, WeightsRef
from nodegraph.registry import register
from nodegraph.types import Image, LabelMap, Scalar, Tensor
from nodegraph.weights import load_into

CALLS: dict[str, int] = {}


@register("ngtest.Const")
class Const(Node):
    """A constant image of a value (counts its calls)."""

    class Params(Params):
        value: float = Field(0.5, ge=0.0, le=1.0)
        size: int = Field(8, ge=1, le=4096)

    outputs = {"image": Image()}

    def forward(self) -> dict[str, Any]:
        CALLS["Const"] = CALLS.get("Const", 0) + 1
        s = self.params.size
        return {"image": torch.full((1, 3, s, s), self.params.value)}


@register("ngtest.Scale")
class Scale(Node):
    """image * factor, clamped."""

    class Params(Params):
        factor: float = Field(1.0, ge=0.0, le=10.0)
        mode: str = Field("mul", pattern="^(mul|add)$")

    inputs = {"image": Image()}
    outputs = {"image": Image()}

    def forward(self, image: torch.Tensor) -> dict[str, Any]:
        CALLS["Scale"] = CALLS.get("Scale", 0) + 1
        out = image * self.params.factor if self.params.mode == "mul" else image + self.params.factor
        return {"image": out.clamp(0, 1)}


@register("ngtest.Mean")
class Mean(Node):
    """Mean of an image as a Scalar."""

    inputs = {"image": Image()}
    outputs = {"value": Scalar()}

    def forward(self, image: torch.Tensor) -> dict[str, Any]:
        return {"value": image.mean()}


@register("ngtest.Labels")
class Labels(Node):
    """A label map of a chosen label set."""

    class Params(Params):
        label_set: str = "landscape"

    outputs = {"labels": LabelMap()}

    @classmethod
    def resolve_ports(cls, params: Any, upstream: dict) -> tuple[dict, dict]:
        return {}, {"labels": LabelMap(params.label_set)}

    def forward(self) -> dict[str, Any]:
        return {"labels": torch.zeros(1, 4, 4, dtype=torch.long)}


@register("ngtest.WantsFaces")
class WantsFaces(Node):
    """Consumes a celebamask11 label map."""

    inputs = {"labels": LabelMap("celebamask11")}
    outputs = {"n": Tensor()}

    def forward(self, labels: torch.Tensor) -> dict[str, Any]:
        return {"n": torch.tensor([labels.numel()])}


@register("ngtest.Broken")
class Broken(Node):
    """Raises inside forward (to test error attribution)."""

    inputs = {"image": Image()}
    outputs = {"image": Image()}

    def forward(self, image: torch.Tensor) -> dict[str, Any]:
        return {"image": image @ torch.ones(3, 3)}


@register("ngtest.BadOutput")
class BadOutput(Node):
    """Produces an Image out of range (to test output contracts)."""

    inputs = {"image": Image()}
    outputs = {"image": Image()}

    def forward(self, image: torch.Tensor) -> dict[str, Any]:
        return {"image": image * 5 + 1}


@register("ngtest.Net")
class Net(Node):
    """A 1x1 conv with loadable weights (to test weights handling and caching)."""

    class Params(Params):
        weights: WeightsRef = ""

    inputs = {"image": Image()}
    outputs = {"image": Image()}

    def setup(self) -> None:
        self.net = torch.nn.Conv2d(3, 3, 1)
        if self.params.weights:
            load_into(self.net, self.params.weights, self.ctx.base_dir)

    def forward(self, image: torch.Tensor) -> dict[str, Any]:
        return {"image": torch.sigmoid(self.net(image))}


@register("ngtest.Offset")
class Offset(Node):
    """image + factor (or image * factor with mode mul), clamped: the same params and ports as
    ``ngtest.Scale`` with another computation (to test that a type switch changes cache keys)."""

    Params = Scale.Params
    inputs = {"image": Image()}
    outputs = {"image": Image()}

    def forward(self, image: torch.Tensor) -> dict[str, Any]:
        out = image + self.params.factor if self.params.mode == "mul" else image * self.params.factor
        return {"image": out.clamp(0, 1)}


@register("ngtest.Split")
class Split(Node):
    """An image's left and right halves, mirrored back to full width: two outputs of one type (to
    test that which port is wired is part of the key, like ``crop.l_eye`` / ``crop.r_eye``)."""

    inputs = {"image": Image()}
    outputs = {"left": Image(), "right": Image()}

    def forward(self, image: torch.Tensor) -> dict[str, Any]:
        w = image.shape[-1] // 2
        left, right = image[..., :w], image[..., -w:]
        return {"left": torch.cat([left, left.flip(-1)], -1), "right": torch.cat([right.flip(-1), right], -1)}


@register("ngtest.Sleep")
class Sleep(Node):
    """Passes the image through after ``seconds`` (in small steps, with progress): a long node."""

    class Params(Params):
        seconds: float = Field(1.0, ge=0.0, le=600.0)

    inputs = {"image": Image()}
    outputs = {"image": Image()}

    def forward(self, image: torch.Tensor) -> dict[str, Any]:
        import time

        n = max(1, int(self.params.seconds / 0.05))
        for i in range(n):
            time.sleep(self.params.seconds / n)
            self.ctx.progress(i + 1, n)
        return {"image": image}
