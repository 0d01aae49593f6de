"""Dual-domain synthesis nodes (Bazazian et al., CVPR-W 2022): thin doors to ``losses`` / ``optimize``.

    dualdomain.Crossover       source, source_mask, target, target_mask -> image (naive crossover x_c)
    dualdomain.LatentOptimize  generator (+ target_generator), source, target, masks -> W+, image,
                               crossover, loss, terms, snapshots (one pass, D1 or D2)
    dualdomain.PartSegmenter   generator features -> part mask, logits (one-shot FewShotCNN)
    dualdomain.PartLabel       celebamask11 labels -> {background, part} (parts.py: the training label)
    dualdomain.Codes           dataset of z codes (parts.py: the one-shot sample)

Image ports are [0, 1]; the loss works on the official [-1, 1] scale (converted here, once).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field

from nodegraph.node import Node, NodeError, Params, WeightsRef
from nodegraph.registry import register
from nodegraph.types import Any_, Image, Latent, Mask, Model, PortType, Tensor
from nodes.common.autograd import autograd_ready

from . import parts  # noqa: F401  (registers dualdomain.PartLabel, dualdomain.Codes)
from .losses import OfficialVGG16, PassLoss, as_backbone, crossover
from .net import FewShotCNN, concat_features
from .optimize import mean_code, normalize_noise_, run_pass


class _Node(Node):
    def error(self, message: str, where: str) -> NodeError:
        nid = self.ctx.node_id or self.type_name
        return NodeError(f"node {nid!r} ({self.type_name}): {message}", nid, f"{nid}.{where}")

    def _check_pair(self, images: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> None:
        """Every image and mask the same H x W as the first image; masks 1 channel, batch 1 or B."""
        first = next(iter(images))
        hw, b = tuple(images[first].shape[-2:]), images[first].shape[0]
        for port, t in {**images, **masks}.items():
            if tuple(t.shape[-2:]) != hw:
                raise self.error(f"input {port} is {t.shape[-2]} x {t.shape[-1]}, input {first} {hw[0]} x {hw[1]}: "
                                 "every image and mask must be the same size (image.Resize)", f"inputs.{port}")
            if t.shape[0] not in (1, b):
                raise self.error(f"input {port} has batch {t.shape[0]}, input {first} {b}", f"inputs.{port}")


@register("dualdomain.Crossover")
class Crossover(_Node):
    """Naive crossover x_c of a source and a target-domain image along part masks (DDS sec. 3;
    official ``cross_over_source`` / ``cross_over_target``). ``direction`` "A": x_s (1 - y_s) +
    x_t y_t (target part in the source image; pass D1's); "B": x_s y_s + x_t (1 - y_t) (source part
    in the target image; pass D2's; the poster's x_s y_s + x_t y-bar_t); "paper": x_s y_s + x_t y_t,
    the formula quoted without the complement (not what the code runs). Images B x 3 x H x W in
    [0, 1], masks B|1 x 1 x H x W in [0, 1]. Computed on the official [-1, 1] scale, so a pixel no
    mask covers is mid-grey 0.5 (as officially), then clamped to [0, 1] (where both masks cover a
    pixel, "A" / "paper" add two images). Errors: masks or target of another size or batch."""

    version = "1"

    class Params(Params):
        direction: Literal["A", "B", "paper"] = Field("B", description="A: x_s(1-y_s)+x_t y_t; B: x_s y_s+"
                                                      "x_t(1-y_t) (official, poster); paper: x_s y_s+x_t y_t")

    inputs = {"source": Image(doc="x_s, the source-domain image"), "source_mask": Mask(doc="y_s, 1 = part"),
              "target": Image(doc="x_t, the target-domain image"), "target_mask": Mask(doc="y_t, 1 = part")}
    outputs = {"image": Image()}

    def forward(self, source, source_mask, target, target_mask) -> dict[str, Any]:
        self._check_pair({"source": source, "target": target}, {"source_mask": source_mask,
                                                                 "target_mask": target_mask})
        x_c = crossover(source * 2 - 1, source_mask.to(source), target.to(source) * 2 - 1,
                        target_mask.to(source), self.params.direction)
        return {"image": ((x_c + 1) / 2).clamp(0, 1)}


class LatentOptimizeParams(Params):
    pass_name: Literal["D1", "D2"] = Field("D1", description="D1: target part inside y_s, "
                                       "source outside (crossover A); D2: source part inside y_s, target "
                                       "outside 1-y_t (crossover B)")
    generator: Literal["source", "target"] = Field("source", description="which generator makes x_hat: "
                                                   "source = G1 in both passes, as the official code; target = "
                                                   "G2, as the poster's figure (needs target_generator)")
    backbone: Literal["effnet_lite0", "vgg16"] = Field("effnet_lite0", description="masked perceptual "
                                                       "features: offline EfficientNet-Lite0 (s2..s32 on [0, 1]); "
                                                       "vgg16 = the official relu1_1/1_2/3_2/4_2 on raw [-1, 1] "
                                                       "(needs `nodegraph convert vgg16`)")
    perceptual_size: int = Field(256, ge=32, le=1024, description="side the images and masks are resized to "
                                 "(bilinear) before the backbone (official 256)")
    iterations: int = Field(1000, ge=0, le=100000, description="Adam steps (official 1002, keeping step 1000)")
    lr: float = Field(0.01, gt=0, description="Adam learning rate, constant (official 0.01)")
    n_mean: int = Field(10000, ge=1, le=1000000, description="z drawn for the mean-code init (official 10,000)")
    seed: int = Field(0, description="seed of the init z and of the fixed noise maps")
    style_dim: int = Field(512, ge=1, le=4096, description="D of the generator's codes (types the wplus port; "
                           "official 512)")
    every: int = Field(100, ge=0, description="snapshot the code every k steps (official 100; 0 = none)")
    compat: Literal["clean", "official"] = Field("clean", description="official: float64 masks, clamped "
                                                 "targets, raw noise at step 0 (the released loop's numbers); "
                                                 "clean: float32, noise normalised from step 0 (optimize.py)")


@register("dualdomain.LatentOptimize")
class LatentOptimize(_Node):
    """One DDS optimisation pass (sec. 3; official ``DDS_main.py``): W+ from the mean mapped code of
    ``n_mean`` seeded z, fixed seeded noise, Adam, loss as the official code builds it
    (``losses.py``: 2 x masked perceptual + masked MSE on each side + 3 x MSE to the crossover).
    Gradients reach the code only; the constant targets' features are computed once. Progress
    event per step.

    Inputs: ``generator`` G1 and optional ``target_generator`` G2 (``stylegan.Generator`` model
    outputs); source / target images B x 3 x S x S in [0, 1] (S the generator's size), masks
    B|1 x 1 x S x S in [0, 1]. Outputs: ``wplus`` B x L x D, ``image`` G(w*) in [0, 1], ``crossover``
    the pass's x_c in [0, 1], ``loss`` (iterations), ``terms`` (iterations x 5: perceptual source /
    target, MSE source / target, MSE crossover, unweighted), ``snapshots`` (K x B x L x D).
    An empty mask (or complement) makes its side's terms 0: the result fits the other side and the
    crossover; never NaN. Errors before any step: sizes / batches, a generator without the
    StyleGAN2 interface, a target generator with another layer count or size (``inputs.
    target_generator``), ``generator = target`` without it, missing VGG16 weights (``params.backbone``)."""

    version = "1"
    Params = LatentOptimizeParams
    cacheable = True
    inputs = {"generator": Model(doc="G1, the source generator (stylegan.Generator model)"),
              "target_generator": Model(optional=True, doc="G2, the target-domain generator"),
              "source": Image(doc="x_s"), "source_mask": Mask(doc="y_s"),
              "target": Image(doc="x_t"), "target_mask": Mask(doc="y_t")}
    outputs = {"wplus": Latent("W+"), "image": Image(), "crossover": Image(), "loss": Tensor(rank=1),
               "terms": Tensor(rank=2), "snapshots": Tensor(rank=4)}

    @classmethod
    def resolve_ports(cls, params: LatentOptimizeParams, upstream: dict[str, PortType]):
        return dict(cls.inputs), {**cls.outputs, "wplus": Latent("W+", dim=params.style_dim)}

    def _check(self, G1, G2, images, masks) -> torch.nn.Module:
        for port, G in (("generator", G1), ("target_generator", G2)):
            if G is not None and not all(hasattr(G, a) for a in ("synthesis", "mean_latent", "n_latent", "size")):
                raise self.error(f"input {port} ({type(G).__name__}) is not a StyleGAN2 generator; wire a "
                                 "stylegan.Generator model output", f"inputs.{port}")
        if G2 is not None and (G2.n_latent, G2.size) != (G1.n_latent, G1.size):
            raise self.error(f"the target generator takes {G2.n_latent} layer codes at {G2.size} px, the source "
                             f"generator {G1.n_latent} at {G1.size} px: DDS needs two generators of one "
                             "architecture (G2 adapted from G1)", "inputs.target_generator")
        if getattr(G1, "style_dim", self.params.style_dim) != self.params.style_dim:
            raise self.error(f"the generator's codes are {G1.style_dim}-d; set params.style_dim = {G1.style_dim}",
                             "params.style_dim")
        if self.params.generator == "target" and G2 is None:
            raise self.error("params.generator = target needs the target_generator input wired", "params.generator")
        self._check_pair(images, masks)
        s = G1.size
        if tuple(images["source"].shape[-2:]) != (s, s):
            raise self.error(f"input source is {tuple(images['source'].shape[-2:])}; the generator makes {s} x {s}",
                             "inputs.source")
        return G2 if self.params.generator == "target" else G1

    def _backbone(self) -> torch.nn.Module:
        """The masked perceptual backbone, built once per node instance and device (building
        Lite0 -- load, fold BatchNorm, channels-last -- costs 0.2-5 s depending on the load).
        Called outside inference mode: tensors made under it refuse autograd."""
        cache = self.__dict__.setdefault("_backbones", {})
        key = (self.params.backbone, str(self.device))
        if key not in cache:
            cache[key] = self._build_backbone()
        return cache[key]

    def _mean_code(self, G: torch.nn.Module, batch: int) -> torch.Tensor:
        """``optimize.mean_code``, kept per node instance for the same generator weights (10,000
        mapped z cost ~1 s on one thread; a map over seeds would pay it per item)."""
        p = self.params
        with torch.no_grad():
            mapping = getattr(G, "style", G)  # mean_latent reads the mapping network only
            fingerprint = tuple(float(t.double().sum()) for t in mapping.parameters())
        key = (p.n_mean, p.seed, G.n_latent, fingerprint)
        cache = self.__dict__.setdefault("_means", {})
        if key not in cache:
            cache.clear()  # one generator at a time: no growth over a long map
            cache[key] = mean_code(G, p.n_mean, p.seed, 1)
        return cache[key].expand(batch, -1, -1).clone()

    def _build_backbone(self) -> torch.nn.Module:
        if self.params.backbone == "effnet_lite0":
            from nodes.features.net import Lite0Features, load_pretrained

            return Lite0Features(load_pretrained()).to(self.device)
        from nodegraph import weights as weights_mod
        from nodes.features.backbones import VGG16Features

        vgg = VGG16Features()
        try:
            weights_mod.load_into(vgg, "vgg16", self.ctx.base_dir)
        except Exception as e:  # not converted yet
            raise self.error(f"backbone vgg16 needs converted weights (`nodegraph convert vgg16`): {e}",
                             "params.backbone") from None
        return OfficialVGG16(vgg.features).to(self.device)

    def forward(self, generator, source, source_mask, target, target_mask, target_generator=None) -> dict[str, Any]:
        p = self.params
        G = self._check(generator, target_generator, {"source": source, "target": target},
                        {"source_mask": source_mask, "target_mask": target_mask})
        with torch.inference_mode(False), torch.enable_grad():
            net, G = self._backbone(), autograd_ready(G)  # here: inference tensors refuse autograd
            x_s, x_t = (source.to(self.device) * 2 - 1).clone(), (target.to(self.device) * 2 - 1).clone()
            y_s, y_t = source_mask.to(x_s).clone(), target_mask.to(x_s).clone()
            loss = PassLoss(as_backbone(net), x_s, x_t, y_s, y_t, p.pass_name, p.perceptual_size,
                            official=p.compat == "official")
            w0 = self._mean_code(G, x_s.shape[0]).to(x_s)
            noise = G.make_noise(x_s.shape[0], torch.Generator().manual_seed(p.seed + 1))
            w, curve, snaps = run_pass(G, loss, w0, noise, lr=p.lr, iterations=p.iterations, every=p.every,
                                       compat=p.compat,
                                       progress=lambda i, n, v: self.ctx.progress(i, n, f"loss {v:.4f}"))
            normalize_noise_(noise)  # the maps the loop used from step 1 on (from step 0: clean)
            with torch.no_grad():
                image = ((G.synthesis(w, noise)[0] + 1) / 2).clamp(0, 1)
        x_c = ((loss.x_c + 1) / 2).clamp(0, 1).float()
        return {"wplus": w, "image": image, "crossover": x_c, "loss": curve[:, 0].float(),
                "terms": curve[:, 1:].float(), "snapshots": snaps}


@register("dualdomain.PartSegmenter")
class PartSegmenter(_Node):
    """One-shot part segmenter (DDS sec. 3, after Repurposing-GANs; official ``model_repurpose.py``
    ``FewShotCNN`` size "S"): generator ``features`` (a ``stylegan.Generator`` features output: the
    list of B x C_r x r x r maps) nearest-upsampled to the largest map and concatenated (5,376
    channels at 256 px, official widths) -> five dilated 3 x 3 convs -> {background, part} logits.
    Outputs: ``mask`` B x 1 x H x W, hard {0, 1} (argmax == 1, as officially), ``logits`` B x 2 x H x W.
    Apply one trained net to G1's features (y_s) and G2's (y_t) for the same z. Shipped:
    ``dds_segmenter_faces64_enm`` / ``_hair`` (288 channels, ``stylegan2_faces64``; trained by
    ``graphs/dds_segmenter_train.json``); empty ``weights`` = seeded random init (a warning).
    Errors: features whose channel sum differs from ``in_channels`` (``inputs.features``), weights
    that do not fit (``params.weights``)."""

    version = "1"

    class Params(Params):
        in_channels: int = Field(5376, ge=1, description="channels of the concatenated features (5376 = "
                                 "official widths at 256 px; sum of the generator's feature widths)")
        weights: WeightsRef = Field("", description="trained segmenter (.safetensors, keys layers.{0,2,4,6,8}); "
                                    "empty = random init")
        seed: int = Field(0, description="seed of the random init")

    inputs = {"features": Any_(doc="list of B x C_r x r x r generator maps (stylegan.Generator features)")}
    outputs = {"mask": Mask(), "logits": Tensor(rank=4)}

    def setup(self) -> None:
        p = self.params
        with torch.random.fork_rng():
            torch.manual_seed(p.seed)
            self.net = FewShotCNN(p.in_channels)
        if p.weights:
            from nodegraph import weights as weights_mod

            try:
                weights_mod.load_into(self.net, p.weights, self.ctx.base_dir)
            except Exception as e:  # mismatched keys / shapes
                raise self.error(f"the weights do not fit a FewShotCNN over {p.in_channels} channels: {e}",
                                 "params.weights") from None
        elif not self.ctx.training:
            self.ctx.warn("dualdomain.PartSegmenter has no weights: random init (set params.weights)")
        self.net.to(self.device).train(self.ctx.training)

    def forward(self, features) -> dict[str, Any]:
        feats = [features] if isinstance(features, torch.Tensor) else list(features)
        c = sum(int(f.shape[1]) for f in feats) if feats and all(f.dim() == 4 for f in feats) else -1
        if c != self.params.in_channels:
            raise self.error(f"input features give {c} channels concatenated (-1: not a list of B x C x H x W "
                             f"maps); the segmenter takes params.in_channels = {self.params.in_channels}",
                             "inputs.features")
        logits = self.net(concat_features([f.to(self.device).float() for f in feats]))
        return {"mask": (logits.argmax(1, keepdim=True) == 1).float(), "logits": logits}
