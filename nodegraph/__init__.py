"""nodegraph: a node-based graph engine for GAN image pipelines.

Python API::

    import nodegraph
    resize = nodegraph.create("image.Resize", size=128)
    out = resize(image=x)                       # {"image": tensor}
    g = nodegraph.load_graph("graphs/spade_pis.json")
    results = nodegraph.run(g, overrides={"spade.seed": 3})   # {node: {port: value}}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .graph import Graph, GraphError, load_graph
from .node import Context, Node, NodeError

__all__ = ["Graph", "GraphError", "Node", "NodeError", "create", "load_graph", "run", "__version__"]
__version__ = "0.1.0"


def create(type_name: str, device: str | None = None, **params: Any) -> Node:
    """A ready-to-call node of type ``type_name``: ``node(**inputs) -> {port: value}``."""
    from . import registry
    from .executor import pick_device

    cls = registry.get(type_name)
    return cls(params, Context(device=pick_device(device), node_id=type_name))


def run(graph: Graph | str | Path, overrides: dict[str, Any] | list[str] | None = None,
        outputs: list[str] | None = None, device: str | None = None, cache: Any = None,
        events: Any = None) -> dict[str, dict[str, Any]]:
    """Validate and run a graph; returns ``{node: {port: value}}`` for every node computed."""
    from .executor import Executor

    if not isinstance(graph, Graph):
        graph = load_graph(graph)
    graph = graph.with_overrides(overrides)
    return Executor(graph, device=device, cache=cache, events=events).run(outputs)
