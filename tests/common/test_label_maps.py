"""io.LoadLabelMap reads the label maps users have: painted ones (snapped within ``tolerance``),
palette-mode index PNGs (what most label tools save), and the datasets' own annotation PNGs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from nodegraph.node import NodeError
from nodegraph.types import get_label_set
from nodes.common import labelsets
from nodes.common.io import LoadLabelMap

ROOT = Path(__file__).resolve().parents[2]
IDS = np.array([[0, 1, 2, 3], [5, 6, 7, 8], [9, 9, 4, 0]])


def _load(path: Path, **params) -> torch.Tensor:
    return LoadLabelMap({"path": str(path), "label_set": "landscape", **params})()["labels"][0]


def test_tolerance_snaps_near_colours_and_only_within_it(tmp_path):
    """A painted map 20 RGB units off the palette (anti-aliasing, JPEG) reads with tolerance 40
    and is refused with the default 0 or a tolerance below the distance.
    Mutant: the node ignores ``tolerance`` (passes 0, or the default, to the decoder)."""
    pal = np.array(get_label_set("landscape").palette, dtype=np.int32)
    off = np.clip(pal[IDS] + np.array([12, -16, 0]), 0, 255).astype(np.uint8)  # |d| = 20 (or less at 255)
    PILImage.fromarray(off).save(tmp_path / "painted.png")
    assert _load(tmp_path / "painted.png", tolerance=40).tolist() == IDS.tolist()
    for tol in (0.0, 15.0):
        with pytest.raises(NodeError, match="not in the 'landscape' palette"):
            _load(tmp_path / "painted.png", tolerance=tol)


def test_palette_mode_png_is_an_index_map(tmp_path):
    """Label tools save index maps as palette ('P') PNGs whose colour table is theirs, not ours:
    the pixel values are the ids. Mutant: 'P' images no longer read as index maps (they would be
    converted to RGB and matched against the landscape palette, and refused)."""
    img = PILImage.fromarray(IDS.astype(np.uint8), "P")
    rng = np.random.default_rng(0)
    img.putpalette(rng.integers(0, 256, 768, dtype=np.uint8).tolist())
    img.save(tmp_path / "p.png")
    assert PILImage.open(tmp_path / "p.png").mode == "P"
    assert _load(tmp_path / "p.png").tolist() == IDS.tolist()
    assert _load(tmp_path / "p.png", format="index").tolist() == IDS.tolist()


def test_dataset_annotation_pngs_use_the_published_convention(tmp_path):
    """ADE20K stores class k as k + 1 (0 = unlabelled -> 150, the don't-care id); COCO-Stuff
    stores the id (255 = unlabelled -> 182). Mutant: the offset or the unlabelled id dropped."""
    ade = np.array([[0, 1, 3], [150, 10, 0]], dtype=np.uint8)
    PILImage.fromarray(ade, "L").save(tmp_path / "ADE_val_00000001.png")
    out = LoadLabelMap({"path": str(tmp_path / "ADE_val_00000001.png"), "label_set": "ade20k",
                        "format": "dataset"})()["labels"][0]
    assert out.tolist() == [[150, 0, 2], [149, 9, 150]]
    coco = np.array([[0, 255], [181, 91]], dtype=np.uint8)
    PILImage.fromarray(coco, "L").save(tmp_path / "000000000139.png")
    out = LoadLabelMap({"path": str(tmp_path / "000000000139.png"), "label_set": "coco",
                        "format": "dataset"})()["labels"][0]
    assert out.tolist() == [[0, 182], [181, 91]]
    with pytest.raises(ValueError, match="format 'dataset'"):
        LoadLabelMap({"path": str(tmp_path / "x.png"), "label_set": "landscape", "format": "dataset"})


def test_ade20k_example_is_the_landscape_example_relabelled():
    """examples/ade20k_landscape_01.png (the README's ADE20K command) is landscape_01 in ADE20K's
    vocabulary and on-disk convention, so the two examples cannot drift apart."""
    land = _load(ROOT / "examples" / "landscape_01.png", tolerance=40)
    ade = LoadLabelMap({"path": str(ROOT / "examples" / "ade20k_landscape_01.png"), "label_set": "ade20k",
                        "format": "dataset"})()["labels"][0]
    lut = torch.tensor([labelsets.ADE20K_NAMES.index(labelsets.LANDSCAPE_TO_ADE20K[n])
                        for n in labelsets.LANDSCAPE.names])
    assert torch.equal(ade, lut[land])
