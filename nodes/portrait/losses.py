"""Losses of mask-guided portrait editing, as plain functions (eqs 3.1-3.10 of the thesis).

Norms are averaged over elements (not summed), so the paper's weights
lambda_local, lambda_global, lambda_GD, lambda_GP = 10, 1, 1, 1 act on per-pixel means.
Differences from the official code, on purpose:

- the discriminators give raw logits and the GAN loss is BCE-with-logits (eqs 3.3-3.4), never a
  Sigmoid followed by BCE-with-logits (the official double sigmoid);
- the parsing loss is one cross-entropy on P_F's *logits* (the official code applied CE to
  Tanh+Softmax probabilities: a double softmax whose floor is ~1.54 even for a perfect parse),
  and P_F is a trained, frozen network (the official training never updated it);
- the VAE variant's KL term is part of the objective (the official code computed it and never
  added it), with its own small weight;
- feature matching uses every intermediate layer of both scales, not only the penultimate one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LAMBDA = {"local": 10.0, "global": 1.0, "gd": 1.0, "gp": 1.0}
"""Paper weights of eq 3.9 (thesis section 3.2.5)."""
LAMBDA_FM = 10.0
"""lambda_FM of eq 3.6 (pix2pixHD's and the official code's value; the thesis leaves it open)."""
OFFICIAL_CLASS_WEIGHTS = (0.2, 1, 5, 5, 5, 5, 3, 8, 8, 8, 1)
"""Per-class CE weights of the official parsing loss (bg, skin, brows, eyes, nose, lips, mouth, hair)."""


def local_reconstruction(recs: dict[str, torch.Tensor], crops: dict[str, torch.Tensor]) -> torch.Tensor:
    """Eq 3.1 summed over the five components: mean of 1/2 (x_i - D_local(E_local(x_i)))^2."""
    return sum(0.5 * F.mse_loss(recs[p], crops[p]) for p in crops)  # type: ignore[return-value]


def global_reconstruction(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Eq 3.2 (paired data only): mean of 1/2 (G(x^s, m^s, x^t, m^t) - x^s)^2."""
    return 0.5 * F.mse_loss(fake, real)


def _logits(outs: list[list[torch.Tensor]]) -> list[torch.Tensor]:
    return [scale[-1] for scale in outs]


def gan_generator(fake_outs: list[list[torch.Tensor]]) -> torch.Tensor:
    """Eq 3.4, non-saturating: -log D_i(G(.), m^t), averaged over the scales."""
    losses = [F.binary_cross_entropy_with_logits(lg, torch.ones_like(lg)) for lg in _logits(fake_outs)]
    return torch.stack(losses).mean()


def gan_discriminator(real_outs: list[list[torch.Tensor]], fake_outs: list[list[torch.Tensor]]) -> torch.Tensor:
    """Eq 3.3 as a loss to minimise: 1/2 (BCE(real, 1) + BCE(fake, 0)), averaged over the scales."""
    losses = []
    for r, f in zip(_logits(real_outs), _logits(fake_outs), strict=True):
        losses.append(0.5 * (F.binary_cross_entropy_with_logits(r, torch.ones_like(r))
                             + F.binary_cross_entropy_with_logits(f, torch.zeros_like(f))))
    return torch.stack(losses).mean()


def feature_matching(fake_outs: list[list[torch.Tensor]], real_outs: list[list[torch.Tensor]]) -> torch.Tensor:
    """Eq 3.5: 1/2 ||f_D(G(.), m^t) - f_D(x^t, m^t)||^2 over every intermediate layer and scale.

    The real features are targets (detached), as in pix2pixHD.
    """
    terms = [0.5 * F.mse_loss(f, r.detach())
             for fs, rs in zip(fake_outs, real_outs, strict=True)
             for f, r in zip(fs[:-1], rs[:-1], strict=True)]
    return torch.stack(terms).mean()


def parsing(logits: torch.Tensor, labels: torch.Tensor,
            class_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Eqs 3.7 / 3.8: pixel-wise cross-entropy of P_F's logits against the (un-enlarged) mask.

    ``logits`` must be raw scores (B x 11 x H x W); a softmax here would be the official bug.
    """
    if logits.shape[-2:] != labels.shape[-2:]:
        logits = F.interpolate(logits, size=labels.shape[-2:], mode="bilinear", align_corners=False)
    return F.cross_entropy(logits, labels, weight=class_weights)
