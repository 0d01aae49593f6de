"""Map a graph over many items: ``nodegraph run G --over NODE.PARAM=SOURCE`` and ``nodegraph.map``.

The graph's plan splits in two. The *prefix* -- nodes that depend on no varying param (a loaded
style photo, anything upstream of the item) -- runs once, through the ordinary executor and its
cache. The *item part* -- the nodes whose params vary and everything downstream of them -- runs
per item; a node instance is kept between items while its own params stay the same, so a
generator loads its weights once. Output files of the item part are named per item
(``nodegraph.over.item_output``), each finished item is appended to the results index
(``nodegraph.runindex``), and a re-run skips items whose files still have their recorded sha256.

Batching (``batch > 1``): a node class may declare ``batch_inputs``, the inputs along whose
first dim it works item by item (output k depends only on element k of those inputs). Items
whose values on those ports have equal trailing shapes are concatenated into one call and the
outputs split back. A node is batched only when every item-dependent input it has is one of its
``batch_inputs`` and none of its ``batch_inputs`` is shared; otherwise, and for any error, it
runs item by item.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
import torch
from pydantic import ValidationError

from . import dist, runindex
from .cache import Cache, canonical
from .events import EventBus
from .executor import Executor
from .graph import Graph, GraphError, Problem, _set_dotted, parse_link
from .mapexec import ItemState, JobInterrupted, SignalGuard, error_text, plan_calls, run_batched
from .node import Context, Node, NodeError, file_digest, path_kind
from .over import DEFAULT_PATTERN, Item, check_pattern, item_output
from .reduce import Moments, reduce_and_save
from .types import Scalar


class MapError(NodeError):
    """An item failed and the job stopped (no ``keep_going``); the index names it."""


@dataclass
class ItemResult:
    """What one item produced (``status`` ``ok``, ``error`` or ``skipped`` = done before)."""

    index: int
    item: Item
    status: str
    outputs: list[dict[str, str]] = field(default_factory=list)
    values: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    error: dict[str, str] | None = None
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The item part's outputs ``{node: {port: value}}`` (empty for skipped items)."""

    def record(self, job: str) -> dict[str, Any]:
        return {"job": job, "index": self.index, "item": self.item, "status": self.status,
                "outputs": self.outputs, "values": self.values, "seconds": round(self.seconds, 6),
                "error": self.error}


class MapJob:
    """One job: a validated graph, its items and how to run them (see the module doc)."""

    def __init__(self, graph: Graph, items: list[Item], *, outputs: list[str] | None = None,
                 pattern: str = DEFAULT_PATTERN, batch: int = 1, keep_going: bool = False,
                 index: str | Path | None = None, resume: bool = True, device: Any = None,
                 cache: Cache | None = None, events: EventBus | None = None, memo_bytes: int = 0,
                 lock: str | Path | bool = True, kind: str = "map", stats: list[str] | None = None) -> None:
        if batch < 1:
            raise ValueError(f"--batch must be >= 1 (got {batch})")
        check_pattern(pattern)
        self.graph, self.items, self.outputs = graph, list(items), outputs
        self.pattern, self.batch, self.keep_going, self.resume = pattern, batch, keep_going, resume
        self.events = events or EventBus()
        self.ex = Executor(graph, device=device, cache=cache, events=self.events)
        self.memo = Cache(ram_bytes=memo_bytes, enabled=memo_bytes > 0)
        self.rank, self.world = dist.rank_world()
        self._inst: dict[str, tuple[str, Node]] = {}
        self._checked: dict[tuple[int, str], Any] = {}  # params built by precheck, used once by instance()
        self._raws: dict[int, dict[str, dict[str, Any]]] = {}
        self.stats = list(stats or [])
        self._plan(index)
        self._check_stats()
        self.moments = {k: Moments() for k in self.stats}
        self.kind = kind
        self.lock_path = None if lock is False else Path(lock) if lock is not True else \
            self.index_path.with_name(self.index_path.name.removesuffix(".jsonl").removesuffix(".index") + ".lock.json")

    # ---- planning ---------------------------------------------------------------------------
    def _plan(self, index: str | Path | None) -> None:
        g = self.graph
        self.ex.ports = self._check()
        order = self.ex.plan(self.outputs)
        problems, varying = [], set()
        for key in dict.fromkeys(k for it in self.items for k in it):
            nid, _, param = key.partition(".")
            if nid not in g.spec.nodes:
                problems.append(Problem(key, f"no node {nid!r} in the graph (nodes: {', '.join(g.spec.nodes)})"))
            elif nid not in order:
                problems.append(Problem(key, f"node {nid!r} is not computed for the requested outputs"))
            elif param.split(".")[0] not in g.node_class(nid).Params.model_fields:
                names = ", ".join(g.node_class(nid).Params.model_fields) or "none"
                problems.append(Problem(key, f"{g.spec.nodes[nid].type} has no param {param!r} (params: {names})"))
            varying.add(nid)
        if problems:
            raise GraphError(problems, "--over")
        nxg = g.nx_graph()
        dep = set(varying).union(*(nx.descendants(nxg, n) for n in varying)) if varying else set()
        self.prefix = [n for n in order if n not in dep]
        self.part = [n for n in order if n in dep]
        self.out_params = {n: [k for k, info in g.node_class(n).Params.model_fields.items()
                               if path_kind(info) == "output" and g.spec.nodes[n].params.get(k)]
                           for n in self.part}
        self.out_params = {n: ks for n, ks in self.out_params.items() if ks}
        self.job = hashlib.sha256(canonical({
            "spec": g.spec.model_dump(mode="json"), "outputs": self.outputs, "pattern": self.pattern,
            "out_dir": str(g.out_dir or ""), "batch": self.batch}).encode()).hexdigest()[:32]
        # batch is part of the job: a batched call may differ from item-by-item in the last bit
        self.index_path = Path(index) if index else self._default_index()

    def _check(self) -> dict[str, Any]:
        """Validate the graph as a whole; a problem with a param the items set (a placeholder
        path) is left to the per-item check (``precheck``)."""
        from .validate import Validator

        v = Validator(self.graph)
        varying = {f"{k.split('.', 1)[0]}.params.{k.split('.', 1)[1]}" for it in self.items for k in it}
        problems = [p for p in v.run(self.outputs) if p.where not in varying]
        if problems:
            raise GraphError(problems, self.graph.source)
        return v.ports

    def _check_stats(self) -> None:
        problems = []
        for k in self.stats:
            nid, _, port = k.rpartition(".")
            if nid not in self.part:
                problems.append(Problem(k, f"--stats needs an output of a node that depends on the item "
                                           f"({', '.join(self.part) or 'none'})"))
            elif port not in self.ex.ports[nid][1]:
                problems.append(Problem(k, f"{nid} has no output {port!r} "
                                           f"(outputs: {', '.join(self.ex.ports[nid][1])})"))
        if problems:
            raise GraphError(problems, "--stats")
        self.stats_path = self.index_path.with_name(
            self.index_path.name.removesuffix(".jsonl").removesuffix(".index") + ".stats.safetensors")

    def _default_index(self) -> Path:
        for n, ks in self.out_params.items():
            rel = Path(self.graph.spec.nodes[n].params[ks[0]]).parent / f"{self.graph.name}.index.jsonl"
            return Path(self.graph.resolve_path(str(rel), "output"))
        return Path(self.graph.resolve_path(f"{self.graph.name}.index.jsonl", "output"))

    def item_raw(self, i: int, item: Item) -> dict[str, dict[str, Any]]:
        """The raw params of every node of the item part that the item changes."""
        raw: dict[str, dict[str, Any]] = {}
        for key, value in item.items():
            nid, param = key.split(".", 1)
            _set_dotted(raw.setdefault(nid, dict(self.graph.spec.nodes[nid].params)), param, value)
        for nid, names in self.out_params.items():
            base = self.graph.spec.nodes[nid].params
            for name in names:
                if f"{nid}.{name}" not in item:
                    raw.setdefault(nid, dict(base))[name] = item_output(base[name], self.pattern, item, i, nid)
        return raw

    def params(self, nid: str, raw: dict[str, Any]) -> Any:
        """Validated params of ``nid`` from raw values, paths resolved (as ``Graph.params_for``)."""
        params = self.graph.node_class(nid).Params(**raw)
        for name, info in type(params).model_fields.items():
            kind = path_kind(info)
            val = getattr(params, name)
            if kind in ("input", "output", "input_dir") and isinstance(val, str) and val:
                setattr(params, name, self.graph.resolve_path(val, kind))
        return params

    def precheck(self, todo: list[int]) -> dict[int, list[str]]:
        """Problems of each item found before any work: bad param values, missing input files,
        two items writing the same file."""
        bad: dict[int, list[str]] = {}
        seen: dict[str, int] = {}
        for i in todo:
            self._raws[i] = self.item_raw(i, self.items[i])
            for nid, raw in self._raws[i].items():
                try:
                    p = self._checked[(i, nid)] = self.params(nid, raw)
                except ValidationError as e:
                    bad.setdefault(i, []).extend(
                        f"{nid}.params.{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())
                    continue
                for name, info in type(p).model_fields.items():
                    kind, val = path_kind(info), getattr(p, name)
                    if kind == "input" and val and not Path(val).is_file():
                        bad.setdefault(i, []).append(f"{nid}.params.{name}: file not found: {val}")
                    elif kind == "output" and val:
                        if val in seen:
                            bad.setdefault(i, []).append(
                                f"{nid}.params.{name}: item {seen[val]} writes the same file {val}; "
                                "add {index} to the name pattern")
                        seen.setdefault(val, i)
        return bad

    # ---- running ----------------------------------------------------------------------------
    def run(self) -> Iterator[ItemResult]:
        """Run the job, yielding one result per item of this rank (skipped ones included)."""
        dist.init()
        mine = [i for i in range(len(self.items)) if i % self.world == self.rank]
        prev = runindex.latest(self.index_path, self.job) if self.resume else {}
        skipped, todo = [], []
        for i in mine:
            rec = prev.get(runindex.item_key(self.items[i]))
            (skipped if runindex.is_done(rec) else todo).append((i, rec))
        bad = self.precheck([i for i, _ in todo])
        if bad and not self.keep_going:
            lines = [Problem(f"item {i} ({self._label(i)})", "; ".join(msgs)) for i, msgs in sorted(bad.items())]
            raise GraphError(lines, "sweep" if self.kind == "sweep" else "--over")
        self.events.emit("map_start", total=len(self.items), mine=len(mine), todo=len(todo),
                         skipped=len(skipped), index=str(self.index_path), rank=self.rank, world=self.world)
        counts = {"ok": 0, "error": 0, "skipped": len(skipped)}
        t0 = time.perf_counter()
        for i, rec in skipped:
            yield ItemResult(i, self.items[i], "skipped", rec.get("outputs", []), rec.get("values", {}),
                             rec.get("seconds", 0.0))
        part = self.index_path if self.world == 1 else Path(f"{self.index_path}.part{self.rank}")
        writer = runindex.IndexWriter(part)
        failed: ItemResult | None = None
        try:
            with SignalGuard(), torch.inference_mode():
                # the graph was validated above (placeholders of item params aside): plan the prefix as is
                self.ex._plans[tuple(self.prefix)] = self.prefix
                prefix = self.ex.run(self.prefix) if self.prefix else {}
                todo_ids = [i for i, _ in todo]
                for s in range(0, len(todo_ids), self.batch):
                    for res in self._run_group(todo_ids[s:s + self.batch], prefix, bad):
                        writer.write(res.record(self.job))
                        counts[res.status] += 1
                        for k in self.stats if res.status == "ok" else ():
                            nid, _, port = k.rpartition(".")
                            self.moments[k].add(res.results[nid][port])
                        self.events.emit("item_done" if res.status == "ok" else "item_error", index=res.index,
                                         item=self._label(res.index), seconds=round(res.seconds, 4),
                                         error=res.error)
                        yield res
                        if res.status == "error" and not self.keep_going and failed is None:
                            failed = res
                    if failed is not None:
                        break
        except JobInterrupted:
            writer.close()
            self.events.emit("map_interrupted", **counts)
            raise
        writer.close()
        self._finish(counts, time.perf_counter() - t0)
        if failed is not None:
            e = failed.error or {}
            raise MapError(f"item {failed.index} ({self._label(failed.index)}) failed: {error_text(e)} "
                           "(--keep-going records failures and goes on)", e.get("node"), e.get("where"))

    def _finish(self, counts: dict[str, int], seconds: float) -> None:
        dist.barrier()
        final = None
        if self.rank == 0:
            order = [runindex.item_key(it) for it in self.items]
            final = runindex.compact(self.index_path, self.job, order)
            if self.lock_path is not None:
                from .lock import map_lock, write_lock

                write_lock(map_lock(self, final, self.kind), self.lock_path)
        counts = dist.sum_counts(counts)
        extra: dict[str, Any] = {}
        if self.stats:
            extra = {"stats": reduce_and_save(self.moments, self.stats_path, self.rank == 0),
                     "stats_path": str(self.stats_path)}
        self.events.emit("map_end", seconds=round(seconds, 4), index=str(self.index_path), lock=str(self.lock_path),
                         means=_means(final) if final is not None else {}, **counts, **extra)

    def _label(self, i: int) -> str:
        from .over import item_stem

        if self.kind == "sweep":
            return ", ".join(f"{k}={v}" for k, v in self.items[i].items())
        return item_stem(self.items[i], i)

    # ---- one group of items -----------------------------------------------------------------
    def _run_group(self, ids: list[int], prefix: dict[str, dict[str, Any]],
                   bad: dict[int, list[str]]) -> list[ItemResult]:
        states = [ItemState(i, self.items[i], self._raws.pop(i, None) or self.item_raw(i, self.items[i])) for i in ids]
        for st in states:
            if st.index in bad:
                nid = bad[st.index][0].split(".")[0]
                st.error = {"node": nid, "where": bad[st.index][0].split(":")[0], "message": "; ".join(bad[st.index])}
        collector = _SavedCollector()
        self.events.add(collector)
        try:
            for nid in self.part:
                live = [st for st in states if st.error is None]
                for call in plan_calls(self, nid, live):
                    run_batched(self, nid, call, prefix, collector)
        finally:
            self.events.sinks.remove(collector)
        return [self._result(st) for st in states]

    def instance(self, nid: str, st: ItemState) -> Node:
        raw = st.raw.get(nid)
        key = canonical(raw) if raw is not None else ""
        got = self._inst.get(nid)
        if got is not None and got[0] == key:
            return got[1]
        params = self.graph.params_for(nid) if raw is None else \
            self._checked.pop((st.index, nid), None) or self.params(nid, raw)
        ctx = Context(device=self.ex.device, emit=self.events.emit, node_id=nid, base_dir=self.graph.base_dir)
        node = self.graph.node_class(nid)(params, ctx)
        node.ctx.input_types = self.ex._upstream_types(nid)
        self._inst[nid] = (key, node)
        return node

    def inputs(self, nid: str, st: ItemState, prefix: dict[str, dict[str, Any]]) -> dict[str, Any]:
        out = {}
        for port, link in self.graph.spec.nodes[nid].inputs.items():
            src = parse_link(link)
            assert src is not None
            out[port] = (st.results if src[0] in st.results else prefix)[src[0]][src[1]]
        return out

    def _result(self, st: ItemState) -> ItemResult:
        if st.error is not None:
            return ItemResult(st.index, st.item, "error", seconds=st.seconds, error=st.error)
        outputs = [{"node": n, "path": p, "sha256": file_digest(p)} for p, n in st.saved.items()]
        values = {}
        for nid in self.part:
            for port, v in st.results.get(nid, {}).items():
                if isinstance(self.ex.ports[nid][1].get(port), Scalar) and isinstance(v, torch.Tensor):
                    values[f"{nid}.{port}"] = float(v)
        return ItemResult(st.index, st.item, "ok", outputs, values, st.seconds, None, st.results)


class _SavedCollector:
    """Collects the ``saved`` events of the item being computed."""

    def __init__(self) -> None:
        self.current: ItemState | None = None

    def __call__(self, rec: dict[str, Any]) -> None:
        if rec["event"] == "saved" and self.current is not None and rec.get("path"):
            self.current.saved[str(rec["path"])] = rec.get("node") or ""


def _means(records: list[dict[str, Any]]) -> dict[str, float]:
    sums: dict[str, list[float]] = {}
    for r in records:
        for k, v in (r.get("values") or {}).items():
            sums.setdefault(k, []).append(float(v))
    return {k: sum(v) / len(v) for k, v in sums.items()}


def map_graph(graph: Graph | str | Path, over: dict[str, Any], *, mode: str = "zip",
              overrides: dict[str, Any] | list[str] | None = None, out_dir: str | Path | None = None,
              **options: Any) -> Iterator[ItemResult]:
    """Run ``graph`` once per item; yields an ``ItemResult`` per item (see ``MapJob`` for the
    options: outputs, pattern, batch, keep_going, index, resume, device, cache, events).

    ``over`` maps ``"node.param"`` to a SOURCE string (folder, glob, list file, JSON list; see
    ``nodegraph.over``) or to a list of values; several keys zip (``mode="product"``: cross product).
    """
    from .graph import load_graph
    from .over import combine, read_source

    g = graph if isinstance(graph, Graph) else load_graph(graph)
    g = g.with_overrides(overrides)
    if out_dir is not None:
        g.out_dir = Path(out_dir).resolve()
    sources = [{k: read_source(v, k, Path.cwd()) if isinstance(v, str) else list(v)} for k, v in over.items()]
    return MapJob(g, combine(sources, mode), **options).run()
