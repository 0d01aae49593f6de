"""Exporting trained nodes: ``NAME.safetensors`` + a manifest entry saying how they were made.

Where: by default into the run directory (``RUN/export/NAME.safetensors`` and
``RUN/export/manifest.json``, a manifest fragment -- ``NODEGRAPH_WEIGHTS=RUN/export`` makes
its names resolvable), so a short trial run can never touch the shipped defaults. A weights
folder (the project's ``weights/`` to ship) is written only when the user names it
(``--weights-dir``); replacing one of its existing entries needs ``--replace``, and then the
previous file is kept, renamed ``NAME.prev-<time>.safetensors`` and listed in the manifest
as ``NAME@prev-<time>`` (the new entry names it under ``previous``).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from ..node import Node, NodeError, file_digest
from ..weights import PROJECT_ROOT, read_manifest, same_weights, write_json_atomic
from ..weights import export as export_weights


class ExportError(NodeError):
    """The export would replace existing weights without ``--replace``."""


def export_dir(run_dir: Path, weights_dir: str | Path | None, spec_dir: str | None) -> Path:
    """The folder exports go to: the user's ``--weights-dir``, else the graph's
    ``train.export_dir``, else ``RUN/export``."""
    if weights_dir:
        return Path(weights_dir)
    if spec_dir:
        return Path(spec_dir)
    return Path(run_dir) / "export"


def check_replace(directory: Path, names: list[str], replace: bool, run_dir: Path) -> None:
    """Refuse, before any training, to replace entries of a weights folder without ``replace``.

    The run's own ``export`` folder is exempt: re-exporting a run (``--resume``) rewrites its
    own output. Raises ExportError naming each entry and what to do.
    """
    if replace or _inside(directory, Path(run_dir)):
        return
    taken = [n for n in names if n in read_manifest(directory) or (directory / f"{n}.safetensors").exists()]
    if taken:
        raise ExportError(
            f"export: {directory} already holds {', '.join(repr(n) for n in taken)}; this run would "
            f"replace {'it' if len(taken) == 1 else 'them'}. Pass --replace to do so (the previous files "
            "are kept, renamed NAME.prev-<time>.safetensors and listed in the manifest), name another "
            "folder with --weights-dir, or leave --weights-dir out to export into the run directory.")


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def keep_previous(directory: Path, name: str) -> str | None:
    """Rename ``directory/NAME.safetensors`` to ``NAME.prev-<time>.safetensors`` and list it in the
    manifest as ``NAME@prev-<time>`` (its old entry, with the new file name); returns that
    name, or None when there was no file to keep."""
    manifest = directory / "manifest.json"
    data = json.loads(manifest.read_text()) if manifest.is_file() else {}
    entries = data.setdefault("weights", {})
    old = entries.get(name)
    path = directory / (old.get("file", f"{name}.safetensors") if old else f"{name}.safetensors")
    if not path.is_file():
        return None
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    prev_name, prev_file = f"{name}@prev-{stamp}", f"{name}.prev-{stamp}.safetensors"
    os.replace(path, directory / prev_file)
    entry = dict(old or {"note": "file without a manifest entry"})
    entry.update(file=prev_file, replaced=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    entries[prev_name] = entry
    entries.pop(name, None)  # the new entry must not inherit the old quality figures
    write_json_atomic(data, manifest)
    return prev_name


def export_trained(nodes: dict[str, Node], export: dict[str, str], *, directory: Path, replace: bool = False,
                   provenance: dict[str, Any], objectives: dict[str, list[str]],
                   losses: dict[str, float], metrics: dict[str, float]) -> dict[str, Path]:
    """Write each ``node id -> name`` of ``export`` into ``directory``; returns name -> file.

    ``provenance`` (command, graph, data, steps, ...) is recorded for every file, with the node id
    and the objectives that trained it; quality holds the final losses and metrics. With
    ``replace`` an existing entry is kept as ``NAME@prev-<time>`` (see :func:`keep_previous`).
    """
    out = {}
    quality: dict[str, Any] = {"final_losses": {k: round(v, 6) for k, v in losses.items()}}
    if metrics:
        quality["metrics"] = {k: round(v, 6) for k, v in metrics.items()}
    for nid, name in export.items():
        node = nodes[nid]
        mod = node.module()
        assert mod is not None
        tensors = dict(mod.state_dict())
        prov = dict(provenance, node=nid, objectives=[n for n, ups in objectives.items() if nid in ups])
        previous = keep_previous(directory, name) if replace else None
        path = export_weights(name, tensors, node.type_name, prov, quality=quality, directory=directory,
                              config={"node_type": node.type_name, "params": node.export_config()})
        if previous:
            _note_previous(directory, name, previous, path)
        out[name] = path
    return out


def _note_previous(directory: Path, name: str, previous: str, path: Path) -> None:
    """Link the new entry to the kept one; a kept file with the same weights is dropped again."""
    manifest = directory / "manifest.json"
    data = json.loads(manifest.read_text())
    prev = data["weights"][previous]
    kept = directory / prev["file"]
    if prev.get("sha256") == file_digest(path) or same_weights(kept, path):
        (directory / prev["file"]).unlink(missing_ok=True)
        del data["weights"][previous]
    else:
        data["weights"][name]["previous"] = previous
    write_json_atomic(data, manifest)


def usage_lines(exported: dict[str, Path], export: dict[str, str], cwd: Path | None = None) -> list[str]:
    """The lines ``nodegraph train`` ends with: where each file went and a command that uses it
    (a shipped graph whose node names the same weights, else ``--set NODE.weights=...``)."""
    cwd = cwd or Path.cwd()
    node_of = {name: nid for nid, name in export.items()}
    lines = []
    for name, path in exported.items():
        shown = _shown(path, cwd)
        lines.append(f"exported {name} -> {shown} (manifest: {_shown(path.parent / 'manifest.json', cwd)})")
        users = graphs_using(name)
        if users:
            g, nid = users[0]
            lines.append(f"  use it:  nodegraph run {_shown(g, cwd)} --set {nid}.weights={shown}")
        else:
            lines.append(f"  use it:  --set {node_of.get(name, 'NODE')}.weights={shown} on the node that loads it")
    if exported:
        folder = {p.parent for p in exported.values()}
        if len(folder) == 1:
            lines.append(f"  or by name: NODEGRAPH_WEIGHTS={_shown(next(iter(folder)), cwd)} nodegraph run ...")
    return lines


def _shown(path: Path, cwd: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(cwd.resolve()))
    except ValueError:
        return str(Path(path).resolve())


def graphs_using(name: str) -> list[tuple[Path, str]]:
    """(graph file, node id) of the project's graphs (not the training ones) whose node has a
    ``weights`` param equal to ``name``."""
    found = []
    for g in sorted((PROJECT_ROOT / "graphs").glob("*.json")):
        try:
            raw = json.loads(g.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if not isinstance(raw, dict) or "train" in raw:
            continue
        for nid, spec in (raw.get("nodes") or {}).items():
            if isinstance(spec, dict) and (spec.get("params") or {}).get("weights") == name:
                found.append((g, nid))
    return found


def graph_label(path: Path | None, name: str) -> str:
    """The graph file as the manifest should name it (relative to the project when inside it)."""
    if path is None:
        return name
    try:
        return str(path.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)
