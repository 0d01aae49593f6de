"""data.CUB on a tiny tree in the published layout (written here): ids from images.txt, attributes
keyed by ids with extra tokens ignored, soft masks, the bbox crop, both splits, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from nodes.data.cub import CUB, CUBLayoutError, crop_box, write_fixture


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    return write_fixture(tmp_path / "cub", classes=3, per_class=2)


def test_reads_items_in_the_published_layout(tree: Path) -> None:
    node = CUB({"root": str(tree), "size": 32, "split": "all"})
    ds = node.dataset()
    assert len(ds) == 6
    item = ds[0]
    assert item["image"].shape == (3, 32, 32) and item["mask"].shape == (1, 32, 32)
    assert item["attributes"].shape == (312,) and int(item["class_id"]) == 0
    m = item["mask"]
    assert float(m.min()) >= 0 and float(m.max()) <= 1 and bool(((m > 0.05) & (m < 0.95)).any())  # soft, 51/255
    lines = (tree / "CUB_200_2011/attributes/image_attribute_labels.txt").read_text().splitlines()
    want = [float(ln.split()[2]) for ln in lines if ln.split()[0] == "1"]
    assert item["attributes"].tolist() == want


def test_splits_official_and_class_disjoint(tree: Path) -> None:
    official = CUB({"root": str(tree), "split": "train"}).dataset()
    assert len(official) == 3  # train_test_split: every other image
    disjoint = CUB({"root": str(tree / "CUB_200_2011"), "split": "train", "split_mode": "class_disjoint"}).dataset()
    assert len(disjoint) == 6  # the fixture's classes 0..2 all fall in the 150 training classes
    with pytest.raises(CUBLayoutError, match="no images"):
        CUB({"root": str(tree), "split": "test", "split_mode": "class_disjoint"}).dataset()


def test_certainty_source_and_threshold(tree: Path) -> None:
    ds = CUB({"root": str(tree), "split": "all", "attribute_source": "certainty", "mask_threshold": 0.5}).dataset()
    a, m = ds[0]["attributes"], ds[0]["mask"]
    assert set(a.unique().tolist()) <= {0.0, 0.25, 0.5, 0.75, 1.0}
    assert set(m.unique().tolist()) <= {0.0, 1.0}


def test_crop_box_keeps_the_object_ratio() -> None:
    x0, y0, x1, y1 = crop_box((100, 100, 60, 30), 1000, 1000, 0.75)
    assert x1 - x0 == y1 - y0 == 80  # 60 / 0.75
    assert (x0 + x1) / 2 == 130 and (y0 + y1) / 2 == 115
    assert crop_box((0, 0, 60, 30), 50, 40, 0.75) == (0, 0, 50, 40)  # clipped to the image


def test_missing_files_are_named(tree: Path) -> None:
    (tree / "CUB_200_2011/bounding_boxes.txt").unlink()
    with pytest.raises(CUBLayoutError, match="bounding_boxes.txt"):
        CUB({"root": str(tree)}).dataset()
    write_fixture(tree)
    (tree / "attributes.txt").unlink()
    with pytest.raises(CUBLayoutError, match="attributes.txt"):
        CUB({"root": str(tree)}).dataset()
    write_fixture(tree)
    seg = next((tree / "segmentations").rglob("*.png"))
    seg.unlink()
    ds = CUB({"root": str(tree), "split": "all"}).dataset()
    with pytest.raises(CUBLayoutError, match=seg.name):
        [ds[k] for k in range(len(ds))]
