"""dualdomain.PartSegmenter against the independent official-layout reference (reference.py):
an official-layout state dict with seeded random weights, written to .safetensors and loaded by
the node, gives the reference's logits on a tiny generator's features. Mutants seen to fail here:
dilations 1, 1, 1, 1, 1 (logits differ); bilinear instead of nearest feature upsampling (differ);
mask argmax == 0 (mask test); a LeakyReLU after the last conv (negative logits vanish)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

import nodegraph
from nodegraph.node import Context, NodeError
from nodes.stylegan.net import Generator, StyleGANConfig

from .reference import fewshot_state, ref_segment


def _node(**params):
    node = nodegraph.create("dualdomain.PartSegmenter", **params)
    node.ctx = Context(emit=lambda ev, **kw: None, node_id="seg")
    node.setup()
    return node


@pytest.fixture(scope="module")
def feats():
    torch.manual_seed(0)
    G = Generator(StyleGANConfig(16, style_dim=32, n_mlp=2, channel_multiplier=1, channel_max=16)).eval()
    with torch.no_grad():
        _, f = G.synthesis(torch.randn(2, G.n_latent, 32))
    return f


def test_segmenter_matches_official_layout_reference(feats, tmp_path):
    c = sum(f.shape[1] for f in feats)
    sd = fewshot_state(c, 1)
    save_file(sd, str(tmp_path / "seg.safetensors"))
    out = _node(in_channels=c, weights=str(tmp_path / "seg.safetensors")).forward(feats)
    ref = ref_segment(sd, feats)
    torch.testing.assert_close(out["logits"], ref, rtol=1e-4, atol=1e-5)
    assert out["logits"].shape == (2, 2, 16, 16) and out["mask"].shape == (2, 1, 16, 16)
    torch.testing.assert_close(out["mask"], (ref[:, 1:] > ref[:, :1]).float())
    assert (out["logits"] < 0).any()  # no activation after the last conv


def test_channel_mismatch_and_bad_weights_name_ports(feats, tmp_path):
    with pytest.raises(NodeError, match="in_channels = 5376") as e:
        _node().forward(feats)
    assert "inputs.features" in str(e.value) or "features" in str(e.value)
    save_file(fewshot_state(7), str(tmp_path / "bad.safetensors"))
    with pytest.raises(NodeError, match="do not fit"):
        _node(in_channels=sum(f.shape[1] for f in feats), weights=str(tmp_path / "bad.safetensors"))
