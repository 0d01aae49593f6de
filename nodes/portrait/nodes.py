"""Mask-guided portrait editing (Gu et al., CVPR 2019) as graph nodes (family ``portrait``).

Each node is the typed door to one network of :mod:`nodes.portrait.net` (Figure 3.1)::

    face.ComponentCrop(x^s) -> portrait.LocalEmbedding -> portrait.FeaturePlacement(centres of m^t) -+
    face.ComponentCrop(x^t, expand) .labels -> portrait.MaskEncoder ----------------------------------+
                                                                       portrait.Generator (G_m) <-----+
    x^t, m^t -> portrait.BackgroundEncoder (E_b) -> portrait.FusionGenerator (G_b) <- G_m's face feature

Weights: ``nodegraph train graphs/mask_guided.json`` exports one file per network
(``mask_guided_local``, ``_mask_encoder``, ``_generator``, ``_background``, ``_fusion``), the
nodes' defaults. A combined file holding every network under its prefix (``local.``,
``mask_encoder.``, ``generator.``, ``background.``, ``fusion.``; see ``portrait_model``) loads too.
Images on ports are [0, 1]; the networks work in [-1, 1].
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field, create_model

import nodes.common.labelsets  # noqa: F401  (registers celebamask11)
from nodegraph import weights as W
from nodegraph.node import Node, NodeError, Params, WeightsRef
from nodegraph.registry import register
from nodegraph.types import Any_, Image, LabelMap, Scalar, Tensor

from .edit import (  # noqa: F401  (registers them)
    EditMask,
    MixEmbedding,
    PairTargets,
    RollBatch,
    ShowLabels,
    SplitPairs,
)
from .net import (
    PARTS,
    BackgroundEncoderNet,
    FusionGeneratorNet,
    LocalEmbeddingNet,
    MaskEncoderNet,
    MaskGuidedGenerator,
    PortraitConfig,
    discriminator,
    one_hot,
    place_features,
)

WEIGHTS_DESC = "manifest name or .safetensors path; '' = random init (training from scratch)"


class NetParams(Params):
    """Shared by every network node: which weights, and the network's shape."""

    weights: WeightsRef = Field("", description=WEIGHTS_DESC)
    preset: Literal["small", "official"] = Field(
        "small", description="small: 128 px CPU default; official: the 256 px network of the paper's code")
    size: Literal[64, 128, 256, 512] | None = Field(None, description="image size; None = the preset's "
                                                    "(crops and feature maps scale with it)")
    variant: Literal["ae", "vae"] = Field("ae", description="local embedding: autoencoder (paper) or VAE "
                                          "(thesis 4.5.3)")
    mask_encoder: Literal["single", "multi"] = Field("single", description="one E_m or five part "
                                                     "encoders (thesis 4.5.2)")
    norm: Literal["batch", "instance", "none"] = "batch"


def config_of(p: NetParams) -> PortraitConfig:
    kw: dict[str, Any] = {"variant": p.variant, "mask_encoder": p.mask_encoder, "norm": p.norm}
    if p.size is not None:
        kw["size"] = p.size
    return PortraitConfig.small(**kw) if p.preset == "small" else PortraitConfig(**kw)


def load_part(module: torch.nn.Module, ref: str, prefix: str, base_dir: Any = None) -> None:
    """Load ``ref`` into ``module``: the keys under ``prefix.`` of a combined file, else the whole file."""
    sd = W.load(ref, base_dir)
    tagged = {k[len(prefix) + 1:]: v for k, v in sd.items() if k.startswith(prefix + ".")}
    sd = tagged or sd
    own = module.state_dict()
    parts = W.state_dict_mismatch(sd, own, extra_ok=True)
    if parts:
        raise W.WeightsError(f"weights {ref!r} do not fit {type(module).__name__} ({', '.join(parts)}) — set "
                             "preset / size / variant / mask_encoder to the values the weights were trained with")
    module.load_state_dict({k: sd[k] for k in own})


def _params(default: str) -> type[NetParams]:
    """NetParams whose ``weights`` default to the name ``graphs/mask_guided.json`` exports."""

    return create_model("Params", __base__=NetParams, weights=(WeightsRef, Field(default, description=WEIGHTS_DESC)))


class _NetNode(Node):
    """Builds ``self.net`` from the params and loads the weights (part ``prefix`` of a combined file)."""

    prefix: str = ""

    def build(self, cfg: PortraitConfig) -> torch.nn.Module:
        raise NotImplementedError

    def setup(self) -> None:
        self.cfg = config_of(self.params)
        self.net = self.build(self.cfg).to(self.device)
        if self.params.weights:
            load_part(self.net, self.params.weights, self.prefix, self.ctx.base_dir)
        self.net.train(self.ctx.training)


def _batch(*ts: torch.Tensor) -> list[torch.Tensor]:
    """Bring tensors to the largest batch n: a batch-1 tensor is broadcast (one target mask for
    several sources) and a batch dividing n is tiled (B sources over the 2B targets of
    portrait.PairTargets). Other mismatches are errors."""
    n = max(t.shape[0] for t in ts)
    out = []
    for t in ts:
        b = t.shape[0]
        if n % b:
            raise ValueError(f"batch sizes {[t.shape[0] for t in ts]} do not match (each must divide {n})")
        if b == n:
            out.append(t)
        else:
            out.append(t.expand(n, *t.shape[1:]) if b == 1 else t.repeat(n // b, *[1] * (t.dim() - 1)))
    return out


@register("portrait.LocalEmbedding")
class LocalEmbedding(_NetNode):
    """E_local^i / D_local^i / D_sub^i for the five components (eq 3.1, Figure 3.2).

    Encodes the crops of ``face.ComponentCrop`` to codes z (B x 5 x latent, in l_eye, r_eye,
    mouth, skin, hair order), rebuilds each crop (``rec_*``, for the local reconstruction loss)
    and decodes the feature map of each component (``feat_*``, for FeaturePlacement). Given
    ``codes`` instead (e.g. from MixEmbedding) it only decodes. ``kl`` is the VAE term (0 for AE).
    """

    version = "1"
    prefix = "local"
    Params = _params("mask_guided_local")
    inputs = {**{p: Image(optional=True, doc=f"{p} crop") for p in PARTS},
              "codes": Tensor(rank=3, optional=True, doc="B x 5 x latent; replaces encoding the crops")}
    outputs = {"codes": Tensor(rank=3), **{f"feat_{p}": Tensor(rank=4) for p in PARTS},
               **{f"rec_{p}": Image(optional=True) for p in PARTS}, "kl": Scalar()}

    def build(self, cfg: PortraitConfig) -> torch.nn.Module:
        return LocalEmbeddingNet(cfg)

    def forward(self, codes: torch.Tensor | None = None, **crops: torch.Tensor | None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if codes is None:
            absent = [p for p in PARTS if crops.get(p) is None]
            if absent:
                raise NodeError(f"wire all five crops or a codes tensor (missing: {', '.join(absent)})",
                                self.ctx.node_id or self.type_name, "inputs")
            for p in PARTS:
                want, got = self.cfg.crop_size(p), tuple(crops[p].shape[-2:])
                if got != want:
                    raise NodeError(f"input {p}: crop is {got}, these weights need {want} "
                                    f"(images of {self.cfg.size} px; set size/preset or resize)",
                                    self.ctx.node_id or self.type_name, p)
            codes, kl = self.net.encode({p: crops[p] * 2 - 1 for p in PARTS})
            out.update({f"rec_{p}": (r + 1) / 2 for p, r in self.net.decode_images(codes).items()})
            out["kl"] = kl
        else:
            out["kl"] = codes.new_zeros(())
        out["codes"] = codes
        out.update({f"feat_{p}": f for p, f in self.net.decode_features(codes).items()})
        return out


@register("portrait.FeaturePlacement")
class FeaturePlacement(Node):
    """Paste the component feature maps at the *target* mask's centres c_i on E_m's grid
    (section 3.1.2): eyes and mouth go into zero maps at int(c / 4 + 0.5); skin and hair pass.
    Output channels: [l_eye, r_eye, skin, hair, mouth] (official order)."""

    version = "1"
    inputs = {**{f"feat_{p}": Tensor(rank=4) for p in PARTS},
              "centres": Tensor(rank=3, doc="N x 5 x 2 (y, x) of the target mask (face.ComponentCrop)")}
    outputs = {"components": Tensor(rank=4)}

    def forward(self, centres: torch.Tensor, **feats: torch.Tensor) -> dict[str, Any]:
        size = feats["feat_skin"].shape[-1]
        items = _batch(centres, *(feats[f"feat_{p}"] for p in PARTS))
        f = dict(zip(PARTS, items[1:], strict=True))
        return {"components": place_features(f, items[0], size)}


@register("portrait.MaskEncoder")
class MaskEncoder(_NetNode):
    """E_m: the target mask m^t (eyes and mouth enlarged by face.ComponentCrop ``expand``) ->
    4*ngf x size/4 feature map; ``mask_encoder: multi`` uses five part encoders (thesis 4.5.2)."""

    version = "1"
    prefix = "mask_encoder"
    Params = _params("mask_guided_mask_encoder")
    inputs = {"labels": LabelMap("celebamask11")}
    outputs = {"features": Tensor(rank=4)}

    def build(self, cfg: PortraitConfig) -> torch.nn.Module:
        return MaskEncoderNet(cfg)

    def forward(self, labels: torch.Tensor) -> dict[str, Any]:
        return {"features": self.net(one_hot(labels))}


@register("portrait.Generator")
class Generator(_NetNode):
    """G_m: [E_m(m^t), placed component features] -> 1x1 conv, ResNet blocks, 2 up-convs ->
    the face feature (ngf x size x size; no RGB head — G_b makes the image)."""

    version = "1"
    prefix = "generator"
    Params = _params("mask_guided_generator")
    inputs = {"mask_features": Tensor(rank=4), "components": Tensor(rank=4)}
    outputs = {"face": Tensor(rank=4)}

    def build(self, cfg: PortraitConfig) -> torch.nn.Module:
        mask_ch = cfg.feat_ch * (5 if cfg.mask_encoder == "multi" else 1)
        return MaskGuidedGenerator(cfg, mask_ch)

    def forward(self, mask_features: torch.Tensor, components: torch.Tensor) -> dict[str, Any]:
        return {"face": self.net(*_batch(mask_features, components))}


@register("portrait.BackgroundEncoder")
class BackgroundEncoder(_NetNode):
    """E_b: features of the target image x^t, kept only where m^t is background (label 0)."""

    version = "1"
    prefix = "background"
    Params = _params("mask_guided_background")
    inputs = {"image": Image(), "labels": LabelMap("celebamask11")}
    outputs = {"features": Tensor(rank=4)}

    def build(self, cfg: PortraitConfig) -> torch.nn.Module:
        return BackgroundEncoderNet(cfg)

    def forward(self, image: torch.Tensor, labels: torch.Tensor) -> dict[str, Any]:
        return {"features": self.net(image * 2 - 1, (labels == 0).unsqueeze(1).float())}


@register("portrait.FusionGenerator")
class FusionGenerator(_NetNode):
    """G_b: fuse G_m's face feature with E_b's background feature -> the final image."""

    version = "1"
    prefix = "fusion"
    Params = _params("mask_guided_fusion")
    inputs = {"face": Tensor(rank=4), "background": Tensor(rank=4)}
    outputs = {"image": Image()}

    def build(self, cfg: PortraitConfig) -> torch.nn.Module:
        return FusionGeneratorNet(cfg)

    def forward(self, face: torch.Tensor, background: torch.Tensor) -> dict[str, Any]:
        return {"image": (self.net(*_batch(face, background)) + 1) / 2}


class DiscriminatorParams(NetParams):
    weights: WeightsRef = Field("", description="usually '' (trained with the generator, not shipped)")


@register("portrait.Discriminator")
class Discriminator(_NetNode):
    """D / D2: 2-scale PatchGAN on (one-hot m^t, image) (eqs 3.3-3.5), judging ``fake`` and
    ``real`` with the same weights (one pass over both, concatenated on the batch). Each output
    is, per scale, the list of layer outputs (features..., raw logits — no Sigmoid), the shape
    ``loss.GAN`` and ``loss.FeatureMatching`` take."""

    version = "1"
    prefix = "discriminator"
    Params = DiscriminatorParams
    inputs = {"fake": Image(), "real": Image(optional=True), "labels": LabelMap("celebamask11")}
    outputs = {"fake": Any_(doc="per scale: [features..., logits] of D(fake, m)"),
               "real": Any_(optional=True, doc="the same for D(real, m)")}

    def build(self, cfg: PortraitConfig) -> torch.nn.Module:
        return discriminator(cfg)

    def forward(self, fake: torch.Tensor, labels: torch.Tensor,
                real: torch.Tensor | None = None) -> dict[str, Any]:
        fake, labels = _batch(fake, labels)
        images = fake if real is None else torch.cat(_batch(fake, real), 0)
        cond = one_hot(labels)
        if real is not None:
            cond = torch.cat([cond, cond], 0)
        outs = self.net(torch.cat([cond, images * 2 - 1], 1))
        if real is None:
            return {"fake": outs}
        n = fake.shape[0]
        return {"fake": [[f[:n] for f in scale] for scale in outs],
                "real": [[f[n:] for f in scale] for scale in outs]}
