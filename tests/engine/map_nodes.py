"""Node types for the mapping tests (registered on import; the subprocess tests import this file
by path): a pointwise node that counts its calls in a file, can sleep and can SIGTERM its process."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import torch

from nodegraph.node import Node, Params
from nodegraph.registry import register
from nodegraph.types import Image

CALLS = {"Work": 0}


@register("ngmap.Work")
class Work(Node):
    """image * factor; appends its batch size to ``log``; sleeps ``sleep`` s; on its ``kill_at``-th
    call in this process (0-based) sends SIGTERM to its own process."""

    class Params(Params):
        factor: float = 0.5
        log: str = ""
        sleep: float = 0.0
        kill_at: int = -1

    inputs = {"image": Image()}
    outputs = {"image": Image()}
    batch_inputs = ("image",)

    def forward(self, image: torch.Tensor) -> dict[str, Any]:
        n = CALLS["Work"]
        CALLS["Work"] += 1
        if self.params.sleep:
            time.sleep(self.params.sleep)
        if n == self.params.kill_at:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises before this ends
        if self.params.log:
            with open(self.params.log, "a") as f:
                f.write(f"{image.shape[0]}\n")
        return {"image": (image * self.params.factor).clamp(0, 1)}
