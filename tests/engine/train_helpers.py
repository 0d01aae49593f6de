"""Test-only node types for the training engine (family ``ttest``) and a runner script.

Run as a script (``python tests/engine/train_helpers.py GRAPH ...`` or under ``torchrun``) it registers
these nodes and the toy family, then behaves like ``nodegraph train``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from pydantic import Field

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import nodes.common.losses  # noqa: E402,F401  (register families without relying on entry points)
import nodes.common.metrics  # noqa: E402,F401
import nodes.common.toy  # noqa: E402,F401
from nodegraph.node import Node, Params  # noqa: E402
from nodegraph.registry import register  # noqa: E402
from nodegraph.types import Image, Model, Scalar, Tensor  # noqa: E402


@register("ttest.Frozen")
class Frozen(Node):
    """A pretrained-looking network nobody trains (a stand-in for a face parser)."""

    inputs = {"image": Image()}
    outputs = {"image": Image()}

    def setup(self) -> None:
        self.net = nn.Conv2d(3, 3, 3, padding=1).to(self.device)
        self.calls = 0

    def forward(self, image: torch.Tensor) -> dict[str, Any]:
        self.calls += 1
        self.saw_grad_mode = torch.is_grad_enabled()
        return {"image": torch.sigmoid(self.net(image))}


@register("ttest.ProbeGen")
class ProbeGen(Node):
    """Image -> image generator that counts forwards (with / without autograd) and backwards."""

    class Params(Params):
        width: int = Field(4, ge=1)

    inputs = {"image": Image()}
    outputs = {"image": Image()}

    def setup(self) -> None:
        w = self.params.width
        self.net = nn.Sequential(nn.Conv2d(3, w, 3, padding=1), nn.LeakyReLU(0.2),
                                 nn.Conv2d(w, 3, 3, padding=1), nn.Sigmoid()).to(self.device)
        self.grad_calls = self.nograd_calls = self.backwards = 0

    def _hook(self, grad: torch.Tensor) -> None:
        self.backwards += 1

    def forward(self, image: torch.Tensor) -> dict[str, Any]:
        out = self.net(image)
        if out.requires_grad:
            self.grad_calls += 1
            out.register_hook(self._hook)
        else:
            self.nograd_calls += 1
        return {"image": out}


@register("ttest.FeatureNet")
class FeatureNet(Node):
    """A frozen feature extractor handed out as a Model (stand-in for VGG)."""

    outputs = {"model": Model()}

    def setup(self) -> None:
        self.net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()).to(self.device)
        self.calls = 0

    def forward(self) -> dict[str, Any]:
        self.calls += 1
        return {"model": self.net}


@register("ttest.NaNAfter")
class NaNAfter(Node):
    """mean |a - b| for the first ``after`` calls, NaN afterwards."""

    class Params(Params):
        after: int = 3

    inputs = {"a": Tensor(), "b": Tensor()}
    outputs = {"loss": Scalar()}

    def setup(self) -> None:
        self.calls = 0

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> dict[str, Any]:
        self.calls += 1
        loss = (a - b).abs().mean()
        if self.calls > self.params.after:
            loss = loss * float("nan")
        return {"loss": loss}


if __name__ == "__main__":
    torch.set_num_threads(1)
    from nodegraph.train import train_cli

    train_cli()
