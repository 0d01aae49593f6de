"""Colouring of a procedural bird inside its silhouette, and the varied backgrounds.

Each CUB colour group paints one region: the body splits into back (above the body axis),
breast (front half below it) and belly (rear half below it); the head into crown, forehead, nape
and throat; wing, upper / under tail, legs, bill and eye are their own parts. A part with a
non-solid pattern carries a second colour (CUB labels are multi-hot within a group): spotted =
dots, striped = bars across the part, multi-colored = low-frequency blobs. Head patterns
(eyering, eyebrow, eyeline, masked, malar, crested, ...) are drawn around the eye and crown.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image as PILImage

from .bird_render import PALETTE, BirdSpec


def _rgb(name: str) -> np.ndarray:
    return np.asarray(PALETTE[name], dtype=np.float32) / 255.0


def value_noise(rng: np.random.Generator, size: int, grid: int, octaves: int = 3) -> np.ndarray:
    """Smooth noise in about [0, 1]: bicubic-upsampled random grids, finer octaves weaker."""
    out, amp, total = np.zeros((size, size), np.float32), 1.0, 0.0
    for o in range(octaves):
        g = max(2, grid * 2 ** o)
        im = PILImage.fromarray((rng.random((g, g)) * 255).astype(np.uint8))
        out += amp * np.asarray(im.resize((size, size), PILImage.BICUBIC), np.float32) / 255.0
        total += amp
        amp *= 0.5
    return out / total


BACKGROUNDS = ("sky", "foliage", "water", "ground", "studio")


def background(rng: np.random.Generator, size: int) -> np.ndarray:
    """H x W x 3 in [0, 1]: sky with clouds, blurred foliage, rippled water, bark / soil, or a
    plain studio gradient, each with a random tint (birds must not be found by colour alone)."""
    kind = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    yy = np.linspace(0, 1, size, dtype=np.float32)[:, None, None]
    n = value_noise(rng, size, int(rng.integers(2, 5)))[..., None]
    tint = rng.uniform(-0.08, 0.08, 3).astype(np.float32)
    if kind == "sky":
        top, bottom = np.array([0.35, 0.55, 0.85]), np.array([0.75, 0.85, 0.95])
        img = top + (bottom - top) * yy
        img = img + np.clip(n - 0.55, 0, 1) * 1.6 * (1 - img)
    elif kind == "foliage":
        dark, light = np.array([0.12, 0.28, 0.10]), np.array([0.45, 0.65, 0.30])
        img = dark + (light - dark) * n
    elif kind == "water":
        ripple = 0.5 + 0.5 * np.sin(yy * size * rng.uniform(0.4, 0.9) + n * 6)
        img = np.array([0.20, 0.38, 0.55]) + 0.12 * ripple
    elif kind == "ground":
        img = np.array([0.36, 0.27, 0.18]) + (np.array([0.62, 0.52, 0.38]) - 0.36) * n
    else:
        c = rng.uniform(0.3, 0.9, 3)
        img = c * (1.05 - 0.25 * yy) + 0.04 * n
    return np.clip(img + tint, 0, 1).astype(np.float32)


def pattern_field(kind: str, u: np.ndarray, v: np.ndarray, period: float, rng: np.random.Generator) -> np.ndarray:
    """Where a part shows its second colour (0..1) for a CUB pattern; u, v in pixels."""
    if kind == "spotted":
        ph = rng.uniform(0, 2 * math.pi, 2)
        return ((np.sin(u * 2 * math.pi / period + ph[0]) * np.sin(v * 2 * math.pi / period + ph[1])) > 0.55) * 1.0
    if kind == "striped":
        return (np.sin(u * 2 * math.pi / (1.2 * period) + rng.uniform(0, 6.3)) > 0.2) * 1.0
    if kind == "multi-colored":
        size = u.shape[0]
        return (value_noise(rng, size, 3, 2) > 0.5) * 1.0
    return np.zeros_like(u)


def _local(xx: np.ndarray, yy: np.ndarray, centre: np.ndarray, tilt: float) -> tuple[np.ndarray, np.ndarray]:
    """Pixel grid -> (forward, up) coordinates around ``centre`` in a frame rotated by ``tilt``."""
    dx, dy = xx - centre[0], -(yy - centre[1])
    c, s = math.cos(math.radians(tilt)), math.sin(math.radians(tilt))
    return dx * c + dy * s, -dx * s + dy * c


def _two(spec: BirdSpec, part: str, pat: str | None, u: np.ndarray, v: np.ndarray, period: float,
         rng: np.random.Generator) -> np.ndarray:
    cols = spec.colours[part]
    out = np.broadcast_to(_rgb(cols[0]), u.shape + (3,)).copy()
    if pat and pat != "solid" and len(cols) > 1:
        m = pattern_field(pat, u, v, period, rng)[..., None]
        out = out * (1 - m) + _rgb(cols[1]) * m
    if "iridescent" in cols:
        out = out * (0.85 + 0.3 * (0.5 + 0.5 * np.sin((u + v) / max(period, 1.0))))[..., None]
    return out


def _body_field(spec: BirdSpec, info: dict, xx, yy, rng) -> np.ndarray:
    u, v = _local(xx, yy, info["body"], info["tilt"])
    a, b, p = info["a"], info["b"], max(2.5, info["s"] * 0.06)
    out = _two(spec, "back", spec.patterns.get("back"), u, v, p, rng)
    below = (v <= 0.1 * b)[..., None]
    breast = _two(spec, "breast", spec.patterns.get("breast"), u, v, p, rng)
    belly = _two(spec, "belly", spec.patterns.get("belly"), u, v, p, rng)
    out = np.where(below, np.where((u > -0.05 * a)[..., None], breast, belly), out)
    shade = np.clip(1.0 - 0.22 * ((u / a) ** 2 + (v / b) ** 2) + 0.1 * v / b, 0.6, 1.1)
    return out * shade[..., None]


def _contrast(name: str) -> str:
    return "white" if sum(PALETTE[name]) < 360 else "black"


def _head_field(spec: BirdSpec, info: dict, xx, yy, rng) -> np.ndarray:
    hu, hv = _local(xx, yy, info["head"], info["tilt"])
    r = info["hr"]
    col = lambda part: _rgb(spec.colours[part][0])  # noqa: E731
    out = np.where((hv >= -0.1 * r)[..., None], col("crown"), col("throat"))
    out = np.where(((hu < -0.35 * r) & (hv > -0.4 * r))[..., None], col("nape"), out)
    out = np.where(((hv > 0.0) & (hu > 0.45 * r))[..., None], col("forehead"), out)
    ex, ey = 0.35 * r, 0.2 * r
    d_eye = np.hypot(hu - ex, hv - ey)
    hp, cc = spec.head_pattern, _contrast(spec.colours["crown"][0])
    bands = {
        "eyering": (d_eye > 0.2 * r) & (d_eye < 0.36 * r),
        "eyebrow": (np.abs(hv - 0.5 * r) < 0.1 * r) & (hu > -0.3 * r),
        "eyeline": (np.abs(hv - ey) < 0.09 * r) & (hu > -0.6 * r),
        "masked": d_eye < 0.5 * r,
        "malar": (np.abs(hv + 0.25 * r + 0.3 * (hu - ex)) < 0.09 * r) & (hu > -0.3 * r) & (hu < 0.7 * r),
        "crested": (hv > 0.55 * r) & (np.abs(hu + 0.1 * r) < 0.35 * r),
        "unique_pattern": np.hypot(hu + 0.1 * r, hv + 0.35 * r) < 0.3 * r,
    }
    if hp in bands:
        c = {"eyering": "white", "eyebrow": cc, "eyeline": "black", "masked": "black", "malar": "black",
             "crested": cc, "unique_pattern": cc}[hp]
        out = np.where(bands[hp][..., None], _rgb(c), out)
    elif hp in ("spotted", "striped"):
        m = pattern_field(hp, hu, hv, max(2.0, r * 0.5), rng) * (hv > 0)
        out = out * (1 - m[..., None]) + _rgb(cc) * m[..., None]
    shade = np.clip(1.05 - 0.2 * (hu ** 2 + hv ** 2) / (r * r) + 0.1 * hv / r, 0.65, 1.1)
    return out * shade[..., None]


def paint(spec: BirdSpec, cov: dict[str, np.ndarray], info: dict, size: int,
          rng: np.random.Generator) -> np.ndarray:
    """The bird composited over a background: H x W x 3 in [0, 1]."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    img = background(rng, size)
    u, v = _local(xx, yy, info["body"], info["tilt"])
    p = max(2.5, info["s"] * 0.06)
    upper_tail = _two(spec, "upper_tail", spec.patterns.get("tail"), u, v, p, rng)
    tail = np.where((v > 0.05 * info["b"])[..., None], upper_tail, _two(spec, "under_tail", None, u, v, p, rng))
    wing = _two(spec, "wing", spec.patterns.get("wing"), u, v, p, rng) * 0.92
    layers = [("tail", tail), ("legs", _rgb(spec.colours["leg"][0])),
              ("body", _body_field(spec, info, xx, yy, rng)), ("wing", wing),
              ("head", _head_field(spec, info, xx, yy, rng)), ("bill", _rgb(spec.colours["bill"][0])),
              ("eye", _rgb(spec.colours["eye"][0]))]
    for part, colour in layers:
        c = cov[part][..., None]
        img = img * (1 - c) + colour * c
    pupil = np.hypot(xx - info["eye_px"][0], yy - info["eye_px"][1]) < max(0.6, info["hr"] * 0.1)
    img[pupil] = img[pupil] * 0.3
    img = img + rng.normal(0, 0.01, img.shape).astype(np.float32)  # sensor grain
    return np.clip(img, 0, 1).astype(np.float32)
