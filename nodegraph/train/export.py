"""Exporting trained nodes: ``weights/NAME.safetensors`` + a manifest entry saying how they were made."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..node import Node
from ..weights import PROJECT_ROOT
from ..weights import export as export_weights


def export_trained(nodes: dict[str, Node], export: dict[str, str], *, directory: Path | None,
                   provenance: dict[str, Any], objectives: dict[str, list[str]],
                   losses: dict[str, float], metrics: dict[str, float]) -> dict[str, Path]:
    """Write each ``node id -> name`` of ``export``; returns name -> file.

    ``provenance`` (command, graph, data, steps, ...) is recorded for every file, with the node id
    and the objectives that trained it; quality holds the final losses and metrics.
    """
    out = {}
    quality: dict[str, Any] = {"final_losses": {k: round(v, 6) for k, v in losses.items()}}
    if metrics:
        quality["metrics"] = {k: round(v, 6) for k, v in metrics.items()}
    for nid, name in export.items():
        node = nodes[nid]
        mod = node.module()
        assert mod is not None
        prov = dict(provenance, node=nid, objectives=[n for n, ups in objectives.items() if nid in ups])
        out[name] = export_weights(name, dict(mod.state_dict()), node.type_name, prov, quality=quality,
                                   directory=directory,
                                   config={"node_type": node.type_name,
                                           "params": node.params.model_dump(mode="json")})
    return out


def graph_label(path: Path | None, name: str) -> str:
    """The graph file as the manifest should name it (relative to the project when inside it)."""
    if path is None:
        return name
    try:
        return str(path.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)
