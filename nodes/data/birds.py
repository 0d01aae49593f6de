"""Procedural birds described in CUB-200-2011's 312-attribute layout (``data.Birds``).

Every item is a deterministic function of (seed, index). A *species* (class id) is a prototype
drawn from the class id alone (so held-out seeds share the species): a body plan with a
plausible size and bill, wing and tail shapes, and a colour scheme (upper, under and accent
colours assigned to the 13 coloured parts) with patterns. An item takes its species'
description and varies it like CUB's per-image labels vary: each shape group is redrawn with
probability 0.15, one part's colour with probability 0.25. The renderer (``bird_render``,
``bird_paint``) draws exactly what the attribute vector says, so a classifier trained on these
images can score generated ones (research note §6: "exact recoverability").

Framing is fixed (birds face right, centred, small jitter), as after CUB's bounding-box crop;
so a mask is nearly a function of the 42 shape attributes and the IoU of a generated mask to
the renderer's mask for the same attributes is a meaningful figure.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import Field

from nodegraph.node import DatasetNode, Params
from nodegraph.registry import register
from nodegraph.types import Attributes, Image, Mask, Tensor

from ..common.attrsets import (
    BILL_LENGTHS,
    BILL_SHAPES,
    BODY_PLANS,
    COLOURS,
    EYE_COLOURS,
    GROUP_SLICES,
    HEAD_PATTERNS,
    PATTERNS,
    SIZES,
    TAIL_SHAPES,
    WING_SHAPES,
    index_of,
)
from .bird_paint import paint
from .bird_render import BirdSpec, Pose, coverage, silhouette

NUM_CLASSES = 200
TRAIN_CLASSES = 150  # class-disjoint split: 0..149 train, 150..199 test (Reed et al.'s 150/50)
SPECIES_SEED = 20_111  # species prototypes do not depend on the data seed

# body plan -> likely sizes and bill shape (the rest of the prototype is uniform)
PLAN_HINTS = {
    "upright-perching_water-like": (("large_(16_-_32_in)", "medium_(9_-_16_in)"), "hooked_seabird"),
    "chicken-like-marsh": (("medium_(9_-_16_in)", "large_(16_-_32_in)"), "cone"),
    "long-legged-like": (("large_(16_-_32_in)", "very_large_(32_-_72_in)"), "dagger"),
    "duck-like": (("medium_(9_-_16_in)", "large_(16_-_32_in)"), "spatulate"),
    "owl-like": (("medium_(9_-_16_in)", "large_(16_-_32_in)"), "hooked"),
    "gull-like": (("large_(16_-_32_in)", "medium_(9_-_16_in)"), "hooked_seabird"),
    "hummingbird-like": (("very_small_(3_-_5_in)",), "needle"),
    "pigeon-like": (("medium_(9_-_16_in)",), "all-purpose"),
    "tree-clinging-like": (("small_(5_-_9_in)", "medium_(9_-_16_in)"), "dagger"),
    "hawk-like": (("large_(16_-_32_in)", "very_large_(32_-_72_in)"), "hooked"),
    "sandpiper-like": (("small_(5_-_9_in)", "medium_(9_-_16_in)"), "needle"),
    "upland-ground-like": (("medium_(9_-_16_in)", "large_(16_-_32_in)"), "cone"),
    "swallow-like": (("small_(5_-_9_in)", "very_small_(3_-_5_in)"), "all-purpose"),
    "perching-like": (("small_(5_-_9_in)", "very_small_(3_-_5_in)"), "cone"),
}
COLOURED_PARTS = ("crown", "forehead", "nape", "throat", "breast", "belly", "back", "wing", "upper_tail",
                  "under_tail", "leg", "bill", "eye")
PART_GROUP = {p: f"has_{p}_color" for p in COLOURED_PARTS}
SECOND = {"breast": "breast", "back": "back", "belly": "belly", "wing": "wing", "upper_tail": "tail"}


def _pick(rng: np.random.Generator, seq: tuple[str, ...] | list[str]) -> str:
    return seq[int(rng.integers(len(seq)))]


def _shape_groups(rng: np.random.Generator) -> dict[str, str]:
    body = _pick(rng, BODY_PLANS)
    sizes, bill = PLAN_HINTS[body]
    return {"body": body, "size": _pick(rng, sizes) if rng.random() < 0.8 else _pick(rng, SIZES),
            "bill_shape": bill if rng.random() < 0.6 else _pick(rng, BILL_SHAPES),
            "bill_length": _pick(rng, BILL_LENGTHS), "wing_shape": _pick(rng, WING_SHAPES),
            "tail_shape": _pick(rng, TAIL_SHAPES)}


def _scheme(rng: np.random.Generator) -> tuple[dict[str, list[str]], dict[str, str], str]:
    upper, under, accent = (str(c) for c in rng.choice(COLOURS, 3, replace=False))
    c = {"back": upper, "wing": upper, "upper_tail": upper, "nape": upper, "belly": under, "under_tail": under,
         "breast": _pick(rng, (under, under, accent)), "throat": _pick(rng, (under, accent, "white")),
         "crown": _pick(rng, (upper, accent, "black")), "leg": _pick(rng, ("black", "grey", "pink", "orange", "brown")),
         "bill": _pick(rng, ("black", "grey", "orange", "yellow", "buff", "red")),
         "eye": _pick(rng, ("black", "black", "brown", "red", "yellow", "white"))}
    c["forehead"] = _pick(rng, (c["crown"], c["crown"], under))
    patterns = {p: _pick(rng, ("solid", "solid") + PATTERNS[1:]) for p in ("breast", "back", "belly", "tail", "wing")}
    colours = {p: [c[p]] for p in COLOURED_PARTS}
    for part, pat_key in SECOND.items():
        if patterns[pat_key] != "solid":
            second = _pick(rng, [x for x in (accent, "white", "black", under, upper) if x != c[part]])
            colours[part].append(second)
    return colours, patterns, _pick(rng, HEAD_PATTERNS)


def species(class_id: int) -> BirdSpec:
    """The prototype description of species ``class_id`` (0..199), independent of the data seed."""
    rng = np.random.default_rng([SPECIES_SEED, class_id])
    colours, patterns, head = _scheme(rng)
    return BirdSpec(**_shape_groups(rng), colours=colours, patterns=patterns, head_pattern=head)


def vary(spec: BirdSpec, rng: np.random.Generator) -> BirdSpec:
    """A per-image variant: each shape group redrawn w.p. 0.15, one part recoloured w.p. 0.25."""
    fresh = _shape_groups(rng)
    shape = {k: (fresh[k] if rng.random() < 0.15 else getattr(spec, k)) for k in fresh}
    colours = {k: list(v) for k, v in spec.colours.items()}
    if rng.random() < 0.25:
        part = _pick(rng, COLOURED_PARTS)
        pool = EYE_COLOURS if part == "eye" else COLOURS
        colours[part][0] = _pick(rng, [x for x in pool if x not in colours[part]])
    return BirdSpec(**shape, colours=colours, patterns=dict(spec.patterns), head_pattern=spec.head_pattern)


def attributes(spec: BirdSpec) -> torch.Tensor:
    """The 312-vector (0/1) of a description; upperparts / underparts / primary are derived from
    crown + nape + back, throat + breast + belly, and the back and breast main colours."""
    a = torch.zeros(312)
    shape = {"has_bill_shape": spec.bill_shape, "has_tail_shape": spec.tail_shape, "has_bill_length": spec.bill_length,
             "has_wing_shape": spec.wing_shape, "has_size": spec.size, "has_shape": spec.body,
             "has_head_pattern": spec.head_pattern}
    for p in ("breast", "back", "belly", "tail", "wing"):
        shape[f"has_{p}_pattern"] = spec.patterns[p]
    for g, v in shape.items():
        a[index_of(f"{g}::{v}")] = 1
    derived = {"has_upperparts_color": ("crown", "nape", "back"), "has_underparts_color": ("throat", "breast", "belly")}
    for part, g in PART_GROUP.items():
        for c in spec.colours[part]:
            a[index_of(f"{g}::{c}")] = 1
    for g, parts in derived.items():
        for part in parts:
            for c in spec.colours[part]:
                a[index_of(f"{g}::{c}")] = 1
    for part in ("back", "breast"):
        a[index_of(f"has_primary_color::{spec.colours[part][0]}")] = 1
    return a


def shape_part(vec: torch.Tensor) -> dict[str, str]:
    """The shape groups of a 312-vector (argmax per group): BirdSpec keyword arguments."""
    names = {"body": ("has_shape", BODY_PLANS), "size": ("has_size", SIZES),
             "bill_shape": ("has_bill_shape", BILL_SHAPES), "bill_length": ("has_bill_length", BILL_LENGTHS),
             "wing_shape": ("has_wing_shape", WING_SHAPES), "tail_shape": ("has_tail_shape", TAIL_SHAPES)}
    return {k: vals[int(vec[GROUP_SLICES[g]].argmax())] for k, (g, vals) in names.items()}


def item_rng(seed: int, index: int) -> np.random.Generator:
    """The generator that draws item ``index`` of the set ``seed`` (class, variation, pose, colours)."""
    return np.random.default_rng([seed, index])


def render(spec: BirdSpec, rng: np.random.Generator, size: int, jitter: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(image H x W x 3, soft mask H x W), both float32 in [0, 1]."""
    pose = Pose()
    if jitter:
        pose = Pose(0.5 + rng.uniform(-0.04, 0.04), 0.52 + rng.uniform(-0.04, 0.04), rng.uniform(0.95, 1.05),
                    rng.uniform(-6, 6))
    cov, info = coverage(spec, pose, size)
    return paint(spec, cov, info, size, rng), silhouette(cov)


def make_bird(index: int, seed: int = 0, size: int = 64, classes: str = "all") -> dict[str, torch.Tensor]:
    """Item ``index``: image 3 x H x W, mask 1 x H x W (soft), attributes (312,), class_id (0-d int64)."""
    rng = item_rng(seed, index)
    lo, hi = {"all": (0, NUM_CLASSES), "train": (0, TRAIN_CLASSES), "test": (TRAIN_CLASSES, NUM_CLASSES)}[classes]
    cls = int(rng.integers(lo, hi))
    spec = vary(species(cls), rng)
    img, mask = render(spec, rng, size)
    return {"image": torch.from_numpy(img).permute(2, 0, 1).contiguous(),
            "mask": torch.from_numpy(mask)[None].contiguous(),
            "attributes": attributes(spec), "class_id": torch.tensor(cls, dtype=torch.int64)}


class BirdDataset(torch.utils.data.Dataset):
    """Items of ``make_bird``; with ``keep`` each rendered item is kept (uint8 image and mask, about
    17 KB at 64 px), so epochs after the first cost no rendering (about 15-30 ms an item on a CPU)."""

    def __init__(self, length: int, seed: int, size: int, classes: str, keep: bool = False) -> None:
        self.length, self.seed, self.size, self.classes = length, seed, size, classes
        self.kept: dict[int, dict[str, torch.Tensor]] | None = {} if keep else None

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if self.kept is None:
            return make_bird(int(i), self.seed, self.size, self.classes)
        item = self.kept.get(int(i))
        if item is None:
            item = make_bird(int(i), self.seed, self.size, self.classes)
            item = {**item, "image": _to_u8(item["image"]), "mask": _to_u8(item["mask"])}
            self.kept[int(i)] = item
        return {**item, "image": item["image"].float() / 255, "mask": item["mask"].float() / 255}


def _to_u8(x: torch.Tensor) -> torch.Tensor:
    return (x * 255).round().to(torch.uint8)


@register("data.Birds")
class Birds(DatasetNode):
    """Procedural birds with CUB-200-2011 attributes (schema ``cub312``): image, soft mask, the
    312-attribute vector and a species id (0..199), deterministic by (seed, index).

    Shape attributes (body plan, size, bill shape / length, wing and tail shape) drive the
    silhouette; colour and pattern attributes paint crown, forehead, nape, throat, breast, belly,
    back, wings, tail, legs, bill and eye. Backgrounds: sky, foliage, water, ground, studio.
    ``classes``: all species, or the class-disjoint train (0..149) / test (150..199) halves."""

    class Params(Params):
        length: int = Field(100_000, ge=1, description="number of items")
        size: int = Field(64, ge=32, le=512, description="square side in pixels (the stacked GAN uses 64)")
        seed: int = Field(0, description="held-out sets use another seed (species stay the same)")
        classes: Literal["all", "train", "test"] = Field("all", description="class-disjoint split (150/50)")
        keep_in_memory: bool = Field(False, description="keep rendered items (8-bit) for later epochs")
        batch_size: int = Field(16, ge=1)

    outputs = {"image": Image(), "mask": Mask(), "attributes": Attributes("cub312"),
               "class_id": Tensor(rank=1, doc="species id 0..199 (int64)")}

    def dataset(self) -> BirdDataset:
        p = self.params
        return BirdDataset(p.length, p.seed, p.size, p.classes, p.keep_in_memory)
