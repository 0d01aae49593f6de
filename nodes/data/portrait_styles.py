"""Target domains for the procedural portraits: ``sketch`` and ``caricature`` renderings of a face.

Few-shot domain adaptation (Ojha et al., CVPR 2021) and dual-domain synthesis (Bazazian et al.,
CVPR-W 2022) adapt an FFHQ generator to sketches and caricatures. These two styles give the
procedural faces the same kind of target domains on a fresh machine. Each is a pure function of
the photo rendering (image + ``celebamask11`` labels) and of ``(seed, index)``, so item i of seed
s is the same identity in every style:

- ``sketch``: a pencil drawing on grey paper (R = G = B). A colour-dodge pencil pass of the
  photo's luminance (dark where the tone changes: part outlines), dark strokes along every label
  boundary and along the hair strands (the hair's local contrast, relative to its brightness so
  blond hair gets strands too), light tonal shading and paper grain. Labels are the photo's.
- ``caricature``: exaggerated proportions and saturated colours. A smooth inverse warp magnifies
  the eyes, nose and mouth about their label centroids (local bulges, up to ~1.6x at the centre)
  and makes the face narrower (x 0.86) and longer (x 1.10) about its centre; labels are warped
  with the same map (nearest). Then saturation x 1.7 and a little more contrast (HSV).

Images are H x W x 3 float32 in [0, 1]; labels H x W int64.
"""

from __future__ import annotations

import cv2
import numpy as np

STYLES = ("photo", "sketch", "caricature")

PAPER = 0.86
"""Grey level of the paper (the sketch background)."""

BULGE = {"eyes": ((4, 5), 0.26, 0.38), "nose": ((6,), 0.22, 0.28), "mouth": ((7, 8, 9), 0.30, 0.32)}
"""Part -> (labels, radius as a fraction of the face width, strength s): magnification 1/(1-s) at
the centre, falling smoothly to 1 at the radius."""

NARROW, LONGER, SATURATION = 0.86, 1.10, 1.7


def stylize(image: np.ndarray, labels: np.ndarray, style: str, seed: int, index: int
            ) -> tuple[np.ndarray, np.ndarray]:
    """(image, labels) of ``style`` for one portrait; ``photo`` returns the inputs unchanged.

    Raises ValueError for an unknown style.
    """
    if style == "photo":
        return image, labels
    rng = np.random.default_rng([int(seed), int(index), 7])
    if style == "sketch":
        return sketch(image, labels, rng), labels
    if style == "caricature":
        return caricature(image, labels, rng)
    raise ValueError(f"unknown portrait style {style!r} (styles: {', '.join(STYLES)})")


def _boundaries(labels: np.ndarray) -> np.ndarray:
    """1 where a pixel's 4-neighbourhood holds another label (H x W float32)."""
    lab = labels.astype(np.int32)
    edge = np.zeros(lab.shape, bool)
    edge[1:] |= lab[1:] != lab[:-1]
    edge[:-1] |= lab[1:] != lab[:-1]
    edge[:, 1:] |= lab[:, 1:] != lab[:, :-1]
    edge[:, :-1] |= lab[:, 1:] != lab[:, :-1]
    return edge.astype(np.float32)


def sketch(image: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Pencil drawing of ``image`` (H x W x 3 in [0, 1]) on grey paper; R = G = B."""
    size = image.shape[0]
    px = size / 256  # strokes and blurs scale with the frame
    grey = image @ np.array([0.299, 0.587, 0.114], np.float32)
    blur = cv2.GaussianBlur(1 - grey, (0, 0), max(0.6, 3.0 * px))
    dodge = np.clip(grey / np.maximum(1 - blur, 1e-3), 0, 1) ** 2.2  # dark where the tone changes
    edges = cv2.GaussianBlur(_boundaries(labels), (0, 0), max(0.35, 0.8 * px))
    hair = cv2.GaussianBlur((labels == 10).astype(np.float32), (0, 0), max(0.5, 1.5 * px))
    local = cv2.GaussianBlur(grey, (0, 0), max(0.7, 2.0 * px))
    strands = np.clip(np.abs(grey - local) / (local + 0.08) * 2.5, 0, 1) * hair  # relative: light hair too
    strokes = np.clip(np.maximum(edges * 1.6, strands), 0, 1) * 0.75
    shade = 0.82 + 0.18 * cv2.GaussianBlur(grey, (0, 0), max(1.0, 6 * px))
    grain = rng.normal(0, 0.018, (size, size)).astype(np.float32)
    grain = cv2.GaussianBlur(grain, (0, 0), 0.6) + rng.normal(0, 0.008, (size, size)).astype(np.float32)
    out = (PAPER + grain) * shade * (0.35 + 0.65 * dodge) * (1 - strokes)
    out = np.clip(out, 0, 1).astype(np.float32)
    return np.repeat(out[..., None], 3, axis=2)


def _centre(labels: np.ndarray, ids: tuple[int, ...]) -> np.ndarray | None:
    ys, xs = np.nonzero(np.isin(labels, ids))
    return None if len(xs) == 0 else np.array([xs.mean(), ys.mean()], np.float32)


def _bulge(x: np.ndarray, y: np.ndarray, c: np.ndarray, radius: float, s: float) -> tuple[np.ndarray, np.ndarray]:
    """Inverse map of a magnifying bulge: output (x, y) -> source, fixed at and beyond ``radius``."""
    dx, dy = x - c[0], y - c[1]
    r2 = (dx * dx + dy * dy) / (radius * radius)
    f = 1 - s * np.clip(1 - r2, 0, 1) ** 2
    return c[0] + dx * f, c[1] + dy * f


def caricature(image: np.ndarray, labels: np.ndarray, rng: np.random.Generator
               ) -> tuple[np.ndarray, np.ndarray]:
    """Exaggerated, saturated version of a portrait and its warped labels (see module doc)."""
    size = image.shape[0]
    face = np.isin(labels, tuple(range(1, 10)))
    ys, xs = np.nonzero(face)
    if len(xs) == 0:  # no face drawn: only the colours change
        return _saturate(image), labels
    width = float(xs.max() - xs.min() + 1)
    cx, cy = float(xs.mean()), float(ys.mean())
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    # the global change is applied last, so its inverse comes first
    sx, sy = cx + (x - cx) / NARROW, cy + (y - cy) / LONGER
    for ids, rad, s in BULGE.values():
        jitter = rng.uniform(0.85, 1.15)  # how much each identity is exaggerated
        parts = [ids] if len(ids) != 2 else [(i,) for i in ids]  # each eye its own bulge
        for part in parts:
            c = _centre(labels, part)
            if c is not None:
                sx, sy = _bulge(sx, sy, c, rad * width, min(0.6, s * jitter))
    img = cv2.remap(image, sx, sy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
    lab = cv2.remap(labels.astype(np.uint8), sx, sy, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REFLECT101)
    return _saturate(img), lab.astype(np.int64)


def _saturate(image: np.ndarray) -> np.ndarray:
    hsv = cv2.cvtColor(np.ascontiguousarray(image, np.float32), cv2.COLOR_RGB2HSV)
    hsv[..., 1] = np.clip(hsv[..., 1] * SATURATION, 0, 1)
    hsv[..., 2] = np.clip(0.5 + (hsv[..., 2] - 0.5) * 1.15, 0, 1)
    return np.clip(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB), 0, 1).astype(np.float32)
