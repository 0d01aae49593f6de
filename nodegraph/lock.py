"""Run lockfiles: what a ``run``, a mapped job or a training used, so that it can be replayed.

A lock (``<graph>.lock.json`` beside the outputs, ``run.lock.json`` in a training run folder)
records the graph (file sha256, the spec after overrides and its sha256), every node's resolved
params, each weights reference with its file and sha256, each input file with its sha256, seeds,
package versions, the device and its numerics flags, and the outputs (files with sha256, Scalar
values). ``nodegraph replay`` (``nodegraph.replay``) re-runs it and compares.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from . import weights as weights_mod
from .cache import canonical
from .fsutil import publish
from .graph import Graph
from .node import file_digest, path_kind

LOCK_VERSION = 1
_PACKAGES = ("torch", "numpy", "pillow", "safetensors", "pydantic", "networkx", "scipy", "nodegraph")


def spec_sha256(g: Graph) -> str:
    return hashlib.sha256(canonical(g.spec.model_dump(mode="json")).encode()).hexdigest()


def graph_facts(g: Graph) -> dict[str, Any]:
    return {"path": str(g.path.resolve()) if g.path else None,
            "file_sha256": file_digest(g.path) if g.path and g.path.is_file() else None,
            "spec_sha256": spec_sha256(g), "spec": g.spec.model_dump(mode="json"),
            "base_dir": str(g.base_dir), "out_dir": str(g.out_dir) if g.out_dir else None}


def node_facts(g: Graph, nodes: list[str]) -> dict[str, Any]:
    """Resolved params, weights (ref, file, sha256), input files (sha256) and seeds of ``nodes``."""
    params, weights, inputs, seeds = {}, {}, {}, {}
    for nid in nodes:
        p = g.params_for(nid)
        params[nid] = {"type": g.spec.nodes[nid].type, **p.model_dump(mode="json")}
        for name, info in type(p).model_fields.items():
            val, kind = getattr(p, name), path_kind(info)
            if "seed" in name and isinstance(val, int):
                seeds[f"{nid}.{name}"] = val
            if not val or not isinstance(val, str):
                continue
            if kind == "weights":
                try:
                    path = weights_mod.resolve(val, g.base_dir)
                    weights[f"{nid}.{name}"] = {"ref": val, "path": str(path), "sha256": file_digest(path)}
                except weights_mod.WeightsError:
                    weights[f"{nid}.{name}"] = {"ref": val, "path": None, "sha256": None}
            elif kind == "input" and os.path.isfile(val):
                inputs[f"{nid}.{name}"] = {"path": val, "sha256": file_digest(val)}
    return {"params": params, "weights": weights, "inputs": inputs, "seeds": seeds}


def versions(types: list[str] | None = None) -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    from . import registry

    for t in types or []:  # plugin families: the distribution named like the top-level module
        try:
            top = registry.get(t).__module__.split(".")[0]
            if top not in ("nodes", "nodegraph"):
                out.setdefault(top, metadata.version(top))
        except (KeyError, metadata.PackageNotFoundError):
            continue
    return out


def device_facts(device: torch.device | str) -> dict[str, Any]:
    dev = torch.device(device)
    facts: dict[str, Any] = {
        "device": str(dev), "machine": platform.machine(), "system": platform.system(),
        "cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
    }
    if dev.type == "cuda" and torch.cuda.is_available():
        facts.update(name=torch.cuda.get_device_name(dev), cuda=torch.version.cuda,
                     cudnn=torch.backends.cudnn.version(), cudnn_deterministic=torch.backends.cudnn.deterministic,
                     cudnn_benchmark=torch.backends.cudnn.benchmark,
                     tf32_matmul=torch.backends.cuda.matmul.allow_tf32, tf32_cudnn=torch.backends.cudnn.allow_tf32)
    return facts


def build_lock(kind: str, g: Graph, nodes: list[str], device: torch.device | str, **extra: Any) -> dict[str, Any]:
    """The lock of a run of ``nodes`` of ``g`` (``extra``: command, outputs, items, ...)."""
    return {"nodegraph_lock": LOCK_VERSION, "kind": kind,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "argv": list(sys.argv), "graph": graph_facts(g), **node_facts(g, nodes),
            "versions": versions(sorted({g.spec.nodes[n].type for n in nodes})),
            "device": device_facts(device), **extra}


def write_lock(lock: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(lock, f, indent=1, default=str)
        f.write("\n")
    publish(tmp, path)
    return path


def read_lock(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"lock file not found: {path}")
    try:
        lock = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not a lock file (malformed JSON: {e.msg})") from None
    if not isinstance(lock, dict) or lock.get("nodegraph_lock") != LOCK_VERSION:
        raise ValueError(f"{path}: not a nodegraph lock file (version {LOCK_VERSION})")
    return lock


def default_lock_path(g: Graph, first_output: str | None) -> Path:
    """``<folder of the first output>/<graph>.lock.json`` (else beside the graph's outputs)."""
    folder = Path(first_output).parent if first_output else Path(g.resolve_path(".", "output"))
    return folder / f"{g.name}.lock.json"


def outputs_of_run(g: Graph, history: list[dict[str, Any]], results: dict[str, dict[str, Any]],
                   ports: dict[str, Any]) -> dict[str, Any]:
    """Files a run wrote (node, order, path, sha256: its ``saved`` events, else the existing files
    its planned nodes' output params name, e.g. a saver served from the cache) and its Scalar outputs."""
    from .types import Scalar

    saved = [(e["node"], str(e["path"])) for e in history if e.get("event") == "saved" and e.get("path")]
    for nid in results:
        p = g.params_for(nid)
        for name, info in type(p).model_fields.items():
            val = getattr(p, name)
            if path_kind(info) == "output" and val and all(n != nid for n, _ in saved):
                saved.append((nid, str(val)))
    files, order = [], {}
    for nid, path in dict.fromkeys(saved):
        if os.path.isfile(path):
            k = order[nid] = order.get(nid, -1) + 1
            files.append({"node": nid, "n": k, "path": path, "sha256": file_digest(path)})
    values = {f"{nid}.{p}": float(v) for nid, outs in results.items() for p, v in outs.items()
              if isinstance(ports.get(nid, ({}, {}))[1].get(p), Scalar) and isinstance(v, torch.Tensor)}
    return {"files": files, "values": values}


def map_lock(job: Any, records: list[dict[str, Any]], kind: str = "map") -> dict[str, Any]:
    """The lock of a finished mapped job (``nodegraph.mapper.MapJob``) from its final index."""
    from .replay import map_files

    g = job.graph
    items = []
    for i, item in enumerate(job.items):
        inputs = {}
        for k, v in item.items():
            nid, param = k.split(".", 1)
            info = g.node_class(nid).Params.model_fields.get(param)
            if info is not None and path_kind(info) == "input" and isinstance(v, str):
                path = g.resolve_path(v, "input")
                if os.path.isfile(path):
                    inputs[k] = {"path": path, "sha256": file_digest(path)}
        items.append({"index": i, "item": item, "inputs": inputs})
    files = [f for r in records if r.get("status") == "ok" for f in map_files(r["index"], r.get("outputs", []))]
    values = {f"item {r['index']} {k}": v for r in records for k, v in (r.get("values") or {}).items()}
    command = {"outputs": job.outputs, "pattern": job.pattern, "batch": job.batch,
               "memo_bytes": job.memo.ram_bytes if job.memo.enabled else 0, "index": str(job.index_path)}
    return build_lock(kind, g, job.prefix + job.part, job.ex.device, command=command, items=items,
                      outputs={"files": files, "values": values})


def train_lock(trainer: Any, start: int) -> dict[str, Any]:
    """The lock of a training (``nodegraph.train.loop.Trainer``) as it starts at step ``start``."""
    g, spec = trainer.graph, trainer.spec
    lock = build_lock("train", g, list(g.spec.nodes), trainer.device,
                      command={"command": trainer.command, "steps": spec.steps, "start_step": start,
                               "world": trainer.dist.world}, outputs={"files": [], "values": {}})
    if getattr(spec, "seed", None) is not None:
        lock["seeds"]["train.seed"] = spec.seed
    return lock
