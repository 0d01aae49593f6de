"""io and image nodes: what a user feeds in and gets out."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

import nodegraph
from nodegraph.node import NodeError
from nodegraph.types import get_label_set


def test_load_image_converts_grey_and_alpha(tmp_path):
    PILImage.new("L", (5, 4), 128).save(tmp_path / "g.png")
    img = nodegraph.create("io.LoadImage", path=str(tmp_path / "g.png"))()["image"]
    assert img.shape == (1, 3, 4, 5) and torch.allclose(img, torch.full_like(img, 128 / 255))
    PILImage.new("RGBA", (3, 3), (0, 0, 0, 0)).save(tmp_path / "a.png")
    img = nodegraph.create("io.LoadImage", path=str(tmp_path / "a.png"))()["image"]
    assert torch.allclose(img, torch.ones_like(img))  # transparent -> white


def test_corrupt_image_is_a_clear_error(tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(NodeError) as e:
        nodegraph.create("io.LoadImage", path=str(tmp_path / "bad.jpg"))()
    assert "params.path" in str(e.value) and "cannot read" in str(e.value)


def test_label_map_colour_and_index(tmp_path):
    ls = get_label_set("landscape")
    ids = np.array([[0, 1, 2], [5, 7, 8]])
    PILImage.fromarray(np.array(ls.palette, dtype=np.uint8)[ids]).save(tmp_path / "c.png")
    out = nodegraph.create("io.LoadLabelMap", path=str(tmp_path / "c.png"), label_set="landscape")()
    assert out["labels"].dtype == torch.int64 and out["labels"][0].tolist() == ids.tolist()
    PILImage.fromarray(ids.astype(np.uint8), "L").save(tmp_path / "i.png")
    out = nodegraph.create("io.LoadLabelMap", path=str(tmp_path / "i.png"), label_set="landscape")()
    assert out["labels"][0].tolist() == ids.tolist()


def test_label_map_wrong_palette_or_ids_are_errors(tmp_path):
    PILImage.new("RGB", (4, 4), (1, 2, 3)).save(tmp_path / "c.png")
    with pytest.raises(NodeError) as e:
        nodegraph.create("io.LoadLabelMap", path=str(tmp_path / "c.png"), label_set="landscape")()
    assert "not in the 'landscape' palette" in str(e.value) and "(1, 2, 3)" in str(e.value)
    PILImage.fromarray(np.full((4, 4), 200, np.uint8), "L").save(tmp_path / "i.png")
    with pytest.raises(NodeError) as e:
        nodegraph.create("io.LoadLabelMap", path=str(tmp_path / "i.png"), label_set="landscape")()
    assert "outside 0..9" in str(e.value)
    with pytest.raises(ValueError):
        nodegraph.create("io.LoadLabelMap", path=str(tmp_path / "i.png"), label_set="nope")


def test_save_label_map_roundtrip(tmp_path):
    from nodegraph.graph import graph_from_dict

    ls = get_label_set("landscape")
    ids = np.array([[3, 4], [6, 9]])
    PILImage.fromarray(ids.astype(np.uint8), "L").save(tmp_path / "i.png")
    g = graph_from_dict({"nodegraph": 1, "nodes": {
        "l": {"type": "io.LoadLabelMap", "params": {"path": "i.png", "label_set": "landscape"}},
        "s": {"type": "io.SaveLabelMap", "params": {"path": "col.png"}, "inputs": {"labels": "l.labels"}}}},
        base_dir=tmp_path)
    nodegraph.run(g)
    col = np.asarray(PILImage.open(tmp_path / "col.png").convert("RGB"))
    assert col[1, 1].tolist() == list(ls.palette[9])


def test_save_image_batch_grid_and_numbered(tmp_path):
    x = torch.rand(3, 3, 8, 8)
    nodegraph.create("io.SaveImage", path=str(tmp_path / "g.png"), nrow=3, padding=1)(image=x)
    assert PILImage.open(tmp_path / "g.png").size == (3 * 9 + 1, 10)
    nodegraph.create("io.SaveImage", path=str(tmp_path / "n.png"), mode="numbered")(image=x)
    assert sorted(p.name for p in tmp_path.glob("n_*.png")) == ["n_000.png", "n_001.png", "n_002.png"]
    saved = np.asarray(PILImage.open(tmp_path / "n_001.png")).astype(np.float32) / 255
    assert np.abs(saved.transpose(2, 0, 1) - x[1].numpy()).max() <= 0.5 / 255 + 1e-6
    assert not list(tmp_path.glob(".*tmp*"))  # no temp files left behind


def test_tensor_roundtrip(tmp_path):
    t = torch.randn(2, 5)
    nodegraph.create("io.SaveTensor", path=str(tmp_path / "t.safetensors"), key="z")(tensor=t)
    got = nodegraph.create("io.LoadTensor", path=str(tmp_path / "t.safetensors"))()["tensor"]
    assert torch.equal(got, t)
    with pytest.raises(NodeError):
        nodegraph.create("io.LoadTensor", path=str(tmp_path / "t.safetensors"), key="w")()


def test_resize_crop_blend_grid():
    labels = torch.tensor([[[0, 1], [2, 3]]])
    out = nodegraph.create("image.Resize", size=4, mode="bilinear")(image=torch.rand(1, 3, 2, 2), labels=labels)
    assert out["image"].shape == (1, 3, 4, 4)
    assert out["labels"][0].tolist() == [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]
    out = nodegraph.create("image.Resize", size=4, keep_aspect=True)(image=torch.rand(1, 3, 8, 16))
    assert out["image"].shape == (1, 3, 4, 8)
    crop = nodegraph.create("image.Crop", height=2, width=2, center=True)(image=torch.arange(48.).view(1, 3, 4, 4) / 48)
    assert crop["image"].shape == (1, 3, 2, 2) and abs(float(crop["image"][0, 0, 0, 0]) - 5 / 48) < 1e-6
    with pytest.raises(NodeError):
        nodegraph.create("image.Crop", top=3, height=2, width=2)(image=torch.rand(1, 3, 4, 4))
    a, b = torch.zeros(1, 3, 4, 4), torch.ones(1, 3, 4, 4)
    m = torch.zeros(1, 1, 4, 4)
    m[..., :2] = 1
    out = nodegraph.create("image.Blend")(a=a, b=b, mask=m)["image"]
    assert float(out[..., :2].min()) == 1 and float(out[..., 2:].max()) == 0
    sheet = nodegraph.create("image.Grid", captions=["x", "y", "z"], ncol=3, cell=32)(
        image1=torch.rand(2, 3, 16, 16), image2=torch.rand(1, 3, 16, 16))["image"]
    assert sheet.shape[0] == 1 and sheet.shape[-1] == 3 * 36 + 4


def test_grid_enlarges_small_images_by_whole_factors():
    """A 16 px image in a 50 px cell is shown at 3x, nearest-neighbour (each pixel a 3x3 block,
    centred); ``enlarge: false`` keeps it at 16 px. Mutant killed: no enlargement (the cell's
    corner region stays white)."""
    img = torch.rand(1, 3, 16, 16)
    big = nodegraph.create("image.Grid", cell=50)(image1=img)["image"][0]
    off = 4 + (50 - 48) // 2  # pad + centring
    tile = big[:, off:off + 48, off:off + 48]
    q = torch.round(img[0] * 255) / 255
    assert torch.allclose(tile, q.repeat_interleave(3, 1).repeat_interleave(3, 2), atol=1 / 255)
    small = nodegraph.create("image.Grid", cell=50, enlarge=False)(image1=img)["image"][0]
    assert bool((small[:, off:off + 10, off:off + 10] == 1).all())  # white: the 16 px tile sits in the middle


def test_outputs_get_ordinary_file_permissions(tmp_path):
    """Atomic writes go through mkstemp (0600); the published file has what open() would give."""
    import os

    from nodegraph.weights import save_atomic

    old = os.umask(0o022)
    try:
        nodegraph.create("io.SaveImage", path=str(tmp_path / "a.png"))(image=torch.rand(1, 3, 4, 4))
        save_atomic({"w": torch.zeros(2)}, tmp_path / "w.safetensors")
    finally:
        os.umask(old)
    for name in ("a.png", "w.safetensors"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644, name
