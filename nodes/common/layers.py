"""Shared network blocks: SPADE normalisation, SPADE residual blocks, spectral-norm helpers,
PatchGAN discriminators.

Written once here so every family (SPADE, mask-guided portraits, dual-domain ...) reuses the
same blocks. The module names of the blocks follow NVlabs/SPADE (``param_free_norm``,
``mlp_shared.0``, ``mlp_gamma``, ``conv_0`` ...) so official state_dicts load with an identity
key map.

Spectral norm (Miyato et al. 2018) is used in two forms:

- while training, torch's ``spectral_norm`` hook (``weight_orig``/``weight_u``/``weight_v``,
  one power iteration per training forward), exactly as the official code does;
- at inference, folded once into a plain ``weight`` (``fold_spectral_norm``), which is what the
  hook computes in eval mode: W = W_orig / sigma with sigma = u . (W_orig v) from the *stored*
  u, v (not the exact largest singular value).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# ---- spectral norm --------------------------------------------------------------------------


def spectral(module: nn.Module, enabled: bool = True) -> nn.Module:
    """Wrap ``module`` in torch's spectral-norm hook (official key layout) when ``enabled``."""
    return nn.utils.spectral_norm(module) if enabled else module


def spectral_sigma(weight_orig: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """sigma = u^T W v with W the weight reshaped to (out, -1) (dim 0, as torch's hook)."""
    w = weight_orig.reshape(weight_orig.shape[0], -1)
    return torch.dot(u, torch.mv(w, v))


def fold_spectral_norm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Replace every ``X.weight_orig/_u/_v`` triple by ``X.weight = weight_orig / sigma``.

    Accepts the legacy torch-0.4.1 layout (``weight_orig``, ``weight_u`` and a stored
    ``weight``, no ``weight_v``) by keeping the stored ``weight``. Other keys pass through.
    The division is done in float64 and cast back so folding adds no rounding of its own.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.endswith((".weight_u", ".weight_v")) or key in ("weight_u", "weight_v"):
            continue
        if key.endswith("weight_orig"):
            stem = key[: -len("weight_orig")]
            u, v = state.get(stem + "weight_u"), state.get(stem + "weight_v")
            if v is None:
                legacy = state.get(stem + "weight")
                if legacy is None:
                    raise KeyError(f"{key}: spectral norm without weight_v nor a stored weight")
                out[stem + "weight"] = legacy
                continue
            if u is None:
                raise KeyError(f"{key}: spectral norm without {stem}weight_u")
            sigma = spectral_sigma(value.double(), u.double(), v.double())
            out[stem + "weight"] = (value.double() / sigma).to(value.dtype)
            continue
        if key.endswith("weight") and (key + "_orig") in state:
            continue  # legacy stored weight: handled with its weight_orig
        out[key] = value
    return out


def has_spectral_norm(state: dict[str, torch.Tensor]) -> bool:
    return any(k.endswith("weight_orig") for k in state)


# ---- SPADE ------------------------------------------------------------------------------------


def param_free_norm(kind: str, channels: int) -> nn.Module:
    """The normalisation SPADE modulates: batch (running stats at eval) or instance (no state)."""
    if kind in ("batch", "syncbatch"):
        return nn.BatchNorm2d(channels, affine=False)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False)
    raise ValueError(f"unknown param-free norm {kind!r} (batch, syncbatch, instance)")


class SPADE(nn.Module):
    """Spatially-adaptive denormalisation (Park et al. 2019, eq. 1).

    out = norm(x) * (1 + gamma(m)) + beta(m), where gamma and beta are 3x3 convs of a shared
    ReLU-conv embedding of the segmentation map m resized (legacy *nearest*) to x's size.
    """

    def __init__(self, norm_nc: int, label_nc: int, norm: str = "batch", ks: int = 3,
                 nhidden: int = 128) -> None:
        super().__init__()
        pad = ks // 2
        self.param_free_norm = param_free_norm(norm, norm_nc)
        self.mlp_shared = nn.Sequential(nn.Conv2d(label_nc, nhidden, ks, padding=pad), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(nhidden, norm_nc, ks, padding=pad)
        self.mlp_beta = nn.Conv2d(nhidden, norm_nc, ks, padding=pad)

    def forward(self, x: torch.Tensor, segmap: torch.Tensor) -> torch.Tensor:
        normalized = self.param_free_norm(x)
        if segmap.shape[-2:] != x.shape[-2:]:
            segmap = F.interpolate(segmap, size=x.shape[-2:], mode="nearest")
        actv = self.mlp_shared(segmap)
        # 1 + gamma: gamma = 0 leaves the normalised activation unscaled (paper, sec. 3).
        return torch.addcmul(self.mlp_beta(actv), normalized, 1 + self.mlp_gamma(actv))


class SPADEResnetBlock(nn.Module):
    """Residual block with SPADE before each conv (paper fig. 4).

    dx = conv_1(lrelu(SPADE_1(conv_0(lrelu(SPADE_0(x)))))), shortcut = conv_s(SPADE_s(x)) when
    fin != fout (1x1, no bias, no activation) else x; out = shortcut + dx.
    """

    def __init__(self, fin: int, fout: int, label_nc: int, norm: str = "batch",
                 use_spectral: bool = True, nhidden: int = 128) -> None:
        super().__init__()
        self.learned_shortcut = fin != fout
        fmiddle = min(fin, fout)
        self.conv_0 = spectral(nn.Conv2d(fin, fmiddle, 3, padding=1), use_spectral)
        self.conv_1 = spectral(nn.Conv2d(fmiddle, fout, 3, padding=1), use_spectral)
        if self.learned_shortcut:
            self.conv_s = spectral(nn.Conv2d(fin, fout, 1, bias=False), use_spectral)
        self.norm_0 = SPADE(fin, label_nc, norm, nhidden=nhidden)
        self.norm_1 = SPADE(fmiddle, label_nc, norm, nhidden=nhidden)
        if self.learned_shortcut:
            self.norm_s = SPADE(fin, label_nc, norm, nhidden=nhidden)

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        x_s = self.conv_s(self.norm_s(x, seg)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, seg), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, seg), 0.2))
        return x_s + dx


# ---- PatchGAN discriminators ----------------------------------------------------------------


class NLayerDiscriminator(nn.Module):
    """PatchGAN (pix2pixHD / SPADE): k4 convs, pad 2, strides 2,2,..,1 then a 1-channel head.

    Children ``model0..model{n_layers}`` (official names); every intermediate output is returned
    so a feature-matching loss can compare them.
    """

    def __init__(self, input_nc: int, ndf: int = 64, n_layers: int = 4, norm: str = "instance",
                 use_spectral: bool = True) -> None:
        super().__init__()
        kw, pad = 4, 2  # pad = ceil((4 - 1) / 2) as in pix2pixHD
        seq: list[list[nn.Module]] = [[nn.Conv2d(input_nc, ndf, kw, 2, pad), nn.LeakyReLU(0.2)]]
        nf = ndf
        for n in range(1, n_layers):
            nf_prev, nf = nf, min(nf * 2, 512)
            stride = 1 if n == n_layers - 1 else 2
            conv = spectral(nn.Conv2d(nf_prev, nf, kw, stride, pad, bias=False), use_spectral)
            seq.append([conv, _disc_norm(norm, nf), nn.LeakyReLU(0.2)])
        seq.append([nn.Conv2d(nf, 1, kw, 1, pad)])
        for i, layers in enumerate(seq):
            self.add_module(f"model{i}", nn.Sequential(*layers))
        self.n = len(seq)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for i in range(self.n):
            x = getattr(self, f"model{i}")(x)
            feats.append(x)
        return feats


def _disc_norm(kind: str, channels: int) -> nn.Module:
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False)
    if kind in ("batch", "syncbatch"):
        return nn.BatchNorm2d(channels, affine=True)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown discriminator norm {kind!r}")


class MultiscaleDiscriminator(nn.Module):
    """``num_D`` PatchGANs on the input and its successive 2x average-pooled copies.

    Returns one list of features per scale (last entry = the patch logits).
    """

    def __init__(self, input_nc: int, ndf: int = 64, n_layers: int = 4, num_D: int = 2,
                 norm: str = "instance", use_spectral: bool = True) -> None:
        super().__init__()
        self.num_D = num_D
        for i in range(num_D):
            self.add_module(f"discriminator_{i}",
                            NLayerDiscriminator(input_nc, ndf, n_layers, norm, use_spectral))

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        out = []
        for i in range(self.num_D):
            out.append(getattr(self, f"discriminator_{i}")(x))
            if i + 1 < self.num_D:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
        return out
