"""The stacked graphs and the bad inputs the issue names: an attribute name outside the schema
(the error lists near matches), a mask of the wrong size, a shape vector on the non-shape port;
and end-to-end training reaches Stage-I through the soft mask."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from nodegraph.executor import Executor
from nodegraph.graph import graph_from_dict
from nodegraph.node import NodeError
from nodegraph.weights import PROJECT_ROOT
from nodes.common.io import LoadAttributes

GRAPHS = PROJECT_ROOT / "graphs"


def test_load_attributes_names_groups_and_certainty(tmp_path: Path) -> None:
    f = tmp_path / "b.json"
    f.write_text(json.dumps([{"has_bill_shape::cone": 1, "has_wing_color": ["black", "white"]},
                             {"has_size::small_(5_-_9_in)": 0.75}]))
    a = LoadAttributes({"path": str(f)})()["attributes"]
    assert a.shape == (2, 312)
    assert a[0, 7] == 1 and a[0, 9 + 11] == 1 and a[0, 9 + 12] == 1 and float(a[0].sum()) == 3
    assert float(a[1, 218]) == 0.75


def test_unknown_attribute_lists_near_matches(tmp_path: Path) -> None:
    f = tmp_path / "b.json"
    f.write_text(json.dumps({"has_bill_shape::conical": 1}))
    with pytest.raises(NodeError, match="near matches: has_bill_shape::cone"):
        LoadAttributes({"path": str(f)})()
    f.write_text(json.dumps({"has_wing_colour": "red"}))
    with pytest.raises(NodeError, match="has_wing_color"):
        LoadAttributes({"path": str(f)})()
    f.write_text(json.dumps({"has_bill_shape::cone": 2}))
    with pytest.raises(NodeError, match=r"certainty in \[0, 1\]"):
        LoadAttributes({"path": str(f)})()


def _graph(nodes: dict) -> object:
    return graph_from_dict({"nodegraph": 1, "name": "t", "nodes": nodes}, base_dir=PROJECT_ROOT / "graphs")


def test_shape_vector_on_the_non_shape_port_fails_validation() -> None:
    g = _graph({
        "a": {"type": "io.LoadAttributes", "params": {"path": "../examples/bird_red.json"}},
        "sel": {"type": "stacked.SelectAttributes", "params": {"subset": "shape"},
                "inputs": {"attributes": "a.attributes"}},
        "s1": {"type": "stacked.Attr2Shape", "params": {"weights": ""}, "inputs": {"attributes": "sel.attributes"}},
        "s2": {"type": "stacked.Shape2Image", "params": {"weights": ""},
               "inputs": {"shape": "s1.shape", "attributes": "sel.attributes"}},
    })
    problems = [str(p) for p in g.validate()]
    assert len(problems) == 1 and "s2" in problems[0] and "subset mismatch" in problems[0], problems


def test_wrong_mask_size_is_named(tmp_path: Path) -> None:
    g = _graph({
        "a": {"type": "io.LoadAttributes", "params": {"path": "../examples/bird_red.json"}},
        "s1": {"type": "stacked.Attr2Shape", "params": {"weights": ""}, "inputs": {"attributes": "a.attributes"}},
        "small": {"type": "image.Resize", "params": {"size": 32}, "inputs": {"mask": "s1.shape"}},
        "s2": {"type": "stacked.Shape2Image", "params": {"weights": ""},
               "inputs": {"shape": "small.mask", "attributes": "a.attributes"}},
    })
    assert g.validate() == []
    with pytest.raises(Exception, match=r"s2\.shape: the mask is 32 x 32; this Stage-II generator takes 64 x 64"):
        Executor(g, device="cpu").run(["s2"])


def test_end_to_end_training_reaches_stage_one_through_the_soft_mask(tmp_path: Path) -> None:
    """graphs/attr2img_train.json with only a Stage-II image loss, updating only Stage-I: Stage-I's
    weights move, so the gradient crossed the soft mask (mutant caught: ``shape.detach()`` in
    Shape2Image leaves them unchanged)."""
    from safetensors.torch import load_file, save_file

    from nodegraph.train.loop import train
    from nodes.stacked.nodes import Attr2Shape, Shape2Image

    refs = {}
    for nid, node in (("s1", Attr2Shape({"weights": ""})), ("s2", Shape2Image({"weights": ""}))):
        node.ensure_setup()
        refs[nid] = {k: v.clone() for k, v in node.net.state_dict().items()}
        save_file(refs[nid], str(tmp_path / f"{nid}.safetensors"))
    overrides = {"s1.weights": str(tmp_path / "s1.safetensors"), "s2.weights": str(tmp_path / "s2.safetensors"),
                 "data.length": 8, "data.batch_size": 4, "train.batch_size": 4, "train.phases": [],
                 "train.objectives.G.losses": {"g2_global.loss": 1.0}, "train.objectives.G.updates": ["s1"],
                 "train.export": {"s1": "s1_e2e"}, "train.export_dir": str(tmp_path / "export"),
                 "train.sample_every": 1000}
    r = train(GRAPHS / "attr2img_train.json", overrides, steps=1, run_dir=tmp_path / "run", progress=False)
    s1 = load_file(str(r.exported["s1_e2e"]))
    assert not torch.equal(s1["fc.0.weight"], refs["s1"]["fc.0.weight"])
