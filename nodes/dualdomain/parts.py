"""What the one-shot segmenter of DDS is trained on, without a labelling GUI.

Officially (``labeller.py``) a person paints one G1 sample's part; here the label comes from our
face parser (``face.UNetParser``, ``celebamask11``) applied to that sample, reduced to {background,
part} by ``PARTS``. ``dualdomain.Codes`` is the dataset of latent codes the training graph draws
the sample from (``graphs/dds_segmenter_train.json``).

    dualdomain.Codes      (dataset) -> z: item i = stylegan.SampleZ(batch 1, seed = seed + i)'s code
    dualdomain.PartLabel  celebamask11 labels -> {0 background, 1 part} labels + mask
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field

import nodes.common.labelsets  # noqa: F401  (registers celebamask11)
from nodegraph.node import DatasetNode, Node, Params
from nodegraph.registry import register
from nodegraph.types import LabelMap, LabelSet, Mask, Tensor, register_label_set

PARTS: dict[str, tuple[str, ...]] = {
    "eyes_nose_mouth": ("l_eye", "r_eye", "nose", "u_lip", "mouth", "l_lip"),
    "hair": ("hair",),
    "eyes": ("l_eye", "r_eye"),
    "nose": ("nose",),
    "mouth": ("u_lip", "mouth", "l_lip"),
}
"""Part key (the official mask names) -> the ``celebamask11`` classes it joins. Brows are not in
``eyes_nose_mouth`` (the paper's mask M1 is eyes + nose + mouth)."""
Part = Literal["eyes_nose_mouth", "hair", "eyes", "nose", "mouth"]

DDS_PART = register_label_set(LabelSet(name="dds_part", names=("background", "part"),
                                       palette=((0, 0, 0), (255, 255, 255))))


def part_mask(labels: torch.Tensor, part: str) -> torch.Tensor:
    """N x H x W ``celebamask11`` ids -> N x H x W int64, 1 where the class is one of ``PARTS[part]``."""
    from nodes.common.labelsets import CELEBAMASK11

    ids = torch.tensor([CELEBAMASK11.names.index(n) for n in PARTS[part]], device=labels.device)
    return torch.isin(labels, ids).long()


@register("dualdomain.PartLabel")
class PartLabel(Node):
    """A face parser's ``celebamask11`` labels reduced to one DDS part: ``labels`` N x H x W in
    ``dds_part`` ids (0 background, 1 part; the segmenter's training target, official
    ``{background, part}``) and ``mask`` N x 1 x H x W in {0, 1}. ``part``: ``eyes_nose_mouth``
    (M1: l_eye, r_eye, nose, u_lip, mouth, l_lip), ``hair`` (M2), or ``eyes`` / ``nose`` /
    ``mouth``. An image without the part gives an all-zero mask (no error)."""

    version = "1"

    class Params(Params):
        part: Part = Field("eyes_nose_mouth", description="which classes form the part (PARTS): "
                           "eyes_nose_mouth = M1, hair = M2")

    inputs = {"labels": LabelMap("celebamask11", doc="face parser output (face.UNetParser)")}
    outputs = {"labels": LabelMap("dds_part"), "mask": Mask(doc="1 = part")}

    def forward(self, labels: torch.Tensor) -> dict[str, Any]:
        y = part_mask(labels, self.params.part)
        return {"labels": y, "mask": y[:, None].float()}


class CodeSet(torch.utils.data.Dataset):
    """``count`` codes; item i is ``randn(dim)`` drawn from seed ``seed + i``."""

    def __init__(self, count: int, dim: int, seed: int) -> None:
        self.count, self.dim, self.seed = count, dim, seed

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not 0 <= i < self.count:
            raise IndexError(i)
        return {"z": torch.randn(1, self.dim, generator=torch.Generator().manual_seed(self.seed + i))[0]}


@register("dualdomain.Codes")
class Codes(DatasetNode):
    """A dataset of latent codes z (B x D, N(0, I)): item i is the code ``stylegan.SampleZ`` draws
    with batch 1 and seed ``seed + i``, so a sample seen in a training graph can be re-made with
    the inference graphs. ``count`` 1 = the one-shot segmenter's single labelled sample
    (``graphs/dds_segmenter_train.json``); more = held-out sets."""

    version = "1"

    class Params(Params):
        count: int = Field(1, ge=1, le=10_000_000, description="number of codes (1 = one-shot)")
        dim: int = Field(512, ge=1, le=4096, description="D (the generator's style_dim)")
        seed: int = Field(0, description="item i is stylegan.SampleZ(batch=1, seed=seed+i)'s code")
        batch_size: int = Field(1, ge=1, le=4096)

    outputs = {"z": Tensor(rank=2, doc="B x D codes")}

    def dataset(self) -> CodeSet:
        p = self.params
        return CodeSet(p.count, p.dim, p.seed)
