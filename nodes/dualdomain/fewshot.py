"""Few-shot image generation via cross-domain correspondence (Ojha et al., CVPR 2021; official code
utkarshojha/few-shot-gan-adaptation ``train.py`` / ``model.py``): the pieces the adaptation
graph ``graphs/fewshot_adapt.json`` trains with.

    G_s (frozen) --features(z)--> softmax(cos-sim between the batch's samples) = p_s  \\
    G_t (trained) -features(z)--> softmax(cos-sim between the batch's samples) = p_t  -> KL(p_s || p_t)
    G_t(z ~ N(0, I))          -> D's patch head (intermediate D features -> 1-channel logit map)
    G_t(z near an anchor)     -> D's image-level logit           (every k-th step, k = 4)

- :func:`cdc_loss`: the cross-domain distance consistency loss (paper eq. 3; official
  ``rel_loss``). For each layer l and sample i, the cosine similarities between sample i's
  flattened feature map and every other sample's (self excluded), softmax-normalised over j:
  ``y_i^l``. The loss is KL(y^{s,l} || y^{t,l}) = sum_j p_s (log p_s - log p_t), averaged over the
  B x (B-1) entries as ``nn.KLDivLoss()`` (reduction 'mean') does, and summed over layers
  (``layers="all"``, the paper's sum over l) or, as the official code does, each row i read at one
  random layer (``layers="random"``: its expectation is the mean over layers).
- :func:`anchor_z`: the anchor subspace Z_anchor (paper sec. 3.2; official ``get_subspace``):
  z = anchor[random index] + N(0, std^2) per coordinate, std 0.1.
- :class:`PatchDiscriminator`: the StyleGAN2 D (same keys, loads a source D) with the official
  ``Extra`` heads: a ConvLayer(C, 1, 3) (equalised conv + fused leaky ReLU, as officially) on one of
  the D's residual-branch outputs at resolution 32 or 16 (``conv1`` / ``conv2`` of the ResBlocks,
  skip not added). At 256 px those are exactly the official four 512-channel maps (32, 32, 16, 16);
  at 64 px they are the conv2 of the 64->32 block (32 x 32), conv1 / conv2 of the 32->16 block and
  conv1 of the 16->8 block. ``highp`` heads: one picked at random per call (official
  ``p_ind = randint(0, highp)``, default 1: the first).

Networks work in [-1, 1].
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..stylegan.discriminator import ConvLayer, Discriminator
from ..stylegan.net import StyleGANConfig

PATCH_RESOLUTIONS = (32, 16)
"""Resolutions of the D feature maps the patch heads read (official: 512-channel maps at 32 / 16)."""


def similarity_rows(feat: torch.Tensor) -> torch.Tensor:
    """B x (B-1) cosine similarities of each sample's flattened features to the others (j != i,
    in ascending j), from a B x ... feature map. B >= 2. Float64: the KL of two near-equal rows
    cancels, and float32 similarities leave it 1e-4 off at the start of an adaptation."""
    f = F.normalize(feat.flatten(1).double(), dim=1, eps=1e-8)
    sim = f @ f.t()  # B x B
    b = sim.shape[0]
    off = ~torch.eye(b, dtype=torch.bool, device=sim.device)
    return sim[off].view(b, b - 1)


def cdc_loss(source: list[torch.Tensor], target: list[torch.Tensor], layers: str = "all",
             first: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
    """Cross-domain distance consistency: sum over layers of KL(p_s || p_t) (see module doc).

    ``source`` / ``target``: per-layer feature maps of G_s / G_t for the same z, B x C_l x r x r
    each (B >= 2); layers ``first``.. are used (official ``randint(1, n_latent - 1)``: every map but
    conv1's 4 x 4). ``layers``: ``all`` (sum over layers) or ``random`` (one random layer per row, the
    official code). Returns a 0-d tensor; gradients flow into ``target`` only.
    Raises ValueError for mismatched lists, a batch below 2 or an unknown ``layers``.
    """
    if len(source) != len(target):
        raise ValueError(f"source has {len(source)} feature maps, target {len(target)}: the generators' "
                         "layer counts differ")
    if not source or source[0].shape[0] < 2:
        raise ValueError("the distance consistency needs a batch of at least 2 samples")
    idx = list(range(first, len(source)))
    if not idx:
        raise ValueError(f"no layer from index {first} on (the generators have {len(source)} feature maps)")
    with torch.no_grad():
        p_s = [torch.softmax(similarity_rows(source[i]), 1) for i in idx]
    p_t = [torch.softmax(similarity_rows(target[i]), 1) for i in idx]
    kl = [(ps * (ps.clamp_min(1e-30).log() - pt.log())) for ps, pt in zip(p_s, p_t, strict=True)]
    if layers == "all":
        return sum(k.mean() for k in kl).float()  # type: ignore[union-attr]
    if layers == "random":
        b = kl[0].shape[0]
        pick = torch.randint(0, len(idx), (b,), generator=generator)
        rows = torch.stack([kl[int(pick[i])][i] for i in range(b)])
        return rows.mean().float()
    raise ValueError(f"layers must be 'all' or 'random', got {layers!r}")


def make_anchors(n: int, dim: int, seed: int) -> torch.Tensor:
    """The n fixed anchor codes (official ``init_z = randn(n_train, latent)``), n x dim."""
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))


def anchor_z(anchors: torch.Tensor, batch: int, std: float, generator: torch.Generator | None = None
             ) -> torch.Tensor:
    """``batch`` codes near random anchors: anchor[i] + std * N(0, I) (official ``get_subspace``)."""
    ind = torch.randint(0, anchors.shape[0], (batch,), generator=generator)
    return anchors[ind] + std * torch.randn(batch, anchors.shape[1], generator=generator)


class Extra(nn.Module):
    """The patch heads (official ``Extra``): ConvLayer(C_k, 1, 3) per tapped D feature map."""

    def __init__(self, channels: list[int]) -> None:
        super().__init__()
        self.new_conv = nn.ModuleList([ConvLayer(c, 1, 3) for c in channels])

    def forward(self, feat: torch.Tensor, ind: int) -> torch.Tensor:
        return self.new_conv[ind](feat)


class PatchDiscriminator(Discriminator):
    """StyleGAN2 D + patch heads: ``forward(x)`` gives image-level logits B x 1,
    ``patch(x, ind)`` the patch logits B x 1 x r x r from tapped map ``ind`` (0..highp-1).
    Keys: the D's (``convs.*``, ``final_*``) and ``extra.new_conv.<k>.*``."""

    def __init__(self, cfg: StyleGANConfig, highp: int = 1) -> None:
        super().__init__(cfg)
        taps = self.taps()
        if highp > len(taps):
            raise ValueError(f"highp = {highp} but a {cfg.size} px D has only {len(taps)} maps at resolution "
                             f"32 / 16 to read patches from")
        self.highp = highp
        self.extra = Extra([c for _, _, c in taps])  # the official four heads; highp of them used

    def taps(self) -> list[tuple[int, str, int]]:
        """(ResBlock index in ``convs``, 'conv1' | 'conv2', channels) of each tapped map, in order."""
        out, res = [], self.cfg.size
        for i, block in enumerate(self.convs[1:], start=1):
            c_in = block.conv1[-2].weight.shape[0]
            c_out = block.conv2[-2].weight.shape[0]
            if res in PATCH_RESOLUTIONS:
                out.append((i, "conv1", c_in))
            if res // 2 in PATCH_RESOLUTIONS:
                out.append((i, "conv2", c_out))
            res //= 2
        return out

    def patch(self, x: torch.Tensor, ind: int = 0) -> torch.Tensor:
        """Patch logits from tapped map ``ind``: x (B x 3 x size x size, [-1, 1]) -> B x 1 x r x r."""
        block_i, which, _ = self.taps()[ind]
        h = self.convs[0](x)
        for block in self.convs[1:block_i]:
            h = block(h)
        block = self.convs[block_i]
        t = block.conv1(h)
        if which == "conv2":
            t = block.conv2(t)
        return self.extra(t, ind)

