"""A PhotoWCT encoder that knows what it sees: feature distillation from an ImageNet network.

PhotoWCT (Li et al. 2018) needs an encoder whose relu1_1..relu4_1 features mean something: the
official one is the ImageNet-trained normalised VGG19, which cannot be fetched here, and the
shipped ``photowct_default`` has a fixed random one, so WCT matches no semantics (issue 17). Here
the VGG19-shaped encoder (the official layer list to relu4_1, unchanged, so it still drops into
the eight-module PhotoWCT layout) is trained so that each relu{k}_1 map predicts the offline
ImageNet network's features (``features.EfficientNetLite0``) at the matching stride through a
small learned head P_k (feature distillation; the heads are thrown away afterwards):

    L = 1/4 sum_k mean || P_k(relu{k}_1(x)) - norm(T_k(x)) ||^2

with T_k the teacher's tap (relu1_1 -> s2 through a stride-2 head, relu2_1 -> s2, relu3_1 -> s4,
relu4_1 -> s8: the strides of VGG's relu{k}_1 are 1, 2, 4, 8) and norm() a per-channel
standardisation over the batch (detached), so every level and channel weighs alike. The four
decoders are then trained for reconstruction on the frozen encoder, as ``nodes/pis/train.py``
does today. Training graph: ``graphs/photowct_train.json``.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from nodegraph import weights as W
from nodegraph.node import Node, NodeError, Params, WeightsRef
from nodegraph.registry import register
from nodegraph.types import Image, Model, Scalar, Tensor

from .photowct import OFFICIAL_WIDTHS, VGGEncoder

LEVELS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
STRIDES = (1, 2, 4, 8)
"""Stride of relu{k}_1 in the VGG19 prefix (three 2x2 max-pools)."""
WIDTHS = {"small": (32, 64, 128, 256), "official": OFFICIAL_WIDTHS}
TEACHER_TAPS = {"s2": (2, 16), "s4": (4, 24), "s8": (8, 40), "s16": (16, 112)}
"""EfficientNet-Lite0 tap -> (stride, channels) (nodes/features/net.py TAPS / TAP_CHANNELS)."""


def init_he(enc: VGGEncoder, seed: int) -> None:
    """He-normal 3x3 convs, zero biases, conv0 = identity (RGB in [0, 1] passes through): the
    initialisation of the shipped random encoder (nodes/pis/train.py)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, mod in enc.named_children():
            if name == "conv0":
                mod.weight.copy_(torch.eye(3)[:, :, None, None])
            else:
                mod.weight.copy_(torch.randn(mod.weight.shape, generator=g) * (2.0 / mod.weight[0].numel()) ** 0.5)
            mod.bias.zero_()


def encoder_state(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The relu4_1 encoder's tensors from a pis.Encoder export or a whole PhotoWCT file (``e4.*``)."""
    tagged = {k[3:]: v for k, v in sd.items() if k.startswith("e4.")}
    return tagged or sd


@register("pis.Encoder")
class Encoder(Node):
    """The PhotoWCT encoder E (normalised-VGG19 prefix to relu4_1, the official layer list) as a
    trainable node: image (B x 3 x H x W in [0, 1], H, W >= 8) -> relu1_1 .. relu4_1 maps at
    strides 1, 2, 4, 8 (``widths`` channels). Its export loads as ``e1``..``e4`` of a PhotoWCT file
    (each e_k is a prefix of e4)."""

    version = "1"

    class Params(Params):
        widths: Literal["small", "official"] = Field(
            "small", description="small: 32/64/128/256 channels (photowct_default's); official: 64..512")
        weights: WeightsRef = Field("", description="start from: a pis.Encoder export or a PhotoWCT file "
                                                    "(its e4); '' = He-normal init with ``seed``")
        seed: int = 0

    inputs = {"image": Image()}
    outputs = {name: Tensor(rank=4) for name in LEVELS}

    def setup(self) -> None:
        self.net = VGGEncoder(4, WIDTHS[self.params.widths]).to(self.device)
        if self.params.weights:
            try:
                sd = encoder_state(W.load(self.params.weights, self.ctx.base_dir))
                self.net.load_state_dict(sd)
            except (W.WeightsError, RuntimeError) as e:
                raise NodeError(f"params.weights: {e}", self.ctx.node_id or self.type_name,
                                "params.weights") from None
        else:
            init_he(self.net, self.params.seed)
        self.net.train(self.ctx.training)

    def forward(self, image: torch.Tensor) -> dict[str, Any]:
        if min(image.shape[-2:]) < 8:
            raise NodeError(f"image is {tuple(image.shape[-2:])} px; the encoder pools three times: "
                            "give it at least 8 x 8", self.ctx.node_id or self.type_name, "image")
        _, feats, _ = self.net.encode_levels(image)
        return dict(zip(LEVELS, feats, strict=True))


class DistillHeadsNet(nn.Module):
    """P_k: conv 3x3 (stride = teacher stride / student stride) + ReLU + conv 1x1 per level."""

    def __init__(self, widths: tuple[int, ...], taps: tuple[str, ...], hidden: int) -> None:
        super().__init__()
        heads = []
        for c, s, tap in zip(widths, STRIDES, taps, strict=True):
            t_stride, t_ch = TEACHER_TAPS[tap]
            step = t_stride // s
            if step not in (1, 2) or t_stride % s:
                raise ValueError(f"teacher tap {tap} (stride {t_stride}) cannot follow a stride-{s} level: "
                                 "the head may keep or halve the resolution only")
            heads.append(nn.Sequential(nn.Conv2d(c, hidden, 3, step, 1), nn.ReLU(True),
                                       nn.Conv2d(hidden, t_ch, 1)))
        self.heads = nn.ModuleList(heads)

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        return [h(f) for h, f in zip(self.heads, feats, strict=True)]


def standardise(t: torch.Tensor) -> torch.Tensor:
    """Per-channel zero mean, unit std over batch and space (no gradient)."""
    t = t.detach()
    return (t - t.mean((0, 2, 3), keepdim=True)) / t.std((0, 2, 3), keepdim=True).clamp_min(1e-6)


@register("pis.DistillHeads")
class DistillHeads(Node):
    """Feature-distillation loss for ``pis.Encoder`` (module docstring): heads P_k on the student's
    relu{k}_1 predict the standardised teacher maps T_k(image) at the matching stride. ``teacher``:
    ``features.EfficientNetLite0``'s ``model`` whose ``taps`` include this node's ``taps``. Outputs
    ``loss`` (mean over the four levels) and ``levels`` (the four terms, for logging)."""

    version = "1"

    class Params(Params):
        student: Literal["small", "official"] = Field("small", description="the pis.Encoder's widths")
        taps: list[Literal["s2", "s4", "s8", "s16"]] = Field(
            ["s2", "s2", "s4", "s8"], min_length=4, max_length=4,
            description="teacher tap for relu1_1, relu2_1, relu3_1, relu4_1")
        hidden: int = Field(64, ge=8, le=1024, description="width of each head")
        weights: WeightsRef = ""

    inputs = {**{name: Tensor(rank=4) for name in LEVELS}, "image": Image(), "teacher": Model()}
    outputs = {"loss": Scalar(), "levels": Tensor(rank=1)}

    def setup(self) -> None:
        try:
            self.net = DistillHeadsNet(WIDTHS[self.params.student], tuple(self.params.taps), self.params.hidden)
        except ValueError as e:
            raise NodeError(str(e), self.ctx.node_id or self.type_name, "params.taps") from None
        if self.params.weights:
            W.load_into(self.net, self.params.weights, self.ctx.base_dir)
        self.net.to(self.device).train(self.ctx.training)

    def forward(self, image: torch.Tensor, teacher: torch.nn.Module, **feats: torch.Tensor) -> dict[str, Any]:
        who = self.ctx.node_id or self.type_name
        names = tuple(getattr(teacher, "tap_names", ()))
        missing = [t for t in self.params.taps if t not in names]
        if missing:
            raise NodeError(f"the teacher returns taps {list(names)}, not {missing}: set its params.taps to "
                            f"include {sorted(set(self.params.taps))}", who, "teacher")
        with torch.no_grad():
            maps = dict(zip(names, teacher(image), strict=True))
        preds = self.net([feats[name] for name in LEVELS])
        terms = []
        for pred, tap in zip(preds, self.params.taps, strict=True):
            target = standardise(maps[tap].float())
            if pred.shape[-2:] != target.shape[-2:]:  # odd sizes: TF 'same' rounds up, max-pool down
                pred = F.interpolate(pred, size=target.shape[-2:], mode="bilinear", align_corners=False)
            terms.append(F.mse_loss(pred, target))
        levels = torch.stack(terms)
        return {"loss": levels.mean(), "levels": levels.detach()}


__all__ = ["Encoder", "DistillHeads", "encoder_state", "init_he"]
