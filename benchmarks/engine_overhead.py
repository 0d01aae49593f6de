"""Executor overhead: the same chain run by the executor and called by hand, in one process.

Targets (issue 2): <= 3 % on a realistic chain, <= 0.5 ms per node on trivial nodes.

    python benchmarks/engine_overhead.py            # prints a markdown table

The executor runs with the cache disabled (so every node computes) but still does everything
else it always does: planning, cache-key hashing, output contract checks, events.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from nodegraph.cache import Cache
from nodegraph.events import EventBus
from nodegraph.executor import Executor
from nodegraph.graph import graph_from_dict
from nodegraph.node import Node, Params
from nodegraph.registry import get, register
from nodegraph.types import Image


@register("bench.Source")
class Source(Node):
    """A fixed random image."""

    class Params(Params):
        size: int = 256

    outputs = {"image": Image()}

    def forward(self) -> dict[str, Any]:
        g = torch.Generator().manual_seed(0)
        return {"image": torch.rand(1, 3, self.params.size, self.params.size, generator=g)}


@register("bench.Identity")
class Identity(Node):
    """Returns its input (a trivial node)."""

    inputs = {"image": Image()}
    outputs = {"image": Image()}

    def forward(self, image: torch.Tensor) -> dict[str, Any]:
        return {"image": image}


@register("bench.Conv")
class Conv(Node):
    """A 3-layer conv net at the image's size (a realistic unit of work)."""

    class Params(Params):
        width: int = 32

    inputs = {"image": Image()}
    outputs = {"image": Image()}

    def setup(self) -> None:
        torch.manual_seed(0)
        w = self.params.width
        self.net = torch.nn.Sequential(torch.nn.Conv2d(3, w, 3, padding=1), torch.nn.ReLU(),
                                       torch.nn.Conv2d(w, w, 3, padding=1), torch.nn.ReLU(),
                                       torch.nn.Conv2d(w, 3, 3, padding=1), torch.nn.Sigmoid())

    def forward(self, image: torch.Tensor) -> dict[str, Any]:
        return {"image": self.net(image)}


def chain_graph(kind: str, n: int, size: int) -> dict[str, Any]:
    nodes: dict[str, Any] = {"src": {"type": "bench.Source", "params": {"size": size}}}
    prev = "src"
    for i in range(n):
        nodes[f"n{i}"] = {"type": kind, "inputs": {"image": f"{prev}.image"}}
        if kind == "image.Resize":
            nodes[f"n{i}"]["params"] = {"size": size + (8 if i % 2 == 0 else 0)}
        prev = f"n{i}"
    return {"nodegraph": 1, "nodes": nodes}


def by_hand(raw: dict[str, Any]) -> float:
    nodes = {nid: get(ns["type"])(ns.get("params", {})) for nid, ns in raw["nodes"].items()}
    for n in nodes.values():
        n.ensure_setup()
    t = time.perf_counter()
    with torch.inference_mode():
        x = nodes["src"].forward()["image"]
        for nid in list(raw["nodes"])[1:]:
            x = nodes[nid].forward(image=x)["image"]
    return time.perf_counter() - t


def by_executor(ex: Executor) -> float:
    t = time.perf_counter()
    ex.run()
    return time.perf_counter() - t


def measure(kind: str, n: int, size: int, repeats: int) -> tuple[float, float]:
    raw = chain_graph(kind, n, size)
    ex = Executor(graph_from_dict(raw), device="cpu", cache=Cache(enabled=False), events=EventBus())
    ex.events.keep_history = False
    by_executor(ex)  # warm-up: setup() and first-touch allocations
    by_hand(raw)
    hand, engine = [], []
    for _ in range(repeats):  # interleaved so background load hits both alike
        hand.append(by_hand(raw))
        engine.append(by_executor(ex))
    # minimum of interleaved repeats: the least-disturbed run of each (the shared CPU's noise is
    # one-sided: it only ever adds time)
    return min(hand), min(engine)


def main() -> None:
    torch.set_num_threads(2)
    rows = []
    h, e = measure("bench.Conv", 8, 256, 40)
    rows.append(("realistic: 8 x conv net (32 ch) at 256x256", h, e, (e - h) / h * 100, (e - h) / 8 * 1e3))
    h, e = measure("image.Resize", 8, 512, 60)
    rows.append(("realistic: 8 x image.Resize at 512x512", h, e, (e - h) / h * 100, (e - h) / 8 * 1e3))
    h, e = measure("bench.Identity", 200, 8, 60)
    rows.append(("trivial: 200 x identity on 8x8", h, e, float("nan"), (e - h) / 200 * 1e3))
    print("| chain | by hand (s) | executor (s) | overhead % | overhead per node (ms) |")
    print("|---|---|---|---|---|")
    for name, h, e, pct, per in rows:
        pct_s = "n/a" if pct != pct else f"{pct:.2f}"
        print(f"| {name} | {h:.4f} | {e:.4f} | {pct_s} | {per:.3f} |")


if __name__ == "__main__":
    main()
