"""In-domain GAN inversion nodes (Zhu et al., ECCV 2020): thin doors to ``net``, ``optimize`` and ``edit``.

    inversion.Encoder        image -> W+ (domain-guided encoder E), model
    inversion.Perceptual     -> model: IDInvert's VGG16 conv4_3 (caffe input) for Optimize's F
    inversion.Optimize       image + generator (+ encoder, perceptual, mask, init_code) -> W+, image, loss
    inversion.Interpolate    a, b -> steps codes a .. b
    inversion.Manipulate     wplus + boundary -> w + l n on chosen layers, l over a range
    inversion.StyleMix       style, content -> content with layers k.. from style (grid)
    inversion.Stitch         target, context -> target crop pasted on each context, mask
    inversion.LearnBoundary  codes + binary labels -> unit normal per layer (InterFaceGAN layout)

Image ports are [0, 1]; the networks work in [-1, 1] (converted here, once). A ``generator`` is
any ``Model`` with ``size``, ``n_latent``, ``style_dim``, ``latent_avg`` and ``forward(W+) ->
[-1, 1]`` (``stylegan.Generator`` / ``stylegan.GeneratorV1`` ``model`` outputs).
"""

from __future__ import annotations

import json
from typing import Any, Literal

import torch
from pydantic import Field
from safetensors import safe_open

from nodegraph import weights as weights_mod
from nodegraph.node import Node, NodeError, Params, WeightsRef
from nodegraph.registry import register
from nodegraph.types import Image, Latent, Mask, Model, Tensor
from nodes.common.autograd import autograd_ready

from . import domain, edit
from .net import PRESETS, CaffeVGG16, Encoder, match_w_statistics
from .optimize import Weights, invert

ENCODER_FAMILY = "idinvert-encoder"


class _Node(Node):
    def error(self, message: str, where: str) -> NodeError:
        nid = self.ctx.node_id or self.type_name
        return NodeError(f"node {nid!r} ({self.type_name}): {message}", nid, f"{nid}.{where}")


def _signed(image: torch.Tensor) -> torch.Tensor:
    return image * 2 - 1


@register("inversion.Encoder")
class EncoderNode(_Node):
    """Domain-guided encoder E (IDInvert sec. 3.1): image B x 3 x S x S in [0, 1] -> W+ B x n_latent
    x 512 (n_latent = 2 (log2 S - 1), the generator's). Official layout (``preset`` official256,
    weights from ``nodegraph convert idinvert-encoder``) or the same network narrower (cpu64:
    channels 32 .. 256 at 64 px). Eval-mode BN at inference; trainable under ``nodegraph train``
    (BN gamma frozen, as officially). Errors: an image of another size names ``inputs.image``."""

    version = "1"

    class Params(Params):
        preset: Literal["official256", "cpu64"] = Field("cpu64", description="architecture when the weights "
                                                        "carry no config (and for random init)")
        weights: WeightsRef = Field("", description="converted or trained encoder; empty = random init")
        seed: int = Field(0, description="seed of the random init")
        init_generator: WeightsRef = Field("", description="random init only (training): start the codes in "
                                           "this generator's W -- the last BN's frozen gamma and its beta set "
                                           "to the per-dimension spread and mean of f(z) over 4096 z "
                                           "(net.match_w_statistics says why)")

    inputs = {"image": Image(optional=True, doc="images to encode, the generator's size")}
    outputs = {"wplus": Latent("W+", optional=True), "model": Model(ENCODER_FAMILY)}

    def setup(self) -> None:
        cfg, state = PRESETS[self.params.preset], None
        if self.params.weights:
            from .convert import encoder_config_of

            state = weights_mod.load(self.params.weights, self.ctx.base_dir)
            try:
                cfg = encoder_config_of(state, self.params.weights)  # the architecture from the shapes
            except ValueError as e:
                raise self.error(str(e), "params.weights") from None
        with torch.random.fork_rng():  # the init is seeded without touching the caller's RNG
            torch.manual_seed(self.params.seed)
            self.net = Encoder(cfg)
        if state is None and self.params.init_generator:
            self._match_generator(self.params.init_generator)
        if state is not None:
            parts = weights_mod.state_dict_mismatch(state, self.net.state_dict())
            if parts:
                raise self.error(f"the weights do not fit {cfg}: " + "; ".join(parts), "params.weights")
            self.net.load_state_dict(state)
        self.net.to(self.device).train(self.ctx.training)

    def _match_generator(self, ref: str) -> None:
        from nodes.stylegan.load import load_generator

        try:
            g, _ = load_generator(weights_mod.load(ref, self.ctx.base_dir))
        except ValueError as e:
            raise self.error(f"init_generator: {e}", "params.init_generator") from None
        if (g.n_latent, g.size, g.style_dim) != (self.net.n_latent, self.net.size, self.net.w_dim):
            raise self.error(f"init_generator takes {g.n_latent} codes of {g.style_dim} at {g.size} px; this "
                             f"encoder gives {self.net.n_latent} of {self.net.w_dim} at {self.net.size} px",
                             "params.init_generator")
        with torch.no_grad(), torch.random.fork_rng():
            torch.manual_seed(self.params.seed)
            w = g.mapping(torch.randn(4096, g.style_dim))
        match_w_statistics(self.net, w.mean(0), w.std(0))

    def forward(self, image: torch.Tensor | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.net}
        if image is not None:
            s = self.net.size
            if tuple(image.shape[-2:]) != (s, s):
                raise self.error(f"input image is {image.shape[-2]} x {image.shape[-1]}; this encoder takes {s} x {s} "
                                 "(image.Resize, or face.LandmarkParser to align a photo)", "inputs.image")
            out["wplus"] = self.net(_signed(image.to(self.device)))
        return out


@register("inversion.Perceptual")
class PerceptualNode(_Node):
    """IDInvert's perceptual network F: VGG16 to the ReLU of conv4_3 with the official caffe input
    ([-1, 1] -> [0, 255], BGR, minus (103.939, 116.779, 123.68)); a frozen ``Model`` taking [0, 1]
    images. Weights: ``nodegraph convert vgg16-idinvert vgg16.pth OUT`` (their Keras conversion)."""

    class Params(Params):
        weights: WeightsRef = Field("vgg16_idinvert", description="converted IDInvert vgg16.pth")

    outputs = {"model": Model()}

    def setup(self) -> None:
        self.net = CaffeVGG16()
        weights_mod.load_into(self.net, self.params.weights, self.ctx.base_dir)
        self.net.to(self.device)

    def forward(self) -> dict[str, Any]:
        return {"model": self.net}


class OptimizeParams(Params):
    lambda_pix: float = Field(1.0, ge=0, description="pixel MSE weight (paper eq. 5; official 1.0)")
    lambda_feat: float = Field(5e-5, ge=0, description="perceptual weight (official 5e-5 for VGG16 conv4_3 "
                               "on caffe input; other feature nets need their own)")
    lambda_dom: float = Field(2.0, ge=0, description="domain regulariser ||w - E(G(w))||^2 weight (official "
                              "2.0; 0 = Image2StyleGAN-style baseline). Off where a mask is wired")
    lr: float = Field(0.01, gt=0, description="Adam learning rate (official 0.01)")
    steps: int = Field(100, ge=0, le=100000, description="optimisation steps (official 100)")
    init: Literal["encoder", "mean", "code"] = Field("encoder", description="start from E(x) (official), the "
                                                     "generator's mean w on every layer, or the init_code input")
    face_check: WeightsRef = Field("face_parser_default", description="before any step: a face parser "
                                   "(face.UNetParser weights) must find both eyes, confidently, in every image "
                                   "(nodes/inversion/domain.py); the default knows procedural portraits, the "
                                   "shipped generator's domain. '' = off, e.g. for a GAN of real faces or to "
                                   "push a photo into the procedural GAN on purpose")


@register("inversion.Optimize")
class Optimize(_Node):
    """Domain-regularised optimisation of W+ (IDInvert sec. 3.2, eq. 5; official ``inverter.py``):
    ``lambda_pix mean (x - G(w))^2 + lambda_feat mean (F(x) - F(G(w)))^2 + lambda_dom mean (w - E(G(w)))^2``
    with Adam, each image on its own. With ``mask`` (semantic diffusion) both reconstruction terms
    compare ``x m`` with ``G(w) m`` and the regulariser is off. Gradients reach the code only;
    F(x) is computed once. Emits a progress event per step.

    Outputs: ``wplus`` (B x L x D), ``image`` G(w*) in [0, 1], ``loss`` (steps: the weighted total,
    batch mean), ``terms`` (steps x 3: pixel, perceptual, domain, unweighted). Errors before any
    step: image size, encoder / generator n_latent or size, init_code layers, mask size, a weight
    whose network is not wired, and (no mask) an image in which ``face_check``'s parser finds no
    aligned face (``domain.py``; '' turns it off)."""

    version = "1"
    Params = OptimizeParams
    cacheable = True
    inputs = {"image": Image(doc="target x, the generator's size"),
              "generator": Model(doc="G: forward(W+) -> [-1, 1] (stylegan.Generator / GeneratorV1 model)"),
              "encoder": Model(ENCODER_FAMILY, optional=True, doc="E for init and the domain regulariser"),
              "perceptual": Model(optional=True, doc="F taking [0, 1] images (features / inversion.Perceptual)"),
              "mask": Mask(optional=True, doc="B|1 x 1 x H x W in [0, 1]: compare only here (diffusion)"),
              "init_code": Latent("W+", optional=True, doc="start code when params.init = code")}
    outputs = {"wplus": Latent("W+"), "image": Image(), "loss": Tensor(rank=1), "terms": Tensor(rank=2)}

    def _check(self, image, G, E, F, mask, init_code) -> None:
        p = self.params
        for attr in ("size", "n_latent", "style_dim", "latent_avg"):
            if not hasattr(G, attr):
                raise self.error(f"input generator ({type(G).__name__}) has no {attr}; wire a stylegan.Generator or "
                                 "stylegan.GeneratorV1 model output", "inputs.generator")
        s, n = G.size, G.n_latent
        if tuple(image.shape[-2:]) != (s, s):
            raise self.error(f"input image is {image.shape[-2]} x {image.shape[-1]}; the generator makes {s} x {s} "
                             "(image.Resize; face.LandmarkParser aligns a face photo)", "inputs.image")
        if E is not None and (E.n_latent, E.size) != (n, s):
            raise self.error(f"the encoder gives {E.n_latent} codes from {E.size} px; the generator takes {n} codes "
                             f"and makes {s} px (train or convert an encoder for this generator)", "inputs.encoder")
        if init_code is not None and init_code.shape[1] != n:
            raise self.error(f"input init_code has {init_code.shape[1]} layer codes; the generator takes {n}",
                             "inputs.init_code")
        if mask is not None and tuple(mask.shape[-2:]) != (s, s):
            raise self.error(f"input mask is {tuple(mask.shape[-2:])}, the image {s} x {s}", "inputs.mask")
        need = {"encoder": (p.init == "encoder", E, "params.init"), "init_code": (p.init == "code", init_code,
                "params.init"), "perceptual": (p.lambda_feat > 0, F, "params.lambda_feat"),
                "encoder ": (p.lambda_dom > 0 and mask is None, E, "params.lambda_dom")}
        for port, (needed, value, where) in need.items():
            if needed and value is None:
                raise self.error(f"{where} needs the {port.strip()} input wired (or change {where})", where)

    def _check_faces(self, image: torch.Tensor) -> None:
        """Refuse images in which ``params.face_check``'s parser finds no face (domain.py)."""
        ref = self.params.face_check
        if not ref:
            return
        if getattr(self, "_parser_ref", None) != ref:
            self._parser, self._parser_ref = domain.load_parser(ref, self.ctx.base_dir), ref
        bad = domain.not_faces(self._parser, image)
        if bad:
            which = ", ".join(f"image {i} (eyes {e:.4f}, confidence {c:.3f})" for i, e, c in bad[:4])
            raise self.error(f"{which}{' ...' if len(bad) > 4 else ''} of the batch: no aligned face of the "
                             f"generator's kind found (params.face_check = {ref!r} must see both eyes, each >= "
                             f"{domain.EYE_MIN} of the image, with mean confidence >= {domain.CONF_MIN}). Invert an "
                             "aligned face (face.LandmarkParser aligns a face photo), or set params.face_check to "
                             "'' to invert it anyway", "inputs.image")

    def forward(self, image, generator, encoder=None, perceptual=None, mask=None, init_code=None) -> dict[str, Any]:
        p = self.params
        self._check(image, generator, encoder, perceptual, mask, init_code)
        if mask is None:
            self._check_faces(image)
        G, E, F = (autograd_ready(m) for m in (generator, encoder, perceptual))
        with torch.inference_mode(False), torch.enable_grad():
            x = _signed(image.to(self.device)).clone()
            m = None if mask is None else mask.to(self.device).clone()
            w0 = self._init(G, E, x, init_code)
            w, curve = invert(G, x, w0, E=E, F=F, mask=m, lr=p.lr, steps=p.steps,
                              weights=Weights(p.lambda_pix, p.lambda_feat, p.lambda_dom),
                              progress=lambda i, n, loss: self.ctx.progress(i, n, f"loss {loss:.4f}"))
            with torch.no_grad():
                out = ((G(w) + 1) / 2).clamp(0, 1)
        return {"wplus": w, "image": out, "loss": curve[:, 0], "terms": curve[:, 1:]}

    def _init(self, G, E, x, init_code) -> torch.Tensor:
        init = self.params.init
        with torch.no_grad():
            if init == "encoder":
                E.eval()
                return E(x)
            if init == "code":
                return init_code.to(x).clone()
            return G.latent_avg.to(x).view(1, 1, -1).expand(x.shape[0], G.n_latent, -1).clone()


@register("inversion.Interpolate")
class Interpolate(_Node):
    """Linear interpolation in W+ (IDInvert sec. 4.2): ``steps`` codes from a to b including both
    ends (official 5), pair-major: out[i * steps + t] = a_i + t / (steps - 1) (b_i - a_i)."""

    class Params(Params):
        steps: int = Field(5, ge=2, le=256, description="codes per pair, both ends included")

    inputs = {"a": Latent("W+"), "b": Latent("W+")}
    outputs = {"wplus": Latent("W+")}

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> dict[str, Any]:
        if a.shape != b.shape:
            raise self.error(f"a is {tuple(a.shape)} but b is {tuple(b.shape)}", "inputs.b")
        return {"wplus": edit.interpolate(a, b, self.params.steps)}


@register("inversion.Manipulate")
class Manipulate(_Node):
    """Semantic editing w + l n (IDInvert sec. 4.3 with InterFaceGAN boundaries) on ``layers`` only,
    for l in linspace(start, end, steps) (official -3 .. 3, 7). The boundary n is the ``boundary``
    input (1 x L x D or 1 x D) or the file ``params.boundary`` (``nodegraph convert
    interfacegan-boundary``, which also supplies the layers). Output image-major: out[i * steps + k]."""

    class Params(Params):
        boundary: WeightsRef = Field("", description="boundary .safetensors (tensor 'boundary'); or wire the input")
        layers: list[int] | None = Field(None, description="layers edited; None = the file's manipulate_layers, "
                                         "else all")
        start: float = Field(-3.0, description="first strength l")
        end: float = Field(3.0, description="last strength l")
        steps: int = Field(7, ge=1, le=256, description="number of strengths")

    inputs = {"wplus": Latent("W+"), "boundary": Tensor(optional=True, doc="1 x L x D or 1 x D unit normal")}
    outputs = {"wplus": Latent("W+"), "strengths": Tensor(rank=1)}

    def forward(self, wplus: torch.Tensor, boundary: torch.Tensor | None = None) -> dict[str, Any]:
        p, n_lat = self.params, wplus.shape[1]
        layers = p.layers
        if boundary is None:
            if not p.boundary:
                raise self.error("no boundary: wire the boundary input or set params.boundary", "inputs.boundary")
            path = weights_mod.resolve(p.boundary, self.ctx.base_dir)
            with safe_open(str(path), "pt") as f:
                boundary = f.get_tensor("boundary")
                stored = json.loads((f.metadata() or {}).get("manipulate_layers", "[]"))
            layers = layers if layers is not None else (stored or None)
        layers = list(range(n_lat)) if layers is None else layers
        if boundary.shape[-1] != wplus.shape[-1] or (boundary.dim() == 3 and boundary.shape[1] not in (1, n_lat)):
            raise self.error(f"boundary {tuple(boundary.shape)} does not fit codes {tuple(wplus.shape)}",
                             "inputs.boundary")
        if any(not 0 <= i < n_lat for i in layers):
            raise self.error(f"layers {layers} outside 0..{n_lat - 1}", "params.layers")
        ls = torch.linspace(p.start, p.end, p.steps)
        return {"wplus": edit.manipulate(wplus, boundary.to(wplus), layers, ls), "strengths": ls}


@register("inversion.StyleMix")
class StyleMix(_Node):
    """Style mixing (IDInvert sec. 4.4): each content code with layers ``start..L-1`` taken from each
    style code (official start 10 of 14 = the last 4). Output (S * C) x L x D, style-major, so a
    sheet with ``columns`` = C shows styles as rows and contents as columns."""

    class Params(Params):
        start: int | None = Field(None, ge=0, description="first layer taken from the style; None = L - 4")

    inputs = {"style": Latent("W+"), "content": Latent("W+")}
    outputs = {"wplus": Latent("W+")}

    def forward(self, style: torch.Tensor, content: torch.Tensor) -> dict[str, Any]:
        n_lat = content.shape[1]
        if style.shape[1:] != content.shape[1:]:
            raise self.error(f"style {tuple(style.shape)} and content {tuple(content.shape)} differ", "inputs.style")
        start = n_lat - 4 if self.params.start is None else self.params.start
        if start >= n_lat:
            raise self.error(f"params.start = {start} but codes have {n_lat} layers", "params.start")
        return {"wplus": edit.style_mix(style, content, start)}


@register("inversion.Stitch")
class Stitch(_Node):
    """Semantic-diffusion input (IDInvert sec. 4.5): the square crop of ``target`` (side ``crop`` x H,
    centred at (``center_x``, ``center_y``) x H; official 110 px at (125, 145) of 256) pasted on
    every ``context``. Outputs the stitched images and the mask (for inversion.Optimize)."""

    class Params(Params):
        center_x: float = Field(125 / 256, ge=0, le=1, description="crop centre x / width")
        center_y: float = Field(145 / 256, ge=0, le=1, description="crop centre y / height")
        crop: float = Field(110 / 256, gt=0, le=1, description="crop side / height")

    inputs = {"target": Image(doc="1 or B images"), "context": Image(doc="B images")}
    outputs = {"image": Image(), "mask": Mask()}

    def forward(self, target: torch.Tensor, context: torch.Tensor) -> dict[str, Any]:
        if target.shape[-2:] != context.shape[-2:] or target.shape[0] not in (1, context.shape[0]):
            raise self.error(f"target {tuple(target.shape)} does not fit context {tuple(context.shape)}",
                             "inputs.target")
        p = self.params
        m = edit.box_mask(context.shape[-1], p.center_x, p.center_y, p.crop).to(context)
        return {"image": edit.stitch(target, context, m), "mask": m.expand(context.shape[0], -1, -1, -1)}


@register("inversion.LearnBoundary")
class LearnBoundary(_Node):
    """A linear attribute boundary in W+ from labelled codes (InterFaceGAN sec. 2.2, per layer):
    logistic regression per layer, the normal scaled to unit norm per layer, stored as InterFaceGAN
    does (1 x L x D), pointing towards label 1. Outputs ``boundary`` and ``accuracy`` (L, training)."""

    class Params(Params):
        select: list[int] = Field(default_factory=list, description="with attribute values (not 0 / 1): the "
                                  "entries along dim 1 of `labels` to average into one score per code (e.g. [1] "
                                  "of data.Portraits colors = hair RGB); [] = all")
        threshold: float | None = Field(None, description="label = score > threshold; None = 0 / 1 labels as "
                                        "given, else a median split of the score")
        l2: float = Field(1e-3, ge=0, description="L2 penalty on the standardised normal")
        iters: int = Field(100, ge=1, le=10000, description="LBFGS iterations")

    inputs = {"wplus": Latent("W+", doc="N x L x D codes"),
              "labels": Tensor(doc="N binary labels (0 / 1), or N x K x ... attribute values (see select)")}
    outputs = {"boundary": Tensor(rank=3), "accuracy": Tensor(rank=1)}

    def _binary(self, labels: torch.Tensor) -> torch.Tensor:
        p = self.params
        v = labels.float()
        if p.select:
            v = v[:, p.select]
        score = v.reshape(v.shape[0], -1).mean(1)
        if p.threshold is not None:
            return (score > p.threshold).float()
        if labels.dim() == 1 and bool(((score == 0) | (score == 1)).all()):
            return score
        return (score > score.median()).float()

    def forward(self, wplus: torch.Tensor, labels: torch.Tensor) -> dict[str, Any]:
        y = self._binary(labels) if labels.shape[0] == wplus.shape[0] else labels.flatten().float()
        if y.numel() != wplus.shape[0]:
            raise self.error(f"{y.numel()} labels for {wplus.shape[0]} codes", "inputs.labels")
        if not bool(((y == 0) | (y == 1)).all()) or y.min() == y.max():
            raise self.error("labels must be 0 / 1 with both classes present", "inputs.labels")
        with torch.inference_mode(False):
            b, acc = edit.learn_boundary(wplus.clone(), y.clone(), self.params.l2, self.params.iters)
        return {"boundary": b, "accuracy": acc}
