"""Portrait datasets with ``celebamask11`` masks: procedural (default) and CelebAMask-HQ.

``style`` picks the domain: ``photo`` (the rendering every shipped model trained on), or the
target domains of few-shot adaptation, ``sketch`` and ``caricature`` (``portrait_styles.py``);
item i of seed s is the same identity in every style.

``data.Portraits`` is what the portrait graphs train on: procedural faces drawn at ``size``,
deterministic by ``seed``; set ``root`` to a CelebAMask-HQ folder and the same node reads the real
dataset instead, so ``nodegraph train G --set data.root=/data/CelebAMask-HQ`` switches data
without touching the graph. ``data.CelebAMaskHQ`` is the explicit reader.

Every item carries ``colors`` (4 x 3: mean RGB of skin, hair, lips, eyes measured on the image
with :func:`region_colors`), so an edit test can check that, say, the hair colour moved.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import Field

import nodes.common.labelsets  # noqa: F401  (registers celebamask11)
from nodegraph.node import DatasetNode, InputDir, NodeError, Params
from nodegraph.registry import register
from nodegraph.types import Image, LabelMap, Tensor

from .celebamask import read_sample, split_ids
from .portrait_render import region_colors, render
from .portrait_styles import stylize

COLOR_NAMES = ("skin", "hair", "lips", "eyes")
OUTPUTS = {"image": Image(), "labels": LabelMap("celebamask11"),
           "colors": Tensor(rank=3, doc="N x 4 x 3 mean RGB of skin, hair, lips, eyes")}


def _item(img: np.ndarray, lab: np.ndarray, style: str = "photo", key: tuple[int, int] = (0, 0)
          ) -> dict[str, torch.Tensor]:
    img, lab = stylize(img, lab, style, *key)
    return {"image": torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))),
            "labels": torch.from_numpy(lab),
            "colors": torch.from_numpy(region_colors(img, lab))}


class ProceduralPortraits(torch.utils.data.Dataset):
    """``count`` procedural portraits of the set ``seed`` (item i is the same on every machine)."""

    def __init__(self, count: int, size: int = 256, seed: int = 0, p_beard: float = 0.15,
                 p_glasses: float = 0.12, jitter: float = 1.0, style: str = "photo", hair: str = "natural"):
        self.count, self.size, self.seed, self.style = count, size, seed, style
        self.kw = {"p_beard": p_beard, "p_glasses": p_glasses, "jitter": jitter, "hair": hair}

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not 0 <= i < self.count:
            raise IndexError(i)
        s = render(self.seed, i, self.size, **self.kw)
        return _item(s.image, s.labels, self.style, (self.seed, i))

    def attributes(self, i: int) -> dict[str, object]:
        """The drawing parameters of item ``i`` (base colours, hair style, beard, glasses ...)."""
        return render(self.seed, i, self.size, **self.kw).attrs


class CelebAMaskHQDataset(torch.utils.data.Dataset):
    """CelebAMask-HQ read from ``root`` (published layout), 19 -> 11 labels, resized to ``size``."""

    def __init__(self, root: str | Path, split: str = "train", size: int = 256, limit: int = 0,
                 style: str = "photo"):
        self.root, self.style = Path(root), style
        mapping = self.root / "CelebA-HQ-to-CelebA-mapping.txt"
        if not mapping.is_file():
            raise FileNotFoundError(
                f"{self.root} does not look like CelebAMask-HQ: {mapping.name} is missing (expected "
                "CelebA-HQ-img/, CelebAMask-HQ-mask-anno/ and CelebA-HQ-to-CelebA-mapping.txt)")
        self.ids = split_ids(self.root, split)
        if limit:
            self.ids = self.ids[:limit]
        if not self.ids:
            raise ValueError(f"CelebAMask-HQ split {split!r} under {self.root} is empty")
        self.size = size

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        img, lab = read_sample(self.root, self.ids[i], self.size)
        return _item(img, lab, self.style, (0, i))


Split = Literal["train", "val", "test", "all"]
Style = Literal["photo", "sketch", "caricature"]


@register("data.Portraits")
class Portraits(DatasetNode):
    """Procedural portraits with CelebAMask-HQ 11-label masks (or CelebAMask-HQ itself via ``root``).

    Outputs the image x, its mask m (``celebamask11``, l = image-left) and per-sample region
    colours. Items are a pure function of (seed, index, size): held-out sets are other seeds.
    """

    version = "1"

    class Params(Params):
        size: int = Field(256, ge=32, le=1024, description="output resolution (square)")
        count: int = Field(2000, ge=1, description="number of procedural portraits in the set")
        seed: int = Field(0, description="which set: item i of seed s is always the same face")
        batch_size: int = Field(4, ge=1, description="items per batch")
        p_beard: float = Field(0.15, ge=0, le=1, description="probability of a beard (labelled skin)")
        p_glasses: float = Field(0.12, ge=0, le=1, description="probability of glasses (not labelled)")
        jitter: float = Field(1.0, ge=0, le=2, description="scale of the random pose jitter (0 = aligned)")
        root: InputDir = Field("", description="CelebAMask-HQ folder; when set, read it instead of drawing")
        split: Split = Field("train", description="official split when reading CelebAMask-HQ")
        style: Style = Field("photo", description="domain: photo (default), sketch (pencil on grey paper) or "
                             "caricature (bigger eyes / nose / mouth, narrower longer face, saturated); the "
                             "same seed and index give the same identity in every style")
        hair: Literal["natural", "wide"] = Field(
            "natural", description="hair colours: natural (mostly browns and black; blue, pink, white "
            "3-3.5 % each) or wide (the ten colours equally often half the time, any hue the other "
            "half); same faces otherwise")

    outputs = OUTPUTS

    def dataset(self) -> torch.utils.data.Dataset:
        p = self.params
        if p.root:
            try:
                return CelebAMaskHQDataset(p.root, p.split, p.size, style=p.style)
            except (FileNotFoundError, ValueError) as e:
                raise NodeError(f"params.root: {e}", self.type_name, "params.root") from None
        return ProceduralPortraits(p.count, p.size, p.seed, p.p_beard, p.p_glasses, p.jitter, p.style, p.hair)


@register("data.CelebAMaskHQ")
class CelebAMaskHQ(DatasetNode):
    """CelebAMask-HQ (Lee et al. 2020) in its published layout, mapped to ``celebamask11``.

    Split by the official CelebA-index rule over ``CelebA-HQ-to-CelebA-mapping.txt``; left/right
    eyes and brows assigned by x-centroid per image; images and masks resized to ``size``.
    """

    version = "1"

    class Params(Params):
        root: InputDir = Field(..., description="folder holding CelebA-HQ-img/ and CelebAMask-HQ-mask-anno/")
        split: Split = Field("train", description="official split")
        size: int = Field(256, ge=32, le=1024, description="output resolution (square)")
        limit: int = Field(0, ge=0, description="use only the first N items of the split (0 = all)")
        batch_size: int = Field(4, ge=1, description="items per batch")

    outputs = OUTPUTS

    def dataset(self) -> torch.utils.data.Dataset:
        p = self.params
        try:
            return CelebAMaskHQDataset(p.root, p.split, p.size, p.limit)
        except (FileNotFoundError, ValueError) as e:
            raise NodeError(f"params.root: {e}", self.type_name, "params.root") from None
