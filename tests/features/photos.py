"""The bundled photographs the backbone tests classify (scikit-image and scikit-learn ship them),
with their ImageNet-1k class indices (0-based, the order of Google's / torchvision's label file)."""

from __future__ import annotations

from functools import cache

import numpy as np
import torch

ESPRESSO, PALACE, DAISY = 967, 698, 985
CATS = {281, 282, 285, 292}  # tabby, tiger cat, Egyptian cat, tiger


def _photos() -> dict[str, np.ndarray]:
    import skimage.data
    from sklearn.datasets import load_sample_image

    return {"coffee": skimage.data.coffee(), "chelsea": skimage.data.chelsea(),
            "china": load_sample_image("china.jpg"), "flower": load_sample_image("flower.jpg")}


EXPECTED = {"coffee": {ESPRESSO}, "chelsea": CATS, "china": {PALACE}, "flower": {DAISY}}


@cache
def batch(size: int = 224) -> torch.Tensor:
    """The four photos, centre square crops resized to ``size``: 4 x 3 x size x size in [0, 1]
    (cached: do not modify in place)."""
    import torch.nn.functional as F

    out = []
    for a in _photos().values():
        x = torch.from_numpy(np.array(a, copy=True)).permute(2, 0, 1)[None].float() / 255
        h, w = x.shape[-2:]
        m = min(h, w)
        x = x[..., (h - m) // 2:(h - m) // 2 + m, (w - m) // 2:(w - m) // 2 + m]
        out.append(F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False))
    return torch.cat(out)
