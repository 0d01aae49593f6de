"""StyleGAN2 nodes: thin typed doors to ``net.Generator`` / ``discriminator.Discriminator``.

    stylegan.SampleZ        seed -> z (B x D) ~ N(0, I)
    stylegan.Mapping        z -> w (Latent W)
    stylegan.Truncate       w / W+ -> w_avg + psi (w - w_avg)
    stylegan.Synthesis      W+ -> image, raw, features
    stylegan.Generator      z | w | wplus (+ z2 | w2 mixing, truncation) -> image, raw, wplus,
                            features, model (the composition of the parts above)
    stylegan.Discriminator  fake [, real] -> logits B x 1

Networks work in [-1, 1]; ``image`` ports are [0, 1] (``raw`` keeps the official scale).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field

from nodegraph import weights as weights_mod
from nodegraph.node import Node, NodeError, Params, WeightsRef
from nodegraph.registry import register
from nodegraph.types import Any_, Image, Latent, Model, PortType, Tensor

from . import v1_nodes  # noqa: F401  (registers stylegan.GeneratorV1, IDInvert's StyleGAN v1)
from .discriminator import Discriminator as DiscriminatorNet
from .load import (
    CONFIG_FIELDS,
    infer_config,
    load_discriminator,
    load_generator,
    resolve_config,
    stored_config,
)
from .net import Generator as GeneratorNet
from .net import StyleGANConfig

FAMILY = "stylegan2"


class ArchParams(Params):
    """Architecture fields; each left unset follows the weights' config (then the official default)."""

    size: int | None = Field(None, ge=8, le=1024, description="output side in px (power of two); "
                             "None = from the weights")
    style_dim: int = Field(512, ge=1, le=4096, description="D of z and w (official 512); ports are typed "
                           "from it before the weights are read, so set it for weights with another D")
    n_mlp: int = Field(8, ge=1, le=16, description="mapping layers (official 8)")
    channel_multiplier: int = Field(2, ge=1, le=8, description="channels from 64 px up x this (official 2)")
    channel_max: int = Field(512, ge=8, le=512, description="cap on every layer's channels: the width knob "
                             "for small CPU models (512 = official)")
    weights: WeightsRef = Field("", description="generator weights (manifest name or .safetensors; "
                                "`nodegraph convert stylegan2`); empty = random init")


def config_and_state(node: Any) -> tuple[StyleGANConfig, dict[str, torch.Tensor] | None]:
    """(architecture, state_dict or None) of a node with ``ArchParams``: official defaults <- the
    weights' recorded config (inferred from a generator's tensors when none is recorded) <-
    explicitly set params. Raises ``node.error`` naming params.size / params on a conflict."""
    p = node.params
    asked = {k: getattr(p, k) for k in CONFIG_FIELDS if k in p.model_fields_set and getattr(p, k) is not None}
    state, stored = None, {}
    if p.weights:
        state = weights_mod.load(p.weights, node.ctx.base_dir)
        stored = stored_config(p.weights, node.ctx.base_dir)
        if not stored and "style.1.weight" in state:
            stored = {k: getattr(infer_config(state), k) for k in CONFIG_FIELDS}
    elif p.size is None:
        raise node.error("params.size is needed without weights (e.g. 64, 256)", "params.size")
    try:
        return resolve_config(asked, stored), state
    except ValueError as e:
        raise node.error(str(e), "params") from None


class _StyleGANNode(Node):
    """Shared setup: resolve the config (weights' config <- explicit params) and build the net."""

    def _config_and_state(self) -> tuple[StyleGANConfig, dict[str, torch.Tensor] | None]:
        self._arch, state = config_and_state(self)
        return self._arch, state

    def export_config(self) -> dict[str, Any]:
        """The params with the architecture actually built (size, widths ... resolved from the
        weights when left unset), so a fine-tuned export loads by name alone."""
        out = super().export_config()
        arch = getattr(self, "_arch", None)
        if arch is not None:
            out.update({k: getattr(arch, k) for k in CONFIG_FIELDS})
        return out

    def error(self, message: str, where: str) -> NodeError:
        nid = self.ctx.node_id
        head = f"node {nid!r} ({self.type_name})" if nid else self.type_name
        return NodeError(f"{head}: {message}", nid or None, f"{nid or self.type_name}.{where}")

    def _generator(self) -> GeneratorNet:
        """The generator of ``params.weights`` (random init without); its ``latent_avg`` is the
        file's, else the mean of f over 4096 z from ``params.seed``."""
        cfg, state = self._config_and_state()
        seed = int(getattr(self.params, "seed", 0))
        if state is None:
            if not self.ctx.training:
                self.ctx.warn(f"{self.type_name} has no weights: random init (set params.weights)")
            net = GeneratorNet(cfg)
            if not self.ctx.training:
                net.latent_avg.copy_(net.mean_latent(4096, torch.Generator().manual_seed(seed))[0])
            return net
        try:
            net, notes = load_generator(state, cfg, avg_seed=seed)
        except ValueError as e:
            raise self.error(str(e), "params.weights") from None
        for n in notes:
            self.ctx.warn(n)
        return net


def _check_wplus(node: _StyleGANNode, wplus: torch.Tensor, n_latent: int, port: str) -> None:
    if wplus.dim() == 3 and wplus.shape[1] != n_latent:
        size = node.net.size if hasattr(node.net, "size") else "this"
        raise node.error(f"input {port} has {wplus.shape[1]} layer codes; this {size} px generator takes "
                         f"{n_latent} (n_latent = 2 log2(size) - 2: 256 px -> 14, 1024 px -> 18)", f"inputs.{port}")


@register("stylegan.SampleZ")
class SampleZ(Node):
    """z ~ N(0, I), B x ``dim``, drawn from ``seed`` (in training: from the trainer's RNG, fresh
    every step, batch from ``like`` when wired)."""

    class Params(Params):
        batch: int = Field(4, ge=1, le=4096, description="number of codes (ignored when `like` is wired)")
        dim: int = Field(512, ge=1, le=4096, description="D (the generator's style_dim)")
        seed: int = Field(0, description="RNG seed (inference)")

    inputs = {"like": Any_(optional=True, doc="a batch (Image / tensor) whose size B the codes follow")}
    outputs = {"z": Tensor(rank=2, doc="B x D standard normal codes")}

    def forward(self, like: Any = None) -> dict[str, Any]:
        b = int(like.shape[0]) if isinstance(like, torch.Tensor) else self.params.batch
        gen = None if self.ctx.training else torch.Generator().manual_seed(self.params.seed)
        return {"z": torch.randn(b, self.params.dim, generator=gen).to(self.device)}


@register("stylegan.Mapping")
class Mapping(_StyleGANNode):
    """Mapping network f (StyleGAN sec. 2): z (B x D) -> PixelNorm -> n_mlp equalised-lr linear
    layers (lr x 0.01, leaky ReLU) -> w (B x D). Reads the ``style.*`` part of generator weights."""

    Params = ArchParams
    inputs = {"z": Tensor(rank=2, doc="B x D latent codes")}
    outputs = {"w": Latent("W")}

    @classmethod
    def resolve_ports(cls, params: ArchParams, upstream: dict[str, PortType]):
        return dict(cls.inputs), {"w": Latent("W", dim=params.style_dim)}

    def setup(self) -> None:
        g = self._generator()
        self.net = g.style.to(self.device).train(self.ctx.training)
        self.style_dim = g.style_dim

    def forward(self, z: torch.Tensor) -> dict[str, Any]:
        if z.shape[1] != self.style_dim:
            raise self.error(f"input z is B x {z.shape[1]}; this mapping takes B x {self.style_dim}", "inputs.z")
        return {"w": self.net(z.to(self.device))}


@register("stylegan.Truncate")
class Truncate(Node):
    """Truncation trick (StyleGAN sec. 3.2, official ``truncation``): w' = w_avg + psi (w - w_avg)
    on every layer of W or W+. psi = 0 gives w_avg, psi = 1 the input."""

    class Params(Params):
        psi: float = Field(0.7, ge=-2.0, le=2.0, description="truncation psi (1 = none)")

    inputs = {"w": Latent(), "w_avg": Latent("W", doc="the centre, 1 x D (or B x D)")}
    outputs = {"w": Latent()}

    @classmethod
    def resolve_ports(cls, params: Params, upstream: dict[str, PortType]):
        up = upstream.get("w")
        space = up.space if isinstance(up, Latent) else None
        return dict(cls.inputs), {"w": Latent(space)}

    def forward(self, w: torch.Tensor, w_avg: torch.Tensor) -> dict[str, Any]:
        return {"w": GeneratorNet.truncate(w, self.params.psi, w_avg if w.dim() == 2 else w_avg[:, None])}


NoiseMode = Literal["fixed", "random"]


class _SynthParams(ArchParams):
    noise: NoiseMode = Field("fixed", description="fixed: the model's noise buffers (official "
                             "randomize_noise=False); random: fresh N(0,1) maps drawn from seed")
    seed: int = Field(0, description="seed of the random noise maps (and of the fallback w_avg)")


class _SynthesisNode(_StyleGANNode):
    """Holds the whole generator (w_avg in its ``latent_avg``) and runs g with the chosen noise."""

    def setup(self) -> None:
        self.net = self._generator()
        self.net.to(self.device).train(self.ctx.training)
        if not self.ctx.training:
            self.net.set_mode(MOD_MODE)

    def _noise(self, batch: int) -> list[torch.Tensor] | None:
        if self.params.noise == "fixed":
            return None
        gen = None if self.ctx.training else torch.Generator().manual_seed(self.params.seed)
        return self.net.make_noise(batch, gen)

    def _synthesize(self, wplus: torch.Tensor) -> dict[str, Any]:
        raw, feats = self.net.synthesis(wplus, self._noise(wplus.shape[0]))
        image = (raw + 1) / 2
        if not self.net.training:  # a generator being trained feeds D its unclamped output, as officially;
            image = image.clamp(0, 1)  # a frozen one (eval mode, e.g. G_s beside a trained G_t) is clamped
        return {"image": image, "raw": raw, "features": feats, "model": self.net}


MOD_MODE = "auto"
"""How inference folds the modulation (``ModulatedConv2d``): per-sample weights at batch 1 where
they are smaller than the activations, else input/output scaling; 0.64-0.80x the official
structure's time on CPU at 64 / 256 px, batch 1 / 8 (benchmarks/results_stylegan.md)."""

SYNTH_OUTPUTS: dict[str, PortType] = {
    "image": Image(doc="G(w) in [0, 1] (clamped)"),
    "raw": Tensor(rank=4, doc="unclamped output on the official [-1, 1] scale, B x 3 x size x size"),
    "features": Any_(doc="list of B x C_r x r x r: conv1 and every StyledConv output (DDS features)"),
    "model": Model(FAMILY, doc="the generator network (net.Generator) for inversion / optimisation nodes"),
}


@register("stylegan.Synthesis")
class Synthesis(_SynthesisNode):
    """Synthesis network g (StyleGAN2 fig. 2): W+ (B x n_latent x D) -> image. Each layer code
    modulates one conv (conv1 -> 0, to_rgb1 -> 1, block k: 1+2k, 2+2k, ToRGB 3+2k)."""

    Params = _SynthParams
    inputs = {"wplus": Latent("W+")}
    outputs = SYNTH_OUTPUTS

    def forward(self, wplus: torch.Tensor) -> dict[str, Any]:
        _check_wplus(self, wplus, self.net.n_latent, "wplus")
        return self._synthesize(wplus.to(self.device))


class GeneratorParams(_SynthParams):
    truncation: float = Field(1.0, ge=-2.0, le=2.0, description="truncation psi: w_avg + psi (w - w_avg) "
                              "on every layer (1 = none; official sampling 0.7)")
    mix_index: int | None = Field(None, ge=0, le=18, description="style mixing: W+ layers from this index on "
                                  "come from z2 / w2 (official inject_index); None = no mixing")
    mix_prob: float = Field(0.0, ge=0.0, le=1.0, description="training only, with z2 / w2 wired and mix_index "
                            "None: probability of mixing at a random index 1..n_latent-1 (official --mixing 0.9)")


@register("stylegan.Generator")
class Generator(_SynthesisNode):
    """StyleGAN2 generator G = g(f(z)) with truncation and style mixing (rosinality ``Generator``).

    Wire exactly one of ``z`` (mapped by f), ``w`` (broadcast to all layers) or ``wplus``. Mixing
    (``mix_index`` k, with ``z2`` or ``w2``): W+ layers 0..k-1 from the first code, k.. from the
    second. Truncation applies to both codes, around ``w_avg`` (input), else the weights' stored
    average, else the mean of f over 4096 z drawn from ``seed``. Outputs ``wplus`` = the codes
    actually used (B x n_latent x D, after truncation and mixing), on the autograd path of the image.
    """

    version = "1"
    Params = GeneratorParams
    inputs = {
        "z": Tensor(rank=2, optional=True, doc="B x D codes, mapped by f"),
        "w": Latent("W", optional=True),
        "wplus": Latent("W+", optional=True, doc="B x n_latent x D"),
        "z2": Tensor(rank=2, optional=True, doc="second code for style mixing"),
        "w2": Latent(optional=True, doc="second code (W or W+) for style mixing"),
        "w_avg": Latent("W", optional=True, doc="truncation centre 1 x D"),
    }
    outputs = {**SYNTH_OUTPUTS, "wplus": Latent("W+", doc="the W+ codes used")}

    @classmethod
    def resolve_ports(cls, params: GeneratorParams, upstream: dict[str, PortType]):
        ins, outs = dict(cls.inputs), dict(cls.outputs)
        for name in ("w", "wplus", "w2", "w_avg"):
            ins[name] = ins[name].with_(dim=params.style_dim)
        outs["wplus"] = Latent("W+", dim=params.style_dim)
        return ins, outs

    def forward(self, z: torch.Tensor | None = None, w: torch.Tensor | None = None,
                wplus: torch.Tensor | None = None, z2: torch.Tensor | None = None,
                w2: torch.Tensor | None = None, w_avg: torch.Tensor | None = None) -> dict[str, Any]:
        g, p = self.net, self.params
        first, second = self._codes(z, w, wplus, z2, w2)
        if self.ctx.training and g.training and z is not None:  # a frozen G (eval) keeps its w_avg
            g.track_latent_avg(first)  # exported weights carry the running w_avg
        if p.truncation != 1:
            centre = self._w_avg(w_avg)
            first = g.truncate(first, p.truncation, centre if first.dim() == 2 else centre[:, None])
            if second is not None:
                second = g.truncate(second, p.truncation, centre if second.dim() == 2 else centre[:, None])
        codes = g.to_wplus(first, second, self._mix_index(second))
        return {**self._synthesize(codes), "wplus": codes}

    def _codes(self, z, w, wplus, z2, w2) -> tuple[torch.Tensor, torch.Tensor | None]:
        given = [n for n, v in (("z", z), ("w", w), ("wplus", wplus)) if v is not None]
        if len(given) != 1:
            raise self.error(f"wire exactly one of z / w / wplus (got {', '.join(given) or 'none'})", "inputs")
        if z2 is not None and w2 is not None:
            raise self.error("wire at most one of z2 / w2", "inputs.z2")
        d, n_lat = self.net.style_dim, self.net.n_latent
        for name, v in (("z", z), ("z2", z2)):
            if v is not None and v.shape[1] != d:
                raise self.error(f"input {name} is B x {v.shape[1]}; this generator takes B x {d}", f"inputs.{name}")
        for name, v in (("wplus", wplus), ("w2", w2)):
            if v is not None:
                _check_wplus(self, v, n_lat, name)
        first = self.net.mapping(z.to(self.device)) if z is not None else (w if w is not None else wplus)
        second = self.net.mapping(z2.to(self.device)) if z2 is not None else w2
        if second is not None and second.shape[0] != first.shape[0]:
            raise self.error(f"the mixing code has batch {second.shape[0]}, the first code {first.shape[0]}",
                             "inputs.z2" if z2 is not None else "inputs.w2")
        return first.to(self.device), None if second is None else second.to(self.device)

    def _mix_index(self, second: torch.Tensor | None) -> int | None:
        p, n_lat = self.params, self.net.n_latent
        if second is None:
            if p.mix_index is not None:
                raise self.error(f"params.mix_index = {p.mix_index} needs a second code (wire z2 or w2)",
                                 "params.mix_index")
            return None
        if p.mix_index is not None:
            if p.mix_index > n_lat:
                raise self.error(f"params.mix_index = {p.mix_index} but this generator has {n_lat} layer codes "
                                 f"(0..{n_lat})", "params.mix_index")
            return p.mix_index
        if self.ctx.training and p.mix_prob > 0:
            if float(torch.rand(())) < p.mix_prob:  # official mixing_noise + random inject_index
                return int(torch.randint(1, n_lat, ()))
            return None
        raise self.error("a second code (z2 / w2) is wired but params.mix_index is None: set the layer where "
                         "it takes over (or mix_prob for training)", "params.mix_index")

    def _w_avg(self, given: torch.Tensor | None) -> torch.Tensor:
        return self.net.latent_avg[None] if given is None else given.to(self.device)


class DiscriminatorParams(ArchParams):
    size: int | None = Field(None, ge=8, le=1024, description="input side in px (power of two); None = from "
                             "the weights")
    weights: WeightsRef = Field("", description="discriminator weights (converted `d`, or trained); "
                                "empty = random init")


@register("stylegan.Discriminator")
class Discriminator(_StyleGANNode):
    """StyleGAN2 residual discriminator (paper fig. 7b) with minibatch stddev.

    ``fake`` and ``real`` are judged in two passes with the same weights (the stddev feature
    must not mix fake and real samples). Outputs raw logits B x 1 (loss.GAN takes them as one
    scale)."""

    version = "1"
    Params = DiscriminatorParams
    inputs = {"fake": Image(), "real": Image(optional=True)}
    outputs = {"fake": Tensor(rank=2, doc="D(fake) logits B x 1"),
               "real": Tensor(rank=2, optional=True, doc="D(real) logits B x 1")}

    def setup(self) -> None:
        cfg, state = self._config_and_state()
        if state is None:
            self.net = DiscriminatorNet(cfg)
        else:
            try:
                self.net = load_discriminator(state, cfg)
            except ValueError as e:
                raise self.error(str(e), "params.weights") from None
        self.net.to(self.device).train(self.ctx.training)

    def forward(self, fake: torch.Tensor, real: torch.Tensor | None = None) -> dict[str, Any]:
        size = self.net.cfg.size
        for name, x in (("fake", fake), ("real", real)):
            if x is not None and tuple(x.shape[-2:]) != (size, size):
                raise self.error(f"input {name} is {x.shape[-2]} x {x.shape[-1]}; this discriminator takes "
                                 f"{size} x {size} (use image.Resize)", f"inputs.{name}")
        out = {"fake": self.net(fake.to(self.device) * 2 - 1)}
        if real is not None:
            out["real"] = self.net(real.to(self.device, fake.dtype) * 2 - 1)
        return out
