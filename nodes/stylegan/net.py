"""StyleGAN2 generator and discriminator (Karras et al., CVPR 2020), module for module as
rosinality/stylegan2-pytorch ``model.py`` so official checkpoints load by an identity key map.

    z (B x D) -> PixelNorm -> n_mlp x EqualLinear(lr_mul 0.01, fused lrelu)      = mapping f
    w (B x D) -> [truncation psi: w_avg + psi (w - w_avg)] -> broadcast / mix    = W+ (B x L x D)
    W+ -> synthesis g:
        const 4x4 --conv1(w0)--> to_rgb1(w1) ---------------------------- skip
        for each resolution 8 .. size (block k):
            convs[2k] (w_{1+2k}, 2x up) -> convs[2k+1] (w_{2+2k}) -> to_rgbs[k] (w_{3+2k}) + up(skip)
        image = skip   (B x 3 x size x size, on the [-1, 1] scale, NOT clamped)

Each StyledConv = ModulatedConv2d (weight demodulation, paper eq. 1-3) + NoiseInjection
(per-pixel noise scaled by a learnt weight) + FusedLeakyReLU (bias, slope 0.2, gain sqrt 2).
``L = n_latent = 2 log2(size) - 2``; ``num_layers = 2 log2(size) - 3`` noise maps.

Networks work in [-1, 1]; the nodes convert. Deliberate departures from the official code:
- ``StyleGANConfig.channel_max`` caps the channel table (512 = official) so a small model can
  train on a CPU; ``mode`` picks how the modulation is folded (see ``ModulatedConv2d``);
- the discriminator's minibatch-stddev group is the largest divisor of the batch <= 4 (the
  official code raises for a batch that 4 does not divide);
- ``Generator`` holds w_avg as the buffer ``latent_avg`` (tracked in training, see there);
- ``Generator.forward`` takes W+ only; mapping, truncation and mixing are separate methods
  (``mapping``, ``truncate``, ``mix``) in place of seven mode flags.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from .ops import BLUR_KERNEL, fused_leaky_relu, fused_leaky_relu_, make_kernel, upfirdn2d

W_AVG_BETA = 0.995
"""Decay of the running w_avg during training (official TF ``dlatent_avg_beta``, ADA ``w_avg_beta``)."""

CHANNELS: dict[int, int] = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64, 512: 32, 1024: 16}
"""Official channels per resolution; entries from 64 px up are multiplied by ``channel_multiplier``
(rosinality ``Generator.channels``)."""


@dataclass(frozen=True)
class StyleGANConfig:
    """Every number that fixes the shapes of a StyleGAN2 G / D.

    ``size`` output side in px (power of two, 8..1024); ``style_dim`` D of z and w;
    ``n_mlp`` mapping depth; ``channel_multiplier`` scales the table from 64 px up (official 2);
    ``channel_max`` caps every entry (512 = no cap, official); ``lr_mlp`` the mapping's
    equalised-lr multiplier (official 0.01).
    """

    size: int = 256
    style_dim: int = 512
    n_mlp: int = 8
    channel_multiplier: int = 2
    channel_max: int = 512
    lr_mlp: float = 0.01

    def __post_init__(self) -> None:
        if self.size not in CHANNELS or self.size < 8:
            raise ValueError(f"size must be a power of two in 8..1024, got {self.size}")

    @property
    def log_size(self) -> int:
        return int(math.log2(self.size))

    @property
    def n_latent(self) -> int:
        """Number of W+ codes (256 px -> 14, 1024 px -> 18, 64 px -> 10)."""
        return self.log_size * 2 - 2

    @property
    def num_layers(self) -> int:
        """Number of noise maps (one per StyledConv)."""
        return (self.log_size - 2) * 2 + 1

    def channels(self) -> dict[int, int]:
        """Channels per resolution for this config (4 .. size)."""
        return {r: min(self.channel_max, c * (self.channel_multiplier if r >= 64 else 1))
                for r, c in CHANNELS.items() if r <= self.size}

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | dict[str, Any]) -> StyleGANConfig:
        data = json.loads(text) if isinstance(text, str) else dict(text)
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


PRESETS: dict[str, StyleGANConfig] = {
    "ffhq256": StyleGANConfig(256),              # rosinality FFHQ 256, the IDInvert / DDS size
    "ffhq1024": StyleGANConfig(1024),            # official FFHQ (convert_weight.py)
    "car512": StyleGANConfig(512),               # official LSUN car
    "cpu64": StyleGANConfig(64, channel_multiplier=1, channel_max=32),  # stylegan2_faces64 (trains on a CPU)
}


# ---- building blocks (rosinality names) ----------------------------------------------------

class PixelNorm(nn.Module):
    """x / sqrt(mean(x^2) + 1e-8) over dim 1: z normalised onto the sphere of radius sqrt(D)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(torch.mean(x * x, dim=1, keepdim=True) + 1e-8)


class Blur(nn.Module):
    """FIR low-pass with ``pad``; ``upsample_factor`` f scales the kernel by f^2 (it follows a
    zero-inserting transposed conv)."""

    def __init__(self, kernel: tuple[int, ...], pad: tuple[int, int], upsample_factor: int = 1) -> None:
        super().__init__()
        self.register_buffer("kernel", make_kernel(kernel) * upsample_factor ** 2)
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad)


class Upsample(nn.Module):
    """2x FIR upsampling of the RGB skip (pads (2, 1) for the 4-tap kernel)."""

    def __init__(self, kernel: tuple[int, ...] = BLUR_KERNEL, factor: int = 2) -> None:
        super().__init__()
        self.factor = factor
        self.register_buffer("kernel", make_kernel(kernel) * factor ** 2)
        p = self.kernel.shape[0] - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)


class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate: stored ``weight ~ N(0, 1/lr_mul^2)``, used as
    ``weight * lr_mul / sqrt(in)``; bias used as ``bias * lr_mul``; optional fused lrelu."""

    def __init__(self, in_dim: int, out_dim: int, bias: bool = True, bias_init: float = 0.0,
                 lr_mul: float = 1.0, activation: str | None = None) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init))) if bias else None
        self.activation = activation
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias * self.lr_mul
        if self.activation:
            return fused_leaky_relu(F.linear(x, self.weight * self.scale), bias)
        return F.linear(x, self.weight * self.scale, bias)

    def __repr__(self) -> str:
        return f"EqualLinear({self.weight.shape[1]}, {self.weight.shape[0]})"


ModMode = Literal["auto", "grouped", "scaled"]


class ModulatedConv2d(nn.Module):
    """Modulated / demodulated conv (StyleGAN2 eq. 1-3): ``s = A(w)`` (EqualLinear, bias init 1),
    ``w'_ijk = s_i w_ijk / sqrt(in k^2)``, ``w''_ijk = w'_ijk / sqrt(sum_ik w'^2 + 1e-8)``.
    ``upsample``: stride-2 transposed conv then ``Blur`` (pads (1, 1), kernel x4).

    ``mode`` folds the per-sample weights two equivalent ways: ``"grouped"`` builds B x out x in
    x k x k weights and runs one grouped conv (the official fused path); ``"scaled"`` scales the
    input by s, convolves with the shared weight and scales the output by the demodulation
    coefficients (the official ``fused=False`` path); ``"auto"`` (default) takes "grouped" at
    batch 1 when the weight is smaller than the activations (high resolutions), else "scaled".
    ``benchmarks/stylegan_forward.py`` times them.
    """

    def __init__(self, in_ch: int, out_ch: int, k: int, style_dim: int, demodulate: bool = True,
                 upsample: bool = False, blur_kernel: tuple[int, ...] = BLUR_KERNEL) -> None:
        super().__init__()
        self.in_channel, self.out_channel, self.kernel_size = in_ch, out_ch, k
        self.upsample, self.demodulate = upsample, demodulate
        if upsample:
            p = (len(blur_kernel) - 2) - (k - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2 + 1, p // 2 + 1), upsample_factor=2)
        self.scale = 1 / math.sqrt(in_ch * k * k)
        self.padding = k // 2
        self.weight = nn.Parameter(torch.randn(1, out_ch, in_ch, k, k))
        self.modulation = EqualLinear(style_dim, in_ch, bias_init=1)
        self.mode: ModMode = "auto"

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        s = self.modulation(style)                                   # B x in
        if self.mode == "grouped" or (self.mode == "auto" and x.shape[0] == 1
                                      and self.weight.numel() < x[0].numel() * (4 if self.upsample else 1)):
            # batch 1 where the weight is smaller than the activations: fold s and d into it
            return self._grouped(x, s)
        weight = self.weight[0] * self.scale                         # out x in x k x k
        x = x * s[:, :, None, None]
        if self.upsample:
            out = self.blur(F.conv_transpose2d(x, weight.transpose(0, 1), stride=2))
        else:
            out = F.conv2d(x, weight, padding=self.padding)
        if self.demodulate:
            # sum_ik (s_i w_oik)^2 = (s^2) @ (sum_k w_oik^2)^T: B x out, no B x out x in x k x k tensor
            d = torch.rsqrt((s * s) @ weight.pow(2).sum((2, 3)).t() + 1e-8)[:, :, None, None]
            out = out * d if out.requires_grad else out.mul_(d)
        return out

    def _grouped(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        k = self.kernel_size
        weight = self.scale * self.weight * s[:, None, :, None, None]  # B x out x in x k x k
        if self.demodulate:
            weight = weight * torch.rsqrt(weight.pow(2).sum((2, 3, 4)) + 1e-8)[:, :, None, None, None]
        x = x.reshape(1, b * c, h, w)
        if self.upsample:
            weight = weight.transpose(1, 2).reshape(b * c, self.out_channel, k, k)
            out = F.conv_transpose2d(x, weight, stride=2, groups=b)
            return self.blur(out.view(b, self.out_channel, *out.shape[-2:]))
        out = F.conv2d(x, weight.reshape(b * self.out_channel, c, k, k), padding=self.padding, groups=b)
        return out.view(b, self.out_channel, *out.shape[-2:])

    def __repr__(self) -> str:
        return (f"ModulatedConv2d({self.in_channel}, {self.out_channel}, {self.kernel_size}, "
                f"upsample={self.upsample}, demodulate={self.demodulate})")


class NoiseInjection(nn.Module):
    """``x + weight * noise`` with a learnt scalar weight (init 0); noise B|1 x 1 x H x W."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        if noise is None:
            noise = x.new_empty(x.shape[0], 1, x.shape[2], x.shape[3]).normal_()
        return x + self.weight * noise


class FusedLeakyReLU(nn.Module):
    """Per-channel bias, leaky ReLU 0.2, gain sqrt(2)."""

    def __init__(self, channels: int, bias: bool = True) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fused_leaky_relu(x, self.bias)


class ConstantInput(nn.Module):
    """The learnt 4 x 4 constant that synthesis starts from (repeated over the batch)."""

    def __init__(self, channels: int, size: int = 4) -> None:
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, size, size))

    def forward(self, batch: int) -> torch.Tensor:
        return self.input.expand(batch, -1, -1, -1)


class StyledConv(nn.Module):
    """ModulatedConv2d (3x3, optional 2x up) -> NoiseInjection -> FusedLeakyReLU."""

    def __init__(self, in_ch: int, out_ch: int, k: int, style_dim: int, upsample: bool = False,
                 blur_kernel: tuple[int, ...] = BLUR_KERNEL) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, out_ch, k, style_dim, upsample=upsample, blur_kernel=blur_kernel)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_ch)

    def forward(self, x: torch.Tensor, style: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        out = self.conv(x, style)
        if out.requires_grad:
            return self.activate(self.noise(out, noise))
        # inference: the same arithmetic in place on the fresh conv output (no extra buffers)
        if noise is None:
            noise = out.new_empty(out.shape[0], 1, *out.shape[2:]).normal_()
        return fused_leaky_relu_(out.add_(self.noise.weight * noise), self.activate.bias)


class ToRGB(nn.Module):
    """1x1 modulated conv (no demodulation) to RGB + bias, plus the 2x-upsampled previous skip."""

    def __init__(self, in_ch: int, style_dim: int, upsample: bool = True,
                 blur_kernel: tuple[int, ...] = BLUR_KERNEL) -> None:
        super().__init__()
        if upsample:
            self.upsample = Upsample(blur_kernel)
        self.conv = ModulatedConv2d(in_ch, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x: torch.Tensor, style: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        out = self.conv(x, style) + self.bias
        return out if skip is None else out + self.upsample(skip)


# ---- generator --------------------------------------------------------------------------------

class Generator(nn.Module):
    """StyleGAN2 generator G = g(f(z)) (rosinality ``Generator``; same state_dict keys).

    Parts: ``mapping`` (z -> w), ``truncate`` (w -> w_avg + psi (w - w_avg)), ``to_wplus``
    (w [, w2 at a mixing index] -> W+), ``synthesis`` (W+ -> image + per-layer features).
    ``forward(wplus, noise)`` is ``synthesis``'s image. Shapes: z, w B x D; W+ B x L x D with
    L = ``cfg.n_latent``; image B x 3 x size x size on the [-1, 1] scale, unclamped.
    """

    def __init__(self, cfg: StyleGANConfig, blur_kernel: tuple[int, ...] = BLUR_KERNEL) -> None:
        super().__init__()
        self.cfg = cfg
        self.size, self.style_dim = cfg.size, cfg.style_dim
        self.log_size, self.n_latent, self.num_layers = cfg.log_size, cfg.n_latent, cfg.num_layers
        d, ch = cfg.style_dim, cfg.channels()
        self.channels = ch
        self.style = nn.Sequential(PixelNorm(), *[EqualLinear(d, d, lr_mul=cfg.lr_mlp, activation="fused_lrelu")
                                                  for _ in range(cfg.n_mlp)])
        self.input = ConstantInput(ch[4])
        self.conv1 = StyledConv(ch[4], ch[4], 3, d, blur_kernel=blur_kernel)
        self.to_rgb1 = ToRGB(ch[4], d, upsample=False)
        self.convs, self.upsamples, self.to_rgbs = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        self.noises = nn.Module()
        # w_avg, the truncation centre: tracked during training as the official TF / ADA code
        # does (dlatent_avg, beta 0.995), so exported weights carry it (rosinality keeps it
        # outside the module, as convert_weight.py's ``latent_avg``)
        self.register_buffer("latent_avg", torch.zeros(d))
        for i in range(self.num_layers):
            r = 2 ** ((i + 5) // 2)
            self.noises.register_buffer(f"noise_{i}", torch.randn(1, 1, r, r))
        c_in = ch[4]
        for res in (2 ** i for i in range(3, self.log_size + 1)):
            self.convs.append(StyledConv(c_in, ch[res], 3, d, upsample=True, blur_kernel=blur_kernel))
            self.convs.append(StyledConv(ch[res], ch[res], 3, d, blur_kernel=blur_kernel))
            self.to_rgbs.append(ToRGB(ch[res], d))
            c_in = ch[res]

    def set_mode(self, mode: ModMode) -> Generator:
        """How every modulated conv folds its per-sample weights (``ModulatedConv2d``)."""
        for m in self.modules():
            if isinstance(m, ModulatedConv2d):
                m.mode = mode
        return self

    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        """f: z (B x D) -> w (B x D)."""
        return self.style(z)

    @torch.no_grad()
    def track_latent_avg(self, w: torch.Tensor, beta: float = W_AVG_BETA) -> None:
        """latent_avg <- lerp(mean_b w, latent_avg, beta): the running w_avg of training."""
        self.latent_avg.copy_(torch.lerp(w.detach().mean(0).to(self.latent_avg), self.latent_avg, beta))

    @torch.no_grad()
    def mean_latent(self, n: int = 4096, generator: torch.Generator | None = None) -> torch.Tensor:
        """Mean of f over ``n`` z ~ N(0, I) drawn on the CPU from ``generator``: 1 x D
        (rosinality ``mean_latent``)."""
        z = torch.randn(n, self.style_dim, generator=generator).to(self.input.input.device)
        return self.style(z).mean(0, keepdim=True)

    @staticmethod
    def truncate(w: torch.Tensor, psi: float, w_avg: torch.Tensor) -> torch.Tensor:
        """Truncation trick ``w_avg + psi (w - w_avg)`` on every layer (W or W+; w_avg 1 x D or D)."""
        if psi == 1:
            return w
        w_avg = w_avg.to(w)
        return w_avg + psi * (w - w_avg)

    def to_wplus(self, w: torch.Tensor, w2: torch.Tensor | None = None, index: int | None = None) -> torch.Tensor:
        """W+ (B x L x D) from w (B x D, broadcast) or W+; with ``w2``, layers ``index..L-1``
        come from ``w2`` (style mixing; official ``inject_index``)."""
        wp = w if w.dim() == 3 else w[:, None].expand(-1, self.n_latent, -1)
        if w2 is None or index is None:
            return wp
        wp2 = w2 if w2.dim() == 3 else w2[:, None].expand(-1, self.n_latent, -1)
        return torch.cat([wp[:, :index], wp2[:, index:]], 1)

    def fixed_noise(self) -> list[torch.Tensor]:
        """The stored noise maps (official ``randomize_noise=False``), each 1 x 1 x r x r."""
        return [getattr(self.noises, f"noise_{i}") for i in range(self.num_layers)]

    def make_noise(self, batch: int, generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """Fresh N(0, 1) noise maps, B x 1 x r x r each, drawn on the CPU from ``generator``
        (None: the global RNG, as training does)."""
        dev = self.input.input.device
        return [torch.randn(batch, 1, *n.shape[-2:], generator=generator).to(dev) for n in self.fixed_noise()]

    def synthesis(self, wplus: torch.Tensor,
                  noise: list[torch.Tensor] | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """g: W+ (B x L x D) -> (image B x 3 x size x size, features). ``noise``: one map per
        layer (None: the stored maps). ``features``: conv1's and every StyledConv's output
        (B x C_r x r x r, 1 + 2 (log2 size - 2) maps), the list DDS's segmenter reads."""
        if wplus.dim() != 3 or wplus.shape[1] != self.n_latent:
            raise ValueError(f"W+ must be B x {self.n_latent} x {self.style_dim}, got {tuple(wplus.shape)}")
        noise = self.fixed_noise() if noise is None else noise
        out = self.conv1(self.input(wplus.shape[0]), wplus[:, 0], noise[0])
        feats = [out]
        skip = self.to_rgb1(out, wplus[:, 1])
        for k, to_rgb in enumerate(self.to_rgbs):
            i = 1 + 2 * k  # block k reads w_i, w_{i+1}; its ToRGB shares w_{i+2} with the next block
            out = self.convs[2 * k](out, wplus[:, i], noise[i])
            feats.append(out)
            out = self.convs[2 * k + 1](out, wplus[:, i + 1], noise[i + 1])
            feats.append(out)
            skip = to_rgb(out, wplus[:, i + 2], skip)
        return skip, feats

    def forward(self, wplus: torch.Tensor, noise: list[torch.Tensor] | None = None) -> torch.Tensor:
        return self.synthesis(wplus, noise)[0]


NOISE_PREFIX = "noises.noise_"
LATENT_AVG = "latent_avg"
"""w_avg's key: not in rosinality's Generator state_dict (``convert_weight.py`` saves it beside)."""
