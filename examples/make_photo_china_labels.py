"""Write examples/photo_china_labels.png: a `landscape` label map of examples/photo_china.jpg.

    python examples/make_photo_china_labels.py

The style side of graphs/spade_pis_segments.json (segment-wise PhotoWCT). Made by hand-chosen
rules, not a segmentation network: the tower is a hand-drawn polygon (there is no building class
in the `landscape` set, so it is painted `rock`); bright, unsaturated pixels are `sky` above the
horizon (row 172) and `water` below it (the lake); everything else is `tree` (the foliage).
A 5x5 median filter removes speckle. Result: sky 39 %, rock 22 %, water 8 %, tree 30 %.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from nodes.common.labelsets import LANDSCAPE

HERE = Path(__file__).resolve().parent
HORIZON = 172  # row of the lake's far shore in the 512 x 342 photo
LAKE_BOTTOM = 268
TOWER = [(150, 18), (176, 18), (180, 45), (230, 70), (262, 100), (250, 108), (262, 135), (268, 145),
         (262, 190), (285, 205), (270, 225), (245, 230), (270, 250), (300, 265), (290, 285), (250, 300),
         (245, 342), (225, 342), (225, 310), (160, 300), (150, 285), (180, 270), (60, 220), (48, 210),
         (65, 195), (78, 190), (70, 140), (80, 128), (75, 100), (90, 90), (125, 70), (150, 45)]


def labels_of(photo: np.ndarray) -> np.ndarray:
    """H x W uint8 `landscape` ids for the photo (float RGB in [0, 1])."""
    ids = {n: i for i, n in enumerate(LANDSCAPE.names)}
    h, w, _ = photo.shape
    rows = np.arange(h)[:, None]
    hi, lo = photo.max(-1), photo.min(-1)
    bright = (hi > 0.62) & ((hi - lo) / (hi + 1e-6) < 0.25)
    tower = Image.new("L", (w, h), 0)
    ImageDraw.Draw(tower).polygon(TOWER, fill=1)
    tower = np.asarray(tower).astype(bool)
    lab = np.full((h, w), ids["tree"], np.uint8)
    lab[bright & (rows >= HORIZON - 7) & (rows < LAKE_BOTTOM)] = ids["water"]
    lab[bright & (rows < HORIZON)] = ids["sky"]
    lab[tower] = ids["rock"]
    lab[tower & bright & (rows < HORIZON)] = ids["sky"]  # sky inside the polygon's corners
    return ndimage.median_filter(lab, size=5)


def main() -> None:
    photo = np.asarray(Image.open(HERE / "photo_china.jpg").convert("RGB")).astype(np.float64) / 255
    palette = np.array(LANDSCAPE.palette, np.uint8)
    Image.fromarray(palette[labels_of(photo)]).save(HERE / "photo_china_labels.png", optimize=True)


if __name__ == "__main__":
    main()
