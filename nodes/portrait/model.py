"""The whole mask-guided framework G(x^s, m^s, x^t, m^t) as one module, for measuring.

The graph nodes (``nodes/portrait/nodes.py``) each hold one piece; this module composes the same pieces
so that the quality benchmark (``benchmarks/portrait_quality.py``) runs without the engine. Its
state_dict prefixes (``local.``, ``mask_encoder.``, ``generator.``, ``background.``, ``fusion.``) are
the ones the nodes look for in a combined weights file.

Training is ``graphs/mask_guided.json`` (``nodegraph train``), with the loss nodes of
``nodes/common/losses.py``: eq 3.1 as one ``loss.MSE`` per component, eq 3.2 ``loss.MSE``, eqs 3.3-3.4
``loss.GAN`` in ``bce`` mode, eq 3.5 ``loss.FeatureMatching``, eqs 3.7-3.8 ``loss.CrossEntropy``.
Departures from the official code, on purpose: the discriminators give raw logits and the GAN loss is
BCE-with-logits (never a Sigmoid followed by BCE-with-logits, the official double sigmoid); the parsing
loss is one cross-entropy on P_F's *logits* (the official code applied CE to Tanh+Softmax outputs, a
double softmax whose floor is ~1.54 even for a perfect parse) and P_F is a trained, frozen network;
feature matching uses every intermediate layer of both scales, not only the penultimate one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from nodes.face.geometry import component_centres, crop_components, expand_parts

from .net import (
    PARTS,
    BackgroundEncoderNet,
    FusionGeneratorNet,
    LocalEmbeddingNet,
    MaskEncoderNet,
    MaskGuidedGenerator,
    PortraitConfig,
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


def split_state(model: MaskGuidedFramework) -> dict[str, dict[str, torch.Tensor]]:
    """Per-node state dicts (prefix -> state_dict) of a combined framework."""
    return {p: getattr(model, p).state_dict() for p in PREFIXES}


__all__ = ["PARTS", "PREFIXES", "Batch", "MaskGuidedFramework", "split_state"]
