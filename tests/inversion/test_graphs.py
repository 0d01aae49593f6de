"""The IDInvert graphs (graphs/idinvert*.json) validate, and run end to end, against a stand-in
weights folder with small random networks of the shipped names (NODEGRAPH_WEIGHTS), so they are
checked without the 91 MB encoder; tests/test_graphs.py checks them against the shipped manifest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import nodegraph
from nodegraph.graph import load_graph
from nodegraph.weights import PROJECT_ROOT, read_manifest, save_atomic
from nodes.inversion.net import Encoder, EncoderConfig
from nodes.stylegan.discriminator import Discriminator
from nodes.stylegan.net import Generator, StyleGANConfig

GRAPHS = sorted((PROJECT_ROOT / "graphs").glob("idinvert*.json"))


@pytest.fixture(scope="module")
def standin(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("standin_weights")
    torch.manual_seed(0)
    gcfg = StyleGANConfig(64, n_mlp=2, channel_multiplier=1, channel_max=8)
    save_atomic(Generator(gcfg).state_dict(), d / "g.safetensors", metadata={"config": gcfg.to_json()})
    ecfg = EncoderConfig(64, 512, 4, 8)
    save_atomic(Encoder(ecfg).state_dict(), d / "e.safetensors", metadata={"config": ecfg.to_json()})
    dcfg = StyleGANConfig(64, channel_multiplier=1, channel_max=32)
    save_atomic(Discriminator(dcfg).state_dict(), d / "d.safetensors", metadata={"config": dcfg.to_json()})
    shipped = read_manifest()["face_parser_default"]
    (d / "p.safetensors").symlink_to(PROJECT_ROOT / "weights" / shipped["file"])
    json.dump({"weights": {"stylegan2_faces64": {"file": "g.safetensors", "node_type": "stylegan.Generator"},
                           "stylegan2_faces64_d": {"file": "d.safetensors", "node_type": "stylegan.Discriminator"},
                           "face_parser_default": {**shipped, "file": "p.safetensors"},
                           "idinvert_encoder_faces64": {"file": "e.safetensors", "node_type": "inversion.Encoder"}}},
              open(d / "manifest.json", "w"))
    return d


@pytest.mark.parametrize("path", GRAPHS, ids=[p.stem for p in GRAPHS])
def test_graph_validates(path: Path, standin: Path, monkeypatch) -> None:
    monkeypatch.setenv("NODEGRAPH_WEIGHTS", str(standin))
    problems = load_graph(path).validate()
    assert problems == [], "\n".join(map(str, problems))


def test_diffusion_graph_runs(standin: Path, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("NODEGRAPH_WEIGHTS", str(standin))
    g = load_graph(PROJECT_ROOT / "graphs" / "idinvert_diffuse.json")
    out = nodegraph.run(g, ["diffuse.steps=2", f"save.path={tmp_path / 'd.png'}"])
    assert out["diffuse"]["image"].shape == (3, 3, 64, 64)
    assert out["diffuse"]["loss"].shape == (2,)
    assert (tmp_path / "d.png").is_file()
