"""SPADE nodes (Park et al., CVPR 2019): generator, VAE style encoder, discriminator.

The networks live in ``nodes/spade/net.py``; these classes are the typed doors to them.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from safetensors import safe_open

from nodegraph import weights as weights_mod
from nodegraph.node import Node, Params, WeightsRef
from nodegraph.registry import register
from nodegraph.types import Any_, Image, LabelMap, PortType, Tensor
from nodes.common import labelsets  # noqa: F401  (registers the label sets the ports name)

from .net import (
    PRESETS,
    ConvEncoder,
    SPADEConfig,
    SPADEGenerator,
    build_generator,
    clean_generator_state,
    reparameterize,
    semantic_input,
    spade_discriminator,
)

Preset = Literal["ade20k", "coco", "cityscapes", "landscape"]


def _file_config(path: str) -> dict[str, Any]:
    """The SPADE config stored in a safetensors file's metadata (converter / our export)."""
    with safe_open(path, "pt") as f:
        meta = f.metadata() or {}
    try:
        return json.loads(meta.get("config", "{}"))
    except json.JSONDecodeError:
        return {}


class _SPADEParams(Params):
    preset: Preset = Field("landscape", description="label convention and default options: ade20k (151 "
                           "semantic channels), coco (184, instance edges), cityscapes (36), landscape (10)")
    ngf: int | None = Field(None, ge=4, le=256, description="generator width; None = from the weights "
                            "(or the preset)")
    num_upsampling_layers: Literal["normal", "more", "most"] | None = Field(
        None, description="5/6/7 upsamplings; None = the weights' / preset's")
    use_vae: bool | None = Field(None, description="latent from z (Linear fc) instead of the downsampled "
                                 "map; None = from the weights")
    z_dim: int | None = Field(None, ge=1, le=4096, description="VAE code size; None = from the weights (256)")


def _resolve_config(params: _SPADEParams, state: dict[str, torch.Tensor] | None,
                    extra: dict[str, Any]) -> SPADEConfig:
    """Preset defaults <- file/manifest config <- explicit params (checked against the weights)."""
    cfg = PRESETS[params.preset]
    keep = {k: v for k, v in extra.items() if k in ("num_upsampling_layers", "crop_size", "aspect_ratio",
                                                    "ngf", "nhidden", "use_vae", "z_dim", "norm")}
    cfg = replace(cfg, **keep)
    asked = {k: getattr(params, k) for k in ("ngf", "num_upsampling_layers", "use_vae", "z_dim")
             if getattr(params, k) is not None}
    cfg = replace(cfg, **asked)
    if state is None:
        return cfg
    from .net import infer_config

    found = infer_config(clean_generator_state(state), cfg)
    for k, v in asked.items():
        if getattr(found, k) != v:
            raise ValueError(f"params.{k} = {v!r} but the weights were made with {k} = "
                             f"{getattr(found, k)!r}; leave it unset (None) to follow the weights")
    return found


class _PresetLabels(Node):
    """A SPADE node whose ``labels`` port takes the label set of its ``preset``."""

    @classmethod
    def resolve_ports(cls, params: Params, upstream: dict[str, PortType]):
        ins, outs = dict(cls.inputs), dict(cls.outputs)
        ins["labels"] = LabelMap(PRESETS[params.preset].label_set)
        return ins, outs


@register("spade.Generator")
class Generator(_PresetLabels):
    """SPADE generator G: semantic label map (+ instance map, + z or a style photo) -> image.

    The map becomes one-hot channels (+ "don't care", + instance edges where the preset has
    them, as the official ``preprocess_input``); G upsamples a latent grid through SPADE
    residual blocks, each modulating normalised activations by gamma(m), beta(m) (eq. 1).
    """

    version = "1"

    class Params(_SPADEParams):
        size: int = Field(0, ge=0, le=4096, description="output width (official crop size): the map is "
                          "resized (nearest) to this width keeping its aspect ratio, both sides multiples "
                          "of 2^upsamplings (a warning says what changed beyond a uniform scaling); 0 = "
                          "the label map's own size (must be multiples of 2^upsamplings)")
        seed: int = Field(0, description="seed of z ~ N(0, I) when the model is a VAE and no z/style is given")
        weights: WeightsRef = Field("", description="converted official or our weights (manifest name or "
                                    ".safetensors); empty = random init")
        encoder_weights: WeightsRef = Field("", description="spade.StyleEncoder weights, needed for the "
                                            "style input")

    inputs = {
        "labels": LabelMap(),
        "instance": Tensor(rank=3, optional=True, doc="int instance ids N x H x W (coco, cityscapes)"),
        "z": Tensor(rank=2, optional=True, doc="VAE code N x z_dim"),
        "style": Image(optional=True, doc="style photo, encoded to z by the VAE encoder"),
    }
    outputs = {"image": Image()}

    @property
    def batch_inputs(self) -> tuple[str, ...]:  # type: ignore[override]
        """Maps batch item by item (eval-mode norms) -- except a VAE drawing z for a whole batch."""
        cfg = getattr(self, "config", None)
        return ("labels", "instance") if cfg is not None and not cfg.use_vae else ()

    def setup(self) -> None:
        p = self.params
        state, extra = None, {}
        if p.weights:
            path = weights_mod.resolve(p.weights, self.ctx.base_dir)
            state = weights_mod.load(str(path))
            extra = {**weights_mod.manifest_config(p.weights), **_file_config(str(path))}
        cfg = _resolve_config(p, state, extra)
        if cfg.use_vae and p.size:
            cfg = replace(cfg, crop_size=p.size)
        elif not cfg.use_vae:
            cfg = replace(cfg, crop_size=0)  # the latent grid follows the map (see _fit)
        self.config = cfg
        if p.seed and not cfg.use_vae:
            self.ctx.warn(f"params.seed = {p.seed} changes nothing: these weights are not a VAE model "
                          "(G starts from the downsampled label map, not from z)")
        training = self.ctx.training
        if state is not None and not training:
            # inference: spectral norm folded once; channels-last convolutions (2.4 s -> 1.4 s for
            # ade20k ngf 64 at 256 px on 2 CPU cores, benchmarks/results_spade.md)
            self.net = build_generator(state, cfg).to(memory_format=torch.channels_last)
        else:
            self.net = SPADEGenerator(cfg, use_spectral=training)
            if state is not None:
                _load_trainable(self.net, state)
            elif not training:
                self.ctx.warn("spade.Generator has no weights: random init (set params.weights)")
        self.net.to(self.device).train(training)
        self.encoder = None
        if p.encoder_weights:
            self.encoder = _load_encoder(p.encoder_weights, self.ctx.base_dir, cfg).to(self.device).eval()

    def _fit(self, hw: tuple[int, int]) -> tuple[int, int]:
        """The size the map is resized to (nearest), with a warning when that is more than a uniform
        scaling: ``size`` keeps the map's aspect ratio; a VAE's latent grid is fixed by its
        trained fc layer, so its maps are resized to the trained crop/aspect."""
        cfg, (h, w) = self.config, hw
        if cfg.use_vae and cfg.crop_size:
            out = (round(cfg.crop_size / cfg.aspect_ratio), cfg.crop_size)
            if abs((out[1] / out[0]) / (w / h) - 1) > 0.02:
                self.ctx.warn(f"the {w}x{h} label map was resized to {out[1]}x{out[0]}: this VAE generator's "
                              f"latent grid is fixed at aspect {cfg.aspect_ratio:g} by its weights")
            return out
        if not self.params.size:
            return (h, w)
        out, note = _fit_size((h, w), self.params.size, cfg.n_up)
        if note:
            self.ctx.warn(f"the {w}x{h} label map was resized to {out[1]}x{out[0]}: {note}")
        return out

    def forward(self, labels: torch.Tensor, instance: torch.Tensor | None = None,
                z: torch.Tensor | None = None, style: torch.Tensor | None = None) -> dict[str, Any]:
        cfg = self.config
        hw = self._fit(tuple(labels.shape[-2:]))
        if tuple(labels.shape[-2:]) != hw:
            labels = _nearest(labels, hw)
            instance = None if instance is None else _nearest(instance, hw)
        try:
            seg = semantic_input(labels.to(self.device), cfg,
                                 None if instance is None else instance.to(self.device))
        except ValueError as e:
            raise ValueError(f"spade.Generator input labels/instance: {e}") from None
        if cfg.use_vae and z is None:
            gen = torch.Generator().manual_seed(self.params.seed)
            if style is not None:
                if self.encoder is None:
                    raise ValueError("spade.Generator: a style image needs params.encoder_weights "
                                     "(a spade.StyleEncoder trained with this generator)")
                mu, logvar = self.encoder(style.to(self.device) * 2 - 1)
                z = reparameterize(mu, logvar, gen)
            else:
                z = torch.randn(seg.shape[0], cfg.z_dim, generator=gen).to(self.device)
        elif (z is not None or style is not None) and not cfg.use_vae:
            self.ctx.warn("z/style ignored: this generator is not a VAE model (use_vae false)")
            z = None
        if not self.ctx.training:
            seg = seg.contiguous(memory_format=torch.channels_last)
        try:
            out = self.net(seg, z)
        except ValueError as e:
            raise ValueError(f"spade.Generator: {e}") from None
        return {"image": ((out + 1) / 2).contiguous()}


def _fit_size(hw: tuple[int, int], size: int, n_up: int) -> tuple[tuple[int, int], str]:
    """(H, W) for a map of size ``hw`` at output width ``size``: the map's aspect ratio kept (the
    official ``aspect_ratio`` option), both sides multiples of 2^n_up (the latent grid is upsampled
    n_up times). Returns the size and a note saying what changed beyond a uniform scaling, or ""."""
    h, w = hw
    f = 2 ** n_up
    W = max(f, size // f * f)
    H = max(f, round(W * h / w / f) * f)
    notes = []
    if W != size:
        notes.append(f"size {size} is not a multiple of {f} (2^{n_up} upsamplings): width {W}")
    if abs((W / H) / (w / h) - 1) > 0.02:
        notes.append(f"aspect ratio {w / h:.2f} became {W / H:.2f} (sides must be multiples of {f})")
    return (H, W), "; ".join(notes)


def _load_trainable(net: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load weights into a spectral-normed training network. Folded weights (``X.weight``) start
    ``weight_orig`` at W and keep the fresh u, v: the power iteration re-estimates sigma ~ 1."""
    own = net.state_dict()
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    full = dict(state)
    for k in own:
        if k.endswith("weight_orig") and k not in state:
            stem = k[: -len("_orig")]
            if stem in state:
                full[k] = full.pop(stem)
                full[stem + "_u"], full[stem + "_v"] = own[stem + "_u"], own[stem + "_v"]
    missing = [k for k in own if k not in full and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in full if k not in own]
    if missing or unexpected:
        raise ValueError(f"weights do not fit the network: missing {missing[:3]}, unexpected {unexpected[:3]}")
    net.load_state_dict(full, strict=False)


def _nearest(t: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(t[:, None].float(), size=hw, mode="nearest")[:, 0].to(t.dtype)


def _load_encoder(ref: str, base_dir, cfg: SPADEConfig) -> ConvEncoder:
    from nodes.common.layers import fold_spectral_norm

    state = fold_spectral_norm(weights_mod.load(ref, base_dir))
    n_layers = sum(1 for k in state if k.endswith(".0.weight") and k.startswith("layer"))
    ndf = int(state["layer1.0.weight"].shape[0])
    enc = ConvEncoder(ndf, int(state["fc_mu.weight"].shape[0]), 4 * 2 ** n_layers, use_spectral=False)
    enc.load_state_dict(state)
    return enc


@register("spade.StyleEncoder")
class StyleEncoder(Node):
    """VAE style encoder E (SPADE sec. 3.3): image -> mu, logvar of q(z|x) and a sample
    z = mu + exp(logvar / 2) * eps (eps drawn from ``seed``)."""

    version = "1"

    class Params(Params):
        ngf: int = Field(64, ge=4, le=256, description="width of the first layer (official: ngf)")
        z_dim: int = Field(256, ge=1, le=4096)
        input_size: int = Field(256, description="the image is resized to this (4 * 2^k; official 256)")
        seed: int = 0
        weights: WeightsRef = ""

    inputs = {"image": Image()}
    outputs = {"mu": Tensor(rank=2), "logvar": Tensor(rank=2), "z": Tensor(rank=2)}

    def setup(self) -> None:
        p = self.params
        if p.weights and not self.ctx.training:
            self.net = _load_encoder(p.weights, self.ctx.base_dir, PRESETS["landscape"])
        else:
            self.net = ConvEncoder(p.ngf, p.z_dim, p.input_size, use_spectral=True)
            if p.weights:
                self.net.load_state_dict(weights_mod.load(p.weights, self.ctx.base_dir))
        self.net.to(self.device).train(self.ctx.training)

    def forward(self, image: torch.Tensor) -> dict[str, Any]:
        mu, logvar = self.net(image.to(self.device) * 2 - 1)
        gen = None if self.ctx.training else torch.Generator().manual_seed(self.params.seed)
        return {"mu": mu, "logvar": logvar, "z": reparameterize(mu, logvar, gen)}


@register("spade.Discriminator")
class Discriminator(_PresetLabels):
    """Multi-scale PatchGAN D (pix2pixHD / SPADE) on concat(semantics, image).

    One node holds one set of weights: fake and real are judged in one pass (concatenated on the
    batch, as SPADE's ``discriminate``). Each output is, per scale, the list of every layer's
    output whose last item is the patch logits (hinge GAN loss + feature matching).
    """

    version = "1"

    class Params(_SPADEParams):
        ndf: int = Field(64, ge=4, le=512)
        n_layers: int = Field(4, ge=1, le=6)
        num_D: int = Field(2, ge=1, le=4)
        weights: WeightsRef = ""

    inputs = {"fake": Image(), "real": Image(optional=True), "labels": LabelMap(),
              "instance": Tensor(rank=3, optional=True)}
    outputs = {"fake": Any_(doc="per scale: [features..., patch logits]"),
               "real": Any_(optional=True, doc="the same for the real images")}

    def setup(self) -> None:
        self.config = PRESETS[self.params.preset]
        p = self.params
        self.net = spade_discriminator(self.config, p.ndf, p.n_layers, p.num_D)
        if p.weights:
            weights_mod.load_into(self.net, p.weights, self.ctx.base_dir)
        self.net.to(self.device).train(self.ctx.training)

    def forward(self, fake: torch.Tensor, labels: torch.Tensor, real: torch.Tensor | None = None,
                instance: torch.Tensor | None = None) -> dict[str, Any]:
        seg = semantic_input(labels.to(self.device), self.config,
                             None if instance is None else instance.to(self.device))
        if seg.shape[-2:] != fake.shape[-2:]:
            seg = F.interpolate(seg, size=fake.shape[-2:], mode="nearest")
        img = fake if real is None else torch.cat([fake, real.to(fake.dtype)])
        if real is not None:
            seg = torch.cat([seg, seg])
        feats = self.net(torch.cat([seg, img.to(self.device) * 2 - 1], 1))
        if real is None:
            return {"fake": feats}
        n = fake.shape[0]
        return {"fake": [[f[:n] for f in scale] for scale in feats],
                "real": [[f[n:] for f in scale] for scale in feats]}
