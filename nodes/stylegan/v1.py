"""StyleGAN v1 (Karras et al., CVPR 2019) as the In-Domain GAN Inversion checkpoints use it
(genforce/idinvert_pytorch ``models/stylegan_generator_network.py``, settings ``styleganinv_*256``:
``repeat_w=False``, ``final_tanh=True``, ``fused_scale='auto'``, ``randomize_noise=False``).

    z (B x Z) -> PixelNorm -> dense0..dense7 (equalised lr x 0.01, gain sqrt 2, lrelu 0.2)
              -> B x (L * D), reshaped to W+ (B x L x D): a separate code per layer   = mapping
    W+ -> synthesis:
        layer0: const 4x4 (ones at init) -> epilogue(w_0)          layer1: conv3x3 -> epilogue(w_1)
        for res 8 .. size (block b): layer{2b}: 2x up + conv3x3 + blur [1 2 1] -> epilogue(w_{2b})
                                     layer{2b+1}: conv3x3 -> epilogue(w_{2b+1})
        image = tanh(output{last}(x))          (output{b}: 1x1 conv to RGB; only the last is used)
    epilogue(x, w) = AdaIN: x + noise * weight_c -> + bias_c -> lrelu 0.2 -> instance norm
                     -> x * (1 + s_c) + t_c with (s, t) = dense(w)

``L = n_latent = 2 (log2 size - 1)`` (256 px -> 14, 64 px -> 10); channels ``min(16384 / res, 512)``.
Up-sampling below 128 px is nearest-neighbour then conv; from 128 px on the "fused" transposed conv
with the 3x3 kernel summed over four shifts into a 4x4 one (the same map, one op). Noise maps are
fixed buffers (official ``randomize_noise=False``). Networks work in [-1, 1]; the node converts.

Module and key names follow the official port so its ``.pth`` loads by an identity map except for
what ``convert.py`` (``nodegraph convert idinvert-generator``) lists: the equalised-lr dense layers
are ``nodes.stylegan.net.EqualLinear`` (``fc.weight`` -> ``weight``, ``wscale.bias`` -> ``bias``),
the blur is ``net.Blur`` (its kernel is rebuilt), ``synthesis.lod`` (must be 0) and the truncation
coefficients (rebuilt from ``psi``) are dropped.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from .net import Blur, EqualLinear, PixelNorm

V1_CHANNELS: dict[int, int] = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64, 512: 32, 1024: 16}
"""Official ``min(fmaps_base // res, fmaps_max)`` with fmaps_base 16384, fmaps_max 512."""
FUSED_MIN_RES = 128
"""``fused_scale='auto'``: transposed-conv up-sampling from this resolution on."""
BLUR_V1 = (1, 2, 1)
SQRT2 = math.sqrt(2.0)


@dataclass(frozen=True)
class StyleGANV1Config:
    """Shapes of an IDInvert StyleGAN v1: ``size`` px (8..1024), ``w_dim`` D, ``z_dim``, ``n_mlp``
    mapping layers, ``fmaps_max`` channel cap (official 512; smaller = a CPU-sized model),
    ``fmaps_base`` (channels = min(fmaps_base / res, fmaps_max)), ``final_tanh``."""

    size: int = 256
    w_dim: int = 512
    z_dim: int = 512
    n_mlp: int = 8
    fmaps_base: int = 16384
    fmaps_max: int = 512
    final_tanh: bool = True

    def __post_init__(self) -> None:
        if self.size not in V1_CHANNELS or self.size < 8:
            raise ValueError(f"size must be a power of two in 8..1024, got {self.size}")

    @property
    def n_latent(self) -> int:
        return 2 * (int(math.log2(self.size)) - 1)

    def nf(self, res: int) -> int:
        return min(self.fmaps_base // res, self.fmaps_max)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | dict[str, Any]) -> StyleGANV1Config:
        data = json.loads(text) if isinstance(text, str) else dict(text)
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


class GainEqualLinear(EqualLinear):
    """``EqualLinear`` with v1's He gain on the weight only: ``x W^T gain lr / sqrt(in) + b lr``
    (StyleGAN2's fused lrelu puts the gain after the bias and activation instead)."""

    def __init__(self, in_dim: int, out_dim: int, lr_mul: float, gain: float = SQRT2) -> None:
        super().__init__(in_dim, out_dim, lr_mul=lr_mul)
        self.scale *= gain


class Mapping(nn.Module):
    """z (B x Z) -> B x L x D; ``dense{i}`` as the official MappingModule."""

    def __init__(self, cfg: StyleGANV1Config) -> None:
        super().__init__()
        self.n_mlp, self.n_latent, self.w_dim = cfg.n_mlp, cfg.n_latent, cfg.w_dim
        self.norm = PixelNorm()
        for i in range(cfg.n_mlp):
            out = cfg.w_dim * cfg.n_latent if i == cfg.n_mlp - 1 else cfg.w_dim
            self.add_module(f"dense{i}", GainEqualLinear(cfg.z_dim if i == 0 else cfg.w_dim, out, lr_mul=0.01))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.norm(z)
        for i in range(self.n_mlp):
            x = F.leaky_relu(getattr(self, f"dense{i}")(x), 0.2)
        return x.view(-1, self.n_latent, self.w_dim)                 # B x (L D) -> B x L x D


class NoiseApply(nn.Module):
    """x + noise (1 x 1 x r x r, fixed) * weight (per channel)."""

    def __init__(self, res: int, channels: int) -> None:
        super().__init__()
        self.register_buffer("noise", torch.randn(1, 1, res, res))
        self.weight = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.noise * self.weight.view(1, -1, 1, 1)


class StyleMod(nn.Module):
    """AdaIN's affine part: (s, t) = dense(w) (equalised lr, gain 1); x (1 + s) + t."""

    def __init__(self, channels: int, w_dim: int) -> None:
        super().__init__()
        self.dense = EqualLinear(w_dim, 2 * channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        style = self.dense(w).view(x.shape[0], 2, x.shape[1], 1, 1)  # B x 2C -> B x 2 x C x 1 x 1
        return x * (style[:, 0] + 1) + style[:, 1]


class Epilogue(nn.Module):
    """noise -> bias -> lrelu 0.2 -> instance norm (eps 1e-8) -> style modulation."""

    def __init__(self, res: int, channels: int, w_dim: int) -> None:
        super().__init__()
        self.apply_noise = NoiseApply(res, channels)
        self.bias = nn.Parameter(torch.zeros(channels))
        self.style_mod = StyleMod(channels, w_dim)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.apply_noise(x) + self.bias.view(1, -1, 1, 1), 0.2)
        x = x - x.mean((2, 3), keepdim=True)
        x = x * torch.rsqrt(x.square().mean((2, 3), keepdim=True) + 1e-8)
        return self.style_mod(x, w)


class FirstConvBlock(nn.Module):
    def __init__(self, channels: int, w_dim: int) -> None:
        super().__init__()
        self.const = nn.Parameter(torch.ones(1, channels, 4, 4))
        self.epilogue = Epilogue(4, channels, w_dim)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return self.epilogue(self.const.expand(w.shape[0], -1, -1, -1), w)


class ConvBlock(nn.Module):
    """3x3 conv (no bias, equalised lr gain sqrt 2) -> epilogue."""

    def __init__(self, res: int, c_in: int, c_out: int, w_dim: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.scale = SQRT2 / math.sqrt(c_in * 9)
        self.epilogue = Epilogue(res, c_out, w_dim)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.epilogue(self.conv(x) * self.scale, w)


class UpConvBlock(nn.Module):
    """2x up + 3x3 conv (fused: one stride-2 transposed 4x4 conv, weight k x k x in x out) -> blur -> epilogue."""

    def __init__(self, res: int, c_in: int, c_out: int, w_dim: int) -> None:
        super().__init__()
        self.fused = res >= FUSED_MIN_RES
        if self.fused:
            self.weight = nn.Parameter(torch.randn(3, 3, c_in, c_out))
        else:
            self.conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.scale = SQRT2 / math.sqrt(c_in * 9)
        self.blur = Blur(BLUR_V1, pad=(1, 1))
        self.epilogue = Epilogue(res, c_out, w_dim)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if self.fused:
            k = F.pad(self.weight * self.scale, (0, 0, 0, 0, 1, 1, 1, 1))          # 5 x 5 x in x out
            k = k[1:, 1:] + k[:-1, 1:] + k[1:, :-1] + k[:-1, :-1]                   # 4 x 4 x in x out
            x = F.conv_transpose2d(x, k.permute(2, 3, 0, 1), stride=2, padding=1)
        else:
            x = self.conv(F.interpolate(x, scale_factor=2, mode="nearest")) * self.scale
        return self.epilogue(self.blur(x), w)


class ToRGB(nn.Module):
    """``output{b}``: 1x1 conv (gain 1) + bias."""

    def __init__(self, c_in: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, 3, 1, bias=False)
        self.scale = 1 / math.sqrt(c_in)
        self.bias = nn.Parameter(torch.zeros(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) * self.scale + self.bias.view(1, -1, 1, 1)


class Synthesis(nn.Module):
    """W+ (B x L x D) -> B x 3 x size x size (before tanh)."""

    def __init__(self, cfg: StyleGANV1Config) -> None:
        super().__init__()
        self.n_blocks = int(math.log2(cfg.size)) - 1
        for b in range(self.n_blocks):
            res = 4 * 2 ** b
            c = cfg.nf(res)
            first = FirstConvBlock(c, cfg.w_dim) if b == 0 else UpConvBlock(res, cfg.nf(res // 2), c, cfg.w_dim)
            self.add_module(f"layer{2 * b}", first)
            self.add_module(f"layer{2 * b + 1}", ConvBlock(res, c, c, cfg.w_dim))
            self.add_module(f"output{b}", ToRGB(c))

    def forward(self, wplus: torch.Tensor) -> torch.Tensor:
        x = self.layer0(wplus[:, 0])
        x = self.layer1(x, wplus[:, 1])
        for b in range(1, self.n_blocks):
            x = getattr(self, f"layer{2 * b}")(x, wplus[:, 2 * b])
            x = getattr(self, f"layer{2 * b + 1}")(x, wplus[:, 2 * b + 1])
        return getattr(self, f"output{self.n_blocks - 1}")(x)


class Truncation(nn.Module):
    """Holds ``w_avg`` (D), the centre of the truncation trick."""

    def __init__(self, w_dim: int) -> None:
        super().__init__()
        self.register_buffer("w_avg", torch.zeros(w_dim))


class GeneratorV1(nn.Module):
    """IDInvert's StyleGAN v1 generator. ``forward(wplus)``: W+ (B x L x D) -> image B x 3 x size
    x size in [-1, 1] (tanh). ``mapping(z)`` gives W+ directly (one code per layer);
    ``truncate(wp, psi, layers=8)`` is the official sampling truncation. Attributes ``size``,
    ``n_latent``, ``style_dim`` and ``latent_avg`` (= w_avg) match ``net.Generator``'s, so
    inversion nodes take either."""

    def __init__(self, cfg: StyleGANV1Config) -> None:
        super().__init__()
        self.cfg = cfg
        self.size, self.n_latent, self.style_dim = cfg.size, cfg.n_latent, cfg.w_dim
        self.mapping = Mapping(cfg)
        self.truncation = Truncation(cfg.w_dim)
        self.synthesis = Synthesis(cfg)

    @property
    def latent_avg(self) -> torch.Tensor:
        return self.truncation.w_avg

    def truncate(self, wplus: torch.Tensor, psi: float = 0.7, layers: int = 8) -> torch.Tensor:
        """w_avg + psi (w - w_avg) on layers 0..layers-1 (official psi 0.7, 8 layers)."""
        coef = torch.ones(1, self.n_latent, 1, dtype=wplus.dtype, device=wplus.device)
        coef[:, :layers] = psi
        avg = self.truncation.w_avg.to(wplus).view(1, 1, -1)
        return avg + (wplus - avg) * coef

    def forward(self, wplus: torch.Tensor) -> torch.Tensor:
        if wplus.dim() != 3 or wplus.shape[1:] != (self.n_latent, self.style_dim):
            raise ValueError(f"W+ must be B x {self.n_latent} x {self.style_dim}, got {tuple(wplus.shape)}")
        x = self.synthesis(wplus)
        return torch.tanh(x) if self.cfg.final_tanh else x
