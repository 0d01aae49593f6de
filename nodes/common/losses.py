"""Loss nodes (family ``loss``): each outputs a Scalar ``loss`` for a ``train`` objective.

GAN losses take discriminator outputs in any of the usual shapes: one logit tensor, a list of
tensors (one per scale), or a list over scales of feature lists whose last item is the logits
(pix2pixHD / SPADE multi-scale discriminators with ``get_interm_feat``).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from nodegraph.node import Node, NodeError, Params, WeightsRef
from nodegraph.registry import register
from nodegraph.types import Any_, Image, LabelMap, Mask, Model, Scalar, Tensor

DOut = Any_(doc="discriminator output: a tensor, a list over scales, or a list of feature lists")


def logits_per_scale(pred: Any) -> list[torch.Tensor]:
    """The logit tensor of each discriminator scale (last item of a feature list)."""
    if isinstance(pred, torch.Tensor):
        return [pred]
    if isinstance(pred, (list, tuple)) and pred:
        return [p[-1] if isinstance(p, (list, tuple)) else p for p in pred]
    raise NodeError(f"expected discriminator logits (tensor or list), got {type(pred).__name__}")


def features_per_scale(pred: Any) -> list[list[torch.Tensor]]:
    """Intermediate features of each scale (every item of a feature list but the logits)."""
    if isinstance(pred, torch.Tensor):
        return [[]]
    return [list(p[:-1]) if isinstance(p, (list, tuple)) else [] for p in pred]


def gan_term(logits: torch.Tensor, mode: str, target: str) -> torch.Tensor:
    """One side of a GAN loss. ``target``: ``real`` / ``fake`` (D) or ``gen`` (G)."""
    x = logits.float()
    if mode == "hinge":  # Lim & Ye 2017; SPADE: D max(0, 1 -/+ D), G -D
        if target == "real":
            return F.relu(1.0 - x).mean()
        if target == "fake":
            return F.relu(1.0 + x).mean()
        return -x.mean()
    if mode == "ls":  # LSGAN (Mao et al. 2017): (D - 1)^2 and D^2
        if target == "fake":
            return (x ** 2).mean()
        return ((x - 1.0) ** 2).mean()
    # bce / logistic: non-saturating (Goodfellow et al. 2014): -log sigmoid(D) = softplus(-D)
    if target == "fake":
        return F.softplus(x).mean()
    return F.softplus(-x).mean()


@register("loss.GAN")
class GANLoss(Node):
    """Adversarial loss in G form (``role=g``: fake only) or D form (``role=d``: real + fake).

    hinge: L_D = E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(s)))], L_G = -E[D(G(s))];
    ls:    L_D = E[(D(x) - 1)^2] + E[D(G(s))^2],            L_G = E[(D(G(s)) - 1)^2];
    bce:   L_D = E[softplus(-D(x))] + E[softplus(D(G(s)))],  L_G = E[softplus(-D(G(s)))].
    logistic: the same formulas under the StyleGAN / StyleGAN2 name (non-saturating logistic loss;
    rosinality ``d_logistic_loss`` / ``g_nonsaturating_loss``; pair it with ``loss.R1``).
    Multi-scale outputs are averaged over scales (as SPADE's GANLoss does).

    Matching-aware D (Reed et al. 2016 GAN-CLS; Zhao's L_{D_cGAN}): with ``wrong`` = D on real data
    paired with mismatched conditions, L_D = t_r L_real(D(x, a)) + t_w L_fake(D(x, a_hat)) +
    t_f L_fake(D(G(z, a), a)) with ``terms`` = (t_r, t_w, t_f): the paper's 1/1/1, StackGAN / GAN-CLS
    1/0.5/0.5. ``terms`` is used only when ``wrong`` is wired.
    """

    class Params(Params):
        mode: Literal["hinge", "ls", "bce", "logistic"] = "hinge"
        role: Literal["g", "d"] = Field("g", description="g: generator loss on fake; d: discriminator loss")
        terms: tuple[float, float, float] = Field(
            (1.0, 1.0, 1.0), description="D weights of (real, wrong, fake) when 'wrong' is wired: paper 1/1/1, "
            "StackGAN 1/0.5/0.5")

    inputs = {"fake": DOut, "real": Any_(optional=True, doc="D output on real data (role d)"),
              "wrong": Any_(optional=True, doc="D output on real data with mismatched conditions (role d)")}
    outputs = {"loss": Scalar(), "loss_real": Scalar(), "loss_fake": Scalar(), "loss_wrong": Scalar(optional=True)}

    def forward(self, fake: Any, real: Any = None, wrong: Any = None) -> dict[str, torch.Tensor]:
        fl = logits_per_scale(fake)
        if self.params.role == "g":
            loss = sum(gan_term(x, self.params.mode, "gen") for x in fl) / len(fl)
            zero = loss.detach() * 0
            return {"loss": loss, "loss_real": zero, "loss_fake": loss}
        if real is None:
            raise NodeError("role 'd' needs the 'real' input (D's output on real data)",
                            self.ctx.node_id or self.type_name)
        rl = logits_per_scale(real)
        lr = sum(gan_term(x, self.params.mode, "real") for x in rl) / len(rl)
        lf = sum(gan_term(x, self.params.mode, "fake") for x in fl) / len(fl)
        if wrong is None:
            return {"loss": lr + lf, "loss_real": lr, "loss_fake": lf}
        wl = logits_per_scale(wrong)
        lw = sum(gan_term(x, self.params.mode, "fake") for x in wl) / len(wl)
        t_r, t_w, t_f = self.params.terms
        return {"loss": t_r * lr + t_w * lw + t_f * lf, "loss_real": lr, "loss_fake": lf, "loss_wrong": lw}


@register("loss.FeatureMatching")
class FeatureMatchingLoss(Node):
    """Discriminator feature matching (pix2pixHD eq. 4): sum_k sum_i 1/N_i ||D_k^i(x) - D_k^i(G(s))||_1,
    averaged over the K scales; real features are detached (they are targets)."""

    inputs = {"fake": DOut, "real": DOut}
    outputs = {"loss": Scalar()}

    def forward(self, fake: Any, real: Any) -> dict[str, torch.Tensor]:
        ff, rf = features_per_scale(fake), features_per_scale(real)
        if len(ff) != len(rf):
            raise NodeError(f"fake has {len(ff)} scales, real has {len(rf)}", self.ctx.node_id)
        total: torch.Tensor | float = 0.0
        n = 0
        for fs, rs in zip(ff, rf, strict=True):
            for a, b in zip(fs, rs, strict=True):
                total = total + F.l1_loss(a.float(), b.detach().float())
            n += 1
        if not isinstance(total, torch.Tensor):
            raise NodeError("no intermediate features to match (the discriminator must return, per scale, "
                            "a list of features ending with the logits)", self.ctx.node_id)
        return {"loss": total / max(n, 1)}


class _PairParams(Params):
    reduction: Literal["mean", "sum"] = "mean"


def _masked(diff: torch.Tensor, mask: torch.Tensor | None, reduction: str) -> torch.Tensor:
    if mask is not None:
        m = mask.to(diff.dtype)
        while m.dim() < diff.dim():
            m = m.unsqueeze(1)
        m = m.expand_as(diff)
        s = (diff * m).sum()
        return s if reduction == "sum" else s / m.sum().clamp(min=1.0)
    return diff.sum() if reduction == "sum" else diff.mean()


@register("loss.L1")
class L1Loss(Node):
    """Mean absolute error ||a - b||_1 (optionally inside a mask: sum over the mask / its area)."""

    Params = _PairParams
    inputs = {"a": Tensor(), "b": Tensor(), "mask": Mask(optional=True)}
    outputs = {"loss": Scalar()}

    def forward(self, a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, Any]:
        return {"loss": _masked((a.float() - b.float()).abs(), mask, self.params.reduction)}


@register("loss.MSE")
class MSELoss(Node):
    """Mean squared error ||a - b||_2^2 (optionally inside a mask)."""

    Params = _PairParams
    inputs = {"a": Tensor(), "b": Tensor(), "mask": Mask(optional=True)}
    outputs = {"loss": Scalar()}

    def forward(self, a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, Any]:
        return {"loss": _masked((a.float() - b.float()) ** 2, mask, self.params.reduction)}


@register("loss.KL")
class KLLoss(Node):
    """KL(N(mu, sigma^2) || N(0, I)) = -1/2 sum(1 + log sigma^2 - mu^2 - sigma^2) (VAE; SPADE's KLD).

    ``batchmean`` sums over features and averages over the batch; SPADE's ``sum`` equals
    ``batchmean`` times the batch size (it is then weighted by lambda_kld = 0.05).
    """

    class Params(Params):
        reduction: Literal["batchmean", "sum", "mean"] = "batchmean"

    inputs = {"mu": Tensor(), "logvar": Tensor()}
    outputs = {"loss": Scalar()}

    def forward(self, mu: torch.Tensor, logvar: torch.Tensor) -> dict[str, Any]:
        mu, logvar = mu.float(), logvar.float()
        kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp())
        red = self.params.reduction
        loss = kl.sum() / mu.shape[0] if red == "batchmean" else (kl.sum() if red == "sum" else kl.mean())
        return {"loss": loss}


@register("loss.CrossEntropy")
class CrossEntropyLoss(Node):
    """Per-pixel cross-entropy between class logits (N x K x H x W) and a label map (N x H x W)."""

    class Params(Params):
        ignore_index: int = Field(-100, description="label id that contributes no loss")
        label_smoothing: float = Field(0.0, ge=0, lt=1)
        class_weights: list[float] | None = None

    inputs = {"logits": Tensor(rank=4), "target": LabelMap()}
    outputs = {"loss": Scalar()}

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> dict[str, Any]:
        if logits.shape[-2:] != target.shape[-2:]:
            logits = F.interpolate(logits, size=target.shape[-2:], mode="bilinear", align_corners=False)
        w = None
        if self.params.class_weights is not None:
            if len(self.params.class_weights) != logits.shape[1]:
                raise NodeError(f"class_weights has {len(self.params.class_weights)} entries, logits have "
                                f"{logits.shape[1]} classes", self.ctx.node_id, "params.class_weights")
            w = torch.tensor(self.params.class_weights, device=logits.device)
        loss = F.cross_entropy(logits.float(), target, weight=w, ignore_index=self.params.ignore_index,
                               label_smoothing=self.params.label_smoothing)
        return {"loss": loss}


_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


@register("loss.Perceptual")
class PerceptualLoss(Node):
    """Perceptual loss sum_i w_i d(phi_i(a), phi_i(b)) over the layers phi_i of a frozen ImageNet
    network, d the mean L1 (or squared) distance; gradients flow to the images only, features
    of ``b`` (the target) are computed without grad.

    The network is either wired in (``features``: a ``Model`` whose forward returns one feature
    tensor or a list, e.g. ``loss.VGG19``'s -- relu1_1..relu5_1 with SPADE's weights 1/32, 1/16,
    1/8, 1/4, 1 -- or ``features.EfficientNetLite0``'s), or built in from ``backbone``:
    ``effnet_lite0`` (the default: offline, from its package), ``vgg19`` / ``vgg16`` (torchvision's
    ImageNet files converted with ``nodegraph convert vgg19|vgg16``). Per-backbone layers, default
    weights and which Lite0 taps stand in for which VGG layers: ``nodes/features/backbones.py``.
    With ``fallback: effnet_lite0`` a VGG backbone whose converted file is missing is replaced by
    the offline network (its own taps and ladder; ``weights`` and ``layers`` are then ignored) with
    a warning naming what the paper used -- what the real-data recipe graphs do.
    ``mask`` (B x 1 x H x W in [0, 1], optional): the distance is averaged inside the mask,
    resized to each layer's grid (the masked perceptual loss of dual-domain synthesis).
    """

    class Params(Params):
        backbone: Literal["effnet_lite0", "vgg19", "vgg16"] | None = Field(
            None, description="built-in network when 'features' is not wired (unset: effnet_lite0)")
        backbone_weights: WeightsRef = Field("", description="vgg19 / vgg16: converted weights "
                                                             "(empty: the manifest's 'vgg19' / 'vgg16')")
        layers: list[Literal["s2", "s4", "s8", "s16", "s32", "head"]] | None = Field(
            None, description="effnet_lite0 taps (default s2, s4, s8, s16, s32)")
        weights: list[float] | None = Field(None, description="one weight per layer (default: the backbone's "
                                                              "ladder; all 1 for a wired 'features' model)")
        distance: Literal["l1", "mse"] = "l1"
        imagenet_norm: bool = Field(True, description="normalise [0,1] images with ImageNet mean/std first (wired "
                                                      "models that do not normalise their input themselves)")
        fallback: Literal["effnet_lite0"] | None = Field(
            None, description="vgg19 / vgg16 backbone whose converted weights are not found: use this offline "
                              "backbone instead (its own layers and default weights), with a warning; unset: error")

    inputs = {"a": Image(), "b": Image(), "features": Model(optional=True),
              "mask": Mask(optional=True, doc="average the distance inside this mask (resized per layer)")}
    outputs = {"loss": Scalar()}

    def _built_in(self) -> tuple[torch.nn.Module, tuple[float, ...]]:
        from nodes.features import backbones

        if getattr(self, "_backbone", None) is None:
            name = self.params.backbone or "effnet_lite0"
            self._fell_back = False
            try:
                net = backbones.build(name, self.params.backbone_weights, self.ctx.base_dir, self.params.layers)
            except FileNotFoundError as e:
                if self.params.fallback is None or name == self.params.fallback:
                    raise NodeError(f"{e} (convert torchvision's file: nodegraph convert {name} ...)",
                                    self.ctx.node_id or self.type_name, "params.backbone") from None
                self.ctx.warn(f"no converted {name} weights ({e}); the perceptual term uses the offline "
                              f"{self.params.fallback} backbone with its own layers and default weights instead. "
                              f"This is NOT the paper's setting; for it, convert torchvision's ImageNet file "
                              f"once: nodegraph convert {name} <file>.pth weights/{name}.safetensors")
                name, self._fell_back = self.params.fallback, True
                net = backbones.build(name)
            except ValueError as e:
                raise NodeError(str(e), self.ctx.node_id or self.type_name, "params.backbone") from None
            ladder = backbones.DEFAULT_WEIGHTS[name]
            if self.params.layers and not self._fell_back:
                ladder = tuple(ladder[backbones.EFFNET_TAPS.index(t)] if t in backbones.EFFNET_TAPS else 1.0
                               for t in self.params.layers)
            self._backbone = (net.to(self.device), ladder)
        return self._backbone

    def _feats(self, net: torch.nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
        if self.params.imagenet_norm and not getattr(net, "takes_unit_images", False):
            mean = torch.tensor(_IMAGENET_MEAN, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
            std = torch.tensor(_IMAGENET_STD, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
            x = (x - mean) / std
        out = net(x)
        return [out] if isinstance(out, torch.Tensor) else list(out)

    def forward(self, a: torch.Tensor, b: torch.Tensor, features: torch.nn.Module | None = None,
                mask: torch.Tensor | None = None) -> dict[str, Any]:
        who = self.ctx.node_id or self.type_name
        if features is not None:
            if self.params.backbone or self.params.layers:
                raise NodeError("'features' is wired, so params.backbone / params.layers would be ignored: "
                                "unset them, or unwire 'features' to use the built-in backbone", who, "params.backbone")
            net, ladder = features, None
            features.requires_grad_(False)
        else:
            net, ladder = self._built_in()
        fa = self._feats(net, a)
        with torch.no_grad():
            fb = self._feats(net, b)
        ws = (None if getattr(self, "_fell_back", False) else self.params.weights) or list(ladder or [1.0] * len(fa))
        if len(ws) != len(fa):
            raise NodeError(f"weights has {len(ws)} entries but the extractor returns {len(fa)} features",
                            who, "params.weights")
        from nodes.features.backbones import layer_distance

        loss = sum(w * layer_distance(x, y, self.params.distance, mask) for w, x, y in zip(ws, fa, fb, strict=True))
        return {"loss": loss}


@register("loss.VGG19")
class VGG19(Node):
    """ImageNet VGG19 features up to relu5_1, as a frozen ``Model`` for ``loss.Perceptual``
    (SPADE / pix2pixHD: weights 1/32, 1/16, 1/8, 1/4, 1 on relu1_1 .. relu5_1, lambda 10).
    Needs the ImageNet weights converted once: ``nodegraph convert vgg19 vgg19-dcbb9e9d.pth
    weights/vgg19.safetensors`` (torchvision's file; no network at run time)."""

    version = "1"

    class Params(Params):
        weights: WeightsRef = Field("vgg19", description="torchvision VGG19 converted with `nodegraph convert vgg19`")

    outputs = {"model": Model()}

    def setup(self) -> None:
        from nodegraph import weights as weights_mod

        from .vgg import VGG19Features

        self.net = VGG19Features()
        weights_mod.load_into(self.net, self.params.weights, self.ctx.base_dir)
        self.net.to(self.device).eval().requires_grad_(False)

    def forward(self) -> dict[str, Any]:
        return {"model": self.net}
