"""nodegraph: a node-based graph engine for GAN image pipelines.

Python API::

    import nodegraph
    resize = nodegraph.create("image.Resize", size=128)
    out = resize(image=x)                       # {"image": tensor}
    g = nodegraph.load_graph("graphs/spade_pis.json")
    results = nodegraph.run(g, overrides={"spade.seed": 3})   # {node: {port: value}}
    for r in nodegraph.map(g, over={"labels.path": "maps/"}):  # once per item
        print(r.index, r.status, r.outputs)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .graph import Graph, GraphError, load_graph
from .node import Context, Node, NodeError

__all__ = ["Graph", "GraphError", "Node", "NodeError", "create", "load_graph", "map", "replay", "run", "sweep",
           "__version__"]
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


def map(graph: Graph | str | Path, over: dict[str, Any], **options: Any) -> Iterator[Any]:  # noqa: A001
    """Run ``graph`` once per item; an iterator of ``nodegraph.mapper.ItemResult`` (index, item,
    status, outputs with sha256, Scalar values, seconds, error, results).

    ``over``: ``{"node.param": SOURCE or [values]}`` (SOURCE: folder, glob, .txt/.csv list, JSON
    list); options: ``mode`` ("zip" / "product"), ``overrides``, ``out_dir``, ``outputs``,
    ``pattern`` (default ``{name}/{stem}``), ``batch``, ``keep_going``, ``index``, ``resume``,
    ``lock``, ``device``, ``cache``, ``events``. Under torchrun each rank yields its own items.
    """
    from .mapper import map_graph

    return map_graph(graph, over, **options)


def sweep(graph: Graph | str | Path, section: dict[str, Any] | None = None, **options: Any) -> dict[str, Any]:
    """Run the graph's ``sweep`` section (or ``section``); returns ``rows`` and the paths of the
    table (``csv``, ``md``) and contact sheet (``sheet``)."""
    from .sweep import parse_sweep, run_sweep

    g = graph if isinstance(graph, Graph) else load_graph(graph)
    return run_sweep(g, parse_sweep(section or g.spec.sweep, g.source), **options)


def replay(lock: str | Path, out_dir: str | Path | None = None, device: str | None = None) -> Any:
    """Re-run a lock file; a ``nodegraph.replay.Report`` (rows per output, differing facts)."""
    from .replay import replay as _replay

    return _replay(lock, out_dir, device)
