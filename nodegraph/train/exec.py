"""Evaluating a graph inside a training step, with inferred grad mode.

For an objective that updates the nodes ``U``, a node runs with autograd only when it is in
``U`` or has an ancestor in ``U``; every other node runs under ``torch.no_grad()`` (never
``inference_mode``: its results must stay usable inside later autograd graphs). Values are
shared across the objectives of one step: a node computed with grad for objective G is stored
*detached* in the step cache, so objective D reuses the same fake image without differentiating
into G. Nodes that neither depend on the data nor on trained parameters (a loaded feature
extractor, a constant image) are computed once per run.

An input port declared ``requires_grad=True`` (a penalty that differentiates with respect to
its input, e.g. R1 on real data) gets, in every evaluation that needs its node, a value that
carries a gradient: the source output is handed as a fresh leaf that requires grad (unless it
already carries a graph), and every node reading that output, directly or through others, runs
with autograd on the same leaf instead of reusing its cached value.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

import networkx as nx
import torch

from ..graph import Graph, parse_link
from ..node import Node, NodeError

Outputs = dict[str, Any]


def detach(value: Any) -> Any:
    """Detach tensors inside a value (dicts, lists, tuples); modules and others pass through."""
    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, dict):
        return {k: detach(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(detach(v) for v in value)
    return value


def _carrying_grad(value: Any) -> Any:
    """``value`` itself when it already carries a gradient graph, else a leaf that requires grad."""
    if isinstance(value, torch.Tensor) and value.is_floating_point() and not value.requires_grad:
        return value.detach().requires_grad_(True)
    return value


def describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"{tuple(value.shape)} {str(value.dtype).replace('torch.', '')}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(describe(v) for v in value[:4]) + (", ..." if len(value) > 4 else "") + "]"
    return type(value).__name__


class StepGraph:
    """Runs the training-relevant part of a graph, one step at a time."""

    def __init__(self, graph: Graph, nodes: dict[str, Node], ports: dict[str, Any],
                 datasets: Iterable[str], trained: Iterable[str], amp: Any = None,
                 check_every_step: bool = False) -> None:
        self.graph = graph
        self.nodes = nodes
        self.ports = ports
        self.datasets = set(datasets)
        self.trained = set(trained)
        self.amp = amp  # a callable returning an autocast context, or None
        self.check_every_step = check_every_step
        g = graph.nx_graph()
        self.dag = g.subgraph(nodes).copy()
        self.order = [n for n in nx.topological_sort(g) if n in nodes]
        self.links: dict[str, list[tuple[str, str, str]]] = {}
        for nid in nodes:
            for port, link in graph.spec.nodes[nid].inputs.items():
                src = parse_link(link)
                assert src is not None
                self.links.setdefault(nid, []).append((port, src[0], src[1]))
        self.ancestors = {n: nx.ancestors(self.dag, n) for n in self.order}
        moving = set(self.datasets) | self.trained
        # static: same value for the whole run -> computed once
        self.static = {n for n in self.order if not ({n} | self.ancestors[n]) & moving}
        self.static_cache: dict[str, Outputs] = {}
        self.step_cache: dict[str, Outputs] = {}
        self.calls: dict[str, int] = dict.fromkeys(self.order, 0)
        self._checked: set[str] = set()
        self.descendants = {n: nx.descendants(self.dag, n) for n in self.order}
        # (source node, output) feeding a requires_grad input, per consumer; and who reads each output
        self.grad_inputs: dict[str, list[tuple[str, str]]] = {}
        self.readers: dict[tuple[str, str], set[str]] = {}
        for nid in self.order:
            for port, src, sport in self.links.get(nid, []):
                self.readers.setdefault((src, sport), set()).add(nid)
                if getattr(ports[nid][0].get(port), "requires_grad", False):
                    self.grad_inputs.setdefault(nid, []).append((src, sport))

    # ---- plans -----------------------------------------------------------------------------
    def grad_set(self, updates: Iterable[str]) -> set[str]:
        """Nodes that must run with autograd for an objective updating ``updates``."""
        upd = set(updates)
        return {n for n in self.order if n in upd or self.ancestors[n] & upd}

    def needed(self, targets: Iterable[str]) -> set[str]:
        out: set[str] = set()
        for t in targets:
            out |= {t} | self.ancestors[t]
        return out

    # ---- evaluation --------------------------------------------------------------------------
    def begin_step(self, batches: dict[str, Outputs]) -> None:
        self.step_cache = dict(batches)

    def forget(self, nids: Iterable[str]) -> None:
        """Drop this step's values of ``nids`` and everything downstream (e.g. after swapping
        in averaged weights, so the next evaluation recomputes with them)."""
        for n in list(nids):
            for m in {n} | self.descendants.get(n, set()):
                if m not in self.datasets:
                    self.step_cache.pop(m, None)

    def leaf_sources(self, need: set[str]) -> tuple[set[tuple[str, str]], set[str]]:
        """The outputs that must carry a gradient for the nodes in ``need`` (requires_grad
        inputs), and the nodes that must then run with autograd (their readers, downstream)."""
        keys = {k for n in need for k in self.grad_inputs.get(n, ())}
        through: set[str] = set()
        for k in keys:
            for r in self.readers.get(k, ()):
                if r in need:
                    through |= ({r} | self.descendants[r]) & need
        return keys, through

    def cached(self, nid: str) -> Outputs | None:
        if nid in self.static_cache:
            return self.static_cache[nid]
        return self.step_cache.get(nid)

    def evaluate(self, targets: Iterable[str], grad_nodes: set[str]) -> dict[str, Outputs]:
        """Outputs of ``targets`` (and their ancestors). Nodes in ``grad_nodes`` run with autograd."""
        need = self.needed(targets)
        keys, through = self.leaf_sources(need)
        grad_nodes = grad_nodes | through
        leaves: dict[tuple[str, str], Any] = dict.fromkeys(keys)
        local: dict[str, Outputs] = {}
        for nid in self.order:
            if nid not in need:
                continue
            if nid in grad_nodes:
                out = self._run(nid, lambda s: local[s] if s in local else self._value(s), grad=True,
                                leaves=leaves)
                local[nid] = out
                self.step_cache.setdefault(nid, detach(out))
            elif self.cached(nid) is None:
                out = self._run(nid, self._value, grad=False)
                (self.static_cache if nid in self.static else self.step_cache)[nid] = out
        return {n: local[n] if n in local else self._value(n) for n in need}

    def _value(self, nid: str) -> Outputs:
        got = self.cached(nid)
        if got is None:  # pragma: no cover - evaluation order guarantees this
            raise NodeError(f"internal: {nid} used before it was computed", nid)
        return got

    def _run(self, nid: str, source: Any, grad: bool, leaves: dict[tuple[str, str], Any] | None = None
             ) -> Outputs:
        node = self.nodes[nid]
        inputs: dict[str, Any] = {}
        for port, src, sport in self.links.get(nid, []):
            outs = source(src)
            if sport not in outs:
                raise NodeError(f"{src} produced no output {sport!r} (needed by {nid}.{port})", src)
            inputs[port] = outs[sport]
            if leaves is not None and (src, sport) in leaves:
                if leaves[(src, sport)] is None:  # one leaf per evaluation, shared by every reader
                    leaves[(src, sport)] = _carrying_grad(outs[sport])
                inputs[port] = leaves[(src, sport)]
        mode = torch.enable_grad() if grad else torch.no_grad()
        amp = self.amp() if self.amp is not None else contextlib.nullcontext()
        try:
            with mode, amp:
                node.ensure_setup()
                out = node.forward(**inputs)
        except (NodeError, KeyboardInterrupt):
            raise
        except Exception as e:
            got = ", ".join(f"{k}={describe(v)}" for k, v in inputs.items()) or "no inputs"
            raise NodeError(f"{nid} ({node.type_name}) failed during training: {type(e).__name__}: {e} "
                            f"(inputs: {got})", nid) from e
        self.calls[nid] += 1
        if self.check_every_step or nid not in self._checked:
            node.check_outputs(out, self.ports[nid][1], nid)
            self._checked.add(nid)
        return out
