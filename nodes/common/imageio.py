"""Image/label-map file helpers shared by io nodes and dataset code (no engine imports)."""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image as PILImage
from PIL import ImageOps, UnidentifiedImageError

from nodegraph.fsutil import make_parent, publish
from nodegraph.node import NodeWarning
from nodegraph.types import LabelSet


class ImageFileError(ValueError):
    pass


def open_image(path: str | os.PathLike[str]) -> PILImage.Image:
    """Open and decode an image file; ImageFileError naming the path and what is wrong."""
    if os.path.isdir(path):
        raise ImageFileError(f"{path} is a folder, not an image file")
    try:
        img = PILImage.open(path)
        img.load()
    except FileNotFoundError:
        raise ImageFileError(f"file not found: {path}") from None
    except PermissionError:
        raise ImageFileError(f"{path}: permission denied") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ImageFileError(f"cannot read {path} as an image ({type(e).__name__}: {e}); "
                             "is it a valid PNG/JPEG file?") from None
    return img


# Bit depth of the integer modes Pillow decodes (the values span 0 .. 2^bits - 1). Pillow reads a
# 16-bit PNG as "I;16" (or "I" in older versions); "I" otherwise holds 32-bit TIFF data.
_INT_MODES = {"I;16": 16, "I;16L": 16, "I;16B": 16, "I;16N": 16, "I": 16}


def _grey_to_unit(img: PILImage.Image) -> np.ndarray:
    """A single-channel integer or float image -> H x W float32 in [0, 1] (as a viewer shows it)."""
    arr = np.asarray(img)
    if img.mode == "F":
        arr = arr.astype(np.float32)
        lo, hi = (float(np.nanmin(arr)), float(np.nanmax(arr))) if arr.size else (0.0, 0.0)
        if not np.isfinite(arr).all() or lo < 0.0 or hi > 1.0:
            raise ImageFileError(f"a float image with values in [{lo:g}, {hi:g}]: no display range is "
                                 "defined for it (expected [0, 1]); rescale it and save a PNG")
        return arr
    arr = arr.astype(np.int64)
    top = (1 << _INT_MODES[img.mode]) - 1
    if arr.size and (arr.min() < 0 or arr.max() > top):
        raise ImageFileError(f"a {img.mode} image with values {arr.min()}..{arr.max()} beyond 16 bits: "
                             "no display range is defined for it; save it as 8- or 16-bit PNG")
    return (arr / top).astype(np.float32)


def pil_to_tensor(img: PILImage.Image) -> torch.Tensor:
    """A decoded image -> float32 1 x 3 x H x W in [0, 1], as an image viewer shows it.

    Every mode Pillow reads is scaled by its own bit depth: 8-bit modes by 255, 16-bit grey
    (``I;16*``, ``I``) by 65535, float (``F``) taken as is when within [0, 1]; grey is repeated
    into RGB; palette, CMYK, YCbCr, LAB, HSV and bilevel images are converted to RGB; alpha
    (palette transparency too) is composited on white. The EXIF orientation is applied, as
    viewers do. ImageFileError for what has no display range (float outside [0, 1], 32-bit
    integers beyond 16 bits).
    """
    img = ImageOps.exif_transpose(img) or img
    if img.mode in _INT_MODES or img.mode == "F":
        arr = np.repeat(_grey_to_unit(img)[..., None], 3, axis=2)
    else:
        if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (img.mode == "P" and "transparency" in img.info):
            rgba = img.convert("RGBA")
            bg = PILImage.new("RGBA", rgba.size, (255, 255, 255, 255))
            img = PILImage.alpha_composite(bg, rgba)
        arr = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).unsqueeze(0)


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
    make_parent(path)
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


def decode_label_png(img: PILImage.Image, label_set: LabelSet, fmt: str = "auto", tolerance: float = 0.0,
                     warn: Callable[[str], None] | None = None) -> np.ndarray:
    """A label PNG -> H x W int64 ids of ``label_set``.

    ``index``: the pixel values are the ids (grey, palette indices, 16-bit). ``color``: each
    pixel's RGB must be a palette colour (within ``tolerance``, Euclidean in 0..255 -- useful for
    maps painted with anti-aliasing or saved as JPEG). ``auto`` decides from the file so that
    files that look the same give the same labels: a palette PNG whose colours are the label
    set's colours is read by colour (an editor may store them in its own palette order), any
    other palette or grey image by index; an RGB image by colour, unless every pixel is grey and
    the greys are not palette colours (an index map saved as RGB), read by index.
    Index maps: 255, the usual "unlabelled" value, becomes the set's don't-care id when it has
    one. ``warn`` (default: ``warnings.warn`` with ``NodeWarning``) receives a sentence whenever a
    decision was not the obvious one or the values look like another convention.
    """
    say = warn or (lambda m: warnings.warn(m, NodeWarning, stacklevel=3))
    guessed = fmt == "auto"
    if guessed:
        fmt = _auto_format(img, label_set, tolerance, say)
    if fmt == "index":
        ids = _index_ids(_index_plane(img), label_set, say)
        if guessed:
            _other_convention(ids, label_set, say)
        return ids
    if not label_set.palette:
        raise ImageFileError(f"label set {label_set.name!r} has no palette; pass an index PNG")
    return _colour_ids(np.asarray(img.convert("RGB")).astype(np.int32), label_set, tolerance)


_INDEX_MODES = ("L", "I", "I;16", "I;16L", "I;16B", "I;16N", "1")


def _auto_format(img: PILImage.Image, label_set: LabelSet, tolerance: float, say: Callable[[str], None]) -> str:
    if img.mode in _INDEX_MODES or img.mode == "LA":
        return "index"
    pal = np.array(label_set.palette, dtype=np.int32) if label_set.palette else None
    if img.mode in ("P", "PA"):
        used = np.unique(np.asarray(img))
        colours = np.array(img.getpalette() or [], dtype=np.int32).reshape(-1, 3)
        if pal is None or len(colours) <= int(used.max()):
            return "index"
        match = _palette_distance(colours[used], pal) <= max(tolerance, 0.5)
        if match.all():
            if not all(k < len(pal) and (colours[k] == pal[k]).all() for k in used):
                say(f"palette PNG: its colours are the {label_set.name!r} palette in another order, so it "
                    "was read by colour (set format: index to read the palette indices as ids)")
            return "color"
        if match.any():
            say(f"palette PNG: {int(match.sum())} of its {len(used)} colours are {label_set.name!r} colours, "
                "the others are not, so it was read by palette index; if it was painted in the label "
                "set's colours, set format: color (and raise tolerance)")
        return "index"
    rgb = np.asarray(img.convert("RGB")).astype(np.int32)
    grey = (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()
    if grey and (pal is None or not (_palette_distance(np.unique(rgb.reshape(-1, 3), axis=0), pal)
                                     <= max(tolerance, 0.5)).all()):
        say("an RGB image whose pixels are all grey and not palette colours: read as an index map "
            "(pixel value = id); set format to choose")
        return "index"
    return "color"


def _palette_distance(colours: np.ndarray, pal: np.ndarray) -> np.ndarray:
    """Distance of each colour to its nearest palette colour (0..255 units)."""
    d2 = ((colours[:, None, :] - pal[None, :, :]) ** 2).sum(-1)
    return np.sqrt(d2.min(1))


def _index_plane(img: PILImage.Image) -> np.ndarray:
    if img.mode in ("P", "PA", "LA"):
        return np.asarray(img.getchannel(0)).astype(np.int64)
    if img.mode in _INDEX_MODES:
        return np.asarray(img).astype(np.int64)
    return np.asarray(img.convert("L")).astype(np.int64)


def _index_ids(ids: np.ndarray, label_set: LabelSet, say: Callable[[str], None]) -> np.ndarray:
    n = len(label_set)
    dontcare = label_set.ignore_index
    if dontcare is not None and dontcare >= n and (ids == 255).any() and dontcare != 255:
        say(f"{int((ids == 255).sum())} pixels have value 255, the usual 'unlabelled' value (COCO-Stuff, "
            f"Cityscapes trainIds, PASCAL VOC): read as don't care (id {dontcare} of {label_set.name!r})")
        ids = np.where(ids == 255, dontcare, ids)
    bad = (ids < 0) | (ids >= n)
    if dontcare is not None:
        bad &= ids != dontcare
    if bad.any():
        vals = np.unique(ids[bad])[:8].tolist()
        raise ImageFileError(
            f"index label map has ids {vals} outside 0..{n - 1} of label set {label_set.name!r} "
            f"({int(bad.sum())} pixels); is this map for another label set, or 1-based?")
    return ids


def _other_convention(ids: np.ndarray, label_set: LabelSet, say: Callable[[str], None]) -> None:
    """Warn when an index map read as ids looks like a dataset's published convention instead."""
    n = len(label_set)
    if label_set.name == "ade20k" and ids.size and (ids == 0).any() and (ids == n).any():
        say("values 0..150 with both 0 and 150 present: this looks like an ADEChallenge annotation PNG "
            "(class k stored as k + 1, 0 = unlabelled), read here as ids; if so, set format: dataset")


def _colour_ids(rgb: np.ndarray, label_set: LabelSet, tolerance: float) -> np.ndarray:
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
