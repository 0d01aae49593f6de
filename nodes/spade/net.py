"""SPADE networks (Park et al., CVPR 2019): semantic input, generator, VAE style encoder,
multi-scale discriminator, and loading of official or our own state_dicts.

Plain ``nn.Module``s usable without the engine; ``nodes/spade/nodes.py`` holds the typed node doors.
Module names mirror NVlabs/SPADE so ``latest_net_G.pth`` maps with an identity key map
(spectral norm folded, see ``nodes.common.layers.fold_spectral_norm``).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from nodes.common.layers import (
    MultiscaleDiscriminator,
    SPADEResnetBlock,
    fold_spectral_norm,
    has_spectral_norm,
    spectral,
)

NumUp = Literal["normal", "more", "most"]
N_UP = {"normal": 5, "more": 6, "most": 7}


# ---- configuration --------------------------------------------------------------------------


@dataclass(frozen=True)
class SPADEConfig:
    """Everything that fixes the generator's shapes and its semantic input.

    ``label_nc`` counts the real classes; ``dontcare`` adds one one-hot channel (id
    ``label_nc``) and ``instance`` one instance-edge channel, as the official
    ``preprocess_input`` does. ``crop_size``/``aspect_ratio`` size the latent grid the way the
    official options do; ``crop_size = 0`` sizes it from the label map instead.
    """

    label_nc: int
    dontcare: bool = False
    instance: bool = False
    label_set: str = ""
    ngf: int = 64
    num_upsampling_layers: NumUp = "normal"
    use_vae: bool = False
    z_dim: int = 256
    crop_size: int = 256
    aspect_ratio: float = 1.0
    norm: str = "batch"
    nhidden: int = 128

    @property
    def semantic_nc(self) -> int:
        return self.label_nc + int(self.dontcare) + int(self.instance)

    @property
    def n_up(self) -> int:
        return N_UP[self.num_upsampling_layers]

    def latent_hw(self, label_hw: tuple[int, int] | None = None) -> tuple[int, int]:
        """(sh, sw) of the 16ngf latent grid: official crop/aspect rule, or from the label map."""
        if self.crop_size:
            sw = self.crop_size // 2 ** self.n_up
            return round(sw / self.aspect_ratio), sw
        if label_hw is None:
            raise ValueError("crop_size = 0 needs the label map size to size the latent grid")
        h, w = label_hw
        f = 2 ** self.n_up
        if h % f or w % f:
            raise ValueError(f"label map {h}x{w} is not a multiple of {f} (2^{self.n_up} upsamplings); "
                             f"resize it or set size to a multiple of {f}")
        return h // f, w // f

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SPADEConfig:
        data = json.loads(text)
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


PRESETS: dict[str, SPADEConfig] = {
    # semantic_nc 151 / 184 / 36 as in the released checkpoints (fc.weight in-channels).
    "ade20k": SPADEConfig(label_nc=150, dontcare=True, instance=False, label_set="ade20k"),
    "coco": SPADEConfig(label_nc=182, dontcare=True, instance=True, label_set="coco"),
    "cityscapes": SPADEConfig(label_nc=35, dontcare=False, instance=True, label_set="cityscapes",
                              crop_size=512, aspect_ratio=2.0, num_upsampling_layers="more"),
    # our procedural default: 128 px, small network (see weights/manifest.json for what trained it)
    "landscape": SPADEConfig(label_nc=10, label_set="landscape", ngf=16, crop_size=128, nhidden=32),
}


# ---- semantic input ---------------------------------------------------------------------------


def instance_edges(instance: torch.Tensor) -> torch.Tensor:
    """Float B x 1 x H x W map: 1 where a pixel's instance id differs from a 4-neighbour.

    Both pixels of a boundary are marked (horizontal and vertical differences only).
    """
    t = instance if instance.dim() == 4 else instance.unsqueeze(1)
    edge = torch.zeros(t.shape, dtype=torch.bool, device=t.device)
    dh = t[..., :, 1:] != t[..., :, :-1]
    dv = t[..., 1:, :] != t[..., :-1, :]
    edge[..., :, 1:] |= dh
    edge[..., :, :-1] |= dh
    edge[..., 1:, :] |= dv
    edge[..., :-1, :] |= dv
    return edge.float()


def semantic_input(labels: torch.Tensor, cfg: SPADEConfig,
                   instance: torch.Tensor | None = None) -> torch.Tensor:
    """[one-hot(label_nc (+ dontcare))][instance edges] as the official ``preprocess_input``.

    ``labels``: int B x H x W (or B x 1 x H x W) with ids 0..label_nc-1, plus ``label_nc`` for
    "don't care" when the config has that channel.
    """
    lab = labels if labels.dim() == 4 else labels.unsqueeze(1)
    lab = lab.long()
    nc = cfg.label_nc + int(cfg.dontcare)
    lo, hi = int(lab.min()), int(lab.max())
    if lo < 0 or hi >= nc:
        extra = f" ({cfg.label_nc} = don't care)" if cfg.dontcare else ""
        raise ValueError(f"label ids must lie in 0..{nc - 1}{extra}, got {lo}..{hi}")
    b, _, h, w = lab.shape
    sem = torch.zeros(b, nc, h, w, device=lab.device).scatter_(1, lab, 1.0)
    if cfg.instance:
        if instance is None:
            raise ValueError("this preset uses an instance map (edge channel); none was given")
        sem = torch.cat([sem, instance_edges(instance).to(sem.device)], 1)
    return sem


# ---- generator ----------------------------------------------------------------------------------


class SPADEGenerator(nn.Module):
    """SPADE generator G (paper fig. 4 right, appendix table): a 16ngf latent grid (downsampled
    semantics through a 3x3 conv, or a VAE code through a linear layer) upsampled through
    SPADE residual blocks to an RGB image in [-1, 1] (tanh).

    ``use_spectral`` keeps torch's spectral-norm hooks (training, official key layout); the
    inference form has it folded into plain weights (``load_spade_state``).
    """

    def __init__(self, cfg: SPADEConfig, use_spectral: bool = False) -> None:
        super().__init__()
        self.cfg = cfg
        nf, snc = cfg.ngf, cfg.semantic_nc
        if cfg.use_vae:
            sh, sw = cfg.latent_hw()
            self.fc = nn.Linear(cfg.z_dim, 16 * nf * sh * sw)
        else:
            self.fc = nn.Conv2d(snc, 16 * nf, 3, padding=1)

        def block(fin: int, fout: int) -> SPADEResnetBlock:
            return SPADEResnetBlock(fin, fout, snc, cfg.norm, use_spectral, cfg.nhidden)

        self.head_0 = block(16 * nf, 16 * nf)
        self.G_middle_0 = block(16 * nf, 16 * nf)
        self.G_middle_1 = block(16 * nf, 16 * nf)
        self.up_0 = block(16 * nf, 8 * nf)
        self.up_1 = block(8 * nf, 4 * nf)
        self.up_2 = block(4 * nf, 2 * nf)
        self.up_3 = block(2 * nf, nf)
        final_nc = nf
        if cfg.num_upsampling_layers == "most":
            self.up_4 = block(nf, nf // 2)
            final_nc = nf // 2
        self.conv_img = nn.Conv2d(final_nc, 3, 3, padding=1)

    def forward(self, seg: torch.Tensor, z: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        cfg = self.cfg
        sh, sw = cfg.latent_hw(tuple(seg.shape[-2:]))
        if cfg.use_vae:
            if z is None:
                z = torch.randn(seg.shape[0], cfg.z_dim, generator=generator, device="cpu").to(seg.device)
            x = self.fc(z).view(-1, 16 * cfg.ngf, sh, sw)
        else:
            x = self.fc(F.interpolate(seg, size=(sh, sw), mode="nearest"))
        up = _up2
        x = self.head_0(x, seg)
        x = self.G_middle_0(up(x), seg)
        if cfg.num_upsampling_layers in ("more", "most"):
            x = up(x)
        x = self.G_middle_1(x, seg)
        x = self.up_0(up(x), seg)
        x = self.up_1(up(x), seg)
        x = self.up_2(up(x), seg)
        x = self.up_3(up(x), seg)
        if cfg.num_upsampling_layers == "most":
            x = self.up_4(up(x), seg)
        return torch.tanh(self.conv_img(F.leaky_relu(x, 0.2)))


def _up2(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="nearest")


# ---- VAE style encoder ------------------------------------------------------------------------


class ConvEncoder(nn.Module):
    """Style encoder E of SPADE's multimodal variant (paper sec. 3.3, appendix fig. 14):
    stride-2 3x3 spectral convs + instance norm down to a 4x4 grid, then two linear heads give
    mu and logvar of q(z|x); z = mu + exp(logvar / 2) * eps.

    Official: input resized to 256 and 6 layers (ndf, 2, 4, 8, 8, 8 x ndf). ``input_size``
    generalises it (log2(input_size / 4) layers) so a 128 px model encodes at 128.
    """

    def __init__(self, ndf: int = 64, z_dim: int = 256, input_size: int = 256,
                 use_spectral: bool = True) -> None:
        super().__init__()
        self.input_size = input_size
        n_layers = int(math.log2(input_size // 4))
        if 4 * 2 ** n_layers != input_size:
            raise ValueError(f"encoder input size must be 4 * 2^k, got {input_size}")
        cin = 3
        for i in range(n_layers):
            cout = ndf * min(2 ** i, 8)
            conv = spectral(nn.Conv2d(cin, cout, 3, 2, 1, bias=False), use_spectral)
            self.add_module(f"layer{i + 1}", nn.Sequential(conv, nn.InstanceNorm2d(cout, affine=False)))
            cin = cout
        self.n_layers = n_layers
        self.fc_mu = nn.Linear(cin * 16, z_dim)
        self.fc_var = nn.Linear(cin * 16, z_dim)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """image in [-1, 1], B x 3 x H x W -> (mu, logvar)."""
        x = image
        if x.shape[-2:] != (self.input_size, self.input_size):
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear",
                              align_corners=False)
        for i in range(self.n_layers):
            x = F.leaky_relu(getattr(self, f"layer{i + 1}")(x), 0.2)
        x = x.flatten(1)
        return self.fc_mu(x), self.fc_var(x)


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    eps = torch.randn(mu.shape, generator=generator, device="cpu").to(mu.device)
    return mu + torch.exp(0.5 * logvar) * eps


def spade_discriminator(cfg: SPADEConfig, ndf: int = 64, n_layers: int = 4,
                        num_D: int = 2) -> MultiscaleDiscriminator:
    """D of SPADE: multi-scale PatchGAN on concat(semantics, image)."""
    return MultiscaleDiscriminator(cfg.semantic_nc + 3, ndf, n_layers, num_D, "instance", True)


# ---- loading -------------------------------------------------------------------------------------


def infer_config(state: dict[str, torch.Tensor], base: SPADEConfig) -> SPADEConfig:
    """Read the shape-bearing options off a generator state_dict; the rest comes from ``base``.

    semantic_nc from ``head_0.norm_0.mlp_shared.0.weight``, ngf from ``up_3.conv_1``, VAE from a
    2-D ``fc.weight``, ``most`` from the presence of ``up_4``, BatchNorm from running stats.
    normal vs more leaves no trace in the keys and is kept from ``base``.
    """
    try:
        snc = state["head_0.norm_0.mlp_shared.0.weight"].shape[1]
        nhidden = state["head_0.norm_0.mlp_shared.0.weight"].shape[0]
        w1 = state.get("up_3.conv_1.weight", state.get("up_3.conv_1.weight_orig"))
        ngf = int(w1.shape[0])
    except (KeyError, AttributeError):
        raise ValueError("not a SPADE generator state_dict (no head_0.norm_0.mlp_shared.0.weight "
                         "or up_3.conv_1 weight)") from None
    cfg = replace(base, ngf=ngf, nhidden=int(nhidden))
    if "up_4.conv_0.bias" in state:
        cfg = replace(cfg, num_upsampling_layers="most")
    elif cfg.num_upsampling_layers == "most":
        cfg = replace(cfg, num_upsampling_layers="normal")
    fc = state.get("fc.weight")
    if fc is None:
        raise ValueError("not a SPADE generator state_dict: 1 missing key (fc.weight)")
    if fc.dim() == 2:
        cfg = replace(cfg, use_vae=True, z_dim=int(fc.shape[1]))
    else:
        cfg = replace(cfg, use_vae=False)
    norm = "batch" if "head_0.norm_0.param_free_norm.running_mean" in state else "instance"
    cfg = replace(cfg, norm=norm)
    if snc != cfg.semantic_nc:
        raise ValueError(f"the weights take {snc} semantic channels but the preset gives "
                         f"{cfg.semantic_nc} (label_nc {cfg.label_nc}, dontcare {cfg.dontcare}, "
                         f"instance {cfg.instance}); choose the preset the weights were made for")
    if cfg.use_vae:
        sh, sw = cfg.latent_hw()
        if fc.shape[0] != 16 * ngf * sh * sw:
            raise ValueError(f"VAE fc has {fc.shape[0]} outputs, expected 16*{ngf}*{sh}*{sw}: "
                             f"crop_size/aspect_ratio differ from the ones it was trained at")
    return cfg


def clean_generator_state(state: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Official or training state_dict -> inference keys: strip ``module.``, fold spectral
    norm with the stored u, v, drop ``num_batches_tracked`` (the official SyncBN never counts)."""
    out = {}
    for k, v in state.items():
        if not isinstance(v, torch.Tensor):
            continue
        k = k[len("module."):] if k.startswith("module.") else k
        if k.endswith("num_batches_tracked"):
            continue
        out[k] = v.float() if v.is_floating_point() else v
    return fold_spectral_norm(out) if has_spectral_norm(out) else out


def build_generator(state: dict[str, torch.Tensor], base: SPADEConfig) -> SPADEGenerator:
    """An eval-mode inference generator (spectral norm folded) with ``state`` loaded strictly."""
    state = clean_generator_state(state)
    cfg = infer_config(state, base)
    with torch.device("meta"):  # no wasted random init: every tensor comes from ``state``
        net = SPADEGenerator(cfg, use_spectral=False)
    own = net.state_dict()
    missing = sorted(k for k in own if k not in state and not k.endswith("num_batches_tracked"))
    unexpected = sorted(k for k in state if k not in own)
    shapes = [f"{k}: {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
              if k in state and state[k].shape != v.shape]
    if missing or unexpected or shapes:
        raise ValueError(f"generator weights do not fit: missing {missing[:4]}, unexpected "
                         f"{unexpected[:4]}, shapes {shapes[:3]}")
    full = {k: state.get(k, torch.zeros((), dtype=torch.long)) for k in own}
    net.load_state_dict(full, strict=True, assign=True)
    return net.eval()


def generator_export_state(net: SPADEGenerator) -> dict[str, torch.Tensor]:
    """Inference-form state of a (possibly spectral-normed, training) generator."""
    return clean_generator_state(net.state_dict())
