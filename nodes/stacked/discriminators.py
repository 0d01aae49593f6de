"""stacked family, part 2: the discriminators and the mismatched-attribute sampler.

Paper §3.2: Markovian discriminators D_i, each judging N_i x N_i patches ("P_i = 1 refers to the
global range"), least-squares loss (``loss.GAN`` mode ``ls``; weights lambda_i are the objective's
loss weights); and a conditional D_cGAN trained on three pairs - (real, a) -> 1, (real, a_hat) -> 0,
(fake, a_bar) -> 0 (Reed et al. 2016's matching-aware D; ``loss.GAN`` with its ``wrong`` input).
Real and fake pass through a D in separate calls, so BatchNorm sees each on its own (pix2pix and
StackGAN do the same).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field

from nodegraph.node import Node, NodeError, Params, WeightsRef
from nodegraph.registry import register
from nodegraph.types import Attributes, Image, Mask, PortType, Tensor, get_attribute_schema

from .net import ConditionalD, GlobalD, NLayerD, PixelPatchD
from .nodes import Subset, _NetNode, attribute_port, select, who

ReceptiveField = Literal["pixel", "patch3", "patch16", "patch34", "patch70", "global"]
Logits = Tensor(rank=4, doc="N x 1 x h x w logits")


def _port(channels: int, **kw: Any) -> PortType:
    return Mask(**kw) if channels == 1 else Image(**kw)


def _signed(x: torch.Tensor) -> torch.Tensor:
    return x * 2 - 1  # masks and images enter every D in [-1, 1]


class _DParams(Params):
    channels: Literal[1, 3] = Field(1, description="1: judges masks (Stage-I); 3: judges images (Stage-II)")
    ndf: int = Field(32, ge=4, le=512, description="pix2pix / StackGAN 64; CPU default 32")
    size: int = Field(64, ge=32, le=512, description="input side in pixels")
    weights: WeightsRef = ""


def _check_size(node: Node, port: str, x: torch.Tensor) -> None:
    s = node.params.size
    if tuple(x.shape[-2:]) != (s, s):
        raise NodeError(f"{who(node)}.{port}: got {x.shape[-2]} x {x.shape[-1]}, this discriminator "
                        f"takes {s} x {s} (params.size)", who(node), port)


@register("stacked.PatchDiscriminator")
class PatchDiscriminator(_NetNode):
    """Markovian (PatchGAN) discriminator with the receptive field as a param (paper §3.2, pix2pix §3.2.2):
    ``pixel`` 1 x 1 (pix2pix PixelDiscriminator), ``patch3`` the paper's 3 x 3 PatchGAN (PixelGAN with a
    3 x 3 first conv: our construction), ``patch16/34/70`` pix2pix NLayerDiscriminator with 1/2/3 layers,
    ``global`` one logit per image (StackGAN's encoder to 4 x 4 + conv 4 x 4 stride 4). Outputs the
    logit maps of fake and (when wired) real; use with ``loss.GAN`` mode ``ls``."""

    class Params(_DParams):
        receptive_field: ReceptiveField = "pixel"

    inputs = {"fake": Mask(), "real": Mask(optional=True)}
    outputs = {"fake": Logits, "real": Tensor(rank=4, optional=True)}

    @classmethod
    def resolve_ports(cls, params: Any, upstream: dict[str, PortType]) -> tuple[dict, dict]:
        return {"fake": _port(params.channels), "real": _port(params.channels, optional=True)}, dict(cls.outputs)

    def build(self) -> torch.nn.Module:
        p = self.params
        rf = p.receptive_field
        if rf in ("pixel", "patch3"):
            return PixelPatchD(p.channels, p.ndf, 1 if rf == "pixel" else 3)
        if rf == "global":
            return GlobalD(p.channels, p.ndf, p.size)
        return NLayerD(p.channels, p.ndf, {"patch16": 1, "patch34": 2, "patch70": 3}[rf])

    def forward(self, fake: torch.Tensor, real: torch.Tensor | None = None) -> dict[str, Any]:
        _check_size(self, "fake", fake)
        out = {"fake": self.net(_signed(fake))}
        if real is not None:
            _check_size(self, "real", real)
            out["real"] = self.net(_signed(real))
        return out


@register("stacked.ConditionalDiscriminator")
class ConditionalDiscriminator(_NetNode):
    """D_cGAN(x, a) (paper §3.2 / §3.3, after Reed et al. 2016 and StackGAN): image or mask encoded to
    4 x 4, attributes compressed (FC -> 128, LReLU) and tiled 4 x 4, joint conv, one logit. Outputs the
    logits of the three pairs: ``real`` = D(x, a) (s_r+), ``wrong`` = D(x, a_hat) (s_w-), ``fake`` =
    D(x_g, a) (s_g-; the generator was given a). ``subset``: shape for Stage-I, non_shape for Stage-II."""

    class Params(_DParams):
        subset: Subset = Field("shape", description="the attributes D conditions on")

    inputs = {"fake": Mask(), "attributes": attribute_port("shape"), "real": Mask(optional=True),
              "wrong": attribute_port("shape", optional=True)}
    outputs = {"fake": Logits, "real": Tensor(rank=4, optional=True), "wrong": Tensor(rank=4, optional=True)}

    @classmethod
    def resolve_ports(cls, params: Any, upstream: dict[str, PortType]) -> tuple[dict, dict]:
        ins = {"fake": _port(params.channels), "attributes": attribute_port(params.subset),
               "real": _port(params.channels, optional=True),
               "wrong": attribute_port(params.subset, optional=True)}
        return ins, dict(cls.outputs)

    def build(self) -> torch.nn.Module:
        p = self.params
        return ConditionalD(p.channels, get_attribute_schema("cub312").size(p.subset), p.ndf, p.size)

    def forward(self, fake: torch.Tensor, attributes: torch.Tensor, real: torch.Tensor | None = None,
                wrong: torch.Tensor | None = None) -> dict[str, Any]:
        _check_size(self, "fake", fake)
        a = select(self, "attributes", attributes, self.params.subset)
        out = {"fake": self.net(_signed(fake), a)}
        if real is not None:
            _check_size(self, "real", real)
            out["real"] = self.net(_signed(real), a)
            if wrong is not None:
                out["wrong"] = self.net(_signed(real), select(self, "wrong", wrong, self.params.subset))
        return out


@register("stacked.MismatchAttributes")
class MismatchAttributes(Node):
    """Mismatched attributes a_hat for the matching-aware D (GAN-INT-CLS). ``shift``: the batch rolled by
    one (StackGAN / AttnGAN / Dong et al.), rolling further where that gives an identical vector;
    ``class``: for each item, the attributes of a random item of another class (Reed et al.; needs
    ``class_id``). Random draws use torch's RNG (re-seeded every training step).

    ``subset``: the columns the conditional D reads (``shape`` for Stage-I). "Identical" is judged
    on them: two birds with different colours but the same 42 shape attributes are the *same*
    condition to a shape D, and scoring that pair as a mismatch contradicts the matching pair."""

    class Params(Params):
        mode: Literal["shift", "class"] = "shift"
        subset: Subset = Field("all", description="columns compared when avoiding identical vectors "
                               "(the subset the conditional D reads)")

    inputs = {"attributes": Attributes(), "class_id": Tensor(rank=1, optional=True)}
    outputs = {"wrong": Attributes()}

    @classmethod
    def resolve_ports(cls, params: Any, upstream: dict[str, PortType]) -> tuple[dict, dict]:
        up = upstream.get("attributes")
        return dict(cls.inputs), {"wrong": up if isinstance(up, Attributes) else Attributes()}

    def forward(self, attributes: torch.Tensor, class_id: torch.Tensor | None = None) -> dict[str, Any]:
        a = attributes
        n = a.shape[0]
        if n < 2:
            raise NodeError(f"{who(self)}.attributes: a batch of {n}; mismatched pairs need at least 2",
                            who(self), "attributes")
        if self.params.mode == "class":
            if class_id is None:
                raise NodeError(f"{who(self)}.class_id: mode 'class' needs the class ids",
                                who(self), "class_id")
            other = class_id[None, :] != class_id[:, None]  # (N, N) allowed partners
            pick = torch.multinomial(other.float() + 1e-9 * (~other.any(1, keepdim=True)), 1)[:, 0]
            return {"wrong": a[pick]}
        idx = torch.arange(n, device=a.device)
        out_idx = (idx + 1) % n
        seen = a if self.params.subset == "all" else select(self, "attributes", a, self.params.subset)
        for k in range(2, n):
            same = (seen[out_idx] == seen).all(1)
            if not bool(same.any()):
                break
            out_idx = torch.where(same, (idx + k) % n, out_idx)
        return {"wrong": a[out_idx]}
