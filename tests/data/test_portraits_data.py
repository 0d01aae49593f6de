"""Portrait data: procedural faces and the CelebAMask-HQ reader (tiny fixture in the published layout)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nodes.data.celebamask import compose11, map19_to_11, split_ids, write_fixture
from nodes.data.portraits import CelebAMaskHQ, Portraits, ProceduralPortraits
from nodes.face.geometry import component_centres


def test_procedural_items_are_deterministic_and_typed():
    a = Portraits({"size": 64, "batch_size": 3, "seed": 5})()
    b = Portraits({"size": 64, "batch_size": 3, "seed": 5})()
    c = Portraits({"size": 64, "batch_size": 3, "seed": 6})()
    assert a["image"].shape == (3, 3, 64, 64) and a["labels"].shape == (3, 64, 64)
    assert a["labels"].dtype == torch.int64 and a["colors"].shape == (3, 4, 3)
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["labels"], b["labels"])
    assert not torch.equal(a["image"], c["image"])


def test_every_face_has_all_parts_and_canonical_centres():
    ds = ProceduralPortraits(12, size=256, seed=0)
    for i in range(12):
        lab = ds[i]["labels"]
        present = set(torch.unique(lab).tolist())
        assert {0, 1, 2, 3, 4, 5, 6, 7, 9} <= present, (i, present)
        c = component_centres(lab, clamp=False)[0]
        # l_eye image-left of r_eye, both near the official canon, mouth below
        assert c[0, 1] < 128 < c[1, 1]
        assert abs(c[0, 0] - 116) < 16 and abs(c[1, 0] - 116) < 16 and abs(c[2, 0] - 184) < 16
        # inside the official loader's asserts
        assert 16 < c[0, 0] < 240 and 24 < c[0, 1] < 232 and 40 < c[2, 0] < 216 and 72 < c[2, 1] < 184


def test_variety_and_colours_follow_the_drawing():
    ds = ProceduralPortraits(40, size=96, seed=1)
    attrs = [ds.attributes(i) for i in range(40)]
    assert len({a["hair_style"] for a in attrs}) >= 4
    assert len({a["face_shape"] for a in attrs}) >= 3
    assert any(a["bangs"] != "none" for a in attrs) and any(a["beard"] for a in attrs)
    assert any(a["glasses"] for a in attrs) and any(a["mouth_open"] for a in attrs)
    # measured hair colour tracks the drawn base colour
    errs = [np.abs(ds[i]["colors"][1].numpy() - attrs[i]["hair"]).mean() for i in range(10)
            if attrs[i]["hair_style"] != "bald"]
    assert np.median(errs) < 0.08


def test_x_centroid_assigns_left_and_right():
    m = np.zeros((8, 16), bool)
    a, b = m.copy(), m.copy()
    a[2:4, 10:14] = True  # file says "l_eye" but it is on the image right
    b[2:4, 1:4] = True
    out = compose11({"skin": np.ones_like(m), "l_eye": a, "r_eye": b}, m.shape)
    assert (out[b] == 4).all() and (out[a] == 5).all()
    lone = compose11({"skin": np.ones_like(m), "r_brow": b}, m.shape)
    assert (lone[b] == 2).all()


def test_map19_bisenet_order():
    lab = np.zeros((8, 16), np.int64)
    lab[:, :] = 1          # skin
    lab[1, 1:3] = 5        # r_eye on the image left -> 4
    lab[1, 10:12] = 4      # l_eye on the image right -> 5
    lab[5, 4:12] = 12      # u_lip -> 7
    lab[6, 4:12] = 13      # l_lip -> 9
    lab[7, :] = 14         # neck -> 0
    lab[0, :] = 17         # hair -> 10
    out = map19_to_11(lab)
    assert out[1, 1] == 4 and out[1, 10] == 5 and out[5, 5] == 7 and out[6, 5] == 9
    assert out[7, 0] == 0 and out[0, 0] == 10 and out[3, 3] == 1


def test_celebamaskhq_reader_on_fixture(tmp_path):
    root = write_fixture(tmp_path / "CelebAMask-HQ", n=6, size=64)
    assert split_ids(root, "train") == [0, 3] and split_ids(root, "val") == [1, 4]
    assert split_ids(root, "test") == [2, 5]
    out = CelebAMaskHQ({"root": str(root), "split": "all", "size": 32, "batch_size": 6})()
    assert out["image"].shape == (6, 3, 32, 32) and out["labels"].max() <= 10
    proc = ProceduralPortraits(6, size=64, seed=0)
    for i in range(6):
        lab = out["labels"][i]
        # both eye conventions in the fixture come out image-left = 4
        c = component_centres(lab, clamp=False)[0]
        assert c[0, 1] < c[1, 1], i
        if i in (1, 4):  # mouth file absent: the inner mouth became skin
            assert not (lab == 8).any() or not (proc[i]["labels"] == 8).any()
    same = Portraits({"root": str(root), "split": "train", "size": 32, "batch_size": 2})()
    assert torch.equal(same["labels"], out["labels"][[0, 3]])


def test_reader_reports_a_wrong_root(tmp_path):
    from nodegraph.node import NodeError

    with pytest.raises(NodeError, match="CelebA-HQ-to-CelebA-mapping.txt"):
        Portraits({"root": str(tmp_path), "batch_size": 1})()
