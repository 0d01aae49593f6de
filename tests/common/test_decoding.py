"""Files decode to what a viewer shows, and label maps that look the same give the same labels
(issue 19 §2: BR-2-01 16-bit images, BR-2-12 palette label maps, BR-2-10 COCO-Stuff's 255, and
their siblings); warnings a node raises reach the user in every mode of use."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

import nodegraph
from nodegraph.events import EventBus
from nodegraph.executor import Executor
from nodegraph.graph import graph_from_dict
from nodegraph.node import NodeError, NodeWarning
from nodegraph.types import get_label_set
from nodes.common.imageio import load_image
from nodes.common.io import LoadImage, LoadLabelMap

RAMP = (np.arange(64 * 48).reshape(48, 64) * 37 % 65536).astype(np.uint16)


def test_16_bit_grey_png_loads_as_its_8_bit_twin(tmp_path: Path) -> None:
    """BR-2-01: a 16-bit grey PNG (Pillow mode I;16) is scaled by 65535, not clipped at 255
    (which made every pixel white). Mutant: ``img.convert("RGB")`` for every mode."""
    PILImage.fromarray(RAMP).save(tmp_path / "g16.png")
    assert PILImage.open(tmp_path / "g16.png").mode.startswith("I")
    PILImage.fromarray((RAMP / 257).round().astype(np.uint8)).save(tmp_path / "g8.png")
    a, b = load_image(tmp_path / "g16.png"), load_image(tmp_path / "g8.png")
    assert a.shape == (1, 3, 48, 64) and float(a.max()) < 1.0
    assert float((a - b).abs().max()) <= 0.5 / 255 + 1e-6
    assert torch.allclose(a[0, 0], torch.from_numpy(RAMP / 65535).float(), atol=1e-6)


def test_other_modes_decode_as_a_viewer_shows_them(tmp_path: Path) -> None:
    """Siblings of BR-2-01: float images in [0, 1]; 32-bit integer data within 16 bits; grey +
    alpha on white; the EXIF orientation of a phone photo applied (a viewer shows it upright)."""
    f = (RAMP / 65535).astype(np.float32)
    PILImage.fromarray(f, "F").save(tmp_path / "f.tif")
    assert torch.allclose(load_image(tmp_path / "f.tif")[0, 1], torch.from_numpy(f), atol=1e-6)
    PILImage.fromarray(RAMP.astype(np.int32), "I").save(tmp_path / "i.tif")
    assert torch.allclose(load_image(tmp_path / "i.tif")[0, 2], torch.from_numpy(RAMP / 65535).float(), atol=1e-6)
    la = PILImage.merge("LA", [PILImage.new("L", (4, 4), 0), PILImage.new("L", (4, 4), 0)])
    la.save(tmp_path / "la.png")
    assert float(load_image(tmp_path / "la.png").min()) == 1.0  # fully transparent black -> white
    img = PILImage.new("RGB", (40, 20), (255, 0, 0))
    img.paste((0, 0, 255), (0, 0, 20, 20))  # left half blue
    exif = img.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    img.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    shown = load_image(tmp_path / "phone.jpg")
    assert shown.shape == (1, 3, 40, 20)  # upright: the stored 40x20 becomes 20 wide, 40 tall
    assert float(shown[0, 2, 5, 10]) > 0.8 and float(shown[0, 0, 35, 10]) > 0.8  # blue top, red bottom


def test_what_cannot_be_shown_is_refused_clearly(tmp_path: Path) -> None:
    """A float image outside [0, 1] has no display range: refused with the range; a folder given
    as an image path is called a folder, not 'file not found'."""
    PILImage.fromarray(np.full((4, 4), 7.5, np.float32), "F").save(tmp_path / "hdr.tif")
    with pytest.raises(NodeError, match=r"values in \[7.5, 7.5\]"):
        LoadImage({"path": str(tmp_path / "hdr.tif")})()
    (tmp_path / "shots.png").mkdir()
    with pytest.raises(NodeError, match="is a folder, not an image file"):
        LoadImage({"path": str(tmp_path / "shots.png")})()


IDS = np.array([[0, 5, 7, 7], [2, 5, 0, 7]])


def _labels(path: Path, label_set: str = "landscape", **params) -> torch.Tensor:
    return LoadLabelMap({"path": str(path), "label_set": label_set, **params})()["labels"][0]


def test_palette_png_in_the_label_sets_colours_reads_by_colour(tmp_path: Path) -> None:
    """BR-2-12: an editor saves the painting as a palette PNG with its own palette order; the
    colours are the label set's, so it gives the same labels as the RGB file, with a warning
    saying how it was read. Mutant: palette PNGs always read by index (grass became cloud)."""
    pal = np.array(get_label_set("landscape").palette, dtype=np.uint8)
    rgb = pal[IDS]
    PILImage.fromarray(rgb).save(tmp_path / "rgb.png")
    order = [7, 2, 0, 5]  # the editor's palette: grass, mountain, sky, water
    idx = np.vectorize({c: i for i, c in enumerate(order)}.get)(IDS).astype(np.uint8)
    p = PILImage.fromarray(idx, "P")
    p.putpalette(pal[order].ravel().tolist())
    p.save(tmp_path / "indexed.png")
    with pytest.warns(NodeWarning, match="another order"):
        got = _labels(tmp_path / "indexed.png")
    assert got.tolist() == _labels(tmp_path / "rgb.png").tolist() == IDS.tolist()
    assert _labels(tmp_path / "indexed.png", format="index").tolist() == idx.tolist()


def test_index_maps_stay_index_maps(tmp_path: Path) -> None:
    """Palette PNGs whose colours are not the label set's (a label tool's table) and grey images
    are index maps; an index map saved as grey RGB is read by value, with a warning."""
    p = PILImage.fromarray(IDS.astype(np.uint8), "P")
    p.putpalette([v for i in range(256) for v in (i, 255 - i, (i * 7) % 256)])
    p.save(tmp_path / "tool.png")
    assert _labels(tmp_path / "tool.png").tolist() == IDS.tolist()
    PILImage.fromarray(np.repeat(IDS.astype(np.uint8)[..., None], 3, 2)).save(tmp_path / "grey_rgb.png")
    with pytest.warns(NodeWarning, match="all grey"):
        assert _labels(tmp_path / "grey_rgb.png").tolist() == IDS.tolist()


def test_255_is_dont_care_where_the_set_has_one(tmp_path: Path) -> None:
    """BR-2-10: COCO-Stuff's stuffthingmaps mark unlabelled pixels 255; read as the don't-care id
    (182), as data.COCOStuff does, saying so -- not refused as 'another label set'. Sets without
    a don't-care id still refuse 255."""
    PILImage.fromarray(np.array([[0, 255], [181, 91]], np.uint8)).save(tmp_path / "coco.png")
    with pytest.warns(NodeWarning, match="255, the usual 'unlabelled' value"):
        assert _labels(tmp_path / "coco.png", "coco").tolist() == [[0, 182], [181, 91]]
    with pytest.raises(NodeError, match=r"255\] outside 0..9"):
        _labels(tmp_path / "coco.png", "landscape")


def test_a_map_in_ade20ks_published_convention_is_named(tmp_path: Path) -> None:
    """Values 0..150 with both ends present, read as ids, look like ADEChallenge's k + 1 storage:
    the warning names that convention."""
    PILImage.fromarray(np.array([[0, 1], [150, 20]], np.uint8)).save(tmp_path / "ADE_x.png")
    with pytest.warns(NodeWarning, match="ADEChallenge annotation PNG"):
        _labels(tmp_path / "ADE_x.png", "ade20k")


def test_node_warnings_reach_events_and_python_warnings(tmp_path: Path) -> None:
    """In a graph a node's warning is a ``warning`` event naming the node (not a stray Python
    warning); through the Python API (``nodegraph.create``) it reaches Python's ``warnings``
    (it was dropped)."""
    PILImage.fromarray(np.array([[0, 255]], np.uint8)).save(tmp_path / "coco.png")
    g = graph_from_dict({"nodegraph": 1, "nodes": {
        "lab": {"type": "io.LoadLabelMap", "params": {"path": "coco.png", "label_set": "coco"}}}},
        base_dir=tmp_path)
    bus = EventBus()
    with warnings.catch_warnings():
        warnings.simplefilter("error", NodeWarning)
        Executor(g, device="cpu", events=bus).run(["lab"])
    assert any(e["event"] == "warning" and e["node"] == "lab" and "255" in e["message"] for e in bus.history)
    node = nodegraph.create("image.Resize", size=2)
    with pytest.warns(NodeWarning, match="image.Resize: hello"):
        node.ctx.warn("hello")


def test_an_output_folder_taken_by_a_file_is_named(tmp_path: Path) -> None:
    """Writing out/x.png where ``out`` is a file says which name is taken (it was a bare
    ``[Errno 17] File exists``)."""
    from nodes.common.io import SaveImage

    (tmp_path / "out").write_text("not a folder")
    with pytest.raises(NodeError, match="out is a file, not a folder"):
        SaveImage({"path": str(tmp_path / "out" / "x.png")})(image=torch.zeros(1, 3, 4, 4))
