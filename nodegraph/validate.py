"""Graph validation: every problem of a graph at once, each naming ``node.port`` or
``node.params.name`` -- unknown types, bad params (with the allowed range or choices), missing
files and weights, unknown or missing inputs, type and label-set mismatches, cycles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import networkx as nx
from pydantic import ValidationError

from . import weights as weights_mod
from .graph import _ID, Graph, Problem, parse_link
from .node import Node, path_kind
from .types import PortType


class Validator:
    """Walks the graph once, collecting every problem."""

    def __init__(self, graph: Graph):
        self.g = graph
        self.problems: list[Problem] = []
        self.ports: dict[str, tuple[dict[str, PortType], dict[str, PortType]]] = {}

    def add(self, where: str, message: str) -> None:
        self.problems.append(Problem(where, message))

    def run(self, outputs: list[str] | None) -> list[Problem]:
        spec = self.g.spec
        classes: dict[str, type[Node]] = {}
        params: dict[str, Any] = {}
        for nid in spec.nodes:
            if not _ID.match(nid):
                self.add(nid, "node ids must start with a letter or _ and use letters, digits, _ or -")
            try:
                classes[nid] = self.g.node_class(nid)
            except KeyError as e:
                self.add(f"{nid}.type", str(e.args[0]))
                continue
            params[nid] = self._params(nid, classes[nid])
        self._links(classes)
        self._cycles()
        self._types(classes, params)
        for o in outputs or spec.outputs or []:
            if o.split(".")[0] not in spec.nodes:
                self.add(o, "requested output names no node of the graph")
        return self.problems

    def _params(self, nid: str, cls: type[Node]) -> Any:
        ns = self.g.spec.nodes[nid]
        try:
            p = self.g.params_for(nid)
        except ValidationError as e:
            for err in e.errors():
                name = ".".join(str(x) for x in err["loc"]) or "(params)"
                msg = err["msg"]
                if err["type"] == "extra_forbidden":
                    allowed = ", ".join(cls.Params.model_fields) or "none"
                    msg = f"unknown param (params of {cls.type_name}: {allowed})"
                elif "input" in err and err["type"] != "missing":
                    msg = f"{msg} (got {err['input']!r})"
                self.add(f"{nid}.params.{name}", msg)
            return None
        for name, info in type(p).model_fields.items():
            kind = path_kind(info)
            val = getattr(p, name)
            if not val:
                continue
            if kind == "input" and not Path(val).is_file():
                self.add(f"{nid}.params.{name}", f"file not found: {ns.params.get(name, val)} (resolved to {val})")
            elif kind == "input_dir" and not Path(val).is_dir():
                self.add(f"{nid}.params.{name}", f"directory not found: {val}")
            elif kind == "weights":
                try:
                    weights_mod.resolve(val, self.g.base_dir)
                except weights_mod.WeightsError as e:
                    hint = f" [{name}: {info.description}]" if info.description else ""
                    self.add(f"{nid}.params.{name}", f"missing weights: {e}{hint}")
        return p

    def _links(self, classes: dict[str, type[Node]]) -> None:
        for nid, ns in self.g.spec.nodes.items():
            for port, link in ns.inputs.items():
                src = parse_link(link)
                if src is None:
                    self.add(f"{nid}.{port}", f"malformed link {link!r} (expected \"node.port\")")
                elif src[0] not in self.g.spec.nodes:
                    self.add(f"{nid}.{port}", f"links to unknown node {src[0]!r}")

    def _cycles(self) -> None:
        g = self.g.nx_graph()
        for cyc in nx.simple_cycles(g):
            self.add(" -> ".join(cyc + [cyc[0]]), "cycle: a graph must be acyclic")
            break

    def _types(self, classes: dict[str, type[Node]], params: dict[str, Any]) -> None:
        g = self.g.nx_graph()
        try:
            order = list(nx.topological_sort(g))
        except nx.NetworkXUnfeasible:
            order = list(self.g.spec.nodes)
        for nid in order:
            if nid not in classes:
                continue
            cls = classes[nid]
            ns = self.g.spec.nodes[nid]
            upstream: dict[str, PortType] = {}
            for port, link in ns.inputs.items():
                src = parse_link(link)
                if src and src[0] in self.ports:
                    out_types = self.ports[src[0]][1]
                    if src[1] in out_types:
                        upstream[port] = out_types[src[1]]
                    else:
                        self.add(f"{nid}.{port}", f"{src[0]} ({classes[src[0]].type_name}) has no output "
                                 f"{src[1]!r} (outputs: {', '.join(out_types) or 'none'})")
            if params.get(nid) is None:
                ins, outs = dict(cls.inputs), dict(cls.outputs)
            else:
                try:
                    ins, outs = cls.resolve_ports(params[nid], upstream)
                except Exception as e:  # a resolve error is a validation problem of that node
                    self.add(nid, f"cannot resolve ports: {e}")
                    ins, outs = dict(cls.inputs), dict(cls.outputs)
            self.ports[nid] = (ins, outs)
            for port in ns.inputs:
                if port not in ins:
                    self.add(f"{nid}.{port}", f"{cls.type_name} has no input {port!r} "
                             f"(inputs: {', '.join(ins) or 'none'})")
            for port, pt in ins.items():
                if port not in ns.inputs:
                    if not pt.optional:
                        self.add(f"{nid}.{port}", f"missing required input ({pt.describe()})")
                    continue
                if port in upstream:
                    why = pt.compatible(upstream[port])
                    if why:
                        hint = ""
                        if why.startswith("label-set mismatch"):
                            knobs = [k for k in ("preset", "label_set") if k in cls.Params.model_fields]
                            if knobs:
                                hint = f"; {nid}.params.{knobs[0]} selects the label set this node expects"
                        self.add(f"{nid}.{port}", f"{why} (from {ns.inputs[port]}){hint}")
