"""Networks of mask-guided portrait editing (Gu et al., CVPR 2019; Panday's re-implementation).

Read beside Figure 3.1 of the thesis::

    x^s --crops--> E_local^i -> z_i -> D_local^i  (reconstructed crop, eq 3.1)
                               \\-> D_sub^i  (component feature map) --place at c_i--+
    m^t --E_m------------------------------------------------------------------------+-> G_m -> face feature
    x^t * (m^t == background) --E_b----------------------------------------------------------+-> G_b -> image

Sizes follow the official code at 256 px (eye crops 32x48, mouth 80x144, E_m output 256 x 64 x 64,
component features 256 x 8 x 12 / 20 x 36 / 64 x 64) and scale with ``size`` in {64, 128, 256, 512}:
every crop and feature map scales by size/256 while the encoder bottlenecks stay at the official
2x3 (eyes), 5x9 (mouth) and 2x2 (skin, hair) grids, so smaller models drop down/up blocks.
Channel widths come from :class:`PortraitConfig`, so the same code builds the official network
(``PortraitConfig()``) and the small CPU default (``PortraitConfig.small()``).
All networks work in [-1, 1]; the nodes convert from and to the [0, 1] images on ports.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from nodes.face.geometry import COMPONENTS, FEATURE_SCALE, PART_LABELS, crop_size, paste_at

from .blocks import MultiscaleDiscriminator, ResnetBlock, down_block, norm_layer, up_block

PARTS = COMPONENTS
"""The five components x_i^s in the thesis's order (eq 3.1): l_eye, r_eye, mouth, skin, hair."""

LABEL_NC = 11
# Encoder bottleneck grids, identical at every size (official 256 px values).
BOTTLENECK = {"l_eye": (2, 3), "r_eye": (2, 3), "mouth": (5, 9), "skin": (2, 2), "hair": (2, 2)}
SIZES = (64, 128, 256, 512)
MASK_FEATURE_STRIDE = 4  # E_m downsamples twice (n_downsample_global 2)


@dataclass
class PortraitConfig:
    """Every size and width of the framework; ``PortraitConfig()`` is the official 256 px network."""

    size: int = 256
    ngf: int = 64          # E_m first width; G_m output / E_b width. Component features are 4*ngf.
    nef: int = 64          # first width of each E_local^i
    nef_max: int = 512     # widest E_local / D_local layer
    latent: int = 512      # z_i (the official code's fc heads end in 512)
    hidden: int = 1024     # hidden width of the fc heads
    n_blocks: int = 9      # ResNet blocks in G_m
    norm: str = "batch"
    variant: str = "ae"    # "ae" (the paper) or "vae" (thesis section 4.5.3)
    mask_encoder: str = "single"  # "single" E_m or "multi" (five part encoders, thesis 4.5.2)
    ndf: int = 64
    n_layers_d: int = 3
    num_d: int = 2
    extra: dict = field(default_factory=dict)

    @classmethod
    def small(cls, **kw: object) -> PortraitConfig:
        """The CPU default: 128 px, narrow, 4 ResNet blocks (trains in a session)."""
        base = dict(size=128, ngf=16, nef=16, nef_max=64, latent=128, hidden=256, n_blocks=4, ndf=32)
        base.update(kw)
        return cls(**base)  # type: ignore[arg-type]

    def __post_init__(self) -> None:
        if self.size not in SIZES:
            raise ValueError(f"size must be one of {SIZES} (crops scale by size/256), got {self.size}")
        if self.variant not in ("ae", "vae"):
            raise ValueError(f"variant must be 'ae' or 'vae', got {self.variant!r}")
        if self.mask_encoder not in ("single", "multi"):
            raise ValueError(f"mask_encoder must be 'single' or 'multi', got {self.mask_encoder!r}")

    @property
    def scale(self) -> float:
        return self.size / 256

    @property
    def feat_ch(self) -> int:
        return 4 * self.ngf

    @property
    def feat_size(self) -> int:
        return self.size // MASK_FEATURE_STRIDE

    def crop_size(self, part: str) -> tuple[int, int]:
        return crop_size(part, self.size, self.size)

    def feature_size(self, part: str) -> tuple[int, int]:
        h, w = self.crop_size(part)
        return h // MASK_FEATURE_STRIDE, w // MASK_FEATURE_STRIDE

    def to_dict(self) -> dict:
        return asdict(self)


def _n_halvings(src: tuple[int, int], dst: tuple[int, int]) -> int:
    n = math.log2(src[0] / dst[0])
    if n != int(n) or src[0] >> int(n) != dst[0] or src[1] >> int(n) != dst[1]:
        raise ValueError(f"{src} does not halve to {dst}")
    return int(n)


def _fc_head(flat: int, cfg: PortraitConfig) -> nn.Sequential:
    """fc_mu / fc_logvar: Linear(flat -> hidden) + ReLU + Linear(hidden -> latent), as officially."""
    return nn.Sequential(nn.Linear(flat, cfg.hidden), nn.ReLU(True), nn.Linear(cfg.hidden, cfg.latent))


class LocalAutoencoder(nn.Module):
    """E_local^i, D_local^i and D_sub^i for one component (eq 3.1; Figure 3.2).

    The encoder halves the crop down to the part's bottleneck grid; fc heads give z_i (and, in
    the VAE variant, log sigma^2). Two decoders read z_i: D_local rebuilds the crop (trained by
    the local reconstruction loss) and D_sub produces the feature map placed for G_m.
    """

    def __init__(self, part: str, cfg: PortraitConfig) -> None:
        super().__init__()
        self.part, self.vae = part, cfg.variant == "vae"
        crop, grid, feat = cfg.crop_size(part), BOTTLENECK[part], cfg.feature_size(part)
        self.grid = grid
        n_enc = _n_halvings(crop, grid)
        widths = [min(cfg.nef * 2**i, cfg.nef_max) for i in range(n_enc)]
        self.encoder = nn.Sequential(*(down_block(c_in, c_out, cfg.norm)
                                       for c_in, c_out in zip([3] + widths[:-1], widths, strict=True)))
        flat = widths[-1] * grid[0] * grid[1]
        self.fc_mu = _fc_head(flat, cfg)
        if self.vae:
            self.fc_logvar = _fc_head(flat, cfg)
        top = cfg.nef_max
        self.top = top
        # D_local: mirror of the encoder, then reflect-pad 2 + 5x5 conv to RGB and tanh.
        dec_w = [min(cfg.nef * 2 ** (n_enc - 1 - i), cfg.nef_max) for i in range(n_enc)]
        self.image_fc = nn.Linear(cfg.latent, top * grid[0] * grid[1])
        self.image_decoder = nn.Sequential(
            *(up_block(c_in, c_out, cfg.norm) for c_in, c_out in zip([top] + dec_w[:-1], dec_w, strict=True)),
            nn.ReflectionPad2d(2), nn.Conv2d(dec_w[-1], 3, 5), nn.Tanh())
        # D_sub: fc then up blocks to the component's feature map (crop / 4) with 4*ngf channels.
        n_up = _n_halvings(feat, grid)
        self.feature_fc = nn.Linear(cfg.latent, top * grid[0] * grid[1])
        if n_up:
            ups = [up_block(top if i == 0 else cfg.feat_ch, cfg.feat_ch, cfg.norm) for i in range(n_up)]
        else:  # at 64 px the eye feature map *is* the bottleneck grid: only change width
            ups = [nn.Sequential(nn.Conv2d(top, cfg.feat_ch, 1), norm_layer(cfg.norm, cfg.feat_ch),
                                 nn.ReLU(True))]
        self.feature_decoder = nn.Sequential(*ups)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(mu, logvar) of z_i for a crop in [-1, 1]; logvar is None for the plain autoencoder."""
        h = self.encoder(x).flatten(1)
        return self.fc_mu(h), (self.fc_logvar(h) if self.vae else None)

    def sample(self, mu: torch.Tensor, logvar: torch.Tensor | None) -> torch.Tensor:
        """Reparameterised z in training; the mean at inference (deterministic edits)."""
        if logvar is None or not self.training:
            return mu
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)

    def _grid(self, fc: nn.Linear, z: torch.Tensor) -> torch.Tensor:
        return F.relu(fc(z)).view(z.shape[0], self.top, *self.grid)

    def decode_image(self, z: torch.Tensor) -> torch.Tensor:
        return self.image_decoder(self._grid(self.image_fc, z))

    def decode_feature(self, z: torch.Tensor) -> torch.Tensor:
        return self.feature_decoder(self._grid(self.feature_fc, z))


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z|x) || N(0, I)), averaged over batch and latent dimensions."""
    return -0.5 * torch.mean(1 + logvar - mu.pow(2) - logvar.exp())


class LocalEmbeddingNet(nn.Module):
    """The local embedding sub-network: one :class:`LocalAutoencoder` per component (5 in all,
    separate weights for the left and right eye as in the official code)."""

    def __init__(self, cfg: PortraitConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.parts = nn.ModuleDict({p: LocalAutoencoder(p, cfg) for p in PARTS})

    def encode(self, crops: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Stacked codes B x 5 x latent (sampled z) and the KL term (0 for the autoencoder)."""
        zs, kls = [], []
        for p in PARTS:
            mu, logvar = self.parts[p].encode(crops[p])
            zs.append(self.parts[p].sample(mu, logvar))
            if logvar is not None:
                kls.append(kl_divergence(mu, logvar))
        kl = torch.stack(kls).sum() if kls else zs[0].new_zeros(())
        return torch.stack(zs, 1), kl

    def decode_images(self, codes: torch.Tensor) -> dict[str, torch.Tensor]:
        return {p: self.parts[p].decode_image(codes[:, i]) for i, p in enumerate(PARTS)}

    def decode_features(self, codes: torch.Tensor) -> dict[str, torch.Tensor]:
        return {p: self.parts[p].decode_feature(codes[:, i]) for i, p in enumerate(PARTS)}


def place_features(features: dict[str, torch.Tensor], centres: torch.Tensor, feat_size: int) -> torch.Tensor:
    """Paste each component feature map into a zero map of E_m's size, centred at c_i / 4.

    ``centres`` is B x 5 x 2 (y, x) in image pixels, in ``PARTS`` order, from the *target* mask
    (``faceparse_geometry.component_centres``); the official rule ``int(c / 4 + 0.5)`` places the
    eye and mouth maps, clamped inside the map. Skin and hair maps already cover the whole face
    and pass through. Returns the official channel order [l_eye, r_eye, skin, hair, mouth]
    (E_m's features are put in front by G_m).
    """
    placed = {part: paste_at(features[part], centres[:, k], (feat_size, feat_size), FEATURE_SCALE)
              for k, part in enumerate(("l_eye", "r_eye", "mouth"))}
    order = (placed["l_eye"], placed["r_eye"], features["skin"], features["hair"], placed["mouth"])
    return torch.cat(order, 1)


def one_hot(labels: torch.Tensor, n: int = LABEL_NC) -> torch.Tensor:
    """int64 B x H x W -> float B x n x H x W."""
    return F.one_hot(labels.clamp(0, n - 1), n).permute(0, 3, 1, 2).float()


class MaskEncoderNet(nn.Module):
    """E_m: the target mask m^t (one-hot) -> 4*ngf x size/4 x size/4 (Figure 3.3).

    ``multi`` (thesis 4.5.2) splits m^t into the five components' channels, each encoded by its
    own E_m^i; their outputs are concatenated (5 * 4*ngf channels).
    """

    def __init__(self, cfg: PortraitConfig) -> None:
        super().__init__()
        self.multi = cfg.mask_encoder == "multi"
        groups = [PART_LABELS[p] for p in PARTS] if self.multi else [tuple(range(LABEL_NC))]
        self.groups = groups
        self.encoders = nn.ModuleList(self._encoder(len(g), cfg) for g in groups)
        self.out_ch = cfg.feat_ch * len(groups)

    @staticmethod
    def _encoder(cin: int, cfg: PortraitConfig) -> nn.Sequential:
        n = cfg.ngf
        return nn.Sequential(
            nn.ReflectionPad2d(3), nn.Conv2d(cin, n, 7), norm_layer(cfg.norm, n), nn.ReLU(True),
            nn.Conv2d(n, 2 * n, 3, 2, 1), norm_layer(cfg.norm, 2 * n), nn.ReLU(True),
            nn.Conv2d(2 * n, 4 * n, 3, 2, 1), norm_layer(cfg.norm, 4 * n), nn.ReLU(True))

    def forward(self, mask: torch.Tensor) -> torch.Tensor:
        return torch.cat([enc(mask[:, list(g)]) for enc, g in zip(self.encoders, self.groups, strict=True)], 1)


class MaskGuidedGenerator(nn.Module):
    """G_m: [E_m(m^t), placed component features] -> ngf x size x size face feature (Figure 3.3)."""

    def __init__(self, cfg: PortraitConfig, mask_ch: int | None = None) -> None:
        super().__init__()
        c = cfg.feat_ch
        cin = (mask_ch if mask_ch is not None else c) + len(PARTS) * c
        self.net = nn.Sequential(
            nn.Conv2d(cin, c, 1), norm_layer(cfg.norm, c), nn.ReLU(True),
            *(ResnetBlock(c, cfg.norm) for _ in range(cfg.n_blocks)),
            up_block(c, c // 2, cfg.norm), up_block(c // 2, c // 4, cfg.norm))

    def forward(self, mask_features: torch.Tensor, components: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([mask_features, components], 1))


class BackgroundEncoderNet(nn.Module):
    """E_b: full-resolution features of x^t, zeroed outside the background (label 0) of m^t."""

    def __init__(self, cfg: PortraitConfig) -> None:
        super().__init__()
        n = cfg.ngf
        self.net = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(3, n, 7), norm_layer(cfg.norm, n),
                                 nn.ReLU(True))

    def forward(self, image: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
        return self.net(image) * background


class FusionGeneratorNet(nn.Module):
    """G_b: fuse the face feature of G_m with E_b's background feature -> RGB in [-1, 1] (Fig. 3.4)."""

    def __init__(self, cfg: PortraitConfig) -> None:
        super().__init__()
        n = cfg.ngf
        self.net = nn.Sequential(
            nn.Conv2d(2 * n, n, 1), norm_layer(cfg.norm, n), nn.ReLU(True),
            nn.ReflectionPad2d(3), nn.Conv2d(n, 3, 7), nn.Tanh())

    def forward(self, face: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([face, background], 1))


def discriminator(cfg: PortraitConfig) -> MultiscaleDiscriminator:
    """D (paired) or D2 (unpaired): 2-scale PatchGAN on [one-hot mask, RGB] (14 channels)."""
    return MultiscaleDiscriminator(LABEL_NC + 3, cfg.ndf, cfg.n_layers_d, cfg.num_d, cfg.norm)
