"""Drawing of one procedural bird from its CUB-style description (a ``BirdSpec``).

The silhouette comes only from the six shape groups (body plan, size, bill shape and length,
wing shape, tail shape); colours and patterns only paint inside it. Parts are polygons in a
bird frame (x forward, y up, unit = the bird's scale), rotated by the body plan's posture,
rasterised 4x supersampled with PIL and box-filtered, so the mask is soft at the edges (like
CUB's averaged segmentations). The colour-name -> RGB palette is our own choice (CUB has none).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image as PILImage
from PIL import ImageDraw

PALETTE = {
    "blue": (60, 100, 205), "brown": (115, 75, 40), "iridescent": (35, 140, 135), "purple": (105, 55, 150),
    "rufous": (185, 85, 40), "grey": (140, 140, 145), "yellow": (238, 205, 45), "olive": (120, 125, 50),
    "green": (55, 150, 60), "pink": (238, 150, 175), "orange": (242, 138, 35), "black": (22, 22, 25),
    "white": (242, 242, 236), "red": (205, 30, 30), "buff": (222, 192, 140),
}

# body plan -> (body length, body height, posture in degrees (0 level, 90 upright), head radius,
# neck length, leg length), in units of the bird's scale.
BODY = {
    "upright-perching_water-like": (0.56, 0.25, 45, 0.095, 0.12, 0.05),
    "chicken-like-marsh": (0.50, 0.32, 10, 0.100, 0.05, 0.15),
    "long-legged-like": (0.44, 0.21, 20, 0.080, 0.24, 0.34),
    "duck-like": (0.60, 0.27, 0, 0.110, 0.08, 0.03),
    "owl-like": (0.40, 0.36, 70, 0.165, 0.00, 0.05),
    "gull-like": (0.60, 0.24, 5, 0.100, 0.04, 0.10),
    "hummingbird-like": (0.34, 0.15, 25, 0.080, 0.02, 0.02),
    "pigeon-like": (0.50, 0.30, 15, 0.090, 0.05, 0.07),
    "tree-clinging-like": (0.44, 0.19, 75, 0.090, 0.04, 0.05),
    "hawk-like": (0.50, 0.30, 50, 0.120, 0.02, 0.08),
    "sandpiper-like": (0.45, 0.22, 0, 0.080, 0.05, 0.19),
    "upland-ground-like": (0.50, 0.33, 5, 0.100, 0.04, 0.10),
    "swallow-like": (0.46, 0.15, 10, 0.080, 0.00, 0.02),
    "perching-like": (0.45, 0.25, 30, 0.110, 0.02, 0.07),
}
SIZE_SCALE = {"very_small_(3_-_5_in)": 0.74, "small_(5_-_9_in)": 0.86, "medium_(9_-_16_in)": 0.98,
              "large_(16_-_32_in)": 1.1, "very_large_(32_-_72_in)": 1.2}
BILL_LEN = {"shorter_than_head": 0.7, "about_the_same_as_head": 1.15, "longer_than_head": 2.1}
# wing shape -> (length as a fraction of body length, half-width as a fraction of body height, tip)
WING = {"rounded-wings": (0.55, 0.42, "round"), "pointed-wings": (0.75, 0.34, "point"),
        "broad-wings": (0.65, 0.55, "round"), "tapered-wings": (0.70, 0.25, "point"),
        "long-wings": (1.05, 0.32, "point")}

SS = 4  # supersampling factor of the rasteriser


@dataclass
class BirdSpec:
    """One bird: a value of each shape group, colours per part (1-2 names), patterns, head pattern."""

    body: str
    size: str
    bill_shape: str
    bill_length: str
    wing_shape: str
    tail_shape: str
    colours: dict[str, list[str]] = field(default_factory=dict)
    """part -> colour names: crown forehead nape throat breast belly back wing upper_tail under_tail leg bill eye"""
    patterns: dict[str, str] = field(default_factory=dict)
    """breast back belly tail wing -> solid / spotted / striped / multi-colored"""
    head_pattern: str = "plain"


@dataclass
class Pose:
    """Per-item framing: centre (fraction of the side), scale jitter, extra tilt (degrees)."""

    cx: float = 0.5
    cy: float = 0.52
    scale: float = 1.0
    tilt: float = 0.0


def _ellipse(cx: float, cy: float, a: float, b: float, n: int = 40) -> np.ndarray:
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    return np.stack([cx + a * np.cos(t), cy + b * np.sin(t)], 1)


def _bill(shape: str, length: float, r: float) -> np.ndarray:
    """Bill polygon with its base at the origin, pointing +x; r = head radius."""
    L, h = length * r, 0.42 * r
    if shape == "cone":
        h = 0.62 * r
    elif shape in ("needle", "dagger"):
        h = 0.22 * r if shape == "needle" else 0.34 * r
    elif shape == "spatulate":
        return np.array([[0, h], [L * 0.9, h * 0.8], [L, 0], [L * 0.9, -h * 0.6], [0, -h * 0.7]])
    xs = np.linspace(0, L, 8)
    bend = {"curved_(up_or_down)": -0.35, "specialized": 0.3}.get(shape, 0.0) * L
    mid = bend * (xs / L) ** 2
    top = np.stack([xs, mid + h * (1 - xs / L)], 1)
    bot = np.stack([xs[::-1], mid[::-1] - 0.6 * h * (1 - xs[::-1] / L)], 1)
    pts = np.concatenate([top, bot])
    if shape in ("hooked", "hooked_seabird"):
        hook = np.array([[L, mid[-1]], [L * 0.95, mid[-1] - 0.45 * h], [L * 0.85, mid[-1] - 0.2 * h]])
        pts = np.concatenate([top, hook, bot[1:]])
        if shape == "hooked_seabird":
            pts[:, 1] *= 1.3
    return pts


def _tail(shape: str, length: float, width: float) -> np.ndarray:
    """Tail polygon attached at the origin, pointing -x."""
    L, w = length, width
    if shape == "forked_tail":
        return np.array([[0, w * 0.5], [-L, w * 0.9], [-L * 0.55, 0], [-L, -w * 0.9], [0, -w * 0.5]])
    if shape == "notched_tail":
        return np.array([[0, w * 0.5], [-L, w * 0.6], [-L * 0.85, 0], [-L, -w * 0.6], [0, -w * 0.5]])
    if shape == "fan-shaped_tail":
        return np.concatenate([[[0, w * 0.3]], _ellipse(-L * 0.6, 0, L * 0.45, w * 1.25, 16)[4:13], [[0, -w * 0.3]]])
    if shape == "pointed_tail":
        return np.array([[0, w * 0.5], [-L * 1.15, 0], [0, -w * 0.5]])
    if shape == "squared_tail":
        return np.array([[0, w * 0.5], [-L, w * 0.55], [-L, -w * 0.55], [0, -w * 0.5]])
    return np.concatenate([[[0, w * 0.5]], _ellipse(-L * 0.6, 0, L * 0.42, w * 0.6, 16)[5:12], [[0, -w * 0.5]]])


def _wing(shape: str, blen: float, bh: float) -> np.ndarray:
    """Folded wing lying along the back, shoulder at the origin, tip towards -x."""
    f, wf, tip = WING[shape]
    L, w = f * blen, wf * bh
    xs = np.linspace(0, -L, 12)
    prof = np.sqrt(np.clip(1 - (xs / L) ** 2, 0, 1)) if tip == "round" else (1 + xs / L) ** 0.8
    top = np.stack([xs, w * 0.35 * prof], 1)
    bot = np.stack([xs[::-1], -w * prof[::-1]], 1)
    return np.concatenate([top, bot])


def _rot(pts: np.ndarray, deg: float, origin: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    p = pts - origin
    return np.stack([p[:, 0] * c - p[:, 1] * s, p[:, 0] * s + p[:, 1] * c], 1) + origin


def geometry(spec: BirdSpec) -> dict[str, np.ndarray | float]:
    """Part polygons in the bird frame (unit = the bird's scale, before framing)."""
    blen, bh, posture, hr, neck, leg = BODY[spec.body]
    a, b = blen / 2, bh / 2
    head = (a * 0.78 + neck * 0.5, b * 0.55 + neck)
    bl = BILL_LEN[spec.bill_length]
    parts = {
        "tail": _tail(spec.tail_shape, 0.28 * blen + 0.06, 0.55 * bh) + (-a * 0.85, b * 0.05),
        "body": _ellipse(0, 0, a, b),
        "neck": np.array([[a * 0.45, b * 0.6], [head[0] - hr * 0.6, head[1]], [head[0] + hr * 0.5, head[1] - hr * 0.4],
                          [a * 0.9, -b * 0.1]]),
        "wing": _wing(spec.wing_shape, blen, bh) + (a * 0.45, b * 0.45),
        "head": _ellipse(head[0], head[1], hr, hr * 0.95, 28),
        "bill": _bill(spec.bill_shape, bl, hr) + (head[0] + hr * 0.85, head[1] - hr * 0.15),
        "eye": _ellipse(head[0] + hr * 0.35, head[1] + hr * 0.2, hr * 0.22, hr * 0.22, 12),
    }
    tilt = posture * 0.6  # the body plan's posture, halved towards level so upright birds fit the frame
    out: dict[str, np.ndarray | float] = {k: _rot(v, tilt) for k, v in parts.items()}
    feet = _rot(np.array([[a * 0.15, -b * 0.9], [-a * 0.1, -b * 0.92]]), tilt)
    out["legs"] = np.concatenate([feet, feet - (0, leg + 0.02)])
    out["head_centre"] = _rot(np.array([head]), tilt)[0]
    out["eye_centre"] = _rot(np.array([[head[0] + hr * 0.35, head[1] + hr * 0.2]]), tilt)[0]
    out["hr"], out["tilt"], out["a"], out["b"] = hr, tilt, a, b
    return out


def _raster(polys: list[np.ndarray], to_px, size: int, width: float = 0) -> np.ndarray:
    """Soft coverage (size x size, [0, 1]) of polygons (or of thick lines when width > 0)."""
    im = PILImage.new("L", (size * SS, size * SS), 0)
    d = ImageDraw.Draw(im)
    for p in polys:
        q = [tuple(map(float, xy)) for xy in to_px(p) * SS]
        if width:
            d.line(q, fill=255, width=max(1, int(width * SS)))
        else:
            d.polygon(q, fill=255)
    return np.asarray(im.resize((size, size), PILImage.BOX), dtype=np.float32) / 255.0


def coverage(spec: BirdSpec, pose: Pose, size: int) -> tuple[dict[str, np.ndarray], dict]:
    """Soft coverage of each part at ``size`` px, and the geometry mapped to pixels."""
    g = geometry(spec)
    s = SIZE_SCALE[spec.size] * pose.scale * size

    def to_px(p: np.ndarray) -> np.ndarray:
        p = _rot(p, pose.tilt)
        return np.stack([pose.cx * size + p[:, 0] * s, pose.cy * size - p[:, 1] * s], 1)

    cov = {k: _raster([g[k]], to_px, size) for k in ("tail", "body", "neck", "wing", "head", "bill", "eye")}
    legs = g["legs"]
    cov["legs"] = _raster([legs[[0, 2]], legs[[1, 3]]], to_px, size, width=max(1.0, 0.018 * s))
    cov["body"] = np.maximum(cov["body"], cov["neck"])
    hc = to_px(np.array([g["head_centre"]]))[0]
    body_c = to_px(np.zeros((1, 2)))[0]
    info = {"s": s, "hr": g["hr"] * s, "head": hc, "body": body_c, "tilt": g["tilt"] + pose.tilt,
            "eye_px": to_px(np.array([g["eye_centre"]]))[0],
            "a": g["a"] * s, "b": g["b"] * s}
    return cov, info


def silhouette(cov: dict[str, np.ndarray]) -> np.ndarray:
    """The bird's soft mask: union (max) of every part's coverage."""
    m = np.zeros_like(cov["body"])
    for k in ("tail", "legs", "body", "wing", "head", "bill"):
        m = np.maximum(m, cov[k])
    return m
