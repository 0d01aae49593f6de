"""stacked family: the stacked attribute -> shape -> image GAN (Zhao, "Realistic Image Generation via
Cross-domain Information"), as typed doors to ``net.py`` / ``unet.py``.

Attribute ports carry the ``cub312`` schema (``nodes.common.attrsets``). A node that wants a subset
(``shape`` for Stage-I, ``non_shape`` for Stage-II) accepts the full 312-vector, picking its
columns, or a vector of that subset; wiring the other subset fails validation. Ranges are
converted here only: Image ports are [0, 1], the networks work in [-1, 1].
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field

from nodegraph import weights as weights_mod
from nodegraph.node import Node, NodeError, Params, WeightsRef
from nodegraph.registry import register
from nodegraph.types import Attributes, Image, Mask, PortType, Scalar, Tensor, get_attribute_schema

from ..common import attrsets  # noqa: F401  (registers cub312)
from .net import PRESETS_S1, Attr2ShapeNet, CANet
from .unet import PRESETS_S2, Shape2ImageConfig, Shape2ImageNet

Subset = Literal["shape", "non_shape", "all"]


def who(node: Node) -> str:
    """The node id in a graph, else its type name (standalone use)."""
    return node.ctx.node_id or node.type_name


def attribute_port(subset: str, **kw: Any) -> Attributes:
    return Attributes("cub312", subset=None if subset == "all" else subset, **kw)


def select(node: Node, port: str, a: torch.Tensor, subset: str) -> torch.Tensor:
    """The ``subset`` columns of a cub312 vector (full 312 or already the subset), else a NodeError."""
    schema = get_attribute_schema("cub312")
    if subset == "all" or a.shape[1] == schema.size(subset) and a.shape[1] != len(schema):
        if subset == "all" and a.shape[1] != len(schema):
            raise NodeError(f"{who(node)}.{port}: expected 312 cub312 attributes, got {a.shape[1]}",
                            who(node), port)
        return a
    if a.shape[1] != len(schema):
        raise NodeError(f"{who(node)}.{port}: got {a.shape[1]} attributes; this input takes the full "
                        f"cub312 vector (312) or its {subset!r} subset ({schema.size(subset)})",
                        who(node), port)
    return a[:, list(schema.subset(subset))]


def _rng(node: Node) -> torch.Generator | None:
    """None (torch's global RNG, re-seeded per step by the trainer) while training, else params.seed."""
    net = node.module()
    if net is not None and net.training:
        return None
    return torch.Generator().manual_seed(int(node.params.seed))


def _randn(node: Node, *shape: int) -> torch.Tensor:
    g = _rng(node)
    return (torch.randn(*shape) if g is None else torch.randn(*shape, generator=g)).to(node.device)


class _NetNode(Node):
    """Builds ``self.net`` from ``build()`` and loads ``params.weights`` ('' = fresh init)."""

    def build(self) -> torch.nn.Module:
        raise NotImplementedError

    def setup(self) -> None:
        self.net = self.build()
        if self.params.weights:
            weights_mod.load_into(self.net, self.params.weights, self.ctx.base_dir)
        self.net.to(self.device).eval()


@register("stacked.SelectAttributes")
class SelectAttributes(Node):
    """The ``subset`` columns of a cub312 vector (N x 312 -> N x 42 shape / 270 non_shape), typed as that
    subset, so wiring it to a port of the other subset fails validation."""

    class Params(Params):
        subset: Literal["shape", "non_shape"] = "shape"

    inputs = {"attributes": Attributes("cub312")}
    outputs = {"attributes": Attributes("cub312")}

    @classmethod
    def resolve_ports(cls, params: Any, upstream: dict[str, PortType]) -> tuple[dict, dict]:
        return {"attributes": attribute_port(params.subset)}, {"attributes": attribute_port(params.subset)}

    def forward(self, attributes: torch.Tensor) -> dict[str, Any]:
        return {"attributes": select(self, "attributes", attributes, self.params.subset)}


@register("stacked.ConditioningAugmentation")
class ConditioningAugmentation(_NetNode):
    """StackGAN conditioning augmentation (Zhang et al. 2017 §3.1; paper §3.2 "we use mu(phi(a)) and
    Sigma(phi(a))"): c = mu + sigma * eps with (mu, log sigma^2) = split(act(W a + b)).

    Outputs c, mu, logvar (N x c_dim) and kl = mean(-1/2 (1 + log sigma^2 - mu^2 - sigma^2)), StackGAN's
    ``KL_loss`` (weight lambda_0 in the objective; StackGAN's default 2.0). ``act`` relu = StackGAN v1
    (the cited code), glu = StackGAN-v2 / AttnGAN. The generators below hold their own CA."""

    class Params(Params):
        subset: Subset = Field("all", description="which cub312 columns phi reads")
        c_dim: int = Field(128, ge=1, le=1024, description="StackGAN: 128")
        act: Literal["relu", "glu"] = "relu"
        seed: int = Field(0, description="eps at inference (training uses the step RNG)")
        weights: WeightsRef = ""

    inputs = {"attributes": Attributes("cub312")}
    outputs = {"c": Tensor(rank=2), "mu": Tensor(rank=2), "logvar": Tensor(rank=2), "kl": Scalar()}

    @classmethod
    def resolve_ports(cls, params: Any, upstream: dict[str, PortType]) -> tuple[dict, dict]:
        return {"attributes": attribute_port(params.subset)}, dict(cls.outputs)

    def build(self) -> torch.nn.Module:
        return CANet(get_attribute_schema("cub312").size(self.params.subset), self.params.c_dim, self.params.act)

    def forward(self, attributes: torch.Tensor) -> dict[str, Any]:
        a = select(self, "attributes", attributes, self.params.subset)
        c, mu, logvar, kl = self.net(a, _randn(self, a.shape[0], self.params.c_dim))
        return {"c": c, "mu": mu, "logvar": logvar, "kl": kl}


@register("stacked.Attr2Shape")
class Attr2Shape(_NetNode):
    """Stage-I attribute2shape G(a_s, z) (paper §3.2): StackGAN's Stage-I generator (DCGAN: FC to
    4 x 4, four nearest-upsample conv blocks, Tanh) with one output channel: a 64 x 64 shape mask in
    [0, 1]. Holds its CA on the 42 shape attributes (z 100, c 128 as StackGAN). ``samples`` draws that
    many z per attribute vector (output batch = N x samples); z comes from ``seed`` at inference.
    Outputs mu, logvar and kl (CA's KL, weight lambda_0) for training."""

    class Params(Params):
        preset: Literal["cpu", "wide", "stackgan"] = Field(
            "wide", description="cpu: gf 16, CA ReLU; wide: gf 32, CA GLU (see Attr2ShapeConfig); stackgan: GF_DIM 128")
        weights: WeightsRef = Field("attr2shape_birds64", description="'' = fresh init (training)")
        samples: int = Field(1, ge=1, le=64, description="masks drawn per attribute vector")
        seed: int = 0

    inputs = {"attributes": attribute_port("shape"), "z": Tensor(rank=2, optional=True, doc="N x 100 noise")}
    outputs = {"shape": Mask(), "mu": Tensor(rank=2), "logvar": Tensor(rank=2), "kl": Scalar()}

    def build(self) -> torch.nn.Module:
        return Attr2ShapeNet(PRESETS_S1[self.params.preset])

    def forward(self, attributes: torch.Tensor, z: torch.Tensor | None = None) -> dict[str, Any]:
        a_s = select(self, "attributes", attributes, "shape").repeat_interleave(self.params.samples, 0)
        cfg = self.net.cfg
        if z is None:
            z = _randn(self, a_s.shape[0], cfg.z_dim)
        elif z.shape != (a_s.shape[0], cfg.z_dim):
            raise NodeError(f"{who(self)}.z: expected {a_s.shape[0]} x {cfg.z_dim}, got {tuple(z.shape)}",
                            who(self), "z")
        s, mu, logvar, kl = self.net(a_s, z, _randn(self, a_s.shape[0], cfg.c_dim))
        return {"shape": s, "mu": mu, "logvar": logvar, "kl": kl}


def _broadcast(node: Node, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pair a batch of 1 with a batch of N (one shape x several colour sets, and the reverse)."""
    if a.shape[0] == b.shape[0]:
        return a, b
    if a.shape[0] == 1:
        return a.expand(b.shape[0], *a.shape[1:]), b
    if b.shape[0] == 1:
        return a, b.expand(a.shape[0], *b.shape[1:])
    raise NodeError(f"{who(node)}: shape batch {a.shape[0]} and attributes batch {b.shape[0]} differ "
                    "(equal batches, or one of them 1)", who(node))


@register("stacked.Shape2Image")
class Shape2Image(_NetNode):
    """Stage-II shape2image G(a_o, s) (paper §3.3): pix2pix's U-Net with skip connections between layer
    i and n - i; the 270 non-shape attributes a_o enter through conditioning augmentation at the 1 x 1
    bottleneck (``inject_decoder``: also at the 2 and 4 px decoder levels). Shape: N x 1 x 64 x 64
    mask in [0, 1] (soft masks pass gradients back to Stage-I); image: N x 3 x 64 x 64 in [0, 1].

    L1 to the ground truth: the shipped training graph weights ``loss.L1`` (on [0, 1] images) by 200,
    i.e. pix2pix's lambda_L1 = 100 on [-1, 1] images, not the paper's written 1: at lambda 1 the
    (LSGAN) adversarial terms dominate and the colours named by a_o are learnt far slower on a
    CPU budget; pix2pix §4.3 reports 100 as its best trade-off between sharpness and fidelity. The
    graph adds the same L1 inside the bird (``loss.L1`` with the mask, weight 200; not in the paper):
    the background is not predictable from the mask or a_o, and without that term 400 steps left
    the colour code unused (benchmarks/results_stacked.md).
    Dropout 0.5 in the middle 8 ngf block (pix2pix) is active in training only."""

    class Params(Params):
        preset: Literal["cpu", "glu", "pix2pix"] = Field(
            "glu", description="cpu: ngf 16, CA ReLU; glu: ngf 16, CA GLU (Shape2ImageConfig); pix2pix: ngf 64")
        inject_decoder: bool = Field(True, description="also concat c_o at the 2 and 4 px decoder levels "
                                     "(on for the shipped weights)")
        weights: WeightsRef = Field("shape2image_birds64", description="'' = fresh init (training)")
        seed: int = Field(0, description="CA noise at inference")

    inputs = {"shape": Mask(), "attributes": attribute_port("non_shape")}
    outputs = {"image": Image(), "mu": Tensor(rank=2), "logvar": Tensor(rank=2), "kl": Scalar()}

    def build(self) -> torch.nn.Module:
        base = PRESETS_S2[self.params.preset]
        return Shape2ImageNet(Shape2ImageConfig(**{**base.__dict__, "inject_decoder": self.params.inject_decoder}))

    def forward(self, shape: torch.Tensor, attributes: torch.Tensor) -> dict[str, Any]:
        size = self.net.cfg.size
        if tuple(shape.shape[-2:]) != (size, size):
            raise NodeError(f"{who(self)}.shape: the mask is {shape.shape[-2]} x {shape.shape[-1]}; this "
                            f"Stage-II generator takes {size} x {size} masks (resize it with image.Resize)",
                            who(self), "shape")
        a_o = select(self, "attributes", attributes, "non_shape")
        shape, a_o = _broadcast(self, shape, a_o)
        x, mu, logvar, kl = self.net(shape, a_o, _randn(self, a_o.shape[0], self.net.cfg.c_dim))
        return {"image": (x + 1) / 2, "mu": mu, "logvar": logvar, "kl": kl}


from . import discriminators  # noqa: E402,F401  (registers the discriminators and the mismatch sampler)
