"""The whole mask-guided framework G(x^s, m^s, x^t, m^t) as one module, for training and measuring.

The graph nodes (``nodes/portrait/nodes.py``) each hold one piece; this module composes the same pieces
so that a plain training loop (``generator_step`` / ``discriminator_step``, used by the unit
tests) and the quality benchmark (``benchmarks/portrait_quality.py``) run without the engine.
Its state_dict prefixes (``local.``, ``mask_encoder.``, ``generator.``, ``background.``,
``fusion.``) are the ones the nodes look for in a combined weights file.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from nodes.face.geometry import component_centres, crop_components, expand_parts

from . import losses as L
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

PREFIXES = ("local", "mask_encoder", "generator", "background", "fusion")


@dataclass
class Batch:
    """One side of a training pair: image in [0, 1], its celebamask11 labels and derived geometry."""

    image: torch.Tensor
    labels: torch.Tensor
    centres: torch.Tensor

    @classmethod
    def of(cls, image: torch.Tensor, labels: torch.Tensor) -> Batch:
        return cls(image, labels, component_centres(labels).to(image.device))

    def roll(self, shift: int = 1) -> Batch:
        """The batch shifted by ``shift``: sample i is paired with sample i - shift (unpaired data)."""
        return Batch(*(t.roll(shift, 0) for t in (self.image, self.labels, self.centres)))


class MaskGuidedFramework(nn.Module):
    """E_local/D_local/D_sub x5, E_m, G_m, E_b, G_b (Figure 3.1); images in and out in [0, 1]."""

    def __init__(self, cfg: PortraitConfig, eye_only: bool = False, enlarge: float = 1.1) -> None:
        super().__init__()
        self.cfg, self.eye_only, self.enlarge = cfg, eye_only, enlarge
        self.local = LocalEmbeddingNet(cfg)
        self.mask_encoder = MaskEncoderNet(cfg)
        self.generator = MaskGuidedGenerator(cfg, self.mask_encoder.out_ch)
        self.background = BackgroundEncoderNet(cfg)
        self.fusion = FusionGeneratorNet(cfg)

    def crops(self, src: Batch) -> dict[str, torch.Tensor]:
        """x_i^s in [-1, 1], cropped as the face.ComponentCrop node does (masked-out pixels grey)."""
        c = crop_components(src.image, src.labels, src.centres, mask_eyes=self.eye_only, fill=0.5)
        return {p: v * 2 - 1 for p, v in c.items()}

    def encode(self, src: Batch) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        crops = self.crops(src)
        codes, kl = self.local.encode(crops)
        return crops, codes, kl

    def render(self, codes: torch.Tensor, tgt: Batch) -> torch.Tensor:
        """G(.) for component codes (B x 5 x latent) on the target's mask and background, in [-1, 1]."""
        feats = self.local.decode_features(codes)
        comp = place_features(feats, tgt.centres, self.cfg.feat_size)
        mask_in = self.generator_mask(tgt)
        face = self.generator(self.mask_encoder(mask_in), comp)
        bg = self.background(tgt.image * 2 - 1, (tgt.labels == 0).unsqueeze(1).float())
        return self.fusion(face, bg)

    def generator_mask(self, tgt: Batch) -> torch.Tensor:
        """One-hot m^t with eyes and mouth enlarged (``append_region``; also D's condition)."""
        lab = expand_parts(tgt.labels, tgt.centres, self.enlarge) if self.enlarge != 1 else tgt.labels
        return one_hot(lab)


class Discriminators(nn.Module):
    """D (paired / reconstruction) and D2 (unpaired / transfer), each 2-scale."""

    def __init__(self, cfg: PortraitConfig) -> None:
        super().__init__()
        self.paired = discriminator(cfg)
        self.unpaired = discriminator(cfg)


def _f(t: torch.Tensor) -> float:
    return float(t.detach())


def generator_step(model: MaskGuidedFramework, dis: Discriminators, parser: nn.Module | None,
                   batch: Batch, paired: bool, kl_weight: float = 0.0,
                   lambdas: dict[str, float] | None = None,
                   class_weights: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float], tuple]:
    """Eq 3.9 (paired) or 3.10 (unpaired) for one batch. Returns (loss, logs, stash for D)."""
    lam = dict(L.LAMBDA, **(lambdas or {}))
    tgt = batch if paired else batch.roll(1)
    crops, codes, kl = model.encode(batch)
    recs = model.local.decode_images(codes)
    fake = model.render(codes, tgt)
    cond = model.generator_mask(tgt)
    d = dis.paired if paired else dis.unpaired
    fake_outs = d(torch.cat([cond, fake], 1))
    logs: dict[str, float] = {}
    loss_local = L.local_reconstruction(recs, crops)
    loss = lam["local"] * loss_local
    g_gan = L.gan_generator(fake_outs)
    gd = g_gan
    if paired:
        real = batch.image * 2 - 1
        with torch.no_grad():
            real_outs = d(torch.cat([cond, real], 1))
        fm = L.feature_matching(fake_outs, real_outs)
        gd = gd + L.LAMBDA_FM * fm
        loss_global = L.global_reconstruction(fake, real)
        loss = loss + lam["global"] * loss_global
        logs.update(fm=_f(fm), global_=_f(loss_global))
    loss = loss + lam["gd"] * gd
    if parser is not None and lam["gp"]:
        loss_gp = L.parsing(parser((fake + 1) / 2), tgt.labels, class_weights)
        loss = loss + lam["gp"] * loss_gp
        logs["parse"] = _f(loss_gp)
    if model.cfg.variant == "vae":
        loss = loss + kl_weight * kl
        logs["kl"] = _f(kl)
    logs.update(local=_f(loss_local), g_gan=_f(g_gan), total=_f(loss))
    return loss, logs, (fake.detach(), cond, tgt, paired)


def discriminator_step(dis: Discriminators, stash: tuple) -> torch.Tensor:
    """Eq 3.3 for the discriminator of this step's phase, on the detached fake."""
    fake, cond, tgt, paired = stash
    d = dis.paired if paired else dis.unpaired
    real = tgt.image * 2 - 1
    return L.gan_discriminator(d(torch.cat([cond, real], 1)), d(torch.cat([cond, fake], 1)))


def split_state(model: MaskGuidedFramework) -> dict[str, dict[str, torch.Tensor]]:
    """Per-node state dicts (prefix -> state_dict) of a combined framework."""
    return {p: getattr(model, p).state_dict() for p in PREFIXES}


__all__ = ["PARTS", "Batch", "MaskGuidedFramework", "Discriminators", "generator_step", "discriminator_step",
           "split_state", "PREFIXES"]
