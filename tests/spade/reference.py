"""An independent reference of the official SPADE generator, for fidelity tests only.

Written from the published architecture (NVlabs/SPADE, see shared research notes), not from
nodes/: its own classes, torch's ``spectral_norm`` hook (``weight_orig``/``weight_u``/
``weight_v``, power iteration in training forwards, stored u, v in eval), BatchNorm running
statistics, and the official module names, so ``state_dict()`` has the official key layout.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm


class RefSPADE(nn.Module):
    def __init__(self, norm_nc: int, label_nc: int) -> None:
        super().__init__()
        self.param_free_norm = nn.BatchNorm2d(norm_nc, affine=False)
        self.mlp_shared = nn.Sequential(nn.Conv2d(label_nc, 128, kernel_size=3, padding=1), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(128, norm_nc, kernel_size=3, padding=1)
        self.mlp_beta = nn.Conv2d(128, norm_nc, kernel_size=3, padding=1)

    def forward(self, x, segmap):
        normalized = self.param_free_norm(x)
        segmap = F.interpolate(segmap, size=x.size()[2:], mode="nearest")
        actv = self.mlp_shared(segmap)
        gamma, beta = self.mlp_gamma(actv), self.mlp_beta(actv)
        return normalized * (1 + gamma) + beta


class RefBlock(nn.Module):
    def __init__(self, fin: int, fout: int, label_nc: int) -> None:
        super().__init__()
        self.learned_shortcut = fin != fout
        fmiddle = min(fin, fout)
        self.conv_0 = spectral_norm(nn.Conv2d(fin, fmiddle, kernel_size=3, padding=1))
        self.conv_1 = spectral_norm(nn.Conv2d(fmiddle, fout, kernel_size=3, padding=1))
        if self.learned_shortcut:
            self.conv_s = spectral_norm(nn.Conv2d(fin, fout, kernel_size=1, bias=False))
        self.norm_0 = RefSPADE(fin, label_nc)
        self.norm_1 = RefSPADE(fmiddle, label_nc)
        if self.learned_shortcut:
            self.norm_s = RefSPADE(fin, label_nc)

    def forward(self, x, seg):
        x_s = self.conv_s(self.norm_s(x, seg)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, seg), 2e-1))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, seg), 2e-1))
        return x_s + dx


class RefGenerator(nn.Module):
    def __init__(self, semantic_nc: int, ngf: int = 64, num_up: str = "normal", crop_size: int = 256,
                 aspect_ratio: float = 1.0, use_vae: bool = False, z_dim: int = 256) -> None:
        super().__init__()
        nf = ngf
        self.num_up, self.use_vae, self.z_dim, self.nf = num_up, use_vae, z_dim, nf
        n = {"normal": 5, "more": 6, "most": 7}[num_up]
        self.sw = crop_size // (2 ** n)
        self.sh = round(self.sw / aspect_ratio)
        if use_vae:
            self.fc = nn.Linear(z_dim, 16 * nf * self.sw * self.sh)
        else:
            self.fc = nn.Conv2d(semantic_nc, 16 * nf, 3, padding=1)
        self.head_0 = RefBlock(16 * nf, 16 * nf, semantic_nc)
        self.G_middle_0 = RefBlock(16 * nf, 16 * nf, semantic_nc)
        self.G_middle_1 = RefBlock(16 * nf, 16 * nf, semantic_nc)
        self.up_0 = RefBlock(16 * nf, 8 * nf, semantic_nc)
        self.up_1 = RefBlock(8 * nf, 4 * nf, semantic_nc)
        self.up_2 = RefBlock(4 * nf, 2 * nf, semantic_nc)
        self.up_3 = RefBlock(2 * nf, 1 * nf, semantic_nc)
        final_nc = nf
        if num_up == "most":
            self.up_4 = RefBlock(1 * nf, nf // 2, semantic_nc)
            final_nc = nf // 2
        self.conv_img = nn.Conv2d(final_nc, 3, 3, padding=1)
        self.up = nn.Upsample(scale_factor=2)

    def forward(self, seg, z=None):
        if self.use_vae:
            x = self.fc(z).view(-1, 16 * self.nf, self.sh, self.sw)
        else:
            x = self.fc(F.interpolate(seg, size=(self.sh, self.sw)))
        x = self.head_0(x, seg)
        x = self.up(x)
        x = self.G_middle_0(x, seg)
        if self.num_up in ("more", "most"):
            x = self.up(x)
        x = self.G_middle_1(x, seg)
        for name in ("up_0", "up_1", "up_2", "up_3") + (("up_4",) if self.num_up == "most" else ()):
            x = self.up(x)
            x = getattr(self, name)(x, seg)
        x = self.conv_img(F.leaky_relu(x, 2e-1))
        return torch.tanh(x)


def ref_semantics(label: torch.Tensor, label_nc: int, dontcare: bool,
                  instance: torch.Tensor | None) -> torch.Tensor:
    """One-hot (+ don't care channel) then the instance edge channel, official order."""
    b, _, h, w = label.shape
    nc = label_nc + 1 if dontcare else label_nc
    sem = torch.zeros(b, nc, h, w).scatter_(1, label.long(), 1.0)
    if instance is not None:
        t = instance
        edge = torch.zeros(t.size(), dtype=torch.uint8)
        edge[:, :, :, 1:] = edge[:, :, :, 1:] | (t[:, :, :, 1:] != t[:, :, :, :-1])
        edge[:, :, :, :-1] = edge[:, :, :, :-1] | (t[:, :, :, 1:] != t[:, :, :, :-1])
        edge[:, :, 1:, :] = edge[:, :, 1:, :] | (t[:, :, 1:, :] != t[:, :, :-1, :])
        edge[:, :, :-1, :] = edge[:, :, :-1, :] | (t[:, :, 1:, :] != t[:, :, :-1, :])
        sem = torch.cat((sem, edge.float()), dim=1)
    return sem


def voronoi(b: int, h: int, w: int, n_regions: int, n_ids: int, gen: torch.Generator) -> torch.Tensor:
    """B x 1 x H x W integer map of random Voronoi cells with ids in 0..n_ids-1."""
    pts = torch.rand(b, n_regions, 2, generator=gen) * torch.tensor([h, w])
    ids = torch.randint(0, n_ids, (b, n_regions), generator=gen)
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    grid = torch.stack([yy, xx], -1).float().view(1, h * w, 1, 2)
    d = ((grid - pts.view(b, 1, n_regions, 2)) ** 2).sum(-1)
    cell = d.argmin(-1)
    return torch.gather(ids, 1, cell).view(b, 1, h, w)


@torch.no_grad()
def informative_init(g: RefGenerator, semantic_nc: int, label_nc: int, dontcare: bool, instance: bool,
                     size: tuple[int, int], seed: int) -> None:
    """Redraw weights so every path matters (official init makes gamma, beta ~1e-6), then set
    BatchNorm running stats and spectral-norm u, v with train-mode passes on other maps."""
    gen = torch.Generator().manual_seed(seed)
    for name, p in g.named_parameters():
        if name.endswith("bias"):
            p.fill_(0.1)
        elif "mlp_shared" in name:
            p.copy_(torch.randn(p.shape, generator=gen) / 3)
        elif "mlp_gamma" in name or "mlp_beta" in name:
            p.copy_(torch.randn(p.shape, generator=gen) * 0.5 / math.sqrt(p[0].numel() / 9 * 2))
        else:
            fan_in = p[0].numel() if p.dim() > 1 else p.numel()
            p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(fan_in))
    for m in g.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = None  # cumulative average over the warm-up passes
    g.train()
    h, w = size
    for _ in range(2):  # batch 2: a 1x1 latent grid still has 2 values per BN channel
        lab = voronoi(2, h, w, 16, label_nc + int(dontcare), gen)
        inst = voronoi(2, h, w, 30, 255, gen) if instance else None
        z = torch.randn(2, g.z_dim, generator=gen) if g.use_vae else None
        g(ref_semantics(lab, label_nc, dontcare, inst), z)
    g.eval()
    # keep tanh mostly unsaturated so differences show in the output
    lab = voronoi(1, h, w, 16, label_nc + int(dontcare), gen)
    inst = voronoi(1, h, w, 30, 255, gen) if instance else None
    z = torch.randn(1, g.z_dim, generator=gen) if g.use_vae else None
    pre = torch.atanh(g(ref_semantics(lab, label_nc, dontcare, inst), z).clamp(-0.999, 0.999))
    g.conv_img.weight.mul_(0.8 / max(float(pre.std()), 1e-3))
    g.conv_img.bias.zero_()
