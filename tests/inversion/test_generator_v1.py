"""stylegan.GeneratorV1 as a node: converted weights load, W+ / z inputs, errors naming node.port."""

from __future__ import annotations

import pytest
import torch

import nodegraph
from nodegraph.node import NodeError
from nodes.inversion.convert import convert_generator
from tests.inversion.reference import official_generator_state, ref_synthesis


@pytest.fixture(scope="module")
def g16(tmp_path_factory):
    root = tmp_path_factory.mktemp("v1node")
    sd = official_generator_state(16, fmaps_max=8, seed=11)
    torch.save(sd, root / "g.pth")
    convert_generator(str(root / "g.pth"), str(root / "g.safetensors"))
    return sd, str(root / "g.safetensors")


def test_node_image_is_reference_in_unit_range(g16):
    sd, path = g16
    node = nodegraph.create("stylegan.GeneratorV1", weights=path)
    wp = torch.randn(2, 6, 512, generator=torch.Generator().manual_seed(0))
    out = node(wplus=wp)
    assert out["model"].n_latent == 6
    assert (out["image"] - (ref_synthesis(sd, wp) + 1) / 2).abs().max() <= 1e-4
    z = torch.randn(2, 512)
    assert node(z=z)["wplus"].shape == (2, 6, 512)


def test_wrong_layer_count_names_port(g16):
    node = nodegraph.create("stylegan.GeneratorV1", weights=g16[1])
    with pytest.raises(NodeError, match="6") as e:
        node(wplus=torch.zeros(1, 14, 512))
    assert e.value.where.endswith("inputs.wplus")


def test_size_contradicting_weights_names_param(g16):
    node = nodegraph.create("stylegan.GeneratorV1", weights=g16[1], size=256)
    with pytest.raises(NodeError) as e:
        node(wplus=torch.zeros(1, 14, 512))
    assert e.value.where.endswith("params.size")
