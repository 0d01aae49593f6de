"""data.Portraits ``style``: photo unchanged, sketch grey and line-like, caricature warped and saturated.

Mutants run by hand (each fails a test here): photo routed through the sketch (hash), sketch
tinted per channel (grey), caricature with bulge strength 0 and no global
warp (geometry), saturation 1.0 (colour), labels not warped (label/image agreement).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from nodegraph import create
from nodes.data.portrait_styles import stylize
from nodes.data.portraits import ProceduralPortraits

PHOTO_SHA = {  # items 0..3 of seed 0, image float32 bytes then labels int64, before styles existed
    64: "31a0feb1a205366e103c65480b194bf3ca935885ba8c39990743b5136012225a",
}
PHOTO_SHA_U8 = {  # the same items quantised to 8 bits (robust to last-bit differences of OpenCV builds)
    64: "715d663edf0433fdd33595efdbc6660e92b56c7b4e4759974635d516219a685d",
}


def _items(style: str, n: int = 4, size: int = 64) -> list[dict]:
    ds = ProceduralPortraits(10, size, 0, style=style)
    return [ds[i] for i in range(n)]


def test_photo_default_is_the_previous_rendering():
    a, b = ProceduralPortraits(10, 64, 0), ProceduralPortraits(10, 64, 0, style="photo")
    h, h8 = hashlib.sha256(), hashlib.sha256()
    for i in range(4):
        x, y = a[i], b[i]
        assert np.array_equal(x["image"].numpy(), y["image"].numpy())
        h.update(x["image"].numpy().tobytes())
        h.update(x["labels"].numpy().tobytes())
        h8.update(np.round(x["image"].numpy() * 255).astype(np.uint8).tobytes())
        h8.update(x["labels"].numpy().astype(np.uint8).tobytes())
    if h.hexdigest() != PHOTO_SHA[64]:  # another OpenCV build may differ in the last bit only
        assert h8.hexdigest() == PHOTO_SHA_U8[64]


def test_sketch_is_grey_same_labels_and_dark_lines():
    photo, sk = _items("photo"), _items("sketch")
    for p, s in zip(photo, sk, strict=True):
        img = s["image"].numpy()
        assert np.abs(img - img.mean(0, keepdims=True)).max() < 1e-6  # R = G = B
        assert np.array_equal(p["labels"].numpy(), s["labels"].numpy())
        grey = img[0]
        assert 0.7 < np.median(grey) < 0.95  # mostly paper
        edge = np.zeros(grey.shape, bool)
        lab = s["labels"].numpy()
        edge[1:] |= lab[1:] != lab[:-1]
        assert grey[edge].mean() < np.median(grey) - 0.15  # strokes along part boundaries


def test_caricature_exaggerates_geometry_and_colour():
    photo, car = _items("photo"), _items("caricature")
    for p, c in zip(photo, car, strict=True):
        lp, lc = p["labels"].numpy(), c["labels"].numpy()
        assert np.isin(lc, (4, 5)).sum() > 1.4 * np.isin(lp, (4, 5)).sum()  # bigger eyes
        assert np.isin(lc, (7, 8, 9)).sum() > 1.2 * np.isin(lp, (7, 8, 9)).sum()  # bigger mouth

        def aspect(lab):
            ys, xs = np.nonzero(lab == 1)
            return (xs.max() - xs.min()) / (ys.max() - ys.min())

        assert aspect(lc) < 0.95 * aspect(lp)  # narrower / longer face

        def sat(img):
            return (img.max(0) - img.min(0)).mean()
        assert sat(c["image"].numpy()) > 1.2 * sat(p["image"].numpy())
        # the labels follow the warped image: eye pixels are the eye-white/iris colours, not skin
        img = c["image"].numpy()
        skin = img[:, lc == 1].mean(1)
        eyes = img[:, np.isin(lc, (4, 5))].mean(1)
        assert np.abs(skin - eyes).sum() > 0.1


def test_same_identity_in_every_style_and_deterministic():
    a, b = _items("caricature", 2), _items("caricature", 2)
    assert all(np.array_equal(x["image"].numpy(), y["image"].numpy()) for x, y in zip(a, b, strict=True))
    photo, car = _items("photo", 2), _items("caricature", 2)
    # the hair colour is the identity's (caricature saturates it, keeps its hue family)
    for p, c in zip(photo, car, strict=True):
        hp, hc = p["colors"].numpy()[1], c["colors"].numpy()[1]
        assert np.argmax(hp) == np.argmax(hc) or np.ptp(hp) < 0.05


def test_node_param_and_unknown_style():
    node = create("data.Portraits", size=64, count=4, style="sketch", batch_size=2)
    item = node.dataset()[0]
    assert item["image"].shape == (3, 64, 64)
    with pytest.raises(Exception, match="style"):
        create("data.Portraits", size=64, style="oil")
    with pytest.raises(ValueError, match="unknown portrait style"):
        stylize(np.zeros((8, 8, 3), np.float32), np.zeros((8, 8), np.int64), "oil", 0, 0)
