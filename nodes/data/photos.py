"""Photos that install with the project: scikit-image's and scikit-learn's bundled colour photos,
plus procedural images (smooth colour fields, gradients, soft shapes, textures).

``data.Photos`` serves random square crops, deterministic by ``seed`` (item i always draws from
``np.random.default_rng([seed, i])``), for training PhotoWCT decoders (``nodes.pis.train``) and
anything else that wants natural-ish RGB images without a download.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field

from nodegraph.node import DatasetNode, Params
from nodegraph.registry import register
from nodegraph.types import Image


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        img = getattr(skimage.data, name)()
        return img[0] if isinstance(img, tuple) else img

    return load


def _sklearn(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from sklearn.datasets import load_sample_image

        return load_sample_image(name)

    return load


PHOTOS: dict[str, Callable[[], np.ndarray]] = {
    "astronaut": _skimage("astronaut"),
    "coffee": _skimage("coffee"),
    "chelsea": _skimage("chelsea"),
    "rocket": _skimage("rocket"),
    "hubble": _skimage("hubble_deep_field"),
    "ihc": _skimage("immunohistochemistry"),
    "retina": _skimage("retina"),
    "motorcycle": _skimage("stereo_motorcycle"),
    "china": _sklearn("china.jpg"),
    "flower": _sklearn("flower.jpg"),
}
"""Colour photos bundled inside the scikit-image / scikit-learn wheels (no download)."""


@cache
def photo(name: str) -> torch.Tensor:
    """A bundled photo as float32 3 x H x W in [0, 1]."""
    if name not in PHOTOS:
        raise KeyError(f"unknown photo {name!r} (known: {', '.join(PHOTOS)})")
    arr = np.asarray(PHOTOS[name]())[..., :3]
    return torch.from_numpy(np.array(arr, dtype=np.float32)).permute(2, 0, 1) / 255.0


def _smooth_field(rng: np.random.Generator, size: int, channels: int, cells: int) -> torch.Tensor:
    grid = torch.from_numpy(rng.random((1, channels, cells, cells))).float()
    return F.interpolate(grid, size=(size, size), mode="bicubic", align_corners=False)[0]


def procedural(rng: np.random.Generator, size: int) -> torch.Tensor:
    """A random photo-like picture: a gradient or smooth colour field, soft-edged shapes, some
    with stripes or noise texture, and mild grain. 3 x size x size in [0, 1]."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    top, bottom = torch.from_numpy(rng.random((2, 3, 1, 1))).float()
    if rng.random() < 0.5:
        img = top * (1 - yy) + bottom * yy
    else:
        img = _smooth_field(rng, size, 3, int(rng.integers(2, 6)))
    for _ in range(int(rng.integers(2, 9))):
        cy, cx = rng.random(2)
        ry, rx = 0.05 + 0.35 * rng.random(2)
        ang = rng.random() * np.pi
        dy, dx = yy - cy, xx - cx
        u = (dx * np.cos(ang) + dy * np.sin(ang)) / rx
        v = (-dx * np.sin(ang) + dy * np.cos(ang)) / ry
        r = u.abs() ** 2 + v.abs() ** 2 if rng.random() < 0.6 else torch.maximum(u.abs(), v.abs())
        soft = 0.01 + 0.2 * rng.random()
        mask = torch.sigmoid((1 - r) / soft)
        colour = torch.from_numpy(rng.random((3, 1, 1))).float()
        fill = colour.expand(3, size, size)
        kind = rng.random()
        if kind < 0.25:  # stripes
            freq = 4 + 40 * rng.random()
            stripes = 0.5 + 0.5 * torch.sin(2 * np.pi * freq * (u * rx))
            fill = fill * (0.6 + 0.4 * stripes)
        elif kind < 0.45:  # blotchy texture
            fill = fill * (0.5 + 0.5 * _smooth_field(rng, size, 1, int(rng.integers(8, 32))))
        img = img * (1 - mask) + fill * mask
    img = img + 0.03 * rng.random() * torch.from_numpy(rng.standard_normal((3, size, size))).float()
    return img.clamp(0, 1)


def random_crop(img: torch.Tensor, rng: np.random.Generator, size: int,
                min_scale: float = 0.35) -> torch.Tensor:
    """A random square crop whose side is a random fraction of the shorter side (>= min_scale),
    resized to ``size`` with antialiasing, randomly mirrored."""
    _, h, w = img.shape
    short = min(h, w)
    side = int(round(short * (min_scale + (1 - min_scale) * rng.random())))
    side = max(min(side, short), 1)
    y = int(rng.integers(0, h - side + 1))
    x = int(rng.integers(0, w - side + 1))
    crop = img[:, y:y + side, x:x + side][None]
    crop = F.interpolate(crop, size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0]
    if rng.random() < 0.5:
        crop = crop.flip(-1)
    return crop.clamp(0, 1)


class PhotoCrops(torch.utils.data.Dataset):
    """Random crops of bundled photos and procedural images; item i depends only on (seed, i)."""

    def __init__(self, names: list[str], size: int, length: int, seed: int,
                 procedural_fraction: float) -> None:
        self.names, self.size, self.length = names, size, length
        self.seed, self.procedural_fraction = seed, procedural_fraction

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, i])
        if not self.names or rng.random() < self.procedural_fraction:
            return {"image": procedural(rng, self.size)}
        name = self.names[int(rng.integers(len(self.names)))]
        return {"image": random_crop(photo(name), rng, self.size)}


@register("data.Photos")
class Photos(DatasetNode):
    """Real photos bundled with scikit-image/scikit-learn plus procedural images, as random
    square crops (deterministic by ``seed``)."""

    version = "1"

    class Params(Params):
        photos: list[str] = Field(default_factory=lambda: [n for n in PHOTOS if n != "coffee"],
                                  description=f"bundled photos to draw from ({', '.join(PHOTOS)})")
        size: int = Field(128, ge=8, le=2048, description="crop side in pixels")
        length: int = Field(10000, ge=1, description="items per epoch")
        procedural_fraction: float = Field(0.3, ge=0, le=1, description="share of procedural images")
        batch_size: int = Field(8, ge=1, le=1024)
        seed: int = 0

    outputs = {"image": Image()}

    def dataset(self) -> PhotoCrops:
        bad = [n for n in self.params.photos if n not in PHOTOS]
        if bad:
            raise ValueError(f"data.Photos.params.photos: unknown {bad} (known: {', '.join(PHOTOS)})")
        return PhotoCrops(list(self.params.photos), self.params.size, self.params.length,
                          self.params.seed, self.params.procedural_fraction)


EXAMPLES = {
    # name: (photo, crop box as fractions y0, x0, y1, x1, output long side)
    "style_warm": ("coffee", (0.0, 0.0, 1.0, 1.0), 512),
    "style_cool": ("rocket", (0.0, 0.0, 1.0, 1.0), 512),
    "style_green": ("flower", (0.0, 0.0, 1.0, 1.0), 512),
    "photo_china": ("china", (0.0, 0.0, 1.0, 1.0), 512),
    "photo_chelsea": ("chelsea", (0.0, 0.0, 1.0, 1.0), 512),
    "photo_motorcycle": ("motorcycle", (0.0, 0.0, 1.0, 1.0), 512),
}


def write_examples(directory: str | Path, quality: int = 92) -> list[Path]:
    """Write the example photos (``examples/style_*.jpg``, ``photo_*.jpg``) from bundled images."""
    from PIL import Image as PILImage

    out = []
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name, (src, (y0, x0, y1, x1), long_side) in EXAMPLES.items():
        arr = (photo(src).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        h, w = arr.shape[:2]
        arr = arr[int(y0 * h):int(y1 * h), int(x0 * w):int(x1 * w)]
        im = PILImage.fromarray(arr)
        scale = long_side / max(im.size)
        if scale < 1:
            im = im.resize((round(im.size[0] * scale), round(im.size[1] * scale)), PILImage.LANCZOS)
        path = directory / f"{name}.jpg"
        im.save(path, quality=quality)
        out.append(path)
    return out
