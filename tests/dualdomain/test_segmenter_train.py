"""graphs/dds_segmenter_train.json (the one-shot segmenters, labels from our face parser) trains
3 steps, exports both part networks outside weights/, and the exports load into
dualdomain.PartSegmenter; dualdomain.Codes / PartLabel, the graph's two helpers, on their own."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import nodegraph
from nodegraph.graph import load_graph
from nodegraph.node import file_digest
from nodegraph.train import Trainer
from nodegraph.weights import PROJECT_ROOT

GRAPH = PROJECT_ROOT / "graphs" / "dds_segmenter_train.json"


pytestmark = pytest.mark.usefixtures("one_thread")


def test_codes_are_sample_z_codes_and_part_label_joins_classes():
    ds = nodegraph.create("dualdomain.Codes", count=3, seed=5, dim=8).dataset()
    for i in range(3):
        z = nodegraph.create("stylegan.SampleZ", batch=1, seed=5 + i, dim=8)()["z"]
        assert torch.equal(ds[i]["z"], z[0])
    assert len(ds) == 3
    labels = torch.arange(11).view(1, 1, 11)  # every celebamask11 class once
    enm = nodegraph.create("dualdomain.PartLabel", part="eyes_nose_mouth")(labels=labels)
    hair = nodegraph.create("dualdomain.PartLabel", part="hair")(labels=labels)
    assert enm["labels"][0, 0].tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 0]  # eyes, nose, lips, mouth
    assert hair["mask"][0, 0, 0].tolist() == [0.0] * 10 + [1.0]


def test_three_steps_train_and_export_both_parts(tmp_path: Path) -> None:
    weights_before = {p.name: file_digest(p) for p in (PROJECT_ROOT / "weights").iterdir()}
    g = load_graph(GRAPH).with_overrides({"train.steps": 3, "train.sample_every": None, "train.samples": [],
                                          "train.log_every": 1})
    t = Trainer(g, run_dir=tmp_path / "run", progress=False)
    result = t.run()
    t.close()
    assert all(torch.isfinite(torch.tensor(v)) for v in result.losses.values())
    assert set(result.exported) == {"dds_segmenter_faces64_enm", "dds_segmenter_faces64_hair"}
    feats = nodegraph.create("stylegan.Generator", weights="stylegan2_faces64")(z=torch.randn(2, 512))["features"]
    for path in result.exported.values():
        assert Path(path).parent == tmp_path / "run" / "export"
        seg = nodegraph.create("dualdomain.PartSegmenter", in_channels=288, weights=str(path))
        out = seg(features=feats)
        assert out["mask"].shape == (2, 1, 64, 64) and set(out["mask"].unique().tolist()) <= {0.0, 1.0}
    assert {n: file_digest(PROJECT_ROOT / "weights" / n) for n in weights_before} == weights_before
