"""Image/label-map file helpers shared by io nodes and dataset code (no engine imports)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image as PILImage
from PIL import UnidentifiedImageError

from nodegraph.fsutil import publish
from nodegraph.types import LabelSet


class ImageFileError(ValueError):
    pass


def open_image(path: str | os.PathLike[str]) -> PILImage.Image:
    try:
        img = PILImage.open(path)
        img.load()
    except FileNotFoundError:
        raise ImageFileError(f"file not found: {path}") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ImageFileError(f"cannot read {path} as an image ({type(e).__name__}: {e}); "
                             "is it a valid PNG/JPEG file?") from None
    return img


def pil_to_tensor(img: PILImage.Image) -> torch.Tensor:
    """PIL image -> float32 1 x 3 x H x W in [0, 1]; grey/alpha/palette converted to RGB
    (alpha is composited on white)."""
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        bg = PILImage.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = PILImage.alpha_composite(bg, rgba)
    arr = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).unsqueeze(0)


def load_image(path: str | os.PathLike[str]) -> torch.Tensor:
    return pil_to_tensor(open_image(path))


def tensor_to_uint8(img: torch.Tensor) -> np.ndarray:
    """3 x H x W (or 1 x 3 x H x W) float in [0,1] -> H x W x 3 uint8 (rounded)."""
    if img.dim() == 4:
        img = img[0]
    arr = img.detach().float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
    return arr


def save_png_atomic(arr: np.ndarray | PILImage.Image, path: str | os.PathLike[str], **kw: object) -> Path:
    """Write an image through a temp file + rename, so a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = arr if isinstance(arr, PILImage.Image) else PILImage.fromarray(arr)
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".bmp": "BMP", ".webp": "WEBP",
           ".tif": "TIFF", ".tiff": "TIFF"}.get(path.suffix.lower())
    if fmt is None:
        raise ImageFileError(f"unsupported image extension {path.suffix!r} for {path} (use .png or .jpg)")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        img.save(tmp, format=fmt, **kw)
        publish(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def colorize(labels: torch.Tensor, label_set: LabelSet) -> np.ndarray:
    """H x W ids -> H x W x 3 uint8 in the label set's palette."""
    pal = np.array(label_set.palette or [(i * 37 % 256, i * 91 % 256, i * 173 % 256)
                                         for i in range(len(label_set))], dtype=np.uint8)
    ids = labels.detach().cpu().numpy().astype(np.int64)
    ids = np.clip(ids, 0, len(pal) - 1)
    return pal[ids]


def decode_label_png(img: PILImage.Image, label_set: LabelSet, fmt: str = "auto",
                     tolerance: float = 0.0) -> np.ndarray:
    """A label PNG -> H x W int64 ids of ``label_set``.

    ``index``: the pixel values are the ids (mode L / P / I). ``color``: each pixel's RGB must be
    a palette colour (within ``tolerance``, Euclidean in 0..255 — useful for maps painted with
    anti-aliasing or saved as JPEG). ``auto``: palette ('P') and grey images are index maps, RGB
    images are colour maps.
    """
    if fmt == "auto":
        fmt = "index" if img.mode in ("P", "L", "I", "I;16") else "color"
    n = len(label_set)
    if fmt == "index":
        ids = np.asarray(img if img.mode in ("P", "L", "I", "I;16") else img.convert("L")).astype(np.int64)
        bad = (ids < 0) | (ids >= n)
        if label_set.ignore_index is not None:
            bad &= ids != label_set.ignore_index
        if bad.any():
            vals = np.unique(ids[bad])[:8].tolist()
            raise ImageFileError(
                f"index label map has ids {vals} outside 0..{n - 1} of label set {label_set.name!r} "
                f"({int(bad.sum())} pixels); is this map for another label set?")
        return ids
    if not label_set.palette:
        raise ImageFileError(f"label set {label_set.name!r} has no palette; pass an index PNG")
    rgb = np.asarray(img.convert("RGB")).astype(np.int32)
    pal = np.array(label_set.palette, dtype=np.int32)
    flat = rgb.reshape(-1, 3)
    colours, inverse = np.unique(flat, axis=0, return_inverse=True)
    d2 = ((colours[:, None, :] - pal[None, :, :]) ** 2).sum(-1)
    nearest = d2.argmin(1)
    dist = np.sqrt(d2[np.arange(len(colours)), nearest])
    bad = dist > tolerance
    if bad.any():
        counts = np.bincount(inverse.ravel(), minlength=len(colours))
        worst = np.argsort(-counts * bad)[:5]
        examples = ", ".join(f"{tuple(colours[i].tolist())} x{counts[i]}" for i in worst if bad[i])
        raise ImageFileError(
            f"{int(counts[bad].sum())} pixels have colours that are not in the {label_set.name!r} palette "
            f"(e.g. {examples}); paint with the documented palette, raise params.tolerance, "
            "or pass an index PNG")
    return nearest[inverse.ravel()].reshape(rgb.shape[:2]).astype(np.int64)
