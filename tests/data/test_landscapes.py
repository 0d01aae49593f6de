"""Procedural landscapes: deterministic, every class present, rendered (not flat) pictures."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image as PILImage

from nodes.common.labelsets import LANDSCAPE
from nodes.data.landscapes import Landscapes, class_histogram, make_landscape, write_example_label_map


def test_deterministic_by_seed_and_index():
    a, b = make_landscape(3, seed=0, size=48), make_landscape(3, seed=0, size=48)
    assert torch.equal(a["labels"], b["labels"]) and torch.equal(a["image"], b["image"])
    c = make_landscape(3, seed=1, size=48)
    assert not torch.equal(a["labels"], c["labels"])


def test_every_class_appears_and_images_are_textured():
    hist = class_histogram(length=120, seed=0, size=32)
    assert (hist > 0.002).all(), hist
    item = make_landscape(5, seed=0, size=64)
    img, lab = item["image"], item["labels"]
    assert img.shape == (3, 64, 64) and 0 <= float(img.min()) and float(img.max()) <= 1
    # textured and shaded: colours vary inside a class region
    for cls in lab.unique():
        m = lab == cls
        if int(m.sum()) > 50:
            assert float(img[:, m].std(dim=1).mean()) > 0.005


def test_node_batches_and_palette_png(tmp_path):
    node = Landscapes({"size": 32, "batch_size": 3, "length": 10})
    out = node()
    assert out["labels"].shape == (3, 32, 32) and out["image"].shape == (3, 3, 32, 32)
    p = write_example_label_map(tmp_path / "m.png", 4, seed=1, size=64)
    rgb = np.asarray(PILImage.open(p).convert("RGB")).reshape(-1, 3)
    pal = {tuple(c) for c in LANDSCAPE.palette}
    assert {tuple(c) for c in np.unique(rgb, axis=0)} <= pal
