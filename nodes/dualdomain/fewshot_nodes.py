"""Few-shot adaptation nodes (Ojha et al., CVPR 2021): thin doors to ``fewshot.py``.

    dualdomain.AnchorZ             [like] -> z near one of n fixed anchors (anchor subspace)
    dualdomain.Generate            model (a stylegan.Generator's), z [, z2] -> image, raw, features
    dualdomain.PatchDiscriminator  -> model: StyleGAN2 D + patch heads (trained; loads a source D)
    dualdomain.Judge               model, fake [, real] -> logits at the patch or the image level
    dualdomain.CDC                 source features, target features -> distance consistency loss

``graphs/fewshot_adapt.json`` wires them: G_t (a trained ``stylegan.Generator`` initialised from
G_s) and a frozen copy G_s read the same z for the CDC loss; ``Generate`` runs G_t's network on the
adversarial codes (random z on most steps, anchor z every k-th), ``Judge`` runs the one D at the
level each step asks for. Image ports are [0, 1]; the networks see [-1, 1] (converted here).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field

from nodegraph import weights as weights_mod
from nodegraph.node import Node, NodeError, Params
from nodegraph.registry import register
from nodegraph.types import Any_, Image, Model, Scalar, Tensor

from ..stylegan.net import Generator as GeneratorNet
from ..stylegan.nodes import ArchParams, config_and_state
from .fewshot import PatchDiscriminator as PatchDNet
from .fewshot import anchor_z, cdc_loss, make_anchors

D_FAMILY = "stylegan2_d"


class _Node(Node):
    def error(self, message: str, where: str) -> NodeError:
        nid = self.ctx.node_id or self.type_name
        return NodeError(f"node {nid!r} ({self.type_name}): {message}", nid, f"{nid}.{where}")

    def _gen(self) -> torch.Generator | None:
        """None in training (the trainer's per-step RNG), else a generator seeded from params.seed."""
        return None if self.ctx.training else torch.Generator().manual_seed(int(self.params.seed))


@register("dualdomain.AnchorZ")
class AnchorZ(_Node):
    """Codes from the anchor subspace (Ojha et al. sec. 3.2, eq. 4; official ``get_subspace``):
    z = a_k + std * N(0, I) with k uniform over ``anchors`` fixed codes a_k ~ N(0, I) drawn once
    from ``anchor_seed`` (official: ``init_z``, one per training image). Output B x ``dim``; B from
    ``like`` when wired, else ``batch``. In training the index and noise come from the trainer's
    per-step RNG; otherwise from ``seed``."""

    class Params(Params):
        anchors: int = Field(10, ge=1, le=4096, description="number of anchors (official n_train = 10)")
        std: float = Field(0.1, ge=0, le=10, description="spread around an anchor (official subspace_std 0.1)")
        dim: int = Field(512, ge=1, le=4096, description="D of z (the generator's style_dim)")
        anchor_seed: int = Field(0, description="seed of the anchors themselves")
        batch: int = Field(4, ge=1, le=4096, description="codes (ignored when `like` is wired)")
        seed: int = Field(0, description="RNG seed of index and noise (inference)")

    inputs = {"like": Any_(optional=True, doc="a batch whose size B the codes follow")}
    outputs = {"z": Tensor(rank=2, doc="B x D codes near the anchors"),
               "anchors": Tensor(rank=2, doc="n x D the anchors a_k")}

    def setup(self) -> None:
        p = self.params
        self.anchors = make_anchors(p.anchors, p.dim, p.anchor_seed)

    def forward(self, like: Any = None) -> dict[str, Any]:
        b = int(like.shape[0]) if isinstance(like, torch.Tensor) else self.params.batch
        z = anchor_z(self.anchors, b, self.params.std, self._gen())
        return {"z": z.to(self.device), "anchors": self.anchors.to(self.device)}


@register("dualdomain.Generate")
class Generate(_Node):
    """G(z) through a StyleGAN2 generator network received on ``model`` (a ``stylegan.Generator``'s
    ``model`` output), so one trained generator can be run on several code batches in a graph
    (gradients reach the owner's weights). z (B x D) -> f -> W+ (mixed with f(z2) from a random layer
    with probability ``mix_prob`` in training: official ``mixing_noise`` + random ``inject_index``;
    at ``mix_index`` otherwise) -> g with fresh noise maps. Outputs ``image`` (B x 3 x size x size,
    [0, 1]; unclamped while the network is being trained, as D sees it), ``raw`` ([-1, 1] scale) and ``features``."""

    class Params(Params):
        mix_prob: float = Field(0.0, ge=0, le=1, description="training: probability of style mixing with z2 "
                                "(official --mixing 0.9)")
        mix_index: int | None = Field(None, ge=1, le=18, description="outside training: layer where z2 "
                                      "takes over (None: z2 unused outside training)")
        noise: Literal["random", "fixed"] = Field("random", description="random: fresh N(0,1) maps (official "
                                                  "randomize_noise=True); fixed: the model's buffers")
        seed: int = Field(0, description="seed of the noise maps and mixing draw (inference)")

    inputs = {"model": Model("stylegan2", doc="the generator network (stylegan.Generator's model output)"),
              "z": Tensor(rank=2, doc="B x D codes"),
              "z2": Tensor(rank=2, optional=True, doc="second codes for style mixing")}
    outputs = {"image": Image(), "raw": Tensor(rank=4, doc="B x 3 x size x size on [-1, 1]"),
               "features": Any_(doc="conv1 and every StyledConv output, B x C_r x r x r each")}

    def forward(self, model: Any, z: torch.Tensor, z2: torch.Tensor | None = None) -> dict[str, Any]:
        if not isinstance(model, GeneratorNet):
            raise self.error(f"input model is a {type(model).__name__}; wire a stylegan.Generator's model "
                             "output", "inputs.model")
        for name, v in (("z", z), ("z2", z2)):
            if v is not None and v.shape[1] != model.style_dim:
                raise self.error(f"input {name} is B x {v.shape[1]}; this generator takes B x "
                                 f"{model.style_dim}", f"inputs.{name}")
        w = model.mapping(z.to(self.device))
        w2 = model.mapping(z2.to(self.device)) if z2 is not None else None
        codes = model.to_wplus(w, w2, self._index(model, w2))
        noise = None if self.params.noise == "fixed" else model.make_noise(z.shape[0], self._gen())
        raw, feats = model.synthesis(codes, noise)
        image = (raw + 1) / 2
        return {"image": image if model.training else image.clamp(0, 1), "raw": raw, "features": feats}

    def _index(self, model: GeneratorNet, w2: torch.Tensor | None) -> int | None:
        p = self.params
        if w2 is None:
            return None
        if not self.ctx.training:
            return p.mix_index
        if p.mix_prob > 0 and float(torch.rand(())) < p.mix_prob:
            return int(torch.randint(1, model.n_latent, ()))
        return None


class PatchDParams(ArchParams):
    weights: str = Field("", description="D weights (a StyleGAN2 discriminator of G_s: manifest name or "
                         ".safetensors; the patch heads start fresh when absent); empty = random init")
    highp: int = Field(1, ge=1, le=4, description="patch heads used: one of the first highp tapped maps at "
                       "random per call (official --highp 1)")


@register("dualdomain.PatchDiscriminator")
class PatchDiscriminator(_Node):
    """The few-shot D (Ojha et al. sec. 3.2): a StyleGAN2 residual D (keys as ``stylegan.Discriminator``,
    so a source D loads) plus the official patch heads on its 32 / 16 px residual-branch maps (see
    ``fewshot.PatchDiscriminator``). Owns the weights (train it: ``updates``); outputs ``model`` for
    ``dualdomain.Judge`` nodes. Errors: weights that do not fit, highp above the tapped maps."""

    Params = PatchDParams
    outputs = {"model": Model(D_FAMILY, doc="PatchDiscriminator network (image [-1, 1] -> logits)")}

    def setup(self) -> None:
        cfg, state = config_and_state(self)  # the StyleGAN nodes' resolution: weights' config <- params
        try:
            self.net = PatchDNet(cfg, self.params.highp)
        except ValueError as e:  # e.g. highp above the tapped maps
            raise self.error(str(e), "params") from None
        if state is not None:
            self._load(state)
        self.net.to(self.device).train(self.ctx.training)

    def _load(self, state: dict[str, torch.Tensor]) -> None:
        want = self.net.state_dict()
        full = {k: state.get(k, v) for k, v in want.items() if k.startswith("extra.")}
        full.update(state)
        parts = weights_mod.state_dict_mismatch(full, want)
        if parts:
            raise self.error("the weights do not fit this discriminator: " + "; ".join(parts), "params.weights")
        self.net.load_state_dict(full)

    def forward(self) -> dict[str, Any]:
        return {"model": self.net}


@register("dualdomain.Judge")
class Judge(_Node):
    """Run a ``dualdomain.PatchDiscriminator`` on ``fake`` [and ``real``] (B x 3 x size x size,
    [0, 1]) at one level: ``patch`` -> B x 1 x r x r logits of a random one of the first highp heads
    (drawn per call, official ``p_ind``; r = 32 for the first head), ``image`` -> B x 1 logits (the
    ordinary D output; use it for R1 too). Fake and real are judged in separate calls (minibatch
    stddev). Errors: images of another size than the D's."""

    class Params(Params):
        level: Literal["patch", "image"] = Field("patch", description="patch logits or image-level logits")

    inputs = {"model": Model(D_FAMILY), "fake": Image(), "real": Image(optional=True)}
    outputs = {"fake": Tensor(doc="D logits on fake"), "real": Tensor(optional=True, doc="D logits on real")}

    def forward(self, model: Any, fake: torch.Tensor, real: torch.Tensor | None = None) -> dict[str, Any]:
        size = model.cfg.size
        for name, x in (("fake", fake), ("real", real)):
            if x is not None and tuple(x.shape[-2:]) != (size, size):
                raise self.error(f"input {name} is {x.shape[-2]} x {x.shape[-1]}; the discriminator takes "
                                 f"{size} x {size}", f"inputs.{name}")
        out = {"fake": self._judge(model, fake.to(self.device) * 2 - 1)}
        if real is not None:
            out["real"] = self._judge(model, real.to(self.device, fake.dtype) * 2 - 1)
        return out

    def _judge(self, model: PatchDNet, x: torch.Tensor) -> torch.Tensor:
        if self.params.level == "image":
            return model(x)
        ind = int(torch.randint(0, model.highp, ())) if self.ctx.training and model.highp > 1 else 0
        return model.patch(x, ind)


@register("dualdomain.CDC")
class CDC(_Node):
    """Cross-domain distance consistency loss (Ojha et al. eq. 3; official ``rel_loss`` before its
    ``kl_wt``): per layer, each sample's cosine similarities to the batch's other samples, softmaxed,
    KL(source || target) averaged over the B x (B-1) entries, summed over layers ``first``.. (``all``)
    or one random layer per sample (``random``, the official code). ``source`` / ``target``: the
    ``features`` lists of G_s and G_t for the same z (B >= 2). Output ``loss`` (0-d; weight 1000 in
    the objective, official ``kl_wt``). Errors: lists of different lengths (layer counts differ),
    batch below 2, mismatched batches."""

    class Params(Params):
        layers: Literal["all", "random"] = Field("all", description="all: sum over layers (paper eq. 3); "
                                                 "random: one random layer per sample (official train.py)")
        first: int = Field(1, ge=0, le=30, description="first layer used (official randint(1, n_latent - 1): "
                           "conv1's 4 x 4 map left out)")

    inputs = {"source": Any_(doc="G_s features: list of B x C_l x r x r"),
              "target": Any_(doc="G_t features for the same z")}
    outputs = {"loss": Scalar()}

    def forward(self, source: list[torch.Tensor], target: list[torch.Tensor]) -> dict[str, Any]:
        for name, v in (("source", source), ("target", target)):
            if not isinstance(v, (list, tuple)) or not v:
                raise self.error(f"input {name} must be a generator's features list", f"inputs.{name}")
        if len(source) != len(target):
            raise self.error(f"source has {len(source)} feature maps, target {len(target)}: the two generators' "
                             "layer counts differ", "inputs.target")
        if source[0].shape[0] != target[0].shape[0] or source[0].shape[0] < 2:
            raise self.error(f"batches {source[0].shape[0]} (source) and {target[0].shape[0]} (target) must be "
                             "equal and at least 2", "inputs.target")
        try:
            loss = cdc_loss(list(source), list(target), self.params.layers, self.params.first)
        except ValueError as e:
            raise self.error(str(e), "params.first") from None
        return {"loss": loss}
