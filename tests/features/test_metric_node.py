"""metric.FrechetDistance as a node: images or statistics files on either side, KID when both
sides have features, errors naming the port or param."""

from __future__ import annotations

import math

import pytest
import torch

from nodegraph.node import NodeError
from nodes.features.frechet import FeatureStats, extractor
from nodes.features.metrics import FrechetDistance

from .photos import batch


def test_images_and_stats_file_give_the_same_value(tmp_path):
    x = batch(224)
    a, b = x, torch.cat([x[2:], x[:2].flip(-1)])
    node = FrechetDistance({"kid_subsets": 5})
    out = node(a=a, b=b)
    assert out["value"] > 0 and not math.isnan(float(out["kid"]))
    ext = extractor("effnet_lite0")
    FeatureStats("effnet_lite0", keep=4).update(ext(b)).save(tmp_path / "b.safetensors")
    out2 = FrechetDistance({"b_stats": str(tmp_path / "b.safetensors"), "kid_subsets": 5})(a=a)
    assert float(out2["value"]) == pytest.approx(float(out["value"]), rel=1e-6)
    assert float(out2["kid"]) == pytest.approx(float(out["kid"]), rel=1e-6)  # features kept in the file


def test_bad_sides_are_named(tmp_path):
    node = FrechetDistance()
    with pytest.raises(NodeError, match="side b: give either") as e:
        node(a=torch.rand(2, 3, 32, 32))
    assert e.value.where == "b"
    FeatureStats("inception").update(torch.randn(3, 4)).save(tmp_path / "inc.safetensors")
    with pytest.raises(NodeError, match="'inception' statistics") as e:
        FrechetDistance({"b_stats": str(tmp_path / "inc.safetensors")})(a=torch.rand(2, 3, 32, 32))
    assert e.value.where == "params.b_stats"
    with pytest.raises(NodeError, match="at least 2"):
        FrechetDistance()(a=torch.rand(1, 3, 32, 32), b=torch.rand(2, 3, 32, 32))


def test_inception_without_weights_says_how_to_convert(tmp_path):
    node = FrechetDistance({"features": "inception", "weights": str(tmp_path / "none.safetensors")})
    with pytest.raises(NodeError, match="nodegraph convert inception"):
        node(a=torch.rand(2, 3, 32, 32), b=torch.rand(2, 3, 32, 32))


def test_registered_in_the_metric_family_and_converter_listed():
    from nodegraph import registry

    registry.load_family("metric")
    assert registry.get("metric.FrechetDistance") is FrechetDistance
    assert registry.load_converter("inception").__name__ == "convert_inception"


def test_graph_with_default_perceptual_and_fd_validates_and_runs(tmp_path):
    from nodegraph.cache import Cache
    from nodegraph.events import EventBus
    from nodegraph.executor import Executor
    from nodegraph.graph import graph_from_dict

    raw = {"nodegraph": 1, "nodes": {
        "ra": {"type": "data.Landscapes", "params": {"seed": 0, "size": 64, "length": 2, "batch_size": 2}},
        "rb": {"type": "data.Landscapes", "params": {"seed": 1, "size": 64, "length": 2, "batch_size": 2}},
        "perc": {"type": "loss.Perceptual", "inputs": {"a": "ra.image", "b": "rb.image"}},
        "fd": {"type": "metric.FrechetDistance", "params": {"kid_subsets": 2},
               "inputs": {"a": "ra.image", "b": "rb.image"}},
    }}
    g = graph_from_dict(raw, base_dir=tmp_path)
    assert g.validate() == []
    res = Executor(g, device="cpu", cache=Cache(enabled=False), events=EventBus()).run(["perc", "fd"])
    assert float(res["perc"]["loss"]) > 0 and float(res["fd"]["value"]) > 0
