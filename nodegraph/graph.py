"""Graph files (format v1): load, migrate, override, validate.

A graph file is JSON data, never code::

    {"nodegraph": 1, "name": "...", "description": "...",
     "nodes": {"id": {"type": "family.Name", "params": {...}, "inputs": {"port": "other.port"}}},
     "train": {...}}

Validation reports every problem at once, each naming ``node.port`` or ``node.params.name``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from . import registry
from . import weights as weights_mod
from .node import Node, path_kind
from .types import PortType

FORMAT_VERSION = 1
_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


class NodeSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: str
    params: dict[str, Any] = Field(default_factory=dict)
    inputs: dict[str, str] = Field(default_factory=dict)
    doc: str = ""


class GraphSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    nodegraph: int
    name: str = ""
    description: str = ""
    nodes: dict[str, NodeSpec]
    outputs: list[str] | None = None
    """Nodes (or ``node.port``) to compute by default; None = every sink."""
    train: dict[str, Any] | None = None
    sweep: dict[str, Any] | None = None
    """Params to sweep (``nodegraph.sweep``): ``{"node.param": [values], "mode": "product"}``."""
    layout: dict[str, Any] | None = None


@dataclass
class Problem:
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


class GraphError(ValueError):
    """The graph cannot run; ``problems`` lists every reason found."""

    def __init__(self, problems: list[Problem], source: str = "graph"):
        self.problems = problems
        self.source = source
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s)\n{lines}")


# Migrations: MIGRATIONS[v] turns a raw dict of version v into version v + 1.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def migrate(raw: dict[str, Any], source: str = "graph") -> dict[str, Any]:
    version = raw.get("nodegraph")
    if not isinstance(version, int):
        raise GraphError([Problem("nodegraph", "missing or non-integer format version (expected "
                                  f'"nodegraph": {FORMAT_VERSION})')], source)
    if version > FORMAT_VERSION:
        raise GraphError([Problem("nodegraph", f"format version {version} is newer than this nodegraph "
                                  f"understands ({FORMAT_VERSION}); upgrade nodegraph")], source)
    while version < FORMAT_VERSION:
        if version not in MIGRATIONS:
            raise GraphError([Problem("nodegraph", f"no migration from format version {version}")], source)
        raw = MIGRATIONS[version](raw)
        version = raw["nodegraph"]
    return raw


@dataclass
class Graph:
    spec: GraphSpec
    base_dir: Path
    path: Path | None = None
    out_dir: Path | None = None
    """Where relative output paths go (``--out``); default: the graph's folder."""
    notes: list[str] = field(default_factory=list)
    """What overrides changed beyond the literal request (e.g. params dropped by a type switch)."""
    _classes: dict[str, type[Node]] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return self.spec.name or (self.path.stem if self.path else "graph")

    @property
    def source(self) -> str:
        return str(self.path) if self.path else self.name

    # ---- structure ----------------------------------------------------------------------
    def edges(self) -> list[tuple[str, str, str, str]]:
        """(src_node, src_port, dst_node, dst_port) for every well-formed link."""
        out = []
        for nid, ns in self.spec.nodes.items():
            for port, link in ns.inputs.items():
                src = parse_link(link)
                if src is not None:
                    out.append((src[0], src[1], nid, port))
        return out

    def nx_graph(self) -> nx.DiGraph:
        g = nx.DiGraph()
        g.add_nodes_from(self.spec.nodes)
        for s, _sp, d, _dp in self.edges():
            if s in self.spec.nodes:
                g.add_edge(s, d)
        return g

    def node_class(self, nid: str) -> type[Node]:
        if nid not in self._classes:
            self._classes[nid] = registry.get(self.spec.nodes[nid].type)
        return self._classes[nid]

    def sinks(self) -> list[str]:
        g = self.nx_graph()
        out = []
        for nid in self.spec.nodes:
            try:
                cls = self.node_class(nid)
            except KeyError:
                continue
            if cls.is_sink or g.out_degree(nid) == 0:
                out.append(nid)
        return out

    def resolve_path(self, value: str, kind: str) -> str:
        """Relative paths resolve against the graph's folder, then the project root."""
        if not value:
            return value
        p = Path(value).expanduser()
        if p.is_absolute():
            return str(p)
        if kind == "output":
            if self.out_dir is None:
                return str(self.base_dir / p)
            # --out DIR keeps outputs inside DIR: "../out/x.png" (relative to the graph's
            # folder) becomes DIR/out/x.png, not a sibling of DIR
            parts = list(p.parts)
            while parts and parts[0] in ("..", "."):
                parts.pop(0)
            return str(self.out_dir.joinpath(*parts))
        first = self.base_dir / p
        if first.exists():
            return str(first)
        second = weights_mod.PROJECT_ROOT / p
        return str(second) if second.exists() else str(first)

    def params_for(self, nid: str) -> Any:
        """The validated Params of a node, with path params resolved (raises ValidationError)."""
        cls = self.node_class(nid)
        params = cls.Params(**self.spec.nodes[nid].params)
        for name, info in type(params).model_fields.items():
            kind = path_kind(info)
            if kind in ("input", "output", "input_dir"):
                val = getattr(params, name)
                if isinstance(val, str) and val:
                    setattr(params, name, self.resolve_path(val, kind))
        return params

    # ---- overrides ----------------------------------------------------------------------
    def with_overrides(self, overrides: dict[str, Any] | list[str] | None) -> Graph:
        """A copy with overrides applied (values parsed as JSON if they can be): ``node.param=value``,
        ``train.a.b=value``, ``node=family.Type`` (another type; params it does not declare are
        dropped, see ``notes``) and ``node.inputs.port=other.port`` (rewire; null unlinks)."""
        if not overrides:
            return self
        items = parse_overrides(overrides) if isinstance(overrides, list) else overrides
        raw = self.spec.model_dump()
        problems = []
        notes: list[str] = []
        # node=Type first, so that node.param=value overrides in the same call apply to the new type
        for key, value in sorted(items.items(), key=lambda kv: "." in kv[0]):
            if "." not in key:
                if key not in raw["nodes"]:
                    problems.append(Problem(key, "override must be node.param=value, or node=family.Type "
                                                 f"to change a node's type (no node {key!r} in the graph)"))
                elif not isinstance(value, str) or "." not in value:
                    problems.append(Problem(key, f"{key}={value!r}: a node's type looks like family.Name "
                                                 "(see `nodegraph nodes`)"))
                else:
                    notes += _switch_type(raw["nodes"][key], key, value)
                continue
            nid, param = key.split(".", 1)
            if nid == "train" and raw.get("train") is not None:
                _set_dotted(raw["train"], param, value)
                continue
            if nid not in raw["nodes"]:
                problems.append(Problem(key, f"no node {nid!r} in the graph (nodes: {', '.join(raw['nodes'])})"))
                continue
            if param.startswith("inputs."):  # rewire: gen.inputs.instance=data.instance (null unlinks)
                port = param[len("inputs."):]
                if value is None:
                    raw["nodes"][nid]["inputs"].pop(port, None)
                elif not isinstance(value, str) or parse_link(value) is None:
                    problems.append(Problem(key, f"{key}={value!r}: a link looks like node.port"))
                else:
                    raw["nodes"][nid]["inputs"][port] = value
                continue
            _set_dotted(raw["nodes"][nid]["params"], param, value)
        if problems:
            raise GraphError(problems, self.source)
        g = Graph(GraphSpec(**raw), self.base_dir, self.path, self.out_dir)
        g.notes = self.notes + notes
        return g

    # ---- validation ---------------------------------------------------------------------
    def validate(self, outputs: list[str] | None = None) -> list[Problem]:
        """Every problem found, without running anything. Empty list = runnable."""
        from .validate import Validator

        return Validator(self).run(outputs)

    def check(self, outputs: list[str] | None = None) -> dict[str, tuple[dict[str, PortType], dict[str, PortType]]]:
        """Validate; raise GraphError naming every problem, else return the resolved port types
        (one validation pass for both)."""
        from .validate import Validator

        v = Validator(self)
        problems = v.run(outputs)
        if problems:
            raise GraphError(problems, self.source)
        return v.ports

    def port_types(self) -> dict[str, tuple[dict[str, PortType], dict[str, PortType]]]:
        """(inputs, outputs) port types per node, as resolved by validation."""
        from .validate import Validator

        v = Validator(self)
        v.run(None)
        return v.ports


def _switch_type(node: dict[str, Any], nid: str, new_type: str) -> list[str]:
    """Give a node another type (``--set data=data.ADE20K``), keeping the params the new type
    declares and its wiring; returns notes on what was dropped. An unknown type is left for
    validation to report."""
    old_type, node["type"] = node["type"], new_type
    try:
        fields = registry.get(new_type).Params.model_fields
    except KeyError:  # unknown type: validation names it with the known types
        return []
    dropped = sorted(k for k in node["params"] if k not in fields)
    node["params"] = {k: v for k, v in node["params"].items() if k in fields}
    if not node["params"] and not dropped:
        return []
    kept = ", ".join(f"{k}={v!r}" for k, v in sorted(node["params"].items())) or "none"
    note = f"{nid}: {old_type} -> {new_type}; params kept (same name, check the meaning): {kept}"
    return [note + (f"; dropped (not declared by {new_type}): {', '.join(dropped)}" if dropped else "")]


def _set_dotted(d: dict[str, Any], key: str, value: Any) -> None:
    """Set ``a.b.c`` in nested dicts; at each level an existing key that holds the whole rest of
    the path, dots included (a loss name such as ``g_gan.loss``), is set as one key."""
    parts = key.split(".")
    while len(parts) > 1:
        rest = ".".join(parts)
        if rest in d:
            d[rest] = value
            return
        d = d.setdefault(parts.pop(0), {})
    d[parts[0]] = value


def parse_overrides(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise GraphError([Problem(item, "override must look like node.param=value")], "--set")
        k, v = item.split("=", 1)
        try:
            out[k.strip()] = json.loads(v)
        except json.JSONDecodeError:
            out[k.strip()] = v
    return out


def cli_overrides(graph: Graph, items: list[str], cwd: Path | None = None) -> dict[str, Any]:
    """``--set`` items as overrides, relative file paths made absolute against the working directory.

    A path typed on the command line means what it means to the shell (``--set style.path=my.jpg``
    is ``./my.jpg``), as for every command-line tool; paths written inside the graph file keep
    resolving against the graph's folder. Applies to params declared ``InputFile``, ``OutputFile``
    and ``InputDir``, and to ``WeightsRef`` values that are paths (a ``/`` or a ``.safetensors``
    suffix) rather than manifest names. Raises GraphError for a malformed item.
    """
    out = parse_overrides(items)
    cwd = Path.cwd() if cwd is None else cwd
    retyped = {k: v for k, v in out.items() if "." not in k and isinstance(v, str)}
    for key, value in out.items():
        if not isinstance(value, str) or not value or key.count(".") != 1 or Path(value).expanduser().is_absolute():
            continue
        nid, name = key.split(".")
        if nid not in graph.spec.nodes:
            continue
        try:
            cls = registry.get(retyped.get(nid, graph.spec.nodes[nid].type))
        except KeyError:
            continue  # validation names the unknown type
        field = cls.Params.model_fields.get(name)
        kind = path_kind(field) if field is not None else None
        is_path = value.endswith(".safetensors") or "/" in value
        if kind in ("input", "output", "input_dir") or (kind == "weights" and is_path):
            out[key] = str(cwd / Path(value).expanduser())
    return out


def parse_link(link: Any) -> tuple[str, str] | None:
    if not isinstance(link, str) or link.count(".") < 1:
        return None
    node, port = link.rsplit(".", 1)
    if not node or not port:
        return None
    return node, port


def load_graph(path: str | Path) -> Graph:
    """Read and parse a graph file (structure only; call ``.check()`` to validate fully)."""
    path = Path(path)
    if not path.is_file():
        raise GraphError([Problem(str(path), "graph file not found")], str(path))
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise GraphError([Problem(f"line {e.lineno} column {e.colno}", f"malformed JSON: {e.msg}")],
                         str(path)) from None
    return graph_from_dict(raw, base_dir=path.resolve().parent, path=path, source=str(path))


def graph_from_dict(raw: Any, base_dir: Path | None = None, path: Path | None = None,
                    source: str = "graph") -> Graph:
    if not isinstance(raw, dict):
        raise GraphError([Problem("(top level)", "a graph file must be a JSON object")], source)
    raw = migrate(raw, source)
    try:
        spec = GraphSpec(**raw)
    except ValidationError as e:
        raise GraphError([Problem(_loc(err["loc"]), err["msg"]) for err in e.errors()], source) from None
    return Graph(spec, base_dir or Path.cwd(), path)


def _loc(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] == "nodes" and len(parts) >= 2:
        parts = parts[1:]
    return ".".join(parts) or "(top level)"
