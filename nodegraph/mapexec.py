"""The per-item half of a mapped job: one node for a group of items, batched where it may be.

See ``nodegraph.mapper`` for the contract of ``Node.batch_inputs``. Errors are caught here and
pinned on the item (``node``, ``where`` = ``node.params.name`` or ``node.port``, message); a
failed batched call is re-run item by item so that the error lands on the item that caused it.
"""

from __future__ import annotations

import hashlib
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from .cache import canonical
from .graph import parse_link

if TYPE_CHECKING:  # pragma: no cover
    from .mapper import MapJob


class JobInterrupted(KeyboardInterrupt):
    """SIGTERM (or SIGINT) reached a running job; finished items are in the index."""


class SignalGuard:
    """Turns SIGTERM into ``JobInterrupted`` while a job runs (main thread only), so that the
    job unwinds between two Python operations: the index is never left with half a line."""

    def __enter__(self) -> SignalGuard:
        self.old = None
        if threading.current_thread() is threading.main_thread():
            self.old = signal.signal(signal.SIGTERM, self._raise)
        return self

    @staticmethod
    def _raise(signum: int, frame: Any) -> None:
        raise JobInterrupted(f"stopped by signal {signum}")

    def __exit__(self, *exc: Any) -> None:
        if self.old is not None:
            signal.signal(signal.SIGTERM, self.old)


@dataclass
class ItemState:
    index: int
    item: dict[str, Any]
    raw: dict[str, dict[str, Any]]
    """Raw params of the nodes this item changes (its values and its output names)."""
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    saved: dict[str, str] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    error: dict[str, str] | None = None


def plan_calls(job: MapJob, nid: str, live: list[ItemState]) -> list[list[ItemState]]:
    """Groups of items that may share one call of ``nid`` (singletons when it may not batch)."""
    singles = [[s] for s in live]
    if job.batch <= 1 or len(live) < 2 or not getattr(job.graph.node_class(nid), "batch_inputs", ()):
        return singles
    node = job.instance(nid, live[0])
    try:  # a node may decide from its set-up state (a generator that draws one z per batch does not batch)
        node.ensure_setup()
    except Exception:  # noqa: BLE001 - the per-item call reports it, attributed
        return singles
    bins = set(node.batch_inputs or ())
    wired = {p: parse_link(link) for p, link in job.graph.spec.nodes[nid].inputs.items()}
    dep = sorted(p for p, src in wired.items() if src and src[0] in job.part)
    if not bins or not dep or not set(dep) <= bins or (set(wired) & bins) - set(dep):
        return singles
    groups: dict[Any, list[ItemState]] = {}
    singles = []
    for st in live:
        vals = [st.results[wired[p][0]][wired[p][1]] for p in dep]
        if not all(isinstance(v, torch.Tensor) and v.dim() > 0 for v in vals) or \
                len({v.shape[0] for v in vals}) != 1:
            singles.append([st])
            continue
        sig = (canonical(st.raw.get(nid)), tuple((tuple(v.shape[1:]), v.dtype, str(v.device)) for v in vals))
        groups.setdefault(sig, []).append(st)
    return list(groups.values()) + singles


def run_batched(job: MapJob, nid: str, call: list[ItemState], prefix: dict[str, Any], collector: Any) -> None:
    """Run ``nid`` for the items of ``call`` (one concatenated call if more than one)."""
    if len(call) == 1:
        run_one(job, nid, call[0], prefix, collector)
        return
    node = job.instance(nid, call[0])
    per = [job.inputs(nid, st, prefix) for st in call]
    dep = [p for p, link in job.graph.spec.nodes[nid].inputs.items() if parse_link(link)[0] in job.part]
    sizes = [int(ins[dep[0]].shape[0]) for ins in per]
    inputs = dict(per[0])
    for p in dep:
        inputs[p] = torch.cat([ins[p] for ins in per])
    total = sum(sizes)
    t = time.perf_counter()
    try:
        out = job.ex._compute(nid, node, inputs, f"batch of {len(call)} items")
    except Exception:  # noqa: BLE001 - re-run one by one to pin the error on its item
        out = None
    dt = time.perf_counter() - t
    if out is None or not all(isinstance(v, torch.Tensor) and v.dim() > 0 and v.shape[0] == total
                              for v in out.values()):
        for st in call:
            run_one(job, nid, st, prefix, collector)
        return
    off = 0
    for st, n in zip(call, sizes, strict=True):
        st.results[nid] = {k: v[off:off + n] for k, v in out.items()}
        st.seconds += dt * n / total
        off += n


def run_one(job: MapJob, nid: str, st: ItemState, prefix: dict[str, Any], collector: Any) -> None:
    node = job.instance(nid, st)
    mkey = None
    if job.memo.enabled:
        ups = {p: st.keys.get(parse_link(link)[0], "") for p, link in job.graph.spec.nodes[nid].inputs.items()}
        salt = None if node.cacheable else st.index
        mkey = st.keys[nid] = hashlib.sha256(canonical([nid, st.raw.get(nid), ups, salt]).encode()).hexdigest()
        if node.cacheable:
            hit, _ = job.memo.get(mkey)
            if hit is not None:
                st.results[nid] = hit
                job.events.emit("cached", node=nid, type=node.type_name, tier="item")
                return
    inputs = job.inputs(nid, st, prefix)
    collector.current = st
    t = time.perf_counter()
    try:
        st.results[nid] = job.ex._compute(nid, node, inputs, f"item {st.index}")
    except Exception as e:  # noqa: BLE001 - recorded on the item; the job decides whether to go on
        st.error = describe_error(e, nid, node)
    finally:
        collector.current = None
        st.seconds += time.perf_counter() - t
    if st.error is None:  # files its output params name count too (a saver that emits no `saved` event)
        for name in job.out_params.get(nid, ()):
            path = str(getattr(node.params, name))
            if os.path.isfile(path):
                st.saved.setdefault(path, nid)
    if mkey is not None and node.cacheable and st.error is None:
        job.memo.put(mkey, st.results[nid], disk=False)


def describe_error(e: BaseException, nid: str, node: Any) -> dict[str, str]:
    """``{"node", "where", "message"}``; ``where`` is ``node.params.name`` or ``node.port``."""
    where = getattr(e, "where", None) or ""
    if where.startswith(f"{nid}."):
        pass
    elif where in type(node.params).model_fields:
        where = f"{nid}.params.{where}"
    elif where:
        where = f"{nid}.{where}"
    else:
        where = nid
    return {"node": nid, "type": node.type_name, "where": where, "message": str(e)}


def error_text(err: dict[str, str] | None) -> str:
    """``where: message`` (the message alone when it already starts with where)."""
    err = err or {}
    where, msg = err.get("where", ""), err.get("message", "")
    return msg if msg.startswith(where) else f"{where}: {msg}"
