"""Procedural portraits with CelebAMask-HQ 11-label masks (``celebamask11``), drawn with OpenCV.

Each sample is an aligned frontal face in the canonical frame of mask-guided portrait editing
(eyes near (y, x) = (116, 96) / (116, 160), mouth near (184, 128) at 256 x 256), with a small random
similarity jitter. Everything varies per sample: face shape (oval / round / square jaw / pointed
chin), skin tone and shading, eye shape and iris colour, brows, nose, lip shape and colour,
open or closed mouth, hair colour and style (short, bob, long, bun, bald) with or without bangs,
optional beard (labelled skin, as in CelebAMask-HQ) and glasses (not labelled: CelebAMask-HQ's
eye_g is not painted into the 11-label map), neck and clothes (background, as in the 11-class
scheme) and a textured background.

Labels follow the published convention: 1 skin (ears and forehead included), 2/3 brows, 4/5
eyes, 6 nose, 7 upper lip, 8 inner mouth, 9 lower lip, 10 hair; "l" means image-left.
Image and labels are drawn from the same polygons: anti-aliased coverage >= 0.5 sets the label.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass

import cv2
import numpy as np

SHIFT = 4  # sub-pixel precision of cv2 polygon filling (coordinates x 16)
ONE = 1 << SHIFT

SKIN_TONES = np.array([[255, 224, 196], [241, 194, 167], [224, 172, 138], [198, 140, 106],
                       [160, 108, 74], [120, 78, 52], [88, 58, 40]], np.float32) / 255
HAIR_COLOURS = np.array([[20, 16, 14], [58, 38, 26], [98, 64, 38], [150, 100, 58], [214, 180, 120],
                         [170, 70, 34], [160, 160, 160], [235, 232, 220], [60, 70, 150], [190, 70, 130]],
                        np.float32) / 255
HAIR_P = np.array([0.22, 0.2, 0.15, 0.1, 0.1, 0.07, 0.06, 0.03, 0.035, 0.035])
HAIR_DISTRIBUTIONS = ("natural", "wide")
"""natural: HAIR_COLOURS at HAIR_P (mostly browns and black); wide: half of the faces one of the
ten colours equally often, half any hue (HSV: saturation 0.35-0.9, value 0.25-0.95)."""
IRIS_COLOURS = np.array([[60, 36, 20], [100, 64, 34], [130, 110, 50], [70, 110, 70], [70, 120, 180],
                         [120, 130, 140]], np.float32) / 255
LIP_COLOURS = np.array([[200, 110, 110], [190, 40, 50], [130, 30, 40], [190, 130, 120],
                        [120, 50, 90], [230, 110, 90]], np.float32) / 255


@dataclass
class Sample:
    image: np.ndarray  # H x W x 3 float32 in [0, 1]
    labels: np.ndarray  # H x W int64 (celebamask11)
    attrs: dict[str, object]


class Canvas:
    """An image and its label map, painted back to front with shared polygons."""

    def __init__(self, size: int, matrix: np.ndarray):
        self.size = size
        self.m = matrix  # 2 x 3: canonical 256-frame -> pixel coordinates
        self.img = np.zeros((size, size, 3), np.float32)
        self.lab = np.zeros((size, size), np.uint8)
        self.scale = float(math.hypot(matrix[0, 0], matrix[1, 0]))

    def pts(self, p: np.ndarray) -> np.ndarray:
        p = np.asarray(p, np.float64).reshape(-1, 2)
        q = p @ self.m[:, :2].T + self.m[:, 2]
        return np.round(q * ONE).astype(np.int32)

    def mask(self, polys: list[np.ndarray]) -> np.ndarray:
        out = np.zeros((self.size, self.size), np.uint8)
        for p in polys:  # one call per polygon: fillPoly would XOR overlapping polygons
            m = np.zeros_like(out)
            cv2.fillPoly(m, [self.pts(p)], 255, cv2.LINE_AA, SHIFT)
            np.maximum(out, m, out=out)
        return out.astype(np.float32) / 255

    def stroke(self, p: np.ndarray, width: float, closed: bool = False) -> np.ndarray:
        m = np.zeros((self.size, self.size), np.uint8)
        t = max(1, int(round(width * self.scale)))
        cv2.polylines(m, [self.pts(p)], closed, 255, t, cv2.LINE_AA, SHIFT)
        return m.astype(np.float32) / 255

    def paint(self, alpha: np.ndarray, colour: np.ndarray, label: int | None = None) -> None:
        a = alpha[..., None]
        self.img = self.img * (1 - a) + np.asarray(colour, np.float32) * a
        if label is not None:
            self.lab[alpha >= 0.5] = label


def ellipse(cx: float, cy: float, ax: float, ay: float, n: int = 48, t0: float = 0.0,
            t1: float = 2 * math.pi) -> np.ndarray:
    t = np.linspace(t0, t1, n, endpoint=False)
    return np.stack([cx + ax * np.cos(t), cy + ay * np.sin(t)], 1)


def smooth_noise(rng: np.random.Generator, size: int, cells: int, amp: float) -> np.ndarray:
    """Low-frequency noise field (H x W) in [-amp, amp]."""
    g = rng.uniform(-1, 1, (cells, cells)).astype(np.float32)
    return cv2.resize(g, (size, size), interpolation=cv2.INTER_CUBIC) * amp


def mix(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    return (1 - t) * a + t * b


def pick(rng: np.random.Generator, table: np.ndarray, p: np.ndarray | None = None,
         jitter: float = 0.04) -> np.ndarray:
    c = table[rng.choice(len(table), p=p)]
    return np.clip(c + rng.normal(0, jitter, 3), 0, 1).astype(np.float32)


def face_outline(cx: float, top: float, cheek: float, chin: float, a: float, k: float,
                 taper: float) -> np.ndarray:
    """Face oval: an elliptic crown, then a jaw whose squareness is ``k`` (2 = ellipse)."""
    upper = ellipse(cx, cheek, a, cheek - top, 40, math.pi, 2 * math.pi)
    s = np.linspace(0, 1, 40)
    half = a * (1 - s ** k) ** (1 / k) * (1 - taper * s) + 0.12 * a * taper * s
    right = np.stack([cx + half, cheek + s * (chin - cheek)], 1)
    left = np.stack([cx - half[::-1], cheek + s[::-1] * (chin - cheek)], 1)
    return np.concatenate([upper, right, left])


def textured(rng: np.random.Generator, cv: Canvas, base: np.ndarray, n: int, spread: float,
             width: float, box: tuple[float, float, float, float], vertical: bool = True) -> np.ndarray:
    """A full-frame layer of ``base`` colour with ``n`` random strands (hair, beard)."""
    layer = np.empty((cv.size, cv.size, 3), np.float32)
    layer[:] = base
    x0, y0, x1, y1 = box
    for _ in range(n):
        tone = np.clip(base * rng.uniform(1 - spread, 1 + spread) + rng.normal(0, 0.02, 3), 0, 1)
        x, y = rng.uniform(x0, x1), rng.uniform(y0, y1)
        ang = rng.normal(math.pi / 2 if vertical else 0, 0.5)
        ln = rng.uniform(10, 40)
        bend = rng.normal(0, 6)
        t = np.linspace(0, 1, 6)[:, None]
        p = np.concatenate([x + t * ln * math.cos(ang) + bend * t ** 2,
                            y + t * ln * math.sin(ang)], 1)
        cv2.polylines(layer, [cv.pts(p)], False, tone.tolist(), max(1, int(width * cv.scale)),
                      cv2.LINE_AA, SHIFT)
    return layer


def _background(rng: np.random.Generator, cv: Canvas) -> None:
    s = cv.size
    c0, c1 = rng.uniform(0.05, 0.95, 3), rng.uniform(0.05, 0.95, 3)
    ang = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) / s
    t = np.clip(0.5 + (xx - 0.5) * math.cos(ang) + (yy - 0.5) * math.sin(ang), 0, 1)[..., None]
    cv.img[:] = mix(c0, c1, t)
    for _ in range(rng.integers(0, 6)):  # out-of-focus blobs and panels
        col = rng.uniform(0, 1, 3)
        if rng.random() < 0.5:
            poly = ellipse(rng.uniform(0, 256), rng.uniform(0, 256), rng.uniform(10, 60), rng.uniform(10, 60))
        else:
            x, y, w, h = rng.uniform(-20, 256, 2).tolist() + rng.uniform(20, 120, 2).tolist()
            poly = np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]])
        a = cv2.GaussianBlur(cv.mask([poly]), (0, 0), 2 + 4 * rng.random())
        cv.paint(a * rng.uniform(0.3, 0.9), col)
    cv.img += smooth_noise(rng, s, 12, 0.04)[..., None]


def _hair_shapes(rng: np.random.Generator, f: dict) -> tuple[list, list, str, str]:
    """(back polygons, front polygons, style, bangs) in the canonical frame."""
    cx, a, top, cheek, chin = f["cx"], f["a"], f["top"], f["cheek"], f["chin"]
    style = rng.choice(["short", "bob", "long", "bun", "bald"], p=[0.3, 0.2, 0.3, 0.1, 0.1])
    bangs = "none" if style == "bald" else rng.choice(["none", "full", "side"], p=[0.5, 0.25, 0.25])
    vol = rng.uniform(6, 18)
    hairline = top + rng.uniform(8, 22)
    crown = ellipse(cx, cheek, a + vol, cheek - top + vol + rng.uniform(0, 10), 40, math.pi, 2 * math.pi)
    back: list[np.ndarray] = []
    front: list[np.ndarray] = []
    if style == "bald":
        if rng.random() < 0.5:  # a fringe of hair around the sides only
            for side in (-1, 1):
                back.append(ellipse(cx + side * (a + 2), cheek - 5, 8, 22, 24))
        return back, front, str(style), str(bangs)
    bottom = {"short": cheek + rng.uniform(-5, 15), "bob": chin - rng.uniform(-5, 20),
              "long": 256 + 20, "bun": cheek + rng.uniform(-10, 5)}[style]
    width = a + vol + (rng.uniform(4, 20) if style in ("long", "bob") else 0)
    back.append(np.concatenate([crown, [[cx + width, bottom], [cx - width, bottom]]]))
    if style == "bun":
        back.append(ellipse(cx + rng.uniform(-10, 10), top - vol - 8, rng.uniform(16, 24), rng.uniform(12, 18)))
    # front cap: crown minus the face below the hairline (a curved hairline)
    xs = np.linspace(cx + a + 2, cx - a - 2, 30)
    u = (xs - cx) / (a + 2)
    line = hairline + 10 * u ** 2 + rng.uniform(10, 26) * u ** 6
    side_y = cheek - rng.uniform(0, 20)
    cap = np.concatenate([crown, [[cx + a + vol, side_y], [cx + a + 1, side_y]], np.stack([xs, line], 1),
                          [[cx - a - 1, side_y], [cx - a - vol, side_y]]])
    front.append(cap)
    brow_y = f["brow_y"]
    if bangs == "full":
        low = brow_y - rng.uniform(3, 12)
        xs2 = np.linspace(cx + a - 2, cx - a + 2, 16)
        zig = low + rng.uniform(-3, 3, len(xs2))
        front.append(np.concatenate([[[cx + a, hairline - 5]], np.stack([xs2, zig], 1), [[cx - a, hairline - 5]]]))
    elif bangs == "side":
        s = rng.choice([-1, 1])
        low = brow_y - rng.uniform(0, 8)
        front.append(np.array([[cx - s * a, hairline - 6], [cx + s * (a + 2), hairline - 6],
                               [cx + s * (a + 1), low + 6], [cx + s * a * 0.2, low - 4],
                               [cx - s * a * 0.6, hairline + 6]]))
    return back, front, str(style), str(bangs)


def _eye(cv: Canvas, rng: np.random.Generator, ex: float, ey: float, hw: float, hu: float,
         hl: float, tilt: float, iris: np.ndarray, label: int) -> None:
    u = np.linspace(-1, 1, 21)
    upper = np.stack([ex + u * hw, ey - hu * (1 - u ** 2) + tilt * u], 1)
    lower = np.stack([ex + u[::-1] * hw, ey + hl * (1 - u[::-1] ** 2) + tilt * u[::-1]], 1)
    almond = np.concatenate([upper, lower[1:-1]])
    m = cv.mask([almond])
    cv.paint(m, np.array([0.93, 0.91, 0.88], np.float32) * rng.uniform(0.85, 1.0), label)
    r = 0.95 * (hu + hl) / 2 + rng.uniform(0, 1.5)
    ix = ex + rng.normal(0, 1.2)
    iris_m = cv.mask([ellipse(ix, ey, r, r, 32)]) * m
    cv.paint(iris_m, iris)
    cv.paint(cv.mask([ellipse(ix, ey, r * 0.45, r * 0.45, 24)]) * m, np.array([0.04, 0.03, 0.03]))
    cv.paint(cv.mask([ellipse(ix - r * 0.3, ey - r * 0.3, 1.2, 1.2, 12)]) * m, np.array([1.0, 1.0, 1.0]))
    cv.paint(cv.stroke(upper, 1.6), np.array([0.08, 0.06, 0.06]))  # lash line, stays on the eye label


def _brow(cv: Canvas, rng: np.random.Generator, inner: float, outer: float, y: float, arch: float,
          thick: float, colour: np.ndarray, label: int) -> None:
    t = np.linspace(0, 1, 16)
    xs = inner + (outer - inner) * t
    mid = y - arch * np.sin(np.pi * (0.2 + 0.8 * t))
    th = thick * (1.0 - 0.55 * t)
    poly = np.concatenate([np.stack([xs, mid - th / 2], 1), np.stack([xs[::-1], (mid + th / 2)[::-1]], 1)])
    cv.paint(cv.mask([poly]), colour, label)


def _mouth(cv: Canvas, rng: np.random.Generator, mx: float, my: float, hw: float, lip: np.ndarray) -> dict:
    up_t, lo_t = rng.uniform(4, 8), rng.uniform(5, 10)
    open_h = rng.uniform(3, 11) if rng.random() < 0.35 else 0.0
    smile = rng.uniform(-2, 4)
    u = np.linspace(-1, 1, 25)
    line_up = np.stack([mx + u * hw, my - open_h / 2 * (1 - u ** 2) - smile * u ** 2], 1)
    line_lo = np.stack([mx + u * hw, my + open_h / 2 * (1 - u ** 2) - smile * u ** 2], 1)
    bow = 1.0 - 0.35 * np.exp(-(u / 0.18) ** 2)  # cupid's bow dip at the centre
    base = my - smile * u ** 2
    gape = open_h / 2 * (1 - u ** 2)
    upper_top = np.stack([mx + u * hw, base - up_t * (1 - u ** 2) ** 0.7 * bow - gape], 1)
    lower_bot = np.stack([mx + u * hw, base + lo_t * (1 - u ** 2) ** 0.8 + gape], 1)
    cv.paint(cv.mask([np.concatenate([upper_top, line_up[::-1]])]), lip * 0.9, 7)
    cv.paint(cv.mask([np.concatenate([line_lo, lower_bot[::-1]])]), lip, 9)
    shine = (line_lo[8:17] + lower_bot[8:17]) / 2  # a soft highlight on the lower lip
    cv.paint(cv.stroke(shine, 1.2) * 0.25, np.array([1.0, 1.0, 1.0]))
    if open_h > 0:
        inner = np.concatenate([line_up, line_lo[::-1]])
        m = cv.mask([inner])
        cv.paint(m, np.array([0.25, 0.05, 0.07]), 8)
        if rng.random() < 0.7:  # teeth band under the upper lip
            teeth = np.concatenate([line_up, line_up[::-1] + [0, min(open_h * 0.5, 4)]])
            cv.paint(cv.mask([teeth]) * m, np.array([0.92, 0.9, 0.84]))
    else:
        cv.paint(cv.stroke(line_up, 1.0), lip * 0.45, 8 if rng.random() < 0.5 else None)
    return {"open": open_h}


def hair_colour(rng: np.random.Generator, seed: int, index: int, hair: str = "natural") -> np.ndarray:
    """The hair's base colour (RGB in [0, 1]) from ``HAIR_DISTRIBUTIONS[hair]``.

    The natural draw always consumes ``rng``, and the wide one comes from its own stream, so a
    face has the same shape, skin, eyes and clothes under both distributions: only its hair
    (and the brows, which follow it) changes colour.
    """
    natural = pick(rng, HAIR_COLOURS, HAIR_P)
    if hair == "natural":
        return natural
    if hair != "wide":
        raise ValueError(f"hair must be one of {HAIR_DISTRIBUTIONS}, got {hair!r}")
    own = np.random.default_rng([int(seed), int(index), 7])
    if own.random() < 0.5:
        return pick(own, HAIR_COLOURS)
    rgb = colorsys.hsv_to_rgb(own.uniform(0, 1), own.uniform(0.35, 0.9), own.uniform(0.25, 0.95))
    return np.array(rgb, np.float32)


def render(seed: int, index: int, size: int = 256, p_beard: float = 0.15, p_glasses: float = 0.12,
           jitter: float = 1.0, hair: str = "natural") -> Sample:
    """Draw portrait ``index`` of the set ``seed`` at ``size`` x ``size`` (deterministic).

    ``hair`` picks the hair-colour distribution (:data:`HAIR_DISTRIBUTIONS`)."""
    rng = np.random.default_rng([int(seed), int(index), 6])
    ang = math.radians(rng.uniform(-6, 6) * jitter)
    sc = (1 + rng.uniform(-0.07, 0.05) * jitter) * size / 256
    tx, ty = rng.uniform(-6, 6, 2) * jitter
    c, s = math.cos(ang) * sc, math.sin(ang) * sc
    centre = np.array([128.0, 140.0])  # rotate about the face, not the frame
    off = np.array([size / 2, size * 140 / 256]) + np.array([tx, ty]) * size / 256
    m = np.array([[c, -s, 0.0], [s, c, 0.0]])
    m[:, 2] = off - m[:, :2] @ centre
    cv = Canvas(size, m)

    skin_t = rng.uniform(0, len(SKIN_TONES) - 1)
    k0 = int(skin_t)
    skin = np.clip(mix(SKIN_TONES[k0], SKIN_TONES[min(k0 + 1, len(SKIN_TONES) - 1)], skin_t - k0)
                   + rng.normal(0, 0.02, 3), 0, 1).astype(np.float32)
    hair = hair_colour(rng, seed, index, hair)
    iris = pick(rng, IRIS_COLOURS)
    lip = np.clip(mix(pick(rng, LIP_COLOURS), skin, rng.uniform(0.0, 0.35)), 0, 1).astype(np.float32)

    f = {"cx": 128 + rng.normal(0, 1.5), "a": rng.uniform(60, 76), "top": rng.uniform(52, 72),
         "cheek": rng.uniform(118, 132), "chin": rng.uniform(214, 230)}
    shape = rng.choice(["oval", "round", "square", "heart"])
    k, taper = {"oval": (2.0, 0.25), "round": (2.0, 0.05), "square": (3.2, 0.2), "heart": (1.6, 0.45)}[shape]
    ey = 116 + rng.normal(0, 2.5)
    gap = rng.uniform(28, 36)
    eye_hw, eye_hu, eye_hl = rng.uniform(12, 17), rng.uniform(5, 8), rng.uniform(3, 5.5)
    f["brow_y"] = ey - eye_hu - rng.uniform(8, 14)
    cx = f["cx"]

    _background(rng, cv)
    back, front, style, bangs = _hair_shapes(rng, f)
    hair_box = (cx - 120, f["top"] - 60, cx + 120, 256)
    hair_layer = textured(rng, cv, hair, 140, 0.35, 1.2, hair_box)
    if back:
        cv.paint(cv.mask(back), hair_layer, 10)
    # neck and clothes: background in the 11-class scheme
    neck_w = f["a"] * rng.uniform(0.5, 0.65)
    cv.paint(cv.mask([np.array([[cx - neck_w, f["cheek"] + 40], [cx + neck_w, f["cheek"] + 40],
                                [cx + neck_w * 1.1, 270], [cx - neck_w * 1.1, 270]])]), skin * 0.82, 0)
    cloth = rng.uniform(0.05, 0.9, 3).astype(np.float32)
    sh = rng.uniform(235, 250)
    collar = rng.uniform(8, 30)
    cv.paint(cv.mask([np.array([[cx - 140, 270], [cx - 110, sh - 10], [cx - neck_w, sh - 18],
                                [cx, sh + collar - 18], [cx + neck_w, sh - 18], [cx + 110, sh - 10],
                                [cx + 140, 270]])]), cloth, 0)
    # ears, then the face (skin, label 1)
    for side in (-1, 1):
        cv.paint(cv.mask([ellipse(cx + side * (f["a"] - 2), ey + 12, 9, 17, 24)]), skin * 0.9, 1)
    shade = 1 + smooth_noise(rng, size, 5, 0.05)
    lx = rng.uniform(-0.15, 0.15)
    xx = (np.arange(size, dtype=np.float32) / size - 0.5)[None, :]
    skin_layer = skin[None, None, :] * (shade * (1 + lx * xx))[..., None]
    outline = face_outline(cx, f["top"], f["cheek"], f["chin"], f["a"], k, taper)
    cv.paint(cv.mask([outline]), np.clip(skin_layer, 0, 1), 1)
    jaw = cv.mask([outline]) * np.clip((np.mgrid[0:size, 0:size][0] / size - 0.78) * 6, 0, 0.25)
    cv.paint(jaw, skin * 0.75)  # shadow under the chin line
    blush = rng.uniform(0, 0.25)
    for side in (-1, 1):
        b = cv2.GaussianBlur(cv.mask([ellipse(cx + side * gap * 1.2, ey + 34, 13, 9)]), (0, 0), 4 * sc + 0.5)
        cv.paint(b * blush, np.array([0.85, 0.35, 0.35]))

    beard = rng.random() < p_beard
    if beard:
        mouth_y = rng.uniform(178, 190)
        beard_poly = np.concatenate([
            face_outline(cx, f["top"], f["cheek"], f["chin"] + 3, f["a"] + 1, k, taper)[40:],
        ])
        beard_poly = beard_poly[beard_poly[:, 1] > ey + rng.uniform(30, 45)]
        stache = ellipse(cx, mouth_y - 9, rng.uniform(22, 30), 6, 24)
        blayer = textured(rng, cv, hair * 0.9, 120, 0.4, 1.0, (cx - 80, ey + 30, cx + 80, f["chin"]))
        bm = np.maximum(cv.mask([beard_poly]), cv.mask([stache])) * rng.uniform(0.7, 1.0)
        cv.paint(bm, blayer)  # beards are skin in CelebAMask-HQ's 11-class mapping

    # nose (6): bridge between the eyes down to the nostrils
    ny0, ny1 = ey + rng.uniform(2, 8), ey + rng.uniform(40, 50)
    nw0, nw1 = rng.uniform(4, 7), rng.uniform(10, 14)
    ncx = cx + rng.normal(0, 1)
    nose = np.array([[ncx - nw0, ny0], [ncx + nw0, ny0], [ncx + nw1 * 0.8, ny1 - 10], [ncx + nw1, ny1 - 2],
                     [ncx + nw1 * 0.6, ny1 + 2], [ncx, ny1 + 4], [ncx - nw1 * 0.6, ny1 + 2],
                     [ncx - nw1, ny1 - 2], [ncx - nw1 * 0.8, ny1 - 10]])
    nm = cv.mask([nose])
    cv.paint(nm, np.clip(skin_layer * 0.93, 0, 1), 6)
    cv.paint(cv.stroke(np.array([[ncx + nw0 * 0.3, ny0 + 4], [ncx + nw1 * 0.3, ny1 - 8]]), 2.5) * 0.3 * nm,
             np.clip(skin * 1.15, 0, 1))  # ridge highlight
    for side in (-1, 1):
        cv.paint(cv.mask([ellipse(ncx + side * nw1 * 0.45, ny1 - 1, 3.5, 2, 12)]) * 0.8, skin * 0.35)

    # eyes (4 image-left, 5 image-right) and brows (2, 3)
    tilt = rng.normal(0, 1.0)
    for side, lab in ((-1, 4), (1, 5)):
        _eye(cv, rng, cx + side * gap, ey, eye_hw, eye_hu, eye_hl, side * tilt, iris, lab)
    brow_col = np.clip(hair * rng.uniform(0.5, 0.9) if style != "bald" else skin * 0.4, 0, 1)
    if hair.mean() > 0.6:
        brow_col = np.clip(hair * 0.55, 0, 1)
    arch, thick = rng.uniform(1, 6), rng.uniform(3.5, 7)
    for side, lab in ((-1, 2), (1, 3)):
        inner, outer = cx + side * (gap - eye_hw - 2), cx + side * (gap + eye_hw + rng.uniform(2, 6))
        _brow(cv, rng, inner, outer, f["brow_y"], arch, thick, brow_col, lab)

    mouth = _mouth(cv, rng, cx + rng.normal(0, 1), rng.uniform(178, 190), rng.uniform(18, 28), lip)

    if front:
        cv.paint(cv.mask(front), hair_layer, 10)

    glasses = rng.random() < p_glasses
    if glasses:
        frame = rng.uniform(0, 0.6, 3).astype(np.float32)
        gw, gh = eye_hw + rng.uniform(5, 9), eye_hu + rng.uniform(6, 10)
        for side in (-1, 1):
            ring = ellipse(cx + side * gap, ey + 1, gw, gh, 32)
            cv.paint(cv.mask([ring]) * 0.12, np.array([0.7, 0.8, 0.9]))
            cv.paint(cv.stroke(ring, 2.0, closed=True), frame)
            cv.paint(cv.stroke(np.array([[cx + side * (gap + gw), ey - 2], [cx + side * (f["a"] + 2), ey - 4]]),
                               2.0), frame)
        cv.paint(cv.stroke(np.array([[cx - gap + gw, ey - 2], [cx, ey - 5], [cx + gap - gw, ey - 2]]), 2.0),
                 frame)

    img = cv2.GaussianBlur(cv.img, (0, 0), 0.45 * max(sc, 0.5))
    img = np.clip(img + rng.normal(0, 0.012, img.shape).astype(np.float32), 0, 1)
    attrs = {"skin": skin, "hair": hair, "lips": lip, "iris": iris, "face_shape": str(shape),
             "hair_style": style, "bangs": bangs, "beard": bool(beard), "glasses": bool(glasses),
             "mouth_open": bool(mouth["open"] > 0)}
    return Sample(img.astype(np.float32), cv.lab.astype(np.int64), attrs)


def region_colors(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """4 x 3 mean RGB of skin (1), hair (10), lips (7, 9) and eyes (4, 5); zeros where absent.

    One definition for procedural and real data, so an edit test can measure how a colour moved.
    """
    out = np.zeros((4, 3), np.float32)
    for i, ids in enumerate(((1,), (10,), (7, 9), (4, 5))):
        m = np.isin(labels, ids)
        if m.any():
            out[i] = image[m].mean(0)
    return out
