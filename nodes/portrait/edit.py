"""Small editing nodes of the portrait family: the three applications of section 4.4 and the
unpaired pairing of section 3.3, as data operations on masks, codes and batches (no networks).

- ``portrait.PairTargets`` / ``portrait.SplitPairs`` — one batch of targets holding both training
  cases of section 3.3 (paired x^t = x^s, unpaired x^t = another face) and its two halves;
- ``portrait.RollBatch`` — pair sample i with sample i - shift;
- ``portrait.MixEmbedding`` — copy components' codes from a donor face (style transfer, 4.4.3);
- ``portrait.EditMask`` — replace a component of the target mask by a donor's (component editing, 4.4.2);
- ``portrait.ShowLabels`` — a celebamask11 map as a colour image for contact sheets.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field

import nodes.common.labelsets  # noqa: F401  (registers celebamask11)
from nodegraph.node import Node, NodeError, Params
from nodegraph.registry import register
from nodegraph.types import Image, LabelMap, Tensor, get_label_set

from .net import PARTS

Part = Literal["l_eye", "r_eye", "mouth", "skin", "hair"]

# Mask components an edit can swap, with the label that fills the vacated pixels.
EDITABLE: dict[str, tuple[tuple[int, ...], int]] = {
    "hair": ((10,), 0), "mouth": ((7, 8, 9), 1), "eyes": ((4, 5), 1), "l_eye": ((4,), 1),
    "r_eye": ((5,), 1), "brows": ((2, 3), 1), "nose": ((6,), 1),
}


def _expand_to(t: torch.Tensor, n: int) -> torch.Tensor:
    return t.expand(n, *t.shape[1:]) if t.shape[0] == 1 and n != 1 else t


@register("portrait.RollBatch")
class RollBatch(Node):
    """Shift a batch by ``shift`` samples (``torch.roll``): wired on the target side it turns a
    paired batch (x^s = x^t) into unpaired data, as the official code permuted part latents."""

    version = "1"

    class Params(Params):
        shift: int = Field(1, description="samples to roll by (0 = identity)")

    inputs = {"image": Image(optional=True), "labels": LabelMap(optional=True),
              "centres": Tensor(rank=3, optional=True), "codes": Tensor(rank=3, optional=True)}
    outputs = {"image": Image(optional=True), "labels": LabelMap(optional=True),
               "centres": Tensor(rank=3, optional=True), "codes": Tensor(rank=3, optional=True)}

    @classmethod
    def resolve_ports(cls, params, upstream):
        ins, outs = dict(cls.inputs), dict(cls.outputs)
        if "labels" in upstream:  # keep the label set of what was wired
            outs["labels"] = upstream["labels"].with_(optional=True)
        return ins, outs

    def forward(self, **inputs: torch.Tensor | None) -> dict[str, Any]:
        return {k: v.roll(self.params.shift, 0) for k, v in inputs.items() if v is not None}


@register("portrait.PairTargets")
class PairTargets(Node):
    """Targets for paired + unpaired training in one pass (section 3.3): ``[x; roll(x, shift)]``.

    Sample i of the first half is its own source (paired data: eq 3.9 with L_global and L_FM);
    sample B + i is the face i - shift, rendered with the components of source i (unpaired data:
    eq 3.10, judged by D2 and P_F only) — the official code permuted part latents the same way.
    The networks' nodes tile the B source features over the 2B targets, so one node (one set of
    weights) serves both cases; ``portrait.SplitPairs`` takes the halves apart for the losses.
    """

    version = "1"

    class Params(Params):
        shift: int = Field(1, ge=1, description="unpaired target of source i is sample i - shift")

    inputs = {"image": Image(), "labels": LabelMap("celebamask11")}
    outputs = {"image": Image(doc="2B targets: paired then unpaired"),
               "labels": LabelMap("celebamask11", doc="their masks")}

    def forward(self, image: torch.Tensor, labels: torch.Tensor) -> dict[str, Any]:
        s = self.params.shift
        return {"image": torch.cat([image, image.roll(s, 0)]), "labels": torch.cat([labels, labels.roll(s, 0)])}


@register("portrait.SplitPairs")
class SplitPairs(Node):
    """The paired (first) and unpaired (second) half of a batch made from portrait.PairTargets."""

    version = "1"
    inputs = {"image": Image(optional=True), "labels": LabelMap(optional=True)}
    outputs = {"paired_image": Image(optional=True), "unpaired_image": Image(optional=True),
               "paired_labels": LabelMap(optional=True), "unpaired_labels": LabelMap(optional=True)}

    @classmethod
    def resolve_ports(cls, params, upstream):
        ins, outs = dict(cls.inputs), dict(cls.outputs)
        if "labels" in upstream:
            for k in ("paired_labels", "unpaired_labels"):
                outs[k] = upstream["labels"].with_(optional=True)
        return ins, outs

    def forward(self, image: torch.Tensor | None = None, labels: torch.Tensor | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, t in (("image", image), ("labels", labels)):
            if t is None:
                continue
            if t.shape[0] % 2:
                raise NodeError(f"input {name}: batch {t.shape[0]} is odd; wire a portrait.PairTargets batch",
                                self.ctx.node_id or self.type_name, name)
            h = t.shape[0] // 2
            out[f"paired_{name}"], out[f"unpaired_{name}"] = t[:h], t[h:]
        return out


@register("portrait.MixEmbedding")
class MixEmbedding(Node):
    """Style transfer (section 4.4.3): the codes of ``codes`` with ``components`` taken from
    ``donor``. A batch-1 side is broadcast, so one face x several donors gives several edits."""

    version = "1"

    class Params(Params):
        components: list[Part] = Field(default_factory=lambda: ["hair"],
                                       description=f"components to copy, from {', '.join(PARTS)}")

    inputs = {"codes": Tensor(rank=3, doc="B x 5 x latent (portrait.LocalEmbedding)"),
              "donor": Tensor(rank=3, doc="B x 5 x latent of the donor faces")}
    outputs = {"codes": Tensor(rank=3)}

    def forward(self, codes: torch.Tensor, donor: torch.Tensor) -> dict[str, Any]:
        if codes.shape[1:] != donor.shape[1:]:
            raise NodeError(f"codes {tuple(codes.shape)} and donor {tuple(donor.shape)} come from different "
                            "local embeddings", self.ctx.node_id or self.type_name, "donor")
        n = max(codes.shape[0], donor.shape[0])
        out = _expand_to(codes, n).clone()
        donor = _expand_to(donor, n)
        for c in self.params.components:
            k = PARTS.index(c)
            out[:, k] = donor[:, k]
        return {"codes": out}


@register("portrait.EditMask")
class EditMask(Node):
    """Component editing (section 4.4.2): replace one component of the target mask by the donor's.

    The target's pixels of the component are vacated (to skin for face parts, to background for
    hair), then the donor's pixels of it are painted on top. Both maps must be aligned faces of
    the same size (as the dataset's are). A batch-1 target is edited once per donor; ``image``
    (the target image) comes out at that batch size, ready for face.ComponentCrop.
    """

    version = "1"

    class Params(Params):
        component: Literal["hair", "mouth", "eyes", "l_eye", "r_eye", "brows", "nose"] = "mouth"

    inputs = {"labels": LabelMap("celebamask11"), "donor": LabelMap("celebamask11"),
              "image": Image(optional=True, doc="the target image, passed on at the edited batch size")}
    outputs = {"labels": LabelMap("celebamask11"), "image": Image(optional=True)}

    def forward(self, labels: torch.Tensor, donor: torch.Tensor,
                image: torch.Tensor | None = None) -> dict[str, Any]:
        if labels.shape[-2:] != donor.shape[-2:]:
            raise NodeError(f"labels {tuple(labels.shape)} and donor {tuple(donor.shape)} differ in size",
                            self.ctx.node_id or self.type_name, "donor")
        n = max(labels.shape[0], donor.shape[0])
        ids, fill = EDITABLE[self.params.component]
        idt = torch.tensor(ids, device=labels.device)
        out = _expand_to(labels, n).clone()
        donor = _expand_to(donor, n)
        out[torch.isin(out, idt)] = fill
        paint = torch.isin(donor, idt)
        out[paint] = donor[paint]
        if image is None:
            return {"labels": out}
        return {"labels": out, "image": _expand_to(image, n)}


@register("portrait.ShowLabels")
class ShowLabels(Node):
    """A label map drawn in its label set's palette (an Image for contact sheets)."""

    version = "1"

    class Params(Params):
        label_set: str = Field("celebamask11", description="palette to draw with")

    inputs = {"labels": LabelMap()}
    outputs = {"image": Image()}

    def forward(self, labels: torch.Tensor) -> dict[str, Any]:
        ls = get_label_set(self.params.label_set)
        pal = torch.tensor(ls.palette, dtype=torch.float32, device=labels.device) / 255
        return {"image": pal[labels.clamp(0, len(pal) - 1)].permute(0, 3, 1, 2).contiguous()}
