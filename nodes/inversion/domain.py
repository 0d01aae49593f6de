"""The face check of ``inversion.Optimize``: is an image a face of the generator's kind?

Not in the paper or the official code (they assume aligned faces). The shipped face parser
(``face.UNetParser``, ``face_parser_default``: procedural portraits at 128 px) labels every pixel of
the image; a face of the procedural kind shows **both eyes** and is parsed **confidently**:

    eyes(x) = min(share of pixels labelled l_eye, share labelled r_eye)       >= EYE_MIN
    conf(x) = mean over pixels of the parser's top softmax probability       >= CONF_MIN

Calibration (``benchmarks/inversion_face_check.py``, table in benchmarks/results_inversion.md;
64 px): 600 held-out procedural faces (data.Portraits seeds 11-13): eyes >= 0.0017, conf >= 0.958,
all pass. 21 scikit-image pictures (photos, textures, text, a checkerboard) and noise / flat
images: all refused - no eyes (<= 0.0007, coins 0.0012), or, for noise (eyes 0.0021) and coins,
a confidence below 0.93. Each criterion is needed. Faces shifted off the aligned position by a
third of the width are refused too (147 of 150), upside-down faces mostly (98 of 150): the
generator only draws aligned, upright faces.
A real photo of a face is refused (the parser knows procedural faces only): align it with
``face.LandmarkParser`` and turn the check off to push it into a procedural GAN on purpose.
Reconstruction error was tried first and rejected: flat grey and the cat photo reconstruct
*better* (MSE 0.012 / 0.020) than held-out faces (0.039) through an encoder trained 200 steps.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

EYE_MIN = 0.001
"""Each eye must cover at least this share of the image (~4 px of 64 x 64)."""
CONF_MIN = 0.94
"""Mean top-class probability of the parser over the image."""
L_EYE, R_EYE = 4, 5
"""``celebamask11`` indices (background, skin, l_brow, r_brow, l_eye, r_eye, ...)."""


def load_parser(ref: str, base_dir: Path | None = None) -> nn.Module:
    """The face parser of ``ref`` (face.UNetParser weights), frozen, eval mode."""
    from nodes.face.nodes import load_unet_parser

    return load_unet_parser(ref, base_dir).requires_grad_(False)


def face_scores(parser: nn.Module, image: torch.Tensor, size: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    """(eyes, conf), each B, for images B x 3 x H x W in [0, 1] (resized to ``size`` for the parser)."""
    x = image
    if tuple(x.shape[-2:]) != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    with torch.no_grad():
        logits = parser(x.to(next(parser.parameters()).device, torch.float32))
    prob = logits.softmax(1)
    labels = prob.argmax(1)
    eyes = torch.stack([(labels == k).flatten(1).float().mean(1) for k in (L_EYE, R_EYE)], 1).min(1).values
    return eyes.cpu(), prob.max(1).values.flatten(1).mean(1).cpu()


def not_faces(parser: nn.Module, image: torch.Tensor) -> list[tuple[int, float, float]]:
    """(index, eyes, conf) of the images that fail the check."""
    eyes, conf = face_scores(parser, image)
    return [(i, float(e), float(c)) for i, (e, c) in enumerate(zip(eyes, conf, strict=True))
            if e < EYE_MIN or c < CONF_MIN]
