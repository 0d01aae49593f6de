"""Every shipped graph validates, and every weights name it uses is in the manifest with its
sha256 and provenance."""

from __future__ import annotations

from pathlib import Path

import pytest

from nodegraph.graph import load_graph
from nodegraph.node import file_digest, path_kind
from nodegraph.weights import PROJECT_ROOT, read_manifest

GRAPHS = sorted((PROJECT_ROOT / "graphs").glob("*.json"))


@pytest.mark.parametrize("path", GRAPHS, ids=[p.stem for p in GRAPHS])
def test_graph_validates(path: Path) -> None:
    g = load_graph(path)
    problems = g.validate()
    assert problems == [], "\n".join(map(str, problems))


@pytest.mark.parametrize("path", GRAPHS, ids=[p.stem for p in GRAPHS])
def test_graph_weights_are_in_manifest(path: Path) -> None:
    g = load_graph(path)
    manifest = read_manifest()
    for nid in g.spec.nodes:
        params = g.params_for(nid)
        for name, info in type(params).model_fields.items():
            ref = getattr(params, name)
            if path_kind(info) != "weights" or not ref or ref.endswith(".safetensors"):
                continue
            assert ref in manifest, f"{path.name}: {nid}.params.{name} names {ref!r}, not in weights/manifest.json"
            entry = manifest[ref]
            f = PROJECT_ROOT / "weights" / entry["file"]
            assert entry["sha256"] == file_digest(f), f"{ref}: sha256 in the manifest does not match the file"
            assert entry.get("provenance"), f"{ref}: no provenance recorded"


def test_manifest_entries_match_files() -> None:
    manifest = read_manifest()
    for name, entry in manifest.items():
        f = PROJECT_ROOT / "weights" / entry["file"]
        assert f.is_file(), f"{name}: {f} missing"
        assert entry["sha256"] == file_digest(f), f"{name}: sha256 mismatch"
        prov = entry.get("provenance") or {}
        # Mutant: an entry without provenance or quality (the old check, json.dumps(...), was always truthy)
        assert isinstance(prov.get("command"), str) and prov["command"].strip(), f"{name}: provenance.command"
        assert prov.get("data") and prov.get("steps"), f"{name}: provenance.data / steps"
        assert entry.get("quality"), f"{name}: no measured quality"
