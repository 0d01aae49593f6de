"""Executor: plan what the requested outputs need, run it in topological order, cache it.

The plan is the set of ancestors of the requested nodes (default: the graph's sinks). Each node's
cache key is computed *before* it runs from its type, code version, canonical params, weights
digests, file fingerprints and its upstream keys, so a re-run with one changed param recomputes
exactly that node and what lies downstream of it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import time
import warnings
from pathlib import Path
from typing import Any

import networkx as nx
import torch

from . import weights as weights_mod
from .cache import Cache, canonical, make_key
from .codeversion import code_digest
from .events import EventBus
from .graph import Graph, GraphError, Problem, parse_link
from .node import Context, Node, NodeError, NodeWarning, file_digest, path_kind
from .threads import run_threads, torch_threads
from .types import PortType


def pick_device(device: str | torch.device | None = None) -> torch.device:
    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise NodeError(f"--device {device}: CUDA is not available on this machine (use cpu)")
    return dev


def describe_value(v: Any) -> str:
    if isinstance(v, torch.Tensor):
        return f"{tuple(v.shape)} {str(v.dtype).replace('torch.', '')}"
    if isinstance(v, torch.nn.Module):
        return type(v).__name__
    return type(v).__name__


class Executor:
    """Runs a validated graph. Reusable: nodes stay set up between ``run`` calls."""

    def __init__(self, graph: Graph, device: str | torch.device | None = None, cache: Cache | None = None,
                 events: EventBus | None = None) -> None:
        self.graph = graph
        self.device = pick_device(device)
        self.cache = cache if cache is not None else Cache(enabled=False)
        self.events = events or EventBus()
        self.nodes: dict[str, Node] = {}
        self.ports: dict[str, tuple[dict[str, PortType], dict[str, PortType]]] = {}
        self.keys: dict[str, str] = {}
        self._components: dict[str, dict[str, Any]] = {}
        self._files_changed: dict[str, list[str]] = {}
        self._plans: dict[tuple[str, ...] | None, list[str]] = {}

    # ---- planning -----------------------------------------------------------------------
    def plan(self, outputs: list[str] | None = None) -> list[str]:
        targets = [o.split(".")[0] for o in (outputs or self.graph.spec.outputs or self.graph.sinks())]
        g = self.graph.nx_graph()
        need: set[str] = set()
        for t in targets:
            if t not in g:
                raise GraphError([Problem(t, "requested output names no node of the graph")], self.graph.source)
            need.add(t)
            need |= nx.ancestors(g, t)
        return [n for n in nx.topological_sort(g) if n in need]

    def node(self, nid: str) -> Node:
        if nid not in self.nodes:
            cls = self.graph.node_class(nid)
            ctx = Context(device=self.device, emit=self.events.emit, node_id=nid, base_dir=self.graph.base_dir)
            self.nodes[nid] = cls(self.graph.params_for(nid), ctx)
        return self.nodes[nid]

    # ---- keys ---------------------------------------------------------------------------
    def key_of(self, nid: str) -> str:
        node = self.node(nid)
        params = node.params.model_dump(mode="json")
        wdig: dict[str, str] = {}
        for name, info in type(node.params).model_fields.items():
            if path_kind(info) == "weights" and getattr(node.params, name):
                wdig[name] = weights_mod.digest(getattr(node.params, name), self.graph.base_dir)
        upstream = {}
        for port, link in self.graph.spec.nodes[nid].inputs.items():
            src = parse_link(link)
            assert src is not None
            upstream[port] = f"{self.keys[src[0]]}:{src[1]}"
        fp = node.fingerprint()
        code = code_digest(type(node))
        key = make_key(node.type_name, node.version, params, wdig, fp, upstream, code=code)
        self._components[nid] = {"type": node.type_name, "version": node.version, "code": code,
                                 "params": params, "weights": wdig, "fingerprint": fp, "upstream": upstream}
        return key

    # ---- running ------------------------------------------------------------------------
    def run(self, outputs: list[str] | None = None) -> dict[str, dict[str, Any]]:
        """Compute the requested outputs; returns ``{node: {port: value}}`` for every planned node."""
        order = self._validated_plan(outputs)
        n_threads = run_threads() if self.device.type == "cpu" else None
        self.events.emit("run_start", graph=self.graph.name, nodes=order, device=str(self.device),
                         threads=n_threads or torch.get_num_threads())
        explain_prev = self._load_explain()
        results: dict[str, dict[str, Any]] = {}
        t0 = time.perf_counter()
        computed = 0
        with torch.inference_mode(), torch_threads(n_threads):  # the CPUs free now (nodegraph.threads)
            for nid in order:
                node = self.node(nid)
                node.ctx.input_types = self._upstream_types(nid)
                self.keys[nid] = key = self.key_of(nid)
                if node.cacheable and node.cache_valid():
                    hit, tier, meta = self.cache.get_entry(key, self.device)
                    changed = _changed_files(meta) if hit is not None else []
                    if hit is not None and not changed:
                        results[nid] = hit
                        self.events.emit("cached", node=nid, type=node.type_name, tier=tier, key=key[:16])
                        continue
                    self._files_changed[nid] = changed
                inputs = self._inputs(nid, results)
                reason = self._why(nid, explain_prev.get(nid))
                results[nid] = self._compute(nid, node, inputs, reason)
                computed += 1
                if node.cacheable:
                    self.cache.put(key, results[nid], meta=self._entry_meta(nid, node))
        self._save_explain()
        self.events.emit("run_end", seconds=round(time.perf_counter() - t0, 4), computed=computed,
                         cached=len(order) - computed)
        return results

    def _validated_plan(self, outputs: list[str] | None) -> list[str]:
        """Validate once per requested output set (the graph of an executor does not change);
        a file removed between runs is still reported, by the node that reads it."""
        key = tuple(outputs) if outputs else None
        if key not in self._plans:
            self.ports = self.graph.check(outputs)
            self._plans[key] = self.plan(outputs)
        return self._plans[key]

    def _upstream_types(self, nid: str) -> dict[str, PortType]:
        out = {}
        for port, link in self.graph.spec.nodes[nid].inputs.items():
            src = parse_link(link)
            if src and src[0] in self.ports:
                out[port] = self.ports[src[0]][1].get(src[1])
        return out

    def _inputs(self, nid: str, results: dict[str, dict[str, Any]]) -> dict[str, Any]:
        out = {}
        for port, link in self.graph.spec.nodes[nid].inputs.items():
            src = parse_link(link)
            assert src is not None
            out[port] = results[src[0]][src[1]]
        return out

    def _compute(self, nid: str, node: Node, inputs: dict[str, Any], reason: str) -> dict[str, Any]:
        self.events.emit("start", node=nid, type=node.type_name, reason=reason)
        cuda = self.device.type == "cuda"
        if cuda:
            torch.cuda.reset_peak_memory_stats(self.device)
        t = time.perf_counter()
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", NodeWarning)
                node.ensure_setup()
                out = node.forward(**inputs)
            self._relay(nid, caught)
            node.check_outputs(out, self.ports[nid][1], node_id=nid)
        except NodeError as e:
            self.events.emit("error", node=nid, type=node.type_name, message=str(e))
            if e.node == nid and str(e).startswith((f"{nid}.", f"{nid}:", f"node {nid!r}")):
                raise  # the message already names the node
            raise NodeError(f"node {nid!r} ({node.type_name}): {e}", nid, e.where) from e
        except Exception as e:
            shapes = ", ".join(f"{k}={describe_value(v)}" for k, v in inputs.items()) or "no inputs"
            msg = f"node {nid!r} ({node.type_name}) failed: {type(e).__name__}: {e} [inputs: {shapes}]"
            self.events.emit("error", node=nid, type=node.type_name, message=msg)
            raise NodeError(msg, nid) from e
        done: dict[str, Any] = {"seconds": round(time.perf_counter() - t, 6), "type": node.type_name}
        if cuda:
            done["peak_bytes"] = int(torch.cuda.max_memory_allocated(self.device))
        else:
            done["rss_bytes"] = _rss_bytes()
        self.events.emit("done", node=nid, **done)
        return out

    def _entry_meta(self, nid: str, node: Node) -> dict[str, str]:
        """What a cache entry records beside the outputs: node type, code digest, and the sha256 of
        each file the node wrote (a saver stands in for its run only while they are unchanged)."""
        meta = {"node_type": node.type_name, "code": self._components[nid]["code"]}
        files = {p: file_digest(p) for p in node.written_files() if os.path.isfile(p)}
        if files:
            meta["files"] = json.dumps(files, sort_keys=True)
        return meta

    def _relay(self, nid: str, caught: list[warnings.WarningMessage]) -> None:
        """A node's ``NodeWarning``s become ``warning`` events naming it; other warnings go on."""
        for w in caught:
            if issubclass(w.category, NodeWarning):
                self.events.emit("warning", node=nid, message=str(w.message))
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)

    # ---- "why was this recomputed?" -------------------------------------------------------
    def _explain_path(self) -> Path | None:
        if not self.cache.enabled or self.cache.disk_dir is None:
            return None
        ident = hashlib.sha256(str(self.graph.path or self.graph.name).encode()).hexdigest()[:20]
        return self.cache.disk_dir / "explain" / f"{ident}.json"

    def _load_explain(self) -> dict[str, Any]:
        p = self._explain_path()
        if p is None or not p.is_file():
            return {}
        try:
            return json.loads(p.read_text())
        except (OSError, json.JSONDecodeError):
            return {}

    def _save_explain(self) -> None:
        p = self._explain_path()
        if p is None:
            return
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(".tmp")
        tmp.write_text(canonical(self._components))
        tmp.replace(p)

    def _why(self, nid: str, prev: dict[str, Any] | None) -> str:
        node = self.nodes[nid]
        if not node.cacheable:
            return "not cacheable (side effects)"
        if not self.cache.enabled:
            return "cache disabled"
        if self.keys.get(nid) in self.cache.corrupt:
            return "its cache entry could not be read (a damaged file; removed)"
        if self._files_changed.get(nid):
            return "output file changed or removed since it was written: " + ", ".join(self._files_changed[nid])
        if prev is None:
            return "first run"
        cur = self._components[nid]
        reasons = []
        if prev.get("type") != cur["type"]:
            reasons.append(f"node type changed ({prev.get('type')} -> {cur['type']})")
        elif prev.get("version") != cur["version"] or prev.get("code", cur["code"]) != cur["code"]:
            reasons.append("node code changed")
        changed = sorted(k for k in set(prev.get("params", {})) | set(cur["params"])
                         if prev.get("params", {}).get(k) != cur["params"].get(k))
        if changed:
            reasons.append("params changed: " + ", ".join(changed))
        if prev.get("weights") != cur["weights"]:
            reasons.append("weights changed")
        if prev.get("fingerprint") != cur["fingerprint"]:
            reasons.append("input file changed")
        ups = sorted(p for p in cur["upstream"] if prev.get("upstream", {}).get(p) != cur["upstream"][p])
        if ups:
            reasons.append("upstream changed: " + ", ".join(ups))
        return "; ".join(reasons) or "cache entry evicted or missing"


def _changed_files(meta: dict[str, str]) -> list[str]:
    """The files a cache entry recorded (path -> sha256) that are gone or hold other bytes now."""
    recorded = json.loads(meta["files"]) if meta.get("files") else {}
    return [p for p, sha in recorded.items() if not os.path.isfile(p) or file_digest(p) != sha]


@functools.cache
def _statm_fd() -> int:
    return os.open("/proc/self/statm", os.O_RDONLY)


def _rss_bytes() -> int:
    """Current resident set size (Linux /proc/self/statm, read with pread on a kept fd); 0 elsewhere."""
    try:
        return int(os.pread(_statm_fd(), 128, 0).split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0
