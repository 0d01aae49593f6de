"""Procedural landscapes: label maps in the ``landscape`` set and the photo-like pictures they
stand for. The embedded SPADE default is trained on them, so every graph runs on a fresh machine.

Each item is a deterministic function of (seed, index): a layout (horizon, mountain ridges
with snow caps, clouds, a lake / sea / meadow / snowfield foreground, forests, single trees,
boulders, dirt paths) and a rendering of it under one of several times of day (day, golden
hour, dusk, overcast, misty morning) and seasons. Rendering is textured and shaded, never flat:
sky gradients with a sun glow, fractal-noise textures per material, slope shading on
mountains, sky reflections and ripples on water, aerial perspective towards the horizon, and a
global light colour. So the generator has to learn material appearance and a style encoder
has light and palette to pick up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image as PILImage
from pydantic import Field

from nodegraph.node import DatasetNode, Params
from nodegraph.registry import register
from nodegraph.types import Image, LabelMap
from nodes.common.labelsets import LANDSCAPE

SKY, CLOUD, MOUNTAIN, ROCK, SNOW, WATER, SAND, GRASS, TREE, DIRT = range(10)

# ---- noise ----------------------------------------------------------------------------------------


def fbm(gen: torch.Generator, h: int, w: int, base: int = 4, octaves: int = 4,
        persistence: float = 0.5) -> torch.Tensor:
    """Fractal value noise in about [-1, 1]: bilinear-upsampled random grids, finer ones weaker."""
    out = torch.zeros(h, w)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        gh, gw = base * 2 ** o + 1, base * 2 ** o + 1
        grid = torch.rand(1, 1, gh, gw, generator=gen) * 2 - 1
        out += amp * F.interpolate(grid, size=(h, w), mode="bilinear", align_corners=True)[0, 0]
        total += amp
        amp *= persistence
    return out / total


def fbm1d(gen: torch.Generator, w: int, base: int = 3, octaves: int = 5) -> torch.Tensor:
    """1-D fractal noise (ridge lines), about [-1, 1]."""
    out = torch.zeros(w)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        n = base * 2 ** o + 1
        pts = torch.rand(1, 1, n, generator=gen) * 2 - 1
        out += amp * F.interpolate(pts, size=w, mode="linear", align_corners=True)[0, 0]
        total += amp
        amp *= 0.5
    return out / total


def _u(gen: torch.Generator, lo: float = 0.0, hi: float = 1.0) -> float:
    return lo + (hi - lo) * float(torch.rand(1, generator=gen))


def _chance(gen: torch.Generator, p: float) -> bool:
    return float(torch.rand(1, generator=gen)) < p


# ---- layout -------------------------------------------------------------------------------------


def make_layout(gen: torch.Generator, size: int) -> tuple[torch.Tensor, dict[str, Any]]:
    """A landscape label map (size x size int64) and the geometry the renderer needs."""
    h = w = size
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    lab = torch.full((h, w), SKY, dtype=torch.int64)
    horizon = _u(gen, 0.35, 0.62)
    info: dict[str, Any] = {"horizon": horizon, "ridges": []}

    # mountain ranges, far to near; snow above a noisy snow line on high ones
    for k in range(int(torch.randint(0, 3, (1,), generator=gen))):
        height = _u(gen, 0.08, 0.32) * (1.0 - 0.3 * k)
        ridge = horizon - height * (0.55 + 0.45 * fbm1d(gen, w, base=2 + k))
        ridge = ridge + 0.02 * k
        m = yy >= ridge.unsqueeze(0)
        m &= yy < horizon + 0.01
        lab[m] = MOUNTAIN
        info["ridges"].append((ridge, height))
        if height > 0.15 and _chance(gen, 0.6):
            line = horizon - height * _u(gen, 0.45, 0.75) + 0.03 * fbm(gen, h, w, 6, 3)
            lab[m & (yy < line)] = SNOW

    # clouds only over sky
    if _chance(gen, 0.8):
        cover = _u(gen, 0.1, 0.55)
        n = fbm(gen, h, w, base=3, octaves=4)
        n = n + 0.6 * (yy / max(horizon, 1e-3))  # thinner towards the horizon
        thr = torch.quantile(n[yy < horizon].flatten(), cover) if (yy < horizon).any() else -1.0
        lab[(lab == SKY) & (n < thr)] = CLOUD

    # foreground
    below = yy >= horizon
    kind = ["meadow", "lake", "sea", "snowfield", "desert"][
        int(torch.multinomial(torch.tensor([0.35, 0.25, 0.15, 0.12, 0.13]), 1, generator=gen))]
    info["kind"] = kind
    ground = {"meadow": GRASS, "lake": GRASS, "sea": SAND, "snowfield": SNOW, "desert": SAND}[kind]
    lab[below] = ground
    if kind in ("lake", "sea"):
        shore = horizon + _u(gen, 0.12, 0.4) * (1 - horizon) + 0.04 * fbm1d(gen, w, base=2)
        water = below & (yy < shore.unsqueeze(0))
        if kind == "lake" and _chance(gen, 0.6):  # the far bank: a strip of ground at the horizon
            water &= yy > horizon + 0.015 + 0.01 * fbm1d(gen, w).unsqueeze(0)
        lab[water] = WATER
        if kind == "lake" and _chance(gen, 0.6):
            beach = below & ~water & (yy < shore.unsqueeze(0) + _u(gen, 0.03, 0.1))
            lab[beach] = SAND
    if kind in ("meadow", "desert") and _chance(gen, 0.6):  # a path narrowing to the horizon
        x0, x1 = _u(gen, 0.2, 0.8), _u(gen, 0.35, 0.65)
        t = ((yy - horizon) / (1 - horizon)).clamp(0, 1)
        centre = x1 + (x0 - x1) * t + 0.05 * t * fbm1d(gen, h, base=2).unsqueeze(1)
        lab[below & ((xx - centre).abs() < 0.01 + 0.12 * t)] = DIRT
    if kind == "desert" and _chance(gen, 0.5):
        lab[below & (fbm(gen, h, w, 3, 3) > 0.25)] = DIRT

    # forest band at the horizon
    if kind in ("meadow", "lake", "snowfield") and _chance(gen, 0.55):
        top = horizon - _u(gen, 0.03, 0.1) * (0.6 + 0.4 * fbm1d(gen, w, base=8).abs())
        cover = fbm1d(gen, w, base=3) > -0.3
        band = (yy >= top.unsqueeze(0)) & (yy < horizon + 0.02) & cover.unsqueeze(0)
        lab[band & (lab != WATER)] = TREE

    # boulders and single trees, bigger nearer the viewer (painter's order: far first)
    objs = []
    for _ in range(int(torch.randint(0, 4, (1,), generator=gen))):
        objs.append(("rock", _u(gen, horizon + 0.05, 0.98), _u(gen, 0, 1)))
    if kind in ("meadow", "lake", "snowfield"):
        for _ in range(int(torch.randint(0, 6, (1,), generator=gen))):
            objs.append(("tree", _u(gen, horizon + 0.03, 0.98), _u(gen, 0, 1)))
    objs.sort(key=lambda o: o[1])
    rock_noise = fbm(gen, h, w, 8, 3)
    for what, by, bx in objs:
        depth = (by - horizon) / (1 - horizon)
        if lab[min(int(by * (h - 1)), h - 1), min(int(bx * (w - 1)), w - 1)] == WATER:
            continue
        if what == "rock":
            r = 0.02 + 0.12 * depth
            d = ((xx - bx) / r) ** 2 + ((yy - by) / (0.6 * r)) ** 2
            lab[(d + 0.4 * rock_noise < 1) & (yy < by + 0.2 * r)] = ROCK
        else:
            th = 0.05 + 0.35 * depth
            conifer = _chance(gen, 0.5)
            rel = (by - yy) / th  # 0 at the foot, 1 at the top
            if conifer:
                m = (rel > 0.08) & (rel < 1) & ((xx - bx).abs() < 0.22 * th * (1 - rel))
            else:
                cy = by - 0.62 * th
                m = ((xx - bx) / (0.32 * th)) ** 2 + ((yy - cy) / (0.4 * th)) ** 2 + 0.3 * rock_noise < 1
            trunk = (rel >= 0) & (rel <= 0.25) & ((xx - bx).abs() < 0.025 * th + 0.004)
            lab[trunk] = DIRT
            lab[m] = TREE
    return lab, info


# ---- rendering ------------------------------------------------------------------------------------

# time of day: sky zenith, sky horizon, light colour (multiplier), haze strength
TIMES = {
    "day": ((60, 120, 215), (175, 210, 240), (1.0, 1.0, 1.0), 0.35),
    "golden": ((80, 110, 180), (250, 190, 120), (1.15, 0.92, 0.7), 0.4),
    "sunset": ((50, 50, 120), (245, 120, 70), (1.0, 0.7, 0.55), 0.45),
    "dusk": ((20, 25, 60), (150, 90, 120), (0.5, 0.48, 0.65), 0.5),
    "overcast": ((135, 140, 150), (200, 202, 206), (0.82, 0.85, 0.9), 0.55),
    "misty": ((160, 175, 190), (225, 228, 230), (0.95, 0.97, 1.0), 0.75),
}
SEASONS = {  # grass, tree
    "summer": ((85, 150, 50), (35, 85, 35)),
    "spring": ((120, 180, 70), (60, 120, 50)),
    "autumn": ((165, 145, 65), (170, 85, 30)),
    "dry": ((175, 165, 95), (80, 95, 45)),
}
BASE = {MOUNTAIN: (105, 100, 115), ROCK: (125, 118, 110), SNOW: (242, 245, 252), SAND: (222, 200, 150),
        DIRT: (125, 88, 55), WATER: (30, 65, 110)}


def _rgb(c: tuple[float, float, float]) -> torch.Tensor:
    return torch.tensor(c, dtype=torch.float32).view(3, 1, 1) / 255.0


def render(lab: torch.Tensor, info: dict[str, Any], gen: torch.Generator) -> tuple[torch.Tensor, dict]:
    """Shade and texture a layout into a 3 x H x W image in [0, 1]."""
    h, w = lab.shape
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    tnames = list(TIMES)
    tod = tnames[int(torch.randint(0, len(tnames), (1,), generator=gen))]
    season = list(SEASONS)[int(torch.randint(0, len(SEASONS), (1,), generator=gen))]
    if info.get("kind") == "snowfield":
        season = "summer" if season in ("spring", "dry") else season
    zen, hor, light, haze_k = TIMES[tod]
    jitter = lambda c: tuple(min(255.0, max(0.0, v + 18 * (_u(gen) * 2 - 1))) for v in c)  # noqa: E731
    zen, hor = _rgb(jitter(zen)), _rgb(jitter(hor))
    light = torch.tensor(light).view(3, 1, 1) * _u(gen, 0.9, 1.1)
    horizon = info["horizon"]
    sun_x, sun_y = _u(gen, 0.1, 0.9), horizon - _u(gen, 0.02, 0.35) * (0.3 if tod in ("sunset", "dusk") else 1)
    sun_dir = 1.0 if sun_x > 0.5 else -1.0

    # sky: zenith -> horizon gradient with a glow around the sun
    t = (yy / max(horizon, 1e-3)).clamp(0, 1) ** 1.3
    sky = zen * (1 - t) + hor * t
    glow = torch.exp(-(((xx - sun_x) ** 2 + (yy - sun_y) ** 2) / 0.04))
    sky = sky + glow * (_rgb((255, 220, 170)) - sky) * (0.6 if tod != "overcast" else 0.2)
    haze = hor * 0.8 + 0.2 * _rgb((200, 200, 205))

    img = sky.clone()
    grass_c, tree_c = SEASONS[season]
    n_fine = fbm(gen, h, w, base=max(8, h // 6), octaves=2)
    n_mid = fbm(gen, h, w, base=6, octaves=4)
    depth = ((yy - horizon) / (1 - horizon)).clamp(0, 1)  # 0 at the horizon, 1 at the bottom

    def paint(cls: int, colour: torch.Tensor) -> None:
        m = lab == cls
        img[:, m] = colour.expand(3, h, w)[:, m]

    # clouds: bright tops, greyer undersides, soft texture, tinted by the sky near them
    cloud_lit = torch.lerp(_rgb((250, 250, 252)), hor, 0.35) * (0.92 + 0.1 * n_mid)
    shade = (0.75 + 0.25 * torch.sigmoid(-(fbm(gen, h, w, 5, 3) * 6)))
    paint(CLOUD, (cloud_lit * shade).clamp(0, 1))

    # mountains: slope shading from a height field, texture, aerial perspective
    height = fbm(gen, h, w, base=5, octaves=5)
    slope = torch.zeros_like(height)
    slope[:, 1:] = (height[:, 1:] - height[:, :-1]) * w / 6
    mshade = (0.8 + 0.45 * sun_dir * slope.clamp(-1, 1)) * (0.9 + 0.15 * n_fine)
    mcol = _rgb(jitter(BASE[MOUNTAIN])) * mshade
    paint(MOUNTAIN, torch.lerp(mcol, haze, haze_k))
    paint(SNOW, torch.lerp(_rgb(BASE[SNOW]) * (0.85 + 0.2 * sun_dir * slope.clamp(-1, 1))
                           * torch.tensor([0.97, 0.98, 1.02]).view(3, 1, 1), haze, haze_k * 0.4))

    # ground materials, darker and more contrasted nearer the viewer
    near = 0.8 + 0.25 * depth
    paint(GRASS, _rgb(jitter(grass_c)) * near * (0.85 + 0.2 * n_mid + 0.12 * n_fine))
    paint(SAND, _rgb(jitter(BASE[SAND])) * (0.9 + 0.08 * n_mid + 0.08 * n_fine))
    paint(DIRT, _rgb(jitter(BASE[DIRT])) * (0.85 + 0.15 * n_mid + 0.15 * n_fine))
    rock_tex = 0.75 + 0.2 * n_mid + 0.25 * (fbm(gen, h, w, max(8, h // 8), 2) > 0.3).float() * -0.5
    paint(ROCK, _rgb(jitter(BASE[ROCK])) * (rock_tex + 0.1 * sun_dir * (xx - xx.mean())))
    leaf = 0.7 + 0.3 * n_fine + 0.15 * n_mid
    tside = 1.0 + 0.25 * sun_dir * torch.tanh((xx - 0.5) * 8) * 0.5
    paint(TREE, _rgb(jitter(tree_c)) * leaf * tside)

    # water: mirrored sky colour mixed with deep blue, horizontal ripples, sun glitter
    mirror_t = (1 - depth).clamp(0, 1)
    refl = zen * (1 - mirror_t) + hor * mirror_t
    ripple = torch.sin(yy * h * 0.9 + 3 * n_mid) * (0.05 + 0.05 * depth)
    wcol = torch.lerp(refl, _rgb(jitter(BASE[WATER])), 0.35 + 0.35 * depth) * (1 + ripple)
    glitter = torch.exp(-((xx - sun_x) ** 2) / 0.004) * (n_fine > 0.2).float() * (1 - depth) * 0.4
    paint(WATER, wcol + glitter)

    # aerial perspective over the ground near the horizon, then the light colour
    ground = (lab != SKY) & (lab != CLOUD) & (lab != MOUNTAIN) & (lab != SNOW)
    fog = (haze_k * torch.exp(-depth * 8)).unsqueeze(0) * ground
    img = torch.lerp(img, haze.expand(3, h, w), fog)
    not_sky = ((lab != SKY) & (lab != CLOUD)).float()
    img = img * (light * not_sky + (1 - not_sky) * (0.5 + 0.5 * light))
    img = img * (1 - 0.12 * ((xx - 0.5) ** 2 + (yy - 0.5) ** 2))  # vignette
    img = img + 0.01 * torch.randn(img.shape, generator=gen)  # sensor grain
    return img.clamp(0, 1), {"time": tod, "season": season}


def item_generator(seed: int, index: int) -> torch.Generator:
    """The generator that draws item ``index`` of the set ``seed`` (layout, then rendering)."""
    return torch.Generator().manual_seed((seed * 1_000_003 + index) & 0x7FFF_FFFF_FFFF)


def make_landscape(index: int, seed: int = 0, size: int = 128) -> dict[str, torch.Tensor]:
    """Item ``index``: {"labels": H x W int64, "image": 3 x H x W float in [0, 1]}."""
    gen = item_generator(seed, index)
    lab, info = make_layout(gen, size)
    img, _ = render(lab, info, gen)
    return {"labels": lab, "image": img}


class LandscapeDataset(torch.utils.data.Dataset):
    def __init__(self, length: int, seed: int, size: int) -> None:
        self.length, self.seed, self.size = length, seed, size

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return make_landscape(int(i), self.seed, self.size)


@register("data.Landscapes")
class Landscapes(DatasetNode):
    """Procedural landscapes: ``landscape`` label maps with rendered photo-like pictures
    (several times of day and seasons), deterministic by (seed, index)."""

    class Params(Params):
        length: int = Field(10_000, ge=1, description="number of items")
        size: int = Field(128, ge=16, le=1024, description="square side in pixels")
        seed: int = Field(0, description="held-out sets use another seed")
        batch_size: int = Field(4, ge=1)

    outputs = {"labels": LabelMap("landscape"), "image": Image()}

    def dataset(self) -> LandscapeDataset:
        return LandscapeDataset(self.params.length, self.params.seed, self.params.size)


# ---- palette images --------------------------------------------------------------------------------


def colorize(labels: torch.Tensor) -> np.ndarray:
    """H x W ids -> H x W x 3 uint8 in the documented ``landscape`` palette."""
    pal = np.array(LANDSCAPE.palette, dtype=np.uint8)
    return pal[labels.cpu().numpy()]


def write_example_label_map(path: str | Path, index: int, seed: int = 1, size: int = 256) -> Path:
    """Write layout ``index`` of ``seed`` as a palette PNG a user can repaint in any editor."""
    gen = item_generator(seed, index)
    lab, _ = make_layout(gen, size)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.fromarray(colorize(lab)).save(path)
    return path


def write_example_render(path: str | Path, time: str, seed: int = 5, size: int = 128, nth: int = 0) -> Path:
    """Write the ``nth`` rendered landscape of ``seed`` lit at ``time`` (a key of TIMES) as a PNG:
    style pictures for the VAE generator (graphs/spade_style.json). Training uses seed 0 only."""
    if time not in TIMES:
        raise ValueError(f"time must be one of {', '.join(TIMES)}, got {time!r}")
    for index in range(500):
        gen = item_generator(seed, index)
        lab, info = make_layout(gen, size)
        img, meta = render(lab, info, gen)
        if meta["time"] == time and nth > 0:
            nth -= 1
        elif meta["time"] == time:
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            arr = (img.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            PILImage.fromarray(arr).save(path)
            return path
    raise RuntimeError(f"no {time} render among 500 layouts of seed {seed}")


def class_histogram(length: int = 200, seed: int = 0, size: int = 64) -> torch.Tensor:
    """Fraction of pixels per class over ``length`` items (a dataset sanity figure)."""
    counts = torch.zeros(len(LANDSCAPE), dtype=torch.float64)
    for i in range(length):
        gen = item_generator(seed, i)
        lab, _ = make_layout(gen, size)
        counts += torch.bincount(lab.flatten(), minlength=len(LANDSCAPE)).double()
    return counts / counts.sum()


