"""data.ADE20K / data.COCOStuff read their published layouts with SPADE's label conventions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from nodes.data.readers import ADE20K, COCOStuff, write_fixture


def test_ade20k_layout_and_label_shift(tmp_path):
    root = write_fixture(tmp_path / "ADEChallengeData2016", "ade20k", n=3)
    node = ADE20K({"root": str(root), "size": 16, "batch_size": 2})
    ds = node.dataset()
    assert len(ds) == 3
    item = ds[0]
    raw = np.asarray(PILImage.open(sorted((root / "annotations/training").glob("*.png"))[0])
                     .resize((16, 16), PILImage.NEAREST)).astype(np.int64)
    want = raw - 1
    want[want < 0] = 150  # PNG 0 (unlabelled) -> don't care id
    assert torch.equal(item["labels"], torch.from_numpy(want))
    assert item["image"].shape == (3, 16, 16) and 0 <= float(item["image"].min())
    out = node()
    assert out["labels"].shape == (2, 16, 16) and out["labels"].dtype == torch.int64


@pytest.mark.parametrize("kind", ["coco", "coco_spade"])
def test_cocostuff_layouts(tmp_path, kind):
    root = write_fixture(tmp_path / "cocostuff", kind, n=2)
    node = COCOStuff({"root": str(root), "size": 16, "load_size": 20, "flip": True, "batch_size": 2})
    item = node.dataset()[1]
    labs = set(item["labels"].unique().tolist())
    assert labs <= {0, 5, 91, 150, 181, 182} and 255 not in labs  # 255 -> 182 (don't care)
    assert item["instance"].shape == (16, 16)
    assert torch.equal(node.dataset()[1]["labels"], item["labels"])  # deterministic crop/flip
    out = node()
    assert out["instance"].shape == (2, 16, 16)


def test_missing_layout_names_the_param(tmp_path):
    with pytest.raises(FileNotFoundError, match="params.root"):
        ADE20K({"root": str(tmp_path)}).dataset()
    with pytest.raises(FileNotFoundError, match="params.root"):
        COCOStuff({"root": str(tmp_path)}).dataset()
