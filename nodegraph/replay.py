"""``nodegraph replay LOCK``: re-run what a lock recorded and say, per output, whether the result
is bit-identical, and if not the largest difference and which recorded fact differs now
(graph file, weights, input files, package versions, device).

The replay runs the *recorded* graph spec (overrides applied) into a fresh folder, never over the
original outputs, with the cache off.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import weights as weights_mod
from .cache import Cache
from .events import EventBus
from .executor import pick_device
from .graph import graph_from_dict
from .lock import device_facts, read_lock, versions
from .node import NodeError, file_digest


@dataclass
class Report:
    rows: list[dict[str, Any]] = field(default_factory=list)
    """Per output: ``name``, ``status`` (identical / pixel-identical / differs / missing), ``max_diff``."""
    facts: list[str] = field(default_factory=list)
    """Recorded facts that differ now."""
    out_dir: Path | None = None
    kind: str = "run"

    @property
    def identical(self) -> bool:
        if self.kind == "train":
            return not self.facts
        return all(r["status"] in ("identical", "pixel-identical") for r in self.rows)


def compare_facts(lock: dict[str, Any], device: str) -> list[str]:
    out = []
    gf = lock["graph"]
    if gf.get("path") and Path(gf["path"]).is_file() and gf.get("file_sha256") \
            and file_digest(gf["path"]) != gf["file_sha256"]:
        out.append(f"graph file {gf['path']} changed since the lock (the recorded spec was replayed)")
    for k, w in lock.get("weights", {}).items():
        try:
            now = file_digest(weights_mod.resolve(w["ref"], Path(gf["base_dir"])))
        except weights_mod.WeightsError:
            now = None
        if now != w.get("sha256"):
            out.append(f"weights {k} ({w['ref']}): sha256 {str(w.get('sha256'))[:12]} -> {str(now)[:12]}")
    files = dict(lock.get("inputs", {}))
    for it in lock.get("items", []):
        files.update({f"item {it['index']} {k}": v for k, v in it.get("inputs", {}).items()})
    for k, f in files.items():
        now = file_digest(f["path"]) if Path(f["path"]).is_file() else None
        if now != f["sha256"]:
            out.append(f"input {k} ({f['path']}): " + ("missing now" if now is None else "contents changed"))
    types = sorted({p["type"] for p in lock.get("params", {}).values()})
    cur = versions(types)
    for k, v in lock.get("versions", {}).items():
        if cur.get(k) != v:
            out.append(f"version of {k}: {v} -> {cur.get(k)}")
    dev = device_facts(device)
    for k, v in lock.get("device", {}).items():
        if dev.get(k) != v:
            out.append(f"device {k}: {v} -> {dev.get(k)}")
    return out


def _key(f: dict[str, Any]) -> tuple[Any, ...]:
    return (f.get("item"), f["node"], f.get("n", 0))


def compare_file(old: dict[str, Any], new: dict[str, Any] | None) -> dict[str, Any]:
    name = f"{'item ' + str(old['item']) + ' ' if old.get('item') is not None else ''}{old['node']}: " \
           f"{Path(old['path']).name}"
    if new is None:
        return {"name": name, "status": "missing", "max_diff": None}
    if new["sha256"] == old["sha256"]:
        return {"name": name, "status": "identical", "max_diff": 0.0}
    diff = _image_diff(old["path"], new["path"])
    status = "pixel-identical" if diff == 0 else "differs"
    return {"name": name, "status": status, "max_diff": diff, "new": new["path"]}


def _image_diff(a: str, b: str) -> float | None:
    """Largest per-channel difference of two pictures in [0, 1] (None: not comparable)."""
    from PIL import Image as PILImage

    try:
        with PILImage.open(a) as ia, PILImage.open(b) as ib:
            x = np.asarray(ia.convert("RGB"), dtype=np.float64)
            y = np.asarray(ib.convert("RGB"), dtype=np.float64)
    except (OSError, ValueError):
        return None
    if x.shape != y.shape:
        return None
    return float(np.abs(x - y).max() / 255.0)


def replay(lock_path: str | Path, out_dir: str | Path | None = None, device: str | None = None) -> Report:
    """Re-run the lock at ``lock_path`` into ``out_dir`` (default: a new temp folder) and compare."""
    lock = read_lock(lock_path)
    device = device or lock.get("device", {}).get("device", "auto")
    try:
        device = str(pick_device(device))
    except NodeError:  # the recorded device is absent here: run on what there is (reported as a fact)
        device = str(pick_device("auto"))
    gf = lock["graph"]
    g = graph_from_dict(gf["spec"], base_dir=Path(gf["base_dir"]), path=Path(gf["path"]) if gf.get("path") else None)
    out = Path(out_dir or tempfile.mkdtemp(prefix="nodegraph-replay-")).resolve()
    g.out_dir = out
    report = Report(facts=compare_facts(lock, device), out_dir=out)
    if lock["kind"] == "train":  # a training is not re-run: its lock is compared fact by fact
        report.kind = "train"
        return report
    new_files, new_values = _rerun(lock, g, device, out)
    by_key = {_key(f): f for f in new_files}
    for f in lock["outputs"]["files"]:
        report.rows.append(compare_file(f, by_key.get(_key(f))))
    for k, v in lock["outputs"].get("values", {}).items():
        nv = new_values.get(k)
        d = None if nv is None else abs(nv - v)
        status = "missing" if nv is None else "identical" if nv == v else "differs"
        report.rows.append({"name": k, "status": status, "max_diff": d})
    return report


def _rerun(lock: dict[str, Any], g: Any, device: str, out: Path) -> tuple[list[dict], dict[str, float]]:
    cmd = lock.get("command", {})
    if lock["kind"] == "run":
        from .executor import Executor
        from .lock import outputs_of_run

        bus = EventBus()
        ex = Executor(g, device=device, cache=Cache(enabled=False), events=bus)
        results = ex.run(cmd.get("outputs") or None)
        got = outputs_of_run(g, bus.history, results, ex.ports)
        return got["files"], got["values"]
    from .mapper import MapJob

    items = [it["item"] for it in lock["items"]]
    job = MapJob(g, items, outputs=cmd.get("outputs") or None, pattern=cmd["pattern"], batch=cmd.get("batch", 1),
                 keep_going=True, index=out / "replay.index.jsonl", resume=False, device=device,
                 cache=Cache(enabled=False), memo_bytes=cmd.get("memo_bytes", 0))
    files, values = [], {}
    for r in job.run():
        files += map_files(r.index, r.outputs)
        values.update({f"item {r.index} {k}": v for k, v in r.values.items()})
    return files, values


def map_files(index: int, outputs: list[dict[str, str]]) -> list[dict[str, Any]]:
    order: dict[str, int] = {}
    out = []
    for o in outputs:
        n = order[o["node"]] = order.get(o["node"], -1) + 1
        out.append({"item": index, "node": o["node"], "n": n, "path": o["path"], "sha256": o["sha256"]})
    return out
