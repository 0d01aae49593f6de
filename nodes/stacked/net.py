"""Networks of the stacked attribute GAN (Zhao, "Realistic Image Generation via Cross-domain
Information", Fig. 1), read beside the figure::

    a_s --CA--> c_s --+                                  a_o --CA--> c_o (tiled at the 1x1 bottleneck)
                z ----+--> Stage-I G (DCGAN) --> shape s --> Stage-II G (U-Net) --> image x_g
                           D_cGAN(s, a_s), D_global, D_local          D_cGAN(x, a_o), D_global

The paper gives no widths, sizes or loss weights; where it is silent the cited code bases'
defaults are used and named: StackGAN (Zhang et al. 2017, its [19]) for CA and the Stage-I
generator / conditional D, pix2pix (Isola et al. 2017, its [8]) for the U-Net and the
Markovian discriminators. Images are in [-1, 1] inside these modules (the nodes convert); masks
are produced in [0, 1] (Tanh output mapped by (t + 1) / 2) and fed to discriminators as 2s - 1.
Initialisation (all three code bases): conv / linear N(0, 0.02), BatchNorm weight N(1, 0.02), bias 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


def init_weights(m: nn.Module) -> None:
    """StackGAN / pix2pix ``weights_init``: N(0, 0.02) convs and linears, BN N(1, 0.02), biases 0."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


# ---- conditioning augmentation (StackGAN §3.1) -------------------------------------------------


class CANet(nn.Module):
    """Conditioning augmentation: phi(a) -> (mu, log sigma^2), c = mu + sigma * eps.

    ``act`` ``relu`` is StackGAN-Pytorch v1 ``CA_NET`` (Linear(t, 2 c) + ReLU *before* the split,
    so mu >= 0 and sigma >= 1: its quirk, kept); ``glu`` is StackGAN-v2 / AttnGAN (Linear(t, 4 c)
    + GLU). KL(N(mu, sigma^2) || N(0, I)) is StackGAN's ``KL_loss``: the mean over batch *and*
    dimensions of -1/2 (1 + log sigma^2 - mu^2 - sigma^2).
    """

    def __init__(self, t_dim: int, c_dim: int = 128, act: str = "relu") -> None:
        super().__init__()
        self.c_dim, self.act = c_dim, act
        self.fc = nn.Linear(t_dim, (4 if act == "glu" else 2) * c_dim)

    def forward(self, a: torch.Tensor, eps: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        h = self.fc(a)  # (B, 2c) or (B, 4c)
        h = F.glu(h, dim=1) if self.act == "glu" else F.relu(h)
        mu, logvar = h[:, : self.c_dim], h[:, self.c_dim:]
        if eps is None:
            eps = torch.randn_like(mu)
        c = mu + torch.exp(0.5 * logvar) * eps
        kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp())).mean()
        return c, mu, logvar, kl


# ---- Stage-I: attribute2shape (StackGAN STAGE1_G with one output channel) ---------------------


@dataclass(frozen=True)
class Attr2ShapeConfig:
    """StackGAN Stage-I: z 100, c 128, GF_DIM 128 (ngf = 8 * gf = 1024 at 4 x 4); 64 px output, 1 channel.

    Presets: ``stackgan`` GF_DIM 128, CA ReLU (v1); ``cpu`` gf 16 (128 channels at 4 x 4), CA ReLU:
    the first shipped weights; ``wide`` gf 32 with StackGAN-v2's GLU CA, the CPU default since
    session 5. Why: at gf 16 the output conv reads only 8 channels, so under Adam (a per-weight step
    of about lr) its pre-activation moves slowly and a mask stays grey for hundreds of steps (even a
    supervised L2 fit to real masks still had a 0.2 background after 150 steps at lr 2e-4; gf 32
    costs little on a CPU); and v1's ReLU-before-split forces sigma >= 1, so the 42 binary shape
    attributes must fight unit noise in every c dimension (the KL then pins mu near 0: the
    shipped ``cpu`` weights ended with KL 0.002 and shape accuracy at chance). GLU lets sigma < 1."""

    t_dim: int = 42
    c_dim: int = 128
    z_dim: int = 100
    gf: int = 16
    ca_act: str = "relu"


PRESETS_S1 = {"cpu": Attr2ShapeConfig(), "wide": Attr2ShapeConfig(gf=32, ca_act="glu"),
              "stackgan": Attr2ShapeConfig(gf=128)}


def up_block(cin: int, cout: int) -> nn.Sequential:
    """StackGAN ``upBlock``: nearest x2, conv 3 x 3 (no bias), BN, ReLU."""
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, 3, 1, 1, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(True))


class Attr2ShapeNet(nn.Module):
    """G_I(a_s, z): [z ; c] -> FC -> 8gf x 4 x 4 -> 4 up-blocks -> conv 3 x 3 -> Tanh -> mask 64 x 64."""

    def __init__(self, cfg: Attr2ShapeConfig) -> None:
        super().__init__()
        self.cfg = cfg
        ngf = cfg.gf * 8
        self.ca = CANet(cfg.t_dim, cfg.c_dim, cfg.ca_act)
        self.fc = nn.Sequential(nn.Linear(cfg.z_dim + cfg.c_dim, ngf * 16, bias=False), nn.BatchNorm1d(ngf * 16),
                                nn.ReLU(True))
        self.ups = nn.Sequential(up_block(ngf, ngf // 2), up_block(ngf // 2, ngf // 4), up_block(ngf // 4, ngf // 8),
                                 up_block(ngf // 8, ngf // 16))
        self.out = nn.Conv2d(ngf // 16, 1, 3, 1, 1)
        self.apply(init_weights)

    def forward(self, a_s: torch.Tensor, z: torch.Tensor, eps: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        c, mu, logvar, kl = self.ca(a_s, eps)
        h = self.fc(torch.cat([z, c], 1)).view(z.shape[0], -1, 4, 4)  # (B, 8gf, 4, 4)
        s = (torch.tanh(self.out(self.ups(h))) + 1) / 2  # (B, 1, 64, 64) in [0, 1]
        return s, mu, logvar, kl


# ---- discriminators ----------------------------------------------------------------------------


def _lrelu() -> nn.LeakyReLU:
    return nn.LeakyReLU(0.2, True)


class PixelPatchD(nn.Module):
    """pix2pix ``PixelDiscriminator`` (1 x 1 receptive field): conv 1x1 -> ndf, LReLU, conv 1x1 -> 2 ndf,
    BN, LReLU, conv 1x1 -> 1. ``k = 3`` makes the first conv 3 x 3: the paper's "3 x 3 PatchGAN"
    (not a pix2pix option; research note §3.2: our construction)."""

    def __init__(self, in_ch: int, ndf: int = 64, k: int = 1) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(in_ch, ndf, k, 1, k // 2), _lrelu(), nn.Conv2d(ndf, ndf * 2, 1, bias=False),
                                 nn.BatchNorm2d(ndf * 2), _lrelu(), nn.Conv2d(ndf * 2, 1, 1))
        self.apply(init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (B, 1, H, W): one logit per pixel / 3 x 3 patch


class NLayerD(nn.Module):
    """pix2pix ``NLayerDiscriminator``: receptive field 16 / 34 / 70 for n_layers 1 / 2 / 3 (at 64 px
    the map is 30 / 14 / 6 wide)."""

    def __init__(self, in_ch: int, ndf: int = 64, n_layers: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_ch, ndf, 4, 2, 1), _lrelu()]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2 ** n, 8)
            stride = 2 if n < n_layers else 1
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride, 1, bias=False), nn.BatchNorm2d(ndf * mult),
                       _lrelu()]
        layers.append(nn.Conv2d(ndf * mult, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)
        self.apply(init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def encode_4x4(in_ch: int, ndf: int, size: int = 64) -> nn.Sequential:
    """StackGAN D image encoder: conv 4x4 s2 (no BN) + LReLU, then conv 4x4 s2 + BN + LReLU down to 4 x 4
    with 8 ndf channels (64 px: 64 -> 32 -> 16 -> 8 -> 4)."""
    layers: list[nn.Module] = [nn.Conv2d(in_ch, ndf, 4, 2, 1, bias=False), _lrelu()]
    ch, s = ndf, size // 2
    while s > 4:
        layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch * 2), _lrelu()]
        ch, s = ch * 2, s // 2
    return nn.Sequential(*layers)


class GlobalD(nn.Module):
    """The paper's P_i = 1 "global range" D: StackGAN's encoder to 4 x 4, then conv 4 x 4 stride 4 -> 1 logit."""

    def __init__(self, in_ch: int, ndf: int = 64, size: int = 64) -> None:
        super().__init__()
        self.enc = encode_4x4(in_ch, ndf, size)
        self.out = nn.Conv2d(ndf * size // 8, 1, 4, 4)
        self.apply(init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.enc(x))  # (B, 1, 1, 1)


class ConditionalD(nn.Module):
    """D_cGAN(x, a): StackGAN ``D_GET_LOGITS`` on the 4 x 4 code; the attributes are compressed as in
    Reed et al. / StackGAN-TF (FC(t -> 128) + LReLU 0.2), tiled 4 x 4, concatenated, conv 3x3 + BN +
    LReLU, conv 4 x 4 stride 4 -> 1 logit."""

    def __init__(self, in_ch: int, t_dim: int, ndf: int = 64, size: int = 64, e_dim: int = 128) -> None:
        super().__init__()
        ch = ndf * size // 8
        self.enc = encode_4x4(in_ch, ndf, size)
        self.embed = nn.Sequential(nn.Linear(t_dim, e_dim), _lrelu())
        self.joint = nn.Sequential(nn.Conv2d(ch + e_dim, ch, 3, 1, 1, bias=False), nn.BatchNorm2d(ch), _lrelu())
        self.out = nn.Conv2d(ch, 1, 4, 4)
        self.apply(init_weights)

    def forward(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        h = self.enc(x)  # (B, 8 ndf, 4, 4)
        e = self.embed(a)[:, :, None, None].expand(-1, -1, h.shape[2], h.shape[3])  # tiled (B, 128, 4, 4)
        return self.out(self.joint(torch.cat([h, e], 1)))  # (B, 1, 1, 1)
